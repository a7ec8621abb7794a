"""Derived measurements for the dashboards: sensor state, open alerts, lifeline counts and response KPIs.

InfluxQL (1.x) cannot join measurements, cannot group by a field, and cannot
take "the latest state per alert" when the alert id is a field.  The city
overview needs all three: a sensor is *offline* when its own lifeline
measurement has no recent reading, *alerting* when an open alert in the
``alerts`` measurement concerns it, and its coordinates come from the city
model.  So, like a recording rule, :class:`Materializer` reads InfluxDB and
the city model once per interval and writes back small measurements that
plain InfluxQL panels can show (every panel query stays testable against a
real InfluxDB; no Grafana-side joins or transformations).

Measurements (``RP`` = retention policy; both are created if missing)::

    "lifewatch_meta"."sensors"          every sensor of the city (RP INF, one point per sensor at t=0)
        tags lifeline, district, sensor_id, kind, asset; fields latitude, longitude, name
    "lifewatch_state"."sensor_state"    sensors that are NOT ok, each run; a recovered sensor gets one
                                        last point with state_code 0 (RP 1d)
        tags lifeline, district, sensor_id, kind, asset
        fields latitude, longitude, state ("alerting"|"offline"|"ok"), state_code, level, age_s, open_alerts
    "lifewatch_state"."lifeline_status" per lifeline and "all", each run
        tags lifeline; fields sensors, ok, alerting, offline, active_red, active_orange,
        active_yellow, active_blue, open_alerts (+ run_s on "all")
    "lifewatch_state"."alerts_open"     every open alert each run; when an alert closes, or its level
                                        or state (tags) change, its previous series gets one last point with open 0
        tags alert_id, level, state, lifeline, district, unit
        fields open, active, level_n, title, kind, asset, key, count, first_seen_ms, age_s
    "alert_kpi" (default RP)            one point per acknowledgement / resolution
        tags level, unit, lifeline; fields tta_s or ttr_s, alert_id

``state_code``: 0 ok, 1..4 alerting at the worst open level (1 red ... 4
blue, :class:`lifewatch.levels.Level`), 5 offline.  Only non-ok sensors are
written each run, so the cost scales with trouble, not with the city (at
85,000 sensors a full snapshot every minute would double the write load);
the map draws every sensor from ``sensors`` and overlays ``sensor_state``.

Rules:

* **offline**: no reading (any field) for more than ``offline_k`` reporting
  intervals of wall time.  ``offline_k`` defaults to the offline detector's
  ``k`` (:class:`detectors.health.timing.Offline`, 5 intervals: a setting,
  not a standard).  Wall time, not event time: this is the live picture;
  if ingest stops, every sensor goes offline on the map, which is the truth.
* **alerting**: an *active* alert (``new``, ``acknowledged``, ``dispatched``:
  the condition is on and nobody has fixed it) names the sensor: the alert
  point's ``sensors`` field when present, else the subject of its key
  (``lifeline:subject:kind``) when that is a sensor, else every sensor of
  its asset.  Offline wins over alerting (a silent sensor says nothing).
* **open** (the queue): every state but ``closed`` and ``false_alarm``.
* **KPIs**: time to acknowledge = first ``acknowledged`` point minus the
  alert's first point (``alert.raised``, or ``alert.unsilenced`` when a
  silence held its clocks); time to resolve likewise with ``resolved``.
  These are the notifier's wall-clock outbox times; ``GET /api/stats`` of
  the alert API is authoritative (the dashboard is within a second of it).
* Alerts older than ``alert_lookback`` (30 days) are not seen; an alert
  open for longer drops off the dashboards (the crew console still has it).

The writer keeps the previous run's non-ok sensors and open alerts to write
their closing points; after a restart it reads them back from InfluxDB.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lifewatch.city import City, Sensor
from lifewatch.influx import InfluxClient, InfluxError, InfluxQueryError
from lifewatch.levels import Level
from lifewatch.lifelines import LIFELINE_IDS, load_lifelines
from lifewatch.lineprotocol import encode_point, quote_ident

log = logging.getLogger("lifewatch.dashboards.materialize")

NS = 1_000_000_000

META_RP = "lifewatch_meta"
STATE_RP = "lifewatch_state"
SENSORS = "sensors"
SENSOR_STATE = "sensor_state"
LIFELINE_STATUS = "lifeline_status"
ALERTS_OPEN = "alerts_open"
ALERT_KPI = "alert_kpi"
# the notifier's measurement (alerts/notify/influx.py MEASUREMENT): one point per alert state change
ALERTS = "alerts"
ALL = "all"  # the lifeline tag of the city-wide lifeline_status row

# Dashboards read the newest derived point within this window; the interval must be well inside it.
STATE_WINDOW_S = 300
MAX_INTERVAL_S = STATE_WINDOW_S / 2

STATE_OK, STATE_OFFLINE = 0, 5
STATE_NAMES = {0: "ok", 1: "alerting", 2: "alerting", 3: "alerting", 4: "alerting", 5: "offline"}
# alert states (alerts/states.py AlertState values)
ACTIVE_STATES = frozenset({"new", "acknowledged", "dispatched"})
TERMINAL_STATES = frozenset({"closed", "false_alarm"})


def offline_k_default() -> float:
    """The offline detector's ``k`` (silent intervals before a sensor is offline)."""
    from detectors.health.timing import Offline

    return float(Offline.defaults["k"])


