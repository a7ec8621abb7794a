"""Plain typed builders for Grafana dashboard JSON (schemaVersion 39, Grafana 10.4 / 11).

No dashboard library: a few dataclasses whose ``to_json()`` give exactly the
JSON Grafana stores, so the output can be read, diffed and checked in.  Only
what Lifewatch's dashboards use is modelled; ``options`` and
``field_config`` stay plain dicts where Grafana's shape is open-ended.

Datasources are referenced by uid (``DS_INFLUX``, ``DS_PROMETHEUS``); the
provisioning file ``dashboards/provisioning/datasources/lifewatch.yaml``
creates them with those uids.

>>> grid = Grid()
>>> a, b = grid.place(12, 4), grid.place(12, 4)
>>> c = grid.place(24, 8)
>>> (a.x, a.y), (b.x, b.y), (c.x, c.y)
((0, 0), (12, 0), (0, 4))
>>> p = Panel("Water", "stat", a, [InfluxTarget("A", 'SELECT last("ok") FROM "x"')])
>>> p.to_json(7)["targets"][0]["query"]
'SELECT last("ok") FROM "x"'
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 39

DS_INFLUX = {"type": "influxdb", "uid": "lifewatch-influxdb"}
DS_PROMETHEUS = {"type": "prometheus", "uid": "lifewatch-prometheus"}

GRID_WIDTH = 24


@dataclass(frozen=True)
class GridPos:
    x: int
    y: int
    w: int
    h: int

    def to_json(self) -> dict[str, int]:
        return {"h": self.h, "w": self.w, "x": self.x, "y": self.y}

    def overlaps(self, other: GridPos) -> bool:
        return self.x < other.x + other.w and other.x < self.x + self.w and self.y < other.y + other.h and other.y < self.y + self.h


class Grid:
    """Places panels left to right, wrapping at 24 columns; a row starts below the tallest panel so far."""

    def __init__(self) -> None:
        self.x = 0
        self.y = 0
        self.row_h = 0

    def place(self, w: int, h: int) -> GridPos:
        if not 1 <= w <= GRID_WIDTH:
            raise ValueError(f"panel width must be 1..{GRID_WIDTH}")
        if self.x + w > GRID_WIDTH:
            self.newline()
        pos = GridPos(self.x, self.y, w, h)
        self.x += w
        self.row_h = max(self.row_h, h)
        return pos

    def newline(self) -> None:
        self.y += self.row_h
        self.x = 0
        self.row_h = 0

    def row(self) -> GridPos:
        """A full-width row header (height 1) on a line of its own."""
        if self.x:
            self.newline()
        pos = GridPos(0, self.y, GRID_WIDTH, 1)
        self.y += 1
        return pos


@dataclass(frozen=True)
class InfluxTarget:
    """A raw InfluxQL query (``$timeFilter``, ``$__interval`` and dashboard variables are Grafana's)."""

    ref_id: str
    query: str
    result_format: str = "time_series"  # or "table"
    alias: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "datasource": dict(DS_INFLUX),
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": self.result_format,
        }
        if self.alias:
            out["alias"] = self.alias
        return out


@dataclass(frozen=True)
class PromTarget:
    ref_id: str
    expr: str
    legend: str = ""
    instant: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "datasource": dict(DS_PROMETHEUS),
            "expr": self.expr,
            "instant": self.instant,
            "legendFormat": self.legend or "__auto",
            "range": not self.instant,
            "refId": self.ref_id,
        }


Target = InfluxTarget | PromTarget


def steps(*pairs: tuple[float | None, str]) -> dict[str, Any]:
    """Absolute threshold steps: ``(None, base colour), (value, colour), ...`` in ascending order."""
    values = [v for v, _ in pairs[1:]]
    if pairs[0][0] is not None or any(v is None for v in values) or values != sorted(values):
        raise ValueError(f"threshold steps need a base (None) then ascending values: {pairs}")
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in pairs]}


def override(name: str, **props: Any) -> dict[str, Any]:
    """A field override by name, e.g. ``override("red", color={"mode": "fixed", "fixedColor": "#E02F44"})``."""
    key = {"display_name": "displayName"}
    return {
        "matcher": {"id": "byName", "options": name},
        "properties": [{"id": key.get(k, k), "value": v} for k, v in props.items()],
    }


@dataclass
class Panel:
    title: str
    type: str  # timeseries, stat, table, geomap, text, bargauge, row
    grid: GridPos
    targets: list[Target] = field(default_factory=list)
    description: str = ""
    unit: str = ""
    thresholds: dict[str, Any] | None = None
    defaults: dict[str, Any] = field(default_factory=dict)  # more fieldConfig.defaults (min, max, decimals, noValue, custom...)
    overrides: list[dict[str, Any]] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    transformations: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    interval: str = ""  # the panel's minimum interval (e.g. "1m": no bucket below the reporting interval)
    max_data_points: int | None = None
    time_from: str = ""  # a relative time range of its own (e.g. "30d" for a daily trend), whatever the dashboard's

    @property
    def datasource(self) -> dict[str, str] | None:
        kinds = {t.to_json()["datasource"]["uid"]: t.to_json()["datasource"] for t in self.targets}
        if len(kinds) > 1:
            return {"type": "datasource", "uid": "-- Mixed --"}
        return next(iter(kinds.values()), None)

    def to_json(self, panel_id: int) -> dict[str, Any]:
        if self.type == "row":
            return {"collapsed": False, "gridPos": self.grid.to_json(), "id": panel_id, "panels": [], "title": self.title, "type": "row"}
        defaults: dict[str, Any] = {}
        if self.unit:
            defaults["unit"] = self.unit
        if self.thresholds is not None:
            defaults["thresholds"] = self.thresholds
        defaults.update(self.defaults)
        refs = [t.ref_id for t in self.targets]
        if len(refs) != len(set(refs)):
            raise ValueError(f"panel {self.title!r}: duplicate refIds {refs}")
        out: dict[str, Any] = {
            "datasource": self.datasource,
            "description": self.description,
            "fieldConfig": {"defaults": defaults, "overrides": self.overrides},
            "gridPos": self.grid.to_json(),
            "id": panel_id,
            "options": self.options,
            "targets": [t.to_json() for t in self.targets],
            "title": self.title,
            "type": self.type,
        }
        if self.transformations:
            out["transformations"] = self.transformations
        if self.links:
            out["links"] = self.links
        if self.interval:
            out["interval"] = self.interval
        if self.max_data_points:
            out["maxDataPoints"] = self.max_data_points
        if self.time_from:
            out["timeFrom"] = self.time_from
        if self.datasource is None:
            del out["datasource"]
        return out


