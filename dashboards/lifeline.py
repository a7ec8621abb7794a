"""One drill-down dashboard per lifeline: its state now, its open alerts, and every metric per sensor.

Variables: ``$district`` and ``$sensor`` (``SHOW TAG VALUES FROM <lifeline>``,
so they list what InfluxDB holds), ``$rp`` (where readings are read from)
and ``$api_url`` (alert rows link to the crew console).  Metric panels carry
the thresholds of the lifeline YAML; a metric without one shows plain lines.
"""

from __future__ import annotations

from dashboards import queries as Q
from dashboards.context import Context
from dashboards.grafana import Dashboard, Grid, InfluxTarget, Panel
from dashboards.overview import (
    active_alerts_stat,
    alert_annotations,
    bridge_share_panel,
    sensor_map,
    status_tile,
)
from dashboards.panels import row, table, timeseries
from dashboards.queue import open_alerts_table
from dashboards.style import aqi_steps, grafana_unit, metric_steps, state_code_mappings
from detectors.standards.aqi import HOURLY_ITEM, TABLES

WHERE_DS = f"{Q.TIME_FILTER} AND {Q.DISTRICT} AND {Q.SENSOR}"


def _interval(ctx: Context, lid: str) -> str:
    """Minimum panel interval: the shortest reporting interval of the lifeline's sensor kinds (no empty buckets)."""
    secs = min(k.interval_s for k in ctx.lifelines[lid].sensor_kinds.values())
    return f"{int(secs // 60)}m" if secs >= 60 and secs % 60 == 0 else f"{int(secs)}s"


def carried_metrics(ll) -> list[str]:  # noqa: ANN001 - a Lifeline
    """The metrics some sensor kind reports, in the YAML's order (a declared metric no kind carries gets no panel)."""
    carried = {m for k in ll.sensor_kinds.values() for m in k.metrics}
    return [m for m in ll.metrics if m in carried]


def sensor_state_table(ctx: Context, lid: str, grid) -> Panel:  # noqa: ANN001
    where = f"\"lifeline\" = {Q.lit(lid)} AND {Q.DISTRICT}"
    return table(
        "Sensors not ok", grid, [InfluxTarget("A", Q.sensor_states(where), "table")],
        description="Sensors alerting or offline now (age_s: seconds since the last reading; -1 = none in the offline horizon).",
        overrides=[{"matcher": {"id": "byName", "options": "state_code"},
                    "properties": [{"id": "mappings", "value": state_code_mappings()},
                                   {"id": "custom.cellOptions", "value": {"type": "color-background"}},
                                   {"id": "displayName", "value": "state"}]},
                   {"matcher": {"id": "byName", "options": "age_s"}, "properties": [{"id": "unit", "value": "dtdurations"}]},
                   {"matcher": {"id": "byRegexp", "options": "latitude|longitude|Time|state"},
                    "properties": [{"id": "custom.hidden", "value": True}]}],
        sort_by="state_code", no_value="all sensors ok",
    )


def metric_panel(ctx: Context, lid: str, metric: str, grid) -> Panel:  # noqa: ANN001
    ll = ctx.lifelines[lid]
    m = ll.metrics[metric]
    thresholds = metric_steps(ll, metric)
    extra = {}
    if lid == "air":
        item = HOURLY_ITEM[metric]
        thresholds = aqi_steps(TABLES[ctx.options.aqi_rules][item])
        extra = {"threshold_style": "area"}
    desc = m.description
    if thresholds and lid != "air":
        desc += ". Bands: " + "; ".join(t.source for t in ll.thresholds if t.metric == metric and t.op != "ieee1159")
    elif lid == "air":
        desc += f". Colour bands: HJ 633 AQI levels at the {ctx.options.aqi_rules} IAQI breakpoints of {HOURLY_ITEM[metric]}."
    return timeseries(
        f"{metric} ({m.unit})", grid,
        [InfluxTarget("A", f"SELECT mean({Q.q(metric)}) FROM {Q.readings(lid)} WHERE {WHERE_DS} "
                           f'GROUP BY time({Q.INTERVAL}), "sensor_id" fill(none)', alias="$tag_sensor_id")],
        unit=grafana_unit(m.unit), thresholds=thresholds, description=desc, interval=_interval(ctx, lid), **extra,
    )


