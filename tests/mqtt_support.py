"""Test support: publish raw MQTT messages at QoS 1 and wait for InfluxDB to hold what was sent."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable

import paho.mqtt.client as mqtt

from lifewatch.influx import InfluxClient
from lifewatch.lifelines import LIFELINE_IDS
from lifewatch.status import lifeline_counts


def publish_raw(host: str, port: int, messages: Iterable[tuple[str, bytes]], window: int = 10_000) -> int:
    """Publish (topic, payload) pairs at QoS 1; return once every one is PUBACKed."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-pub-{uuid.uuid4().hex[:8]}")
    c.max_queued_messages_set(0)
    c.max_inflight_messages_set(1000)
    c.connect(host, port)
    c.loop_start()
    n = 0
    try:
        infos = []
        for topic, payload in messages:
            info = c.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise RuntimeError(f"publish failed: {mqtt.error_string(info.rc)}")
            infos.append(info)
            n += 1
            if len(infos) >= window:
                for i in infos:
                    i.wait_for_publish(30)
                    assert i.is_published()
                infos = []
        for i in infos:
            i.wait_for_publish(30)
            assert i.is_published()
    finally:
        c.disconnect()
        c.loop_stop()
    return n


def total_points(influx: InfluxClient) -> int:
    counts = lifeline_counts(influx, since_s=100 * 365 * 86400)
    return sum(c["readings"] for c in counts.values())


def wait_for(predicate: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def all_points(influx: InfluxClient) -> set[tuple]:
    """Every stored reading as (lifeline, district, sensor_id, ts_ns, sorted values)."""
    out = set()
    for lid in LIFELINE_IDS:
        for s in influx.query(f'SELECT * FROM "{lid}" GROUP BY "district", "sensor_id"'):
            cols = s.columns
            for row in s.values:
                vals = tuple(
                    sorted((c, v) for c, v in zip(cols, row, strict=True) if c not in ("time", "seq", "quality") and v is not None)
                )
                out.add((lid, s.tags["district"], s.tags["sensor_id"], row[0], vals))
    return out
