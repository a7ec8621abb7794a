"""Test helpers: a seeded demo-city database, Grafana's template substitution, every query of a dashboard.

Seeding writes one simulated hour of the whole demo city (simulators.engine,
encoded by lifewatch.lineprotocol.encode_reading, written with
InfluxClient.write), silences one sensor per lifeline for the last 40
minutes (longer than 5 reporting intervals of any kind: they are offline), and writes alert state changes with the
notifier's own point builder (alerts.notify.influx.alert_point): on every
lifeline one alert per warning level, walked through the lifecycle so that
every state and event kind appears.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from lifewatch.city import City, load_city
from lifewatch.influx import InfluxClient
from lifewatch.levels import Level
from lifewatch.lineprotocol import encode_reading
from lifewatch.model import NS

MINUTE = 60 * NS


@dataclass
class SeededAlert:
    alert_id: str
    lifeline: str
    level: Level
    states: list[str]  # the states it walked through, in order (the last is its state now)
    sensor: str
    unit: str
    level_now: Level | None = None

    @property
    def state(self) -> str:
        return self.states[-1]


@dataclass
class Seed:
    client: InfluxClient
    city: City
    now_ns: int
    start_ns: int
    offline: dict[str, str]  # lifeline -> the sensor silenced for the last 40 minutes
    alerts: list[SeededAlert] = field(default_factory=list)
    readings: int = 0


# Per level, the lifecycle each seeded alert walks (every state and event kind appears at least once).
LIFECYCLES: dict[Level, list[str]] = {
    Level.RED: ["new", "acknowledged", "dispatched"],
    Level.ORANGE: ["new", "acknowledged", "resolved"],
    Level.YELLOW: ["new"],
    Level.BLUE: ["new", "cleared"],
}
# extra alerts on water: closed after resolution, a false alarm, and a yellow one raised to orange
EXTRA = [("water", Level.ORANGE, ["new", "acknowledged", "resolved", "closed"]),
         ("water", Level.YELLOW, ["new", "false_alarm"]),
         ("power", Level.YELLOW, ["new", "level_raised:orange"])]


def _sensor_for(city: City, lifeline: str, i: int) -> str:
    sensors = city.sensors_of(lifeline)
    return sensors[(i * 3 + 1) % len(sensors)].id


def write_alerts(client: InfluxClient, city: City, now_ns: int) -> list[SeededAlert]:
    """State changes of seeded alerts through the notifier's point builder, 40..10 minutes before now."""
    from alerts.notify.influx import alert_point
    from alerts.notify.message import Notice, Texts

    texts = Texts(city)
    plan = [(lid, lv, LIFECYCLES[lv]) for lid in ("water", "power", "gas", "bridge", "air") for lv in Level] + EXTRA
    out: list[SeededAlert] = []
    lines: list[str] = []
    outbox = 1000
    for i, (lid, level, walk) in enumerate(plan):
        sensor = _sensor_for(city, lid, i)
        s = city.sensors[sensor]
        unit = city.unit_for(lid, s.district).id
        aid = uuid.uuid5(uuid.NAMESPACE_URL, f"lifewatch-test-{i}").hex[:16]
        kind = "sensor_stuck"
        seeded = SeededAlert(aid, lid, level, [], sensor, unit)
        current_level = level
        t = now_ns - 40 * MINUTE + i * NS
        for step, state in enumerate(walk):
            if state.startswith("level_raised:"):
                current_level = Level.parse(state.split(":")[1])
                event, state = "alert.level_raised", seeded.states[-1]
            else:
                event = "alert.raised" if step == 0 else "alert.transition"
            seeded.states.append(state)
            alert = {"id": aid, "key": f"{lid}:{sensor}:{kind}", "kind": kind, "lifeline": lid, "district": s.district,
                     "asset": s.asset, "sensors": [sensor], "unit": unit, "level": current_level.label, "state": state,
                     "count": 1, "peak_score": 3.5, "peak_value": 1.0, "metric": None}
            payload: dict[str, Any] = {"event": event, "alert": alert}
            if event == "alert.transition":
                payload.update({"from": seeded.states[-2], "to": state})
            outbox += 1
            at = datetime.fromtimestamp((t + step * 5 * MINUTE) / NS, tz=UTC)
            lines.append(alert_point(Notice(outbox, event, at, unit, current_level, payload), texts))
        seeded.level_now = current_level
        out.append(seeded)
    client.write("\n".join(lines))
    return out


