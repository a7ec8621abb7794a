"""Colours, units and threshold steps, all derived from the lifeline descriptions and the standards modules.

* Warning-level colours are :attr:`lifewatch.levels.Level.colour` (red #E02F44,
  orange #FF780A, yellow #FADE2A, blue #3274D9), the same as the crew console.
* Threshold steps come from the lifeline YAML (``lifewatch/lifelines/*.yaml``),
  whose numbers carry their sources there; nothing is re-typed here.
* AQI colours: HJ 633-2012 Table 2, level 1..6 (domain.md §5.2 [V]); AQI
  breakpoints: :mod:`detectors.standards.aqi`.

>>> from lifewatch.lifelines import load_lifelines
>>> water = load_lifelines()["water"]
>>> [(s["value"], s["color"]) for s in metric_steps(water, "pressure")["steps"]]
[(None, '#FF780A'), (0.05, '#FADE2A'), (0.14, 'green')]
>>> [(s["value"], s["color"]) for s in metric_steps(load_lifelines()["power"], "voltage", view="deviation_pct")["steps"]]
[(None, '#E02F44'), (-20.0, '#FF780A'), (-15.0, '#FADE2A'), (-10.0, 'green'), (7.0, '#FADE2A'), (10.0, '#FF780A'), (20.0, '#E02F44')]
"""

from __future__ import annotations

from typing import Any

from lifewatch.levels import Level
from lifewatch.lifelines import Lifeline, Threshold

OK_COLOUR = "green"
OFFLINE_COLOUR = "#8E8E8E"
LEVEL_COLOURS = {lv.label: lv.colour for lv in Level}
# severity of a level name: higher is worse (blue 1 ... red 4)
SEVERITY = {lv.label: 5 - int(lv) for lv in Level}

# HJ 633-2012 Table 2 AQI level colours, levels 1..6 (domain.md §5.2 [V])
AQI_COLOURS = ("#00E400", "#FFFF00", "#FF7E00", "#FF0000", "#99004C", "#7E0023")

# the lifeline YAML units -> Grafana unit ids (packages/grafana-data/src/valueFormats/categories.ts);
# units Grafana lacks are shown with a suffix
GRAFANA_UNITS = {
    "V": "volt",
    "kV": "kvolt",
    "Hz": "hertz",
    "kW": "kwatt",
    "A": "amp",
    "degC": "celsius",
    "kPa": "pressurekpa",
    "mm": "lengthmm",
    "deg": "degree",
    "ug/m3": "conμgm3",
    "mg/m3": "conmgm3",
}
SUFFIXES = {
    "MPa": " MPa",
    "m3/h": " m³/h",
    "Nm3/h": " Nm³/h",
    "%LEL": " %LEL",
    "ustrain": " µε",
    "mm/s2": " mm/s²",
}

# ops whose levels are plain boundaries on the shown value (others: ieee1159 classes, aqi)
_SIMPLE_OPS = {"<", ">", ">=", "band_abs", "band_pct", "design_share"}


def grafana_unit(unit: str) -> str:
    """
    >>> grafana_unit("V"), grafana_unit("MPa"), grafana_unit("furlongs")
    ('volt', 'suffix: MPa', 'suffix: furlongs')
    """
    if unit in GRAFANA_UNITS:
        return GRAFANA_UNITS[unit]
    return "suffix:" + SUFFIXES.get(unit, " " + unit)


def _violates(t: Threshold, bound: Any, v: float, view: str) -> bool:
    """Would value ``v`` (as shown in ``view``) break this level's boundary?"""
    if t.op == "<":
        return v < float(bound)
    if t.op == ">":
        return v > float(bound)
    if t.op == ">=" or t.op == "design_share":
        return v >= float(bound)
    lo, hi = _band(t, bound, view)
    return v < lo or v > hi


def _band(t: Threshold, bound: Any, view: str) -> tuple[float, float]:
    lo, hi = float(bound[0]), float(bound[1])
    if view == "value" and t.op == "band_abs":
        return (t.nominal or 0.0) + lo, (t.nominal or 0.0) + hi
    if view == "value" and t.op == "band_pct":  # percent of nominal -> absolute
        n = t.nominal or 0.0
        return round(n * (1 + lo / 100), 6), round(n * (1 + hi / 100), 6)
    return lo, hi


def _breaks(t: Threshold, bound: Any, view: str) -> list[float]:
    if t.op in ("band_abs", "band_pct"):
        return list(_band(t, bound, view))
    return [float(bound)]


