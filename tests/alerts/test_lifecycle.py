"""Transitions against the real database: every legal edge, every illegal one, audit and outbox rows, races."""

from __future__ import annotations

import itertools
import threading

import pytest
from sqlalchemy import func, select

import alerts.lifecycle as lifecycle
from alerts.errors import Conflict, IllegalTransition, Invalid, NotFound, NotPermitted, VersionConflict
from alerts.lifecycle import Feedback, apply, transition
from alerts.models import Alert, AuditEvent, Incident, Outbox
from alerts.states import PERMISSIONS, TRANSITIONS, AlertState, Role
from alerts.types import INTAKE, Actor
from tests.alerts.helpers import UNIT_A, UNIT_B, det, race

S = AlertState
CREW = Actor("crew-a", Role.CREW, UNIT_A)
OTHER_CREW = Actor("crew-b", Role.CREW, UNIT_B)
OPERATOR = Actor("op", Role.OPERATOR)
FULL = Feedback(note="checked on site", cause="joint failure", action="clamp fitted", notes="pipe DN200", crew=["Li Wei", "Ma Lin"])
# how an alert reaches each state: (to, actor) steps after it is raised
PATHS = {
    S.NEW: [],
    S.ACKNOWLEDGED: [(S.ACKNOWLEDGED, CREW)],
    S.DISPATCHED: [(S.ACKNOWLEDGED, CREW), (S.DISPATCHED, CREW)],
    S.RESOLVED: [(S.ACKNOWLEDGED, CREW), (S.DISPATCHED, CREW), (S.RESOLVED, CREW)],
    S.CLOSED: [(S.ACKNOWLEDGED, CREW), (S.RESOLVED, CREW), (S.CLOSED, OPERATOR)],
    S.FALSE_ALARM: [(S.FALSE_ALARM, OPERATOR)],
    S.CLEARED: "clear",
}
_serial = itertools.count()


def make_alert(store, intake, clock, state: AlertState) -> str:  # noqa: ANN001
    """A fresh alert (its own sensor, so its own key) walked to ``state``."""
    i = next(_serial)
    sensor = f"w-d01-{900 + i:03d}"
    intake.emit([det(sensors=(sensor,), asset=None, t=i)])
    with store.read() as s:
        alert_id = s.scalar(select(Alert.id).where(Alert.sensors.is_not(None), Alert.key == f"water:{sensor}:end_pressure_low"))
    if PATHS[state] == "clear":
        intake.emit([det("end_pressure_low", "cleared", sensors=(sensor,), asset=None, t=i + 1, start=i, end=i + 1)])
    else:
        for to, actor in PATHS[state]:
            with store.write() as s:
                transition(s, alert_id, to, actor, clock(), feedback=FULL)
    with store.read() as s:
        assert s.get(Alert, alert_id).state == state
    return alert_id


def counts(store, alert_id: str) -> tuple[int, int, int]:  # noqa: ANN001
    with store.read() as s:
        audit = s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.alert_id == alert_id))
        outbox = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.alert_id == alert_id))
        version = s.get(Alert, alert_id).version
    return audit, outbox, version


@pytest.fixture
def no_auto_close(intake):  # noqa: ANN001, ANN201
    """Cleared alerts stay cleared (no level closes itself)."""
    intake.settings = intake.settings.replace(auto_close=frozenset())
    return intake


def test_every_legal_transition_is_audited_and_announced(store, no_auto_close, clock) -> None:  # noqa: ANN001
    intake = no_auto_close
    for (frm, to), action in TRANSITIONS.items():
        alert_id = make_alert(store, intake, clock, frm)
        roles = PERMISSIONS[action]
        actor = next((a for a in (CREW, OPERATOR, Actor("sup", Role.SUPERVISOR), Actor("adm", Role.ADMIN)) if a.role in roles), INTAKE)
        audit0, outbox0, version0 = counts(store, alert_id)
        clock.advance(7)
        with store.write() as s:
            a = transition(s, alert_id, to, actor, clock(), expected_version=version0, feedback=FULL)
            assert a.state == to
        audit1, outbox1, version1 = counts(store, alert_id)
        assert (audit1 - audit0, outbox1 - outbox0, version1 - version0) == (1, 1, 1), (frm, to)
        with store.read() as s:
            row = s.scalars(select(AuditEvent).where(AuditEvent.alert_id == alert_id).order_by(AuditEvent.id.desc())).first()
            out = s.scalars(select(Outbox).where(Outbox.alert_id == alert_id).order_by(Outbox.id.desc())).first()
            alert = s.get(Alert, alert_id)
        assert (row.kind, row.from_state, row.to_state, row.actor, row.role) == ("transition", frm, to, actor.name, actor.role)
        assert row.at == clock() and row.data["action"] == action.value
        assert out.kind == "alert.transition" and out.payload["from"] == frm and out.payload["to"] == to
        assert out.payload["alert"]["state"] == to and out.payload["alert"]["version"] == version1
        assert alert.updated_at == clock()


