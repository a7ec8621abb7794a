"""City Safety Overview: the control room's one screen.

Top: per lifeline a tile of sensors ok / alerting / offline, the active
alerts by warning level, and a map of every sensor coloured by state (all
from :mod:`dashboards.materialize`).  Below, one row per lifeline with the
quantities its standards judge, per district, with the standards' bands as
threshold colours (from the lifeline YAML), and the response KPIs.  Raised
alerts are annotations on every time series, in their level's colour.
"""

from __future__ import annotations

from dashboards import queries as Q
from dashboards.context import Context
from dashboards.grafana import Annotation, Dashboard, Grid, InfluxTarget, Panel
from dashboards.materialize import ALERT_KPI, SENSORS
from dashboards.panels import geomap, row, stat, table, text, timeseries
from dashboards.style import (
    LEVEL_COLOURS,
    OFFLINE_COLOUR,
    OK_COLOUR,
    aqi_steps,
    fixed_colour_override,
    grafana_unit,
    level_colour_override,
    metric_steps,
)
from detectors.standards.aqi import TABLES
from lifewatch.levels import Level

WHERE_D = f"{Q.TIME_FILTER} AND {Q.DISTRICT}"
BY_DISTRICT = f'time({Q.INTERVAL}), "district"'


def status_tile(ctx: Context, lid: str, grid) -> Panel:  # noqa: ANN001
    ll = ctx.lifelines[lid]
    n = len(ctx.city.sensors_of(lid))
    return stat(
        f"{ll.title} {ll.title_zh}", grid,
        [InfluxTarget("A", Q.lifeline_status([("ok", "ok"), ("alerting", "alerting"), ("offline", "offline")], lid), "table")],
        description=f"{n} sensors of the {ll.responsible}: ok / alerting (an active alert names the sensor) / offline "
                    "(silent for more than k reporting intervals). Refreshed every minute by `lifewatch dashboards materialize`.",
        overrides=[fixed_colour_override("ok", OK_COLOUR), fixed_colour_override("alerting", LEVEL_COLOURS["red"]),
                   fixed_colour_override("offline", OFFLINE_COLOUR)],
        orientation="vertical", no_value="stale",
    )


def active_alerts_stat(ctx: Context, lifeline: str, grid) -> Panel:  # noqa: ANN001
    fields = [(f"active_{lv.label}", lv.label) for lv in Level]
    return stat(
        "Active alerts by level", grid, [InfluxTarget("A", Q.lifeline_status(fields, lifeline), "table")],
        description="Alerts new, acknowledged or dispatched, by warning level (red I, orange II, yellow III, blue IV).",
        overrides=[level_colour_override(lv.label, lv.label) for lv in Level]
        + [{"matcher": {"id": "byName", "options": lv.label}, "properties": [{"id": "displayName", "value": f"{lv.label} {lv.roman}"}]}
           for lv in Level],
        orientation="vertical", no_value="stale",
    )


def sensor_map(ctx: Context, grid, where: str = Q.DISTRICT, title: str = "Sensors") -> Panel:  # noqa: ANN001
    lat, lon = ctx.centre
    return geomap(
        title, grid,
        [InfluxTarget("SENSORS", Q.sensor_metadata(where), "table"), InfluxTarget("STATE", Q.sensor_states(where), "table")],
        lat=lat, lon=lon, zoom=12,
        description="Every sensor of the city file (green); sensors alerting (in their level's colour) or offline (grey) on top.",
    )


def alert_annotations(where: str) -> list[Annotation]:
    return [Annotation(f"{lv.label.capitalize()} alerts ({lv.roman})", Q.alert_annotation(lv.label, where), lv.colour,
                       tags_column="lifeline,district,kind") for lv in Level]


def kpi_table(title: str, field: str, grid, by: str = "level", where: str = "") -> Panel:  # noqa: ANN001
    cond = f" AND {where}" if where else ""
    query = (f'SELECT mean({Q.q(field)}) AS "mean", percentile({Q.q(field)}, 50) AS "p50", percentile({Q.q(field)}, 90) AS "p90", '
             f'count({Q.q(field)}) AS "alerts" FROM {Q.q(ALERT_KPI)} WHERE {Q.TIME_FILTER}{cond} GROUP BY {by}')
    return table(
        title, grid, [InfluxTarget("A", query, "table")],
        description="From the alerts' state changes in InfluxDB (dashboards.materialize: first acknowledged/resolved point minus "
                    "the alert's first point). The alert API's /api/stats is authoritative.",
        overrides=[{"matcher": {"id": "byRegexp", "options": "mean|p50|p90"}, "properties": [{"id": "unit", "value": "dtdurations"}]}],
    )


