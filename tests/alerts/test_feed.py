"""The audit-trail cursor behind /api/stream: new events once each, late commits caught, nothing from before the start."""

from __future__ import annotations

from sqlalchemy import select

from alerts.feed import Cursor, head
from alerts.models import AuditEvent
from alerts.states import Role
from alerts.types import Actor
from tests.alerts.helpers import UNIT_A, det

OPERATOR = Actor("op", Role.OPERATOR)


def test_each_event_once_and_only_those_after_the_start(store, intake) -> None:  # noqa: ANN001
    intake.emit([det(t=0), det(t=1, sensors=("w-d01-003",), asset=None)])
    with store.read() as s:
        start = head(s)
    cur = Cursor(start)
    with store.read() as s:
        assert cur.poll(s, OPERATOR) == []
    intake.emit([det(t=2, sensors=("w-d01-004",), asset=None)])
    with store.read() as s:
        first = cur.poll(s, OPERATOR)
        again = cur.poll(s, OPERATOR)
    assert [e["kind"] for e in first] == ["raised"] and first[0]["id"] > start and again == []
    intake.emit([det(t=3, sensors=("w-d01-005",), asset=None)])
    with store.read() as s:
        assert [e["alert"]["sensors"] for e in cur.poll(s, OPERATOR)] == [["w-d01-005"]]


def test_an_event_committed_late_with_a_lower_id_is_still_sent(store, intake) -> None:  # noqa: ANN001
    """PostgreSQL can make id 10 visible after id 11; the cursor re-reads a window below its high mark."""
    intake.emit([det(t=i, sensors=(f"w-d01-{i:03d}",), asset=None) for i in range(4)])
    with store.read() as s:
        ids = s.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
    cur = Cursor(ids[0] - 1)
    cur.sent = {ids[0], ids[-1]}  # as if the last had arrived and the ones between were still uncommitted
    cur.high = ids[-1]
    with store.read() as s:
        late = [e["id"] for e in cur.poll(s, OPERATOR)]
    assert late == ids[1:-1] and len(late) == 2


def test_a_crew_gets_its_own_unit_only(store, intake) -> None:  # noqa: ANN001
    intake.emit([det(t=0), det("voltage_low", t=1, lifeline="power", sensors=("p-d01-001",), asset="fdr-d01-1")])
    evs = Cursor(0).poll
    with store.read() as s:
        crew = evs(s, Actor("c", Role.CREW, UNIT_A))
        everyone = Cursor(0).poll(s, OPERATOR)
    assert {e["unit"] for e in crew} == {UNIT_A} and {e["unit"] for e in everyone} == {UNIT_A, "shz-power"}
