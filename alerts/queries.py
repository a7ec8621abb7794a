"""Read side of the queue: the filtered, sorted, paged lists the API and the console show.

The default order is the control room's: most severe level first, then the
oldest (longest waiting) first.  Every query takes the caller's
:class:`~alerts.types.Actor`; a crew only ever sees its own unit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from alerts.errors import NotFound, NotPermitted
from alerts.models import Alert, AuditEvent, Comment, Incident
from alerts.states import OPEN_STATES, AlertState
from alerts.types import Actor
from lifewatch.levels import Level


class AlertSort(StrEnum):
    LEVEL = "level"  # most severe first, then oldest first
    AGE = "age"  # oldest first
    NEWEST = "newest"
    LAST_SEEN = "last_seen"  # most recently active first


@dataclass(frozen=True)
class AlertFilter:
    states: Sequence[AlertState] = ()  # empty = the open states
    levels: Sequence[Level] = ()
    lifeline: str | None = None
    district: str | None = None
    unit: str | None = None
    incident: str | None = None
    asset: str | None = None
    silenced: bool | None = None
    sort: AlertSort = AlertSort.LEVEL
    limit: int = 50
    offset: int = 0


def scope_unit(actor: Actor, unit: str | None) -> str | None:
    """The unit a query is limited to: a crew's own, whatever it asked for (asking for another is refused)."""
    if not actor.unit_scoped:
        return unit
    if unit is not None and unit != actor.unit:
        raise NotPermitted(f"a crew of {actor.unit} sees only its own unit's alerts")
    return actor.unit


def list_alerts(s: Session, actor: Actor, f: AlertFilter) -> tuple[list[Alert], int]:
    states = [st.value for st in (f.states or OPEN_STATES)]
    conds = [Alert.state.in_(states)]
    unit = scope_unit(actor, f.unit)
    if unit is not None:
        conds.append(Alert.unit == unit)
    if f.levels:
        conds.append(Alert.level.in_([lv.value for lv in f.levels]))
    for column, value in ((Alert.lifeline, f.lifeline), (Alert.district, f.district), (Alert.incident_id, f.incident), (Alert.asset, f.asset)):
        if value is not None:
            conds.append(column == value)
    if f.silenced is not None:
        conds.append(Alert.silenced.is_(f.silenced))
    where = and_(*conds)
    total = s.scalar(select(func.count()).select_from(Alert).where(where)) or 0
    order = {
        AlertSort.LEVEL: (Alert.level, Alert.created_at, Alert.id),
        AlertSort.AGE: (Alert.created_at, Alert.id),
        AlertSort.NEWEST: (Alert.created_at.desc(), Alert.id.desc()),
        AlertSort.LAST_SEEN: (Alert.last_seen_ns.desc(), Alert.id),
    }[f.sort]
    rows = s.scalars(select(Alert).where(where).order_by(*order).limit(f.limit).offset(f.offset))
    return list(rows), total


def timeline(s: Session, alert_id: str) -> list[AuditEvent]:
    return list(s.scalars(select(AuditEvent).where(AuditEvent.alert_id == alert_id).order_by(AuditEvent.id)))


def comments(s: Session, alert_id: str) -> list[Comment]:
    return list(s.scalars(select(Comment).where(Comment.alert_id == alert_id).order_by(Comment.id)))


def list_incidents(
    s: Session, actor: Actor, *, open_only: bool | None = True, lifeline: str | None = None, district: str | None = None,
    unit: str | None = None, limit: int = 50, offset: int = 0,
) -> tuple[list[Incident], int]:
    conds = []
    unit = scope_unit(actor, unit)
    if unit is not None:
        conds.append(Incident.unit == unit)
    if open_only is True:
        conds.append(Incident.closed_at.is_(None))
    elif open_only is False:
        conds.append(Incident.closed_at.is_not(None))
    if lifeline is not None:
        conds.append(Incident.lifeline == lifeline)
    if district is not None:
        conds.append(Incident.district == district)
    where = and_(True, *conds)
    total = s.scalar(select(func.count()).select_from(Incident).where(where)) or 0
    rows = s.scalars(select(Incident).where(where).order_by(Incident.level, Incident.created_at, Incident.id).limit(limit).offset(offset))
    return list(rows), total


def get_incident(s: Session, actor: Actor, incident_id: str) -> tuple[Incident, list[Alert]]:
    inc = s.get(Incident, incident_id)
    if inc is None or (actor.unit_scoped and inc.unit != actor.unit):
        raise NotFound(f"no incident {incident_id}")
    members = list(s.scalars(select(Alert).where(Alert.incident_id == inc.id).order_by(Alert.first_seen_ns, Alert.id)))
    return inc, members

