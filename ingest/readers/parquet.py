"""The Lifewatch recording: Parquet, long format, one row per (reading, metric).

=============  ==================================  =========================================
column         Arrow type                          meaning
=============  ==================================  =========================================
``ts``         ``timestamp[ns, tz=UTC]``           event time of the reading, exact to the ns
``lifeline``   ``dictionary<int32, string>``       measurement (water, power, gas, bridge, air)
``district``   ``dictionary<int32, string>``       tag ``district``
``sensor_id``  ``dictionary<int32, string>``       tag ``sensor_id``
``metric``     ``dictionary<int32, string>``       field name; null on the single row of a
                                                   reading that has no value (a heartbeat)
``value``      ``float64`` (nullable)              the field's value; null = no value
``seq``        ``int64`` (nullable)                the reading's sequence number (every row of
                                                   the reading carries it)
``quality``    ``dictionary<int32, string>``       the reading's quality flag (nullable)
=============  ==================================  =========================================

Rows are in event-time order; the rows of one reading are contiguous
(consecutive rows with the same ``ts``, ``lifeline``, ``district`` and
``sensor_id`` are one reading) and list its metrics in name order, as
InfluxDB returns them.  The file's key-value metadata holds
``lifewatch.recording``: a JSON object with ``format`` (``"lifewatch-recording"``),
``version`` (1), ``source`` (where the data came from, e.g. the InfluxDB URL
and database), ``from`` / ``to`` (the query window, RFC 3339), ``filters``,
``created_at``, ``lifewatch_version``, ``readings`` and ``rows``.

Readers accept any Parquet file with at least ``ts``, ``lifeline``,
``district``, ``sensor_id``, ``metric`` and ``value`` (``ts`` as a timestamp of
any unit, naive = UTC, or int64 ns; strings plain or dictionary-encoded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ingest.readers.columns import Categorical, Columns
from ingest.readers.errors import RecordingError

META_KEY = b"lifewatch.recording"
FORMAT = "lifewatch-recording"
VERSION = 1
REQUIRED = ("ts", "lifeline", "district", "sensor_id", "metric", "value")
STRING_COLUMNS = ("lifeline", "district", "sensor_id", "metric", "quality")


def schema():  # noqa: ANN201 - pyarrow imported lazily
    import pyarrow as pa

    d = pa.dictionary(pa.int32(), pa.string())
    return pa.schema([
        pa.field("ts", pa.timestamp("ns", tz="UTC"), nullable=False),
        pa.field("lifeline", d, nullable=False),
        pa.field("district", d, nullable=False),
        pa.field("sensor_id", d, nullable=False),
        pa.field("metric", d),
        pa.field("value", pa.float64()),
        pa.field("seq", pa.int64()),
        pa.field("quality", d),
    ])


def _dict_array(cat: Categorical, idx: slice | np.ndarray | None = None):  # noqa: ANN202
    import pyarrow as pa

    codes = cat.codes if idx is None else cat.codes[idx]
    mask = codes < 0
    indices = pa.array(np.where(mask, 0, codes).astype(np.int32), mask=mask if mask.any() else None)
    return pa.DictionaryArray.from_arrays(indices, pa.array(cat.categories, type=pa.string()))


def to_table(cols: Columns, idx: slice | np.ndarray | None = None):  # noqa: ANN201
    """A pyarrow table of (part of) the columns, in the recording schema."""
    import pyarrow as pa

    sel = (lambda a: a) if idx is None else (lambda a: a[idx])
    value = sel(cols.value)
    seq_ok = sel(cols.seq_valid)
    arrays = [
        pa.array(sel(cols.ts_ns), type=pa.timestamp("ns", tz="UTC")),
        _dict_array(cols.lifeline, idx), _dict_array(cols.district, idx), _dict_array(cols.sensor_id, idx),
        _dict_array(cols.metric, idx),
        pa.array(value, type=pa.float64(), mask=np.isnan(value)),
        pa.array(sel(cols.seq), type=pa.int64(), mask=~seq_ok),
        _dict_array(cols.quality, idx),
    ]
    return pa.Table.from_arrays(arrays, schema=schema())


class RecordingWriter:
    """Writes a recording incrementally (one row group per :meth:`write`); metadata completed on :meth:`close`."""

    def __init__(self, path: str | Path, meta: dict[str, Any]):
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.meta = {"format": FORMAT, "version": VERSION, **meta}
        self.rows = 0
        self.readings = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(self.path.name + ".part")
        self._w = pq.ParquetWriter(self._tmp, schema(), compression="zstd")

    def write(self, cols: Columns) -> None:
        if len(cols):
            self._w.write_table(to_table(cols))
            self.rows += len(cols)
            self.readings += cols.n_readings

    def close(self) -> None:
        self.meta.update(rows=self.rows, readings=self.readings)
        self._w.add_key_value_metadata({META_KEY.decode(): json.dumps(self.meta, sort_keys=True)})
        self._w.close()
        self._tmp.replace(self.path)

    def abort(self) -> None:
        try:
            self._w.close()
        finally:
            self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> RecordingWriter:
        return self

    def __exit__(self, exc_type, *rest: object) -> None:  # noqa: ANN001
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_recording(path: str | Path, cols: Columns, meta: dict[str, Any] | None = None) -> None:
    with RecordingWriter(path, meta or {}) as w:
        w.write(cols)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The ``lifewatch.recording`` metadata of a recording ({} when absent)."""
    import pyarrow.parquet as pq

    try:
        kv = pq.read_metadata(path).metadata or {}
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types on bad files
        raise RecordingError(path, None, None, f"not a readable Parquet file: {exc}") from None
    raw = kv.get(META_KEY)
    if not raw:
        return {}
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _first_null(arr) -> int:  # noqa: ANN001
    import pyarrow.compute as pc

    return int(pc.index(pc.is_null(arr), True).as_py())


