"""Detections -> alerts: dedup, peaks, clearing per level, re-open cool-down, grouping, routing, silences."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import func, select

from alerts.clock import from_ns
from alerts.config import AlertSettings
from alerts.db import Store, make_engine
from alerts.errors import StoreError
from alerts.intake import UNROUTED, AlertIntake
from alerts.lifecycle import Feedback, transition
from alerts.models import Alert, AuditEvent, Incident, Outbox
from alerts.silences import create as create_silence
from alerts.silences import revoke as revoke_silence
from alerts.states import AlertState, Role
from alerts.types import Actor
from detectors.events import Detection
from detectors.sinks import DetectionSink
from lifewatch.city import Unit
from lifewatch.levels import Level
from tests.alerts.helpers import T0_NS, UNIT_A, det

S = AlertState
CREW = Actor("crew-a", Role.CREW, UNIT_A)
OPERATOR = Actor("op", Role.OPERATOR)


def alerts_of(store, key: str | None = None) -> list[Alert]:  # noqa: ANN001
    with store.read() as s:
        q = select(Alert).order_by(Alert.created_at, Alert.first_seen_ns)
        return list(s.scalars(q.where(Alert.key == key) if key else q))


def kinds(store, alert_id: str, table=AuditEvent) -> list[str]:  # noqa: ANN001
    with store.read() as s:
        return list(s.scalars(select(table.kind).where(table.alert_id == alert_id).order_by(table.id)))


def test_is_a_detection_sink(intake) -> None:  # noqa: ANN001
    sink: DetectionSink = intake
    sink.emit([])  # nothing to do, nothing written
    assert alerts_of(intake.store) == []


def test_repeats_and_updates_fold_into_one_alert(store, intake, clock) -> None:  # noqa: ANN001
    first = det(t=0, score=3.0, evidence={"value": 0.14})
    intake.emit([first, det("end_pressure_low", "updated", t=30, start=0, score=5.0, evidence={"value": 0.11, "peak": 0.09})])
    clock.advance(60)
    intake.emit([det("end_pressure_low", "updated", t=60, start=0, score=4.0, evidence={"value": 0.12, "peak": 0.09})])
    intake.emit([det("end_pressure_low", "updated", t=45, start=0, score=9.0)])  # older than last seen: stale
    intake.emit([det(t=120, score=4.5, evidence={"value": 0.12})])  # a second episode of the same condition
    (a,) = alerts_of(store)
    assert a.id == first.id and a.key == "water:w-d01-002:end_pressure_low"
    assert (a.count, a.first_seen_ns, a.last_seen_ns, a.last_start_ns) == (2, T0_NS, T0_NS + 120 * 10**9, T0_NS + 120 * 10**9)
    assert (a.peak_score, a.peak_value, a.evidence) == (5.0, 0.09, {"value": 0.11, "peak": 0.09})
    assert (a.state, a.version, a.created_at) == ("new", 1, clock() - timedelta(seconds=60))
    assert kinds(store, a.id) == ["raised", "repeat"]
    assert kinds(store, a.id, Outbox) == ["alert.raised"]  # repeats are not news
    assert intake.counts["stale"] == 1 and intake.counts["repeats"] == 1 and intake.counts["updates"] == 2


def test_redelivered_batches_change_nothing(store, intake) -> None:  # noqa: ANN001
    batch = [det(t=0), det("end_pressure_low", "updated", t=10, start=0, score=6), det(t=20, start=20, sensors=("w-d01-003",))]
    intake.emit(batch)
    before = [(a.id, a.count, a.last_seen_ns, a.peak_score) for a in alerts_of(store)]
    with store.read() as s:
        audit = s.scalar(select(func.count()).select_from(AuditEvent))
    intake.emit(batch)
    assert [(a.id, a.count, a.last_seen_ns, a.peak_score) for a in alerts_of(store)] == before
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(AuditEvent)) == audit


def test_an_update_whose_raise_was_lost_opens_the_alert(store, intake) -> None:  # noqa: ANN001
    intake.emit([det("end_pressure_low", "updated", t=50, start=10, score=4)])
    (a,) = alerts_of(store)
    assert (a.state, a.first_seen_ns, a.last_seen_ns, a.count) == ("new", T0_NS + 10 * 10**9, T0_NS + 50 * 10**9, 1)


def test_a_more_severe_level_tightens_the_sla_and_is_announced(store, intake, settings, clock) -> None:  # noqa: ANN001
    intake.emit([det(t=0, level=Level.YELLOW)])
    created = clock()
    clock.advance(30)
    intake.emit([det("end_pressure_low", "updated", t=30, start=0, level=Level.RED, score=9)])
    intake.emit([det("end_pressure_low", "updated", t=60, start=0, level=Level.ORANGE, score=8)])  # never lowers
    (a,) = alerts_of(store)
    assert a.level == Level.RED
    assert a.ack_due == created + timedelta(seconds=settings.ack_sla[Level.RED])
    assert a.resolve_due == created + timedelta(seconds=settings.resolve_sla[Level.RED])
    assert a.next_reminder_at == clock() + timedelta(seconds=settings.reminder_interval[Level.RED])
    assert kinds(store, a.id, Outbox) == ["alert.raised", "alert.level_raised"]


def _clear(t: float, start: float = 0, **kw) -> Detection:  # noqa: ANN003
    return det("end_pressure_low", "cleared", t=t, start=start, end=t, **kw)


@pytest.mark.parametrize("level,auto", [(Level.RED, False), (Level.ORANGE, False), (Level.YELLOW, True), (Level.BLUE, True)])
def test_cleared_before_acknowledgement_per_level(store, intake, level, auto) -> None:  # noqa: ANN001
    """Default auto_close = yellow, blue: those close once the cool-down (10 min of event time) has passed."""
    intake.emit([det(t=0, level=level), _clear(120, level=level)])
    (a,) = alerts_of(store)
    assert (a.state, a.ended_ns, a.open_key) == ("cleared", T0_NS + 120 * 10**9, a.key)
    intake.emit([det(t=500, sensors=("w-d01-099",), asset=None, level=Level.BLUE)])  # other detections move event time on
    assert alerts_of(store, a.key)[0].state == "cleared"  # 380 s after the end: still within the cool-down
    intake.emit([det(t=721, sensors=("w-d01-098",), asset=None, level=Level.BLUE)])
    (a,) = alerts_of(store, a.key)
    assert a.state == ("closed" if auto else "cleared")
    expected = ["raised", "transition"] + (["transition"] if auto else [])
    assert kinds(store, a.id) == expected
    if auto:
        with store.read() as s:
            last = s.scalars(select(AuditEvent).where(AuditEvent.alert_id == a.id).order_by(AuditEvent.id.desc())).first()
        assert (last.from_state, last.to_state, last.actor, last.data["auto"]) == ("cleared", "closed", "intake", True)


def test_auto_close_levels_and_a_zero_cool_down_close_at_once(store, city, settings, clock) -> None:  # noqa: ANN001
    st = settings.replace(auto_close=frozenset({Level.RED}), reopen_cooldown=0.0)
    intake = AlertIntake(store, city, st, clock)
    intake.emit([det(t=0, level=Level.RED), _clear(60, level=Level.RED)])
    intake.emit([det(t=0, level=Level.YELLOW, sensors=("w-d01-003",)), _clear(60, level=Level.YELLOW, sensors=("w-d01-003",))])
    assert {a.level: a.state for a in alerts_of(store)} == {Level.RED: "closed", Level.YELLOW: "cleared"}


def test_a_crew_keeps_an_acknowledged_alert_when_the_condition_ends(store, intake, clock) -> None:  # noqa: ANN001
    intake.emit([det(t=0)])
    (a,) = alerts_of(store)
    with store.write() as s:
        transition(s, a.id, S.ACKNOWLEDGED, CREW, clock())
    intake.emit([_clear(300)])
    intake.emit([_clear(300)])  # told once
    (a,) = alerts_of(store)
    assert (a.state, a.version, a.ended_ns, a.open_key) == ("acknowledged", 2, T0_NS + 300 * 10**9, a.key)
    assert kinds(store, a.id, Outbox) == ["alert.raised", "alert.transition", "alert.condition_cleared"]
    intake.emit([det(t=900)])  # back while the crew works on it
    (a,) = alerts_of(store)
    assert (a.state, a.count, a.ended_ns) == ("acknowledged", 2, None)


def test_the_end_of_a_resolved_condition_is_recorded_for_the_control_room(store, intake, clock) -> None:  # noqa: ANN001
    intake.emit([det(t=0)])
    (a,) = alerts_of(store)
    for to, fb in ((S.ACKNOWLEDGED, None), (S.RESOLVED, Feedback(cause="c", action="a"))):
        with store.write() as s:
            transition(s, a.id, to, CREW, clock(), feedback=fb)
    intake.emit([det("end_pressure_low", "updated", t=100, start=0, score=7)])  # still reported after "resolved"
    intake.emit([_clear(400)])
    (a,) = alerts_of(store)
    assert (a.state, a.last_seen_ns, a.ended_ns, a.peak_score) == ("resolved", T0_NS + 400 * 10**9, T0_NS + 400 * 10**9, 7.0)
    assert kinds(store, a.id)[-1] == "condition_cleared"


def test_flapping_within_the_cool_down_reopens_the_same_alert(store, intake, clock) -> None:  # noqa: ANN001
    intake.emit([det(t=0, level=Level.RED), _clear(60, level=Level.RED)])
    clock.advance(100)
    intake.emit([det(t=300, level=Level.RED, score=6), _clear(330, start=300, level=Level.RED)])
    intake.emit([det(t=600, level=Level.RED)])
    (a,) = alerts_of(store)
    assert (a.state, a.count, a.flaps, a.version, a.peak_score) == ("new", 3, 2, 5, 6.0)
    assert kinds(store, a.id, Outbox) == ["alert.raised", "alert.transition", "alert.reopened", "alert.transition", "alert.reopened"]
    with store.read() as s:
        edges = s.execute(
            select(AuditEvent.from_state, AuditEvent.to_state).where(AuditEvent.alert_id == a.id, AuditEvent.kind == "transition")
        ).all()
    assert [tuple(e) for e in edges] == [("new", "cleared"), ("cleared", "new"), ("new", "cleared"), ("cleared", "new")]


@pytest.mark.parametrize("level,old_state", [(Level.RED, "cleared"), (Level.BLUE, "closed")])
def test_after_the_cool_down_a_new_alert_opens(store, intake, level, old_state) -> None:  # noqa: ANN001
    intake.emit([det(t=0, level=level), _clear(60, level=level)])
    intake.emit([det(t=60 + 601, level=level)])
    old, new = alerts_of(store)
    assert (old.state, old.open_key, old.count) == (old_state, None, 1)
    assert (new.state, new.open_key, new.count, new.flaps) == ("new", new.key, 1, 0)
    assert new.id != old.id and new.key == old.key


def test_a_resolved_condition_that_comes_back_opens_a_new_alert(store, intake, clock) -> None:  # noqa: ANN001
    intake.emit([det(t=0)])
    (a,) = alerts_of(store)
    for to, fb in ((S.ACKNOWLEDGED, None), (S.RESOLVED, Feedback(cause="c", action="a"))):
        with store.write() as s:
            transition(s, a.id, to, CREW, clock(), feedback=fb)
    intake.emit([det(t=3600)])
    old, new = alerts_of(store)
    assert (old.state, new.state, new.count) == ("resolved", "new", 1)


def test_routing_follows_the_city(store, intake, city) -> None:  # noqa: ANN001
    picks = {}
    for lifeline in ("water", "power", "gas", "bridge", "air"):
        sensor = next(s for s in city.sensors.values() if s.lifeline == lifeline and s.district == "d03")
        picks[lifeline] = sensor
        intake.emit([det("k", t=0, lifeline=lifeline, district="d03", sensors=(sensor.id,), asset=sensor.asset)])
    got = {a.lifeline: a.unit for a in alerts_of(store)}
    assert got == {lf: city.unit_for(lf, "d03").id for lf in picks}
    assert len(set(got.values())) == 5  # one unit per lifeline in Shihezi


def test_district_overrides_and_unknown_lifelines(store, city, settings, clock) -> None:  # noqa: ANN001
    special = Unit("water-d02", "Xiangyang water station", lifeline="water")
    c2 = dataclasses.replace(city, district_units={("water", "d02"): special})
    intake = AlertIntake(store, c2, settings, clock)
    intake.emit(
        [
            det(t=0, district="d02", sensors=("w-d02-003",), asset="dma-d02-1"),
            det(t=0, district="d01", sensors=("w-d01-003",)),
            det(t=0, lifeline="heating", district="d01", sensors=("h-1",), asset=None),
        ]
    )
    assert {(a.lifeline, a.district): a.unit for a in alerts_of(store)} == {
        ("water", "d02"): "water-d02",
        ("water", "d01"): UNIT_A,
        ("heating", "d01"): UNROUTED,
    }


def test_correlated_alerts_of_one_asset_form_an_incident(store, intake) -> None:  # noqa: ANN001
    intake.emit([det("end_pressure_low", t=0, sensors=("w-d01-002",), level=Level.YELLOW)])
    intake.emit([det("end_pressure_low", t=5, sensors=("w-d02-003",), district="d02", asset="dma-d02-1")])  # other asset
    intake.emit([det("inlet_flow_high", t=600, sensors=("w-d01-001",), level=Level.RED)])
    intake.emit([det("mnf_high", t=1200, sensors=("w-d01-001",), level=Level.ORANGE)])  # joins the open incident
    intake.emit([det("end_pressure_low", t=20, sensors=("w-d01-009",), asset=None)])  # no asset: never grouped
    with store.read() as s:
        (inc,) = s.scalars(select(Incident)).all()
        members = s.scalars(select(Alert.kind).where(Alert.incident_id == inc.id).order_by(Alert.first_seen_ns)).all()
        loners = s.scalars(select(Alert.asset).where(Alert.incident_id.is_(None)).order_by(Alert.first_seen_ns)).all()
    assert members == ["end_pressure_low", "inlet_flow_high", "mnf_high"]
    assert (inc.asset, inc.unit, inc.level, inc.alert_count) == ("dma-d01-1", UNIT_A, Level.RED, 3)
    assert (inc.first_seen_ns, inc.last_seen_ns) == (T0_NS, T0_NS + 1200 * 10**9)
    assert loners == ["dma-d02-1", None]  # t=5, t=20


def test_alerts_too_far_apart_are_not_grouped(store, intake, settings) -> None:  # noqa: ANN001
    gap = settings.incident_window + 1
    intake.emit([det("end_pressure_low", t=0), det("inlet_flow_high", t=gap, sensors=("w-d01-001",))])
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(Incident)) == 0


def _silence(store, clock, **kw) -> int:  # noqa: ANN001, ANN003
    window = {"starts_at": from_ns(T0_NS) - timedelta(hours=1), "ends_at": from_ns(T0_NS) + timedelta(hours=1)}
    with store.write() as s:
        x = create_silence(s, OPERATOR, clock(), reason="pipe replacement", max_duration=86400, **(window | kw))
        return x.id


def test_a_silenced_alert_is_recorded_but_never_pushed(store, intake, clock) -> None:  # noqa: ANN001
    sid = _silence(store, clock, scope="asset", target="dma-d01-1")
    intake.emit([det(t=0), det("end_pressure_low", "updated", t=600, start=0, level=Level.RED, score=9)])
    (a,) = alerts_of(store)
    assert (a.silenced, a.silence_id, a.next_reminder_at, a.level) == (True, sid, None, Level.RED)
    assert kinds(store, a.id) == ["raised", "silenced", "level_raised"]
    assert kinds(store, a.id, Outbox) == []
    with store.write() as s:  # people may still work it; nothing is pushed for a silenced alert
        transition(s, a.id, S.ACKNOWLEDGED, CREW, clock())
    assert kinds(store, a.id, Outbox) == []


def test_the_condition_outliving_its_silence_is_announced(store, intake, clock, settings) -> None:  # noqa: ANN001
    _silence(store, clock, scope="sensor", target="w-d01-002")
    intake.emit([det(t=0)])
    clock.advance(3000)
    intake.emit([det("end_pressure_low", "updated", t=3601, start=0, score=4)])  # the silence ended at T0 + 1 h
    (a,) = alerts_of(store)
    assert not a.silenced
    assert a.ack_due == clock() + timedelta(seconds=settings.ack_sla[Level.ORANGE])
    assert a.next_reminder_at == clock() + timedelta(seconds=settings.reminder_interval[Level.ORANGE])
    assert kinds(store, a.id, Outbox) == ["alert.unsilenced"]


def test_what_a_silence_covers(store, intake, clock) -> None:  # noqa: ANN001
    _silence(store, clock, scope="district", target="d01", lifeline="power")
    _silence(store, clock, scope="sensor", target="w-d01-005", kind="sensor_stuck")
    revoked = _silence(store, clock, scope="asset", target="dma-d01-2")
    with store.write() as s:
        revoke_silence(s, revoked, OPERATOR, clock())
    intake.emit(
        [
            det("voltage_low", t=0, lifeline="power", sensors=("p-d01-001",), asset="fdr-d01-1"),  # district + lifeline
            det("end_pressure_low", t=0, sensors=("w-d01-004",)),  # water in d01: not covered
            det("sensor_stuck", t=0, sensors=("w-d01-005",)),  # sensor + kind
            det("end_pressure_low", t=0, sensors=("w-d01-005",)),  # same sensor, other kind
            det("end_pressure_low", t=0, sensors=("w-d01-010",), asset="dma-d01-2"),  # revoked silence
            det("end_pressure_low", t=7201, sensors=("w-d01-006",), lifeline="power"),  # after the window
        ]
    )
    got = {(a.kind, a.sensors[0]): a.silenced for a in alerts_of(store)}
    assert got == {
        ("voltage_low", "p-d01-001"): True,
        ("end_pressure_low", "w-d01-004"): False,
        ("sensor_stuck", "w-d01-005"): True,
        ("end_pressure_low", "w-d01-005"): False,
        ("end_pressure_low", "w-d01-010"): False,
        ("end_pressure_low", "w-d01-006"): False,
    }


def test_one_bad_detection_does_not_lose_the_batch(store, intake) -> None:  # noqa: ANN001
    bad = det(t=5, sensors=("w-d01-003",))
    bad.state = "exploded"
    odd = det(t=6, sensors=("w-d01-004",), evidence={"value": float("nan"), "n": np.int64(3), "x": np.float32(0.5), "arr": np.arange(3)})
    intake.emit([det(t=0), bad, odd, det(t=7, sensors=("w-d01-006",))])
    assert sorted(a.sensors[0] for a in alerts_of(store)) == ["w-d01-002", "w-d01-004", "w-d01-006"]
    assert intake.counts["rejected"] == 1
    (o,) = [a for a in alerts_of(store) if a.sensors == ["w-d01-004"]]
    assert o.evidence == {"value": None, "n": 3, "x": 0.5, "arr": [0, 1, 2]} and o.peak_value is None


def test_an_unreachable_database_raises_a_store_error(city, clock) -> None:  # noqa: ANN001
    dead = Store(make_engine("postgresql://postgres@127.0.0.1:9/nowhere", connect_args={"connect_timeout": 2}))
    intake = AlertIntake(dead, city, AlertSettings(db_url="unused"), clock)
    with pytest.raises(StoreError):
        intake.emit([det()])


def test_a_level_raise_after_a_silence_counts_from_the_end_of_the_silence(store, intake, clock, settings) -> None:  # noqa: ANN001
    _silence(store, clock, scope="sensor", target="w-d01-002")  # until T0 + 1 h
    intake.emit([det(t=0, level=Level.YELLOW)])
    clock.advance(3600)
    intake.emit([det("end_pressure_low", "updated", t=3601, start=0, level=Level.YELLOW, score=4)])  # unsilenced
    unsilenced_at = clock()
    clock.advance(60)
    intake.emit([det("end_pressure_low", "updated", t=3700, start=0, level=Level.RED, score=9)])
    (a,) = alerts_of(store)
    assert a.ack_due == unsilenced_at + timedelta(seconds=settings.ack_sla[Level.RED])
    assert a.resolve_due == unsilenced_at + timedelta(seconds=settings.resolve_sla[Level.RED])
    assert a.next_reminder_at == clock() + timedelta(seconds=settings.reminder_interval[Level.RED])
