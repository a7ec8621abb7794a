"""``lifewatch dashboards push`` against a stand-in for Grafana's HTTP API.

No Grafana server can run here (no Docker engine and no Grafana binary in
this environment), so a small ``http.server`` on 127.0.0.1 stands in for it.
It implements the documented routes the push uses (``/api/health``,
``/api/folders``, ``/api/folders/:uid``, ``/api/search``,
``/api/dashboards/db``, ``/api/dashboards/uid/:uid``,
``/api/datasources/uid/:uid``), refuses what Grafana refuses (no or a wrong
bearer token, a dashboard without title or with a uid over 40 characters,
an unknown folder, a provisioned dashboard, an existing uid without
``overwrite``), and records every request so the tests can check that the
push follows the API: one folder per city, saves with ``overwrite`` and a
null ``id``, nothing re-saved when nothing changed.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from dashboards.build import build_dashboards, folder_title, folder_uid
from dashboards.cli import add_arguments, cli
from dashboards.context import BuildOptions
from dashboards.push import GrafanaClient, PushError, push
from lifewatch.city import load_city
from lifewatch.settings import Settings

TOKEN = "glsa_test_token"
CITY = load_city()


@dataclass
class FakeGrafana:
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: set[str] = field(default_factory=lambda: {"lifewatch-influxdb", "lifewatch-prometheus"})
    requests: list[tuple[str, str, dict[str, list[str]], Any]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    url: str = ""

    def saves(self) -> list[dict[str, Any]]:
        return [body for method, path, _, body in self.requests if method == "POST" and path == "/api/dashboards/db"]

    def handle(self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Any) -> tuple[int, Any]:
        self.requests.append((method, path, query, body))
        if path == "/api/health" and method == "GET":
            return 200, {"commit": "fake", "database": "ok", "version": "11.1.0"}
        if headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Unauthorized"}
        parts = path.strip("/").split("/")
        if method == "GET" and parts[:2] == ["api", "folders"] and len(parts) == 3:
            f = self.folders.get(parts[2])
            return (200, f) if f else (404, {"message": "folder not found"})
        if method == "POST" and path == "/api/folders":
            if not isinstance(body, dict) or not isinstance(body.get("title"), str) or not body["title"]:
                return 400, {"message": "folder title cannot be empty"}
            uid = body.get("uid") or "generated"
            if len(uid) > 40:
                return 400, {"message": "uid too long, max 40 characters"}
            if uid in self.folders:
                return 409, {"message": "a folder with the same uid already exists"}
            self.folders[uid] = {"id": len(self.folders) + 1, "uid": uid, "title": body["title"], "url": f"/dashboards/f/{uid}/"}
            return 200, self.folders[uid]
        if method == "GET" and path == "/api/search":
            uids = set(query.get("dashboardUIDs", []))
            if query.get("type") != ["dash-db"]:
                return 400, {"message": "expected type=dash-db"}
            return 200, [{"uid": u, "title": d["dashboard"]["title"], "type": "dash-db", "folderUid": d["folderUid"]}
                         for u, d in self.dashboards.items() if u in uids]
        if method == "GET" and parts[:3] == ["api", "dashboards", "uid"] and len(parts) == 4:
            d = self.dashboards.get(parts[3])
            if d is None:
                return 404, {"message": "Dashboard not found"}
            return 200, {"dashboard": d["dashboard"], "meta": {"folderUid": d["folderUid"], "provisioned": d["provisioned"],
                                                               "version": d["dashboard"]["version"]}}
        if method == "POST" and path == "/api/dashboards/db":
            return self.save(body)
        if method == "GET" and parts[:3] == ["api", "datasources", "uid"] and len(parts) == 4:
            return (200, {"uid": parts[3]}) if parts[3] in self.datasources else (404, {"message": "Data source not found"})
        self.unexpected.append(f"{method} {path}")
        return 404, {"message": "Not found"}

    def save(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) - {"dashboard", "folderUid", "folderId", "overwrite", "message"}:
            return 400, {"message": "bad request body"}
        dash = body.get("dashboard")
        if not isinstance(dash, dict) or not dash.get("title"):
            return 400, {"message": "Dashboard title cannot be empty"}
        uid = dash.get("uid") or ""
        if not uid or len(uid) > 40:
            return 400, {"message": "Dashboard UID too long"}
        if body.get("folderUid") not in self.folders:
            return 400, {"message": "folder not found"}
        old = self.dashboards.get(uid)
        if old is not None and old["provisioned"]:
            return 400, {"message": "Cannot save provisioned dashboard"}
        if old is not None and not body.get("overwrite"):
            return 412, {"message": "A dashboard with the same uid already exists", "status": "name-exists"}
        version = old["dashboard"]["version"] + 1 if old else 1
        stored = {**dash, "id": old["dashboard"]["id"] if old else len(self.dashboards) + 1, "version": version}
        self.dashboards[uid] = {"dashboard": stored, "folderUid": body["folderUid"], "provisioned": False}
        return 200, {"id": stored["id"], "uid": uid, "url": f"/d/{uid}/x", "status": "success", "version": version, "slug": "x"}


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    fake = FakeGrafana()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            u = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: Any = None
            if raw:
                if self.headers.get("Content-Type", "").split(";")[0] != "application/json":
                    status, doc = 415, {"message": "Content-Type must be application/json"}
                    self._reply(status, doc)
                    return
                body = json.loads(raw)
            status, doc = fake.handle(self.command, u.path, parse_qs(u.query), self.headers, body)
            self._reply(status, doc)

        def _reply(self, status: int, doc: Any) -> None:
            data = json.dumps(doc).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def do_push(fake: FakeGrafana, options: BuildOptions | None = None, token: str = TOKEN):  # noqa: ANN201
    with GrafanaClient(fake.url, token, timeout=10) as client:
        return push(client, build_dashboards(CITY, options), folder_uid(CITY), folder_title(CITY))


def test_first_push_creates_the_city_folder_and_every_dashboard(grafana: FakeGrafana) -> None:
    report = do_push(grafana)
    assert report.folder_created and report.grafana_version == "11.1.0"
    assert sorted(report.created) == sorted(d["uid"] for d in build_dashboards(CITY).values())
    assert not report.updated and not report.unchanged and not report.warnings
    assert grafana.folders == {"lifewatch-shihezi": {"id": 1, "uid": "lifewatch-shihezi", "title": "Lifewatch · Shihezi",
                                                     "url": "/dashboards/f/lifewatch-shihezi/"}}
    saves = grafana.saves()
    assert len(saves) == 8
    assert all(s["overwrite"] is True and s["folderUid"] == "lifewatch-shihezi" and s["dashboard"]["id"] is None for s in saves)
    assert not grafana.unexpected
    methods = [(m, p) for m, p, _, _ in grafana.requests[:3]]
    assert methods == [("GET", "/api/health"), ("GET", "/api/folders/lifewatch-shihezi"), ("POST", "/api/folders")]


def test_a_second_push_changes_nothing(grafana: FakeGrafana) -> None:
    do_push(grafana)
    versions = {u: d["dashboard"]["version"] for u, d in grafana.dashboards.items()}
    n = len(grafana.requests)
    report = do_push(grafana)
    assert not report.folder_created and not report.created and not report.updated and len(report.unchanged) == 8
    assert {u: d["dashboard"]["version"] for u, d in grafana.dashboards.items()} == versions
    assert not [r for r in grafana.requests[n:] if r[0] == "POST"]


def test_a_changed_build_updates_only_what_changed(grafana: FakeGrafana) -> None:
    do_push(grafana)
    report = do_push(grafana, BuildOptions(api_url="https://alerts.example.org"))
    changed = {"lw-shihezi-queue", *(f"lw-shihezi-{lid}" for lid in ("water", "power", "gas", "bridge", "air"))}
    assert set(report.updated) == changed and not report.created
    assert set(report.unchanged) == {"lw-shihezi-overview", "lw-shihezi-platform"}
    assert grafana.dashboards["lw-shihezi-queue"]["dashboard"]["version"] == 2


def test_a_provisioned_dashboard_is_refused_by_name(grafana: FakeGrafana) -> None:
    do_push(grafana)
    grafana.dashboards["lw-shihezi-overview"]["provisioned"] = True
    with pytest.raises(PushError, match="lw-shihezi-overview"):
        do_push(grafana, BuildOptions(api_url="https://x.example.org"))
    assert grafana.dashboards["lw-shihezi-queue"]["dashboard"]["version"] == 2  # the others were still pushed


def test_a_wrong_token_is_an_error_not_a_silent_skip(grafana: FakeGrafana) -> None:
    with pytest.raises(PushError, match="HTTP 401"):
        do_push(grafana, token="wrong")
    assert not grafana.dashboards


def test_a_missing_datasource_is_reported(grafana: FakeGrafana) -> None:
    grafana.datasources.discard("lifewatch-prometheus")
    report = do_push(grafana)
    assert len(report.warnings) == 1 and "lifewatch-prometheus" in report.warnings[0]


def test_cli_push(grafana: FakeGrafana, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    p = argparse.ArgumentParser()
    add_arguments(p)
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    assert cli(p.parse_args(["push", "--url", grafana.url]), Settings()) == 2
    assert cli(p.parse_args(["push", "--url", grafana.url, "--token", TOKEN]), Settings()) == 0
    assert "8 created" in capsys.readouterr().out
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    assert cli(p.parse_args(["push", "--url", grafana.url]), Settings()) == 0
    assert "8 unchanged" in capsys.readouterr().out
    assert cli(p.parse_args(["push", "--url", grafana.url, "--token", "wrong"]), Settings()) == 1


def test_cli_build_writes_one_folder_per_city(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    p = argparse.ArgumentParser()
    add_arguments(p)
    assert cli(p.parse_args(["build", "--out", str(tmp_path)]), Settings()) == 0
    files = sorted(f.name for f in (tmp_path / "shihezi").glob("*.json"))
    assert files == sorted(build_dashboards(CITY))
    (tmp_path / "shihezi" / "old.json").write_text("{}")
    assert cli(p.parse_args(["build", "--out", str(tmp_path), "--api-url", "https://a.example.org"]), Settings()) == 0
    assert not (tmp_path / "shihezi" / "old.json").exists()
    queue = json.loads((tmp_path / "shihezi" / "queue.json").read_text())
    assert next(v for v in queue["templating"]["list"] if v["name"] == "api_url")["query"] == "https://a.example.org"
    assert cli(p.parse_args(["build", "--city", str(tmp_path / "nope.yaml")]), Settings()) == 2
