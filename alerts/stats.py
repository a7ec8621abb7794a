"""The control room's KPIs: time to acknowledge and time to resolve, per unit and level.

Both are wall-clock durations from the moment an alert entered the queue
(``created_at``) to its acknowledgement (``acknowledged_at``) or its
resolution (``resolved_at``, the latest one if a resolution was sent back).
Alerts are selected by ``created_at`` in ``[since, until)``.  Percentiles
interpolate linearly between ranks (numpy's default):

>>> percentile([10.0, 20.0, 30.0, 40.0], 50), percentile([10.0, 20.0, 30.0, 40.0], 90)
(25.0, 37.0)
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts.models import Alert
from lifewatch.levels import Level


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        raise ValueError("no values")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarise(values: list[float]) -> dict[str, float | int | None]:
    v = sorted(values)
    if not v:
        return {"count": 0, "mean_s": None, "p50_s": None, "p90_s": None}
    return {"count": len(v), "mean_s": sum(v) / len(v), "p50_s": percentile(v, 50), "p90_s": percentile(v, 90)}


def kpis(
    s: Session,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    unit: str | None = None,
    level: Level | None = None,
) -> dict[str, Any]:
    q = select(Alert.unit, Alert.level, Alert.created_at, Alert.acknowledged_at, Alert.ack_due, Alert.resolved_at, Alert.resolve_due)
    if since is not None:
        q = q.where(Alert.created_at >= since)
    if until is not None:
        q = q.where(Alert.created_at < until)
    if unit is not None:
        q = q.where(Alert.unit == unit)
    if level is not None:
        q = q.where(Alert.level == level.value)
    tta: dict[tuple[str, int], list[float]] = defaultdict(list)
    ttr: dict[tuple[str, int], list[float]] = defaultdict(list)
    late = {"acknowledge": defaultdict(int), "resolve": defaultdict(int)}
    alerts = defaultdict(int)
    for u, lv, created, acked, ack_due, resolved, resolve_due in s.execute(q):
        alerts[(u, lv)] += 1
        if acked is not None:
            tta[(u, lv)].append((acked - created).total_seconds())
            late["acknowledge"][(u, lv)] += acked > ack_due
        if resolved is not None:
            ttr[(u, lv)].append((resolved - created).total_seconds())
            late["resolve"][(u, lv)] += resolved > resolve_due

    def rows(table: dict[tuple[str, int], list[float]], sla: str) -> list[dict[str, Any]]:
        out = []
        for u, lv in sorted(alerts, key=lambda k: (k[0], k[1])):
            out.append({"unit": u, "level": Level(lv).label, **summarise(table.get((u, lv), [])), "breached": late[sla][(u, lv)]})
        everything = [x for vals in table.values() for x in vals]
        out.append({"unit": None, "level": None, **summarise(everything), "breached": sum(late[sla].values())})
        return out

    return {
        "since": since,
        "until": until,
        "alerts": sum(alerts.values()),
        "time_to_acknowledge": rows(tta, "acknowledge"),
        "time_to_resolve": rows(ttr, "resolve"),
    }
