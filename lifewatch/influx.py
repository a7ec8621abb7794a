"""A small client for InfluxDB's v1-compatible HTTP API (``/write``, ``/query``, ``/ping``).

Every InfluxDB from 1.x to 3.x serves this API, so the platform needs no
other.  Failures are typed, as Telegraf's outputs do:

* :class:`InfluxUnavailable`: connection error, timeout or 5xx: retry later;
* :class:`InfluxRejected`: 4xx (bad points, partial write): retrying the same
  points cannot succeed; the caller dead-letters them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import orjson


class InfluxError(Exception):
    pass


class InfluxUnavailable(InfluxError):
    """Retryable: the server is down, slow, or answered 5xx."""


class InfluxRejected(InfluxError):
    """Not retryable: the server refused (some of) the points with a 4xx."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message

    @property
    def partial(self) -> bool:
        return "partial write" in self.message


class InfluxQueryError(InfluxError):
    """The query itself failed (syntax, unknown database...)."""


@dataclass(slots=True)
class Series:
    name: str
    tags: dict[str, str]
    columns: list[str]
    values: list[list[Any]]

    def rows(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, v, strict=False)) for v in self.values]


class InfluxClient:
    def __init__(self, url: str, db: str, username: str = "", password: str = "", timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.db = db
        auth = (username, password) if username else None
        self._http = httpx.Client(base_url=self.url, timeout=timeout, auth=auth)

    @classmethod
    def from_settings(cls, s) -> InfluxClient:  # noqa: ANN001
        return cls(s.influx_url, s.influx_db, s.influx_username, s.influx_password, s.influx_timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> InfluxClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ping(self) -> bool:
        try:
            return self._http.get("/ping", timeout=2.0).status_code == 204
        except httpx.HTTPError:
            return False

    def write(self, body: bytes | str, precision: str = "ns", db: str | None = None, rp: str | None = None) -> None:
        """POST line protocol to ``/write``.  Raises a typed error on failure."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        params = {"db": db or self.db, "precision": precision}
        if rp:
            params["rp"] = rp
        try:
            resp = self._http.post("/write", params=params, content=body)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from None
        if resp.status_code == 204:
            return
        message = _error_text(resp)
        if 400 <= resp.status_code < 500 and resp.status_code not in (408, 429):
            raise InfluxRejected(resp.status_code, message)
        raise InfluxUnavailable(f"HTTP {resp.status_code}: {message}")

    def query(self, q: str, db: str | None = None, epoch: str | None = "ns", method: str = "GET") -> list[Series]:
        """Run InfluxQL; return the series of the first statement."""
        results = self.query_all(q, db=db, epoch=epoch, method=method)
        return results[0] if results else []

    def query_all(self, q: str, db: str | None = None, epoch: str | None = "ns", method: str = "GET") -> list[list[Series]]:
        params = {"q": q}
        if db is not None or self.db:
            params["db"] = db if db is not None else self.db
        if epoch:
            params["epoch"] = epoch
        try:
            if method == "POST":
                resp = self._http.post("/query", data=params)
            else:
                resp = self._http.get("/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"{type(exc).__name__}: {exc}") from None
        if resp.status_code >= 500:
            raise InfluxUnavailable(f"HTTP {resp.status_code}: {_error_text(resp)}")
        doc = orjson.loads(resp.content)
        if "error" in doc:
            raise InfluxQueryError(doc["error"])
        out: list[list[Series]] = []
        for res in doc.get("results", []):
            if "error" in res:
                raise InfluxQueryError(res["error"])
            out.append(
                [
                    Series(s.get("name", ""), s.get("tags") or {}, s.get("columns", []), s.get("values", []))
                    for s in res.get("series", [])
                ]
            )
        return out

    def create_database(self, db: str | None = None) -> None:
        from lifewatch.lineprotocol import quote_ident

        self.query_all(f"CREATE DATABASE {quote_ident(db or self.db)}", db="", method="POST")


def _error_text(resp: httpx.Response) -> str:
    try:
        return str(orjson.loads(resp.content).get("error", resp.text))[:500]
    except Exception:  # noqa: BLE001 - any body is acceptable as an error text
        return resp.text[:500]
