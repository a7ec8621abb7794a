"""The derived-state writer over successive runs: offline and recovery, alerts that close or change level, restarts."""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime

import pytest

from dashboards import queries as Q
from dashboards.materialize import (
    ALERT_KPI,
    META_RP,
    SENSORS,
    STATE_RP,
    MaterializeConfig,
    Materializer,
    alert_sensors,
    offline_k_default,
)
from lifewatch.city import load_city
from lifewatch.influx import InfluxClient
from lifewatch.levels import Level
from lifewatch.lineprotocol import encode_reading
from lifewatch.model import NS, Reading

CITY = load_city()


def reading(sensor: str, ts_ns: int) -> str:
    s = CITY.sensors[sensor]
    kind = {"water": {"pressure": 0.3}, "power": {"load": 1.0}, "gas": {"pressure": 150.0}, "bridge": {"tilt": 0.0},
            "air": {"pm25": 20.0}}[s.lifeline]
    return encode_reading(Reading(s.lifeline, s.district, s.id, ts_ns, kind))


def rows(client: InfluxClient, text: str) -> list[dict]:
    return [{**s.tags, **dict(zip(s.columns, v, strict=True))} for s in client.query(text, epoch="ns") for v in s.values]


def not_ok(client: InfluxClient, lifeline: str = "water") -> dict[str, int]:
    return {r["sensor_id"]: r["state_code"] for r in rows(client, Q.sensor_states(f'"lifeline" = {Q.lit(lifeline)}'))}


def open_ids(client: InfluxClient) -> dict[str, str]:
    return {r["alert_id"]: r["level"] for r in rows(client, Q.open_alerts('"unit" =~ /.*/'))}


def alert_change(client: InfluxClient, outbox_id: int, event: str, state: str, level: Level, at_ns: int, aid: str = "a1") -> None:
    from alerts.notify.influx import alert_point
    from alerts.notify.message import Notice, Texts

    alert = {"id": aid, "key": "water:w-d01-003:sensor_stuck", "kind": "sensor_stuck", "lifeline": "water", "district": "d01",
             "asset": "dma-d01-1", "unit": "shz-water", "level": level.label, "state": state, "count": 1}
    n = Notice(outbox_id, event, datetime.fromtimestamp(at_ns / NS, tz=UTC), "shz-water", level, {"event": event, "alert": alert})
    client.write(alert_point(n, Texts(CITY)))


def test_offline_after_k_reporting_intervals(influx) -> None:
    now = time.time_ns()
    k = offline_k_default()
    influx.write("\n".join([reading("w-d01-001", now - int((k * 60 - 10) * NS)), reading("w-d01-002", now - int((k * 60 + 10) * NS)),
                            reading("a-d01-001", now - int((k * 60 + 10) * NS))]))
    report = Materializer(influx, CITY).run_once(now)
    states = not_ok(influx)
    assert "w-d01-001" not in states  # heard within k intervals
    assert states["w-d01-002"] == 5  # silent for just over k x 60 s
    assert "a-d01-001" not in not_ok(influx, "air")  # air stations report every 300 s: k x 300 s not yet over
    assert report.ok == 2 and report.offline == len(CITY.sensors) - 2


def test_a_recovered_sensor_leaves_the_map(influx) -> None:
    now = time.time_ns()
    m = Materializer(influx, CITY)
    m.run_once(now)
    assert not_ok(influx)["w-d01-004"] == 5
    influx.write(reading("w-d01-004", now + NS))
    m.run_once(now + 2 * NS)
    assert "w-d01-004" not in not_ok(influx)
    last = rows(influx, f'SELECT last("state_code") FROM "{STATE_RP}"."sensor_state" WHERE "sensor_id" = \'w-d01-004\'')
    assert last[0]["last"] == 0  # the recovery point


