"""``lifewatch record``: export readings from InfluxDB into a Parquet recording.

::

    lifewatch record --from 2026-01-05T00:00:00Z --to 2026-01-12T00:00:00Z \\
        [--lifeline water ...] [--district d01 ...] [--sensor w-d01-001 ...] [--chunk 1h] -o week.parquet

The window ``[from, to)`` is read in chunks of event time (default one hour
per query, one InfluxQL statement per lifeline, ``GROUP BY "district",
"sensor_id"``, ``epoch=ns``), so memory stays bounded and a progress line on
stderr shows how far it got.  Every identifier and literal in the queries
goes through :func:`~lifewatch.lineprotocol.quote_ident` /
:func:`~lifewatch.lineprotocol.quote_literal`.  ``--from`` / ``--to`` take
RFC 3339 times, ``now``, or a duration before now (``--from=-7d``: with ``=``, or argparse reads ``-7d`` as an option).

The file (written to ``<out>.part`` and renamed when complete) is the
Lifewatch recording of :mod:`ingest.readers.parquet`: long format, one row per
(reading, metric)::

    ts         timestamp[ns, UTC]          event time, exact to the nanosecond
    lifeline   dictionary<int32, string>   the measurement
    district   dictionary<int32, string>   tag
    sensor_id  dictionary<int32, string>   tag
    metric     dictionary<int32, string>   field name (null on a reading that has no value)
    value      float64, nullable
    seq        int64, nullable             per reading
    quality    dictionary<int32, string>   per reading, nullable

in event-time order (ties by lifeline, district, sensor), the metrics of a
reading in name order, and the file metadata ``lifewatch.recording`` (JSON:
source URL and database, query window, filters, created_at, Lifewatch
version, readings, rows).  ``docs/recording.md`` says the same for users.

InfluxDB keeps what ingest wrote: a heartbeat (a reading whose values were
all null) is a point whose only field is ``quality="missing"`` and comes
back as one row with a null metric; a null value of a reading that had
others is not stored, so it does not come back.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.readers.columns import Columns, ColumnsBuilder
from ingest.readers.parquet import RecordingWriter
from lifewatch.influx import InfluxClient, InfluxError, Series
from lifewatch.lifelines import LIFELINE_IDS
from lifewatch.lineprotocol import quote_ident, quote_literal
from lifewatch.model import NS, ContractError, format_ts, parse_ts
from lifewatch.settings import Settings, parse_duration

NOT_METRICS = ("time", "seq", "quality")


class UsageError(ValueError):
    pass


def parse_when(text: str, now_ns: int) -> int:
    """RFC 3339, ``now``, or ``-<duration>`` before now -> ns."""
    t = text.strip()
    if t == "now":
        return now_ns
    if t.startswith("-"):
        try:
            return now_ns - int(round(parse_duration(t[1:]) * NS))
        except ValueError as exc:
            raise UsageError(f"{text!r}: {exc}") from None
    try:
        return parse_ts(t)
    except ContractError as exc:
        raise UsageError(exc.detail) from None


def build_query(lifeline: str, t0_ns: int, t1_ns: int, districts: Sequence[str] = (), sensors: Sequence[str] = ()) -> str:
    """One InfluxQL statement: every point of ``lifeline`` in ``[t0, t1)``, one series per sensor.

    >>> print(build_query("water", 0, 10, ["d'1"], ["w-1"]))
    SELECT * FROM "water" WHERE time >= 0 AND time < 10 AND ("district" = 'd\\'1') AND ("sensor_id" = 'w-1') GROUP BY "district", "sensor_id"
    """
    where = [f"time >= {int(t0_ns)}", f"time < {int(t1_ns)}"]
    for tag, values in (("district", districts), ("sensor_id", sensors)):
        if values:
            where.append("(" + " OR ".join(f"{quote_ident(tag)} = {quote_literal(v)}" for v in values) + ")")
    return (f"SELECT * FROM {quote_ident(lifeline)} WHERE {' AND '.join(where)} "
            f"GROUP BY {quote_ident('district')}, {quote_ident('sensor_id')}")


def series_to_columns(lifeline: str, series: list[Series], builder: ColumnsBuilder) -> None:
    """Append the points of one statement's series (one reading per point)."""
    for s in series:
        district = s.tags.get("district", "")
        sensor = s.tags.get("sensor_id", "")
        cols = s.columns
        try:
            ti = cols.index("time")
        except ValueError:
            continue
        qi = cols.index("quality") if "quality" in cols else -1
        si = cols.index("seq") if "seq" in cols else -1
        metric_ix = [(i, c) for i, c in enumerate(cols) if c not in NOT_METRICS]
        for row in s.values:
            values: dict[str, float | None] = {}
            for i, c in metric_ix:
                v = row[i]
                if v is None or isinstance(v, (bool, str)):
                    continue  # not stored for this point, or not a metric (an extra tag)
                values[c] = float(v)
            q = row[qi] if qi >= 0 else None
            seq = row[si] if si >= 0 else None
            builder.add(lifeline, district, sensor, int(row[ti]), values,
                        int(seq) if isinstance(seq, (int, float)) and not isinstance(seq, bool) else None,
                        q if isinstance(q, str) else None)


def sort_chunk(cols: Columns) -> Columns:
    """Event-time order, ties by lifeline, district and sensor name; a reading's rows stay in their order."""
    if len(cols) < 2:
        return cols

    def rank(cat) -> np.ndarray:  # noqa: ANN001 - a Categorical
        order = np.argsort(np.array(cat.categories, dtype=object), kind="stable")
        r = np.empty(len(order), dtype=np.int64)
        r[order] = np.arange(len(order))
        return r[cat.codes] if len(order) else np.zeros(len(cat.codes), np.int64)

    order = np.lexsort((np.arange(len(cols)), rank(cols.sensor_id), rank(cols.district), rank(cols.lifeline), cols.ts_ns))
    return cols.take(order)


@dataclass
class Progress:
    """A progress line on stderr: rewritten in place on a terminal, every few seconds otherwise."""

    total: int
    out: Any = None
    every_s: float = 5.0
    label: str = "record"

    def __post_init__(self) -> None:
        self.out = self.out or sys.stderr
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.t0 = time.monotonic()
        self._last = 0.0

    def update(self, done: int, text: str, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last < (0.2 if self.tty else self.every_s):
            return
        self._last = now
        el = now - self.t0
        pct = 100.0 * done / self.total if self.total else 100.0
        eta = f", ETA {el / done * (self.total - done):.0f} s" if done and done < self.total else ""
        line = f"{self.label}: {done}/{self.total} chunks ({pct:.0f}%), {text}, {el:.1f} s{eta}"
        if self.tty:
            self.out.write("\r" + line + ("\n" if final else "\x1b[K"))
        else:
            self.out.write(line + "\n")
        self.out.flush()


def record(client: InfluxClient, t0_ns: int, t1_ns: int, out: str | Path, *, lifelines: Sequence[str] = LIFELINE_IDS,
           districts: Sequence[str] = (), sensors: Sequence[str] = (), chunk_s: float = 3600.0,
           meta: dict[str, Any] | None = None, progress: Callable[[int, int, int, int], None] | None = None) -> dict[str, Any]:
    """Export ``[t0, t1)`` into the recording ``out``; returns ``{"readings", "rows", "chunks", "seconds", "path"}``.

    ``progress(chunks_done, chunks_total, readings, chunk_end_ns)`` is called after every chunk.
    """
    if t1_ns <= t0_ns:
        raise UsageError("--to must be after --from")
    if chunk_s <= 0:
        raise UsageError("--chunk must be > 0")
    unknown = [x for x in lifelines if x not in LIFELINE_IDS]
    if unknown:
        raise UsageError(f"unknown lifeline(s) {unknown}; one of {', '.join(LIFELINE_IDS)}")
    step = int(chunk_s * NS)
    bounds = list(range(t0_ns, t1_ns, step))
    wall = time.perf_counter()
    info = {"from": format_ts(t0_ns), "to": format_ts(t1_ns), "chunk_s": chunk_s,
            "filters": {"lifelines": list(lifelines), "districts": list(districts), "sensors": list(sensors)},
            **(meta or {})}
    with RecordingWriter(out, info) as w:
        for k, a in enumerate(bounds):
            b = min(a + step, t1_ns)
            statements = ";".join(build_query(lid, a, b, districts, sensors) for lid in lifelines)
            results = client.query_all(statements, method="POST")
            builder = ColumnsBuilder()
            for lid, series in zip(lifelines, results, strict=False):
                series_to_columns(lid, series, builder)
            w.write(sort_chunk(builder.build()))
            if progress is not None:
                progress(k + 1, len(bounds), w.readings, b)
        readings, rows = w.readings, w.rows
    return {"readings": readings, "rows": rows, "chunks": len(bounds), "seconds": round(time.perf_counter() - wall, 3),
            "path": str(out)}


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("lifewatch")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "unknown"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``--from``, ``--to``, ``--lifeline`` (repeatable), ``--district`` (repeatable), ``--sensor`` (repeatable),
    ``--chunk``, ``-o/--out``."""
    p.add_argument("--from", dest="t_from", required=True, metavar="T", help="window start: RFC 3339, 'now' or -DURATION before now (write --from=-7d)")
    p.add_argument("--to", dest="t_to", default="now", metavar="T", help="window end, exclusive (default now)")
    p.add_argument("--lifeline", action="append", choices=list(LIFELINE_IDS), help="only this lifeline (repeatable)")
    p.add_argument("--district", action="append", default=[], help="only this district (repeatable)")
    p.add_argument("--sensor", action="append", default=[], help="only this sensor id (repeatable)")
    p.add_argument("--chunk", default="1h", help="event time read per query (default 1h)")
    p.add_argument("-o", "--out", required=True, help="the Parquet file to write")


def cli(args: argparse.Namespace, settings: Settings) -> int:
    now = time.time_ns()
    try:
        t0 = parse_when(args.t_from, now)
        t1 = parse_when(args.t_to, now)
        chunk_s = parse_duration(args.chunk)
    except (UsageError, ValueError) as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 2
    lifelines = args.lifeline or list(LIFELINE_IDS)
    bar = Progress(total=max(1, -(-(t1 - t0) // max(1, int(chunk_s * NS)))))
    start = time.monotonic()

    def show(done: int, total: int, readings: int, at_ns: int) -> None:
        rate = readings / max(time.monotonic() - start, 1e-9)
        bar.update(done, f"{readings:,} readings, {rate:,.0f} readings/s, at {format_ts(at_ns)}", final=done == total)

    meta = {"source": {"influx_url": settings.influx_url, "database": settings.influx_db},
            "created_at": format_ts(now - now % 1_000_000), "lifewatch_version": _version()}
    try:
        with InfluxClient.from_settings(settings) as client:
            res = record(client, t0, t1, args.out, lifelines=lifelines, districts=args.district, sensors=args.sensor,
                         chunk_s=chunk_s, meta=meta, progress=show)
    except UsageError as exc:
        print(f"record: {exc}", file=sys.stderr)
        return 2
    except InfluxError as exc:
        print(f"record: InfluxDB at {settings.influx_url}: {exc}", file=sys.stderr)
        return 1
    size = Path(args.out).stat().st_size
    print(f"record: {res['readings']:,} readings ({res['rows']:,} rows) from {format_ts(t0)} to {format_ts(t1)} "
          f"-> {args.out} ({size / 1e6:.1f} MB) in {res['seconds']:.1f} s")
    return 0
