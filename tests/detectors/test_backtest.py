"""Backtest: frames from columns equal frames from readings; offline == live; metrics, NAB score, report, sweeps."""

from __future__ import annotations

import argparse
import json
import threading
import uuid
from pathlib import Path

import numpy as np
import orjson
import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.backtest.cli import add_arguments, cli
from detectors.backtest.columns import FrameBuilder, reading_starts_mask
from detectors.backtest.labels import Label, LabelsError, load_labels
from detectors.backtest.metrics import evaluate, nab_scores
from detectors.backtest.run import batch_bounds, run_pipeline
from detectors.build import build_pipeline
from detectors.events import Detection
from detectors.frame import Registry, build_frame
from ingest.readers import Columns
from ingest.readers.parquet import write_recording
from lifewatch.city import load_city
from lifewatch.levels import Level
from lifewatch.model import NS, Reading, format_ts
from simulators.engine import Simulation
from simulators.scenarios import make_incident

T0 = 1_767_571_200 * NS  # 2026-01-05T00:00:00Z
M = 60 * NS


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


def key(d: Detection | dict) -> tuple:
    j = d if isinstance(d, dict) else d.to_json()
    return (j["kind"], j["state"], tuple(j["sensors"]), j["start_ns"], j["ts_ns"])


# ---------------------------------------------------------------- frames from columns == frames from readings

readings_st = st.lists(
    st.tuples(st.sampled_from(["w-1", "w-2", "p-1", "x-9"]), st.integers(0, 50),
              st.dictionaries(st.sampled_from(["flow", "pressure", "voltage", "made_up"]),
                              st.none() | st.floats(-1e6, 1e6), max_size=3)),
    min_size=1, max_size=60)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=readings_st, cuts=st.lists(st.integers(0, 60), max_size=4))
def test_frames_from_columns_equal_build_frame(rows, cuts) -> None:  # noqa: ANN001
    lifeline = {"w": "water", "p": "power", "x": "gas"}
    readings = [Reading(lifeline[s[0]], f"d{s[-1]}", s, t, vals) for s, t, vals in rows]
    cols = Columns.from_readings(readings)
    start = reading_starts_mask(cols.reading)
    starts = np.flatnonzero(start).tolist() + [len(cols)]
    bounds = sorted({0, len(readings), *(c for c in cuts if c < len(readings))})
    reg_a, reg_b = Registry(None), Registry(None)
    fb = FrameBuilder(reg_a, sensor=cols.sensor_id, lifeline=cols.lifeline, district=cols.district, metric=cols.metric)
    for a, b in zip(bounds, bounds[1:], strict=False):
        f = fb.frame(cols.ts_ns, cols.value, start, slice(starts[a], starts[b]))
        g = build_frame(readings[a:b], reg_b)
        for name in ("sensor", "metric", "stream", "t", "x", "reading_sensor", "reading_t"):
            assert np.array_equal(getattr(f, name), getattr(g, name)), name
            assert getattr(f, name).dtype == getattr(g, name).dtype, name
    assert (reg_a.sensor_ids, reg_a.metric_names, reg_a.streams.keys, reg_a.sensor_lifeline, reg_a.sensor_district) == \
           (reg_b.sensor_ids, reg_b.metric_names, reg_b.streams.keys, reg_b.sensor_lifeline, reg_b.sensor_district)


def test_batch_bounds_start_on_readings() -> None:
    start = np.array([True, False, False, True, True, False, True])
    assert batch_bounds(start, 2) == [(0, 3), (3, 6), (6, 7)]
    assert batch_bounds(start, 10) == [(0, 7)]


# ---------------------------------------------------------------- offline runs equal the pipeline on readings

@pytest.fixture(scope="module")
def incident_readings() -> tuple[list[Reading], list[dict]]:
    city = load_city()
    feeder = [s.id for s in city.sensors.values() if s.asset == "fdr-d03-1"]
    incs = [make_incident("power.outage", "fdr-d03-1", T0 + 40 * M, 30 * 60), make_incident("fault.stuck", "w-d04-003", T0 + 20 * M, 50 * 60)]
    sim = Simulation(city, seed=4, start_ns=T0, incidents=incs, sensors=[*feeder, "w-d04-003", "w-d04-001"])
    return sim.readings_between(T0, T0 + 150 * M), sim.labels()


