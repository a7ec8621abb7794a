"""The change feed behind ``/api/stream``: the audit trail read in id order.

Every change to the queue writes an audit row, and audit ids only grow, so
"what changed since event N" is ``SELECT ... WHERE id > N``.  One catch on
PostgreSQL: ids are taken when a row is inserted, not when its transaction
commits, so id 10 may become visible after id 11.  The cursor therefore
re-reads a window of :data:`LOOKBACK` ids below the highest it has seen and
skips those it already sent; a row is missed only if its transaction commits
more than ``LOOKBACK`` audit rows late (our transactions last milliseconds).

User and token events are not part of the feed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from alerts.journal import alert_doc, iso
from alerts.models import Alert, AuditEvent
from alerts.types import Actor

LOOKBACK = 256
PRIVATE_KINDS = ("user_added", "token_issued", "token_revoked")


def head(s: Session) -> int:
    """The newest audit id (a stream without Last-Event-ID starts here)."""
    return s.scalar(select(func.max(AuditEvent.id))) or 0


class Cursor:
    """Where one stream is: the events after ``after`` not sent yet."""

    def __init__(self, after: int):
        self.start = after
        self.high = after
        self.sent: set[int] = set()

    def poll(self, s: Session, actor: Actor, limit: int = 500) -> list[dict[str, Any]]:
        floor = max(self.start, self.high - LOOKBACK)
        q = select(AuditEvent).where(AuditEvent.id > floor, AuditEvent.kind.not_in(PRIVATE_KINDS))
        if actor.unit_scoped:
            q = q.where(AuditEvent.unit == actor.unit)
        rows = [r for r in s.scalars(q.order_by(AuditEvent.id).limit(limit)) if r.id not in self.sent]
        if not rows:
            return []
        alerts = {a.id: a for a in s.scalars(select(Alert).where(Alert.id.in_({r.alert_id for r in rows if r.alert_id})))}
        out = []
        for r in rows:
            self.sent.add(r.id)
            self.high = max(self.high, r.id)
            a = alerts.get(r.alert_id) if r.alert_id else None
            out.append(
                {
                    "id": r.id,
                    "kind": r.kind,
                    "at": iso(r.at),
                    "alert_id": r.alert_id,
                    "incident_id": r.incident_id,
                    "unit": r.unit,
                    "actor": r.actor,
                    "role": r.role,
                    "from": r.from_state,
                    "to": r.to_state,
                    "note": r.note,
                    "data": r.data,
                    "alert": alert_doc(a) if a is not None else None,
                }
            )
        self.sent = {i for i in self.sent if i > self.high - LOOKBACK}
        return out