def seed(client: InfluxClient, now_ns: int, city: City | None = None) -> Seed:
    from simulators.engine import Simulation

    city = city or load_city()
    start = now_ns - 60 * MINUTE
    start -= start % MINUTE
    offline = {lid: city.sensors_of(lid)[-1].id for lid in ("water", "power", "gas", "bridge", "air")}
    cut = now_ns - 40 * MINUTE
    silenced = set(offline.values())
    sim = Simulation(city, seed=7, start_ns=start)
    readings = [r for r in sim.readings_between(start, now_ns) if not (r.sensor_id in silenced and r.ts_ns >= cut)]
    lines = [encode_reading(r) for r in readings]
    for i in range(0, len(lines), 5000):
        client.write("\n".join(lines[i : i + 5000]))
    s = Seed(client, city, now_ns, start, offline, readings=len(readings))
    s.alerts = write_alerts(client, city, now_ns)
    return s


# ---------------------------------------------------------------- Grafana's substitution


@dataclass(frozen=True)
class Query:
    dashboard: str
    where: str  # "panel <title> / <refId>", "annotation <name>", "variable <name>"
    text: str
    kind: str  # target | annotation | variable
    result_format: str = "time_series"
    time_from: str = ""  # a panel's own relative range ("30d")
    interval: str = ""  # a panel's minimum interval
    panel_type: str = ""
    ref_id: str = ""


def influx_queries(dashboard: dict[str, Any]) -> Iterator[Query]:
    """Every InfluxQL query of a dashboard: panel targets, annotations, template variables."""
    uid = dashboard["uid"]
    for p in dashboard["panels"]:
        for t in p.get("targets", []):
            if t["datasource"]["type"] == "influxdb":
                yield Query(uid, f"panel {p['title']!r} / {t['refId']}", t["query"], "target", t.get("resultFormat", "time_series"),
                            p.get("timeFrom", ""), p.get("interval", ""), p["type"], t["refId"])
    for a in dashboard["annotations"]["list"]:
        if a["datasource"]["type"] == "influxdb":
            yield Query(uid, f"annotation {a['name']!r}", a["target"]["query"], "annotation")
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            yield Query(uid, f"variable {v['name']!r}", v["query"], "variable")


def prom_queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for p in dashboard["panels"]:
        for t in p.get("targets", []):
            if t["datasource"]["type"] == "prometheus":
                yield f"{dashboard['uid']} panel {p['title']!r} / {t['refId']}", t["expr"]


def duration_s(text: str) -> int:
    m = re.fullmatch(r"(\d+)([smhd])", text)
    if not m:
        raise ValueError(f"not a Grafana duration: {text!r}")
    return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]


def substitute(query: Query, variables: dict[str, str], now_ns: int, dashboard_from: str = "6h", interval: str = "1m") -> str:
    """What Grafana's InfluxDB datasource sends: ``$timeFilter`` in ms, ``$__interval``, variables as regex-ready text."""
    span = duration_s(query.time_from or dashboard_from)
    to_ms = now_ns // 1_000_000
    from_ms = to_ms - span * 1000
    ivl = query.interval if query.interval and duration_s(query.interval) > duration_s(interval) else interval
    text = query.text.replace("$timeFilter", f"time >= {from_ms}ms and time <= {to_ms}ms")
    text = text.replace("$__interval", ivl)
    for name in sorted(variables, key=len, reverse=True):
        text = text.replace("$" + name, variables[name])
    left = re.findall(r"\$\w+", text)
    if left:
        raise AssertionError(f"{query.dashboard} {query.where}: unsubstituted {left} in {text}")
    return text


def regex_value(value: str) -> str:
    """A single variable value as Grafana puts it into a regex (its special characters escaped)."""
    return re.sub(r"([\\^$.|?*+()\[\]{}/-])", r"\\\1", value)