def _categorical(path: Path, table, name: str, nullable: bool) -> Categorical:  # noqa: ANN001
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name)
    typ = col.type
    if pa.types.is_dictionary(typ):
        if not (pa.types.is_string(typ.value_type) or pa.types.is_large_string(typ.value_type)):
            raise RecordingError(path, None, name, f"expected strings, found {typ}")
        col = col.unify_dictionaries() if hasattr(col, "unify_dictionaries") else col
        chunks = col.chunks
        if chunks:
            dictionary = chunks[0].dictionary.to_pylist()
            indices = pa.chunked_array([c.indices for c in chunks])
        else:
            dictionary, indices = [], pa.chunked_array([], pa.int32())
    elif pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_null(typ):
        enc = pc.dictionary_encode(col.cast(pa.string()))
        chunks = enc.unify_dictionaries().chunks if enc.num_chunks else []
        dictionary = chunks[0].dictionary.to_pylist() if chunks else []
        indices = pa.chunked_array([c.indices for c in chunks], pa.int32()) if chunks else pa.chunked_array([], pa.int32())
    else:
        raise RecordingError(path, None, name, f"expected strings, found {typ}")
    if indices.null_count and not nullable:
        raise RecordingError(path, _first_null(indices) + 1, name, "null value")
    codes = pc.fill_null(indices.cast(pa.int32()), -1).to_numpy() if len(indices) else np.zeros(0, np.int32)
    if any(d is None for d in dictionary):
        raise RecordingError(path, None, name, "null in the dictionary")
    return Categorical(np.ascontiguousarray(codes, dtype=np.int32), dictionary)


def read_parquet(path: str | Path) -> Columns:
    """A Parquet recording (schema above) -> :class:`Columns`, rows in file order."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        missing = [c for c in REQUIRED if c not in names]
        if missing:
            raise RecordingError(path, None, missing[0], f"missing column(s) {missing}; a recording needs {list(REQUIRED)}")
        table = pf.read(columns=[c for c in (*REQUIRED, "seq", "quality") if c in names])
        kv = pf.metadata.metadata or {}
    except RecordingError:
        raise
    except Exception as exc:  # noqa: BLE001 - ArrowInvalid, OSError, ValueError...: all mean a bad file
        raise RecordingError(path, None, None, f"not a readable Parquet file: {exc}") from None
    try:
        n = table.num_rows
        ts_col = table.column("ts")
        if ts_col.null_count:
            raise RecordingError(path, _first_null(ts_col) + 1, "ts", "null timestamp")
        if pa.types.is_timestamp(ts_col.type):
            ts = ts_col.cast(pa.timestamp("ns", tz=ts_col.type.tz)).cast(pa.int64())
        elif pa.types.is_integer(ts_col.type):
            ts = ts_col.cast(pa.int64())
        else:
            raise RecordingError(path, None, "ts", f"expected a timestamp or int64 ns, found {ts_col.type}")
        ts_ns = np.ascontiguousarray(ts.to_numpy(), dtype=np.int64) if n else np.zeros(0, np.int64)
        v = table.column("value")
        if not (pa.types.is_floating(v.type) or pa.types.is_integer(v.type) or pa.types.is_null(v.type)):
            raise RecordingError(path, None, "value", f"expected numbers, found {v.type}")
        value = pc.fill_null(v.cast(pa.float64()), np.nan).to_numpy() if n else np.zeros(0)
        value = np.ascontiguousarray(value, dtype=np.float64)
        bad = np.flatnonzero(np.isinf(value))
        if bad.size:
            raise RecordingError(path, int(bad[0]) + 1, "value", "not a finite number")
        if "seq" in table.column_names:
            s = table.column("seq")
            if not (pa.types.is_integer(s.type) or pa.types.is_null(s.type)):
                raise RecordingError(path, None, "seq", f"expected integers, found {s.type}")
            s = s.cast(pa.int64())
            seq_valid = pc.is_valid(s).to_numpy(zero_copy_only=False) if n else np.zeros(0, bool)
            seq = pc.fill_null(s, 0).to_numpy() if n else np.zeros(0, np.int64)
        else:
            seq, seq_valid = np.zeros(n, np.int64), np.zeros(n, bool)
        lifeline = _categorical(path, table, "lifeline", False)
        district = _categorical(path, table, "district", False)
        sensor = _categorical(path, table, "sensor_id", False)
        metric = _categorical(path, table, "metric", True)
        quality = _categorical(path, table, "quality", True) if "quality" in table.column_names else \
            Categorical.constant(None, n)
    except RecordingError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise RecordingError(path, None, None, f"unreadable recording: {type(exc).__name__}: {exc}") from None
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = ((ts_ns[1:] != ts_ns[:-1]) | (sensor.codes[1:] != sensor.codes[:-1])
                   | (lifeline.codes[1:] != lifeline.codes[:-1]) | (district.codes[1:] != district.codes[:-1]))
    reading = np.cumsum(new, dtype=np.int64) - 1
    meta: dict[str, Any] = {}
    raw = kv.get(META_KEY)
    if raw:
        try:
            doc = json.loads(raw)
            meta = doc if isinstance(doc, dict) else {}
        except ValueError:
            meta = {}
    return Columns(ts_ns, sensor, lifeline, district, metric, value, np.ascontiguousarray(seq, dtype=np.int64),
                   np.ascontiguousarray(seq_valid, dtype=bool), quality, reading, "parquet", meta)
