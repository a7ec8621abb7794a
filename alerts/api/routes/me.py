"""/api/me and /health."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from alerts.api.deps import CtxDep, Reader
from alerts.api.schemas import Health, MePublic
from alerts.errors import StoreError
from alerts.states import PERMISSIONS

router = APIRouter(tags=["session"])
health_router = APIRouter(tags=["session"])


@router.get("/api/me", response_model=MePublic, summary="Who the token belongs to and what it may do")
def me(actor: Reader) -> MePublic:
    actions = [a.value for a, roles in PERMISSIONS.items() if actor.role in roles]
    return MePublic(name=actor.name, role=actor.role, unit=actor.unit, unit_scoped=actor.unit_scoped, actions=actions)


@health_router.get("/health", response_model=Health, summary="Liveness and database reachability (no token)")
def health(ctx: CtxDep) -> Health | JSONResponse:
    try:
        with ctx.store.read() as s:
            s.execute(text("SELECT 1"))
    except StoreError as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc)}, status_code=503)
    return Health(status="ok", database=ctx.store.dialect)
