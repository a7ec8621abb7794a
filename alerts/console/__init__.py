"""The crew console: a small bilingual web page over the alert API, served at ``/console/``.

No build step: ``index.html``, ``console.css`` and vanilla ES modules
(``app.js`` the views, ``api.js`` fetch and the live stream, ``sse.js`` the
Server-Sent-Events parser, ``i18n.js`` every UI string in 简体中文 and
English, ``fmt.js`` city-local times) are served as they are from this
package.  The page itself needs no token; it keeps the token the user types
in ``sessionStorage`` (this tab only) and sends it as ``Authorization:
Bearer`` on every API call, including ``/api/stream``, which it reads with
``fetch()`` (``EventSource`` cannot send headers; tokens never go in URLs).

Routes (mounted by :func:`alerts.api.create_app` with ``include_router``; not in the OpenAPI document):

* ``GET /console``: redirect to ``/console/`` (relative URLs resolve under it).
* ``GET /console/``: the page.
* ``GET /console/config.json``: what the page needs of the city, no token:
  name, ``utc_offset_hours`` (times are shown in the city's local time),
  lifeline titles and metric units, unit, district and asset names (en/zh),
  and the level colours of :class:`lifewatch.levels.Level`.
* ``GET /console/<file>``: the static files listed in :data:`FILES`, nothing else.
"""

from __future__ import annotations

from functools import cache, lru_cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from lifewatch.levels import Level

router = APIRouter(include_in_schema=False)

FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "sse.js": "text/javascript; charset=utf-8",
    "i18n.js": "text/javascript; charset=utf-8",
    "fmt.js": "text/javascript; charset=utf-8",
}
# Same origin only; no inline script or style, no frames.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _file(name: str) -> bytes:
    return (resources.files(__package__) / name).read_bytes()


def _serve(name: str) -> Response:
    if name not in FILES:
        raise HTTPException(404, f"no console file {name}")
    return Response(_file(name), media_type=FILES[name], headers=HEADERS)


@router.get("/console")
def console_root() -> RedirectResponse:
    return RedirectResponse("console/", status_code=307)


@router.get("/console/")
def console_page() -> Response:
    return _serve("index.html")


@router.get("/console/config.json")
def console_config(request: Request) -> JSONResponse:
    settings = request.app.state.ctx.settings
    return JSONResponse(city_config(settings.city_file or ""), headers={"Cache-Control": "no-cache"})


@router.get("/console/{name}")
def console_file(name: str) -> Response:
    return _serve(name)


@lru_cache(maxsize=8)
def city_config(city_file: str) -> dict[str, Any]:
    """The page's settings from the city file ("" = the demo city) and the lifeline descriptions.

    >>> c = city_config("")
    >>> c["city"], c["utc_offset_hours"], c["units"]["shz-water"]["name_zh"]
    ('Shihezi', 6.0, '石河子供水公司')
    >>> [(lv["label"], lv["roman"], lv["colour"]) for lv in c["levels"]][:2]
    [('red', 'I', '#E02F44'), ('orange', 'II', '#FF780A')]
    """
    from lifewatch.city import load_city
    from lifewatch.lifelines import load_lifelines

    city = load_city(city_file or None)
    units = {u.id: {"name": u.name, "name_zh": u.name_zh} for u in [*city.units.values(), *city.district_units.values()]}
    return {
        "city": city.name,
        "utc_offset_hours": city.utc_offset_hours,
        "levels": [{"label": lv.label, "roman": lv.roman, "colour": lv.colour, "zh": lv.zh} for lv in Level],
        "lifelines": {
            lid: {"title": ll.title, "title_zh": ll.title_zh, "metrics": {m: met.unit for m, met in ll.metrics.items()}}
            for lid, ll in load_lifelines().items()
        },
        "units": units,
        "districts": {d.id: {"name": d.name, "name_zh": d.name_zh} for d in city.districts.values()},
        "assets": {
            a.id: {"name": a.name, "name_zh": str(a.params.get("name_zh", "")), "lifeline": a.lifeline}
            for a in city.assets.values()
        },
    }
