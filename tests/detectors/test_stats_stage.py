"""StatStage: scorer + levels + hysteresis over frame rows; identical detections for any batch split."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.pipeline import DetectorPipeline
from detectors.stats_stage import DEFAULTS, StatStage
from lifewatch.levels import Level
from lifewatch.model import Reading

T0 = 1_767_571_200 * 1_000_000_000  # 2026-01-05T00:00:00Z, a Monday
MIN = 60 * 1_000_000_000


def water_readings(days: float = 3.0, sensors: int = 3, seed: int = 0) -> list[Reading]:
    """DMA inlets read every minute: a daily flow cycle (local UTC+6), pressure that dips a little when flow peaks.

    Sensor 0 gets a flow step at 03:00 local on the last night, sensor 1 a
    pressure jump and then a lasting pressure drop, sensor 2 stays normal
    except for a few missing values.
    """
    rng = np.random.default_rng(seed)
    n = int(days * 1440)
    t = T0 + np.arange(n) * MIN
    local_h = ((t // MIN + 360) % 1440) / 60.0
    out = []
    for s in range(sensors):
        flow = 400 + 150 * np.sin(2 * np.pi * (local_h - 9) / 24) + rng.normal(0, 8, n)
        pres = 0.35 - 0.00001 * (flow - 400) + rng.normal(0, 0.003, n)
        if s == 0:
            night = np.flatnonzero((local_h >= 3) & (local_h < 3.5))
            flow[night[night > n - 1440]] += 120
        if s == 1:
            pres[n - 700] += 0.08
            pres[n - 400:] -= 0.03
        flow_v: list[float | None] = list(map(float, flow))
        if s == 2:
            for i in rng.choice(n, 20, replace=False):
                flow_v[i] = None
        for i in range(n):
            out.append(Reading("water", "d01", f"w-d01-{s:03d}", int(t[i]), {"flow": flow_v[i], "pressure": float(pres[i])}))
    out.sort(key=lambda r: (r.ts_ns, r.sensor_id))
    return out


def stages() -> list[StatStage]:
    return [
        StatStage("seasonal_robust_z", ["water.flow", "water.pressure"]),
        StatStage("cusum", ["water.pressure"]),
        StatStage("rate_of_change", ["water.pressure"]),
    ]


def run(readings: list[Reading], cuts: list[int] | None = None, pipe: DetectorPipeline | None = None) -> list[dict]:
    pipe = pipe or DetectorPipeline(stages())
    cuts = [0, *(cuts or []), len(readings)]
    out = []
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        out.extend(d.to_json() for d in pipe.process(readings[a:b]))
    return out


@pytest.fixture(scope="module")
def readings() -> list[Reading]:
    return water_readings()


@pytest.fixture(scope="module")
def one_batch(readings: list[Reading]) -> list[dict]:
    return run(readings)


def test_detections_found_where_the_incidents_are(one_batch: list[dict]) -> None:
    raised = [d for d in one_batch if d["state"] == "raised"]
    by = {(d["detector"], d["sensors"][0], d["metric"]) for d in raised}
    assert ("seasonal_robust_z", "w-d01-000", "flow") in by  # the night step
    assert ("rate_of_change", "w-d01-001", "pressure") in by  # the jump
    assert ("cusum", "w-d01-001", "pressure") in by  # the lasting drop
    step = [d for d in raised if d["detector"] == "seasonal_robust_z" and d["sensors"][0] == "w-d01-000"
            and d["metric"] == "flow"]
    night = [d for d in step if d["start"].endswith(("T21:00:00Z", "T21:01:00Z", "T21:02:00Z"))]
    assert night, [d["start"] for d in step]  # 03:00 local = 21:00 UTC
    ev = night[0]["evidence"]
    assert ev["scorer"] == "seasonal_robust_z" and ev["levels"] == {"blue": 4.0, "yellow": 6.0}
    assert abs(ev["baseline"] - (ev["value"] - 120)) < 40  # the bin's median is the normal night flow
    assert ev["peak_score"] >= ev["score"] >= 4.0
    assert night[0]["kind"] == "anomaly" and night[0]["level"] in ("blue", "yellow")
    cus = [d for d in raised if d["detector"] == "cusum"]
    assert all(d["kind"] == "change" for d in cus)


def test_seasonal_cusum_raises_one_change_for_a_sustained_departure(readings: list[Reading]) -> None:
    st = StatStage("seasonal_cusum", ["water.flow"])
    got = run(readings, pipe=DetectorPipeline([st]))
    assert st.kind == "change" and st.levels == {"blue": 1.0}
    by_sensor = {}
    for d in got:
        by_sensor.setdefault(d["sensors"][0], []).append(d)
    step = by_sensor.pop("w-d01-000")  # +120 (15 noise sd) for 30 minutes at 03:00 local on the last night
    assert [d["state"] for d in step] == ["raised", "cleared"], [(d["state"], d["start"]) for d in step]
    raised, cleared = step
    # 03:00-03:30 local on the last night = 21:00-21:30 UTC; 60 z-minutes at ~4 - 1 a minute: ~20 minutes in
    assert "2026-01-07T21:10:00Z" <= raised["start"] < "2026-01-07T21:30:00Z" and raised["kind"] == "change"
    assert raised["evidence"]["baseline"] < raised["evidence"]["value"] - 60
    assert cleared["end"] < "2026-01-07T22:30:00Z"  # about h / k = 60 minutes after the step, at most
    assert cleared["evidence"]["peak_score"] <= 2.0  # the statistic is capped at 2 h
    assert by_sensor == {}, by_sensor  # the other flows: no sustained departure


def test_normal_sensor_is_quiet(one_batch: list[dict]) -> None:
    quiet = [d for d in one_batch if d["sensors"][0] == "w-d01-002" and d["detector"] == "seasonal_robust_z"
             and d["state"] == "raised"]
    assert len(quiet) <= 2, quiet


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_batch_split_gives_identical_detections(readings: list[Reading], one_batch: list[dict], seed: int) -> None:
    rng = np.random.default_rng(seed)
    cuts = np.cumsum(rng.integers(1, 700, size=len(readings)))
    cuts = [int(c) for c in cuts if c < len(readings)]
    assert run(readings, cuts) == one_batch


def test_one_reading_per_batch_identical(readings: list[Reading], one_batch: list[dict]) -> None:
    # the last day only (before it: one batch), one reading at a time: peaks in the evidence are per row
    start = len(readings) - 3 * 1440
    cuts = [start, *range(start + 1, len(readings))]
    assert run(readings, cuts) == one_batch


def test_state_round_trip_resumes_identically(readings: list[Reading], one_batch: list[dict], tmp_path) -> None:
    half = len(readings) // 2
    first = DetectorPipeline(stages())
    got = [d.to_json() for d in first.process(readings[:half])]
    first.save(tmp_path / "state.npz")
    second = DetectorPipeline(stages())
    second.load(tmp_path / "state.npz")
    got += [d.to_json() for d in second.process(readings[half:])]
    assert got == one_batch


def test_stage_state_dict_covers_scorer_and_hysteresis() -> None:
    st = StatStage("cusum", ["water.pressure"])
    keys = set(st.state_dict())
    assert {f"scorer/{k}" for k in st.scorer.STATE} <= keys
    assert {"hyst/active", "hyst/peak", "hyst/on_count"} <= keys
    assert st.state_bytes_per_stream() == st.scorer.state_bytes_per_stream() + st.hyst.state_bytes_per_slot()


def test_levels_map_scores_to_severities() -> None:
    st = StatStage("seasonal_robust_z", ["water.flow"], levels={"blue": 3, Level.ORANGE: 9, "yellow": 5})
    sev = st.severities(np.array([0.0, 2.9, 3.0, 4.9, 5.0, 8.9, 9.0, 100.0]))
    assert sev.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_defaults_and_validation() -> None:
    st = StatStage("rate_of_change", "water.pressure")
    assert st.kind == "rate" and st.hyst.min_points == DEFAULTS["rate_of_change"]["min_points"]
    assert StatStage("ewz", ["water.flow"]).kind == "anomaly"
    with pytest.raises(ValueError, match="lifeline"):
        StatStage("cusum", ["pressure"])
    with pytest.raises(KeyError, match="unknown scorer"):
        StatStage("no_such_scorer", ["water.flow"])
    with pytest.raises(TypeError, match="unknown parameters"):
        StatStage("cusum", ["water.flow"], params={"bogus": 1})


def test_other_metrics_are_ignored() -> None:
    st = StatStage("rate_of_change", ["power.voltage"])
    pipe = DetectorPipeline([st])
    assert run(water_readings(days=0.2, sensors=1), pipe=pipe) == []
