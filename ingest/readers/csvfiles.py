"""CSV recordings: NAB series, SKAB experiments, and any CSV described by a column mapping.

**NAB** (``timestamp,value``; the Numenta Anomaly Benchmark's ``data/<category>/<file>.csv``):
one series.  Each row is one reading of one sensor: ``sensor_id`` is the file
name without ``.csv``; ``lifeline`` / ``metric`` / ``district`` default to
``water`` / ``flow`` / ``nab`` (:data:`BARE_DEFAULTS`: a bare series has no
city; ``water.flow`` is a metric every part of Lifewatch accepts, so the
series can also be replayed into ingest) and a mapping overrides any of
them, e.g. ``{"lifeline": "power", "metric": "load", "sensor_id": "taxi"}``.
NAB's naive timestamps are read as UTC (``timezone`` overrides).

**SKAB** (Skoltech Anomaly Benchmark: ``;``-separated, a ``datetime``
column, one column per sensor, optional ``anomaly`` and ``changepoint``
label columns): each sensor column is a sensor (its name is the sensor id;
``sensors: {column: id}`` renames), each row one reading per sensor, with
the same ``water`` / ``flow`` / ``skab`` defaults.  Runs of ``anomaly = 1``
become labels (``Columns.labels``) that apply to every sensor of the file;
``changepoint`` is not used.

**Mapped CSV**: any delimited file plus a mapping (YAML or JSON)::

    delimiter: ","                      # optional: sniffed from the header (, ; tab |)
    time: {column: ts, format: iso, timezone: "+06:00"}   # or just: time: ts
    #     format: iso | epoch_s | epoch_ms | epoch_us | epoch_ns | a strptime pattern
    sensor_id: {column: sensor}         # a column ...
    district: {value: d01}              # ... or a constant (a bare string is a column name)
    lifeline: {value: water}            # optional when every metric names its lifeline
    metrics:                            # column -> metric
      q: water.flow
      p: {metric: pressure}             # lifeline from `lifeline:`
      p2: {lifeline: water, metric: pressure, sensor_id: w-2}   # a second sensor in the same row
    seq: {column: seq}                  # optional
    quality: {column: q_flag}           # optional
    labels: {column: anomaly}           # optional: runs of 1/true are labelled windows

Each row gives one reading per (lifeline, sensor) among its metric columns.
Empty cells and ``NaN`` / ``null`` / ``NA`` are null values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ingest.readers._text import NULL_TOKENS, Table, parse_ints, parse_numbers, parse_times, read_csv
from ingest.readers.columns import Categorical, Columns
from ingest.readers.errors import RecordingError

#: what a bare series (NAB, SKAB) is when a mapping says nothing else
BARE_DEFAULTS = {"lifeline": "water", "metric": "flow"}
SKAB_LABEL_COLUMNS = ("anomaly", "changepoint")
_BAD_ID = re.compile(r"[\x00-\x1f\x7f/+#\\]")


def load_mapping(mapping: str | Path | Mapping[str, Any] | None) -> dict[str, Any]:
    """A mapping given as a dict or as a YAML / JSON file."""
    if mapping is None:
        return {}
    if isinstance(mapping, Mapping):
        return dict(mapping)
    p = Path(mapping)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RecordingError(p, None, None, f"cannot read the mapping: {exc}") from None
    try:
        if p.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - yaml and json raise their own types
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        raise RecordingError(p, None if line is None else line + 1, None, f"bad mapping file: {exc}") from None
    if not isinstance(doc, dict):
        raise RecordingError(p, None, None, "a mapping file must hold a mapping (key: value) at the top level")
    return doc


def safe_id(text: str) -> str:
    """A name usable as a sensor id / district (one MQTT topic level that line protocol can carry)."""
    out = _BAD_ID.sub("_", text.strip())[:128]
    return out or "_"


def _time_spec(path: Path, spec: Any, default_column: str) -> tuple[str, str, str]:
    if spec is None:
        return default_column, "iso", "UTC"
    if isinstance(spec, str):
        return spec, "iso", "UTC"
    if isinstance(spec, Mapping) and "column" in spec:
        return str(spec["column"]), str(spec.get("format", "iso")), str(spec.get("timezone", "UTC"))
    raise RecordingError(path, None, None, "mapping: time must be a column name or {column, format, timezone}")


# ---------------------------------------------------------------- wide rows -> long columns


class _Group:
    """Metric columns that form one reading per row: same lifeline, same sensor."""

    def __init__(self, lifeline: np.ndarray, sensor: np.ndarray, metrics: list[str], values: list[np.ndarray]):
        self.lifeline, self.sensor, self.metrics, self.values = lifeline, sensor, metrics, values


def _factorize(values: np.ndarray) -> Categorical:
    import pandas as pd

    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return Categorical(codes.astype(np.int32), [str(u) for u in uniques])


def _build(fmt: str, ts: np.ndarray, district: np.ndarray, groups: list[_Group], seq: np.ndarray | None = None,
           seq_ok: np.ndarray | None = None, quality: np.ndarray | None = None, meta: dict | None = None) -> Columns:
    """Rows x groups -> one reading per (row, group), rows in file order, metrics in column order."""
    n = len(ts)
    k = sum(len(g.metrics) for g in groups)
    gcount = len(groups)
    shape = (n, k)
    lif = np.empty(shape, dtype=object)
    sen = np.empty(shape, dtype=object)
    met = np.empty(shape, dtype=object)
    val = np.empty(shape, dtype=np.float64)
    rid = np.empty(shape, dtype=np.int64)
    j = 0
    for gi, g in enumerate(groups):
        for m, v in zip(g.metrics, g.values, strict=True):
            lif[:, j] = g.lifeline
            sen[:, j] = g.sensor
            met[:, j] = m
            val[:, j] = v
            rid[:, j] = np.arange(n, dtype=np.int64) * gcount + gi
            j += 1
    ts_l = np.repeat(ts, k)
    return Columns(
        ts_l, _factorize(sen.ravel()), _factorize(lif.ravel()), _factorize(np.repeat(district, k)),
        _factorize(met.ravel()), val.ravel(),
        np.repeat(seq, k) if seq is not None else np.zeros(n * k, np.int64),
        np.repeat(seq_ok, k) if seq_ok is not None else np.zeros(n * k, bool),
        _factorize(np.repeat(quality, k)) if quality is not None else Categorical.constant(None, n * k),
        rid.ravel(), fmt, dict(meta or {}))


def _runs(ts: np.ndarray, flag: np.ndarray) -> list[tuple[int, int]]:
    """[first ts, last ts] of every run of consecutive rows where ``flag`` is set."""
    if not flag.any():
        return []
    f = np.concatenate([[False], flag.astype(bool), [False]])
    edges = np.flatnonzero(f[1:] != f[:-1])
    return [(int(ts[a]), int(ts[b - 1])) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _label_flags(path: Path, table: Table, column: str) -> np.ndarray:
    raw = table.column(column)
    flags = np.zeros(len(raw), dtype=bool)
    for i, v in enumerate(raw):
        s = v.strip().lower()
        if s in ("1", "1.0", "true", "yes"):
            flags[i] = True
        elif s not in ("0", "0.0", "false", "no") and v.strip() not in NULL_TOKENS:
            raise RecordingError(path, table.lines[i], column, f"label {v[:20]!r} is not 0/1")
    return flags


# ---------------------------------------------------------------- NAB


def is_nab_header(first_line: str) -> bool:
    return [c.strip().lower() for c in first_line.split(",")] == ["timestamp", "value"]


def read_nab(path: Path, text: str, mapping: Mapping[str, Any] | None = None) -> Columns:
    opts = {**BARE_DEFAULTS, "district": "nab", "sensor_id": safe_id(path.stem), **dict(mapping or {})}
    t = read_csv(path, text, ",")
    for c in ("timestamp", "value"):
        if c not in t.header:
            raise RecordingError(path, t.header_line, c, "a NAB file needs the columns timestamp,value")
    ts = parse_times(path, t.column("timestamp"), t.lines, "timestamp", str(opts.get("format", "iso")),
                     str(opts.get("timezone", "UTC")))
    val = parse_numbers(path, t.column("value"), t.lines, "value")
    n = len(ts)
    const = lambda v: np.full(n, str(v), dtype=object)  # noqa: E731
    g = _Group(const(opts["lifeline"]), const(opts["sensor_id"]), [str(opts["metric"])], [val])
    return _build("nab", ts, const(opts["district"]), [g], meta={"source": {"file": str(path), "format": "nab"}})


# ---------------------------------------------------------------- SKAB


def is_skab_header(first_line: str) -> bool:
    cols = [c.strip().lower() for c in first_line.split(";")]
    return len(cols) >= 2 and cols[0] == "datetime"


def read_skab(path: Path, text: str, mapping: Mapping[str, Any] | None = None) -> Columns:
    opts = {**BARE_DEFAULTS, "district": "skab", **dict(mapping or {})}
    t = read_csv(path, text, str(opts.get("delimiter", ";")))
    tcol, tfmt, tz = _time_spec(path, opts.get("time"), "datetime")
    if tcol not in t.header:
        raise RecordingError(path, t.header_line, tcol, "a SKAB file needs a datetime column")
    ts = parse_times(path, t.column(tcol), t.lines, tcol, tfmt, tz)
    rename = dict(opts.get("sensors") or {})
    sensors = [c for c in t.header if c != tcol and c.lower() not in SKAB_LABEL_COLUMNS]
    if not sensors:
        raise RecordingError(path, t.header_line, None, "no sensor columns besides datetime/anomaly/changepoint")
    n = len(ts)
    lif = np.full(n, str(opts["lifeline"]), dtype=object)
    groups = [_Group(lif, np.full(n, safe_id(str(rename.get(c, c))), dtype=object), [str(opts["metric"])],
                     [parse_numbers(path, t.column(c), t.lines, c)]) for c in sensors]
    cols = _build("skab", ts, np.full(n, str(opts["district"]), dtype=object), groups,
                  meta={"source": {"file": str(path), "format": "skab"}})
    acol = next((c for c in t.header if c.lower() == "anomaly"), None)
    if acol is not None:
        cols.labels = [{"name": "anomaly", "start_ns": a, "end_ns": b, "sensors": None}
                       for a, b in _runs(ts, _label_flags(path, t, acol))]
    return cols


# ---------------------------------------------------------------- mapped CSV


def _source(path: Path, t: Table, spec: Any, what: str, default: str | None) -> np.ndarray | None:
    """A column's values or a constant, as an object array of row count length."""
    n = len(t)
    if spec is None:
        return None if default is None else np.full(n, default, dtype=object)
    if isinstance(spec, str):
        spec = {"column": spec}
    if isinstance(spec, Mapping) and "value" in spec:
        return np.full(n, str(spec["value"]), dtype=object)
    if isinstance(spec, Mapping) and "column" in spec:
        col = str(spec["column"])
        if col not in t.header:
            raise RecordingError(path, t.header_line, col, f"mapping: {what} column not in the header {t.header}")
        raw = t.column(col)
        for i, v in enumerate(raw):
            if not v.strip():
                raise RecordingError(path, t.lines[i], col, f"empty {what}")
        return np.array([v.strip() for v in raw], dtype=object)
    raise RecordingError(path, None, None, f"mapping: {what} must be a column name, {{column: ...}} or {{value: ...}}")


def sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t", "|")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def read_mapped(path: Path, text: str, mapping: Mapping[str, Any]) -> Columns:
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    delim = str(mapping.get("delimiter") or sniff_delimiter(first))
    t = read_csv(path, text, delim)
    tcol, tfmt, tz = _time_spec(path, mapping.get("time"), "time")
    if tcol not in t.header:
        raise RecordingError(path, t.header_line, tcol, f"mapping: time column not in the header {t.header}")
    ts = parse_times(path, t.column(tcol), t.lines, tcol, tfmt, tz)
    metrics = mapping.get("metrics")
    if not isinstance(metrics, Mapping) or not metrics:
        raise RecordingError(path, None, None, "mapping: metrics must map at least one column to a metric")
    row_lifeline = _source(path, t, mapping.get("lifeline"), "lifeline", None)
    row_sensor = _source(path, t, mapping.get("sensor_id"), "sensor_id", None)
    district = _source(path, t, mapping.get("district"), "district", "unknown")

    def const(spec: Any) -> str | None:
        return str(spec["value"]) if isinstance(spec, Mapping) and "value" in spec else None

    row_lkey = ("v", const(mapping.get("lifeline"))) if const(mapping.get("lifeline")) is not None else ("row",)
    row_skey = ("v", const(mapping.get("sensor_id"))) if const(mapping.get("sensor_id")) is not None else ("row",)
    groups: dict[tuple, _Group] = {}
    for col, spec in metrics.items():
        col = str(col)
        if col not in t.header:
            raise RecordingError(path, t.header_line, col, f"mapping: metric column not in the header {t.header}")
        if isinstance(spec, str):
            lid, _, m = spec.rpartition(".")
            spec = {"lifeline": lid, "metric": m} if lid else {"metric": m}
        if not isinstance(spec, Mapping) or not spec.get("metric"):
            raise RecordingError(path, None, col, "mapping: a metric is 'lifeline.metric', 'metric' or {lifeline, metric, sensor_id}")
        if spec.get("lifeline"):
            lif, lkey = np.full(len(t), str(spec["lifeline"]), dtype=object), ("v", str(spec["lifeline"]))
        elif row_lifeline is not None:
            lif, lkey = row_lifeline, row_lkey
        else:
            raise RecordingError(path, None, col, "mapping: no lifeline for this metric (set lifeline: or write lifeline.metric)")
        if spec.get("sensor_id"):
            sen, skey = np.full(len(t), str(spec["sensor_id"]), dtype=object), ("v", str(spec["sensor_id"]))
        elif row_sensor is not None:
            sen, skey = row_sensor, row_skey
        else:
            raise RecordingError(path, None, col, "mapping: no sensor_id for this metric (set sensor_id:)")
        g = groups.setdefault((lkey, skey), _Group(lif, sen, [], []))
        g.metrics.append(str(spec["metric"]))
        g.values.append(parse_numbers(path, t.column(col), t.lines, col))
    seq = seq_ok = quality = None
    if mapping.get("seq") is not None:
        scol = mapping["seq"]["column"] if isinstance(mapping["seq"], Mapping) else str(mapping["seq"])
        if scol not in t.header:
            raise RecordingError(path, t.header_line, scol, "mapping: seq column not in the header")
        seq, seq_ok = parse_ints(path, t.column(scol), t.lines, scol)
    if mapping.get("quality") is not None:
        qcol = mapping["quality"]["column"] if isinstance(mapping["quality"], Mapping) else str(mapping["quality"])
        if qcol not in t.header:
            raise RecordingError(path, t.header_line, qcol, "mapping: quality column not in the header")
        quality = np.array([None if v.strip() in NULL_TOKENS else v for v in t.column(qcol)], dtype=object)
    cols = _build("csv", ts, district, list(groups.values()), seq, seq_ok, quality,
                  meta={"source": {"file": str(path), "format": "csv"}})
    lab = mapping.get("labels")
    if lab is not None:
        lcol = lab["column"] if isinstance(lab, Mapping) else str(lab)
        if lcol not in t.header:
            raise RecordingError(path, t.header_line, lcol, "mapping: labels column not in the header")
        cols.labels = [{"name": lcol, "start_ns": a, "end_ns": b, "sensors": None}
                       for a, b in _runs(ts, _label_flags(path, t, lcol))]
    return cols