def metric_thresholds(lifeline: Lifeline, metric: str) -> list[Threshold]:
    return [t for t in lifeline.thresholds if t.metric == metric and t.op in _SIMPLE_OPS]


def metric_steps(lifeline: Lifeline, metric: str, view: str = "value") -> dict[str, Any] | None:
    """Grafana threshold steps for a metric from its YAML thresholds, or None when it has none.

    ``view``: ``value`` (the metric as stored; band_pct bands become absolute
    around their nominal), ``deviation_pct`` (band_pct
    thresholds: percent deviation from nominal) or ``share`` (design_share:
    the share of the design value).  A value's colour is the most severe
    level whose boundary it breaks.
    """
    ts = metric_thresholds(lifeline, metric)
    if view == "deviation_pct":
        ts = [t for t in ts if t.op == "band_pct"]
    elif view == "share":
        ts = [t for t in ts if t.op == "design_share"]
    else:
        ts = [t for t in ts if t.op != "design_share"]
    levels = [(t, name, bound) for t in ts for name, bound in t.levels.items() if bound is not None]
    if not levels:
        return None
    points = sorted({b for t, _, bound in levels for b in _breaks(t, bound, view)})

    def colour(v: float) -> str:
        hit = [name for t, name, bound in levels if _violates(t, bound, v, view)]
        return LEVEL_COLOURS[max(hit, key=SEVERITY.__getitem__)] if hit else OK_COLOUR

    # the colour just below the first break, then at (and above) each break
    span = (points[-1] - points[0]) or abs(points[0]) or 1.0
    eps = span * 1e-6
    pairs: list[tuple[float | None, str]] = [(None, colour(points[0] - eps))]
    for i, p in enumerate(points):
        mid = (p + points[i + 1]) / 2 if i + 1 < len(points) else p + eps
        c = colour(max(p, mid) if i + 1 < len(points) else p + eps)
        if c != pairs[-1][1]:
            pairs.append((p, c))
    return {"mode": "absolute", "steps": [{"color": c, "value": v} for v, c in pairs]}


def aqi_steps(breakpoints: tuple[float, ...]) -> dict[str, Any]:
    """Colour bands of one pollutant at its HJ 633 IAQI breakpoints 50, 100, 150, 200, 300 (levels 1..6).

    >>> [s["value"] for s in aqi_steps((0, 35, 60, 115, 150, 250, 350, 500))["steps"]]
    [None, 35, 60, 115, 150, 250]
    """
    # breakpoints[1..5] are the concentrations at IAQI 50, 100, 150, 200, 300 (HJ 633 Table 1)
    tops = breakpoints[1:6]
    return {"mode": "absolute", "steps": [{"color": AQI_COLOURS[0], "value": None}]
            + [{"color": AQI_COLOURS[i + 1], "value": b} for i, b in enumerate(tops)]}


def level_colour_override(name: str, level: str) -> dict[str, Any]:
    return {"matcher": {"id": "byName", "options": name},
            "properties": [{"id": "color", "value": {"fixedColor": LEVEL_COLOURS[level], "mode": "fixed"}}]}


def fixed_colour_override(name: str, colour: str, display: str = "") -> dict[str, Any]:
    props: list[dict[str, Any]] = [{"id": "color", "value": {"fixedColor": colour, "mode": "fixed"}}]
    if display:
        props.append({"id": "displayName", "value": display})
    return {"matcher": {"id": "byName", "options": name}, "properties": props}


def state_code_mappings() -> list[dict[str, Any]]:
    """Value mappings of ``sensor_state.state_code`` (see :mod:`dashboards.materialize`)."""
    options: dict[str, Any] = {"0": {"color": OK_COLOUR, "index": 0, "text": "ok"}}
    for lv in Level:
        options[str(int(lv))] = {"color": lv.colour, "index": int(lv), "text": f"alerting ({lv.label})"}
    options["5"] = {"color": OFFLINE_COLOUR, "index": 5, "text": "offline"}
    return [{"options": options, "type": "value"}]


def state_code_steps() -> dict[str, Any]:
    pairs = [{"color": OK_COLOUR, "value": None}] + [{"color": lv.colour, "value": int(lv)} for lv in Level]
    return {"mode": "absolute", "steps": pairs + [{"color": OFFLINE_COLOUR, "value": 5}]}
