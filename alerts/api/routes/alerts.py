"""/api/alerts: the queue, one alert with its timeline, transitions, comments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from alerts import lifecycle, queries
from alerts.api.deps import AlertDep, Commenter, CtxDep, Reader, SessionDep, Worker
from alerts.api.schemas import (
    AlertDetail,
    AlertPage,
    AlertPublic,
    AuditPublic,
    CommentCreate,
    CommentPublic,
    ErrorPublic,
    LevelName,
    TransitionCreate,
)
from alerts.journal import alert_doc
from alerts.queries import AlertFilter, AlertSort
from alerts.states import AlertState, allowed_targets
from lifewatch.levels import Level

router = APIRouter(prefix="/api/alerts", tags=["alerts"])

Name = Annotated[str | None, Query(min_length=1, max_length=100)]


@router.get("", response_model=AlertPage, summary="The queue: open alerts, most severe and oldest first")
def list_alerts(
    actor: Reader,
    s: SessionDep,
    state: Annotated[list[AlertState] | None, Query(description="repeatable; default: every open state")] = None,
    level: Annotated[list[LevelName] | None, Query(description="repeatable")] = None,
    lifeline: Name = None,
    district: Name = None,
    unit: Name = None,
    incident: Name = None,
    asset: Name = None,
    silenced: bool | None = None,
    sort: AlertSort = AlertSort.LEVEL,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> AlertPage:
    f = AlertFilter(
        states=state or (),
        levels=[Level.parse(x) for x in level or ()],
        lifeline=lifeline,
        district=district,
        unit=unit,
        incident=incident,
        asset=asset,
        silenced=silenced,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    rows, total = queries.list_alerts(s, actor, f)
    return AlertPage(items=[AlertPublic(**alert_doc(a)) for a in rows], total=total, limit=limit, offset=offset)


@router.get("/{alert_id}", response_model=AlertDetail, summary="One alert with its evidence, timeline and comments")
def get_alert(actor: Reader, alert: AlertDep, s: SessionDep) -> AlertDetail:
    return AlertDetail(
        **alert_doc(alert, evidence=True),
        timeline=[AuditPublic.model_validate(e) for e in queries.timeline(s, alert.id)],
        comments=[CommentPublic.model_validate(c) for c in queries.comments(s, alert.id)],
        actions=allowed_targets(AlertState(alert.state), actor.role),
    )


@router.post(
    "/{alert_id}/transitions",
    response_model=AlertPublic,
    summary="Move the alert along the state machine",
    description="The fields an edge needs depend on the alert's state (dispatch: crew; resolve: cause and action; "
    "reject and false_alarm: note): a missing one is a 422.",
    responses={409: {"model": ErrorPublic, "description": "illegal transition (names both states) or version conflict"}},
)
def post_transition(actor: Worker, alert: AlertDep, body: TransitionCreate, s: SessionDep, ctx: CtxDep) -> AlertPublic:
    feedback = lifecycle.Feedback(note=body.note, cause=body.cause, action=body.action, notes=body.notes, crew=body.crew)
    lifecycle.apply(s, alert, body.to, actor, ctx.now(), expected_version=body.expected_version, feedback=feedback)
    s.commit()
    return AlertPublic(**alert_doc(alert))


@router.post("/{alert_id}/comments", response_model=CommentPublic, status_code=201, summary="Add a comment")
def post_comment(actor: Commenter, alert: AlertDep, body: CommentCreate, s: SessionDep, ctx: CtxDep) -> CommentPublic:
    row = lifecycle.comment(s, alert, actor, ctx.now(), body.text)
    s.commit()
    return CommentPublic.model_validate(row)
