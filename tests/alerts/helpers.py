"""Helpers of the alert tests: a detection builder with event times in seconds after T0, auth headers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime

from detectors.events import Detection
from lifewatch.levels import Level

NS = 1_000_000_000
T0_NS = 1_767_254_400 * NS  # 2026-01-01T08:00:00Z, event time of det(t=0)
WALL0 = datetime(2026, 1, 1, 8, 0, 5, tzinfo=UTC)  # the fake wall clock starts 5 s later
UNIT_A = "shz-water"
UNIT_B = "shz-power"


def det(
    kind: str = "end_pressure_low",
    state: str = "raised",
    *,
    t: float = 0.0,
    start: float | None = None,
    level: Level = Level.ORANGE,
    score: float = 3.0,
    sensors: tuple[str, ...] = ("w-d01-002",),
    asset: str | None = "dma-d01-1",
    district: str = "d01",
    lifeline: str = "water",
    detector: str = "threshold",
    evidence: dict | None = None,
    end: float | None = None,
) -> Detection:
    """A detection at event time T0 + t seconds (its condition started at T0 + start, default t)."""
    start_s = t if start is None else start
    return Detection(
        detector=detector,
        kind=kind,
        state=state,
        lifeline=lifeline,
        district=district,
        asset=asset,
        sensors=sensors,
        level=level,
        score=score,
        start_ns=T0_NS + int(start_s * NS),
        ts_ns=T0_NS + int(t * NS),
        end_ns=T0_NS + int(end * NS) if end is not None else None,
        metric="pressure",
        evidence=evidence if evidence is not None else {"value": 0.1 + score / 100, "source": "GB 50013-2018"},
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def race(*calls: Callable[[], object], timeout: float = 30.0) -> list[object]:
    """Run the calls at once, one thread each; each result is the call's return value or the exception it raised."""
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the caller inspects what was raised
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    return results
