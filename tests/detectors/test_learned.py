"""The learned detector family: features, training, the model store, the stage, training from InfluxDB."""

from __future__ import annotations

import argparse
import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sklearn
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.learned import (
    FEATURE_NAMES,
    FeatureSpec,
    LearnedStage,
    ModelMismatch,
    ModelNotFound,
    NotEnoughData,
    StreamFeatures,
    list_classes,
    list_versions,
    load_model,
    save_model,
    train,
)
from detectors.learned.features import NS
from detectors.learned.train import cli, history_query, iter_history, last_event_query, train_from_influx
from detectors.pipeline import DetectorPipeline
from lifewatch.city import load_city
from lifewatch.lineprotocol import encode_reading
from lifewatch.model import Reading
from lifewatch.services import free_port
from lifewatch.settings import Settings

T0 = 1_767_225_600 * NS  # 2026-01-01T00:00:00Z
MIN = 60 * NS
TINY = {"n_estimators": 20, "random_state": 0}


def diurnal(rng: np.random.Generator, t: np.ndarray, base: float = 0.30) -> np.ndarray:
    """Network pressure with a daily swing (low at the 06-10 local demand peak) and logger noise."""
    local_h = ((t // NS + 6 * 3600) % 86_400) / 3600.0
    return base - 0.03 * np.cos(2 * np.pi * (local_h - 8) / 24) + 0.004 * rng.standard_normal(len(t))


def readings(sensor: str, t: np.ndarray, x: np.ndarray, lifeline: str = "water", metric: str = "pressure") -> list[Reading]:
    return [Reading(lifeline, "d01", sensor, int(a), {metric: float(b)}) for a, b in zip(t, x, strict=True)]


def run(pipe: DetectorPipeline, rs: list[Reading], batch: int) -> list[dict]:
    out = []
    for i in range(0, len(rs), batch):
        out += [d.to_json() for d in pipe.process(rs[i : i + batch])]
    return out


# ---------------------------------------------------------------- features


def _stream_data(seed: int, n: int = 600, streams: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    slots = rng.integers(0, streams, n)
    t = T0 + np.cumsum(rng.integers(1, 90, n)) * NS
    x = rng.standard_normal(n) * (1 + slots)
    x[rng.random(n) < 0.05] = np.nan
    return slots, t, x


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(0, 600), max_size=12))
def test_features_identical_for_any_batch_split(seed: int, cuts: list[int]) -> None:
    slots, t, x = _stream_data(seed)
    spec = FeatureSpec(alpha=0.1, k=5, warmup=8, utc_offset_hours=6)
    whole, whole_warm = StreamFeatures(spec).process(slots, t, x)
    f = StreamFeatures(spec)
    parts = []
    bounds = [0, *sorted(cuts), len(x)]
    for a, b in zip(bounds, bounds[1:], strict=False):
        parts.append(f.process(slots[a:b], t[a:b], x[a:b]))
    split = np.concatenate([p[0] for p in parts])
    split_warm = np.concatenate([p[1] for p in parts])
    assert np.array_equal(whole, split, equal_nan=True)
    assert np.array_equal(whole_warm, split_warm)


def test_process_is_features_then_learn_per_point_and_features_is_pure() -> None:
    slots, t, x = _stream_data(3, n=200)
    spec = FeatureSpec(k=4, warmup=5)
    a = StreamFeatures(spec)
    rows, warm = a.process(slots, t, x)
    b = StreamFeatures(spec)
    for i in range(len(x)):
        before = b.state_dict()
        r, w = b.features(slots[i : i + 1], t[i : i + 1], x[i : i + 1])
        after = b.state_dict()
        assert all(np.array_equal(before[k], after[k]) for k in before)  # pure
        assert np.array_equal(r[0], rows[i], equal_nan=True) and w[0] == warm[i]
        b.learn(slots[i : i + 1], t[i : i + 1], x[i : i + 1])
    assert all(np.array_equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_features_match_a_plain_python_reference() -> None:
    rng = np.random.default_rng(11)
    n, k, alpha, warmup, off_h = 300, 6, 0.2, 7, 6.0
    t = T0 + np.cumsum(rng.integers(30, 400, n)) * NS
    x = rng.standard_normal(n).cumsum()
    rows, warm = StreamFeatures(FeatureSpec(alpha, k, warmup, off_h)).process(np.zeros(n, np.int64), t, x)
    mean = var = 0.0
    for i in range(n):
        past = x[max(0, i - (k - 1)) : i]
        window = np.append(past, x[i])
        local_h = ((int(t[i]) + int(off_h * 3600 * NS)) % (86_400 * NS)) / (86_400 * NS)
        expected = [
            x[i],
            x[i] - mean if i else 0.0,
            np.sqrt(var) if i else 0.0,
            x[i] - x[i - 1] if i else 0.0,
            window.min(),
            window.max(),
            window.max() - window.min(),
            np.sin(2 * np.pi * local_h),
            np.cos(2 * np.pi * local_h),
        ]
        np.testing.assert_allclose(rows[i], expected, rtol=1e-12, atol=1e-12)
        assert warm[i] == (i >= warmup)
        if i == 0:
            mean, var = x[0], 0.0
        else:
            d = x[i] - mean
            mean += alpha * d
            var = (1 - alpha) * (var + d * alpha * d)


def test_feature_state_is_bounded_and_round_trips() -> None:
    spec = FeatureSpec(k=10)
    f = StreamFeatures(spec)
    assert f.state_bytes_per_stream() == 5 * 8 + 8 * 9
    slots, t, x = _stream_data(5, n=800, streams=50)
    whole, _ = StreamFeatures(spec).process(slots, t, x)
    f.process(slots[:300], t[:300], x[:300])
    g = StreamFeatures(spec)
    g.load_state_dict(f.state_dict())
    rest, _ = g.process(slots[300:], t[300:], x[300:])
    assert np.array_equal(whole[300:], rest, equal_nan=True)
    assert f.state_bytes_per_stream() == 112  # the same with 50 streams as with none
    with pytest.raises(ValueError, match="saved with"):
        StreamFeatures(FeatureSpec(k=5, warmup=30)).load_state_dict(f.state_dict())


# ---------------------------------------------------------------- training and the stage


@pytest.fixture(scope="module")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three pressure loggers, 10 days of normal behaviour, a tiny forest."""
    rng = np.random.default_rng(2026)
    t = T0 + np.arange(10 * 1440) * MIN
    hist = {(f"w-{i}", "pressure"): (t, diurnal(rng, t, 0.30 + 0.01 * i)) for i in range(3)}
    d = tmp_path_factory.mktemp("models")
    tm = train(hist, "water.pressure", spec=FeatureSpec(utc_offset_hours=6), **TINY)
    save_model(d, tm, now=datetime(2026, 1, 11, tzinfo=UTC))
    return d


def _live(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = T0 + (10 * 1440 + np.arange(n)) * MIN
    return t, diurnal(rng, t, 0.31)


def test_normal_data_raises_nothing(trained_dir: Path) -> None:
    t, x = _live(1, 3 * 1440)  # three days
    pipe = DetectorPipeline([LearnedStage(trained_dir)])
    assert run(pipe, readings("w-1", t, x), 500) == []


def test_a_clear_outlier_raises_a_detection(trained_dir: Path) -> None:
    t, x = _live(2, 600)
    x[400:405] = 0.05  # five minutes at a sixth of the normal pressure
    stage = LearnedStage(trained_dir)
    dets = run(DetectorPipeline([stage]), readings("w-1", t, x), 100)
    raised = [d for d in dets if d["state"] == "raised"]
    assert len(raised) == 1
    d = raised[0]
    assert (d["detector"], d["kind"], d["sensors"], d["metric"]) == ("isolation_forest", "learned_anomaly", ["w-1"], "pressure")
    assert d["start_ns"] == int(t[400])
    assert d["level"] in ("blue", "yellow")
    ev = d["evidence"]
    assert ev["model"] == "water.pressure/v1-20260111T000000Z" and ev["model_version"] == 1
    assert d["score"] >= ev["threshold"]
    assert set(ev["features"]) == set(FEATURE_NAMES) and ev["features"]["value"] <= 0.3
    assert [c["state"] for c in dets if c["state"] == "cleared"] == ["cleared"]


def test_stage_batch_size_and_restart_do_not_change_detections(trained_dir: Path, tmp_path: Path) -> None:
    t, x = _live(3, 900)
    x[300:306] = 0.10
    x[700] = 0.6
    rs = readings("w-2", t, x)
    expected = run(DetectorPipeline([LearnedStage(trained_dir)]), rs, 900)
    assert len(expected) >= 2
    for batch in (1, 7, 128):
        assert run(DetectorPipeline([LearnedStage(trained_dir)]), rs, batch) == expected
    first = DetectorPipeline([LearnedStage(trained_dir)])
    got = run(first, rs[:302], 50)  # stop in the middle of the condition
    first.save(tmp_path / "state.npz")
    second = DetectorPipeline([LearnedStage(trained_dir)])
    second.load(tmp_path / "state.npz")
    got += run(second, rs[302:], 50)
    assert got == expected


def test_state_bytes_per_stream_is_reported(trained_dir: Path) -> None:
    stage = LearnedStage(trained_dir)
    # features 112 + hysteresis 42 + class cache 8
    assert stage.state_bytes_per_stream() == 112 + stage.hyst.state_bytes_per_slot() + 8 <= 200


def test_no_model_for_a_class_does_nothing_and_says_so_once(trained_dir: Path) -> None:
    said: list[str] = []
    stage = LearnedStage(trained_dir, say=said.append)
    pipe = DetectorPipeline([stage])
    t = T0 + np.arange(200) * MIN
    flow = np.full(200, 50.0)
    flow[150:] = 5000.0
    for i in range(0, 200, 20):
        assert pipe.process(readings("w-9", t[i : i + 20], flow[i : i + 20], metric="flow")) == []
    assert said == [f"learned: water.flow: no model in {trained_dir}; not scoring it"]
    assert stage.features.warm_count(0) == 0  # nothing computed for it either


def test_too_little_history_is_refused() -> None:
    t = T0 + np.arange(100) * MIN
    with pytest.raises(NotEnoughData, match="70 warm feature rows"):
        train({("w-1", "pressure"): (t, np.ones(100))}, "water.pressure", **TINY)


def test_training_sample_does_not_depend_on_chunking() -> None:
    rng = np.random.default_rng(4)
    t = T0 + np.arange(4000) * MIN
    hist = {(f"w-{i}", "pressure"): (t, diurnal(rng, t)) for i in range(3)}
    whole = train(hist, "water.pressure", max_rows=2000, **TINY)
    chunks = [{k: (tt[a : a + 777], xx[a : a + 777]) for k, (tt, xx) in hist.items()} for a in range(0, 4000, 777)]
    chunked = train((reversed_keys(c) for c in chunks), "water.pressure", max_rows=2000, **TINY)
    assert whole.n_samples == chunked.n_samples == 2000 and whole.n_rows == chunked.n_rows == 3 * (4000 - 30)
    assert whole.threshold == chunked.threshold and whole.score_max == chunked.score_max


def reversed_keys(chunk: dict) -> dict:
    return dict(reversed(list(chunk.items())))


# ---------------------------------------------------------------- the model store


def test_store_round_trip_versions_and_manifest(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    t = T0 + np.arange(3000) * MIN
    hist = {("w-1", "pressure"): (t, diurnal(rng, t))}
    a = train(hist, "water.pressure.pressure", window=(int(t[0]), int(t[-1])), **TINY)
    b = train(hist, "water.pressure.pressure", threshold_quantile=99.0, **TINY)
    s1 = save_model(tmp_path, a, now=datetime(2026, 1, 3, 12, 0, 5, tzinfo=UTC))
    s2 = save_model(tmp_path, b, now=datetime(2026, 1, 4, tzinfo=UTC))
    assert (s1.version, s1.name, s2.version, s2.name) == (1, "v1-20260103T120005Z", 2, "v2-20260104T000000Z")
    d = tmp_path / "water.pressure.pressure"
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == [
        "latest", "v1-20260103T120005Z.joblib", "v1-20260103T120005Z.json", "v2-20260104T000000Z.joblib", "v2-20260104T000000Z.json",
    ]
    assert (d / "latest").read_text().strip() == "v2-20260104T000000Z"
    assert list_classes(tmp_path) == ["water.pressure.pressure"]
    assert list_versions(tmp_path, "water.pressure.pressure") == [(1, "v1-20260103T120005Z"), (2, "v2-20260104T000000Z")]
    m = json.loads((d / "v1-20260103T120005Z.json").read_text())
    assert m["sklearn_version"] == sklearn.__version__
    assert m["features"] == list(FEATURE_NAMES)
    assert m["training_window"] == {"start": "2026-01-01T00:00:00Z", "end": "2026-01-03T01:59:00Z",
                                    "start_ns": int(t[0]), "end_ns": int(t[-1])}
    assert m["n_samples"] == m["n_rows"] == 3000 - 30
    assert m["threshold_quantile"] == 99.9 and m["threshold"] == a.threshold
    assert m["created_at"] == "2026-01-03T12:00:05Z" and m["params"]["n_estimators"] == 20
    latest = load_model(tmp_path, "water.pressure.pressure")
    first = load_model(tmp_path, "water.pressure.pressure", version=1)
    assert (latest.version, first.version) == (2, 1)
    X = np.random.default_rng(0).normal(0.3, 0.02, (50, len(FEATURE_NAMES)))
    assert np.array_equal(first.estimator.score_samples(X), a.estimator.score_samples(X))
    assert latest.threshold == b.threshold < first.threshold
    with pytest.raises(ModelNotFound):
        load_model(tmp_path, "water.pressure.pressure", version=3)
    with pytest.raises(ModelNotFound):
        load_model(tmp_path, "gas.pressure.pressure")


def _tamper(model_dir: Path, cls: str, change) -> None:  # noqa: ANN001
    d = model_dir / cls
    name = (d / "latest").read_text().strip()
    m = json.loads((d / f"{name}.json").read_text())
    change(m)
    (d / f"{name}.json").write_text(json.dumps(m))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(features=[*m["features"], "hour_of_week"]), "feature list"),
        (lambda m: m.update(features=list(reversed(m["features"]))), "feature list"),
        (lambda m: m["feature_spec"].update(k=20), "trained with"),
        (lambda m: m.update(sklearn_version="0.24.2"), "scikit-learn 0.24.2"),
        (lambda m: m.update(sha256="0" * 64), "checksum"),
    ],
)
def test_a_model_that_does_not_fit_the_code_is_refused(tmp_path: Path, change, message: str, caplog) -> None:  # noqa: ANN001
    rng = np.random.default_rng(5)
    t = T0 + np.arange(2000) * MIN
    save_model(tmp_path, train({("w-1", "pressure"): (t, diurnal(rng, t))}, "water.pressure", **TINY))
    load_model(tmp_path, "water.pressure", spec=FeatureSpec())
    _tamper(tmp_path, "water.pressure", change)
    with pytest.raises(ModelMismatch, match=message):
        load_model(tmp_path, "water.pressure", spec=FeatureSpec())
    with caplog.at_level(logging.ERROR, logger="detectors.learned"):
        stage = LearnedStage(tmp_path, spec=FeatureSpec())
    assert stage.models == [] and message in stage.refused["water.pressure"]
    assert "refusing the model of water.pressure" in caplog.text


# ---------------------------------------------------------------- InfluxQL


KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "GROUP", "BY", "ORDER", "DESC", "LIMIT"}
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|\d+|[A-Za-z_]\w*|>=|<|=|,|\(|\)|\s+')


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def tokens(q: str) -> tuple[list[str], list[str], list[str]]:
    """(bare words, identifiers, string literals) of an InfluxQL statement; fails on anything else."""
    pos, bare, idents, literals = 0, [], [], []
    while pos < len(q):
        m = _TOKEN.match(q, pos)
        assert m, f"unexpected text at {pos}: {q[pos:pos + 20]!r} in {q!r}"
        tok = m.group()
        if tok.startswith('"'):
            idents.append(_unescape(tok))
        elif tok.startswith("'"):
            literals.append(_unescape(tok))
        elif tok[0].isalpha() or tok[0] == "_":
            bare.append(tok)
        pos = m.end()
    return bare, idents, literals


class RecordingClient:
    """A fake InfluxClient: records queries, answers with no series."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query(self, q: str):  # noqa: ANN201
        self.queries.append(q)
        return []


def test_every_identifier_and_literal_in_training_queries_is_quoted() -> None:
    nasty = ["w-o'brien", 'w-"quoted"', "w-x y,z=1", "w-a'b\"c"]
    client = RecordingClient()
    list(iter_history(client, "water", T0, T0 + 3 * 86_400 * NS, sensors=nasty))
    client.query(last_event_query("water", ["flow", "pressure"], nasty))
    assert len(client.queries) == 4
    for q in client.queries:
        bare, idents, literals = tokens(q)
        assert set(bare) <= KEYWORDS, q
        assert set(idents) <= {"water", "flow", "pressure", "time", "sensor_id"}, q
        assert literals == nasty, q
    bare, idents, _ = tokens(history_query('we"ird', ['m"1', "m\\2"], 0, 1))
    assert set(bare) <= KEYWORDS and idents == ['m"1', "m\\2", 'we"ird', "time", "time", "sensor_id"]


# ---------------------------------------------------------------- training from a real InfluxDB


def _write_days(influx, city_sensors: list[tuple[str, str, tuple[str, ...]]], days: float, seed: int) -> int:  # noqa: ANN001
    """Write ``days`` of one-minute readings per sensor; returns the last event time."""
    rng = np.random.default_rng(seed)
    t = T0 + np.arange(int(days * 1440)) * MIN
    lines = []
    for sid, district, metrics in city_sensors:
        vals = {m: (diurnal(rng, t) if m == "pressure" else 80 + 40 * diurnal(rng, t)) for m in metrics}
        for i in range(len(t)):
            lines.append(encode_reading(Reading("water", district, sid, int(t[i]), {m: float(v[i]) for m, v in vals.items()})))
    for i in range(0, len(lines), 20_000):
        influx.write("\n".join(lines[i : i + 20_000]))
    return int(t[-1])


@pytest.mark.integration
def test_train_from_a_real_influxdb_through_the_cli(influx, settings, tmp_path: Path) -> None:  # noqa: ANN001
    city = load_city()
    loggers = [s for s in city.sensors_of("water") if s.kind == "pressure"][:2]
    inlet = next(s for s in city.sensors_of("water") if s.kind == "dma_inlet")
    sensors = [(s.id, s.district, ("pressure",)) for s in loggers] + [(inlet.id, inlet.district, ("flow", "pressure"))]
    end = _write_days(influx, sensors, days=3, seed=1)

    out = tmp_path / "models"
    args = argparse.Namespace(since="2d", out=str(out), lifeline=["water"], chunk="1d")
    assert cli(args, settings) == 0
    assert list_classes(out) == ["water.dma_inlet.flow", "water.dma_inlet.pressure", "water.pressure.pressure"]
    m = load_model(out, "water.pressure.pressure")
    window = m.manifest["training_window"]
    assert (window["start_ns"], window["end_ns"]) == (end - 2 * 86_400 * NS, end)
    per_stream = 2 * 1440 + 1  # [end - 2d, end], both ends included
    assert m.manifest["n_streams"] == 2 and m.manifest["n_rows"] == 2 * (per_stream - 30)
    assert m.spec == FeatureSpec(utc_offset_hours=city.utc_offset_hours)
    assert load_model(out, "water.dma_inlet.flow").manifest["n_streams"] == 1

    # the same rows as the in-memory history: InfluxDB brought back exactly the features streaming sees
    t = T0 + np.arange(3 * 1440) * MIN
    keep = t >= end - 2 * 86_400 * NS
    rng = np.random.default_rng(1)
    direct = {}
    for sid, _, metrics in sensors:
        for metric in metrics:
            v = diurnal(rng, t) if metric == "pressure" else 80 + 40 * diurnal(rng, t)
            if (sid, metric) in [(s.id, "pressure") for s in loggers]:
                direct[(sid, metric)] = (t[keep], v[keep])
    mem = train(direct, "water.pressure.pressure", spec=m.spec)
    assert mem.threshold == m.threshold and mem.score_max == m.score_max

    # smaller chunks, the same model; and the CLI adds a version
    assert cli(argparse.Namespace(since="2d", out=str(out), lifeline=["water"], chunk="5h"), settings) == 0
    again = load_model(out, "water.pressure.pressure")
    assert again.version == 2 and again.threshold == m.threshold

    # the stage scores the following minutes with the stored models (the city gives the sensor kinds)
    pipe = DetectorPipeline([LearnedStage(out)], city=city)
    tl = end + (1 + np.arange(300)) * MIN
    xl = diurnal(np.random.default_rng(8), tl)
    xl[200:205] = 0.02
    rs = [Reading("water", loggers[0].district, loggers[0].id, int(a), {"pressure": float(b)}) for a, b in zip(tl, xl, strict=True)]
    dets = run(pipe, rs, 60)
    assert [d["state"] for d in dets][:1] == ["raised"] and dets[0]["start_ns"] == int(tl[200])
    assert dets[0]["evidence"]["model"] == f"water.pressure.pressure/{again.name}"


@pytest.mark.integration
def test_training_queries_carry_quoted_sensor_ids_to_influxdb(influx, tmp_path: Path) -> None:  # noqa: ANN001
    nasty = "w-o'b\"x y,z=1"
    end = _write_days(influx, [(nasty, "d01", ("pressure",)), ("w-plain", "d01", ("pressure",))], days=1, seed=3)
    chunks = list(iter_history(influx, "water", T0, end + 1, sensors=[nasty], chunk_ns=6 * 3600 * NS))
    assert len(chunks) == 4 and all(set(c) == {(nasty, "pressure")} for c in chunks)
    assert sum(len(c[(nasty, "pressure")][0]) for c in chunks) == 1440
    stored = train_from_influx(influx, since_s=86_400, model_dir=tmp_path, lifelines=["water"], sensors=[nasty], **TINY)
    assert [s.sensor_class for s in stored] == ["water.pressure"]
    assert stored[0].manifest["n_streams"] == 1 and stored[0].manifest["n_rows"] == 1440 - 30


def test_cli_reports_an_unreachable_influxdb(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    s = Settings(state_dir=tmp_path, influx_url=f"http://127.0.0.1:{free_port()}", influx_timeout=2.0)
    assert cli(argparse.Namespace(since="30d", out=None, lifeline=None, chunk="1d"), s) == 2
    err = capsys.readouterr().err
    assert err.startswith("lifewatch detectors train: InfluxDB at http://127.0.0.1:") and err.count("\n") == 1
    assert not (tmp_path / "models").exists()


@pytest.mark.integration
def test_cli_with_an_empty_database_stores_nothing(settings, capsys) -> None:  # noqa: ANN001
    assert cli(argparse.Namespace(since="30d", out=None, lifeline=None, chunk="1d"), settings) == 1
    out = capsys.readouterr().out
    assert "water: no data, nothing to train" in out and f"0 model(s) stored in {settings.state_dir / 'models'}" in out
