"""The two records every change leaves: an audit row (always) and an outbox row (when someone must be told).

Both are written in the caller's transaction, so a change, its audit row and
its notification commit together or not at all.  Alerts under a silence are
audited but never reach the outbox.

Outbox kinds (``outbox.kind``; the payload always holds ``event`` and ``alert``)::

    alert.raised            a new alert entered the queue
    alert.transition        a state change (payload: from, to, actor, role, note)
    alert.reopened          a cleared alert raised again within the cool-down
    alert.level_raised      the condition got more severe (payload: from_level, to_level)
    alert.condition_cleared the condition ended while a crew owns the alert
    alert.reminder          still not acknowledged (payload: reminder number)
    alert.escalated         an SLA was breached (payload: sla = acknowledge|resolve, target_role = supervisor)
    alert.unsilenced        the condition outlived its silence
    alert.comment           someone commented (payload: note = the text)
    incident.created        alerts of one asset were grouped (payload: incident_id, asset, level, alerts)
    incident.closed         the last member of an incident was closed (payload: incident_id, asset)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from alerts.models import Alert, AuditEvent, Outbox
from alerts.types import Actor, jsonable
from lifewatch.levels import Level
from lifewatch.model import format_ts


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat().replace("+00:00", "Z") if dt is not None else None


def ns_iso(ns: int | None) -> str | None:
    return format_ts(ns) if ns is not None else None


def alert_doc(a: Alert, *, evidence: bool = False) -> dict[str, Any]:
    """The public JSON form of an alert (API responses and outbox payloads)."""
    doc: dict[str, Any] = {
        "id": a.id,
        "key": a.key,
        "kind": a.kind,
        "detector": a.detector,
        "lifeline": a.lifeline,
        "district": a.district,
        "asset": a.asset,
        "sensors": list(a.sensors or []),
        "metric": a.metric,
        "unit": a.unit,
        "level": Level(a.level).label,
        "state": a.state,
        "silenced": bool(a.silenced),
        "count": a.count,
        "flaps": a.flaps,
        "first_seen": ns_iso(a.first_seen_ns),
        "last_seen": ns_iso(a.last_seen_ns),
        "ended": ns_iso(a.ended_ns),
        "peak_score": a.peak_score,
        "peak_value": a.peak_value,
        "incident_id": a.incident_id,
        "version": a.version,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
        "ack_due": iso(a.ack_due),
        "resolve_due": iso(a.resolve_due),
        "reminders": a.reminders,
        "ack_escalated_at": iso(a.ack_escalated_at),
        "resolve_escalated_at": iso(a.resolve_escalated_at),
        "acknowledged_at": iso(a.acknowledged_at),
        "acknowledged_by": a.acknowledged_by,
        "dispatched_at": iso(a.dispatched_at),
        "crew": a.crew,
        "resolved_at": iso(a.resolved_at),
        "resolution": a.resolution,
        "cleared_at": iso(a.cleared_at),
        "closed_at": iso(a.closed_at),
    }
    if evidence:
        doc["evidence"] = a.evidence
    return doc


def record(
    s: Session,
    kind: str,
    at: datetime,
    actor: Actor,
    *,
    alert: Alert | None = None,
    from_state: str | None = None,
    to_state: str | None = None,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    event_ns: int | None = None,
    incident_id: str | None = None,
    unit: str | None = None,
    notify: str | None = None,
) -> AuditEvent:
    """Append an audit row; with ``notify``, also an outbox row of that kind (unless the alert is silenced)."""
    data = jsonable(data or {})
    row = AuditEvent(
        at=at,
        kind=kind,
        alert_id=alert.id if alert is not None else None,
        incident_id=incident_id if incident_id is not None else (alert.incident_id if alert is not None else None),
        unit=unit if unit is not None else (alert.unit if alert is not None else None),
        actor=actor.name,
        role=str(actor.role),
        from_state=from_state,
        to_state=to_state,
        note=note,
        data=data,
        event_ns=event_ns,
    )
    s.add(row)
    if notify and not (alert is not None and alert.silenced):
        payload: dict[str, Any] = {"event": kind, "actor": actor.name, "role": str(actor.role), "at": iso(at), **data}
        if row.incident_id is not None:
            payload["incident_id"] = row.incident_id
        if from_state or to_state:
            payload.update({"from": from_state, "to": to_state})
        if note:
            payload["note"] = note
        if alert is not None:
            payload["alert"] = alert_doc(alert, evidence=notify == "alert.raised")
        s.add(
            Outbox(
                created_at=at,
                kind=notify,
                alert_id=alert.id if alert is not None else None,
                unit=row.unit,
                level=alert.level if alert is not None else None,
                payload=jsonable(payload),
                attempts=0,
            )
        )
    return row
