"""``create_app(settings)``: the alert queue's HTTP API (FastAPI).

Nothing happens at import time; the app, its engine and its clock are made
here.  Errors of the queue (:mod:`alerts.errors`) become JSON answers with
one status per branch of the error tree; a bad request is always a 4xx.

With ``background=True`` (``lifewatch api``) the app also runs the
escalation tick every ``tick_interval`` seconds.  In demo mode the demo users
and their documented tokens exist (:func:`alerts.users.ensure_demo_users`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from alerts.api.deps import ApiContext
from alerts.api.routes import alerts, incidents, me, silences, stats, stream
from alerts.api.schemas import ErrorPublic
from alerts.clock import Clock, system_clock
from alerts.config import AlertSettings
from alerts.console import router as console_router
from alerts.db import Store, make_engine, migrate, translate_errors
from alerts.errors import (
    AlertError,
    AuthError,
    Conflict,
    IllegalTransition,
    Invalid,
    NotFound,
    NotPermitted,
    StoreError,
    VersionConflict,
)
from alerts.escalation import Escalator

log = logging.getLogger("lifewatch.alerts.api")

STATUS: list[tuple[type[AlertError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (Invalid, 422),
    (AuthError, 401),
    (NotPermitted, 403),
    (StoreError, 503),
]


def create_app(
    settings: Any,
    *,
    clock: Clock | None = None,
    engine: Engine | None = None,
    background: bool = False,
) -> FastAPI:
    """The API for ``settings`` (:class:`lifewatch.settings.Settings` or :class:`AlertSettings`)."""
    st = settings if isinstance(settings, AlertSettings) else AlertSettings.from_settings(settings)
    if engine is None:
        engine = make_engine(st.db_url)
        if st.auto_migrate:
            migrate(engine)
    ctx = ApiContext(store=Store(engine), settings=st, clock=clock or system_clock)
    if st.demo:
        _demo_users(ctx)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as tg:
            if background and st.tick_interval > 0:
                tg.start_soon(_ticker, Escalator(ctx.store, st, ctx.clock), st.tick_interval)
            yield
            tg.cancel_scope.cancel()

    app = FastAPI(
        title="Lifewatch alert queue",
        version="1",
        description="The emergency-response queue: alerts from the lifeline detectors, their lifecycle, SLAs and incidents.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.include_router(me.health_router, responses=_documented(503))
    for r in (me.router, alerts.router, incidents.router, silences.router, stats.router, stream.router):
        app.include_router(r, responses=_documented(400, 401, 403, 404, 503))
    app.include_router(console_router)  # the crew console at /console/ (alerts/console)
    app.add_exception_handler(AlertError, _alert_error)  # type: ignore[arg-type]
    app.add_exception_handler(sa_exc.SQLAlchemyError, _store_error)
    return app


def _documented(*codes: int) -> dict[int | str, dict[str, Any]]:
    meaning = {400: "the request body could not be parsed (e.g. JSON that is not UTF-8)", 401: "no, unknown or revoked token", 403: "the caller's role may not do this", 404: "not found (or not in the caller's unit)",
               409: "illegal transition or version conflict", 503: "the database is unavailable"}
    out: dict[int | str, dict[str, Any]] = {code: {"model": ErrorPublic, "description": meaning[code]} for code in codes}
    if 400 in out:  # FastAPI's own answer, {"detail": "There was an error parsing the body"}, not ErrorPublic
        out[400] = {"description": meaning[400], "content": {"application/json": {"schema": {
            "type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}}}}
    return out


def _alert_error(request: Request, exc: AlertError) -> JSONResponse:
    status = next((code for cls, code in STATUS if isinstance(exc, cls)), 500)
    body: dict[str, Any] = {"detail": str(exc), "error": exc.code}
    if isinstance(exc, Invalid):  # the same shape as FastAPI's own 422 answers
        where = "query" if request.method in ("GET", "HEAD", "DELETE") else "body"
        locs = [[where, f] for f in exc.fields] or [[where]]
        body["detail"] = [{"loc": loc, "msg": str(exc), "type": "value_error"} for loc in locs]
    if isinstance(exc, IllegalTransition):
        body.update({"from_state": exc.from_state, "to_state": exc.to_state})
    if isinstance(exc, VersionConflict):
        body.update({"expected_version": exc.expected, "version": exc.actual, "state": exc.state})
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(body, status_code=status, headers=headers)


def _store_error(request: Request, exc: Exception) -> JSONResponse:
    try:
        with translate_errors():
            raise exc
    except AlertError as translated:
        return _alert_error(request, translated)


async def _ticker(escalator: Escalator, interval: float) -> None:
    while True:
        try:
            done = await run_in_threadpool(escalator.tick)
            if done:
                log.info("escalation tick: %s", dict(done))
        except StoreError as exc:
            log.error("escalation tick failed: %s", exc)
        await anyio.sleep(interval)


def _demo_users(ctx: ApiContext) -> None:
    from alerts.users import ensure_demo_users
    from lifewatch.city import load_city

    city = load_city(ctx.settings.city_file or None)
    units = sorted({u.id for u in city.units.values()} | {u.id for u in city.district_units.values()})
    with ctx.store.write() as s:
        ensure_demo_users(s, units, ctx.clock())
