"""KPIs: time to acknowledge / resolve per unit and level, checked against numpy on known durations."""

from __future__ import annotations

import doctest
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select

import alerts.clock
import alerts.config
import alerts.stats
import alerts.types
from alerts.lifecycle import Feedback, transition
from alerts.models import Alert
from alerts.states import AlertState, Role
from alerts.stats import kpis, percentile
from alerts.types import Actor
from lifewatch.levels import Level
from tests.alerts.helpers import UNIT_A, UNIT_B, det

S = AlertState


@pytest.mark.parametrize("module", [alerts.stats, alerts.config, alerts.clock, alerts.types])
def test_doctests(module) -> None:  # noqa: ANN001
    result = doctest.testmod(module)
    assert result.attempted >= 1 and result.failed == 0


@pytest.mark.parametrize("n", [1, 2, 5, 10, 37])
def test_percentile_agrees_with_numpy(n: int) -> None:
    values = sorted(np.random.default_rng(n).exponential(300, n).tolist())
    for q in (0, 10, 50, 90, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_kpis_per_unit_and_level(store, intake, clock) -> None:  # noqa: ANN001
    # (unit, level, seconds to acknowledge, seconds to resolve or None)
    plan = [
        (UNIT_A, Level.RED, 60, 1800),
        (UNIT_A, Level.RED, 240, 3000),
        (UNIT_A, Level.RED, 600, None),  # acknowledged late (red: 300 s)
        (UNIT_A, Level.ORANGE, 100, 9000),
        (UNIT_B, Level.RED, 30, 600),
        (UNIT_B, Level.YELLOW, None, None),  # never acknowledged
    ]
    start = clock()
    for i, (unit, level, _, _) in enumerate(plan):
        lifeline, sensor, asset = ("water", f"w-d01-{i:03d}", None) if unit == UNIT_A else ("power", f"p-d01-{i:03d}", None)
        intake.emit([det(f"k{i}", lifeline=lifeline, sensors=(sensor,), asset=asset, level=level)])
    with store.read() as s:
        ids = s.scalars(select(Alert.id).order_by(Alert.kind)).all()
    events = []
    for alert_id, (unit, _, tta, ttr) in zip(ids, plan, strict=True):
        crew = Actor("c", Role.CREW, unit)
        if tta is not None:
            events.append((tta, alert_id, S.ACKNOWLEDGED, crew, None))
        if ttr is not None:
            events.append((ttr, alert_id, S.RESOLVED, crew, Feedback(cause="c", action="a")))
    for offset, alert_id, to, crew, fb in sorted(events, key=lambda e: e[0]):
        clock.now = start + timedelta(seconds=offset)
        with store.write() as s:
            transition(s, alert_id, to, crew, clock(), feedback=fb)

    with store.read() as s:
        doc = kpis(s)
    tta = {(r["unit"], r["level"]): r for r in doc["time_to_acknowledge"]}
    ttr = {(r["unit"], r["level"]): r for r in doc["time_to_resolve"]}
    red_a = [60.0, 240.0, 600.0]
    assert tta[(UNIT_A, "red")] == {
        "unit": UNIT_A, "level": "red", "count": 3, "mean_s": pytest.approx(np.mean(red_a)),
        "p50_s": pytest.approx(np.percentile(red_a, 50)), "p90_s": pytest.approx(np.percentile(red_a, 90)), "breached": 1,
    }
    assert (tta[(UNIT_B, "yellow")]["count"], tta[(UNIT_B, "yellow")]["mean_s"]) == (0, None)
    assert ttr[(UNIT_A, "red")]["count"] == 2 and ttr[(UNIT_A, "red")]["p50_s"] == pytest.approx(2400.0)
    assert ttr[(UNIT_A, "orange")]["breached"] == 0  # 2.5 h, within orange's 8 h
    everything = [60, 240, 600, 100, 30]
    assert tta[(None, None)]["count"] == 5 and tta[(None, None)]["p90_s"] == pytest.approx(np.percentile(everything, 90))
    assert doc["alerts"] == 6

    with store.read() as s:
        only_b = kpis(s, unit=UNIT_B)
        red = kpis(s, level=Level.RED)
        later = kpis(s, since=start + timedelta(seconds=1))
    assert {r["unit"] for r in only_b["time_to_acknowledge"] if r["unit"]} == {UNIT_B}
    assert {r["level"] for r in red["time_to_resolve"] if r["level"]} == {"red"}
    assert later["alerts"] == 0
