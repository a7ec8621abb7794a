"""``lifewatch replay``: publish a recording to MQTT as its sensors sent it.

::

    lifewatch replay week.parquet [--speed 60|max] [--shift-to-now] [--loop] [--batch N] [--mapping FILE]

Any file :mod:`ingest.readers` reads is a recording (Parquet from
``lifewatch record``, NAB / SKAB / mapped CSV, line protocol).  Readings go
out in event-time order (each sensor keeps its order; readings with equal
times keep their file order) through
:class:`~simulators.publisher.MqttPublisher` (QoS 1, bounded window of
unacknowledged messages, return codes checked), paced by
:func:`simulators.clock.run` exactly like the simulator: ``--speed N`` is N
recorded seconds per wall second, ``max`` as fast as the broker acknowledges,
and event time never passes the wall clock.

* ``--shift-to-now`` moves every timestamp by the same amount so that the
  last reading lands on the wall clock at the start of the replay (with
  ``--speed max`` everything is published at once; with ``--speed 60`` the
  replay starts in the past and catches up);
* ``--loop`` repeats the recording; repetition ``k`` is shifted by ``k``
  periods, a period being the recording's span plus its typical reading
  interval (the median gap between one sensor's readings), so loops follow
  each other like the original readings did.  Stop it with Ctrl-C or
  ``--wall-duration``.

A reading without values (a heartbeat, recorded as a row with no metric) is
published with its lifeline's first metric set to ``null`` and its quality,
which is what ingest stores for it again.  Progress (readings, rate, event
time reached) goes to stderr every 5 s; stdout gets one summary line.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from ingest.readers import Columns, RecordingError, read_columns
from lifewatch.lifelines import LIFELINE_IDS, load_lifelines
from lifewatch.model import NS, ContractError, Reading, check_identifier, format_ts
from lifewatch.settings import Settings
from simulators.clock import RunStats, ms, parse_speed, run
from simulators.publisher import MqttPublisher, PublishError


class RecordingSource:
    """A recording as :func:`simulators.clock.run` wants a simulation: ``start_ns`` and ``chunk(t0, t1)``.

    ``shift_ns`` is added to every timestamp; with ``loop`` the recording
    repeats every :attr:`period_ns` without end.

    >>> from ingest.readers import Columns
    >>> c = Columns.from_records([("water", "d", "w-1", t, {"flow": float(t)}, None, None) for t in (0, 60, 120)])
    >>> src = RecordingSource(c, shift_ns=1000, loop=True)
    >>> src.start_ns, src.end_ns, src.period_ns
    (1000, None, 180)
    >>> readings, events = src.chunk(1000, 1000 + 400)
    >>> [(r.ts_ns, r.values["flow"]) for r in readings]
    [(1000, 0.0), (1060, 60.0), (1120, 120.0), (1180, 0.0), (1240, 60.0), (1300, 120.0), (1360, 0.0)]
    """

    def __init__(self, cols: Columns, *, shift_ns: int = 0, loop: bool = False):
        self.cols = cols.ordered()
        self.starts = self.cols.reading_starts()
        self.ts = self.cols.ts_ns[self.starts]
        self.shift_ns = int(shift_ns)
        self.loop = loop
        self.n = len(self.starts)
        self.first_ns = int(self.ts[0]) if self.n else 0
        self.last_ns = int(self.ts[-1]) if self.n else 0
        self.period_ns = (self.last_ns - self.first_ns) + typical_interval(self.cols)
        self.start_ns = self.first_ns + self.shift_ns
        self.end_ns: int | None = None if loop else self.last_ns + self.shift_ns + 1
        lifelines = load_lifelines()
        self._first_metric = {lid: next(iter(lifelines[lid].metrics)) for lid in LIFELINE_IDS}

    def _slice(self, a: int, b: int, shift: int) -> list[Reading]:
        if b <= a:
            return []
        stop = int(self.starts[b]) if b < self.n else len(self.cols)
        out = list(self.cols.iter_readings(int(self.starts[a]), stop))
        for r in out:
            r.ts_ns += shift
            if not r.values:
                r.values[self._first_metric.get(r.lifeline, "value")] = None
        return out

    def chunk(self, t0_ns: int, t1_ns: int) -> tuple[list[Reading], np.ndarray]:
        """Readings with (shifted) event time in ``[t0, t1)``, in order, and their event times."""
        if not self.n:
            return [], np.zeros(0, dtype=np.int64)
        out: list[Reading] = []
        if not self.loop:
            shifts = [self.shift_ns]
        else:
            k0 = max(0, (t0_ns - self.shift_ns - self.last_ns) // self.period_ns)
            k1 = max(0, (t1_ns - self.shift_ns - self.first_ns) // self.period_ns + 1)
            shifts = [self.shift_ns + k * self.period_ns for k in range(int(k0), int(k1))]
        for s in shifts:
            a = int(np.searchsorted(self.ts, t0_ns - s, side="left"))
            b = int(np.searchsorted(self.ts, t1_ns - s, side="left"))
            out.extend(self._slice(a, b, s))
        return out, np.fromiter((r.ts_ns for r in out), dtype=np.int64, count=len(out))


def typical_interval(cols: Columns) -> int:
    """Median gap between consecutive readings of one sensor (1 s if there is none)."""
    starts = cols.reading_starts()
    if len(starts) < 2:
        return NS
    sensor = cols.sensor_id.codes[starts]
    ts = cols.ts_ns[starts]
    order = np.lexsort((ts, sensor))
    s, t = sensor[order], ts[order]
    gaps = np.diff(t)[(s[1:] == s[:-1])]
    gaps = gaps[gaps > 0]
    return int(np.median(gaps)) if gaps.size else NS


def check_publishable(cols: Columns) -> list[str]:
    """Warnings for what ingest would reject: unknown lifelines or metrics, ids that cannot be a topic level."""
    lifelines = load_lifelines()
    warn = []
    for what, cat in (("sensor_id", cols.sensor_id), ("district", cols.district)):
        bad = []
        for v in cat.categories:
            try:
                check_identifier(what, v)
            except ContractError:
                bad.append(v)
        if bad:
            warn.append(f"{len(bad)} {what}(s) cannot be published ({', '.join(repr(b) for b in bad[:3])}...)")
    unknown = [v for v in cols.lifeline.categories if v not in LIFELINE_IDS]
    if unknown:
        warn.append(f"unknown lifeline(s) {unknown[:5]}: ingest rejects them")
    pairs = set(zip(cols.lifeline.codes.tolist(), cols.metric.codes.tolist(), strict=True)) if len(cols) < 2_000_000 else set()
    bad_m = sorted({f"{cols.lifeline.categories[lc]}.{cols.metric.categories[mc]}" for lc, mc in pairs
                    if mc >= 0 and cols.lifeline.categories[lc] in lifelines
                    and cols.metric.categories[mc] not in lifelines[cols.lifeline.categories[lc]].metrics})
    if bad_m:
        warn.append(f"unknown metric(s) {bad_m[:5]}: ingest rejects those readings (give a --mapping)")
    return warn


def progress_line(st: RunStats, now_ns: int) -> str:
    return (f"replay: {st.readings:,} readings in {st.messages:,} messages, {st.rate:,.0f} readings/s, "
            f"event time {ms(st.sim_ns)}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``recording`` (positional), ``--speed``, ``--shift-to-now``, ``--loop``, ``--batch``, ``--mapping``,
    ``--wall-duration``."""
    p.add_argument("recording", help="a recording: Parquet from 'lifewatch record', NAB/SKAB/mapped CSV, line protocol")
    p.add_argument("--speed", default="60", help="recorded seconds per wall second, or 'max' (default 60)")
    p.add_argument("--shift-to-now", action="store_true", help="shift all timestamps so the last reading lands at the wall clock")
    p.add_argument("--loop", action="store_true", help="repeat, each repetition shifted by the recording's period")
    p.add_argument("--batch", type=int, default=0, help="gateway batch payloads of up to N readings (0 = one per message)")
    p.add_argument("--mapping", help="column mapping (YAML/JSON) for CSV recordings, or NAB/SKAB overrides")
    p.add_argument("--wall-duration", type=float, help="stop after this many wall seconds")