def test_run_pipeline_equals_process_in_any_batches(incident_readings) -> None:  # noqa: ANN001
    readings, _ = incident_readings
    city = load_city()
    live = build_pipeline(city, {})
    want = []
    for i in range(0, len(readings), 333):
        want += live.process(readings[i:i + 333])
    assert {d.kind for d in want} >= {"feeder_outage", "sensor_stuck"}
    cols = Columns.from_readings(readings)
    for rows in (1_000_000, 777):
        res = run_pipeline(build_pipeline(city, {}), cols, batch_rows=rows)
        assert sorted(map(key, res.detections)) == sorted(map(key, want))
        assert sorted(json.dumps(d.to_json(), sort_keys=True, default=str) for d in res.detections) == \
               sorted(json.dumps(d.to_json(), sort_keys=True, default=str) for d in want)  # evidence too
        assert res.readings == len(readings)


def test_sentinels_become_nulls_as_in_ingest() -> None:
    from detectors.backtest.run import null_sentinels

    rs = [Reading("water", "d", "w", 1, {"flow": -9999.0, "pressure": 0.3}), Reading("air", "d", "a", 1, {"pm25": -200.0}),
          Reading("gas", "d", "g", 1, {"made_up": -9999.0})]
    cols = Columns.from_readings(rs)
    out = null_sentinels(cols)
    assert np.isnan(out.value).tolist() == [True, False, True, False]  # water.flow and air.pm25 sentinels only
    assert cols.value[0] == -9999.0  # the input is not modified
    clean = Columns.from_readings([Reading("water", "d", "w", 1, {"flow": 1.0})])
    assert null_sentinels(clean) is clean


# ---------------------------------------------------------------- labels and metrics


def det(sensor: str, start: int, state: str = "raised", asset: str | None = None) -> Detection:
    return Detection("x", "k", state, "water", "d", asset, (sensor,), Level.BLUE, 1.0, start, start)


def test_matching_by_sensor_asset_and_grace() -> None:
    lab = [Label("water.burst", 100 * M, 200 * M, frozenset({"w-1"}), "dma-1")]
    ds = [det("w-9", 150 * M, asset="dma-1"), det("w-9", 99 * M + 1), det("w-1", 260 * M), det("w-1", 150 * M, "cleared")]
    r = evaluate(ds, lab, sensors=10, span_ns=2 * 86400 * NS, asset_of={"w-1": "dma-1"}, grace_ns=0)
    assert (r["raised"], r["detected"], r["false_alarms"], r["precision"], r["recall"]) == (3, 1, 2, 1 / 3, 1.0)
    assert r["false_alarms_per_sensor_day"] == 0.1 and r["delay_s"]["max"] == 50 * 60
    r = evaluate(ds, lab, sensors=10, span_ns=2 * 86400 * NS, asset_of={"w-1": "dma-1"}, grace_ns=60 * M)
    assert r["false_alarms"] == 1 and r["f1"] == pytest.approx(2 * (2 / 3) / (2 / 3 + 1))


