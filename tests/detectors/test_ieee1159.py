"""IEEE 1159-2009 categories by magnitude and duration, and the stage's run-length durations.

Expected boundaries are typed from the IEEE 1159-2009 table in
../shared/reference/domain.md §2.2: instantaneous 0.5-30 cycles (0.6 s at
50 Hz), momentary 30 cycles-3 s, temporary 3 s-1 min, long > 1 min; sag
0.1-0.9 pu, swell from 1.1 pu, interruption < 0.1 pu (IEC 61000-4-30: < 1 %).
"""

from __future__ import annotations

import pytest

from detectors.pipeline import DetectorPipeline
from detectors.standards.ieee1159 import IEC_INTERRUPTION_PU, classify
from detectors.thresholds import ThresholdStage
from lifewatch.model import Reading

S = 10**9


@pytest.mark.parametrize(
    ("pu", "duration_s", "expected"),
    [
        # duration boundaries of a sag (0.5 pu)
        (0.5, 0.0, "instantaneous_sag"),
        (0.5, 0.6, "instantaneous_sag"),  # 30 cycles at 50 Hz
        (0.5, 0.61, "momentary_sag"),
        (0.5, 3.0, "momentary_sag"),
        (0.5, 3.01, "temporary_sag"),
        (0.5, 60.0, "temporary_sag"),
        (0.85, 60.01, "undervoltage"),
        # swells (1.15 pu)
        (1.15, 0.6, "instantaneous_swell"),
        (1.15, 0.61, "momentary_swell"),
        (1.15, 3.01, "temporary_swell"),
        (1.15, 60.01, "overvoltage"),
        # interruptions (< 0.1 pu): momentary up to 3 s, temporary up to 1 min, then sustained
        (0.0, 0.0, "momentary_interruption"),
        (0.05, 3.0, "momentary_interruption"),
        (0.05, 3.01, "temporary_interruption"),
        (0.0, 60.0, "temporary_interruption"),
        (0.0, 60.01, "sustained_interruption"),
        # magnitude boundaries
        (0.0999, 10.0, "temporary_interruption"),
        (0.1, 10.0, "temporary_sag"),  # 0.1 pu is the bottom of the sag range
        (0.8999, 10.0, "temporary_sag"),
        (0.9, 10.0, None),
        (1.1, 10.0, None),
        (1.1001, 10.0, "temporary_swell"),
    ],
)
def test_classify_boundaries(pu: float, duration_s: float, expected: str | None) -> None:
    assert classify(pu, duration_s) == expected


def test_iec_interruption_threshold_and_60_hz_cycles() -> None:
    assert classify(0.0099, 10.0, interruption_pu=IEC_INTERRUPTION_PU) == "temporary_interruption"
    assert classify(0.01, 10.0, interruption_pu=IEC_INTERRUPTION_PU) == "temporary_sag"
    assert classify(0.05, 10.0, interruption_pu=0.01) == "temporary_sag"
    assert classify(0.5, 0.55, system_hz=60.0) == "momentary_sag"  # 30 cycles at 60 Hz = 0.5 s
    assert classify(0.5, 0.55) == "instantaneous_sag"


# ---- the stage: durations from consecutive readings


def meter(ts: list[float], volts: list[float], sid: str = "m-1") -> list[Reading]:
    return [Reading("power", "d01", sid, round(t * S), {"voltage": v}) for t, v in zip(ts, volts, strict=True)]


def ieee(dets: list) -> list[tuple]:
    return [(d.state, d.level.label, d.ts_ns / S, d.evidence.get("class"), d.evidence.get("duration_min_s"))
            for d in dets if d.kind == "ieee1159_lv"]


