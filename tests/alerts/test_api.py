"""The HTTP API: roles on every route, unit scope, transitions and their 409s, 4xx for every malformed request, SSE."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from alerts.api import create_app
from alerts.clock import from_ns
from alerts.db import Store, make_engine
from alerts.feed import PRIVATE_KINDS
from alerts.models import Alert, AuditEvent, Incident
from alerts.states import Role
from alerts.types import Actor
from alerts.users import add_user, issue_token
from lifewatch.levels import Level
from tests.alerts.conftest import TestClient
from tests.alerts.helpers import T0_NS, UNIT_A, UNIT_B, bearer, det, race

ROLES = ["admin", "operator", "supervisor", "engineer", "read_only", "crew_a", "crew_b"]


@pytest.fixture
def queue(intake, store):  # noqa: ANN001, ANN201
    """Two water alerts of one DMA (an incident, unit A) and one power alert (unit B); ids by name."""
    intake.emit(
        [
            det("end_pressure_low", t=0, level=Level.ORANGE),
            det("inlet_flow_high", t=30, sensors=("w-d01-001",), level=Level.RED),
            det("voltage_low", t=40, lifeline="power", sensors=("p-d01-001",), asset="fdr-d01-1", level=Level.YELLOW),
        ]
    )
    with store.read() as s:
        ids = {a.kind: a.id for a in s.scalars(select(Alert))}
        incident = s.scalars(select(Incident.id)).one()
    return {"water": ids["end_pressure_low"], "water_red": ids["inlet_flow_high"], "power": ids["voltage_low"], "incident": incident}


def _silence_body(clock, **kw) -> dict:  # noqa: ANN001, ANN003
    start = from_ns(T0_NS)
    body = {
        "scope": "asset",
        "target": "dma-d01-2",
        "starts_at": start.isoformat(),
        "ends_at": (start + timedelta(hours=4)).isoformat(),
        "reason": "valve replacement",
    }
    return body | kw


def test_role_checks_on_every_route(client, users, queue, clock) -> None:  # noqa: ANN001
    silence_ids = {}
    for role in ROLES:  # one silence per role, for DELETE
        r = client.post("/api/silences", json=_silence_body(clock), headers=bearer(users["admin"]))
        assert r.status_code == 201
        silence_ids[role] = r.json()["id"]
    a, inc = queue["water"], queue["incident"]
    everyone = dict.fromkeys(ROLES, 200)
    scoped = everyone | {"crew_b": 404}
    managers = {"admin": 201, "operator": 201, "supervisor": 201, "engineer": 201, "read_only": 403, "crew_a": 403, "crew_b": 403}
    table = [
        ("GET", "/api/me", None, everyone),
        ("GET", "/api/alerts", None, everyone),
        ("GET", f"/api/alerts/{a}", None, scoped),
        # closing a new alert is illegal: 409 proves the route let the caller through to the state machine
        ("POST", f"/api/alerts/{a}/transitions", {"to": "closed"}, scoped | {"engineer": 403, "read_only": 403, "crew_b": 404}
         | {"admin": 409, "operator": 409, "supervisor": 409, "crew_a": 409}),
        ("POST", f"/api/alerts/{a}/comments", {"text": "on my way"}, scoped | {"read_only": 403} | {"admin": 201, "operator": 201,
         "supervisor": 201, "engineer": 201, "crew_a": 201}),
        ("GET", "/api/incidents", None, everyone),
        ("GET", f"/api/incidents/{inc}", None, scoped),
        ("GET", "/api/stats", None, everyone),
        ("POST", "/api/silences", _silence_body(clock), managers),
        ("GET", "/api/silences", None, everyone),
        ("DELETE", "/api/silences/{sid}", None, {k: (204 if v == 201 else v) for k, v in managers.items()}),
        ("GET", "/api/stream?limit=1", None, everyone),
    ]
    for method, path, body, expected in table:
        for role in ROLES:
            headers = bearer(users[role]) | ({"Last-Event-ID": "0"} if "stream" in path else {})
            r = client.request(method, path.format(sid=silence_ids[role]), json=body, headers=headers)
            assert r.status_code == expected[role], (method, path, role, r.text)
        for headers in ({}, {"Authorization": "Bearer lw_not_a_token"}, {"Authorization": "Basic YWxhZGRpbjpvcGVu"},
                        {"Authorization": "Bearer "}):
            r = client.request(method, path.format(sid=1), json=body, headers=headers)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer"


def test_no_token_needed_for_health_and_docs(client) -> None:  # noqa: ANN001
    assert client.get("/health").json() == {"status": "ok", "database": client.app.state.ctx.store.dialect}
    doc = client.get("/openapi.json").json()
    assert {"/api/alerts", "/api/alerts/{alert_id}/transitions", "/api/stream", "/api/silences/{silence_id}", "/api/stats",
            "/api/me", "/api/incidents/{incident_id}", "/api/alerts/{alert_id}/comments", "/health"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    responses = doc["paths"]["/api/alerts/{alert_id}/transitions"]["post"]["responses"]
    assert {"200", "401", "403", "404", "409", "422", "503"} <= set(responses)
    assert "401" not in doc["paths"]["/health"]["get"]["responses"]
    assert client.get("/docs").status_code == 200


def test_a_crew_sees_only_its_own_unit(client, users, queue) -> None:  # noqa: ANN001
    def ids(role: str, path: str = "/api/alerts") -> set[str]:
        return {x["id"] for x in client.get(path, headers=bearer(users[role])).json()["items"]}

    assert ids("crew_a") == {queue["water"], queue["water_red"]}
    assert ids("crew_b") == {queue["power"]}
    assert ids("operator") == {queue["water"], queue["water_red"], queue["power"]}
    assert client.get(f"/api/alerts?unit={UNIT_B}", headers=bearer(users["crew_a"])).status_code == 403
    assert client.get(f"/api/alerts?unit={UNIT_A}", headers=bearer(users["crew_a"])).json()["total"] == 2
    assert client.get(f"/api/alerts/{queue['power']}", headers=bearer(users["crew_a"])).status_code == 404
    r = client.post(f"/api/alerts/{queue['power']}/transitions", json={"to": "acknowledged"}, headers=bearer(users["crew_a"]))
    assert r.status_code == 404 and r.json()["detail"] == f"no alert {queue['power']}"
    assert ids("crew_b", "/api/incidents") == set() and ids("crew_a", "/api/incidents") == {queue["incident"]}
    stats = client.get("/api/stats", headers=bearer(users["crew_b"])).json()
    assert {row["unit"] for row in stats["time_to_acknowledge"]} == {UNIT_B, None} and stats["alerts"] == 1


def test_the_queue_order_filters_and_pages(client, users, queue, intake) -> None:  # noqa: ANN001
    h = bearer(users["operator"])
    intake.emit([det("end_pressure_low", t=50, sensors=("w-d02-004",), district="d02", asset="dma-d02-1", level=Level.RED)])
    items = client.get("/api/alerts", headers=h).json()["items"]
    assert [(x["level"], x["kind"]) for x in items] == [
        ("red", "inlet_flow_high"), ("red", "end_pressure_low"), ("orange", "end_pressure_low"), ("yellow", "voltage_low"),
    ]
    page = client.get("/api/alerts?limit=2&offset=1", headers=h).json()
    assert (page["total"], [x["level"] for x in page["items"]]) == (4, ["red", "orange"])
    assert [x["kind"] for x in client.get("/api/alerts?level=yellow&level=orange", headers=h).json()["items"]] == [
        "end_pressure_low", "voltage_low"]
    assert client.get("/api/alerts?lifeline=power", headers=h).json()["total"] == 1
    assert client.get("/api/alerts?district=d02", headers=h).json()["total"] == 1
    assert client.get(f"/api/alerts?incident={queue['incident']}", headers=h).json()["total"] == 2
    assert client.get("/api/alerts?state=closed", headers=h).json()["total"] == 0
    assert [x["kind"] for x in client.get("/api/alerts?sort=newest&limit=1", headers=h).json()["items"]] == ["end_pressure_low"]


def test_working_an_alert_through_the_api(client, users, queue, store) -> None:  # noqa: ANN001
    a = queue["water_red"]
    crew, op = bearer(users["crew_a"]), bearer(users["operator"])
    detail = client.get(f"/api/alerts/{a}", headers=crew).json()
    assert (detail["state"], detail["version"], detail["actions"], detail["level"]) == ("new", 1, ["acknowledged"], "red")
    assert detail["evidence"]["source"] == "GB 50013-2018" and detail["incident_id"] == queue["incident"]
    steps = [
        (crew, {"to": "acknowledged", "expected_version": 1, "note": "on it"}, "acknowledged"),
        (crew, {"to": "dispatched", "expected_version": 2, "crew": ["Li Wei", "Ma Lin"]}, "dispatched"),
        (crew, {"to": "resolved", "cause": "main break", "action": "section replaced", "notes": "DN300"}, "resolved"),
        (op, {"to": "closed", "note": "pressure normal"}, "closed"),
    ]
    for headers, body, state in steps:
        r = client.post(f"/api/alerts/{a}/transitions", json=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == state
    r = client.post(f"/api/alerts/{a}/comments", json={"text": "  closed after 3 h  "}, headers=op)
    assert (r.status_code, r.json()["text"], r.json()["author"]) == (201, "closed after 3 h", "operator")
    detail = client.get(f"/api/alerts/{a}", headers=op).json()
    assert (detail["version"], detail["crew"], detail["resolution"]) == (
        5, ["Li Wei", "Ma Lin"], {"cause": "main break", "action": "section replaced", "notes": "DN300"})
    assert [(e["kind"], e["from_state"], e["to_state"], e["actor"]) for e in detail["timeline"]] == [
        ("raised", None, "new", "intake"),
        ("grouped", None, None, "intake"),
        ("transition", "new", "acknowledged", "crew-a"),
        ("transition", "acknowledged", "dispatched", "crew-a"),
        ("transition", "dispatched", "resolved", "crew-a"),
        ("transition", "resolved", "closed", "operator"),
        ("comment", None, None, "operator"),
    ]
    assert detail["timeline"][2]["note"] == "on it" and detail["comments"][0]["text"] == "closed after 3 h"
    assert detail["actions"] == []


def test_conflicts_name_both_states_and_versions(client, users, queue) -> None:  # noqa: ANN001
    a, crew = queue["water"], bearer(users["crew_a"])
    r = client.post(f"/api/alerts/{a}/transitions", json={"to": "resolved", "cause": "x", "action": "y"}, headers=crew)
    assert r.status_code == 409
    assert r.json() | {"detail": None} == {"detail": None, "error": "illegal_transition", "from_state": "new", "to_state": "resolved"}
    assert "new -> resolved" in r.json()["detail"]
    assert client.post(f"/api/alerts/{a}/transitions", json={"to": "acknowledged"}, headers=crew).status_code == 200
    r = client.post(f"/api/alerts/{a}/transitions", json={"to": "dispatched", "expected_version": 1, "crew": ["x"]}, headers=crew)
    assert r.status_code == 409
    assert (r.json()["error"], r.json()["expected_version"], r.json()["version"], r.json()["state"]) == (
        "version_conflict", 1, 2, "acknowledged")
    r = client.post(f"/api/alerts/{a}/transitions", json={"to": "resolved", "cause": "x"}, headers=crew)
    assert (r.status_code, r.json()["error"]) == (422, "invalid")
    assert r.json()["detail"] == [{"loc": ["body", "action"], "msg": "resolve (acknowledged -> resolved) needs: action",
                                   "type": "value_error"}]
    r = client.post(f"/api/alerts/{a}/transitions", json={"to": "closed"}, headers=crew)
    assert r.status_code == 409  # illegal edge first: acknowledged -> closed does not exist for anyone
    r = client.post(f"/api/alerts/{a}/transitions", json={"to": "false_alarm", "note": "test"}, headers=crew)
    assert (r.status_code, r.json()["error"]) == (403, "forbidden")


def test_two_crews_claiming_through_the_api(client, users, queue, store, clock) -> None:  # noqa: ANN001
    with store.write() as s:
        add_user(s, "crew-a2", Role.CREW, UNIT_A, Actor("t", Role.ADMIN), clock())
        token2 = issue_token(s, "crew-a2", Actor("t", Role.ADMIN), clock())[1]
    for alert_id in (queue["water"], queue["water_red"]):
        def claim(token: str, alert_id: str = alert_id) -> int:
            return client.post(f"/api/alerts/{alert_id}/transitions", json={"to": "acknowledged", "expected_version": 1},
                               headers=bearer(token)).status_code

        codes = race(lambda: claim(users["crew_a"]), lambda: claim(token2))
        assert sorted(codes) == [200, 409], codes
        with store.read() as s:
            n = s.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.alert_id == alert_id, AuditEvent.to_state == "acknowledged"))
        assert n == 1


MALFORMED = [
    # (method, path, kwargs, expected status)
    ("POST", "/api/alerts/{a}/transitions", {"content": b"nope", "headers": {"content-type": "application/json"}}, 422),
    ("POST", "/api/alerts/{a}/transitions", {"json": ["acknowledged"]}, 422),
    ("POST", "/api/alerts/{a}/transitions", {"json": {}}, 422),
    ("POST", "/api/alerts/{a}/transitions", {"json": {"to": "bogus"}}, 422),
    ("POST", "/api/alerts/{a}/transitions", {"json": {"to": "acknowledged", "expected_version": "one"}}, 422),
    ("POST", "/api/alerts/{a}/transitions", {"json": {"to": "acknowledged", "expected_version": 0}}, 422),
    ("POST", "/api/alerts/{a}/transitions", {"json": {"to": "acknowledged", "expected_version": 2**70}}, 409),
    ("POST", "/api/alerts/{a}/transitions", {"json": {"to": "acknowledged", "hurry": True}}, 422),
    ("POST", "/api/alerts/{a}/transitions", {"json": {"to": "acknowledged", "note": "x" * 4001}}, 422),
    ("POST", "/api/alerts/{a}/transitions", {"json": {"to": "acknowledged", "crew": "Li Wei"}}, 422),
    ("POST", "/api/alerts/{a}/transitions", {"json": {"to": None}}, 422),
    ("POST", "/api/alerts/nope/transitions", {"json": {"to": "acknowledged"}}, 404),
    ("POST", "/api/alerts/{long}/transitions", {"json": {"to": "acknowledged"}}, 422),
    ("POST", "/api/alerts/{a}/comments", {"json": {"text": "   "}}, 422),
    ("POST", "/api/alerts/{a}/comments", {"json": {"text": 5}}, 422),
    ("POST", "/api/alerts/{a}/comments", {"content": b"\xff\xfe", "headers": {"content-type": "application/json"}}, 422),
    ("GET", "/api/alerts?limit=0", {}, 422),
    ("GET", "/api/alerts?limit=100000", {}, 422),
    ("GET", "/api/alerts?offset=-1", {}, 422),
    ("GET", "/api/alerts?state=bogus", {}, 422),
    ("GET", "/api/alerts?level=purple", {}, 422),
    ("GET", "/api/alerts?sort=random", {}, 422),
    ("GET", "/api/alerts?silenced=maybe", {}, 422),
    ("GET", "/api/alerts?lifeline=" + "w" * 200, {}, 422),
    ("GET", "/api/alerts?unit=", {}, 422),
    ("GET", "/api/incidents?district=", {}, 422),
    ("GET", "/api/alerts/does-not-exist", {}, 404),
    ("GET", "/api/alerts/%E6%B0%B4%E7%AE%A1", {}, 404),
    ("GET", "/api/alerts/{long}", {}, 422),
    ("GET", "/api/incidents?status=maybe", {}, 422),
    ("GET", "/api/incidents/inc-nope", {}, 404),
    ("GET", "/api/stats?since=yesterday", {}, 422),
    ("GET", "/api/stats?since=2026-01-01T00:00:00", {}, 422),  # no zone
    ("GET", "/api/stats?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", {}, 422),
    ("GET", "/api/stats?level=5", {}, 422),
    ("POST", "/api/silences", {"json": "body"}, 422),
    ("POST", "/api/silences", {"silence": {"ends_at": "2025-12-31T00:00:00Z"}}, 422),  # before it starts
    ("POST", "/api/silences", {"silence": {"starts_at": "2026-01-01T08:00:00"}}, 422),  # no zone
    ("POST", "/api/silences", {"silence": {"scope": "city"}}, 422),
    ("POST", "/api/silences", {"silence": {"reason": ""}}, 422),
    ("POST", "/api/silences", {"silence": {"ends_at": "2026-03-01T00:00:00Z"}}, 422),  # longer than 30 days
    ("POST", "/api/silences", {"silence": {"starts_at": "2025-01-01T00:00:00Z", "ends_at": "2025-01-02T00:00:00Z"}}, 422),
    ("POST", "/api/silences", {"silence": {"target": "x" * 101}}, 422),
    ("DELETE", "/api/silences/abc", {}, 422),
    ("DELETE", "/api/silences/0", {}, 422),
    ("DELETE", "/api/silences/99999999999999999999999", {}, 422),
    ("DELETE", "/api/silences/424242", {}, 404),
    ("GET", "/api/nothing-here", {}, 404),
    ("PUT", "/api/alerts/{a}/transitions", {"json": {"to": "acknowledged"}}, 405),
]


def test_malformed_requests_get_4xx_never_5xx(client, users, queue, clock) -> None:  # noqa: ANN001
    h = bearer(users["admin"])
    for method, path, kwargs, expected in MALFORMED:
        kw = dict(kwargs)
        if "silence" in kw:
            kw["json"] = _silence_body(clock, **kw.pop("silence"))
        kw["headers"] = h | kw.get("headers", {})
        r = client.request(method, path.format(a=queue["water"], long="x" * 100), **kw)
        assert r.status_code == expected, (method, path, kwargs, r.status_code, r.text)
        assert "application/json" in r.headers["content-type"]
        if expected == 422:  # one shape for every 422, FastAPI's and the queue's own
            assert isinstance(r.json()["detail"], list) and {"loc", "msg", "type"} <= set(r.json()["detail"][0])
    with client.app.state.ctx.store.read() as s:  # nothing of that reached the alert
        assert s.get(Alert, queue["water"]).version == 1


def test_silences_over_the_api(client, users, clock, intake, store) -> None:  # noqa: ANN001
    h = bearer(users["engineer"])
    r = client.post("/api/silences", json=_silence_body(clock, target="dma-d01-1"), headers=h)
    assert r.status_code == 201
    sid = r.json()["id"]
    assert (r.json()["created_by"], r.json()["revoked_at"]) == ("engineer", None)
    intake.emit([det(t=60)])
    (a,) = client.get("/api/alerts", headers=h).json()["items"]
    assert a["silenced"] is True
    listed = client.get("/api/silences", headers=h).json()
    assert [x["id"] for x in listed] == [sid]
    assert client.get("/api/silences?active_now=true", headers=h).json()[0]["id"] == sid  # wall clock is 08:00:05
    assert client.delete(f"/api/silences/{sid}", headers=h).status_code == 204
    assert client.delete(f"/api/silences/{sid}", headers=h).status_code == 404
    assert client.get("/api/silences", headers=h).json() == []
    (revoked,) = client.get("/api/silences?include_revoked=true", headers=h).json()
    assert revoked["revoked_by"] == "engineer"
    with store.read() as s:
        kinds = s.scalars(select(AuditEvent.kind).where(AuditEvent.kind.like("silence%")).order_by(AuditEvent.id)).all()
    assert kinds == ["silence_created", "silenced", "silence_revoked"]


def _events(text: str) -> list[dict]:
    out = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "data" in fields:
            out.append({"id": int(fields["id"]), "event": fields["event"], **json.loads(fields["data"])})
    return out


def test_stream_replays_from_last_event_id_and_respects_the_unit(client, users, queue, store) -> None:  # noqa: ANN001
    r = client.get("/api/stream?limit=4", headers=bearer(users["operator"]) | {"Last-Event-ID": "0"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    evs = _events(r.text)
    with store.read() as s:
        public = select(AuditEvent.id, AuditEvent.kind).where(AuditEvent.kind.not_in(PRIVATE_KINDS))  # no user/token events
        first4 = s.execute(public.order_by(AuditEvent.id).limit(4)).all()
    assert [(e["id"], e["event"]) for e in evs] == [tuple(x) for x in first4]
    assert evs[0]["alert"]["id"] == evs[0]["alert_id"] and evs[0]["alert"]["state"] == "new"
    r = client.get("/api/stream?limit=2", headers=bearer(users["operator"]) | {"Last-Event-ID": str(evs[1]["id"])})
    assert [e["id"] for e in _events(r.text)] == [evs[2]["id"], evs[3]["id"]]
    client.post(f"/api/alerts/{queue['power']}/comments", json={"text": "feeder inspected"}, headers=bearer(users["crew_b"]))
    evs_b = _events(client.get("/api/stream?limit=2", headers=bearer(users["crew_b"]) | {"Last-Event-ID": "0"}).text)
    assert [(e["event"], e["unit"]) for e in evs_b] == [("raised", UNIT_B), ("comment", UNIT_B)]


def test_stream_delivers_live_changes(settings, clock, engine, users, queue) -> None:  # noqa: ANN001
    app = create_app(settings.replace(stream_poll=0.02), clock=clock, engine=engine)
    with TestClient(app) as client:
        with app.state.ctx.store.read() as s:
            head = s.scalar(select(func.max(AuditEvent.id)))
        got: list[str] = []

        def listen() -> None:
            got.append(client.get("/api/stream?limit=1", headers=bearer(users["crew_a"]) | {"Last-Event-ID": str(head)}).text)

        t = threading.Thread(target=listen)
        t.start()
        time.sleep(0.2)  # the stream is polling an unchanged trail by now
        assert t.is_alive()
        r = client.post(f"/api/alerts/{queue['water']}/transitions", json={"to": "acknowledged"}, headers=bearer(users["crew_a"]))
        assert r.status_code == 200
        t.join(10)
        (ev,) = _events(got[0])
        assert (ev["event"], ev["from"], ev["to"], ev["actor"], ev["alert"]["version"]) == ("transition", "new", "acknowledged", "crew-a", 2)


def test_demo_tokens_only_in_demo_mode(settings, clock, engine) -> None:  # noqa: ANN001
    with TestClient(create_app(settings.replace(demo=True), clock=clock, engine=engine)) as demo:
        me = demo.get("/api/me", headers=bearer("demo-crew-shz-water")).json()
        assert me == {"name": "demo-crew-shz-water", "role": "crew", "unit": "shz-water", "unit_scoped": True,
                      "actions": ["acknowledge", "dispatch", "resolve"]}
        assert demo.get("/api/me", headers=bearer("demo-supervisor")).json()["role"] == "supervisor"
    with TestClient(create_app(settings, clock=clock, engine=engine)) as real:  # the same database, not in demo mode
        r = real.get("/api/me", headers=bearer("demo-admin"))
        assert r.status_code == 401 and "demo mode" in r.json()["detail"]


def test_a_dead_database_is_503_not_500(settings, clock) -> None:  # noqa: ANN001
    dead = make_engine("postgresql://postgres@127.0.0.1:9/nowhere", connect_args={"connect_timeout": 2})
    with TestClient(create_app(settings, clock=clock, engine=dead)) as client:
        r = client.get("/health")
        assert (r.status_code, r.json()["status"]) == (503, "unavailable")
        r = client.get("/api/alerts", headers=bearer("lw_whatever"))
        assert (r.status_code, r.json()["error"]) == (503, "store_unavailable")
    Store(dead).dispose()


def test_serve_runs_uvicorn_on_the_configured_address(db_url, monkeypatch, tmp_path) -> None:  # noqa: ANN001
    import argparse

    import uvicorn

    from alerts import serve
    from lifewatch.settings import Settings

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append((app, kw)))
    monkeypatch.setenv("LIFEWATCH_ALERTS_DB_URL", db_url)
    monkeypatch.setenv("LIFEWATCH_API_PORT", "18999")
    p = argparse.ArgumentParser()
    serve.configure_parser(p)
    assert serve.cli(p.parse_args([]), Settings(state_dir=tmp_path)) == 0
    assert serve.cli(p.parse_args(["--host", "0.0.0.0", "--port", "18123"]), Settings(state_dir=tmp_path)) == 0
    (app1, kw1), (_, kw2) = calls
    assert (kw1["host"], kw1["port"], kw2["host"], kw2["port"]) == ("127.0.0.1", 18999, "0.0.0.0", 18123)
    assert "/api/alerts" in app1.openapi()["paths"]
    with Store(make_engine(db_url)).read() as s:  # migrated by serve
        assert s.scalar(select(func.count()).select_from(Alert)) == 0