def test_label_files(tmp_path: Path) -> None:
    sim = tmp_path / "labels.json"
    sim.write_text(json.dumps({"city": "x", "seed": 1, "incidents": [
        {"scenario": "water.burst", "target": "dma-d01-1", "sensors": ["w-1"], "start": "2026-01-05T10:30:00Z",
         "end": "2026-01-05T16:30:00.5Z"}]}))
    (lb,), kind = load_labels(sim)
    assert kind == "simulator" and lb.sensors == {"w-1"} and lb.target == "dma-d01-1"
    assert (lb.start_ns, lb.end_ns) == (T0 + 630 * M, T0 + 990 * M + NS // 2)
    nab = tmp_path / "w.json"
    nab.write_text(json.dumps({"a/x.csv": [["2014-01-01 00:00:00.000000", "2014-01-01 01:00:00.000000"]], "b/x.csv": []}))
    assert load_labels(nab, "/data/a/x.csv")[0][0].window == ("2014-01-01 00:00:00.000000", "2014-01-01 01:00:00.000000")
    assert load_labels(nab, "b/x.csv")[0] == []
    with pytest.raises(LabelsError, match="several entries"):
        load_labels(nab, "elsewhere/x.csv")
    with pytest.raises(LabelsError, match="no entry"):
        load_labels(nab, "y.csv")


def test_nab_score_of_detections() -> None:
    ts = T0 + np.arange(2000, dtype=np.int64) * 5 * M
    fmt = lambda i: format_ts(int(ts[i])).replace("T", " ").rstrip("Z") + ".000000"  # noqa: E731
    labels = [Label("window", int(ts[1500]), int(ts[1600]), None, None, (fmt(1500), fmt(1600)))]
    perfect = nab_scores([Detection("s", "a", "raised", "water", "d", None, ("s",), Level.BLUE, 1, int(ts[1500]), int(ts[1500]))],
                         ts, labels)
    assert perfect["standard"] == pytest.approx(100.0)
    one_fp = nab_scores([det("s", int(ts[900])), det("s", int(ts[1500]))], ts, labels)
    assert one_fp["standard"] == pytest.approx(100 * (1 - 0.11 + 1) / 2, abs=1e-3)
    assert one_fp["reward_low_FP_rate"] == pytest.approx(100 * (1 - 0.22 + 1) / 2, abs=1e-3)
    assert nab_scores([], ts, labels)["standard"] == pytest.approx(0.0)


# ---------------------------------------------------------------- the CLI on bare series


def nab_file(tmp_path: Path) -> tuple[Path, Path, int]:
    rng = np.random.default_rng(7)
    n = 3000
    t = np.datetime64("2015-03-01T00:00:00") + np.arange(n) * np.timedelta64(5, "m")
    x = 50 + 10 * np.sin(2 * np.pi * np.arange(n) / 288) + rng.normal(0, 1, n)
    x[2400:2420] += 40  # a plain anomaly
    p = tmp_path / "realTraffic" / "speed_x.csv"
    p.parent.mkdir()
    p.write_text("timestamp,value\n" + "".join(f"{str(a).replace('T', ' ')},{v:.3f}\n" for a, v in zip(t, x, strict=True)))
    w = tmp_path / "windows.json"
    start = str(t[2380]).replace("T", " ") + ".000000"
    end = str(t[2460]).replace("T", " ") + ".000000"
    w.write_text(json.dumps({"realTraffic/speed_x.csv": [[start, end]]}))
    return p, w, n


def test_cli_on_a_nab_file(tmp_path: Path, capsys, settings_offline) -> None:  # noqa: ANN001
    rec, windows, n = nab_file(tmp_path)
    out, report = tmp_path / "d.jsonl", tmp_path / "r.html"
    assert cli(parse([str(rec), "--labels", str(windows), "--out", str(out), "--report", str(report)]), settings_offline) == 0
    text = capsys.readouterr().out
    assert f"{n:,} readings of 1 sensors, pipeline series" in text and "1/1 labels detected" in text and "NAB: standard" in text
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    raised = [d for d in lines if d["state"] == "raised"]
    assert raised and all(d["detector"] == "surprise_ensemble" and d["sensors"] == ["speed_x"] for d in lines)
    assert any(d["start"].startswith("2015-03-09T08") for d in raised)  # the anomaly: rows 2400.. = 2015-03-09 08:00
    html = report.read_text()
    assert html.count("<svg") == 1 and "speed_x flow" in html and "surprise_ensemble:anomaly" in html

    # without --out: the detections are the JSON Lines on stdout, the summary goes to stderr
    assert cli(parse([str(rec)]), settings_offline) == 0
    cap = capsys.readouterr()
    assert [key(json.loads(x)) for x in cap.out.splitlines()] == [key(d) for d in lines]
    assert "pipeline series" in cap.err

    # a sweep: one run per value, a comparison table
    assert cli(parse([str(rec), "--labels", str(windows), "--set", "stats.surprise_ensemble.levels.blue=0.3,0.95",
                      "--json", "--out", str(out)]), settings_offline) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert [r["set"] for r in runs] == [{"stats.surprise_ensemble.levels.blue": 0.3}, {"stats.surprise_ensemble.levels.blue": 0.95}]
    assert runs[0]["raised"] > runs[1]["raised"]
    assert runs[0]["recall"] == 1.0 and runs[0]["nab_standard"] is not None
    swept = {json.loads(x)["sweep"]["stats.surprise_ensemble.levels.blue"] for x in out.read_text().splitlines()}
    assert 0.3 in swept and swept <= {0.3, 0.95}
    assert cli(parse([str(rec), "--set", "stats.surprise_ensemble.levels.blue=0.3,0.95"]), settings_offline) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[1].split()[:2] == ["stats.surprise_ensemble.levels.blue", "detections"] and len(table) == 4

    assert cli(parse([str(rec), "--set", "nonsense.x=1"]), settings_offline) == 2
    assert cli(parse([str(tmp_path / "missing.csv")]), settings_offline) == 2
    assert "backtest:" in capsys.readouterr().err


def test_cli_uses_skab_anomaly_labels(tmp_path: Path, capsys, settings_offline) -> None:  # noqa: ANN001
    rng = np.random.default_rng(1)
    n = 1200
    t = np.datetime64("2020-03-09T10:00:00") + np.arange(n) * np.timedelta64(1, "s")
    a = rng.normal(1.0, 0.01, n)
    a[1000:1050] += 0.5
    lines = ["datetime;Accelerometer1RMS;Current;anomaly;changepoint"]
    lines += [f"{str(ti).replace('T', ' ')};{ai:.4f};{rng.normal(2, 0.05):.4f};{int(1000 <= i < 1050)};0"
              for i, (ti, ai) in enumerate(zip(t, a, strict=True))]
    rec = tmp_path / "skab.csv"
    rec.write_text("\n".join(lines) + "\n")
    assert cli(parse([str(rec), "--out", str(tmp_path / "o.jsonl"), "--json"]), settings_offline) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["pipeline"] == "series" and doc["sensors"] == 2 and doc["metrics"]["labels"] == 1
    assert doc["metrics"]["detected"] == 1


@pytest.fixture
def settings_offline(tmp_path: Path):  # noqa: ANN201
    from lifewatch.settings import Settings

    return Settings(state_dir=tmp_path / "state")


# ---------------------------------------------------------------- offline == live ingest on a replay


@pytest.mark.integration
def test_backtest_equals_live_ingest_on_a_replay(settings, influx, tmp_path: Path, capsys, incident_readings) -> None:  # noqa: ANN001
    from simulators.replay import add_arguments as replay_args
    from simulators.replay import cli as replay_cli
    from tests.ingest.conftest import RunningIngest
    from tests.mqtt_support import total_points, wait_for

    readings, labels = incident_readings
    rec = tmp_path / "incident.parquet"
    write_recording(rec, Columns.from_readings(readings))
    (tmp_path / "labels.json").write_text(json.dumps({"city": "Shihezi", "seed": 4, "incidents": labels}))

    out = tmp_path / "offline.jsonl"
    assert cli(parse([str(rec), "--out", str(out), "--labels", str(tmp_path / "labels.json"), "--report",
                      str(tmp_path / "r.html")]), settings) == 0
    summary = capsys.readouterr().out
    assert "2/2 labels detected" in summary and "pipeline city" in summary
    offline = [json.loads(x) for x in out.read_text().splitlines()]
    assert {d["kind"] for d in offline} >= {"feeder_outage", "sensor_stuck"}
    assert "<svg" in (tmp_path / "r.html").read_text()

    got: list[dict] = []
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bt-{uuid.uuid4().hex[:8]}")
    sub.on_message = lambda c, u, m: got.append(orjson.loads(m.payload))
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.connect(settings.mqtt_host, settings.mqtt_port)
    sub.subscribe(f"{settings.topic_prefix}/detections/#", qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        with RunningIngest(settings.replace(batch_size=400, flush_interval=0.2)):
            p = argparse.ArgumentParser()
            replay_args(p)
            assert replay_cli(p.parse_args([str(rec), "--speed", "max"]), settings) == 0
            assert wait_for(lambda: total_points(influx) == len(readings), 60)
            assert wait_for(lambda: len(got) >= len(offline), 30), (len(got), len(offline))
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert sorted(map(key, got)) == sorted(map(key, offline))
