"""Pacing against an injected wall clock: catch up at --speed, never pass the wall clock, stop cleanly."""

from __future__ import annotations

import threading

import pytest

from lifewatch.model import NS
from simulators.clock import Pacer, parse_speed, run
from simulators.engine import Simulation

from ._util import local_day

WALL0 = local_day("2026-01-15") + 12 * 3600 * NS


class FakeClock:
    def __init__(self, t: int):
        self.t = t

    def now(self) -> int:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += max(1, int(s * NS))


class ListSink:
    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.got: list = []
        self.sent_at: list[int] = []
        self.readings = self.messages = 0
        self.flushed = False

    def send(self, rs):
        self.got += rs
        self.sent_at += [self.clock.now()] * len(rs)
        self.readings += len(rs)
        self.messages += len(rs)

    def poll(self):
        pass

    def flush(self, timeout=None):
        self.flushed = True
        return True

    def close(self):
        pass


def test_parse_speed():
    assert parse_speed("max") is None and parse_speed("60") == 60.0 and parse_speed(0.5) == 0.5
    with pytest.raises(ValueError):
        parse_speed("0")
    with pytest.raises(ValueError):
        parse_speed("fast-ish")


def test_pacer_catches_up_then_runs_at_real_time():
    start = WALL0 - 7200 * NS
    p = Pacer(start, 60.0, WALL0)
    assert p.allowed(WALL0) == start
    assert p.allowed(WALL0 + 60 * NS) == start + 3600 * NS
    assert p.allowed(WALL0 + 120 * NS) == WALL0  # 2 h replayed, still 2 min behind
    assert p.allowed(WALL0 + 123 * NS) == WALL0 + 123 * NS  # caught up: capped at the wall clock
    assert p.allowed(WALL0 + 500 * NS) == WALL0 + 500 * NS
    assert p.wall_at(start + 3600 * NS) == WALL0 + 60 * NS
    assert p.wall_at(WALL0 + 1000 * NS) == WALL0 + 1000 * NS
    m = Pacer(start, None, WALL0)
    assert m.allowed(WALL0) == WALL0 and m.allowed(WALL0 + 5 * NS) == WALL0 + 5 * NS
    future = Pacer(WALL0 + 100 * NS, 60.0, WALL0)
    assert future.allowed(WALL0 + 10 * NS) == WALL0 + 100 * NS  # nothing before the start ...
    assert future.wall_at(WALL0 + 101 * NS) == WALL0 + 101 * NS  # ... which waits for the wall clock


def test_run_never_passes_the_wall_clock(city):
    clock = FakeClock(WALL0)
    start = WALL0 - 600 * NS
    sim = Simulation(city, seed=1, start_ns=start, sensors=25)
    sink = ListSink(clock)
    st = run(sim, sink, speed=60.0, wall_duration_s=40.0, clock=clock.now, sleep=clock.sleep)
    assert st.reason == "wall-duration" and sink.flushed
    assert all(r.ts_ns <= at for r, at in zip(sink.got, sink.sent_at, strict=True))
    # the first 10 wall seconds replay 10 simulated minutes; then real time
    assert sum(1 for at in sink.sent_at if at <= WALL0 + 11 * NS) > 0.9 * 25 * 10
    assert WALL0 + 39 * NS <= st.sim_ns <= WALL0 + 41 * NS
    assert sink.got == sim.readings_between(start, st.sim_ns)


def test_run_to_the_end_as_fast_as_possible(city):
    clock = FakeClock(WALL0)
    start = WALL0 - 3 * 3600 * NS
    sim = Simulation(city, seed=2, start_ns=start, sensors=40)
    sink = ListSink(clock)
    st = run(sim, sink, speed=None, end_ns=start + 3600 * NS, clock=clock.now, sleep=clock.sleep)
    assert st.reason == "end" and st.sim_ns == start + 3600 * NS
    assert sink.got == sim.readings_between(start, start + 3600 * NS)
    assert clock.now() == WALL0  # no sleeping when behind the wall clock


def test_run_stops_on_the_stop_event_and_flushes(city):
    clock = FakeClock(WALL0)
    sim = Simulation(city, seed=1, start_ns=WALL0 - 3600 * NS, sensors=10)
    stop = threading.Event()

    class StopAfterFirst(ListSink):
        def send(self, rs):
            super().send(rs)
            stop.set()

    sink = StopAfterFirst(clock)
    st = run(sim, sink, speed=1.0, stop=stop, clock=clock.now, sleep=clock.sleep)
    assert st.reason == "stopped" and sink.flushed and st.readings == len(sink.got) > 0


def test_future_start_waits_for_the_wall_clock(city):
    clock = FakeClock(WALL0)
    sim = Simulation(city, seed=1, start_ns=WALL0 + 120 * NS, sensors=5)
    sink = ListSink(clock)
    run(sim, sink, speed=None, end_ns=WALL0 + 240 * NS, clock=clock.now, sleep=clock.sleep)
    assert sink.got and all(at >= r.ts_ns >= WALL0 + 120 * NS for r, at in zip(sink.got, sink.sent_at, strict=True))
    assert clock.now() >= WALL0 + 235 * NS
