"""SLA timers with a fake clock: reminders until acknowledged, escalation once per breached SLA."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from alerts.escalation import Escalator
from alerts.lifecycle import transition
from alerts.models import Alert, AuditEvent, Outbox
from alerts.states import AlertState, Role
from alerts.types import Actor
from lifewatch.levels import Level
from tests.alerts.helpers import UNIT_A, det, race

CREW = Actor("crew-a", Role.CREW, UNIT_A)


def rows(store, kind: str, table=AuditEvent):  # noqa: ANN001, ANN201
    with store.read() as s:
        return list(s.scalars(select(table).where(table.kind == kind).order_by(table.id)))


def test_reminders_repeat_until_acknowledged_and_the_ack_sla_escalates_once(store, intake, settings, clock) -> None:  # noqa: ANN001
    esc = Escalator(store, settings, clock)
    start = clock()
    intake.emit([det(level=Level.ORANGE)])  # orange: reminders every 300 s, acknowledge within 900 s
    seen = []
    for offset in (299, 300, 400, 600, 899, 900, 1000, 1200):
        clock.now = start + timedelta(seconds=offset)
        done = esc.tick()
        seen.append((offset, done["reminders"], done["escalations"]))
    assert seen == [(299, 0, 0), (300, 1, 0), (400, 0, 0), (600, 1, 0), (899, 0, 0), (900, 1, 1), (1000, 0, 0), (1200, 1, 0)]
    (a,) = _alerts(store)
    with store.write() as s:
        transition(s, a.id, AlertState.ACKNOWLEDGED, CREW, clock())
    for offset in (1500, 1800, 3600):
        clock.now = start + timedelta(seconds=offset)
        assert esc.tick()["reminders"] == 0
    reminders = rows(store, "alert.reminder", Outbox)
    assert [r.payload["reminder"] for r in reminders] == [1, 2, 3, 4]
    (esc_row,) = rows(store, "alert.escalated", Outbox)
    assert (esc_row.payload["sla"], esc_row.payload["target_role"], esc_row.payload["overdue_s"]) == ("acknowledge", "supervisor", 0.0)
    (audit,) = rows(store, "escalation")
    assert (audit.actor, audit.role, audit.alert_id, audit.at) == ("escalation", "system", a.id, start + timedelta(seconds=900))


def test_one_reminder_after_a_long_pause_not_a_burst(store, intake, settings, clock) -> None:  # noqa: ANN001
    esc = Escalator(store, settings, clock)
    intake.emit([det(level=Level.RED)])  # red: every 120 s
    clock.advance(10_000)
    assert esc.tick()["reminders"] == 1
    (a,) = _alerts(store)
    assert a.next_reminder_at == clock() + timedelta(seconds=120) and a.reminders == 1


def test_the_resolution_sla_escalates_owned_alerts(store, intake, settings, clock) -> None:  # noqa: ANN001
    esc = Escalator(store, settings, clock)
    start = clock()
    intake.emit([det(level=Level.RED)])  # resolve within 2 h
    (a,) = _alerts(store)
    clock.advance(60)
    with store.write() as s:
        transition(s, a.id, AlertState.ACKNOWLEDGED, CREW, clock())
    clock.now = start + timedelta(hours=2) - timedelta(seconds=1)
    assert esc.tick()["escalations"] == 0
    clock.advance(1)
    assert esc.tick()["escalations"] == 1
    clock.advance(3600)
    assert esc.tick()["escalations"] == 0
    (row,) = rows(store, "alert.escalated", Outbox)
    assert (row.payload["sla"], row.payload["alert"]["state"]) == ("resolve", "acknowledged")
    (a,) = _alerts(store)
    assert a.resolve_escalated_at == start + timedelta(hours=2) and a.ack_escalated_at is None


def test_silenced_cleared_and_finished_alerts_have_no_timers(store, intake, settings, clock) -> None:  # noqa: ANN001
    from alerts.clock import from_ns
    from alerts.silences import create
    from tests.alerts.helpers import T0_NS

    with store.write() as s:
        create(s, Actor("op", Role.OPERATOR), clock(), scope="sensor", target="w-d01-002", reason="works",
               starts_at=from_ns(T0_NS), ends_at=from_ns(T0_NS) + timedelta(hours=1), max_duration=86400)
    st = settings.replace(auto_close=frozenset())
    intake.settings = st
    intake.emit([det(level=Level.RED)])  # silenced
    intake.emit([det(level=Level.RED, sensors=("w-d01-003",)), det("end_pressure_low", "cleared", t=5, start=0, end=5, sensors=("w-d01-003",))])
    clock.advance(30 * 86400)
    done = Escalator(store, st, clock).tick()
    assert (done["reminders"], done["escalations"], done["auto_closed"]) == (0, 0, 0)
    assert {a.state for a in _alerts(store)} == {"new", "cleared"}


def test_cleared_alerts_auto_close_by_wall_time_too(store, intake, settings, clock) -> None:  # noqa: ANN001
    intake.emit([det(level=Level.BLUE), det("end_pressure_low", "cleared", t=5, start=0, end=5, level=Level.BLUE)])
    esc = Escalator(store, settings, clock)
    clock.advance(settings.reopen_cooldown - 1)
    assert esc.tick()["auto_closed"] == 0
    clock.advance(1)
    assert esc.tick()["auto_closed"] == 1
    (a,) = _alerts(store)
    assert (a.state, a.closed_at) == ("closed", clock())


def test_two_tickers_at_once_send_each_reminder_once(store, intake, settings, clock) -> None:  # noqa: ANN001
    intake.emit([det(level=Level.RED, sensors=(f"w-d01-{i:03d}",), asset=None) for i in range(10, 30)])
    clock.advance(121)
    tickers = [Escalator(store, settings, clock) for _ in range(3)]
    results = race(*(t.tick for t in tickers))
    assert sum(r["reminders"] for r in results) == 20, results
    assert len(rows(store, "alert.reminder", Outbox)) == 20


def _alerts(store) -> list[Alert]:  # noqa: ANN001
    with store.read() as s:
        return list(s.scalars(select(Alert).order_by(Alert.created_at, Alert.id)))