def cli(args: argparse.Namespace, settings: Settings) -> int:
    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        print(f"replay: --speed: {exc}", file=sys.stderr)
        return 2
    if args.batch < 0 or args.batch > settings.max_batch_readings:
        print(f"replay: --batch must be 0..{settings.max_batch_readings}", file=sys.stderr)
        return 2
    try:
        cols = read_columns(Path(args.recording), mapping=args.mapping)
    except RecordingError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 2
    if not len(cols):
        print("replay: the recording holds no readings", file=sys.stderr)
        return 2
    for w in check_publishable(cols):
        print(f"replay: warning: {w}", file=sys.stderr)
    src = RecordingSource(cols)
    if args.shift_to_now:
        src = RecordingSource(cols, shift_ns=time.time_ns() - src.last_ns, loop=args.loop)
    elif args.loop:
        src = RecordingSource(cols, loop=True)
    try:
        sink = MqttPublisher(settings, batch=args.batch, client_id=f"lifewatch-replay-{int(time.time() * 1000) % 10**9}").connect()
    except PublishError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        st = run(src, sink, speed=speed, end_ns=src.end_ns, wall_duration_s=args.wall_duration, stop=stop,  # type: ignore[arg-type]
                 progress=lambda s, now: print(progress_line(s, now), file=sys.stderr, flush=True))
    except PublishError as exc:
        print(f"replay: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sink.close(timeout=10.0)
    how = {"end": "", "wall-duration": ", stopped at --wall-duration", "stopped": ", stopped by signal"}.get(st.reason, "")
    print(f"replay: {st.readings:,} readings in {st.messages:,} messages, event time {format_ts(st.start_ns)} .. "
          f"{ms(st.sim_ns)}, {st.wall_s:.1f} s wall, {st.rate:,.0f} readings/s{how}"
          f"{'' if st.flushed else ', NOT all acknowledged'}", flush=True)
    return 0 if st.flushed else 1
