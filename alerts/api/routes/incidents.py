"""/api/incidents: correlated alerts of one asset."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from alerts import queries
from alerts.api.deps import Reader, SessionDep
from alerts.api.schemas import AlertPublic, IncidentDetail, IncidentPage, IncidentPublic
from alerts.journal import alert_doc, iso, ns_iso
from alerts.models import Incident
from lifewatch.levels import Level

router = APIRouter(prefix="/api/incidents", tags=["incidents"])


def incident_doc(inc: Incident) -> dict:
    return {
        "id": inc.id,
        "asset": inc.asset,
        "lifeline": inc.lifeline,
        "district": inc.district,
        "unit": inc.unit,
        "level": Level(inc.level).label,
        "alert_count": inc.alert_count,
        "first_seen": ns_iso(inc.first_seen_ns),
        "last_seen": ns_iso(inc.last_seen_ns),
        "created_at": iso(inc.created_at),
        "updated_at": iso(inc.updated_at),
        "closed_at": iso(inc.closed_at),
    }


@router.get("", response_model=IncidentPage, summary="Incidents, most severe and oldest first")
def list_incidents(
    actor: Reader,
    s: SessionDep,
    status: Literal["open", "closed", "all"] = "open",
    lifeline: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    district: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    unit: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> IncidentPage:
    open_only = {"open": True, "closed": False, "all": None}[status]
    rows, total = queries.list_incidents(
        s, actor, open_only=open_only, lifeline=lifeline, district=district, unit=unit, limit=limit, offset=offset
    )
    return IncidentPage(items=[IncidentPublic(**incident_doc(i)) for i in rows], total=total, limit=limit, offset=offset)


@router.get("/{incident_id}", response_model=IncidentDetail, summary="One incident with its member alerts")
def get_incident(actor: Reader, s: SessionDep, incident_id: Annotated[str, Path(max_length=64)]) -> IncidentDetail:
    inc, members = queries.get_incident(s, actor, incident_id)
    return IncidentDetail(**incident_doc(inc), alerts=[AlertPublic(**alert_doc(a)) for a in members])
