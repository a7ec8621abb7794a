"""InfluxQL text for the dashboards: every identifier quoted, every literal escaped.

Grafana substitutes ``$timeFilter``, ``$__interval`` and the dashboard
variables (``$rp``, ``$district``, ``$sensor``, ``$unit``) before the query
reaches InfluxDB; tests do the same substitution (tests/dashboards/).
Readings are read through ``"$rp"."<lifeline>"``: the retention policy is a
dashboard variable so that long time ranges can switch to rollup policies
once the performance work adds them (they must keep the field names).

>>> regex_of(["w-d01-001", "a/b"])
'/^(w\\\\-d01\\\\-001|a\\\\/b)$/'
>>> readings("water")
'"$rp"."water"'
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dashboards.materialize import (
    ALERTS_OPEN,
    LIFELINE_STATUS,
    META_RP,
    SENSOR_STATE,
    SENSORS,
    STATE_RP,
    STATE_WINDOW_S,
)
from lifewatch.lifelines import Lifeline
from lifewatch.lineprotocol import quote_ident, quote_literal

TIME_FILTER = "$timeFilter"
INTERVAL = "$__interval"
RECENT = f"time > now() - {STATE_WINDOW_S}s"
DISTRICT = '"district" =~ /^$district$/'
SENSOR = '"sensor_id" =~ /^$sensor$/'
UNIT = '"unit" =~ /^$unit$/'


def q(name: str) -> str:
    return quote_ident(name)


def lit(text: str) -> str:
    return quote_literal(text)


def readings(lifeline: str) -> str:
    return f'"$rp".{q(lifeline)}'


def state(measurement: str) -> str:
    return f"{q(STATE_RP)}.{q(measurement)}"


def regex_of(values: Iterable[str]) -> str:
    """An InfluxQL regex literal matching exactly these values."""
    parts = [re.escape(v).replace("/", "\\/") for v in values]
    return "/^(" + "|".join(parts) + ")$/"


def presence_metrics(lifeline: Lifeline) -> list[str]:
    """Metrics such that every sensor kind carries exactly one of them: their counts add up to readings.

    >>> from lifewatch.lifelines import load_lifelines
    >>> [presence_metrics(ll) for ll in load_lifelines().values()]
    [['pressure'], ['load'], ['pressure', 'ch4_lel'], ['strain', 'deflection', 'tilt', 'frequency'], ['pm25']]

    Metrics that cannot be a missing-value sentinel come first (a sentinel
    makes the field absent from that point), then the most widely carried.
    """
    kinds = list(lifeline.sensor_kinds.values())
    freq = {m: sum(m in k.metrics for k in kinds) for m in lifeline.metrics}
    order = list(lifeline.metrics)

    def has_sentinel(m: str) -> bool:
        spec = lifeline.metrics[m]
        return bool(spec.sentinel_numbers or spec.sentinel_strings or spec.nan_is_sentinel)

    chosen: list[str] = []
    for m in sorted(order, key=lambda m: (has_sentinel(m), -freq[m], order.index(m))):
        if freq[m] and all(not (m in k.metrics and set(chosen) & set(k.metrics)) for k in kinds):
            chosen.append(m)
    if any(len(set(chosen) & set(k.metrics)) != 1 for k in kinds):
        raise ValueError(f"{lifeline.id}: no metric set covers every sensor kind exactly once")
    return chosen


def readings_count(lifeline: Lifeline, where: str, group: str) -> str:
    """Readings per bucket: the sum of the presence metrics' counts (fill(0) so a missing field adds 0)."""
    expr = " + ".join(f"count({q(m)})" for m in presence_metrics(lifeline))
    return f'SELECT {expr} AS "readings" FROM {readings(lifeline.id)} WHERE {where} GROUP BY {group} fill(0)'


# ---------------------------------------------------------------- derived measurements (dashboards.materialize)


def lifeline_status(fields: Iterable[tuple[str, str]], lifeline: str) -> str:
    """The newest ``lifeline_status`` values of one lifeline (or ``all``), as named columns."""
    cols = ", ".join(f"last({q(f)}) AS {q(alias)}" for f, alias in fields)
    return f"SELECT {cols} FROM {state(LIFELINE_STATUS)} WHERE {RECENT} AND \"lifeline\" = {lit(lifeline)}"


def lifeline_status_history(fields: Iterable[tuple[str, str]], lifeline: str) -> str:
    cols = ", ".join(f"last({q(f)}) AS {q(alias)}" for f, alias in fields)
    return (f"SELECT {cols} FROM {state(LIFELINE_STATUS)} WHERE {TIME_FILTER} AND \"lifeline\" = {lit(lifeline)} "
            f"GROUP BY time({INTERVAL}) fill(none)")


def sensor_metadata(where: str = "") -> str:
    cond = f" WHERE {where}" if where else ""
    return (f'SELECT "latitude", "longitude", "name", "lifeline", "district", "sensor_id", "kind" '
            f"FROM {q(META_RP)}.{q(SENSORS)}{cond}")


STATE_FIELDS = ("latitude", "longitude", "state_code", "state", "level", "age_s", "open_alerts")


def sensor_states(where: str) -> str:
    """Sensors that are not ok now: newest ``sensor_state`` point per sensor, recovered ones filtered out."""
    inner = ", ".join(f"last({q(f)}) AS {q(f)}" for f in STATE_FIELDS)
    cols = ", ".join(q(f) for f in (*STATE_FIELDS, "sensor_id", "lifeline", "district", "kind", "asset"))
    return (f"SELECT {cols} FROM (SELECT {inner} FROM {state(SENSOR_STATE)} WHERE {RECENT} AND {where} "
            f'GROUP BY "sensor_id", "lifeline", "district", "kind", "asset") WHERE "state_code" > 0')


OPEN_FIELDS = ("open", "level_n", "title", "kind", "asset", "count", "first_seen_ms", "age_s")
OPEN_TAGS = ("alert_id", "level", "state", "lifeline", "district", "unit")


def open_alerts(where: str, columns: Iterable[str] | None = None) -> str:
    """Open alerts now: newest ``alerts_open`` point per alert series, closed ones filtered out."""
    inner = ", ".join(f"last({q(f)}) AS {q(f)}" for f in OPEN_FIELDS)
    cols = ", ".join(q(c) for c in (columns or (*OPEN_FIELDS[1:], *OPEN_TAGS)))
    return (f"SELECT {cols} FROM (SELECT {inner} FROM {state(ALERTS_OPEN)} WHERE {RECENT} AND {where} "
            f"GROUP BY {', '.join(q(t) for t in OPEN_TAGS)}) WHERE \"open\" = 1")


def open_alert_counts(where: str, by: str) -> str:
    """Open alerts now, counted per ``by`` (a tag of alerts_open: state, level, unit, lifeline...)."""
    return (f"SELECT count(\"open\") AS \"alerts\" FROM (SELECT last(\"open\") AS \"open\" FROM {state(ALERTS_OPEN)} "
            f"WHERE {RECENT} AND {where} GROUP BY {', '.join(q(t) for t in OPEN_TAGS)}) WHERE \"open\" = 1 GROUP BY {q(by)}")


def alert_annotation(level: str, where: str) -> str:
    """Raised alerts of one level (the notifier's ``alerts`` measurement), for annotations."""
    return (f'SELECT "title", "text", "lifeline", "district", "kind" FROM "alerts" WHERE {TIME_FILTER} '
            f"AND \"event\" = 'alert.raised' AND \"level\" = {lit(level)} AND {where}")
