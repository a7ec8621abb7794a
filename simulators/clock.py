"""Pacing: how fast simulated event time may advance against the wall clock, and the run loop.

``--speed N`` means N simulated seconds per wall second; ``--speed max`` as
fast as possible.  Event time never passes the wall clock: accelerated runs
start in the past (default start = now - (duration or 2 h), aligned to the
minute), and once the simulation would overtake the wall clock it continues
at real time (1x).  So a run with ``--speed 60`` and no duration catches up
over two wall minutes and then streams live.  A ``--start`` in the future
waits until the wall clock reaches it.

:func:`run` owns the loop: it generates readings a chunk ahead
(:meth:`~simulators.engine.Simulation.chunk`), hands each reading to the sink
once its event time is allowed, reports progress, and stops at the end of the
simulated span, after ``wall_duration`` seconds, or when ``stop`` is set (the
CLI sets it on SIGINT/SIGTERM); it then flushes the sink.  Wall time comes
from the injected ``clock`` and ``sleep`` so tests control it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lifewatch.model import NS, format_ts
from simulators.engine import Simulation
from simulators.publisher import Sink

MAX_CHUNK_S = 3600.0
MIN_CHUNK_S = 60.0
PROGRESS_EVERY_S = 5.0


def parse_speed(text: str | float | None) -> float | None:
    """'max' -> None (as fast as possible); otherwise simulated seconds per wall second (> 0)."""
    if text is None:
        return None
    if isinstance(text, str) and text.strip().lower() in ("max", "inf", "fast"):
        return None
    v = float(text)
    if not v > 0:
        raise ValueError(f"speed must be > 0 or 'max', got {text!r}")
    return v


class Pacer:
    """The latest event time the simulation may have reached at a given wall time.

    allowed(w) = min(start + (w - wall_start) * speed, w); with speed None
    (max) just w.  ``cap_to_wall=False`` drops the wall-clock cap (only for
    tests and offline use).
    """

    def __init__(self, start_ns: int, speed: float | None, wall_start_ns: int, cap_to_wall: bool = True):
        self.start_ns = int(start_ns)
        self.speed = speed
        self.wall_start_ns = int(wall_start_ns)
        self.cap = cap_to_wall

    def allowed(self, wall_ns: int) -> int:
        if self.speed is None:
            a = wall_ns if self.cap else 2**62
        else:
            a = self.start_ns + int((wall_ns - self.wall_start_ns) * self.speed)
            if self.cap:
                a = min(a, wall_ns)
        return max(a, self.start_ns)

    def wall_at(self, sim_ns: int) -> int:
        """The wall time at which event time ``sim_ns`` becomes allowed."""
        w = self.wall_start_ns if self.speed is None else self.wall_start_ns + int((sim_ns - self.start_ns) / self.speed)
        return max(w, sim_ns) if self.cap else w


@dataclass
class RunStats:
    readings: int = 0
    messages: int = 0
    start_ns: int = 0
    sim_ns: int = 0  # event time reached (exclusive)
    wall_s: float = 0.0
    reason: str = ""  # "end", "wall-duration", "stopped"
    flushed: bool = True

    @property
    def rate(self) -> float:
        return self.readings / self.wall_s if self.wall_s > 0 else 0.0


def _human(seconds: float) -> str:
    s = int(abs(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}d {h}h {m}m" if d else f"{h}h {m}m {s}s" if h else f"{m}m {s}s"


def progress_line(st: RunStats, wall_now_ns: int) -> str:
    behind = (wall_now_ns - st.sim_ns) / NS
    return (f"simulate: {st.readings:,} readings in {st.messages:,} messages, {st.rate:,.0f} readings/s, "
            f"simulated {format_ts(st.sim_ns - st.sim_ns % NS)} ({_human(behind)} behind the wall clock)")


def ms(t_ns: int) -> str:
    """RFC 3339 to the millisecond."""
    return format_ts(t_ns - t_ns % 1_000_000)


def run(
    sim: Simulation,
    sink: Sink,
    *,
    speed: float | None,
    end_ns: int | None = None,
    wall_duration_s: float | None = None,
    stop: threading.Event | None = None,
    clock: Callable[[], int] = time.time_ns,
    sleep: Callable[[float], object] | None = None,
    progress: Callable[[RunStats, int], None] | None = None,
    progress_every_s: float = PROGRESS_EVERY_S,
    cap_to_wall: bool = True,
    flush_timeout: float = 60.0,
) -> RunStats:
    """Stream the simulation into ``sink`` under pacing until the end, the wall limit, or ``stop``."""
    stop = stop or threading.Event()
    sleep = sleep or stop.wait
    wall0 = clock()
    pacer = Pacer(sim.start_ns, speed, wall0, cap_to_wall)
    if speed is None:
        chunk_ns = int(MAX_CHUNK_S * NS)
    else:
        chunk_ns = int(min(MAX_CHUNK_S, max(MIN_CHUNK_S, 2.0 * speed)) * NS)
    st = RunStats(start_ns=sim.start_ns, sim_ns=sim.start_ns)
    gen_t = sim.start_ns
    buf: list = []
    ev = np.zeros(0, dtype=np.int64)
    pos = 0
    next_progress = wall0 + int(progress_every_s * NS)
    while True:
        if stop.is_set():
            st.reason = "stopped"
            break
        now = clock()
        if wall_duration_s is not None and now - wall0 >= wall_duration_s * NS:
            st.reason = "wall-duration"
            break
        allowed = pacer.allowed(now)
        if end_ns is not None:
            allowed = min(allowed, end_ns)
        # when the buffer has run dry, generate the next chunk (at most one chunk ahead of the
        # allowed time, so the next event time is known for sleeping); one chunk per turn
        more = end_ns is None or gen_t < end_ns
        if pos >= len(buf) and more and gen_t - allowed < chunk_ns:
            t1 = gen_t + chunk_ns if end_ns is None else min(gen_t + chunk_ns, end_ns)
            buf, ev = sim.chunk(gen_t, t1)
            pos = 0
            gen_t = t1
            more = end_ns is None or gen_t < end_ns
        j = int(np.searchsorted(ev, allowed, side="left"))
        if j > pos:
            sink.send(buf[pos:j])
            st.readings += j - pos
            pos = j
        sink.poll()
        st.sim_ns = allowed if pos < len(buf) else min(allowed, gen_t)  # everything before it is sent
        st.messages = sink.messages
        now = clock()
        st.wall_s = (now - wall0) / NS
        if progress is not None and now >= next_progress:
            progress(st, now)
            next_progress = now + int(progress_every_s * NS)
        if not more and pos >= len(buf) and (end_ns is None or allowed >= end_ns):
            st.reason = "end"
            break
        if pos >= len(buf) and more and gen_t - allowed < chunk_ns:
            continue  # more to generate right away
        nxt = int(ev[pos]) if pos < len(buf) else gen_t
        wait = (pacer.wall_at(nxt + 1) - now) / NS
        if wall_duration_s is not None:
            wait = min(wait, wall_duration_s - st.wall_s)
        sleep(min(max(wait, 0.001), 0.5))
    st.flushed = sink.flush(flush_timeout)
    st.messages = sink.messages
    st.wall_s = (clock() - wall0) / NS
    return st
