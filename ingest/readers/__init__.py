"""Recording readers: every file format the replay and the backtest accept, as one columnar type.

========================  ==========================================================  ==================
format                    recognised by                                               module
========================  ==========================================================  ==================
Lifewatch recording       ``.parquet`` / ``.pq``, or the ``PAR1`` magic               :mod:`.parquet`
NAB series                a ``timestamp,value`` header                                :mod:`.csvfiles`
SKAB experiment           a ``;``-separated header starting with ``datetime``        :mod:`.csvfiles`
any CSV + a mapping       ``mapping=`` (dict or YAML/JSON file) with ``metrics:``     :mod:`.csvfiles`
InfluxDB line protocol    ``.lp`` / ``.line`` / ``.influx``, or text that parses       :mod:`.lineprotocol`
========================  ==========================================================  ==================

* :func:`read_columns` -> :class:`Columns` (file order): the columnar fast
  path the backtest builds detector frames from; unpacks as
  ``ts_ns, sensor_id, lifeline, district, metric, value = read_columns(p)``.
* :func:`read_recording` -> batches of :class:`~lifewatch.model.Reading` in
  event-time order (what the replay publishes).

A mapping also adjusts the bare formats: ``{"lifeline": "power", "metric":
"load", "district": ..., "sensor_id": ...}`` for NAB, the same plus
``sensors: {column: id}`` for SKAB, ``{"precision": "ms"}`` for line protocol.
Every problem with a file is a :class:`RecordingError` naming the line and
the column; nothing else escapes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ingest.readers.columns import Categorical, Columns, ColumnsBuilder, concat
from ingest.readers.errors import RecordingError
from lifewatch.model import Reading

__all__ = ["Categorical", "Columns", "ColumnsBuilder", "RecordingError", "concat", "detect_format",
           "read_columns", "read_recording", "FORMATS"]

FORMATS = ("parquet", "nab", "skab", "csv", "lineprotocol")
_LP_SUFFIXES = {".lp", ".line", ".influx"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


def _mapping(path: Path, mapping: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    from ingest.readers.csvfiles import load_mapping

    return load_mapping(mapping)


def detect_format(path: str | Path, head: bytes | None = None, mapping: Mapping[str, Any] | None = None) -> str:
    """Which reader a file needs, from its extension and first bytes."""
    from ingest.readers.csvfiles import is_nab_header, is_skab_header

    p = Path(path)
    if head is None:
        try:
            with open(p, "rb") as f:
                head = f.read(4096)
        except OSError as exc:
            raise RecordingError(p, None, None, f"cannot read: {exc}") from None
    suffix = p.suffix.lower()
    if head.startswith(b"PAR1") or suffix in _PARQUET_SUFFIXES:
        return "parquet"
    if suffix in _LP_SUFFIXES:
        return "lineprotocol"
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff")
    first = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    if mapping and mapping.get("metrics"):
        return "csv"
    if is_nab_header(first):
        return "nab"
    if is_skab_header(first):
        return "skab"
    if suffix in (".csv", ".tsv"):
        raise RecordingError(p, 1, None, "unknown CSV layout (neither NAB's 'timestamp,value' nor SKAB's "
                                         "'datetime;...'): describe its columns with a mapping file")
    return "lineprotocol"


def read_columns(path: str | Path, *, mapping: str | Path | Mapping[str, Any] | None = None,
                 format: str | None = None) -> Columns:  # noqa: A002
    """Read any supported recording into columns (rows in file order; see :meth:`Columns.ordered`)."""
    p = Path(path)
    m = _mapping(p, mapping)
    if format is not None and format not in FORMATS:
        raise RecordingError(p, None, None, f"unknown format {format!r}; one of {', '.join(FORMATS)}")
    if not p.is_file():
        raise RecordingError(p, None, None, "no such file")
    fmt = format or detect_format(p, mapping=m)
    if fmt == "parquet":
        from ingest.readers.parquet import read_parquet

        return read_parquet(p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise RecordingError(p, None, None, f"cannot read: {exc}") from None
    return read_text(p, data, fmt, m)


def read_text(path: Path, data: bytes, fmt: str, mapping: Mapping[str, Any] | None = None) -> Columns:
    """Parse the bytes of a text recording in format ``fmt`` (``nab``, ``skab``, ``csv``, ``lineprotocol``)."""
    from ingest.readers import csvfiles, lineprotocol
    from ingest.readers._text import decode

    text = decode(path, data)
    if fmt == "nab":
        return csvfiles.read_nab(path, text, mapping)
    if fmt == "skab":
        return csvfiles.read_skab(path, text, mapping)
    if fmt == "csv":
        if not mapping:
            raise RecordingError(path, None, None, "a generic CSV needs a mapping (time, sensor_id, metrics...)")
        return csvfiles.read_mapped(path, text, mapping)
    if fmt == "lineprotocol":
        return lineprotocol.read_lineprotocol(path, text, mapping)
    raise RecordingError(path, None, None, f"unknown format {fmt!r}")


def read_recording(path: str | Path, *, mapping: str | Path | Mapping[str, Any] | None = None,
                   batch: int = 10_000) -> Iterator[list[Reading]]:
    """Readings of a recording in event-time order, in lists of at most ``batch``."""
    cols = read_columns(path, mapping=mapping).ordered()
    yield from cols.reading_batches(batch)
