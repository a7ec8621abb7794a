"""Wiring: a simulator incident published over MQTT appears in the right unit's queue within seconds.

Real Mosquitto, real InfluxDB, ingest with detectors and the alert intake
(SQLite in the test's state dir), then the alert API read by the crews.
"""

from __future__ import annotations

import time

import orjson
from fastapi.testclient import TestClient

from alerts.api import create_app
from lifewatch.city import load_city
from lifewatch.model import NS, reading_to_json, reading_topic
from simulators.engine import Simulation
from simulators.scenarios import make_incident
from tests.ingest.conftest import RunningIngest
from tests.mqtt_support import publish_raw, wait_for

T0 = 1_767_571_200 * NS  # 2026-01-05T00:00:00Z


def test_outage_reaches_the_power_units_queue_only(settings, influx):
    city = load_city()
    feeder = [s.id for s in city.sensors.values() if s.asset == "fdr-d03-1"]
    inc = make_incident("power.outage", "fdr-d03-1", T0 + 40 * 60 * NS, 30 * 60)
    readings = Simulation(city, seed=4, start_ns=T0, incidents=[inc], sensors=feeder).readings_between(T0, T0 + 80 * 60 * NS)
    power_unit = city.unit_for("power", "d03").id
    water_unit = city.unit_for("water", "d03").id

    with RunningIngest(settings.replace(batch_size=500, flush_interval=0.2)):
        app = create_app(settings)
        with TestClient(app) as client:
            crew = {"Authorization": f"Bearer demo-crew-{power_unit}"}
            other = {"Authorization": f"Bearer demo-crew-{water_unit}"}
            t_publish = time.monotonic()
            publish_raw(settings.mqtt_host, settings.mqtt_port,
                        ((reading_topic(settings.topic_prefix, r.lifeline, r.district, r.sensor_id), orjson.dumps(reading_to_json(r)))
                         for r in readings))

            def outage_in_queue() -> bool:
                r = client.get("/api/alerts", headers=crew)
                assert r.status_code == 200, r.text
                items = r.json()["items"] if isinstance(r.json(), dict) else r.json()
                return any(a["kind"] == "feeder_outage" for a in items)

            assert wait_for(outage_in_queue, timeout=30, interval=0.25)
            seconds = time.monotonic() - t_publish
            assert seconds < 15, f"the outage took {seconds:.1f} s to reach the queue"
            r = client.get("/api/alerts", headers=crew).json()
            items = r["items"] if isinstance(r, dict) else r
            outage = next(a for a in items if a["kind"] == "feeder_outage")
            assert outage["unit"] == power_unit and outage["level"] == "red" and outage["asset"] == "fdr-d03-1"
            # the water company's crew does not see the power alert
            r = client.get("/api/alerts", headers=other).json()
            items = r["items"] if isinstance(r, dict) else r
            assert all(a["unit"] == water_unit for a in items)
            assert client.get(f"/api/alerts/{outage['id']}", headers=other).status_code in (403, 404)


def test_a_failing_detection_sink_is_retried_until_it_takes_the_detections(settings, influx):
    """A sink that fails (e.g. the alert database is down) is retried with backoff; its detections arrive once it recovers."""
    from ingest.service import Ingest

    class Flaky:
        def __init__(self) -> None:
            self.failures = 3
            self.got: list = []

        def emit(self, detections):  # noqa: ANN001
            if self.failures:
                self.failures -= 1
                raise RuntimeError("alert database down")
            self.got.extend(detections)

    city = load_city()
    feeder = [s.id for s in city.sensors.values() if s.asset == "fdr-d03-1"]
    inc = make_incident("power.outage", "fdr-d03-1", T0 + 10 * 60 * NS, 20 * 60)
    readings = Simulation(city, seed=4, start_ns=T0, incidents=[inc], sensors=feeder).readings_between(T0, T0 + 40 * 60 * NS)
    s = settings.replace(batch_size=100000, flush_interval=0.5, alert_intake=False)
    flaky = Flaky()
    with RunningIngest(s) as ing:
        assert isinstance(ing.ingest, Ingest)
        ing.ingest.add_sink(flaky)
        publish_raw(s.mqtt_host, s.mqtt_port,
                    ((reading_topic(s.topic_prefix, r.lifeline, r.district, r.sensor_id), orjson.dumps(reading_to_json(r)))
                     for r in readings))
        assert wait_for(lambda: any(d.kind == "feeder_outage" for d in flaky.got), timeout=30)
        assert flaky.failures == 0
        assert ing.ingest.writer.pending_messages == 0
