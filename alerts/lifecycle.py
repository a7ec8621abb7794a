"""Moving an alert along the state machine: atomic, audited, announced, with optimistic concurrency.

:func:`apply` is the only code that changes ``alerts.state``.  It checks the
edge and the role (:mod:`alerts.states`), the feedback a human must give,
then runs a compare-and-set::

    UPDATE alerts SET state = :to, version = version + 1, ...
     WHERE id = :id AND version = :read_version AND state = :read_state

If another writer got there first the UPDATE matches no row and the caller
gets :class:`~alerts.errors.VersionConflict` (HTTP 409): when two crews claim
the same alert, exactly one wins, on SQLite (writers serialised by ``BEGIN
IMMEDIATE``) and on PostgreSQL (the second UPDATE waits for the first's row
lock, then re-checks the WHERE against the committed row).  The audit row and
the outbox row go into the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from alerts.errors import Invalid, NotFound, VersionConflict
from alerts.journal import record
from alerts.models import Alert, Comment, Incident
from alerts.states import REQUIRED_FIELDS, TERMINAL_STATES, Action, AlertState, Role, check_transition
from alerts.types import Actor


@dataclass(frozen=True)
class Feedback:
    """What a person says when moving an alert (required fields: :data:`alerts.states.REQUIRED_FIELDS`)."""

    note: str | None = None
    cause: str | None = None
    action: str | None = None
    notes: str | None = None
    crew: list[str] = field(default_factory=list)

    def missing(self, act: Action) -> list[str]:
        return [name for name in REQUIRED_FIELDS.get(act, ()) if not _given(getattr(self, name))]


def _given(value: Any) -> bool:
    if isinstance(value, list):
        return any(str(v).strip() for v in value)
    return bool(value and str(value).strip())


def load_for(s: Session, alert_id: str, actor: Actor) -> Alert:
    """The alert if ``actor`` may see it; a crew of another unit gets NotFound, as for a missing id."""
    alert = s.get(Alert, alert_id, populate_existing=True)
    if alert is None or (actor.unit_scoped and alert.unit != actor.unit):
        raise NotFound(f"no alert {alert_id}")
    return alert


def transition(
    s: Session,
    alert_id: str,
    to: AlertState | str,
    actor: Actor,
    now: datetime,
    *,
    expected_version: int | None = None,
    feedback: Feedback | None = None,
) -> Alert:
    """A person's transition (the API's POST /api/alerts/{id}/transitions)."""
    return apply(s, load_for(s, alert_id, actor), to, actor, now, expected_version=expected_version, feedback=feedback)


def apply(
    s: Session,
    alert: Alert,
    to: AlertState | str,
    actor: Actor,
    now: datetime,
    *,
    expected_version: int | None = None,
    feedback: Feedback | None = None,
    event_ns: int | None = None,
    notify: str = "alert.transition",
    data: dict[str, Any] | None = None,
) -> Alert:
    to = AlertState(to)
    frm = AlertState(alert.state)
    read_version = alert.version
    if expected_version is not None and expected_version != read_version:
        raise VersionConflict(alert.id, expected_version, read_version, frm)
    act = check_transition(frm, to, actor.role)
    fb = feedback or Feedback()
    if actor.role is not Role.SYSTEM:
        missing = fb.missing(act)
        if missing:
            raise Invalid(f"{act} ({frm} -> {to}) needs: {', '.join(missing)}", fields=missing)

    values: dict[str, Any] = {"state": to.value, "version": read_version + 1, "updated_at": now}
    values.update(_effects(s, alert, act, actor, now, fb))
    result = s.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.version == read_version, Alert.state == frm.value)
        .values(**values)
        .execution_options(synchronize_session="evaluate")
    )
    if result.rowcount != 1:
        s.refresh(alert)
        raise VersionConflict(alert.id, expected_version if expected_version is not None else read_version, alert.version, alert.state)

    said = {"crew": values.get("crew"), "cause": fb.cause, "resolution_action": fb.action, "notes": fb.notes}
    details = {"action": act.value, **(data or {}), **{k: v for k, v in said.items() if v}}
    record(s, "transition", now, actor, alert=alert, from_state=frm, to_state=to, note=fb.note, data=details, event_ns=event_ns, notify=notify)
    if to in TERMINAL_STATES and alert.incident_id:
        _maybe_close_incident(s, alert.incident_id, now, actor)
    return alert


def _effects(s: Session, alert: Alert, act: Action, actor: Actor, now: datetime, fb: Feedback) -> dict[str, Any]:
    """The columns an action sets besides state, version and updated_at."""
    if act is Action.ACKNOWLEDGE:
        return {"acknowledged_at": now, "acknowledged_by": actor.name, "next_reminder_at": None}
    if act is Action.DISPATCH:
        return {"dispatched_at": now, "crew": [c.strip() for c in fb.crew if c.strip()]}
    if act is Action.RESOLVE:
        # the crew says it is fixed: a new raise of the condition now opens a new alert
        return {"resolved_at": now, "resolution": {"cause": fb.cause, "action": fb.action, "notes": fb.notes}, "open_key": None}
    if act is Action.REJECT:
        # back to the crew; take repeats again unless a newer alert holds the key meanwhile
        held = s.scalar(select(exists().where(Alert.open_key == alert.key)))
        return {"resolved_at": None, "resolution": None, **({} if held else {"open_key": alert.key})}
    if act in (Action.CLOSE, Action.FALSE_ALARM):
        return {"closed_at": now, "open_key": None, "next_reminder_at": None}
    if act is Action.CLEAR:
        return {"cleared_at": now, "next_reminder_at": None}
    if act is Action.REOPEN:
        return {"cleared_at": None, "ended_ns": None}
    raise AssertionError(f"no effects defined for {act}")  # the table and this function must agree


def _maybe_close_incident(s: Session, incident_id: str, now: datetime, actor: Actor) -> None:
    live = s.scalar(
        select(exists().where(Alert.incident_id == incident_id, Alert.state.not_in([st.value for st in TERMINAL_STATES])))
    )
    if live:
        return
    inc = s.get(Incident, incident_id)
    if inc is None or inc.closed_at is not None:
        return
    inc.closed_at = now
    inc.updated_at = now
    record(s, "incident_closed", now, actor, incident_id=inc.id, unit=inc.unit, data={"asset": inc.asset}, notify="incident.closed")


def comment(s: Session, alert: Alert, actor: Actor, now: datetime, text: str) -> Comment:
    text = text.strip()
    if not text:
        raise Invalid("an empty comment", fields=("text",))
    row = Comment(alert_id=alert.id, at=now, author=actor.name, role=str(actor.role), text=text)
    s.add(row)
    s.flush()
    record(s, "comment", now, actor, alert=alert, note=text, data={"comment_id": row.id}, notify="alert.comment")
    return row
