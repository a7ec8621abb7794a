"""Panel factories: the few panel shapes the Lifewatch dashboards use, with their Grafana options."""

from __future__ import annotations

from typing import Any

from dashboards.grafana import GridPos, Panel, Target
from dashboards.style import OK_COLOUR, state_code_mappings, state_code_steps


def timeseries(title: str, grid: GridPos, targets: list[Target], *, unit: str = "", thresholds: dict | None = None,
               description: str = "", threshold_style: str = "line+area", legend: str = "list", min_value: float | None = None,
               max_value: float | None = None, interval: str = "", time_from: str = "", overrides: list | None = None,
               draw: str = "line") -> Panel:
    custom: dict[str, Any] = {
        "drawStyle": draw,
        "lineWidth": 1,
        "fillOpacity": 0,
        "showPoints": "never" if draw == "line" else "always",
        "spanNulls": False,
        "pointSize": 4,
        "thresholdsStyle": {"mode": threshold_style if thresholds else "off"},
    }
    defaults: dict[str, Any] = {"custom": custom, "color": {"mode": "palette-classic"}}
    if min_value is not None:
        defaults["min"] = min_value
    if max_value is not None:
        defaults["max"] = max_value
    p = Panel(title, "timeseries", grid, targets, description=description, unit=unit, thresholds=thresholds,
              defaults=defaults, overrides=overrides or [], interval=interval,
              options={"legend": {"calcs": ["min", "max", "lastNotNull"] if legend == "table" else [], "displayMode": legend,
                                  "placement": "bottom", "showLegend": True},
                       "tooltip": {"mode": "multi", "sort": "desc"}})
    if time_from:
        p.time_from = time_from
    return p


def stat(title: str, grid: GridPos, targets: list[Target], *, unit: str = "", description: str = "",
         overrides: list | None = None, thresholds: dict | None = None, color_mode: str = "background",
         orientation: str = "auto", no_value: str = "0", text_mode: str = "value_and_name") -> Panel:
    return Panel(title, "stat", grid, targets, description=description, unit=unit,
                 thresholds=thresholds or {"mode": "absolute", "steps": [{"color": OK_COLOUR, "value": None}]},
                 defaults={"noValue": no_value, "color": {"mode": "thresholds"}}, overrides=overrides or [],
                 options={"colorMode": color_mode, "graphMode": "none", "justifyMode": "center", "orientation": orientation,
                          "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                          "showPercentChange": False, "textMode": text_mode, "wideLayout": True})


def table(title: str, grid: GridPos, targets: list[Target], *, description: str = "", overrides: list | None = None,
          sort_by: str = "", desc: bool = False, no_value: str = "", transformations: list | None = None) -> Panel:
    defaults: dict[str, Any] = {"custom": {"align": "auto", "cellOptions": {"type": "auto"}, "filterable": True}}
    if no_value:
        defaults["noValue"] = no_value
    options: dict[str, Any] = {"cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": "", "countRows": False},
                               "showHeader": True}
    if sort_by:
        options["sortBy"] = [{"desc": desc, "displayName": sort_by}]
    return Panel(title, "table", grid, targets, description=description, defaults=defaults, overrides=overrides or [],
                 options=options, transformations=transformations or [])


def text(title: str, grid: GridPos, markdown: str) -> Panel:
    return Panel(title, "text", grid, [], options={"mode": "markdown", "content": markdown,
                                                   "code": {"language": "plaintext", "showLineNumbers": False, "showMiniMap": False}})


def row(title: str, grid: GridPos) -> Panel:
    return Panel(title, "row", grid)


def geomap(title: str, grid: GridPos, targets: list[Target], *, lat: float, lon: float, zoom: float,
           description: str = "") -> Panel:
    """Every sensor (refId SENSORS, green) with the not-ok ones (refId STATE) drawn on top in their state colour."""
    layers = [
        {
            "type": "markers",
            "name": "Sensors (ok)",
            "config": {"showLegend": False,
                       "style": {"color": {"fixed": OK_COLOUR}, "opacity": 0.6, "size": {"fixed": 4, "max": 15, "min": 2},
                                 "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                                 "symbolAlign": {"horizontal": "center", "vertical": "center"}}},
            "filterData": {"id": "byRefId", "options": "SENSORS"},
            "location": {"latitude": "latitude", "longitude": "longitude", "mode": "coords"},
            "tooltip": True,
        },
        {
            "type": "markers",
            "name": "Alerting / offline",
            "config": {"showLegend": True,
                       "style": {"color": {"field": "state_code", "fixed": "red"}, "opacity": 0.9, "size": {"fixed": 8, "max": 15, "min": 2},
                                 "symbol": {"fixed": "img/icons/marker/circle.svg", "mode": "fixed"},
                                 "symbolAlign": {"horizontal": "center", "vertical": "center"}}},
            "filterData": {"id": "byRefId", "options": "STATE"},
            "location": {"latitude": "latitude", "longitude": "longitude", "mode": "coords"},
            "tooltip": True,
        },
    ]
    overrides = [{"matcher": {"id": "byName", "options": "state_code"},
                  "properties": [{"id": "mappings", "value": state_code_mappings()},
                                 {"id": "thresholds", "value": state_code_steps()},
                                 {"id": "color", "value": {"mode": "thresholds"}}]}]
    return Panel(title, "geomap", grid, targets, description=description, defaults={"color": {"mode": "thresholds"}},
                 thresholds=state_code_steps(), overrides=overrides,
                 options={"basemap": {"config": {}, "name": "Basemap", "type": "default"},
                          "controls": {"mouseWheelZoom": True, "showAttribution": True, "showZoom": True},
                          "layers": layers, "tooltip": {"mode": "details"},
                          "view": {"allLayers": True, "id": "coords", "lat": round(lat, 5), "lon": round(lon, 5), "zoom": zoom}})