def extra_panels(ctx: Context, lid: str, grid: Grid) -> list[Panel]:
    where = f"{Q.DISTRICT} AND {Q.SENSOR}"
    if lid == "bridge":
        return [bridge_share_panel(ctx, metric, grid.place(8, 8), where=where) for metric in ("strain", "deflection", "tilt")]
    if lid == "power":
        power = ctx.lifelines["power"]
        out = []
        for metric in ("voltage", "voltage_kv"):
            t = next(t for t in power.thresholds if t.metric == metric and t.op == "band_pct")
            n = t.nominal
            out.append(timeseries(
                f"{metric} deviation from {n:g} {power.metrics[metric].unit} (%)", grid.place(12, 8),
                [InfluxTarget("A", f"SELECT (mean({Q.q(metric)}) - {n:g}) / {n:g} * 100 FROM {Q.readings(lid)} WHERE {WHERE_DS} "
                                   f'GROUP BY time({Q.INTERVAL}), "sensor_id" fill(none)', alias="$tag_sensor_id")],
                unit="percent", thresholds=metric_steps(power, metric, view="deviation_pct"), interval=_interval(ctx, lid),
                description=t.source,
            ))
        return out
    if lid == "water":
        offset_h = -ctx.city.utc_offset_hours
        return [timeseries(
            "Night flow (daily minimum) by DMA inlet", grid.place(24, 8),
            [InfluxTarget("A", f'SELECT min("flow") FROM {Q.readings(lid)} WHERE {WHERE_DS} '
                               f'GROUP BY time(1d,{offset_h:g}h), "sensor_id" fill(none)', alias="$tag_sensor_id")],
            unit=grafana_unit(ctx.lifelines[lid].metrics["flow"].unit), time_from="30d", draw="points",
            description="Daily minimum inlet flow per local day (LeakDB algorithmMNF).",
        )]
    return []


def build(ctx: Context, lid: str) -> Dashboard:
    ll = ctx.lifelines[lid]
    grid = Grid()
    lifeline_filter = f"\"lifeline\" = {Q.lit(lid)}"
    panels: list[Panel] = [row("Now 当前", grid.row())]
    panels.append(status_tile(ctx, lid, grid.place(5, 7)))
    panels.append(active_alerts_stat(ctx, lid, grid.place(5, 7)))
    panels.append(open_alerts_table(ctx, grid.place(14, 7), f"{lifeline_filter} AND {Q.DISTRICT}", title="Open alerts"))
    panels.append(sensor_map(ctx, grid.place(12, 12), where=f"{lifeline_filter} AND {Q.DISTRICT}"))
    panels.append(sensor_state_table(ctx, lid, grid.place(12, 12)))
    panels.append(row("Readings 读数", grid.row()))
    for metric in carried_metrics(ll):
        panels.append(metric_panel(ctx, lid, metric, grid.place(12, 8)))
    extras = extra_panels(ctx, lid, grid)
    if extras:
        grid.newline()
        panels.append(row("Judged against the standards 标准判定", grid.row()))
        panels.extend(extras)
    panels.append(row("Data 数据", grid.row()))
    panels.append(timeseries(
        "Readings stored per interval by district", grid.place(24, 7),
        [InfluxTarget("A", Q.readings_count(ll, f"{Q.TIME_FILTER} AND {Q.DISTRICT} AND {Q.SENSOR}", f'time({Q.INTERVAL}), "district"'),
                      alias="$tag_district")],
        description=f"Points in InfluxDB per bucket (sum of the counts of {', '.join(Q.presence_metrics(ll))}: every sensor kind "
                    "carries exactly one of them). Gaps here are gaps in the data.",
        interval=_interval(ctx, lid), draw="bars",
    ))
    return Dashboard(
        uid=ctx.uid(lid),
        title=ctx.title(f"{ll.title} {ll.title_zh}"),
        panels=panels,
        tags=[*ctx.tags, lid],
        description=f"Lifewatch drill-down: {ll.title} ({ll.responsible}).",
        variables=[ctx.district_variable(lid), ctx.sensor_variable(lid), ctx.rp_variable(), ctx.api_variable()],
        annotations=alert_annotations(f"{lifeline_filter} AND {Q.DISTRICT}"),
        time_from="now-6h",
        refresh="1m",
        links=ctx.links(),
    )
