"""/api/stats: time to acknowledge and time to resolve per unit and level."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from alerts import stats
from alerts.api.deps import Reader, SessionDep
from alerts.api.schemas import LevelName, StatsPublic
from alerts.errors import Invalid
from alerts.queries import scope_unit
from lifewatch.levels import Level

router = APIRouter(prefix="/api/stats", tags=["stats"])


@router.get("", response_model=StatsPublic, summary="KPIs of alerts that entered the queue in [since, until)")
def get_stats(
    actor: Reader,
    s: SessionDep,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    unit: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    level: LevelName | None = None,
) -> StatsPublic:
    if since is not None and until is not None and until <= since:
        raise Invalid("until must be after since", fields=("until",))
    doc = stats.kpis(s, since=since, until=until, unit=scope_unit(actor, unit), level=Level.parse(level) if level else None)
    return StatsPublic(**doc)
