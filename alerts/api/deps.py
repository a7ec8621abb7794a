"""Named dependencies, so that handler signatures read like sentences.

* ``SessionDep``: one session per request; a write session (``BEGIN
  IMMEDIATE`` on SQLite) for POST/PUT/PATCH/DELETE.  Handlers commit
  explicitly; whatever is not committed is rolled back.
* ``CurrentActor``: the user behind ``Authorization: Bearer <token>`` (401 otherwise).
* ``Reader``, ``Worker``, ``Commenter``, ``SilenceManager``: the caller, if its role
  may use the route (403 otherwise).  Transitions are checked again per edge.
* ``AlertDep``: fetch-or-404 plus the unit scope (a crew gets 404 for another
  unit's alert, exactly as for a missing one), in one place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from alerts.clock import Clock
from alerts.config import AlertSettings
from alerts.db import Store
from alerts.errors import AuthError, NotPermitted
from alerts.lifecycle import load_for
from alerts.models import Alert
from alerts.states import USER_ROLES, Role
from alerts.types import Actor
from alerts.users import authenticate


@dataclass
class ApiContext:
    store: Store
    settings: AlertSettings
    clock: Clock

    def now(self) -> datetime:
        return self.clock()


def get_ctx(request: Request) -> ApiContext:
    return request.app.state.ctx


CtxDep = Annotated[ApiContext, Depends(get_ctx)]


def get_session(request: Request, ctx: CtxDep) -> Iterator[Session]:
    s = ctx.store.session(write=request.method not in ("GET", "HEAD", "OPTIONS"))
    try:
        yield s
    finally:
        s.rollback()
        s.close()


SessionDep = Annotated[Session, Depends(get_session)]

_bearer = HTTPBearer(auto_error=False, description="a token from `lifewatch users token NAME`")


def current_actor(ctx: CtxDep, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Actor:
    if creds is None or not creds.credentials:
        raise AuthError("send Authorization: Bearer <token>")
    with ctx.store.read() as s:
        return authenticate(s, creds.credentials, demo=ctx.settings.demo)


CurrentActor = Annotated[Actor, Depends(current_actor)]


def require(*roles: Role) -> Callable[[Actor], Actor]:
    allowed = frozenset(roles)

    def check(actor: CurrentActor) -> Actor:
        if actor.role not in allowed:
            raise NotPermitted(f"role {actor.role} may not use this route")
        return actor

    return check


Reader = Annotated[Actor, Depends(require(*USER_ROLES))]
Worker = Annotated[Actor, Depends(require(Role.CREW, Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN))]
Commenter = Annotated[Actor, Depends(require(Role.CREW, Role.OPERATOR, Role.SUPERVISOR, Role.ENGINEER, Role.ADMIN))]
SilenceManager = Annotated[Actor, Depends(require(Role.OPERATOR, Role.SUPERVISOR, Role.ENGINEER, Role.ADMIN))]


def alert_dep(alert_id: Annotated[str, Path(max_length=64)], actor: CurrentActor, s: SessionDep) -> Alert:
    return load_for(s, alert_id, actor)


AlertDep = Annotated[Alert, Depends(alert_dep)]
