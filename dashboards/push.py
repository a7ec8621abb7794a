"""Create or update a city's dashboards in a running Grafana through its HTTP API (idempotent by uid).

Grafana's documented API (``/api/...``, served by Grafana 8 to 12):

1. ``GET /api/health`` - reachable?
2. ``GET /api/folders/:uid``; on 404 ``POST /api/folders {"uid", "title"}`` - one folder per city
   (``lifewatch-<city slug>``);
3. ``GET /api/search?type=dash-db&dashboardUIDs=...`` - which of our uids exist already;
4. for each existing one ``GET /api/dashboards/uid/:uid``: unchanged (same JSON but ``id``/``version``,
   same folder) -> left alone, so a repeated push creates no new versions; provisioned -> refused
   (Grafana cannot save it; remove the file provider or push elsewhere);
5. ``POST /api/dashboards/db {"dashboard", "folderUid", "overwrite": true, "message"}`` for the new and changed ones;
6. ``GET /api/datasources/uid/:uid`` for the datasources the dashboards name - a warning when missing.

Authentication: ``Authorization: Bearer <service account token>`` (Editor
on the folder is enough; creating the folder needs folder-create rights).
Talks HTTP with httpx, not ``grafana-client``: that package pulls in
``niquests`` and ``urllib3-future``, which replaces ``urllib3`` for every
other library in the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from dashboards.grafana import DS_INFLUX, DS_PROMETHEUS


class PushError(Exception):
    """Grafana refused or could not be reached; the message says which request and why."""


@dataclass
class PushReport:
    folder_uid: str
    folder_created: bool = False
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    grafana_version: str = ""

    def summary(self) -> str:
        parts = [f"folder {self.folder_uid}" + (" (created)" if self.folder_created else ""),
                 f"{len(self.created)} created", f"{len(self.updated)} updated", f"{len(self.unchanged)} unchanged"]
        return ", ".join(parts)


def _comparable(dashboard: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in dashboard.items() if k not in ("id", "version")}


class GrafanaClient:
    def __init__(self, url: str, token: str, timeout: float = 30.0, transport: httpx.BaseTransport | None = None):
        if not token:
            raise PushError("a Grafana service account token is required")
        self.http = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, transport=transport,
                                 headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> GrafanaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, *, ok: tuple[int, ...] = (200,), **kw: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise PushError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        if resp.status_code not in ok:
            try:
                message = resp.json().get("message", resp.text)
            except ValueError:
                message = resp.text
            raise PushError(f"{method} {path}: HTTP {resp.status_code}: {str(message)[:300]}")
        return resp

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/api/health").json()

    def ensure_folder(self, uid: str, title: str) -> bool:
        """True when the folder had to be created."""
        if self._call("GET", f"/api/folders/{uid}", ok=(200, 404)).status_code == 200:
            return False
        self._call("POST", "/api/folders", json={"uid": uid, "title": title})
        return True

    def existing(self, uids: list[str]) -> set[str]:
        params = [("type", "dash-db"), *(("dashboardUIDs", u) for u in uids)]
        hits = self._call("GET", "/api/search", params=params).json()
        return {h["uid"] for h in hits if h.get("uid") in uids}

    def get_dashboard(self, uid: str) -> dict[str, Any]:
        return self._call("GET", f"/api/dashboards/uid/{uid}").json()

    def save_dashboard(self, dashboard: dict[str, Any], folder_uid: str, message: str) -> dict[str, Any]:
        body = {"dashboard": {**_comparable(dashboard), "id": None}, "folderUid": folder_uid, "overwrite": True, "message": message}
        return self._call("POST", "/api/dashboards/db", json=body).json()

    def has_datasource(self, uid: str) -> bool:
        return self._call("GET", f"/api/datasources/uid/{uid}", ok=(200, 404)).status_code == 200


def push(client: GrafanaClient, dashboards: dict[str, dict[str, Any]], folder_uid: str, folder_title: str,
         message: str = "lifewatch dashboards push") -> PushReport:
    report = PushReport(folder_uid)
    report.grafana_version = str(client.health().get("version", ""))
    report.folder_created = client.ensure_folder(folder_uid, folder_title)
    by_uid = {d["uid"]: d for d in dashboards.values()}
    exists = client.existing(list(by_uid))
    refused = []
    for uid, dash in by_uid.items():
        if uid in exists:
            current = client.get_dashboard(uid)
            meta = current.get("meta") or {}
            if meta.get("provisioned"):
                refused.append(uid)
                continue
            if _comparable(current.get("dashboard") or {}) == _comparable(dash) and meta.get("folderUid") == folder_uid:
                report.unchanged.append(uid)
                continue
        client.save_dashboard(dash, folder_uid, message)
        (report.updated if uid in exists else report.created).append(uid)
    for ds in (DS_INFLUX, DS_PROMETHEUS):
        if not client.has_datasource(ds["uid"]):
            report.warnings.append(f"datasource uid {ds['uid']!r} ({ds['type']}) does not exist in this Grafana: its panels "
                                   "will show errors (dashboards/provisioning/datasources/lifewatch.yaml defines it)")
    if refused:
        raise PushError(f"these dashboards are provisioned from files in this Grafana and cannot be saved through the API: "
                        f"{', '.join(refused)} (the others were pushed: {report.summary()})")
    return report
