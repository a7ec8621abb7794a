"""/metrics in the Prometheus text format, and the deadletter list/show/redrive commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import orjson
from prometheus_client.parser import text_string_to_metric_families

from lifewatch.services import free_port
from tests.ingest.conftest import RunningIngest
from tests.mqtt_support import publish_raw, total_points, wait_for

T0_MS = 1_767_225_600_000


def lw(settings, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **settings.to_env()}
    return subprocess.run([sys.executable, "-m", "lifewatch.cli", *args], env=env, capture_output=True, text=True, timeout=60)


def test_metrics_endpoint_counts_what_happened(settings, influx):
    s = settings.replace(metrics_addr=f"127.0.0.1:{free_port()}", batch_size=100, flush_interval=0.1)
    msgs = [(f"lifelines/power/d01/p-{i}/reading", orjson.dumps({"sensor_id": f"p-{i}", "ts": T0_MS + i, "values": {"voltage": 221.0}}))
            for i in range(50)]
    msgs += [("lifelines/power/d01/p-x/reading", b"oops")] * 3
    with RunningIngest(s):
        publish_raw(s.mqtt_host, s.mqtt_port, msgs)
        assert wait_for(lambda: total_points(influx) == 50, timeout=30)

        def scrape() -> dict[str, float]:
            text = httpx.get(f"http://{s.metrics_addr}/metrics").text
            out = {}
            for fam in text_string_to_metric_families(text):
                for sample in fam.samples:
                    key = sample.name + "".join(f"{{{k}={v}}}" for k, v in sorted(sample.labels.items()))
                    out[key] = sample.value
            return out

        assert wait_for(lambda: scrape().get("lifewatch_ingest_deadletters_total", 0) == 3, timeout=10)
        m = scrape()
    assert m["lifewatch_ingest_messages_received_total"] == 53
    assert m["lifewatch_ingest_readings_received_total{lifeline=power}"] == 50
    assert m["lifewatch_ingest_points_written_total{lifeline=power}"] == 50
    assert m["lifewatch_ingest_rejected_total{reason=not_json}"] == 3
    assert m["lifewatch_ingest_buffer_depth"] == 0
    assert m["lifewatch_ingest_batch_seconds_count"] >= 1
    assert m["lifewatch_ingest_mqtt_connected"] == 1


def test_deadletter_list_show_and_redrive(settings, influx):
    bad_then_fixed = ("lifelines/water/d02/w-1/reading", orjson.dumps({"sensor_id": "w-1", "ts": T0_MS, "values": {"presure": 0.3}}))
    with RunningIngest(settings):
        publish_raw(settings.mqtt_host, settings.mqtt_port, [bad_then_fixed, ("lifelines/water/d02/w-2/reading", b"{")])
        listed = {}

        def two_letters() -> bool:
            listed.update(json.loads(lw(settings, "deadletter", "list", "--json").stdout))
            return listed.get("pending") == 2

        assert wait_for(two_letters, timeout=20)
        assert listed["by_reason"] == {"not_json": 1, "unknown_metric": 1}
        letter = next(lt for lt in listed["letters"] if lt["reason"] == "unknown_metric")
        shown = json.loads(lw(settings, "deadletter", "show", str(letter["id"])).stdout)
        assert shown["topic"] == "lifelines/water/d02/w-1/reading"
        assert json.loads(shown["payload"])["values"] == {"presure": 0.3}
        assert lw(settings, "deadletter", "show", "99999").returncode == 1

        # re-drive: the message goes back through validation, is rejected again and lands again as a new letter
        out = lw(settings, "deadletter", "redrive", str(letter["id"]))
        assert out.returncode == 0, out.stderr
        assert wait_for(lambda: json.loads(lw(settings, "deadletter", "list", "--json").stdout)["pending"] == 2, timeout=20)
        every = json.loads(lw(settings, "deadletter", "list", "--json", "--all").stdout)
        assert sum(1 for lt in every["letters"] if lt["redriven"]) == 1
        assert len(every["letters"]) == 3
        text = lw(settings, "deadletter", "list").stdout
        assert "2 pending dead letters" in text and "unknown_metric" in text
