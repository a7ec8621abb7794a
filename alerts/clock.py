"""Wall time for the SLA timers, injected: production passes :func:`system_clock`, tests a :class:`FakeClock`.

Event time (a detection's ``ts_ns``) drives everything about a condition:
first/last seen, the re-open cool-down, incident windows, silences.  Wall
time drives only what people are measured against: when an alert entered
the queue, when it was acknowledged, SLA deadlines, reminders.  Logic never
reads the wall clock itself; it asks the clock it was given.

>>> clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
>>> clock.advance(90).isoformat()
'2026-01-01T00:01:30+00:00'
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

Clock = Callable[[], datetime]  # returns an aware UTC datetime


def system_clock() -> datetime:
    return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime | None = None):
        self.now = start or datetime(2026, 1, 1, tzinfo=UTC)
        if self.now.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def to_ns(dt: datetime) -> int:
    """An aware datetime as Unix nanoseconds (microsecond resolution)."""
    delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def from_ns(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1_000)
