"""SIGKILL ingest mid-stream and restart it: no reading is lost (acks only after the write)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt

from tests.mqtt_support import all_points, publish_raw, total_points, wait_for

N = 30_000
T0_MS = 1_767_225_600_000


def start_ingest(settings, log: Path) -> subprocess.Popen:
    env = {**os.environ, **settings.to_env(), "LIFEWATCH_BATCH_SIZE": "2000", "LIFEWATCH_METRICS_ADDR": ""}
    proc = subprocess.Popen(
        [sys.executable, "-m", "lifewatch.cli", "ingest"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    # ingest publishes "online" (retained) on its status topic right after subscribing
    online = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:8]}")
    c.on_message = lambda cl, ud, msg: msg.payload == b"online" and online.set()
    c.connect(settings.mqtt_host, settings.mqtt_port)
    c.subscribe(f"{settings.topic_prefix}/platform/ingest/{settings.mqtt_client_id}/status", qos=1)
    c.loop_start()
    try:
        assert online.wait(20), log.read_text()
    finally:
        c.disconnect()
        c.loop_stop()
    return proc


def test_sigkill_mid_stream_loses_nothing(settings, influx, tmp_path):
    log = tmp_path / "ingest.log"
    messages, expected = [], set()
    for i in range(N):
        sid = f"w-{i % 25}"
        ts = T0_MS + i
        values = {"pressure": round(0.2 + (i % 1000) / 10_000, 4), "flow": float(i)}
        messages.append((f"lifelines/water/d03/{sid}/reading", orjson.dumps({"sensor_id": sid, "ts": ts, "values": values})))
        expected.add(("water", "d03", sid, ts * 1_000_000, tuple(sorted(values.items()))))

    proc = start_ingest(settings, log)
    publisher = threading.Thread(target=publish_raw, args=(settings.mqtt_host, settings.mqtt_port, messages))
    publisher.start()
    try:
        assert wait_for(lambda: total_points(influx) >= 3000, timeout=60, interval=0.05), log.read_text()
        landed_at_kill = total_points(influx)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert landed_at_kill < N, "the kill came too late to be mid-stream"
        publisher.join(120)
        proc = start_ingest(settings, log)
        assert wait_for(lambda: total_points(influx) >= N, timeout=120), log.read_text()[-3000:]
        assert all_points(influx) == expected
    finally:
        proc.terminate()
        proc.wait(30)
        publisher.join(5)
