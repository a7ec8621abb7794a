"""``lifewatch status --json``: readings per lifeline from InfluxDB, dead letters, services; non-zero when InfluxDB is down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from ingest.deadletter import DeadLetterStore, Letter
from lifewatch.lineprotocol import encode_reading
from lifewatch.model import NS, Reading
from lifewatch.services import free_port


def status(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([sys.executable, "-m", "lifewatch.cli", "status", *args], env=env, capture_output=True, text=True, timeout=60)


def test_status_json_counts_recent_points_per_lifeline(settings, influx):
    now = time.time_ns()
    lines = [encode_reading(Reading("water", "d01", f"w-{i % 3}", now - i * NS, {"pressure": 0.3, "flow": 1.0})) for i in range(7)]
    lines += [encode_reading(Reading("bridge", "d02", "b-1", now - i * NS, {"strain": -200.0})) for i in range(4)]
    lines += [encode_reading(Reading("bridge", "d02", "b-2", now - i * NS, {"tilt": 0.01})) for i in range(5)]
    lines += [encode_reading(Reading("air", "d03", "a-1", now - 3600 * NS, {"pm25": 30.0}))]  # outside 10 min
    influx.write("\n".join(lines))
    store = DeadLetterStore.from_settings(settings)
    store.add_many([Letter("lifelines/water/d01/x/reading", "not_json", "bad", b"{")] * 2)
    store.close()

    out = status(settings, "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)  # stdout is only JSON
    assert doc["lifelines"]["water"] == {"readings": 7, "sensors": 3}
    assert doc["lifelines"]["bridge"] == {"readings": 9, "sensors": 2}  # sensors with different fields still count
    assert doc["lifelines"]["air"]["readings"] == 0
    assert doc["lifelines"]["gas"]["readings"] == 0 and doc["lifelines"]["power"]["readings"] == 0
    assert doc["dead_letters"] == 2
    assert set(doc["services"]) == {"mosquitto", "influxd"}

    wide = json.loads(status(settings, "--json", "--since", "2h").stdout)
    assert wide["lifelines"]["air"]["readings"] == 1


def test_status_exits_non_zero_when_influx_is_unreachable(settings):
    down = settings.replace(influx_url=f"http://127.0.0.1:{free_port()}")
    out = status(down, "--json")
    assert out.returncode != 0
    doc = json.loads(out.stdout)
    assert doc["influx_reachable"] is False and doc["lifelines"]["water"]["readings"] is None
