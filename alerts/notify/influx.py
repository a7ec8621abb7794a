"""InfluxDB: every alert state change as a point of the ``alerts`` measurement (Grafana annotations and tables).

::

    alerts,unit=shz-water,level=orange,lifeline=water,district=d01,kind=end_pressure_low,state=new,event=alert.raised
        alert_id="…",key="…",asset="…",count=1i,peak=3.0,peak_value=0.13,title="…",text="…",outbox_id=12i  <ts>

The timestamp is the outbox row's ``created_at`` (when the change happened,
wall time, microseconds) plus ``outbox_id mod 1000`` nanoseconds, so two
changes of one alert in the same transaction (same tags, same microsecond)
stay two points, and a redelivered notice overwrites its own point
(InfluxDB's series + timestamp identity makes the write idempotent).
Reminders and comments are not state changes and are skipped by default
(``LIFEWATCH_NOTIFY_INFLUX_SKIP``).  InfluxDB down, 5xx, bad credentials or a
missing database are retried; a point InfluxDB refuses (400: e.g. a field type
conflict) is dead after it was isolated from its batch.  Grafana: an annotation query such as
``SELECT "title", "text" FROM "alerts" WHERE $timeFilter AND "level" = 'red'``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from alerts.clock import to_ns
from alerts.notify.channel import DELIVERED, NOT_TRIED, Channel, Outcome, Route, dead, retry
from alerts.notify.message import Notice, Texts
from lifewatch.influx import InfluxClient, InfluxRejected, InfluxUnavailable
from lifewatch.lineprotocol import encode_point

log = logging.getLogger("lifewatch.notify.influx")

MEASUREMENT = "alerts"
# answers about the points themselves (bad line, field type conflict, too large): dead after isolating the
# bad point; any other refusal (401/403 credentials, 404 database not found) is retried, nothing is lost
POINT_ERRORS = frozenset({400, 413})
TEXT_MAX = 1000


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def alert_point(n: Notice, texts: Texts) -> str:
    a = n.alert
    tags = {
        "unit": n.unit or a.get("unit") or "",
        "level": n.level_label or "",
        "lifeline": a.get("lifeline") or "",
        "district": a.get("district") or "",
        "kind": a.get("kind") or "",
        "state": n.state or "",
        "event": n.kind,
    }
    count = a.get("count")
    fields: dict[str, object] = {
        "alert_id": a.get("id") or "",
        "key": a.get("key") or "",
        "asset": a.get("asset"),
        "count": int(count) if isinstance(count, int | float) else None,
        "peak": _num(a.get("peak_score")),
        "peak_value": _num(a.get("peak_value")),
        "title": f"{texts.title_zh(n)} / {texts.title_en(n)}",
        "text": "\n".join(f"{zh} {en}: {v}" for zh, en, v in texts.lines(n))[:TEXT_MAX],
        "outbox_id": int(n.outbox_id),
    }
    return encode_point(MEASUREMENT, tags, fields, to_ns(n.at) + n.outbox_id % 1000)


class InfluxChannel(Channel):
    name = "influx"

    def __init__(self, client: InfluxClient, texts: Texts, skip_events: frozenset[str] = frozenset()):
        self.client = client
        self.texts = texts
        self.route = Route(skip_events=frozenset(skip_events), alerts_only=True)

    def __repr__(self) -> str:
        return f"InfluxChannel({self.client.url}, db={self.client.db!r})"

    def close(self) -> None:
        self.client.close()

    def deliver(self, notices: list[Notice], now: datetime) -> list[Outcome]:
        if not notices:
            return []
        lines: list[str | None] = []
        for n in notices:
            try:
                lines.append(alert_point(n, self.texts))
            except ValueError as exc:  # nothing to write: a permanent problem of this notice
                lines.append(None)
                log.warning("outbox %d: no InfluxDB point: %s", n.outbox_id, exc)
        body = "\n".join(x for x in lines if x is not None)
        if not body:
            return [dead("no point could be built")] * len(notices)
        try:
            self.client.write(body)
            return [DELIVERED if x is not None else dead("no point could be built") for x in lines]
        except InfluxUnavailable as exc:
            return [retry(f"InfluxDB unavailable: {exc}")] + [NOT_TRIED] * (len(notices) - 1)
        except InfluxRejected as exc:
            if exc.status not in POINT_ERRORS:  # auth, missing database...: the receiver is unusable, not the point
                return [retry(f"InfluxDB refused the write: {exc}")] + [NOT_TRIED] * (len(notices) - 1)
            if len(notices) == 1:
                return [dead(f"InfluxDB rejected the point: {exc}")]
        # a batch was rejected: find the bad point(s) one by one
        out: list[Outcome] = []
        for n in notices:
            o = self.deliver([n], now)[0]
            out.append(o)
            if o.result == "retry":
                break
        return out + [NOT_TRIED] * (len(notices) - len(out))
