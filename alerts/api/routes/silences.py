"""/api/silences: maintenance windows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from alerts import silences
from alerts.api.deps import CtxDep, Reader, SessionDep, SilenceManager
from alerts.api.schemas import SilenceCreate, SilencePublic

router = APIRouter(prefix="/api/silences", tags=["silences"])


@router.post("", response_model=SilencePublic, status_code=201, summary="Silence a sensor, asset or district for a while")
def create_silence(actor: SilenceManager, body: SilenceCreate, s: SessionDep, ctx: CtxDep) -> SilencePublic:
    row = silences.create(
        s,
        actor,
        ctx.now(),
        scope=body.scope,
        target=body.target,
        starts_at=body.starts_at,
        ends_at=body.ends_at,
        reason=body.reason,
        lifeline=body.lifeline,
        kind=body.kind,
        max_duration=ctx.settings.max_silence,
    )
    s.commit()
    return SilencePublic.model_validate(row)


@router.get("", response_model=list[SilencePublic], summary="Silences not revoked (active_now: only those holding now)")
def list_silences(actor: Reader, s: SessionDep, ctx: CtxDep, active_now: bool = False, include_revoked: bool = False) -> list[SilencePublic]:
    rows = silences.listing(s, active_at=ctx.now() if active_now else None, include_revoked=include_revoked)
    return [SilencePublic.model_validate(x) for x in rows]


@router.delete("/{silence_id}", status_code=204, summary="Revoke a silence (kept, marked revoked)")
def revoke_silence(actor: SilenceManager, silence_id: Annotated[int, Path(ge=1, le=2**62)], s: SessionDep, ctx: CtxDep) -> Response:
    silences.revoke(s, silence_id, actor, ctx.now())
    s.commit()
    return Response(status_code=204)