def test_alert_level_change_and_close_move_it_through_the_queue(influx) -> None:
    now = time.time_ns()
    m = Materializer(influx, CITY)
    influx.write(reading("w-d01-003", now))
    alert_change(influx, 1, "alert.raised", "new", Level.YELLOW, now - 600 * NS)
    m.run_once(now)
    assert open_ids(influx) == {"a1": "yellow"}
    assert not_ok(influx)["w-d01-003"] == int(Level.YELLOW)
    alert_change(influx, 2, "alert.level_raised", "new", Level.ORANGE, now - 300 * NS)
    m.run_once(now + NS)
    assert open_ids(influx) == {"a1": "orange"}  # the yellow series was closed
    by_level = {r["level"]: r["alerts"] for r in rows(influx, Q.open_alert_counts('"unit" =~ /.*/', "level"))}
    assert by_level == {"orange": 1}
    assert not_ok(influx)["w-d01-003"] == int(Level.ORANGE)
    alert_change(influx, 3, "alert.transition", "acknowledged", Level.ORANGE, now - 240 * NS)
    alert_change(influx, 4, "alert.transition", "resolved", Level.ORANGE, now - 120 * NS)
    m.run_once(now + 2 * NS)
    assert open_ids(influx) == {"a1": "orange"}  # resolved waits for the control room
    assert "w-d01-003" not in not_ok(influx)  # but the sensor is no longer alerting
    alert_change(influx, 5, "alert.transition", "closed", Level.ORANGE, now - 60 * NS)
    m.run_once(now + 3 * NS)
    assert open_ids(influx) == {}
    kpi = rows(influx, f'SELECT "tta_s", "ttr_s", "level" FROM "{ALERT_KPI}"')
    assert {k: r[k] for r in kpi for k in ("tta_s", "ttr_s") if r[k] is not None} == {"tta_s": 360.0, "ttr_s": 480.0}


def test_a_restarted_writer_closes_what_the_previous_one_left_open(influx) -> None:
    now = time.time_ns()
    alert_change(influx, 1, "alert.raised", "new", Level.RED, now - 600 * NS)
    Materializer(influx, CITY).run_once(now)
    assert open_ids(influx) == {"a1": "red"}
    alert_change(influx, 2, "alert.transition", "false_alarm", Level.RED, now - 60 * NS)
    Materializer(influx, CITY).run_once(now + NS)  # a new process: no memory of the previous run
    assert open_ids(influx) == {}


def test_kpis_are_written_once_per_alert(influx) -> None:
    now = time.time_ns()
    alert_change(influx, 1, "alert.raised", "new", Level.RED, now - 600 * NS)
    alert_change(influx, 2, "alert.transition", "acknowledged", Level.RED, now - 500 * NS)
    m = Materializer(influx, CITY)
    first = m.run_once(now).points
    second = m.run_once(now + NS).points
    assert first - second == 1  # the tta point
    assert rows(influx, f'SELECT count("tta_s") FROM "{ALERT_KPI}"')[0]["count"] == 1


def test_seed_metadata_follows_the_city_file(influx) -> None:
    m = Materializer(influx, CITY)
    assert m.seed_metadata() == len(CITY.sensors)
    smaller = dataclasses.replace(CITY, sensors={k: v for k, v in CITY.sensors.items() if k != "w-d01-001"})
    Materializer(influx, smaller).seed_metadata()
    got = {r["sensor_id"] for r in rows(influx, f'SELECT "latitude", "sensor_id" FROM "{META_RP}"."{SENSORS}"')}
    assert got == set(smaller.sensors)


def test_schema_is_created_once(influx) -> None:
    m = Materializer(influx, CITY, MaterializeConfig(state_rp_duration="2d"))
    m.ensure_schema()
    m.ensure_schema()
    rps = {r["name"]: r["duration"] for r in rows(influx, f'SHOW RETENTION POLICIES ON "{influx.db}"')}
    assert rps[META_RP] == "0s" and rps[STATE_RP] == "48h0m0s"


def test_config_is_checked() -> None:
    with pytest.raises(ValueError, match="interval"):
        MaterializeConfig(interval_s=600)
    from detectors.health.timing import Offline

    assert MaterializeConfig().offline_k == Offline.defaults["k"]


def test_alert_sensors_prefers_the_named_sensors() -> None:
    assert alert_sensors({"sensors": "w-d01-002,nope", "key": "water:dma-d01-1:water_burst"}, CITY) == ["w-d01-002"]
    assert alert_sensors({"key": "power:p-d01-005,p-d01-006:sag"}, CITY) == ["p-d01-005", "p-d01-006"]
    assert alert_sensors({"key": "garbage"}, CITY) == []


def test_cli_materialize_once_check_and_seed(settings, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    import argparse

    from dashboards.cli import add_arguments, cli

    p = argparse.ArgumentParser()
    add_arguments(p)
    assert cli(p.parse_args(["materialize", "--check"]), settings) == 1  # nothing written yet: unhealthy
    assert cli(p.parse_args(["seed-metadata"]), settings) == 0
    assert f"{len(CITY.sensors)} sensors" in capsys.readouterr().out
    assert cli(p.parse_args(["materialize", "--once"]), settings) == 0
    assert f"{len(CITY.sensors)} sensors: 0 ok" in capsys.readouterr().out  # an empty database: every sensor offline
    assert cli(p.parse_args(["materialize", "--check"]), settings) == 0
    assert cli(p.parse_args(["materialize", "--interval", "10m"]), settings) == 2
