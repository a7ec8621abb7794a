"""Messages, the JSON Lines sink, the QoS 1 window of the MQTT publisher, and one run against the broker."""

from __future__ import annotations

import threading
import time

import orjson
import paho.mqtt.client as mqtt
import pytest

from lifewatch.model import NS, format_ts
from lifewatch.settings import Settings
from simulators.engine import Simulation
from simulators.publisher import JsonlSink, MqttPublisher, PublishError, gateway_id, messages

from ._util import local_day

T0 = local_day("2026-01-15")


def readings(n_sensors=40, minutes=10):
    from lifewatch.city import load_city

    sim = Simulation(load_city(), seed=1, start_ns=T0, sensors=n_sensors)
    return sim.readings_between(T0, T0 + minutes * 60 * NS)


def test_single_messages_follow_the_contract():
    rs = readings(5, 2)
    msgs = list(messages(rs, "lifelines"))
    assert len(msgs) == len(rs)
    for (topic, payload), r in zip(msgs, rs, strict=True):
        assert topic == f"lifelines/{r.lifeline}/{r.district}/{r.sensor_id}/reading"
        assert payload["sensor_id"] == r.sensor_id and payload["values"] == r.values and payload["seq"] == r.seq


def test_batches_group_by_district_and_lifeline():
    rs = readings(60, 10)
    msgs = list(messages(rs, "lp", batch=7))
    assert sum(len(p) for _, p in msgs) == len(rs)
    for topic, payload in msgs:
        prefix, lifeline, district, gw, kind = topic.split("/")
        assert (prefix, kind, gw) == ("lp", "reading", gateway_id(district, lifeline))
        assert 1 <= len(payload) <= 7
    # every reading once, and each gateway's readings in their order
    sent = [(p["sensor_id"], p["ts"]) for _, batch in msgs for p in batch]
    assert sorted(sent) == sorted((r.sensor_id, format_ts(r.ts_ns)) for r in rs)
    for key in {(r.lifeline, r.district) for r in rs}:
        gw = gateway_id(key[1], key[0])
        ours = [(p["sensor_id"], p["ts"]) for t, batch in msgs if t.split("/")[3] == gw for p in batch]
        assert ours == [(r.sensor_id, format_ts(r.ts_ns)) for r in rs if (r.lifeline, r.district) == key]


def test_jsonl_sink(tmp_path):
    rs = readings(10, 3)
    path = tmp_path / "m.jsonl"
    sink = JsonlSink(path, "lifelines")
    sink.send(rs[:7])
    sink.send(rs[7:])
    sink.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == len(rs) == sink.readings == sink.messages
    doc = orjson.loads(lines[0])
    assert set(doc) == {"topic", "payload"} and doc["payload"]["sensor_id"] == rs[0].sensor_id


class _Info:
    def __init__(self, rc, mid):
        self.rc, self.mid = rc, mid


class FakeClient:
    """Stands in for paho: answers publish() with scripted return codes, acks on request."""

    def __init__(self, pub: MqttPublisher, script=()):
        self.pub = pub
        self.script = list(script)
        self.mid = 0
        self.unacked: list[int] = []

    def publish(self, topic, payload, qos=1, retain=False):
        rc = self.script.pop(0) if self.script else mqtt.MQTT_ERR_SUCCESS
        if rc == mqtt.MQTT_ERR_SUCCESS or rc == mqtt.MQTT_ERR_NO_CONN:
            self.mid += 1
            self.unacked.append(self.mid)
            return _Info(rc, self.mid)
        return _Info(rc, 0)

    def ack_all(self):
        for mid in self.unacked:
            self.pub._on_publish(None, None, mid, None, None)
        self.unacked = []


def test_window_is_bounded_and_queue_size_is_retried():
    pub = MqttPublisher(Settings(), max_unacked=50, ack_timeout=5.0)
    fake = FakeClient(pub, [mqtt.MQTT_ERR_QUEUE_SIZE, mqtt.MQTT_ERR_NO_CONN])
    pub.client = fake
    rs = readings(20, 10)  # 200 readings
    stop = threading.Event()

    def acker():
        while not stop.is_set():
            time.sleep(0.01)
            fake.ack_all()

    t = threading.Thread(target=acker, daemon=True)
    peak = 0
    orig = fake.publish

    def counting(*a, **kw):
        nonlocal peak
        peak = max(peak, pub.unacked)
        return orig(*a, **kw)

    fake.publish = counting
    t.start()
    pub.send(rs)
    assert pub.flush(5.0)
    stop.set()
    assert pub.messages == pub.readings == len(rs) and pub.unacked == 0 and pub.acked == len(rs)
    assert peak <= 50


def test_ack_before_publish_returns_is_counted():
    pub = MqttPublisher(Settings())

    class Early(FakeClient):
        def publish(self, topic, payload, qos=1, retain=False):
            info = super().publish(topic, payload, qos, retain)
            self.ack_all()  # PUBACK handled by the network thread before publish() returned
            return info

    pub.client = Early(pub)
    pub.send(readings(3, 1))
    assert pub.unacked == 0 and pub.flush(0.1)


def test_other_publish_errors_raise():
    pub = MqttPublisher(Settings())
    pub.client = FakeClient(pub, [mqtt.MQTT_ERR_PAYLOAD_SIZE])
    with pytest.raises(PublishError):
        pub.send(readings(1, 1))


def test_unreachable_broker_raises():
    with pytest.raises(PublishError):
        MqttPublisher(Settings(mqtt_port=1)).connect(timeout=2.0)


@pytest.mark.integration
def test_publish_to_the_broker(broker):
    """Against the session broker of tests/conftest.py: every reading arrives, flush sees every PUBACK."""
    settings = Settings(mqtt_host=broker.host, mqtt_port=broker.port, topic_prefix="simtest")
    got: list[int] = []
    ready = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"simtest-sub-{time.time_ns()}",
                      protocol=mqtt.MQTTv311)
    sub.on_connect = lambda c, u, f, rc, p: (c.subscribe("simtest/+/+/+/reading", qos=1), ready.set())

    def on_message(c, u, m):
        doc = orjson.loads(m.payload)
        got.append(len(doc) if isinstance(doc, list) else 1)

    sub.on_message = on_message
    sub.connect(broker.host, broker.port)
    sub.loop_start()
    try:
        assert ready.wait(10)
        time.sleep(0.3)
        rs = readings(30, 60)
        for batch in (0, 50):
            got.clear()
            pub = MqttPublisher(settings, batch=batch, max_unacked=500).connect()
            pub.send(rs)
            assert pub.close(30.0)
            assert pub.acked == pub.messages
            deadline = time.monotonic() + 20
            while sum(got) < len(rs) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sum(got) == len(rs)
            assert len(got) == (len(rs) if batch == 0 else pub.messages)
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_batches_linger_across_sends():
    from simulators.publisher import Batcher

    now = [0.0]
    b = Batcher("lifelines", batch=1000, linger_s=1.0, clock=lambda: now[0])
    rs = readings(40, 3)
    assert b.add(rs[:50]) == [] and b.due() == []
    now[0] = 0.5
    assert b.add(rs[50:]) == [] and b.due() == []
    now[0] = 1.2
    sent = b.due()  # everything opened at 0.0 is due; nothing opened later
    assert sent and sum(len(p) for _, p in sent) + sum(len(p) for _, p in b.drain()) == len(rs)
    assert b.drain() == []
