"""Alert queue: open alerts by priority (each row links to the crew console), counts, history and response KPIs.

Open alerts come from ``alerts_open`` (:mod:`dashboards.materialize`: the
newest state of every alert in the notifier's ``alerts`` measurement); the
history table reads ``alerts`` itself.  ``$unit`` is the list of responsible
units of the city file; ``$api_url`` is the alert API's base URL.
"""

from __future__ import annotations

from typing import Any

from dashboards import queries as Q
from dashboards.context import Context
from dashboards.grafana import Dashboard, Grid, InfluxTarget, Panel
from dashboards.overview import kpi_table
from dashboards.panels import row, stat, table, timeseries
from dashboards.style import level_colour_override
from lifewatch.levels import Level

CONSOLE = "${api_url}/console/#/alerts/"


def level_mappings() -> list[dict[str, Any]]:
    return [{"type": "value", "options": {lv.label: {"color": lv.colour, "index": int(lv), "text": f"{lv.label} {lv.roman}"}
                                          for lv in Level}}]


def console_link(value: str) -> list[dict[str, Any]]:
    return [{"targetBlank": True, "title": "Open in the crew console", "url": CONSOLE + value}]


def alert_table_overrides() -> list[dict[str, Any]]:
    return [
        {"matcher": {"id": "byName", "options": "alert_id"}, "properties": [{"id": "links", "value": console_link("${__value.raw}")}]},
        {"matcher": {"id": "byName", "options": "title"},
         "properties": [{"id": "links", "value": console_link("${__data.fields.alert_id}")}, {"id": "custom.width", "value": 360}]},
        {"matcher": {"id": "byName", "options": "level"},
         "properties": [{"id": "mappings", "value": level_mappings()},
                        {"id": "custom.cellOptions", "value": {"type": "color-background"}}]},
        {"matcher": {"id": "byName", "options": "first_seen_ms"},
         "properties": [{"id": "unit", "value": "dateTimeAsIso"}, {"id": "displayName", "value": "first seen"}]},
        {"matcher": {"id": "byName", "options": "age_s"}, "properties": [{"id": "unit", "value": "dtdurations"},
                                                                        {"id": "displayName", "value": "age"}]},
        {"matcher": {"id": "byName", "options": "level_n"},
         "properties": [{"id": "displayName", "value": "priority"}, {"id": "custom.width", "value": 80},
                        {"id": "mappings", "value": [{"type": "value", "options": {str(int(lv)): {"index": int(lv), "text": lv.roman}
                                                                                   for lv in Level}}]}]},
        {"matcher": {"id": "byName", "options": "Time"}, "properties": [{"id": "custom.hidden", "value": True}]},
    ]


def open_alerts_table(ctx: Context, grid, where: str, title: str = "Open alerts by priority") -> Panel:  # noqa: ANN001
    return table(
        title, grid, [InfluxTarget("A", Q.open_alerts(where), "table")],
        description="Every alert not closed and not a false alarm, most severe level first; click the id or title to open it "
                    "in the crew console ($api_url/console/#/alerts/<id>). Refreshed every minute from the alerts' state changes.",
        overrides=alert_table_overrides(), sort_by="priority", no_value="no open alerts",
    )


def count_stat(title: str, grid, where: str, by: str, overrides: list | None = None, description: str = "") -> Panel:  # noqa: ANN001
    return stat(title, grid, [InfluxTarget("A", Q.open_alert_counts(where, by), alias=f"$tag_{by}")],
                overrides=overrides, description=description, color_mode="background")


def build(ctx: Context) -> Dashboard:
    grid = Grid()
    panels: list[Panel] = [row("Queue now 当前队列", grid.row())]
    panels.append(count_stat("Open alerts by level", grid.place(8, 5), Q.UNIT, "level",
                             overrides=[level_colour_override(lv.label, lv.label) for lv in Level]))
    panels.append(count_stat("Open alerts by state", grid.place(8, 5), Q.UNIT, "state",
                             description="new: waiting for the unit; acknowledged / dispatched: being worked; resolved: waiting "
                                         "for the control room to verify; cleared: the condition ended before anyone signed."))
    panels.append(count_stat("Open alerts by unit", grid.place(8, 5), Q.UNIT, "unit"))
    panels.append(open_alerts_table(ctx, grid.place(24, 12), Q.UNIT))
    panels.append(row("Response 响应", grid.row()))
    panels.append(kpi_table("Time to acknowledge by unit and level", "tta_s", grid.place(12, 8), by='"unit", "level"', where=Q.UNIT))
    panels.append(kpi_table("Time to resolve by unit and level", "ttr_s", grid.place(12, 8), by='"unit", "level"', where=Q.UNIT))
    panels.append(row("History 历史", grid.row()))
    panels.append(timeseries(
        "Active alerts by level", grid.place(12, 8),
        [InfluxTarget("A", Q.lifeline_status_history([(f"active_{lv.label}", lv.label) for lv in Level], "all"), alias="$col")],
        overrides=[level_colour_override(lv.label, lv.label) for lv in Level], description="City-wide (all units).",
    ))
    panels.append(timeseries(
        "Alert state changes per hour", grid.place(12, 8),
        [InfluxTarget("A", f'SELECT count("alert_id") FROM "alerts" WHERE {Q.TIME_FILTER} AND {Q.UNIT} GROUP BY time(1h), "event" fill(none)',
                      alias="$tag_event")],
        draw="bars", description="The notifier's points in the alerts measurement, by outbox event kind.",
    ))
    panels.append(table(
        "Recent state changes", grid.place(24, 10),
        [InfluxTarget("A", f'SELECT "alert_id", "level", "state", "event", "title", "lifeline", "district", "unit" FROM "alerts" '
                           f"WHERE {Q.TIME_FILTER} AND {Q.UNIT} ORDER BY time DESC LIMIT 500", "table")],
        overrides=[o for o in alert_table_overrides() if o["matcher"]["options"] in ("alert_id", "title", "level")],
        description="Newest first, at most 500.",
    ))
    return Dashboard(
        uid=ctx.uid("queue"),
        title=ctx.title("Alert queue 预警队列"),
        panels=panels,
        tags=[*ctx.tags, "alerts"],
        description="Lifewatch: open alerts by priority, linked to the crew console.",
        variables=[ctx.unit_variable(), ctx.api_variable()],
        time_from="now-24h",
        refresh="1m",
        links=ctx.links(),
    )
