"""ThresholdStage: every standard boundary, hysteresis, design shares, overrides, state.

The boundary tables below are typed from the standards (../shared/reference/
domain.md) and the settings documented in the lifeline YAML, independently of
the YAML the stage reads: if a number there drifts, these tests fail.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from detectors.decide import Hysteresis
from detectors.pipeline import DetectorPipeline
from detectors.standards import limits
from detectors.thresholds import ThresholdError, ThresholdStage
from lifewatch.city import City, parse_city
from lifewatch.lifelines import LIFELINE_IDS, load_lifelines
from lifewatch.model import Reading

S = 10**9
M = 60 * S

CITY_DOC = {
    "name": "Testville",
    "units": {lid: {"id": f"u-{lid}", "name": lid} for lid in LIFELINE_IDS},
    "districts": [{"id": "d01", "name": "One", "lat": 44.3, "lon": 86.0}],
    "assets": [
        {"id": "br-1", "lifeline": "bridge", "type": "bridge", "district": "d01",
         "params": {"strain_design": 380.0, "deflection_design": 70.0, "tilt_design": 0.1}},
        {"id": "br-2", "lifeline": "bridge", "type": "bridge", "district": "d01", "params": {"strain_design": 500.0}},
        {"id": "gas-1", "lifeline": "gas", "type": "segment", "district": "d01", "params": {}},
        {"id": "tunnel-1", "lifeline": "gas", "type": "tunnel", "district": "d01",
         "params": {"threshold_rule_sets": {"methane_lel": "utility_tunnel"}}},
    ],
    "sensors": [
        {"id": "b-1", "lifeline": "bridge", "kind": "strain_gauge", "district": "d01", "asset": "br-1", "lat": 0, "lon": 0},
        {"id": "b-2", "lifeline": "bridge", "kind": "displacement", "district": "d01", "asset": "br-1", "lat": 0, "lon": 0},
        {"id": "b-3", "lifeline": "bridge", "kind": "inclinometer", "district": "d01", "asset": "br-1", "lat": 0, "lon": 0},
        {"id": "b-4", "lifeline": "bridge", "kind": "strain_gauge", "district": "d01", "asset": "br-2", "lat": 0, "lon": 0},
        {"id": "b-5", "lifeline": "bridge", "kind": "strain_gauge", "district": "d01", "asset": "br-2", "lat": 0, "lon": 0,
         "params": {"strain_design": 200.0}},
        {"id": "g-1", "lifeline": "gas", "kind": "well_methane", "district": "d01", "asset": "gas-1", "lat": 0, "lon": 0},
        {"id": "g-2", "lifeline": "gas", "kind": "well_methane", "district": "d01", "asset": "tunnel-1", "lat": 0, "lon": 0},
        {"id": "g-3", "lifeline": "gas", "kind": "well_methane", "district": "d01", "asset": "gas-1", "lat": 0, "lon": 0,
         "params": {"threshold_rule_sets": {"methane_lel": "no_such_set"}}},
    ],
}
CITY = parse_city(CITY_DOC)


def level_of(kind: str, lifeline: str, metric: str, value: float, *, sensor: str = "s-x", overrides: dict | None = None,
             city: City | None = None) -> str | None:
    """The level a fresh stream raises on three equal readings 60 s apart (None: no detection of that kind).

    Three, because the voltage deviations ask for 3 consecutive readings (``min_points``).
    """
    p = DetectorPipeline([ThresholdStage(overrides)], city)
    rs = [Reading(lifeline, "d01", sensor, i * M, {metric: value}) for i in range(3)]
    out = [d for d in p.process(rs) if d.kind == kind and d.state == "raised"]
    assert len(out) <= 1
    return out[0].level.label if out else None


# (kind, lifeline, metric, value, expected level): values just inside and just outside every boundary
BOUNDARIES = [
    # water: end pressure >= 0.14 MPa (城镇供水服务 §3.3.1 / CJJ 58-2007 §3.1.3)
    ("end_pressure_low", "water", "pressure", 0.14, None),
    ("end_pressure_low", "water", "pressure", 0.1399, "yellow"),
    ("supply_interruption", "water", "pressure", 0.05, None),
    ("supply_interruption", "water", "pressure", 0.0499, "orange"),
    # 220 V: GB/T 12325 +7 % / -10 % (235.4 / 198 V); orange EN 50160 +10 / -15 % (242 / 187); red 0.8 / 1.2 pu
    ("voltage_deviation_lv", "power", "voltage", 235.4, None),
    ("voltage_deviation_lv", "power", "voltage", 235.41, "yellow"),
    ("voltage_deviation_lv", "power", "voltage", 198.0, None),
    ("voltage_deviation_lv", "power", "voltage", 197.99, "yellow"),
    ("voltage_deviation_lv", "power", "voltage", 242.0, "yellow"),
    ("voltage_deviation_lv", "power", "voltage", 242.01, "orange"),
    ("voltage_deviation_lv", "power", "voltage", 187.0, "yellow"),
    ("voltage_deviation_lv", "power", "voltage", 186.99, "orange"),
    ("voltage_deviation_lv", "power", "voltage", 264.0, "orange"),
    ("voltage_deviation_lv", "power", "voltage", 264.01, "red"),
    ("voltage_deviation_lv", "power", "voltage", 176.0, "orange"),
    ("voltage_deviation_lv", "power", "voltage", 175.99, "red"),
    # 10 kV: GB/T 12325 +/-7 % (9.3-10.7 kV); orange 0.9 / 1.1 pu; red 0.8 / 1.2 pu
    ("voltage_deviation_mv", "power", "voltage_kv", 10.7, None),
    ("voltage_deviation_mv", "power", "voltage_kv", 10.701, "yellow"),
    ("voltage_deviation_mv", "power", "voltage_kv", 9.3, None),
    ("voltage_deviation_mv", "power", "voltage_kv", 9.299, "yellow"),
    ("voltage_deviation_mv", "power", "voltage_kv", 11.0, "yellow"),
    ("voltage_deviation_mv", "power", "voltage_kv", 11.001, "orange"),
    ("voltage_deviation_mv", "power", "voltage_kv", 9.0, "yellow"),
    ("voltage_deviation_mv", "power", "voltage_kv", 8.999, "orange"),
    ("voltage_deviation_mv", "power", "voltage_kv", 12.0, "orange"),
    ("voltage_deviation_mv", "power", "voltage_kv", 12.001, "red"),
    ("voltage_deviation_mv", "power", "voltage_kv", 8.0, "orange"),
    ("voltage_deviation_mv", "power", "voltage_kv", 7.999, "red"),
    # frequency: GB/T 15945 +/-0.2 Hz; +/-0.5 Hz next; red EN 50160 47 / 52 Hz
    ("frequency_deviation", "power", "frequency", 50.2, None),
    ("frequency_deviation", "power", "frequency", 50.201, "yellow"),
    ("frequency_deviation", "power", "frequency", 49.8, None),
    ("frequency_deviation", "power", "frequency", 49.799, "yellow"),
    ("frequency_deviation", "power", "frequency", 50.5, "yellow"),
    ("frequency_deviation", "power", "frequency", 50.501, "orange"),
    ("frequency_deviation", "power", "frequency", 49.5, "yellow"),
    ("frequency_deviation", "power", "frequency", 49.499, "orange"),
    ("frequency_deviation", "power", "frequency", 52.0, "orange"),
    ("frequency_deviation", "power", "frequency", 52.001, "red"),
    ("frequency_deviation", "power", "frequency", 47.0, "orange"),
    ("frequency_deviation", "power", "frequency", 46.999, "red"),
    # transformer hot-spot: IEC 60076-7 98 / 120 / 140 / 160 degC
    ("transformer_hotspot", "power", "hotspot_temp", 98.0, None),
    ("transformer_hotspot", "power", "hotspot_temp", 98.01, "blue"),
    ("transformer_hotspot", "power", "hotspot_temp", 120.0, "blue"),
    ("transformer_hotspot", "power", "hotspot_temp", 120.01, "yellow"),
    ("transformer_hotspot", "power", "hotspot_temp", 140.0, "yellow"),
    ("transformer_hotspot", "power", "hotspot_temp", 140.01, "orange"),
    ("transformer_hotspot", "power", "hotspot_temp", 160.0, "orange"),
    ("transformer_hotspot", "power", "hotspot_temp", 160.01, "red"),
    # methane: 10 % LEL pre-alarm (setting); GB/T 50493 25 % / 50 % LEL (alarm AT the set-point)
    ("methane_lel", "gas", "ch4_lel", 9.99, None),
    ("methane_lel", "gas", "ch4_lel", 10.0, "blue"),
    ("methane_lel", "gas", "ch4_lel", 24.99, "blue"),
    ("methane_lel", "gas", "ch4_lel", 25.0, "orange"),
    ("methane_lel", "gas", "ch4_lel", 49.99, "orange"),
    ("methane_lel", "gas", "ch4_lel", 50.0, "red"),
    # gas overpressure: medium-pressure B upper bound 0.2 MPa = 200 kPa
    ("overpressure", "gas", "pressure", 200.0, None),
    ("overpressure", "gas", "pressure", 200.01, "orange"),
    # bridge, sensor not in a city: default design values (settings) 400 ustrain, 60 mm, 0.1 deg
    ("strain_design_share", "bridge", "strain", 279.9, None),  # 0.7 x 400 = 280
    ("strain_design_share", "bridge", "strain", 280.0, "yellow"),
    ("strain_design_share", "bridge", "strain", -280.0, "yellow"),  # compression counts
    ("deflection_design_share", "bridge", "deflection", 41.99, None),  # 0.7 x 60 = 42
    ("deflection_design_share", "bridge", "deflection", 42.0, "yellow"),
    ("deflection_design_share", "bridge", "deflection", 50.99, "yellow"),  # 0.85 x 60 = 51
    ("deflection_design_share", "bridge", "deflection", 51.0, "orange"),
    ("tilt_design_share", "bridge", "tilt", 0.0999, "orange"),
    ("tilt_design_share", "bridge", "tilt", 0.1, "red"),
]


@pytest.mark.parametrize(("kind", "lifeline", "metric", "value", "expected"), BOUNDARIES)
def test_standard_boundaries(kind: str, lifeline: str, metric: str, value: float, expected: str | None) -> None:
    assert level_of(kind, lifeline, metric, value) == expected


@pytest.mark.parametrize(
    ("kind", "lifeline", "metric", "value", "rule_set", "expected"),
    [
        # GB/T 15945 small-capacity systems: +/-0.5 Hz is the compliance band, no orange band
        ("frequency_deviation", "power", "frequency", 50.5, "small_system", None),
        ("frequency_deviation", "power", "frequency", 50.501, "small_system", "yellow"),
        ("frequency_deviation", "power", "frequency", 49.499, "small_system", "yellow"),
        ("frequency_deviation", "power", "frequency", 47.0, "small_system", "yellow"),
        ("frequency_deviation", "power", "frequency", 46.999, "small_system", "red"),
        # GB 50838 utility-tunnel gas cabin: 20 % / 35 % LEL
        ("methane_lel", "gas", "ch4_lel", 19.99, "utility_tunnel", "blue"),
        ("methane_lel", "gas", "ch4_lel", 20.0, "utility_tunnel", "orange"),
        ("methane_lel", "gas", "ch4_lel", 34.99, "utility_tunnel", "orange"),
        ("methane_lel", "gas", "ch4_lel", 35.0, "utility_tunnel", "red"),
        # IEC 60076-7 thermally upgraded paper: 110 degC at rated load
        ("transformer_hotspot", "power", "hotspot_temp", 110.0, "upgraded_paper", None),
        ("transformer_hotspot", "power", "hotspot_temp", 110.01, "upgraded_paper", "blue"),
        ("transformer_hotspot", "power", "hotspot_temp", 120.01, "upgraded_paper", "yellow"),
    ],
)
def test_alternative_rule_sets(kind: str, lifeline: str, metric: str, value: float, rule_set: str, expected: str | None) -> None:
    assert level_of(kind, lifeline, metric, value, overrides={f"{lifeline}.{kind}": {"rule_set": rule_set}}) == expected


def test_yaml_defaults_equal_the_cited_standard_constants() -> None:
    ll = load_lifelines()
    th = {f"{lid}.{t.name}": t for lid, L in ll.items() for t in L.thresholds}
    assert th["water.end_pressure_low"].levels["yellow"] == limits.CJJ58_END_PRESSURE_MIN_MPA == 0.14
    assert tuple(th["power.voltage_deviation_lv"].levels["yellow"]) == limits.GBT12325_220V_PCT == (-10.0, 7.0)
    assert tuple(th["power.voltage_deviation_lv"].levels["orange"]) == limits.EN50160_LV_ALWAYS_PCT
    assert tuple(th["power.voltage_deviation_mv"].levels["yellow"]) == limits.GBT12325_LE20KV_PCT == (-7.0, 7.0)
    assert th["power.voltage_deviation_lv"].nominal == limits.NOMINAL_LV_V
    assert th["power.voltage_deviation_mv"].nominal == limits.NOMINAL_MV_KV
    f = th["power.frequency_deviation"]
    assert tuple(f.levels["yellow"]) == (-limits.GBT15945_HZ, limits.GBT15945_HZ)
    assert tuple(f.levels["orange"]) == (-limits.GBT15945_SMALL_SYSTEM_HZ, limits.GBT15945_SMALL_SYSTEM_HZ)
    assert tuple(f.levels["red"]) == limits.EN50160_FREQ_ALWAYS_HZ
    assert tuple(f.rule_sets["small_system"]["levels"]["yellow"]) == (-0.5, 0.5)
    h = th["power.transformer_hotspot"].levels
    assert (h["blue"], h["yellow"], h["orange"], h["red"]) == (
        limits.IEC60076_HOTSPOT_RATED_C, limits.IEC60076_HOTSPOT_NORMAL_CYCLIC_C,
        limits.IEC60076_HOTSPOT_LONG_EMERGENCY_C, limits.IEC60076_HOTSPOT_SHORT_EMERGENCY_C) == (98.0, 120.0, 140.0, 160.0)
    g = th["gas.methane_lel"]
    assert (g.levels["blue"], g.levels["orange"], g.levels["red"]) == (
        limits.GB6222_LOW_LEL, limits.GBT50493_LEVEL1_LEL, limits.GBT50493_LEVEL2_LEL) == (10.0, 25.0, 50.0)
    assert (g.rule_sets["utility_tunnel"]["levels"]["orange"], g.rule_sets["utility_tunnel"]["levels"]["red"]) == (
        limits.GB50838_ALARM_LEL, limits.GB50838_SHUTOFF_LEL) == (20.0, 35.0)


def test_every_level_has_a_source() -> None:
    for lid, L in load_lifelines().items():
        for t in L.thresholds:
            assert t.source.strip(), (lid, t.name)
            for name, s in t.rule_sets.items():
                assert (s.get("source") or t.source).strip(), (lid, t.name, name)
            for level in t.level_sources:
                assert level in t.levels, (lid, t.name, level)


# ---- hysteresis


def test_pressure_flapping_around_0_14_gives_one_condition() -> None:
    rng = np.random.default_rng(3)
    x = 0.14 + np.where(np.arange(200) % 2 == 0, -1, 1) * rng.uniform(0.0005, 0.002, 200)  # below, above, below...
    x = np.concatenate([[0.30], x, [0.30, 0.30, 0.30]])
    rs = [Reading("water", "d01", "w-1", i * M, {"pressure": float(v)}) for i, v in enumerate(x)]
    out = [d for d in DetectorPipeline([ThresholdStage()]).process(rs) if d.kind == "end_pressure_low"]
    # the last flap (index 200) is above 0.14: with 201 and 202 that makes the 3 normal readings that clear
    assert [(d.state, d.ts_ns // M) for d in out] == [("raised", 1), ("cleared", 202)]
    assert out[1].evidence["peak"] == pytest.approx(float(x[1:201].min()))
    assert out[1].evidence["peak_is"] == "lowest value"


def test_voltage_deviation_needs_three_readings_short_dips_are_ieee1159() -> None:
    volts = [221.0, 132.0, 222.0, 221.0, 132.0, 132.0, 132.0, 221.0]  # a 1-reading sag, then 3 readings at 0.6 pu
    rs = [Reading("power", "d01", "m-1", i * M, {"voltage": v}) for i, v in enumerate(volts)]
    out = DetectorPipeline([ThresholdStage()]).process(rs)
    dev = [(d.state, d.level.label, d.ts_ns // M, d.start_ns // M) for d in out if d.kind == "voltage_deviation_lv"]
    assert dev == [("raised", "red", 6, 4)]  # starts at the first of the three
    assert [(d.state, d.ts_ns // M) for d in out if d.kind == "ieee1159_lv"][:2] == [("raised", 1), ("cleared", 2)]


def test_min_and_clear_points_are_params() -> None:
    x = [0.10, 0.30, 0.10, 0.10, 0.30, 0.30]
    rs = [Reading("water", "d01", "w-1", i * M, {"pressure": v}) for i, v in enumerate(x)]
    st = ThresholdStage({"water.end_pressure_low": {"params": {"min_points": 2, "clear_points": 2}}})
    out = [d for d in DetectorPipeline([st]).process(rs) if d.kind == "end_pressure_low"]
    assert [(d.state, d.ts_ns // M, d.start_ns // M) for d in out] == [("raised", 3, 2), ("cleared", 5, 2)]


# ---- bridges: design values from the city


def test_bridge_design_shares_use_the_asset_params() -> None:
    """br-1: strain_design 380, deflection_design 70, tilt_design 0.1 -> levels at 0.7 / 0.85 / 1.0 of them."""
    cases = [
        ("strain_design_share", "b-1", "strain", 265.9, None),  # 0.7 x 380 = 266
        ("strain_design_share", "b-1", "strain", 266.0, "yellow"),
        ("strain_design_share", "b-1", "strain", 322.9, "yellow"),  # 0.85 x 380 = 323
        ("strain_design_share", "b-1", "strain", 323.0, "orange"),
        ("strain_design_share", "b-1", "strain", 379.9, "orange"),
        ("strain_design_share", "b-1", "strain", 380.0, "red"),
        ("strain_design_share", "b-1", "strain", -323.0, "orange"),
        ("deflection_design_share", "b-2", "deflection", 48.9, None),  # 0.7 x 70 = 49
        ("deflection_design_share", "b-2", "deflection", 49.0, "yellow"),
        ("deflection_design_share", "b-2", "deflection", 59.5, "orange"),  # 0.85 x 70
        ("deflection_design_share", "b-2", "deflection", 70.0, "red"),
        ("tilt_design_share", "b-3", "tilt", 0.0699, None),
        ("tilt_design_share", "b-3", "tilt", 0.07, "yellow"),
        ("tilt_design_share", "b-3", "tilt", -0.085, "orange"),
        # br-2: strain_design 500 -> 350 / 425 / 500
        ("strain_design_share", "b-4", "strain", 349.9, None),
        ("strain_design_share", "b-4", "strain", 350.0, "yellow"),
        ("strain_design_share", "b-4", "strain", 425.0, "orange"),
        # b-5 carries its own strain_design 200 (sensor params beat the asset's)
        ("strain_design_share", "b-5", "strain", 140.0, "yellow"),
    ]
    for kind, sensor, metric, value, expected in cases:
        assert level_of(kind, "bridge", metric, value, sensor=sensor, city=CITY) == expected, (sensor, value)


def test_bridge_evidence_names_the_design_value_and_its_origin() -> None:
    p = DetectorPipeline([ThresholdStage()], CITY)
    (d,) = p.process([Reading("bridge", "d01", "b-1", 0, {"strain": 330.0})])
    ev = d.evidence
    assert (d.asset, d.level.label, ev["design"], ev["design_from"]) == ("br-1", "orange", 380.0, "asset br-1 strain_design")
    assert ev["crossed"] == {"yellow": 266.0, "orange": 323.0} and ev["limits"]["red"] == 380.0
    assert ev["design_share"] == pytest.approx(330 / 380, abs=1e-6)
    assert "JT/T 1037-2022" in ev["source"]


def test_bridge_design_share_override() -> None:
    ov = {"bridge.strain_design_share": {"levels": {"yellow": 0.5}}}
    assert level_of("strain_design_share", "bridge", "strain", 190.0, sensor="b-1", city=CITY, overrides=ov) == "yellow"
    assert level_of("strain_design_share", "bridge", "strain", 189.9, sensor="b-1", city=CITY, overrides=ov) is None


# ---- per-sensor rule sets (from asset or sensor params)


def test_asset_selects_the_utility_tunnel_rule_set() -> None:
    assert level_of("methane_lel", "gas", "ch4_lel", 22.0, sensor="g-1", city=CITY) == "blue"
    assert level_of("methane_lel", "gas", "ch4_lel", 22.0, sensor="g-2", city=CITY) == "orange"
    p = DetectorPipeline([ThresholdStage()], CITY)
    (d,) = p.process([Reading("gas", "d01", "g-2", 0, {"ch4_lel": 36.0})])
    assert d.level.label == "red" and d.evidence["rule_set"] == "utility_tunnel" and "GB 50838" in d.evidence["level_source"]
    with pytest.raises(ThresholdError, match="no_such_set"):
        level_of("methane_lel", "gas", "ch4_lel", 1.0, sensor="g-3", city=CITY)
    with pytest.raises(ThresholdError, match="sensor g-3 asks for unknown rule set 'no_such_set'"):
        ThresholdStage().check_city(CITY)  # at start-up, before any reading
    good = parse_city({**CITY_DOC, "sensors": [s for s in CITY_DOC["sensors"] if s["id"] != "g-3"]})
    ThresholdStage().check_city(good)


# ---- overrides


def test_overrides_change_the_numbers() -> None:
    ov = {"water.end_pressure_low": {"levels": {"yellow": 0.15, "orange": 0.12}}}
    assert level_of("end_pressure_low", "water", "pressure", 0.145) is None
    assert level_of("end_pressure_low", "water", "pressure", 0.145, overrides=ov) == "yellow"
    assert level_of("end_pressure_low", "water", "pressure", 0.119, overrides=ov) == "orange"
    p = DetectorPipeline([ThresholdStage(ov)])
    (d,) = [d for d in p.process([Reading("water", "d01", "w", 0, {"pressure": 0.145})]) if d.kind == "end_pressure_low"]
    assert d.evidence["overrides"] == ["levels.yellow", "levels.orange"] and d.evidence["crossed"] == {"yellow": 0.15}
    # a level removed, nominal and params changed
    assert level_of("frequency_deviation", "power", "frequency", 50.3,
                    overrides={"power.frequency_deviation": {"levels": {"yellow": None}}}) is None
    assert level_of("voltage_deviation_lv", "power", "voltage", 240.0) == "yellow"  # +9.1 % of 220 V
    assert level_of("voltage_deviation_lv", "power", "voltage", 240.0,
                    overrides={"power.voltage_deviation_lv": {"nominal": 230.0}}) is None  # +4.3 % of 230 V
    assert level_of("ieee1159_lv", "power", "voltage", 20.0,
                    overrides={"power.ieee1159_lv": {"params": {"interruption_pu": 0.01}}}) == "blue"  # a sag now


def test_disable_and_define_thresholds_by_override() -> None:
    assert level_of("end_pressure_low", "water", "pressure", 0.1, overrides={"water.end_pressure_low": {"enabled": False}}) is None
    ov = {"water.flow_high": {"metric": "flow", "op": ">", "levels": {"blue": 1000.0}, "source": "utility setting"}}
    assert level_of("flow_high", "water", "flow", 1000.5, overrides=ov) == "blue"
    assert level_of("flow_high", "water", "flow", 999.0, overrides=ov) is None


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"water.end_pressure_low": {"levls": {"yellow": 0.1}}}, "unknown keys"),
        ({"water.no_such": {"levels": {"yellow": 0.1}}}, "defines a new one"),
        ({"sewer.x": {"metric": "flow"}}, "lifeline"),
        ({"water.end_pressure_low": {"rule_set": "nope"}}, "unknown rule set"),
        ({"water.end_pressure_low": {"levels": {"yellow": 0.1, "orange": 0.2}}}, "lower with severity"),
        ({"power.voltage_deviation_lv": {"levels": {"orange": [-5.0, 5.0]}}}, "must contain the milder band"),
        ({"power.voltage_deviation_lv": {"levels": {"yellow": 7.0}}}, r"\[lo, hi\]"),
        ({"water.end_pressure_low": {"levels": {"purple": 0.1}}}, "unknown levels"),
        ({"power.ieee1159_lv": {"levels": {"red": ["sustained_interruption", "blackout"]}}}, "unknown IEEE 1159 category"),
        ({"power.ieee1159_lv": {"params": {"sag_pu": 1.05}}}, "sag_pu < 1"),
        ({"water.flow_high": {"metric": "speed", "op": ">", "levels": {"blue": 1.0}, "source": "x"}}, "not a water metric"),
    ],
)
def test_bad_configuration_fails_at_construction(overrides: dict, match: str) -> None:
    with pytest.raises(ThresholdError, match=match):
        ThresholdStage(overrides)


# ---- evidence, batching, state


def test_evidence_carries_value_limits_nominal_source_and_rule_set() -> None:
    p = DetectorPipeline([ThresholdStage()])
    rs = [Reading("power", "d01", "m", i * M, {"voltage": v}) for i, v in enumerate([240.0, 239.0, 238.0])]
    (d,) = [d for d in p.process(rs) if d.kind == "voltage_deviation_lv"]
    ev = d.evidence
    assert (d.detector, d.lifeline, d.metric, d.level.label) == ("threshold", "power", "voltage", "yellow")
    assert ev["value"] == 238.0 and ev["nominal"] == 220.0 and ev["crossed"] == {"yellow": 235.4}
    # the condition's peak counts from its first abnormal reading (240 V), not from the raising one (238 V)
    assert d.start_ns == 0 and d.ts_ns == 2 * M and ev["peak"] == pytest.approx(20.0)
    assert ev["limits"] == {"yellow": [198.0, 235.4], "orange": [187.0, 242.0], "red": [176.0, 264.0]}
    assert ev["rule_set"] == "gbt12325_220v" and ev["level_source"].startswith("GB/T 12325-2008")
    assert ev["deviation_pct"] == pytest.approx(8.181818, abs=1e-6)


def mixed_readings(n: int = 400) -> list[Reading]:
    rng = np.random.default_rng(11)
    out = []
    for i in range(n):
        t = i * 10 * S
        out.append(Reading("water", "d01", f"w-{i % 3}", t, {"pressure": float(0.14 + rng.normal(0, 0.03))}))
        out.append(Reading("power", "d01", f"m-{i % 2}", t,
                           {"voltage": float(rng.choice([0.0, 187.0, 220.0, 220.0, 220.0, 250.0])), "load": 1.0}))
        out.append(Reading("power", "d01", "f-1", t, {"voltage_kv": float(10 + rng.normal(0, 0.6)),
                                                      "frequency": float(50 + rng.normal(0, 0.3))}))
        out.append(Reading("gas", "d01", "g-1", t, {"ch4_lel": float(abs(rng.normal(15, 15)))}))
        out.append(Reading("bridge", "d01", "b-1", t, {"strain": float(rng.normal(200, 80)), "temperature": 3.0}))
        out.append(Reading("air", "d01", "a-1", t, {"pm25": float(abs(rng.normal(120, 60))), "pm10": float(abs(rng.normal(150, 60))),
                                                    "so2": None, "o3": float(abs(rng.normal(100, 50)))}))
    return out


def run(readings: list[Reading], batch: int) -> list[dict]:
    p = DetectorPipeline([ThresholdStage()], CITY)
    out = []
    for i in range(0, len(readings), batch):
        out.extend(d.to_json() for d in p.process(readings[i:i + batch]))
    return out


def test_results_do_not_depend_on_batch_size() -> None:
    rs = mixed_readings()
    whole = run(rs, len(rs))
    assert len(whole) > 100 and {d["kind"] for d in whole} >= {
        "end_pressure_low", "voltage_deviation_lv", "ieee1159_lv", "voltage_deviation_mv", "frequency_deviation",
        "methane_lel", "strain_design_share", "aqi_level"}
    key = lambda d: (d["ts_ns"], d["kind"], d["sensors"][0], d["state"])  # noqa: E731 - within one ts the stage order may differ
    for batch in (1, 7, 250):
        assert sorted(run(rs, batch), key=key) == sorted(whole, key=key), batch


def test_save_and_restore_resume_exactly(tmp_path: Path) -> None:
    rs = mixed_readings(300)
    whole = run(rs, len(rs))
    cut = 5 * 150 + 3  # mid-way, inside a round of readings
    p1 = DetectorPipeline([ThresholdStage()], CITY)
    first = [d.to_json() for d in p1.process(rs[:cut])]
    p1.save(tmp_path / "state.npz")
    p2 = DetectorPipeline([ThresholdStage()], CITY)
    p2.load(tmp_path / "state.npz")
    second = [d.to_json() for d in p2.process(rs[cut:])]
    key = lambda d: (d["ts_ns"], d["kind"], d["sensors"][0], d["state"])  # noqa: E731
    assert sorted(first + second, key=key) == sorted(whole, key=key)


def test_state_bytes_per_stream() -> None:
    st = ThresholdStage()
    by = st.state_bytes_by_metric()
    # hysteresis 42 bytes + profile id 4 per threshold, + 4 for the metric-local slot; IEEE runs 7 x 8 bytes
    h = Hysteresis(1, 1).state_bytes_per_slot()  # per (stream, threshold)
    assert by["water.pressure"] == 4 + 2 * (h + 4)
    assert by["power.voltage"] == 4 + 2 * (h + 4) + 56  # two hysteresis-backed thresholds + the IEEE 1159 rule's state
    assert by["air.aqi"] == 4 + (h + 4)
    assert st.state_bytes_per_stream() == by["power.voltage"]  # the worst metric