def water_panels(ctx: Context, grid: Grid) -> list[Panel]:
    water = ctx.lifelines["water"]
    offset_h = -ctx.city.utc_offset_hours
    return [
        row(f"{water.title} {water.title_zh}", grid.row()),
        timeseries(
            "Minimum network pressure by district", grid.place(12, 8),
            [InfluxTarget("A", f'SELECT min("pressure") FROM {Q.readings("water")} WHERE {WHERE_D} GROUP BY {BY_DISTRICT} fill(none)',
                          alias="$tag_district")],
            unit=grafana_unit(water.metrics["pressure"].unit), thresholds=metric_steps(water, "pressure"),
            description="Lowest pressure any logger of the district reports. Bands: end pressure >= 0.14 MPa "
                        "(城镇供水服务 §3.3.1 / CJJ 58-2007), below 0.05 MPa supply interruption (setting).",
        ),
        timeseries(
            "Night flow (daily minimum) by DMA inlet", grid.place(12, 8),
            [InfluxTarget("A", f'SELECT min("flow") FROM {Q.readings("water")} WHERE {WHERE_D} '
                               f'GROUP BY time(1d,{offset_h:g}h), "district", "sensor_id" fill(none)',
                          alias="$tag_district $tag_sensor_id")],
            unit=grafana_unit(water.metrics["flow"].unit), time_from="30d", draw="points", threshold_style="off",
            description="Daily minimum of each DMA inlet flow, local days (UTC"
                        f"{ctx.city.utc_offset_hours:+g}): the minimum night flow (LeakDB algorithmMNF: daily MNF = min of the "
                        "day's samples). A rising trend is a growing leak (the water_leak rule alarms on it).",
        ),
    ]


def power_panels(ctx: Context, grid: Grid) -> list[Panel]:
    power = ctx.lifelines["power"]
    nominal = next(t.nominal for t in power.thresholds if t.metric == "voltage" and t.op == "band_pct")
    freq_nominal = next(t.nominal for t in power.thresholds if t.metric == "frequency")
    dev = f'(min("voltage") - {nominal:g}) / {nominal:g} * 100 AS "min", (max("voltage") - {nominal:g}) / {nominal:g} * 100 AS "max"'
    return [
        row(f"{power.title} {power.title_zh}", grid.row()),
        timeseries(
            "LV voltage deviation by district (%)", grid.place(12, 8),
            [InfluxTarget("A", f'SELECT {dev} FROM {Q.readings("power")} WHERE {WHERE_D} GROUP BY {BY_DISTRICT} fill(none)',
                          alias="$tag_district $col")],
            unit="percent", thresholds=metric_steps(power, "voltage", view="deviation_pct"),
            description=f"Lowest and highest meter voltage against {nominal:g} V. Bands: GB/T 12325-2008 +7/-10 % (yellow), "
                        "EN 50160 +10/-15 % (orange, setting), IEEE 1159 0.8/1.2 pu (red, setting).",
        ),
        timeseries(
            "Frequency by district", grid.place(12, 8),
            [InfluxTarget("A", f'SELECT mean("frequency") FROM {Q.readings("power")} WHERE {WHERE_D} GROUP BY {BY_DISTRICT} fill(none)',
                          alias="$tag_district")],
            unit=grafana_unit(power.metrics["frequency"].unit), thresholds=metric_steps(power, "frequency"),
            description=f"Feeder-head frequency. Bands around {freq_nominal:g} Hz: GB/T 15945-2008 ±0.2 Hz (yellow), ±0.5 Hz (orange), "
                        "EN 50160 47/52 Hz (red, setting).",
        ),
    ]


def gas_panels(ctx: Context, grid: Grid) -> list[Panel]:
    gas = ctx.lifelines["gas"]
    return [
        row(f"{gas.title} {gas.title_zh}", grid.row()),
        timeseries(
            "Maximum methane %LEL by district", grid.place(12, 8),
            [InfluxTarget("A", f'SELECT max("ch4_lel") FROM {Q.readings("gas")} WHERE {WHERE_D} GROUP BY {BY_DISTRICT} fill(none)',
                          alias="$tag_district")],
            unit=grafana_unit(gas.metrics["ch4_lel"].unit), thresholds=metric_steps(gas, "ch4_lel"), min_value=0,
            description="Highest valve-well / manhole methane reading. GB/T 50493-2019: 25 %LEL first alarm (orange), "
                        "50 %LEL second alarm (red); 10 %LEL low alarm (blue, setting).",
        ),
        timeseries(
            "Network pressure by district (min / max)", grid.place(12, 8),
            [InfluxTarget("A", f'SELECT min("pressure") AS "min", max("pressure") AS "max" FROM {Q.readings("gas")} WHERE {WHERE_D} '
                               f"GROUP BY {BY_DISTRICT} fill(none)", alias="$tag_district $col")],
            unit=grafana_unit(gas.metrics["pressure"].unit), thresholds=metric_steps(gas, "pressure"),
            description="Medium-pressure B network; above 200 kPa is over the class bound (GB 50028-2006).",
        ),
    ]


def design_of(ctx: Context, asset_id: str, threshold_params: dict) -> float:
    """A bridge's design value: the asset's params, else the threshold's default (as the detectors look it up)."""
    a = ctx.city.assets[asset_id]
    return float(a.params.get(threshold_params["design_param"], threshold_params["default_design"]))


