"""``lifewatch replay``: a recording back onto MQTT; record -> replay -> record gives the same data."""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import orjson
import paho.mqtt.client as mqtt
import pytest

from ingest.readers import Columns, read_columns
from ingest.readers.parquet import write_recording
from ingest.record import record
from lifewatch.city import load_city
from lifewatch.influx import InfluxClient
from lifewatch.lineprotocol import quote_ident
from lifewatch.model import NS, Reading, parse_ts, reading_to_json, reading_topic
from simulators.engine import Simulation
from simulators.replay import RecordingSource, add_arguments, cli, typical_interval
from tests.ingest.conftest import RunningIngest
from tests.ingest.test_record import expected
from tests.mqtt_support import publish_raw, total_points, wait_for

T0 = 1_767_571_200 * NS  # 2026-01-05T00:00:00Z


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


# ---------------------------------------------------------------- the source, without a broker


def test_source_orders_shifts_and_loops() -> None:
    rs = [Reading("water", "d", "b", 30, {"flow": 3.0}), Reading("water", "d", "a", 10, {"flow": 1.0}),
          Reading("water", "d", "a", 20, {}, None, "missing"), Reading("water", "d", "b", 10, {"flow": 2.0})]
    cols = Columns.from_readings(rs)
    assert typical_interval(cols) == 15  # gaps: a 10 -> 20, b 10 -> 30; the median of (10, 20)
    src = RecordingSource(cols, shift_ns=100)
    got, ev = src.chunk(0, 10**6)
    assert [(r.sensor_id, r.ts_ns) for r in got] == [("a", 110), ("b", 110), ("a", 120), ("b", 130)]
    assert ev.tolist() == [110, 110, 120, 130] and src.end_ns == 131
    assert got[2].values == {"pressure": None} and got[2].quality == "missing"  # a heartbeat keeps a (null) metric
    assert [r.ts_ns for r in src.chunk(111, 130)[0]] == [120]
    loop = RecordingSource(cols, loop=True)
    assert loop.period_ns == 20 + 15 and loop.end_ns is None
    assert [r.ts_ns for r in loop.chunk(15, 75)[0]] == [20, 30, 45, 45, 55, 65]


def test_typical_interval_is_the_median_gap() -> None:
    rs = [Reading("water", "d", "a", t, {"flow": 1.0}) for t in (0, 60, 120, 300)]
    assert typical_interval(Columns.from_readings(rs)) == 60
    assert typical_interval(Columns.from_readings(rs[:1])) == NS


# ---------------------------------------------------------------- with the broker


class Listener:
    """Subscribes to every reading topic and keeps the payloads."""

    def __init__(self, settings):  # noqa: ANN001
        self.got: list[tuple[str, dict]] = []
        self.ready = threading.Event()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"replay-test-{uuid.uuid4().hex[:8]}")
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, orjson.loads(m.payload)))
        self.c.on_subscribe = lambda *a: self.ready.set()
        self.c.connect(settings.mqtt_host, settings.mqtt_port)
        self.c.subscribe(f"{settings.topic_prefix}/+/+/+/reading", qos=1)
        self.c.loop_start()
        assert self.ready.wait(10)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _recent_recording(path: Path, now_ns: int) -> list[Reading]:
    rs = []
    for i in range(10):
        t = now_ns - (10 - i) * NS + 123_457  # a second apart, odd nanoseconds, all in the past
        rs.append(Reading("water", "d01", "w-a", t, {"flow": float(i)}, i))
        rs.append(Reading("water", "d01", "w-b", t + 7, {"pressure": 0.3}, i))
    write_recording(path, Columns.from_readings(rs))
    return rs