def test_sag_category_grows_with_the_run_of_1s_readings() -> None:
    """A 0.85 pu (187 V) undervoltage sampled every second: blue -> yellow at 3 s < d -> orange after 1 min."""
    ts = list(range(-1, 63))
    volts = [220.0] + [187.0] * 63
    out = DetectorPipeline([ThresholdStage()]).process(meter(ts, volts))
    assert ieee(out) == [
        ("raised", "blue", 0.0, "instantaneous_sag", 0.0),
        ("updated", "yellow", 4.0, "temporary_sag", 4.0),
        ("updated", "orange", 61.0, "undervoltage", 61.0),
    ]
    first = next(d for d in out if d.kind == "ieee1159_lv")
    ev = first.evidence
    assert ev["duration_max_s"] == 1.0 and ev["duration_resolved"] is False  # 0 s .. 1 s spans two categories
    assert ev["pu"] == 0.85 and ev["nominal"] == 220.0 and ev["crossed_pu"] == {"sag_pu": 0.9}
    assert ev["crossed"] == {"blue": 198.0} and ev["within_typical"] is True
    assert ev["rule_set"] == "ieee1159" and "IEEE 1159" in ev["source"]


def test_interruption_seen_by_10s_readings() -> None:
    ts = [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]
    volts = [220.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 221.0]
    out = DetectorPipeline([ThresholdStage()]).process(meter(ts, volts))
    assert ieee(out) == [
        ("raised", "yellow", 10.0, "momentary_interruption", 0.0),
        ("updated", "orange", 20.0, "temporary_interruption", 10.0),
        ("updated", "red", 80.0, "sustained_interruption", 70.0),  # 60 s is still temporary
        ("cleared", "red", 90.0, None, None),
    ]
    cleared = [d for d in out if d.kind == "ieee1159_lv"][-1]
    assert cleared.end_ns == 90 * S and cleared.start_ns == 10 * S


def test_iec_61000_4_30_rule_set_makes_a_deep_sag_of_an_ieee_interruption() -> None:
    ts, volts = [0, 1, 2], [220.0, 11.0, 220.0]  # 0.05 pu: IEEE interruption, IEC (< 1 %) sag
    ieee_out = ieee(DetectorPipeline([ThresholdStage()]).process(meter(ts, volts)))
    iec = ThresholdStage({"power.ieee1159_lv": {"rule_set": "iec61000_4_30"}})
    iec_out = ieee(DetectorPipeline([iec]).process(meter(ts, volts)))
    assert ieee_out[0][3] == "momentary_interruption"
    assert iec_out[0][3] == "instantaneous_sag"
    assert iec.rule("power.ieee1159_lv").profiles[0]["interruption_pu"] == 0.01


def test_swell_outside_its_typical_range_keeps_the_duration_category() -> None:
    out = DetectorPipeline([ThresholdStage()]).process(meter([0, 5, 10], [220.0, 286.0, 286.0]))  # 1.3 pu
    got = [d for d in out if d.kind == "ieee1159_lv"]
    assert [(d.evidence["class"], d.evidence["within_typical"]) for d in got] == [
        ("instantaneous_swell", True), ("temporary_swell", False)]  # temporary swells are typically 1.1-1.2 pu


def test_runs_restart_after_recovery_and_nan_is_skipped() -> None:
    ts = [0, 10, 20, 30, 40, 50]
    volts = [0.0, 0.0, float("nan"), 220.0, 0.0, 220.0]
    out = DetectorPipeline([ThresholdStage()]).process(meter(ts, volts))
    got = ieee(out)
    assert got[:3] == [("raised", "yellow", 0.0, "momentary_interruption", 0.0),
                       ("updated", "orange", 10.0, "temporary_interruption", 10.0),
                       ("cleared", "orange", 30.0, None, None)]
    assert got[3] == ("raised", "yellow", 40.0, "momentary_interruption", 0.0)  # a fresh run
    second = [d for d in out if d.kind == "ieee1159_lv"][3]
    assert second.evidence["duration_max_s"] == 10.0  # last in-band reading at 30 s


def test_feeder_head_kv_uses_its_own_nominal() -> None:
    out = DetectorPipeline([ThresholdStage()]).process(
        [Reading("power", "d01", "f-1", i * 60 * S, {"voltage_kv": v}) for i, v in enumerate([10.2, 8.5, 10.1])])
    got = [d for d in out if d.kind == "ieee1159_mv"]
    assert got[0].evidence["class"] == "instantaneous_sag" and got[0].evidence["pu"] == 0.85
    assert got[0].evidence["crossed"] == {"blue": 9.0}