def bridge_share_panel(ctx: Context, metric: str, grid, where: str = Q.DISTRICT, kinds: tuple[str, ...] = ()) -> Panel:  # noqa: ANN001
    bridge = ctx.lifelines["bridge"]
    th = next(t for t in bridge.thresholds if t.metric == metric and t.op == "design_share")
    targets = []
    for i, a in enumerate(ctx.assets("bridge", "bridge")):
        sensors = [s.id for s in ctx.city.sensors_by_asset.get(a.id, []) if metric in bridge.sensor_kinds[s.kind].metrics]
        if not sensors:
            continue
        design = design_of(ctx, a.id, th.params)
        inner = (f'SELECT abs({Q.q(metric)}) / {design:g} AS "share" FROM {Q.readings("bridge")} WHERE {Q.TIME_FILTER} '
                 f'AND {where} AND "sensor_id" =~ {Q.regex_of(sensors)}')
        targets.append(InfluxTarget(f"B{i}", f'SELECT max("share") FROM ({inner}) WHERE {Q.TIME_FILTER} '
                                             f"GROUP BY time({Q.INTERVAL}) fill(none)", alias=a.name or a.id))
    return timeseries(
        f"Bridge {metric} as a share of its design value", grid, targets, unit="percentunit",
        thresholds=metric_steps(bridge, metric, view="share"), min_value=0,
        description=f"Per bridge, the largest |{metric}| of its gauges over the bridge's {th.params['design_param']} (city file). "
                    "Levels 0.7 / 0.85 / 1.0 of design: JT/T 1037-2022 three warning levels, shares are a setting.",
    )


def bridge_panels(ctx: Context, grid: Grid) -> list[Panel]:
    bridge = ctx.lifelines["bridge"]
    return [
        row(f"{bridge.title} {bridge.title_zh}", grid.row()),
        bridge_share_panel(ctx, "strain", grid.place(12, 8)),
        bridge_share_panel(ctx, "deflection", grid.place(12, 8)),
    ]


AQI_NOTE = ("Colour bands: HJ 633 AQI levels 1-6 (green, yellow, orange, red, purple, maroon: HJ 633-2012 Table 2) at the "
            "{rules} IAQI breakpoints 50/100/150/200/300 of {item}. An hourly value is judged on the 24-h breakpoints, as "
            "detectors/standards/aqi.py does; the AQI itself (max IAQI over six pollutants) is not computed in InfluxQL.")


def air_panels(ctx: Context, grid: Grid, where: str = WHERE_D, group: str = BY_DISTRICT, alias: str = "$tag_district") -> list[Panel]:
    air = ctx.lifelines["air"]
    rules = ctx.options.aqi_rules
    out: list[Panel] = [row(f"{air.title} {air.title_zh}", grid.row())]
    for metric, item in (("pm25", "pm25_24h"), ("pm10", "pm10_24h")):
        out.append(timeseries(
            f"{metric.upper().replace('PM25', 'PM2.5')} with HJ 633 AQI bands", grid.place(12, 8),
            [InfluxTarget("A", f'SELECT mean({Q.q(metric)}) FROM {Q.readings("air")} WHERE {where} GROUP BY {group} fill(none)',
                          alias=alias)],
            unit=grafana_unit(air.metrics[metric].unit), thresholds=aqi_steps(TABLES[rules][item]), threshold_style="area",
            min_value=0, description=AQI_NOTE.format(rules=rules, item=item),
        ))
    return out


def response_panels(ctx: Context, grid: Grid) -> list[Panel]:
    return [
        row("Response 响应", grid.row()),
        kpi_table("Time to acknowledge by level", "tta_s", grid.place(8, 7)),
        kpi_table("Time to resolve by level", "ttr_s", grid.place(8, 7)),
        timeseries(
            "Sensors alerting / offline", grid.place(8, 7),
            [InfluxTarget("A", Q.lifeline_status_history([("alerting", "alerting"), ("offline", "offline")], "all"), alias="$col")],
            overrides=[fixed_colour_override("alerting", LEVEL_COLOURS["red"]), fixed_colour_override("offline", OFFLINE_COLOUR)],
            description="City-wide counts from the derived state (kept one day).",
        ),
    ]


def build(ctx: Context) -> Dashboard:
    grid = Grid()
    panels: list[Panel] = [row("Now 当前", grid.row())]
    for lid in ctx.lifelines:
        panels.append(status_tile(ctx, lid, grid.place(4, 6)))
    panels.append(active_alerts_stat(ctx, "all", grid.place(4, 6)))
    grid.newline()
    panels.append(sensor_map(ctx, grid.place(16, 14)))
    panels.append(text("Districts", grid.place(8, 14), ctx.districts_markdown()))
    for part in (water_panels, power_panels, gas_panels, bridge_panels, air_panels, response_panels):
        panels.extend(part(ctx, grid))
    return Dashboard(
        uid=ctx.uid("overview"),
        title=ctx.title("City safety overview 城市生命线安全总览"),
        panels=panels,
        tags=ctx.tags,
        description="Lifewatch: every lifeline's state, alerts and standard-judged quantities per district.",
        variables=[ctx.district_variable(SENSORS), ctx.rp_variable()],
        annotations=alert_annotations(Q.DISTRICT),
        time_from="now-6h",
        refresh="1m",
        links=ctx.links(),
    )