@dataclass(frozen=True)
class MaterializeConfig:
    interval_s: float = 60.0
    offline_k: float = field(default_factory=offline_k_default)
    alert_lookback_s: float = 30 * 86400.0
    state_rp_duration: str = "1d"
    # how far ahead of the wall clock a reading may lie and still count (Settings.future_margin)
    future_margin_s: float = 86400.0

    def __post_init__(self) -> None:
        if not 0 < self.interval_s <= MAX_INTERVAL_S:
            raise ValueError(f"interval must be in (0, {MAX_INTERVAL_S:g}] s: the dashboards read the last {STATE_WINDOW_S} s")
        if self.offline_k <= 0 or self.alert_lookback_s <= 0:
            raise ValueError("offline_k and alert_lookback must be > 0")


@dataclass
class AlertView:
    """One alert as the state changes in ``alerts`` tell it (newest point last)."""

    alert_id: str
    rows: list[dict[str, Any]]

    @property
    def last(self) -> dict[str, Any]:
        return self.rows[-1]

    @property
    def state(self) -> str:
        return str(self.last.get("state") or "")

    @property
    def level(self) -> Level | None:
        try:
            return Level.parse(self.last.get("level") or "")
        except (KeyError, ValueError):
            return None

    @property
    def is_open(self) -> bool:
        return self.state not in TERMINAL_STATES

    @property
    def is_active(self) -> bool:
        return self.state in ACTIVE_STATES

    def first_time(self, state: str) -> int | None:
        return next((int(r["time"]) for r in self.rows if r.get("state") == state), None)

    def tags(self) -> dict[str, str]:
        r = self.last
        return {"alert_id": self.alert_id, "level": self.level.label if self.level else "", "state": self.state,
                "lifeline": str(r.get("lifeline") or ""), "district": str(r.get("district") or ""), "unit": str(r.get("unit") or "")}


@dataclass
class RunReport:
    now_ns: int
    sensors: int = 0
    ok: int = 0
    alerting: int = 0
    offline: int = 0
    open_alerts: int = 0
    active_alerts: int = 0
    points: int = 0
    seconds: float = 0.0

    def __str__(self) -> str:
        return (f"{self.sensors} sensors: {self.ok} ok, {self.alerting} alerting, {self.offline} offline; "
                f"{self.open_alerts} open alerts ({self.active_alerts} active); {self.points} points in {self.seconds:.2f} s")


def alert_sensors(row: dict[str, Any], city: City) -> list[str]:
    """The sensors an alert point concerns (see the module docstring).

    >>> from lifewatch.city import load_city
    >>> city = load_city()
    >>> alert_sensors({"key": "water:w-d01-003:sensor_stuck", "asset": "dma-d01-1"}, city)
    ['w-d01-003']
    >>> len(alert_sensors({"key": "water:dma-d01-1:water_burst", "asset": "dma-d01-1"}, city))
    7
    """
    named = row.get("sensors")
    if isinstance(named, str) and named:
        return [s for s in named.split(",") if s in city.sensors]
    key = str(row.get("key") or "")
    parts = key.split(":", 1)
    subject = parts[1].rsplit(":", 1)[0] if len(parts) == 2 and ":" in parts[1] else ""
    if subject in city.sensors:
        return [subject]
    asset = row.get("asset") or subject
    if asset in city.sensors_by_asset:
        return [s.id for s in city.sensors_by_asset[asset]]
    return [s for s in subject.split(",") if s in city.sensors]