def test_every_illegal_transition_names_both_states(store, no_auto_close, clock) -> None:  # noqa: ANN001
    admin = Actor("adm", Role.ADMIN)
    for frm in AlertState:
        alert_id = make_alert(store, no_auto_close, clock, frm)
        before = counts(store, alert_id)
        for to in AlertState:
            if (frm, to) in TRANSITIONS:
                continue
            with pytest.raises(IllegalTransition) as ei:
                with store.write() as s:
                    transition(s, alert_id, to, admin, clock(), feedback=FULL)
            assert (ei.value.from_state, ei.value.to_state) == (frm.value, to.value)
            assert f"{frm.value} -> {to.value}" in str(ei.value)
        assert counts(store, alert_id) == before  # nothing written


def test_effects_of_each_step(store, intake, clock) -> None:  # noqa: ANN001
    alert_id = make_alert(store, intake, clock, S.NEW)
    t_ack = clock.advance(60)
    with store.write() as s:
        a = transition(s, alert_id, S.ACKNOWLEDGED, CREW, t_ack)
        assert (a.acknowledged_at, a.acknowledged_by, a.next_reminder_at) == (t_ack, "crew-a", None)
    with store.write() as s:
        a = transition(s, alert_id, S.DISPATCHED, CREW, clock.advance(60), feedback=Feedback(crew=[" Li Wei ", ""]))
        assert a.crew == ["Li Wei"]
    with store.write() as s:
        a = transition(s, alert_id, S.RESOLVED, CREW, clock.advance(60), feedback=Feedback(cause="c", action="a"))
        assert a.resolution == {"cause": "c", "action": "a", "notes": None}
        assert a.open_key is None  # a new raise of the condition now opens a new alert
    with store.write() as s:
        a = transition(s, alert_id, S.DISPATCHED, OPERATOR, clock.advance(60), feedback=Feedback(note="still leaking"))
        assert (a.resolved_at, a.resolution, a.open_key) == (None, None, a.key)  # sent back: takes repeats again
    with store.write() as s:
        transition(s, alert_id, S.RESOLVED, CREW, clock.advance(60), feedback=Feedback(cause="c2", action="a2"))
    t_close = clock.advance(60)
    with store.write() as s:
        a = transition(s, alert_id, S.CLOSED, OPERATOR, t_close)
        assert (a.closed_at, a.open_key, a.version) == (t_close, None, 7)
        assert a.resolution["cause"] == "c2"
    with store.read() as s:
        said = [e.data for e in s.scalars(select(AuditEvent).where(AuditEvent.kind == "transition").order_by(AuditEvent.id))]
    assert said[1] == {"action": "dispatch", "crew": ["Li Wei"]}
    assert said[2] == {"action": "resolve", "cause": "c", "resolution_action": "a"}
    assert said[3] == {"action": "reject"}


@pytest.mark.parametrize(
    "steps,missing",
    [
        ([(S.ACKNOWLEDGED, Feedback())], None),
        ([(S.ACKNOWLEDGED, Feedback()), (S.DISPATCHED, Feedback(crew=["  "]))], "crew"),
        ([(S.ACKNOWLEDGED, Feedback()), (S.RESOLVED, Feedback(cause="x"))], "action"),
        ([(S.ACKNOWLEDGED, Feedback()), (S.RESOLVED, Feedback(action="x", notes="n"))], "cause"),
        ([(S.FALSE_ALARM, Feedback(note=" "))], "note"),
    ],
)
def test_required_feedback(store, intake, clock, steps, missing) -> None:  # noqa: ANN001
    alert_id = make_alert(store, intake, clock, S.NEW)
    admin = Actor("adm", Role.ADMIN)
    *ok, (to, fb) = steps
    for st, f in ok:
        with store.write() as s:
            transition(s, alert_id, st, admin, clock(), feedback=f)
    if missing is None:
        with store.write() as s:
            assert transition(s, alert_id, to, admin, clock(), feedback=fb).state == to
        return
    with pytest.raises(Invalid, match=missing):
        with store.write() as s:
            transition(s, alert_id, to, admin, clock(), feedback=fb)


def test_roles_and_unit_scope(store, intake, clock) -> None:  # noqa: ANN001
    alert_id = make_alert(store, intake, clock, S.NEW)
    with pytest.raises(NotFound):  # another unit's crew does not even learn that it exists
        with store.write() as s:
            transition(s, alert_id, S.ACKNOWLEDGED, OTHER_CREW, clock())
    with pytest.raises(NotFound):
        with store.write() as s:
            transition(s, "no-such-alert", S.ACKNOWLEDGED, CREW, clock())
    for actor in (OPERATOR, Actor("e", Role.ENGINEER), Actor("r", Role.READ_ONLY)):
        with pytest.raises(NotPermitted):
            with store.write() as s:
                transition(s, alert_id, S.ACKNOWLEDGED, actor, clock())
    with pytest.raises(NotPermitted):
        with store.write() as s:
            transition(s, alert_id, S.FALSE_ALARM, CREW, clock(), feedback=FULL)
    with pytest.raises(NotPermitted):  # system edges are the system's, even for an admin
        with store.write() as s:
            transition(s, alert_id, S.CLEARED, Actor("adm", Role.ADMIN), clock())
    assert counts(store, alert_id)[2] == 1