@pytest.mark.integration
def test_shift_to_now_and_loop_over_mqtt(settings, tmp_path: Path, capsys) -> None:  # noqa: ANN001
    # --shift-to-now: the last reading lands on the wall clock, relative timing exact to the ns
    rec = tmp_path / "old.parquet"
    old = _recent_recording(rec, T0)  # recorded in January
    lis = Listener(settings)
    try:
        before = time.time_ns()
        assert cli(parse([str(rec), "--speed", "max", "--shift-to-now"]), settings) == 0
        after = time.time_ns()
        assert wait_for(lambda: len(lis.got) == len(old), 10)
        ts = [parse_ts(p["ts"]) for _, p in lis.got]
        assert before <= max(ts) <= after
        shift = ts[0] - old[0].ts_ns
        assert ts == [r.ts_ns + shift for r in old]  # every reading, in order, same gaps
        assert [p["values"] for _, p in lis.got] == [r.values for r in old]
        assert "replay: 20 readings in 20 messages" in capsys.readouterr().out

        # --loop: the next repetition follows one period later and never runs ahead of the wall clock
        lis.got.clear()
        recent = _recent_recording(tmp_path / "recent.parquet", time.time_ns())
        assert cli(parse([str(tmp_path / "recent.parquet"), "--speed", "max", "--loop", "--wall-duration", "2.5"]), settings) == 0
        end = time.time_ns()
        assert wait_for(lambda: len(lis.got) > len(recent), 5)
        ts = [parse_ts(p["ts"]) for _, p in lis.got]
        period = (recent[-1].ts_ns - recent[0].ts_ns) + NS  # the span plus the typical interval (1 s)
        n = len(recent)
        assert ts[:n] == [r.ts_ns for r in recent]
        assert ts[n:] == [r.ts_ns + period for r in recent][:len(ts) - n]
        assert max(ts) <= end
    finally:
        lis.close()


def _rows(path: Path) -> list[tuple]:
    c = read_columns(path)
    return list(zip(c.ts_ns.tolist(), c.lifeline.values(), c.district.values(), c.sensor_id.values(), c.metric.values(),
                    [None if np.isnan(v) else v for v in c.value.tolist()],
                    [s if ok else None for s, ok in zip(c.seq.tolist(), c.seq_valid.tolist(), strict=True)],
                    c.quality.values(), strict=True))


@pytest.mark.integration
def test_record_replay_record_gives_identical_data(settings, influx: InfluxClient, tmp_path: Path) -> None:  # noqa: ANN001
    city = load_city()
    sensors = ["w-d01-001", "p-d02-001", "g-d03-001", "b-d01-001", "a-d01-001"]
    sim = Simulation(city, seed=3, start_ns=T0, sensors=[s for s in sensors if s in city.sensors])
    readings = sim.readings_between(T0, T0 + 40 * 60 * NS)
    readings += [  # what the simulator does not send: awkward names, ns, nulls, heartbeats, quality strings
        Reading("water", "district 9", "w 9,x=ü", T0 + 1, {"pressure": 0.25, "flow": None}, 3, 'say "hi" \\'),
        Reading("power", "石河子", "p,9", T0 + 999_999_999, {"voltage": None}, None, None),
        Reading("gas", "d9", "g=9", T0 + 5, {"pressure": 1e-9, "flow": 12345.678901234}, None, "good"),
    ]
    assert 150 < len(readings) < 1000
    quick = dict(detectors=False, batch_size=500, flush_interval=0.2)
    s1 = settings.replace(**quick)
    with RunningIngest(s1):
        publish_raw(s1.mqtt_host, s1.mqtt_port,
                    ((reading_topic(s1.topic_prefix, r.lifeline, r.district, r.sensor_id), orjson.dumps(reading_to_json(r)))
                     for r in readings))
        assert wait_for(lambda: total_points(influx) == len(readings), 30)
    rec1, rec2 = tmp_path / "one.parquet", tmp_path / "two.parquet"
    window = (T0, T0 + 3600 * NS)
    record(influx, *window, rec1, chunk_s=600)
    got = [r for b in read_columns(rec1).reading_batches() for r in b]
    assert got == expected(readings)  # the first recording holds what ingest stored

    s2 = settings.replace(influx_db=settings.influx_db + "_replay", mqtt_client_id=settings.mqtt_client_id + "-2", **quick)
    with InfluxClient.from_settings(s2) as db2:
        db2.create_database()
        try:
            with RunningIngest(s2):
                assert cli(parse([str(rec1), "--speed", "max"]), s2) == 0
                assert wait_for(lambda: total_points(db2) == len(readings), 30)
            record(db2, *window, rec2, chunk_s=600)
        finally:
            db2.query_all(f"DROP DATABASE {quote_ident(s2.influx_db)}", db="", method="POST")
    one, two = _rows(rec1), _rows(rec2)
    assert len(one) > len(readings)
    assert one == two  # values, tags, seq, quality and ns timestamps, row for row
