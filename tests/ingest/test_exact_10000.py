"""10,000 simulated readings through real Mosquitto and InfluxDB land exactly: same count, values and timestamps."""

from __future__ import annotations

import orjson

from lifewatch.city import load_city
from lifewatch.model import NS, reading_to_json, reading_topic
from simulators.engine import Simulation
from tests.mqtt_support import all_points, publish_raw, total_points, wait_for

START_NS = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z


def test_10000_simulated_readings_land_exactly(settings, influx, ingest_running):
    sim = Simulation(load_city(), seed=11, start_ns=START_NS)
    readings = []
    for r in sim.iter_readings(START_NS + 7 * 86400 * NS):
        readings.append(r)
        if len(readings) == 10_000:
            break
    assert len(readings) == 10_000
    assert {r.lifeline for r in readings} == {"water", "power", "gas", "bridge", "air"}
    expected = {
        (r.lifeline, r.district, r.sensor_id, r.ts_ns, tuple(sorted((k, v) for k, v in r.values.items() if v is not None)))
        for r in readings
    }
    assert len(expected) == 10_000  # every reading is its own point

    publish_raw(
        settings.mqtt_host,
        settings.mqtt_port,
        ((reading_topic(settings.topic_prefix, r.lifeline, r.district, r.sensor_id), orjson.dumps(reading_to_json(r))) for r in readings),
    )
    assert wait_for(lambda: total_points(influx) >= 10_000, timeout=90)
    assert total_points(influx) == 10_000
    assert all_points(influx) == expected
