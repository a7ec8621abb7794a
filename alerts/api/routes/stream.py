"""/api/stream: live queue changes as Server-Sent Events.

Each event is one audit row (:mod:`alerts.feed`): ``id:`` is the audit id,
``event:`` its kind (``raised``, ``transition``, ``reminder``, ...), ``data:``
JSON with the alert as it is now.  Reconnecting with ``Last-Event-ID``
resumes after that event; without it the stream starts with the next change.
A comment line every 15 s keeps proxies from closing an idle stream.
``limit`` ends the stream after that many events (tests, scripts).
A crew receives its own unit's events only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from alerts.api.deps import CtxDep, Reader
from alerts.errors import StoreError
from alerts.feed import Cursor, head

log = logging.getLogger("lifewatch.alerts.api")

router = APIRouter(tags=["stream"])
KEEPALIVE_S = 15.0


@router.get(
    "/api/stream",
    summary="Live queue changes (text/event-stream)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    actor: Reader,
    ctx: CtxDep,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    limit: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> StreamingResponse:
    if last_event_id is not None and last_event_id.strip().isdigit():
        start = int(last_event_id)
    else:
        start = await run_in_threadpool(_head, ctx)
    cursor = Cursor(start)

    def poll() -> list[dict]:
        with ctx.store.read() as s:
            return cursor.poll(s, actor)

    async def events() -> AsyncIterator[str]:
        yield "retry: 3000\n\n"
        sent = 0
        idle = 0.0
        while True:
            try:
                batch = await run_in_threadpool(poll)
            except StoreError as exc:  # the database is away for a moment: keep the stream, try again
                log.warning("stream: %s", exc)
                batch = []
            for ev in batch:
                yield f"id: {ev['id']}\nevent: {ev['kind']}\ndata: {json.dumps(ev, separators=(',', ':'))}\n\n"
                sent += 1
                idle = 0.0
                if limit is not None and sent >= limit:
                    return
            if await request.is_disconnected():
                return
            await anyio.sleep(ctx.settings.stream_poll)
            idle += ctx.settings.stream_poll
            if idle >= KEEPALIVE_S:
                idle = 0.0
                yield ": keepalive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _head(ctx) -> int:  # noqa: ANN001 - ApiContext
    with ctx.store.read() as s:
        return head(s)
