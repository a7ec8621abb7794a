"""Platform health: ingest rate, lag, dead letters, buffer depth, write errors; what InfluxDB actually stores.

Ingest's own metrics live in Prometheus format on its ``/metrics``
(:mod:`ingest.metrics`), not in InfluxDB, so those panels use a Prometheus
datasource (uid ``lifewatch-prometheus``; the compose stack runs Prometheus
scraping ingest).  The tests check every metric and label these PromQL
expressions name against :class:`ingest.metrics.IngestMetrics`.  The
InfluxQL panels (stored readings, the derived-state writer) are run against
a real InfluxDB like every other InfluxQL query.
"""

from __future__ import annotations

from dashboards import queries as Q
from dashboards.context import Context
from dashboards.grafana import Dashboard, Grid, InfluxTarget, Panel, PromTarget, steps
from dashboards.materialize import LIFELINE_STATUS, STATE_WINDOW_S
from dashboards.panels import row, stat, timeseries
from dashboards.style import LEVEL_COLOURS, OK_COLOUR

RATE = "[$__rate_interval]"


def prom_panels(grid: Grid) -> list[Panel]:
    return [
        row("Ingest 接入 (Prometheus)", grid.row()),
        stat("MQTT connected", grid.place(4, 5), [PromTarget("A", "min(lifewatch_ingest_mqtt_connected)", "connected", instant=True)],
             thresholds=steps((None, LEVEL_COLOURS["red"]), (1, OK_COLOUR)), no_value="no ingest",
             description="1 while ingest holds its broker session."),
        stat("Backpressure", grid.place(4, 5), [PromTarget("A", "max by (cause) (lifewatch_ingest_backpressure)", "{{cause}}", instant=True)],
             thresholds=steps((None, OK_COLOUR), (1, LEVEL_COLOURS["orange"])),
             description="1 while ingest withholds acknowledgements (dead-letter store full, InfluxDB down)."),
        stat("Dead letters pending", grid.place(4, 5), [PromTarget("A", "max(lifewatch_deadletter_pending)", "pending", instant=True)],
             thresholds=steps((None, OK_COLOUR), (1, LEVEL_COLOURS["yellow"])), description="`lifewatch deadletter list` shows them."),
        stat("Ingest lag", grid.place(4, 5), [PromTarget("A", "max(lifewatch_ingest_lag_seconds)", "lag", instant=True)], unit="s",
             thresholds=steps((None, OK_COLOUR), (60, LEVEL_COLOURS["yellow"]), (300, LEVEL_COLOURS["red"])),
             description="Arrival minus event time of the newest written reading."),
        stat("Buffer depth", grid.place(4, 5), [PromTarget("A", "max(lifewatch_ingest_buffer_depth)", "points", instant=True)],
             thresholds=steps((None, OK_COLOUR), (20000, LEVEL_COLOURS["yellow"])), description="Points waiting to be written."),
        stat("Write errors (5 min)", grid.place(4, 5),
             [PromTarget("A", "sum(increase(lifewatch_ingest_write_errors_total[5m]))", "errors", instant=True)],
             thresholds=steps((None, OK_COLOUR), (1, LEVEL_COLOURS["orange"]))),
        timeseries("Points written per second by lifeline", grid.place(12, 8),
                   [PromTarget("A", f"sum by (lifeline) (rate(lifewatch_ingest_points_written_total{RATE}))", "{{lifeline}}")], unit="ops"),
        timeseries("Ingest lag", grid.place(12, 8), [PromTarget("A", "max(lifewatch_ingest_lag_seconds)", "lag")], unit="s"),
        timeseries("Rejected readings by reason (per second)", grid.place(12, 8),
                   [PromTarget("A", f"sum by (reason) (rate(lifewatch_ingest_rejected_total{RATE}))", "{{reason}}"),
                    PromTarget("B", "max(lifewatch_deadletter_pending)", "dead letters pending")], unit="short"),
        timeseries("Buffer depth", grid.place(12, 8),
                   [PromTarget("A", "max(lifewatch_ingest_buffer_depth)", "points waiting"),
                    PromTarget("B", "max(lifewatch_ingest_buffer_messages)", "messages unacknowledged")], unit="short"),
        timeseries("InfluxDB write errors and retries (per second)", grid.place(12, 8),
                   [PromTarget("A", f"sum by (kind) (rate(lifewatch_ingest_write_errors_total{RATE}))", "error: {{kind}}"),
                    PromTarget("B", f"sum(rate(lifewatch_ingest_write_retries_total{RATE}))", "retries")], unit="short"),
        timeseries("Batch write and detector time (p95)", grid.place(12, 8),
                   [PromTarget("A", f"histogram_quantile(0.95, sum by (le) (rate(lifewatch_ingest_batch_seconds_bucket{RATE})))", "write batch"),
                    PromTarget("B", f"histogram_quantile(0.95, sum by (le) (rate(lifewatch_detector_batch_seconds_bucket{RATE})))", "detectors")],
                   unit="s"),
        timeseries("Detections raised per minute by lifeline", grid.place(24, 7),
                   [PromTarget("A", f'60 * sum by (lifeline) (rate(lifewatch_detections_total{{state="raised"}}{RATE}))', "{{lifeline}}")],
                   draw="bars"),
    ]


def influx_panels(ctx: Context, grid: Grid) -> list[Panel]:
    status = Q.state(LIFELINE_STATUS)
    return [
        row("Stored 存储 (InfluxDB)", grid.row()),
        timeseries(
            "Readings stored per interval by lifeline", grid.place(16, 8),
            [InfluxTarget(f"R{i}", Q.readings_count(ll, Q.TIME_FILTER, f"time({Q.INTERVAL})"), alias=ll.id)
             for i, ll in enumerate(ctx.lifelines.values())],
            interval="1m", description="What InfluxDB holds (event time), whatever ingest says it wrote.",
        ),
        stat("Derived-state runs (last 5 min)", grid.place(8, 4),
             [InfluxTarget("A", f'SELECT count("run_s") AS "runs" FROM {status} WHERE time > now() - {STATE_WINDOW_S}s '
                                "AND \"lifeline\" = 'all'", "table")],
             thresholds=steps((None, LEVEL_COLOURS["red"]), (2, OK_COLOUR)),
             description="`lifewatch dashboards materialize` writes the state the overview shows; 0 here = stale tiles and map."),
        timeseries("Derived-state run time", grid.place(8, 4),
                   [InfluxTarget("A", f'SELECT max("run_s") FROM {status} WHERE {Q.TIME_FILTER} AND "lifeline" = \'all\' '
                                      f"GROUP BY time({Q.INTERVAL}) fill(none)", alias="run time")], unit="s"),
    ]


def build(ctx: Context) -> Dashboard:
    grid = Grid()
    panels = prom_panels(grid)
    panels.extend(influx_panels(ctx, grid))
    return Dashboard(
        uid=ctx.uid("platform"),
        title=ctx.title("Platform health 平台运行"),
        panels=panels,
        tags=[*ctx.tags, "platform"],
        description="Lifewatch: ingest (Prometheus) and storage (InfluxDB) health.",
        variables=[ctx.rp_variable()],
        time_from="now-3h",
        refresh="30s",
        links=ctx.links(),
    )
