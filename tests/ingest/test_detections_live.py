"""Detectors run right after ingest: an outage published over MQTT comes back as detections on lifelines/detections/...

The same readings through the offline pipeline give exactly the same detections (live == backtest).
"""

from __future__ import annotations

import threading
import uuid

import orjson
import paho.mqtt.client as mqtt

from detectors.build import build_pipeline
from lifewatch.city import load_city
from lifewatch.model import NS, reading_to_json, reading_topic
from simulators.engine import Simulation
from simulators.scenarios import make_incident
from tests.ingest.conftest import RunningIngest
from tests.mqtt_support import publish_raw, total_points, wait_for

T0 = 1_767_571_200 * NS  # 2026-01-05T00:00:00Z


def test_outage_published_live_raises_the_same_detections_as_offline(settings, influx):
    city = load_city()
    feeder = [s.id for s in city.sensors.values() if s.asset == "fdr-d03-1"]
    inc = make_incident("power.outage", "fdr-d03-1", T0 + 40 * 60 * NS, 30 * 60)
    sim = Simulation(city, seed=4, start_ns=T0, incidents=[inc], sensors=feeder)
    readings = sim.readings_between(T0, T0 + 2 * 3600 * NS)

    got: list[dict] = []
    done = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"det-{uuid.uuid4().hex[:8]}")

    def on_message(client, userdata, msg):  # noqa: ANN001
        got.append(orjson.loads(msg.payload) | {"_topic": msg.topic})
        if any(d["state"] == "cleared" and d["kind"] == "feeder_outage" for d in got):
            done.set()

    sub.on_message = on_message
    sub.connect(settings.mqtt_host, settings.mqtt_port)
    sub.subscribe(f"{settings.topic_prefix}/detections/#", qos=1)
    sub.loop_start()
    try:
        with RunningIngest(settings.replace(batch_size=500, flush_interval=0.2)):
            publish_raw(settings.mqtt_host, settings.mqtt_port,
                        ((reading_topic(settings.topic_prefix, r.lifeline, r.district, r.sensor_id), orjson.dumps(reading_to_json(r)))
                         for r in readings))
            assert wait_for(lambda: total_points(influx) == len(readings), timeout=60)
            assert done.wait(30), [(d["kind"], d["state"]) for d in got]
    finally:
        sub.disconnect()
        sub.loop_stop()

    outage = [d for d in got if d["kind"] == "feeder_outage"]
    assert [d["state"] for d in outage] == ["raised", "cleared"]
    assert outage[0]["asset"] == "fdr-d03-1" and outage[0]["level"] == "red"
    assert outage[0]["_topic"] == f"{settings.topic_prefix}/detections/power/feeder_outage"
    assert inc.start_ns <= outage[0]["start_ns"] <= inc.start_ns + 5 * 60 * NS

    # live == offline: the same readings through the pipeline in one batch give the same detections
    offline = build_pipeline(city, {}).process(readings)
    key = lambda d: (d["kind"], d["state"], tuple(d["sensors"]), d["start_ns"], d["ts_ns"])  # noqa: E731
    assert sorted(key(d) for d in got) == sorted(key(d.to_json()) for d in offline)


def test_an_incompatible_detector_checkpoint_is_kept_aside_not_fatal(settings):
    """A checkpoint from other detectors must not stop ingest: it is moved aside and the detectors learn afresh."""
    from ingest.service import Ingest

    path = settings.state_dir / "detectors" / "state.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not a numpy archive")
    ing = Ingest(settings)
    try:
        assert ing.pipeline is not None and not path.exists()
        assert len(list(path.parent.glob("state.incompatible-*.npz"))) == 1
    finally:
        ing.deadletters.close()
        ing.influx.close()