class Materializer:
    def __init__(self, client: InfluxClient, city: City, config: MaterializeConfig | None = None):
        self.client = client
        self.city = city
        self.config = config or MaterializeConfig()
        self._lifelines = load_lifelines()
        self._prev_nonok: dict[str, int] | None = None  # sensor id -> state_code, from the previous run
        self._prev_open: dict[str, dict[str, str]] | None = None  # alert id -> tags
        self._kpi_written: set[tuple[str, str]] = set()
        self._schema_ok = False

    # ------------------------------------------------------------------ schema and metadata

    def ensure_schema(self) -> None:
        """Create the two retention policies if missing (needs an admin; the compose stack's init script makes them)."""
        want = {META_RP: "INF", STATE_RP: self.config.state_rp_duration}
        have = {r["name"] for s in self.client.query(f"SHOW RETENTION POLICIES ON {quote_ident(self.client.db)}") for r in s.rows()}
        for rp, duration in want.items():
            if rp in have:
                continue
            shard = " SHARD DURATION 1h" if duration != "INF" else ""
            self.client.query_all(
                f"CREATE RETENTION POLICY {quote_ident(rp)} ON {quote_ident(self.client.db)} DURATION {duration} REPLICATION 1{shard}",
                method="POST",
            )
        self._schema_ok = True

    def metadata_lines(self) -> list[str]:
        return [
            encode_point(SENSORS, {"lifeline": s.lifeline, "district": s.district, "sensor_id": s.id, "kind": s.kind, "asset": s.asset},
                         {"latitude": s.lat, "longitude": s.lon, "name": self._asset_name(s)}, 0)
            for s in self.city.sensors.values()
        ]

    def seed_metadata(self) -> int:
        """Write every sensor's coordinates; drop sensors no longer in the city file.  Returns the sensors written."""
        self.ensure_schema()
        known = {r["value"] for s in self.client.query(f'SHOW TAG VALUES FROM {quote_ident(SENSORS)} WITH KEY = "sensor_id"')
                 for r in s.rows()}
        from lifewatch.lineprotocol import quote_literal

        for gone in sorted(known - set(self.city.sensors)):
            self.client.query_all(f'DROP SERIES FROM {quote_ident(SENSORS)} WHERE "sensor_id" = {quote_literal(gone)}', method="POST")
        lines = self.metadata_lines()
        for i in range(0, len(lines), 5000):
            self.client.write("\n".join(lines[i : i + 5000]), rp=META_RP)
        return len(lines)

    def _asset_name(self, s: Sensor) -> str:
        a = self.city.assets.get(s.asset)
        return a.name if a is not None and a.name else s.asset

    # ------------------------------------------------------------------ reading InfluxDB

    def last_seen(self, now_ns: int) -> dict[str, int]:
        """Sensor id -> event time (ns) of its newest point, over the longest offline horizon."""
        horizon = max((self.config.offline_k + 1) * s.interval_s for s in self.city.sensors.values()) if self.city.sensors else 0
        t0 = now_ns - int(horizon * NS)
        t1 = now_ns + int(self.config.future_margin_s * NS)
        seen: dict[str, int] = {}
        for lid in LIFELINE_IDS:
            fields = [*self._lifelines[lid].metrics, "seq", "quality"]
            q = ";".join(
                f"SELECT last({quote_ident(f)}) FROM {quote_ident(lid)} WHERE time > {t0} AND time <= {t1} GROUP BY \"sensor_id\""
                for f in fields
            )
            for series in self.client.query_all(q, epoch="ns"):
                for s in series:
                    sid = s.tags.get("sensor_id", "")
                    for row in s.values:
                        seen[sid] = max(seen.get(sid, 0), int(row[0]))
        return seen

    def alert_views(self, now_ns: int) -> list[AlertView]:
        t0 = now_ns - int(self.config.alert_lookback_s * NS)
        t1 = now_ns + int(self.config.future_margin_s * NS)
        rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for s in self.client.query(f"SELECT * FROM {quote_ident(ALERTS)} WHERE time > {t0} AND time <= {t1}", epoch="ns"):
            for r in s.rows():
                if r.get("alert_id"):
                    rows[str(r["alert_id"])].append(r)
        views = []
        for aid, rs in rows.items():
            rs.sort(key=lambda r: (int(r["time"]), int(r.get("outbox_id") or 0)))
            views.append(AlertView(aid, rs))
        return views

    def _load_previous(self, now_ns: int) -> None:
        t0 = now_ns - STATE_WINDOW_S * NS
        prev_nonok: dict[str, int] = {}
        for s in self.client.query(
            f'SELECT last("state_code") FROM {quote_ident(STATE_RP)}.{quote_ident(SENSOR_STATE)} WHERE time > {t0} GROUP BY "sensor_id"'
        ):
            code = s.values[-1][1] if s.values else 0
            if code:
                prev_nonok[s.tags["sensor_id"]] = int(code)
        prev_open: dict[str, dict[str, str]] = {}
        for s in self.client.query(
            f'SELECT last("open") FROM {quote_ident(STATE_RP)}.{quote_ident(ALERTS_OPEN)} WHERE time > {t0} '
            'GROUP BY "alert_id", "level", "state", "lifeline", "district", "unit"'
        ):
            if s.values and s.values[-1][1]:
                prev_open[s.tags["alert_id"]] = dict(s.tags)
        self._prev_nonok, self._prev_open = prev_nonok, prev_open

    # ------------------------------------------------------------------ one run

    def run_once(self, now_ns: int | None = None) -> RunReport:
        t_start = time.monotonic()
        now_ns = time.time_ns() if now_ns is None else int(now_ns)
        now_ns -= now_ns % NS  # whole seconds: every point of a run has the same timestamp
        if not self._schema_ok:
            self.ensure_schema()
        if self._prev_nonok is None or self._prev_open is None:
            self._load_previous(now_ns)
        seen = self.last_seen(now_ns)
        views = self.alert_views(now_ns)
        report = RunReport(now_ns)
        lines: list[str] = []
        state_lines: list[str] = []

        # alerting sensors: worst active level and number of active alerts
        worst: dict[str, int] = {}
        n_alerts: dict[str, int] = defaultdict(int)
        for v in views:
            if not v.is_active or v.level is None:
                continue
            for sid in alert_sensors(v.last, self.city):
                worst[sid] = min(worst.get(sid, 99), int(v.level))
                n_alerts[sid] += 1

        counts: dict[str, dict[str, int]] = {lid: defaultdict(int) for lid in (*LIFELINE_IDS, ALL)}
        nonok: dict[str, int] = {}
        for s in self.city.sensors.values():
            last = seen.get(s.id)
            age = (now_ns - last) / NS if last is not None else -1.0
            if last is None or age > self.config.offline_k * s.interval_s:
                code = STATE_OFFLINE
            else:
                code = worst.get(s.id, STATE_OK)
            name = STATE_NAMES[code]
            for key in (s.lifeline, ALL):
                counts[key]["sensors"] += 1
                counts[key][name] += 1
            if code != STATE_OK:
                nonok[s.id] = code
                state_lines.append(self._state_point(s, code, age, n_alerts.get(s.id, 0), now_ns))
        for sid in sorted(set(self._prev_nonok or {}) - set(nonok)):
            s = self.city.sensors.get(sid)
            if s is not None:  # recovered: one last point says so
                age = (now_ns - seen[sid]) / NS if sid in seen else -1.0
                state_lines.append(self._state_point(s, STATE_OK, age, 0, now_ns))

        # open alerts, closing points, per-lifeline active counts
        open_now: dict[str, dict[str, str]] = {}
        for v in views:
            lid = str(v.last.get("lifeline") or "")
            if v.is_open:
                open_now[v.alert_id] = v.tags()
                lines.append(self._alert_point(v, now_ns))
                for key in {lid, ALL} & set(counts):
                    counts[key]["open_alerts"] += 1
                    if v.is_active and v.level is not None:
                        counts[key][f"active_{v.level.label}"] += 1
                report.open_alerts += 1
                report.active_alerts += int(v.is_active)
        for aid, old_tags in sorted((self._prev_open or {}).items()):
            if open_now.get(aid) != old_tags:  # closed, or its level/state moved it to another series
                lines.append(encode_point(ALERTS_OPEN, old_tags, {"open": 0, "active": 0}, now_ns))

        run_s = time.monotonic() - t_start
        for key, c in counts.items():
            fields: dict[str, object] = {f: int(c.get(f, 0)) for f in
                                         ("sensors", "ok", "alerting", "offline", "open_alerts",
                                          *(f"active_{lv.label}" for lv in Level))}
            if key == ALL:
                fields["run_s"] = float(round(run_s, 4))
            lines.append(encode_point(LIFELINE_STATUS, {"lifeline": key}, fields, now_ns))

        kpi_lines = self._kpi_points(views)
        if state_lines or lines:
            self.client.write("\n".join(state_lines + lines), rp=STATE_RP)
        if kpi_lines:
            self.client.write("\n".join(kpi_lines))
        self._prev_nonok, self._prev_open = nonok, open_now

        c = counts[ALL]
        report.sensors, report.ok, report.alerting, report.offline = c["sensors"], c["ok"], c["alerting"], c["offline"]
        report.points = len(state_lines) + len(lines) + len(kpi_lines)
        report.seconds = time.monotonic() - t_start
        return report

    def _state_point(self, s: Sensor, code: int, age: float, n_alerts: int, now_ns: int) -> str:
        level = Level(code).label if 1 <= code <= 4 else ""
        return encode_point(
            SENSOR_STATE,
            {"lifeline": s.lifeline, "district": s.district, "sensor_id": s.id, "kind": s.kind, "asset": s.asset},
            {"latitude": s.lat, "longitude": s.lon, "state": STATE_NAMES[code], "state_code": code, "level": level,
             "age_s": float(round(age, 3)), "open_alerts": n_alerts},
            now_ns,
        )

    def _alert_point(self, v: AlertView, now_ns: int) -> str:
        r = v.last
        first_ns = int(v.rows[0]["time"])
        count = r.get("count")
        return encode_point(
            ALERTS_OPEN,
            v.tags(),
            {
                "open": 1,
                "active": int(v.is_active),
                "level_n": int(v.level) if v.level else 9,
                "title": str(r.get("title") or ""),
                "kind": str(r.get("kind") or ""),
                "asset": str(r.get("asset") or ""),
                "key": str(r.get("key") or ""),
                "count": int(count) if isinstance(count, int | float) else None,
                "first_seen_ms": first_ns // 1_000_000,
                "age_s": float(round((now_ns - first_ns) / NS, 3)),
            },
            now_ns,
        )

    def _kpi_points(self, views: Iterable[AlertView]) -> list[str]:
        out = []
        for v in views:
            start = int(v.rows[0]["time"])
            if v.rows[0].get("event") not in ("alert.raised", "alert.unsilenced"):
                continue  # the alert started before the lookback window: no start time
            for state, fname in (("acknowledged", "tta_s"), ("resolved", "ttr_s")):
                if (v.alert_id, fname) in self._kpi_written:
                    continue
                t = v.first_time(state)
                if t is None:
                    continue
                row = next(r for r in v.rows if r.get("state") == state)
                tags = {"level": str(row.get("level") or ""), "unit": str(row.get("unit") or ""), "lifeline": str(row.get("lifeline") or "")}
                out.append(encode_point(ALERT_KPI, tags, {fname: float(round((t - start) / NS, 3)), "alert_id": v.alert_id}, t))
                self._kpi_written.add((v.alert_id, fname))
        return out

    # ------------------------------------------------------------------ the service loop

    def run(self, stop: threading.Event, on_run: Any = None) -> None:
        """Run every ``interval_s`` (aligned to the wall clock) until ``stop`` is set; errors are logged and retried."""
        self.ensure_schema()
        self.seed_metadata()
        while not stop.is_set():
            try:
                report = self.run_once()
                log.info("%s", report)
                if on_run is not None:
                    on_run(report)
            except (InfluxError, InfluxQueryError) as exc:
                log.warning("materialize run failed: %s (next try in %.0f s)", exc, self.config.interval_s)
            wait = self.config.interval_s - (time.time() % self.config.interval_s)
            stop.wait(wait)
