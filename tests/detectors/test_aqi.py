"""HJ 633-2012 / HJ 633-2026 AQI: hand-computed values, the 2026-03-01 switch, and the stage.

Every expected number below is worked out by hand from the breakpoint tables
in ../shared/reference/domain.md §5.2 (not read from the module's tables):
IAQI = IAQI_lo + (C - BP_lo) * (IAQI_hi - IAQI_lo) / (BP_hi - BP_lo), rounded up.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from detectors.pipeline import DetectorPipeline
from detectors.standards import aqi as A
from detectors.thresholds import ThresholdStage
from lifewatch.model import Reading, parse_ts

BEFORE = parse_ts("2026-02-01T00:00:00Z")
AFTER = parse_ts("2026-03-02T00:00:00Z")


@pytest.mark.parametrize(
    ("pollutant", "conc", "ts", "expected"),
    [
        # PM2.5 hourly value on the 24-h breakpoints; 2012: 75 -> 100, 115 -> 150
        ("pm25", 100.0, BEFORE, 132),  # 100 + 25/40*50 = 131.25
        ("pm25", 75.0, BEFORE, 100),
        ("pm25", 75.1, BEFORE, 101),  # 100.125 rounded up
        ("pm25", 35.0, BEFORE, 50),
        ("pm25", 35.1, BEFORE, 51),
        # 2026: IAQI 100 at 60
        ("pm25", 60.0, AFTER, 100),
        ("pm25", 60.1, AFTER, 101),  # 100 + 0.1/55*50 = 100.09
        ("pm25", 100.0, AFTER, 137),  # 100 + 40/55*50 = 136.36
        ("pm25", 600.0, BEFORE, 500),  # beyond the table: reported as 500
        # PM10: 2012 IAQI 100 at 150; 2026 at 120
        ("pm10", 200.0, BEFORE, 125),  # 100 + 50/100*50
        ("pm10", 150.0, BEFORE, 100),
        ("pm10", 120.0, AFTER, 100),
        ("pm10", 150.0, AFTER, 112),  # 100 + 30/130*50 = 111.54
        ("pm10", 100.0, AFTER, 86),  # 50 + 50/70*50 = 85.71
        # SO2 hourly on the 1-h breakpoints (0,150,500,650,800)
        ("so2", 300.0, BEFORE, 72),  # 50 + 150/350*50 = 71.43
        ("so2", 800.0, BEFORE, 200),
        ("so2", 900.0, BEFORE, 213),  # above 800, 2012: 24-h table 800->200, 1600->300: 212.5
        ("so2", 900.0, AFTER, 200),  # above 800, 2026: IAQI 200
        # SO2 24 h: 0,50,150,475,800 (NOT aqi-hub's 0,150,500,650,800, which would give 100 here)
        ("so2_24h", 500.0, BEFORE, 154),  # 150 + 25/325*50 = 153.85
        ("so2_24h", 475.0, BEFORE, 150),
        # NO2, CO, O3 hourly on the 1-h breakpoints
        ("no2", 250.0, BEFORE, 105),  # 100 + 50/500*50
        ("no2", 100.0, BEFORE, 50),
        ("co", 12.0, BEFORE, 104),  # 100 + 2/25*50
        ("co_24h", 5.0, BEFORE, 105),  # 100 + 1/10*50
        ("o3", 250.0, BEFORE, 125),  # 100 + 50/100*50 (200 -> IAQI 100, 300 -> 150)
        ("o3", 160.0, BEFORE, 50),
        ("o3_8h", 200.0, BEFORE, 137),  # 100 + 40/55*50 = 136.36
        ("o3_8h", 800.0, BEFORE, 300),
    ],
)
def test_iaqi_hand_computed(pollutant: str, conc: float, ts: int, expected: int) -> None:
    assert A.iaqi(pollutant, conc, ts) == expected


@pytest.mark.parametrize(
    ("pollutant", "conc", "before", "after"),
    [
        ("so2_1h", 900.0, None, 200),  # 2012: no 1-h IAQI above 800 (use the 24-h one); 2026: 200
        ("o3_8h", 900.0, None, 300),  # 2012: no 8-h IAQI above 800 (use the 1-h one); 2026: 300
    ],
)
def test_top_of_table_rules_change_in_2026(pollutant: str, conc: float, before: int | None, after: int) -> None:
    assert A.iaqi(pollutant, conc, BEFORE) == before
    assert A.iaqi(pollutant, conc, AFTER) == after


def test_rule_set_switches_at_midnight_beijing_time_on_2026_03_01() -> None:
    assert A.rule_set_for(parse_ts("2026-02-28T15:59:59.999999999Z")) == "HJ 633-2012"
    assert A.rule_set_for(parse_ts("2026-03-01T00:00:00+08:00")) == "HJ 633-2026"
    assert A.rule_set_for(parse_ts("2026-02-28T22:00:00+06:00")) == "HJ 633-2026"  # Xinjiang time


def test_same_concentrations_different_aqi_before_and_after() -> None:
    values = {"pm25": 70.0, "pm10": 130.0, "no2": 60.0, "so2": 20.0, "o3": 80.0, "co": 0.9}
    # 2012: PM2.5 70 -> 50 + 35/40*50 = 93.75 -> 94; PM10 130 -> 50 + 80/100*50 = 90
    assert A.aqi(values, BEFORE) == (94, ("pm25",), 2, "HJ 633-2012")
    # 2026: PM2.5 70 -> 100 + 10/55*50 = 109.09 -> 110; PM10 130 -> 100 + 10/130*50 = 103.85 -> 104
    assert A.aqi(values, AFTER) == (110, ("pm25",), 3, "HJ 633-2026")


def test_primary_pollutants_ties_and_clean_air() -> None:
    # PM2.5 115 -> 150; PM10 250 -> 150 (2012): a tie, both primary
    assert A.aqi({"pm25": 115.0, "pm10": 250.0, "o3": 10.0}, BEFORE) == (150, ("pm25", "pm10"), 3, "HJ 633-2012")
    # nothing above IAQI 50: no primary pollutant
    assert A.aqi({"pm25": 30.0, "no2": 90.0}, BEFORE) == (45, (), 1, "HJ 633-2012")  # NO2 90 -> 45
    assert A.aqi({"pm25": None, "co": float("nan")}, BEFORE) == (None, (), None, "HJ 633-2012")
    with pytest.raises(ValueError, match="unknown pollutant"):
        A.aqi({"pm1": 3.0}, BEFORE)


@pytest.mark.parametrize(
    ("value", "level"),
    [(0, 1), (50, 1), (51, 2), (100, 2), (101, 3), (150, 3), (151, 4), (200, 4), (201, 5), (300, 5), (301, 6), (500, 6)],
)
def test_aqi_levels_hj633_table2(value: int, level: int) -> None:
    assert A.aqi_level(value) == level


# ---- an independent reference: the breakpoints typed again from domain.md, plain Python

REF_2012 = {
    "pm25": [0, 35, 75, 115, 150, 250, 350, 500],
    "pm10": [0, 50, 150, 250, 350, 420, 500, 600],
    "so2": [0, 150, 500, 650, 800],
    "no2": [0, 100, 200, 700, 1200, 2340, 3090, 3840],
    "co": [0, 5, 10, 35, 60, 90, 120, 150],
    "o3": [0, 160, 200, 300, 400, 800, 1000, 1200],
}
REF_2026 = {**REF_2012, "pm25": [0, 35, 60, 115, 150, 250, 350, 500], "pm10": [0, 50, 120, 250, 350, 420, 500, 600]}
REF_IAQI = [0, 50, 100, 150, 200, 300, 400, 500]


def ref_iaqi(pollutant: str, c: float, new: bool) -> int:
    bp = (REF_2026 if new else REF_2012)[pollutant]
    if c > bp[-1]:
        if pollutant == "so2":
            if new:
                return 200
            bp = [0, 50, 150, 475, 800, 1600, 2100, 2620]
            if c > bp[-1]:
                return 500
        else:
            return 500
    for j in range(len(bp) - 1):
        if c <= bp[j + 1]:
            v = REF_IAQI[j] + (c - bp[j]) * (REF_IAQI[j + 1] - REF_IAQI[j]) / (bp[j + 1] - bp[j])
            return math.ceil(round(v, 6))
    raise AssertionError


def test_vectorised_iaqi_matches_an_independent_reference() -> None:
    rng = np.random.default_rng(7)
    tops = {"pm25": 600, "pm10": 700, "so2": 3000, "no2": 4000, "co": 160, "o3": 1300}
    for pol, top in tops.items():
        c = np.round(rng.uniform(0, top, 400), 1)
        for new in (False, True):
            got = A.iaqi_array(pol, c, np.full(len(c), new))
            want = [ref_iaqi(pol, float(v), new) for v in c]
            assert got.tolist() == want, pol


# ---- the stage

M = 60 * 10**9


def station(sid: str, ts: int, **values: float | None) -> Reading:
    return Reading("air", "d01", sid, ts, dict(values))


def test_stage_aqi_uses_the_rules_of_the_event_date() -> None:
    """PM2.5 70 is AQI 94 (no warning) in February 2026 and 110 (blue: level 3) in March."""
    vals = {"pm25": 70.0, "pm10": 60.0, "no2": 30.0, "so2": 8.0, "o3": 50.0, "co": 0.6}
    before = DetectorPipeline([ThresholdStage()]).process([station("a-1", BEFORE, **vals)])
    after = DetectorPipeline([ThresholdStage()]).process([station("a-1", AFTER, **vals)])
    assert before == []
    (d,) = after
    assert (d.kind, d.state, d.level.label, d.metric) == ("aqi_level", "raised", "blue", "aqi")
    ev = d.evidence
    assert (ev["aqi"], ev["aqi_level"], ev["primary_pollutants"], ev["aqi_rules"]) == (110, 3, ["pm25"], "HJ 633-2026")
    assert ev["iaqi"]["pm25"] == 110 and ev["crossed"] == {"blue": 101.0}
    assert ev["rule_set"] == "by_date" and "HJ 633" in ev["source"]


def test_stage_aqi_is_the_max_over_one_reading_and_levels_map_to_warnings() -> None:
    st = ThresholdStage()
    p = DetectorPipeline([st])
    rs = [
        # PM2.5 160 -> 200 + 10/100*100 = 210 (level 5 heavy -> orange); PM10 300 -> 150 + 50/100*50 = 175
        station("a-1", BEFORE, pm25=160.0, pm10=300.0, no2=40.0, so2=None, o3=50.0, co=1.0),
        # another station in the same batch: CO 65 mg/m3 -> 200 + 5/30*100 = 216.67 -> 217 (orange)
        station("a-2", BEFORE, pm25=10.0, co=65.0),
        # a-3: O3 1-h 900 -> 300 + 100/200*100 = 350 (level 6 severe -> red)
        station("a-3", BEFORE, o3=900.0),
        # a-4: PM2.5 116 -> 150 + 1/35*50 = 151.43 -> 152 (level 4 -> yellow)
        station("a-4", BEFORE, pm25=116.0),
    ]
    got = {d.sensors[0]: d for d in p.process(rs)}
    assert {k: (d.evidence["aqi"], d.level.label) for k, d in got.items()} == {
        "a-1": (210, "orange"), "a-2": (217, "orange"), "a-3": (350, "red"), "a-4": (152, "yellow")}
    assert got["a-1"].evidence["primary_pollutants"] == ["pm25"]
    assert got["a-2"].evidence["primary_pollutants"] == ["co"]


def test_stage_aqi_escalates_and_clears_per_station() -> None:
    p = DetectorPipeline([ThresholdStage()])
    seq = [50.0, 116.0, 160.0, 100.0, 40.0, 30.0, 20.0]  # AQI 72, 152, 210, 132, 58, 43, 29
    out = p.process([station("a-1", BEFORE + i * M, pm25=v) for i, v in enumerate(seq)])
    assert [(d.state, d.level.label, d.evidence["aqi"]) for d in out] == [
        ("raised", "yellow", 152), ("updated", "orange", 210), ("cleared", "orange", 29)]
    assert out[-1].evidence["peak"] == 210.0


def test_forced_rule_set_override() -> None:
    vals = {"pm25": 70.0}
    p = DetectorPipeline([ThresholdStage({"air.aqi_level": {"rule_set": "hj633_2026"}})])
    (d,) = p.process([station("a-1", BEFORE, **vals)])
    assert d.evidence["aqi"] == 110 and d.evidence["aqi_rules"] == "HJ 633-2026" and d.evidence["rule_set"] == "hj633_2026"