def test_stale_expected_version_is_a_conflict(store, intake, clock) -> None:  # noqa: ANN001
    alert_id = make_alert(store, intake, clock, S.ACKNOWLEDGED)
    with pytest.raises(VersionConflict) as ei:
        with store.write() as s:
            transition(s, alert_id, S.DISPATCHED, CREW, clock(), expected_version=1, feedback=FULL)
    assert (ei.value.expected, ei.value.actual, ei.value.state) == (1, 2, "acknowledged")


@pytest.mark.parametrize("expected_version", [1, None])
def test_two_crews_claiming_one_alert_exactly_one_wins(store, intake, clock, monkeypatch, expected_version) -> None:  # noqa: ANN001
    """Both read version 1, then both try to write (a barrier holds them between read and write where the backend allows)."""
    crews = [Actor("crew-a1", Role.CREW, UNIT_A), Actor("crew-a2", Role.CREW, UNIT_A)]
    real_check = lifecycle.check_transition
    pg = store.dialect == "postgresql"
    for _round in range(3):
        alert_id = make_alert(store, intake, clock, S.NEW)
        barrier = threading.Barrier(2)

        def held_check(*args, _barrier=barrier):  # noqa: ANN002, ANN202
            try:  # on PostgreSQL both get here; on SQLite the second waits for the writer lock instead
                _barrier.wait(timeout=10 if pg else 0.05)
            except threading.BrokenBarrierError:
                pass
            return real_check(*args)

        monkeypatch.setattr(lifecycle, "check_transition", held_check)

        def claim(actor: Actor, alert_id: str = alert_id) -> str:
            with store.write() as s:
                transition(s, alert_id, S.ACKNOWLEDGED, actor, clock(), expected_version=expected_version)
            return actor.name

        results = race(*(lambda c=c: claim(c) for c in crews))
        winners = [r for r in results if isinstance(r, str)]
        losers = [r for r in results if not isinstance(r, str)]
        assert len(winners) == 1 and len(losers) == 1, results
        assert isinstance(losers[0], Conflict), losers
        if pg:  # both had read version 1 before either wrote: only the compare-and-set stopped the loser
            assert not barrier.broken
        with store.read() as s:
            a = s.get(Alert, alert_id)
            acks = s.scalars(
                select(AuditEvent.actor).where(AuditEvent.alert_id == alert_id, AuditEvent.to_state == "acknowledged")
            ).all()
        assert (a.state, a.version, a.acknowledged_by, acks) == ("acknowledged", 2, winners[0], [winners[0]])


def test_incident_closes_when_its_last_member_is_done(store, intake, clock) -> None:  # noqa: ANN001
    intake.emit([det(t=0), det("inlet_flow_high", t=60, sensors=("w-d01-001",))])
    with store.read() as s:
        inc = s.scalars(select(Incident)).one()
        members = s.scalars(select(Alert.id).where(Alert.incident_id == inc.id).order_by(Alert.id)).all()
    assert len(members) == 2
    with store.write() as s:
        transition(s, members[0], S.FALSE_ALARM, OPERATOR, clock(), feedback=Feedback(note="sensor test"))
    with store.read() as s:
        assert s.get(Incident, inc.id).closed_at is None
    with store.write() as s:
        transition(s, members[1], S.FALSE_ALARM, OPERATOR, clock.advance(5), feedback=Feedback(note="sensor test"))
    with store.read() as s:
        assert s.get(Incident, inc.id).closed_at == clock()
        assert s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.kind == "incident_closed")) == 1


def test_comment_is_stored_and_audited(store, intake, clock) -> None:  # noqa: ANN001
    alert_id = make_alert(store, intake, clock, S.NEW)
    with store.write() as s:
        row = lifecycle.comment(s, s.get(Alert, alert_id), CREW, clock(), "  valve V12 closed  ")
    assert row.text == "valve V12 closed"
    with store.read() as s:
        ev = s.scalars(select(AuditEvent).where(AuditEvent.kind == "comment")).one()
        assert (ev.alert_id, ev.note, ev.data["comment_id"]) == (alert_id, "valve V12 closed", row.id)
    with pytest.raises(Invalid):
        with store.write() as s:
            lifecycle.comment(s, s.get(Alert, alert_id), CREW, clock(), "   ")


def test_system_apply_needs_no_feedback(store, intake, clock) -> None:  # noqa: ANN001
    alert_id = make_alert(store, intake, clock, S.NEW)
    with store.write() as s:
        assert apply(s, s.get(Alert, alert_id), S.CLEARED, INTAKE, clock()).state == S.CLEARED