@dataclass(frozen=True)
class QueryVariable:
    """A variable filled by an InfluxQL meta query (``SHOW TAG VALUES ...``)."""

    name: str
    label: str
    query: str
    multi: bool = True
    include_all: bool = True
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "allValue": ".*" if self.include_all else None,
            "current": {"selected": True, "text": ["All"], "value": ["$__all"]} if self.include_all else {},
            "datasource": dict(DS_INFLUX),
            "definition": self.query,
            "description": self.description,
            "hide": 0,
            "includeAll": self.include_all,
            "label": self.label,
            "multi": self.multi,
            "name": self.name,
            "options": [],
            "query": self.query,
            "refresh": 1,  # on dashboard load
            "regex": "",
            "skipUrlSync": False,
            "sort": 1,
            "type": "query",
        }


@dataclass(frozen=True)
class CustomVariable:
    """A fixed list of values (from the city model or the lifeline descriptions)."""

    name: str
    label: str
    values: tuple[str, ...]
    include_all: bool = False
    multi: bool = False
    description: str = ""
    hide: int = 0  # 0 shown, 2 hidden

    def to_json(self) -> dict[str, Any]:
        if not self.values:
            raise ValueError(f"custom variable {self.name} has no values")
        first = self.values[0]
        current = {"selected": True, "text": ["All"], "value": ["$__all"]} if self.include_all else {"selected": True, "text": first, "value": first}
        options = ([{"selected": True, "text": "All", "value": "$__all"}] if self.include_all else []) + [
            {"selected": (not self.include_all and v == first), "text": v, "value": v} for v in self.values
        ]
        return {
            "allValue": ".*" if self.include_all else None,
            "current": current,
            "description": self.description,
            "hide": self.hide,
            "includeAll": self.include_all,
            "label": self.label,
            "multi": self.multi,
            "name": self.name,
            "options": options,
            "query": ",".join(self.values),
            "skipUrlSync": False,
            "type": "custom",
        }


@dataclass(frozen=True)
class TextboxVariable:
    name: str
    label: str
    default: str
    description: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "current": {"selected": False, "text": self.default, "value": self.default},
            "description": self.description,
            "hide": 0,
            "label": self.label,
            "name": self.name,
            "options": [{"selected": True, "text": self.default, "value": self.default}],
            "query": self.default,
            "skipUrlSync": False,
            "type": "textbox",
        }


Variable = QueryVariable | CustomVariable | TextboxVariable


@dataclass(frozen=True)
class Annotation:
    """An InfluxQL annotation query; the columns name the title, text and tags of each event."""

    name: str
    query: str
    color: str
    title_column: str = "title"
    text_column: str = "text"
    tags_column: str = ""
    enable: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "datasource": dict(DS_INFLUX),
            "enable": self.enable,
            "hide": False,
            "iconColor": self.color,
            "name": self.name,
            "target": {
                "fromAnnotations": True,
                "query": self.query,
                "rawQuery": True,
                "refId": "Anno",
                "tagsColumn": self.tags_column,
                "textColumn": self.text_column,
                "textEditor": True,
                "titleColumn": self.title_column,
            },
        }


@dataclass
class Dashboard:
    uid: str
    title: str
    panels: list[Panel]
    tags: list[str] = field(default_factory=list)
    description: str = ""
    variables: list[Variable] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    time_from: str = "now-6h"
    refresh: str = "1m"
    links: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        if not 1 <= len(self.uid) <= 40:
            raise ValueError(f"dashboard uid must be 1..40 characters: {self.uid!r}")
        for i, a in enumerate(self.panels):
            for b in self.panels[i + 1 :]:
                if a.grid.overlaps(b.grid):
                    raise ValueError(f"{self.uid}: panels {a.title!r} and {b.title!r} overlap")
        return {
            "annotations": {"list": [a.to_json() for a in self.annotations]},
            "description": self.description,
            "editable": True,
            "fiscalYearStartMonth": 0,
            "graphTooltip": 1,
            "links": self.links,
            "panels": [p.to_json(i + 1) for i, p in enumerate(self.panels)],
            "refresh": self.refresh,
            "schemaVersion": SCHEMA_VERSION,
            "tags": self.tags,
            "templating": {"list": [v.to_json() for v in self.variables]},
            "time": {"from": self.time_from, "to": "now"},
            "timepicker": {},
            "timezone": "browser",
            "title": self.title,
            "uid": self.uid,
            "version": 1,
            "weekStart": "",
        }
