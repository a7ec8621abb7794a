"""Incident rules on the simulated city: quiet on normal days, exactly one raised detection of the right kind on
the right asset for the matching scenario, not fooled by the look-alikes (a silent meter, a meter stuck at 0,
one spiky gauge, a temperature swing), and the same detections however the readings are batched or restored.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from detectors.health import Offline
from detectors.pipeline import DetectorPipeline
from detectors.rules import (
    BridgeDamage,
    BridgeOverload,
    FeederOutage,
    GasLeak,
    WaterBurst,
    WaterLeakMNF,
    default_rules,
)
from lifewatch.city import load_city, parse_city
from lifewatch.model import NS, Reading
from simulators.engine import Simulation
from simulators.scenarios import make_incident

T0 = 1_767_225_600 * NS  # 2026-01-01T00:00Z, 06:00 local
H = 3600 * NS
M = 60 * NS
D = 24 * H


@functools.cache
def city():
    return load_city()


@functools.cache
def simulate(assets: tuple, hours: float, incidents: tuple = (), seed: int = 11, sensors: tuple | None = None):
    incs = [make_incident(name, target, T0 + int(at_h * H), duration_s=dur, params=dict(params))
            for name, target, at_h, dur, params in incidents]
    chosen = list(sensors) if sensors else [s.id for a in assets for s in city().sensors_by_asset[a]]
    sim = Simulation(city(), seed=seed, start_ns=T0, incidents=incs, sensors=chosen)
    return sim.readings_between(T0, T0 + int(hours * H))


def run(stages, readings, batch=2500, sizes=None):
    pipe = DetectorPipeline(stages, city())
    out = []
    rng = np.random.default_rng(1)
    i = 0
    while i < len(readings):
        n = batch if sizes is None else int(sizes(rng))
        out += pipe.process(readings[i:i + n])
        i += n
    return out


def raised(dets):
    return [d for d in dets if d.state == "raised"]


def canon(dets):
    return [json.dumps(d.to_json(), sort_keys=True, default=str) for d in dets]


def one_raised(dets, rule, asset, min_sensors=2):
    r = raised(dets)
    assert [(d.detector, d.kind, d.asset) for d in r] == [(rule, rule, asset)], [(d.detector, d.asset) for d in r]
    d = r[0]
    assert set(d.sensors) <= {s.id for s in city().sensors_by_asset[asset]}
    assert len(d.sensors) >= min_sensors and d.evidence["source"]
    return d


# ---------------------------------------------------------------- water

DMAS = ("dma-d01-1", "dma-d01-2")


def test_water_burst_quiet_then_one_detection_on_the_burst_dma():
    assert run([WaterBurst()], simulate(DMAS, 72)) == []
    dets = run([WaterBurst()], simulate(DMAS, 72, (("water.burst", "dma-d01-2", 60.0, None, ()),)))
    d = one_raised(dets, "water_burst", "dma-d01-2")
    assert d.level.label == "orange" and 0 <= d.start_ns - (T0 + 60 * H) <= 5 * M
    assert set(d.sensors) == {s.id for s in city().sensors_by_asset["dma-d01-2"]}  # inlet and every logger
    ev = d.evidence
    assert ev["inlet_flow"] > ev["flow_baseline"] + ev["k_flow"] * ev["flow_spread"] and ev["pressures_low"] >= 2
    assert {m["sensor"] for m in ev["members"]} == set(d.sensors)
    assert any(x.state == "cleared" and 66 * H + T0 <= x.ts_ns <= 66.5 * H + T0 for x in dets)  # 6 h burst


def test_water_burst_not_raised_by_a_growing_leak_or_low_pressure():
    incs = (("water.leak", "dma-d01-1", 50.0, None, ()), ("water.low_pressure", "dma-d01-2", 60.0, None, ()))
    assert run([WaterBurst()], simulate(DMAS, 72, incs)) == []


def test_water_leak_mnf():
    inlets = ("w-d01-001", "w-d01-008")
    assert run([WaterLeakMNF()], simulate(DMAS, 17 * 24, sensors=inlets)) == []
    leak = (("water.leak", "dma-d01-1", 11 * 24.0, 5 * 86400.0, (("peak_flow", 15.0), ("growth_s", "2d"))),)
    dets = run([WaterLeakMNF()], simulate(DMAS, 17 * 24, leak, sensors=inlets))
    d = one_raised(dets, "water_leak", "dma-d01-1", min_sensors=1)  # the MNF reads the inlet only
    assert d.level.label == "yellow" and d.evidence["excess"] > d.evidence["gamma"]
    assert d.evidence["night"] == "2026-01-14"  # the first night with most of the leak
    assert [x.state for x in dets] == ["raised", "cleared"]  # ends after the leak ends (2026-01-17)


def test_water_leak_needs_its_history():
    # a DMA with a leak from the very first night and only 8 nights: no verdict (w = 10)
    leak = (("water.leak", "dma-d01-1", 0.0, 8 * 86400.0, (("peak_flow", 40.0), ("growth_s", "1h"))),)
    assert run([WaterLeakMNF()], simulate(DMAS, 8 * 24, leak, sensors=("w-d01-001",))) == []


# ---------------------------------------------------------------- power

FEEDERS = ("fdr-d01-1", "fdr-d01-2")


def test_feeder_outage_red_and_not_offline():
    stages = [FeederOutage(), Offline()]
    assert run(stages, simulate(FEEDERS, 24)) == []
    dets = run(stages, simulate(FEEDERS, 24, (("power.outage", "fdr-d01-2", 14.0, None, ()),)))
    d = one_raised(dets, "feeder_outage", "fdr-d01-2")
    assert d.level.label == "red" and d.evidence["meters_low"] == d.evidence["meters"] == 10
    assert 0 <= d.start_ns - (T0 + 14 * H) <= M and 60 * NS <= d.ts_ns - d.start_ns <= 2 * M
    assert [x.detector for x in dets] == ["feeder_outage", "feeder_outage"]  # no offline at all


@pytest.mark.parametrize("fault", [("fault.dropout", ()), ("fault.stuck", (("value", 0.0),)), ("power.sag", ())])
def test_feeder_outage_look_alikes(fault):
    name, params = fault
    target = "fdr-d01-1" if name == "power.sag" else "p-d01-005"
    dets = run([FeederOutage(), Offline()], simulate(FEEDERS, 20, ((name, target, 14.0, None, params),)))
    expected = [("offline", ("p-d01-005",))] if name == "fault.dropout" else []
    assert [(d.detector, d.sensors) for d in raised(dets)] == expected


# ---------------------------------------------------------------- gas

SEGMENTS = ("gas-d01-1", "gas-d01-2")


def test_gas_leak():
    assert run([GasLeak()], simulate(SEGMENTS, 48)) == []
    dets = run([GasLeak()], simulate(SEGMENTS, 48, (("gas.leak", "gas-d01-1", 40.0, None, ()),)))
    d = one_raised(dets, "gas_leak", "gas-d01-1")
    assert d.level.label == "orange" and d.start_ns - (T0 + 40 * H) < 10 * M
    assert d.evidence["wells_rising"] >= 2 and d.evidence["pressures_low"] >= 1
    upd = [x for x in dets if x.state == "updated"]
    assert [x.level.label for x in upd] == ["red"] and upd[0].evidence["max_lel"] >= 50.0  # GB/T 50493 level 2


def test_gas_leak_not_raised_by_overpressure_or_one_noisy_well():
    incs = (("gas.overpressure", "gas-d01-1", 40.0, None, ()), ("fault.spike", "g-d01-014", 40.0, None, ()),
            ("fault.drift", "g-d01-013", 30.0, None, ()))
    assert run([GasLeak()], simulate(SEGMENTS, 48, incs)) == []


# ---------------------------------------------------------------- bridges


def test_bridge_overload():
    assets = ("br-d01-1", "br-d02-1")
    assert run([BridgeOverload()], simulate(assets, 48)) == []
    dets = run([BridgeOverload()], simulate(assets, 48, (("bridge.overload", "br-d02-1", 40.0, None, ()),)))
    d = one_raised(dets, "bridge_overload", "br-d02-1")
    assert d.evidence["gauges_peaking"] >= 2 and d.evidence["peak_over_envelope"] > 2
    assert "b-d02-009" not in d.sensors or city().sensors["b-d02-009"].params.get("role") != "bearing"
    assert [x.state for x in dets] == ["raised", "cleared"]  # three lorries in 30 min: one detection


def test_bridge_overload_not_raised_by_one_spiky_gauge():
    target = next(s.id for s in city().sensors_by_asset["br-d01-1"] if s.kind == "strain_gauge")
    assert run([BridgeOverload()], simulate(("br-d01-1",), 48, (("fault.spike", target, 30.0, None, ()),))) == []


def test_bridge_damage():
    assert run([BridgeDamage()], simulate(("br-d01-1",), 5 * 24)) == []
    dets = run([BridgeDamage()], simulate(("br-d01-1",), 5 * 24, (("bridge.damage", "br-d01-1", 60.0, None, ()),)))
    d = one_raised(dets, "bridge_damage", "br-d01-1")
    assert d.evidence["worst_residual_pct"] < -3.0 and d.evidence["accelerometers_low"] == 2
    assert 10 * H <= d.ts_ns - (T0 + 60 * H) <= 13 * H  # ramp 6 h, then 6 h below -3 %


def test_bridge_damage_ignores_a_pure_temperature_swing():
    """Learn two mild days, then a 25 K heat wave: the frequency falls 3.75 %, as temperature says it must."""
    doc = {"name": "t", "units": {lid: {"id": lid, "name": lid} for lid in ("water", "power", "gas", "bridge", "air")},
           "districts": [{"id": "d", "name": "d", "lat": 0, "lon": 0}],
           "assets": [{"id": "br", "lifeline": "bridge", "type": "bridge", "district": "d"}],
           "sensors": [{"id": f"a{i}", "lifeline": "bridge", "kind": "accelerometer", "district": "d", "asset": "br",
                        "lat": 0, "lon": 0} for i in range(2)]
                      + [{"id": f"s{i}", "lifeline": "bridge", "kind": "strain_gauge", "district": "d", "asset": "br",
                          "lat": 0, "lon": 0} for i in range(3)]}
    rng = np.random.default_rng(4)

    def temp(i: int) -> float:
        return 5 + 4 * np.sin(2 * np.pi * i / 1440) + (25.0 * min(1.0, (i - 2880) / 1440) if i > 2880 else 0.0)

    rs = []
    for i in range(5 * 1440):
        T = temp(i)
        for j in range(3):
            rs.append(Reading("bridge", "d", f"s{j}", i * M + j, {"strain": 0.0, "temperature": T + 0.2 * rng.standard_normal()}))
        for j in range(2):
            f = 2.2 * (1 - 0.0015 * (temp(i - 30) - 10)) * (1 + 0.002 * rng.standard_normal())
            rs.append(Reading("bridge", "d", f"a{j}", i * M + 5 + j, {"frequency": f}))
    pipe = DetectorPipeline([BridgeDamage()], parse_city(doc))
    assert sum((pipe.process(rs[i:i + 5000]) for i in range(0, len(rs), 5000)), []) == []
    # the same swing with a 5 % loss of stiffness on top does alarm
    hurt = [Reading(r.lifeline, r.district, r.sensor_id, r.ts_ns,
                    {"frequency": r.values["frequency"] * 0.95} if "frequency" in r.values and r.ts_ns > 3 * D
                    else r.values) for r in rs]
    pipe = DetectorPipeline([BridgeDamage()], parse_city(doc))
    dets = sum((pipe.process(hurt[i:i + 5000]) for i in range(0, len(hurt), 5000)), [])
    assert [(d.state, d.asset) for d in dets] == [("raised", "br")]


# ---------------------------------------------------------------- batching and restore

MIXED_ASSETS = ("dma-d01-1", "fdr-d01-1", "gas-d01-1", "br-d01-1")
MIXED = (("water.burst", "dma-d01-1", 30.0, None, ()), ("power.outage", "fdr-d01-1", 33.0, None, ()),
         ("gas.leak", "gas-d01-1", 36.0, None, ()), ("bridge.overload", "br-d01-1", 38.0, None, ()))


@functools.cache
def mixed_reference():
    return run(default_rules(), simulate(MIXED_ASSETS, 42, MIXED))


def test_mixed_incidents_each_found_once():
    got = sorted((d.detector, d.asset) for d in raised(mixed_reference()))
    assert got == [("bridge_overload", "br-d01-1"), ("feeder_outage", "fdr-d01-1"), ("gas_leak", "gas-d01-1"),
                   ("water_burst", "dma-d01-1")]


@pytest.mark.parametrize("sizes", [lambda r: r.integers(1, 60), lambda r: r.integers(5000, 40000)])
def test_rules_batch_split_independent(sizes):
    assert canon(run(default_rules(), simulate(MIXED_ASSETS, 42, MIXED), sizes=sizes)) == canon(mixed_reference())


def test_rules_save_restore(tmp_path):
    rs = simulate(MIXED_ASSETS, 42, MIXED)
    cut = next(i for i, r in enumerate(rs) if r.ts_ns > T0 + 34 * H)  # inside the outage, after the burst began
    a = DetectorPipeline(default_rules(), city())
    first = sum((a.process(rs[i:min(i + 2500, cut)]) for i in range(0, cut, 2500)), [])
    a.save(tmp_path / "rules.npz")
    b = DetectorPipeline(default_rules(), city())
    b.load(tmp_path / "rules.npz")
    rest = sum((b.process(rs[i:i + 2500]) for i in range(cut, len(rs), 2500)), [])
    assert canon(first + rest) == canon(mixed_reference())


def test_rules_without_a_city_do_nothing():
    rs = simulate(("dma-d01-1",), 2)
    pipe = DetectorPipeline(default_rules(), None)
    assert pipe.process(rs) == []


def test_rule_state_is_bounded():
    for rule in default_rules():
        assert 0 < rule.state_bytes_per_stream() < 4096
        assert 0 < rule.state_bytes_per_asset() < 512


def test_restore_after_the_city_file_gained_an_asset(tmp_path):
    """State saved with one city keeps working when the city file later lists a new DMA first."""
    import dataclasses

    rs = simulate(DMAS, 72, (("water.burst", "dma-d01-2", 60.0, None, ()),))
    cut = next(i for i, r in enumerate(rs) if r.ts_ns > T0 + 50 * H)
    a = DetectorPipeline([WaterBurst()], city())
    first = a.process(rs[:cut])
    a.save(tmp_path / "s.npz")
    base = city()
    extra = dataclasses.replace(base.assets["dma-d01-1"], id="dma-new")
    grown = dataclasses.replace(base, assets={"dma-new": extra, **base.assets})
    b = DetectorPipeline([WaterBurst()], grown)
    b.load(tmp_path / "s.npz")
    rest = sum((b.process(rs[i:i + 5000]) for i in range(cut, len(rs), 5000)), [])
    assert first == [] and [(d.state, d.asset) for d in rest][:1] == [("raised", "dma-d01-2")]
    ref = run([WaterBurst()], rs)
    assert [(d.state, d.asset, d.start_ns, d.ts_ns) for d in rest] == [(d.state, d.asset, d.start_ns, d.ts_ns) for d in ref]


def test_bearing_seizure_on_the_simulated_city_and_quiet_on_a_temperature_swing():
    """A seized bearing (simulator) is raised once on the right bridge; normal days (thermal cycle) stay quiet."""
    from detectors.rules.bearing_seizure import BearingSeizure
    from lifewatch.city import load_city
    from lifewatch.model import NS
    from simulators.engine import Simulation
    from simulators.scenarios import make_incident

    c = load_city()
    bridge = [s for s in c.sensors.values() if s.asset == "br-d04-1"]
    t0 = 1_767_571_200 * NS  # 2026-01-05
    inc = make_incident("bridge.bearing_seizure", "br-d04-1", t0 + 3 * 86400 * NS, 3 * 86400)
    sim = Simulation(c, seed=5, start_ns=t0, incidents=[inc], sensors=[s.id for s in bridge])
    pipe = DetectorPipeline([BearingSeizure()], c)
    dets = []
    for day in range(6):
        dets += pipe.process(sim.readings_between(t0 + day * 86400 * NS, t0 + (day + 1) * 86400 * NS))
    raised = [d for d in dets if d.state == "raised"]
    assert raised, "no bearing seizure raised"
    assert {d.asset for d in raised} == {"br-d04-1"}
    assert all(d.start_ns >= inc.start_ns for d in raised)  # nothing during the three normal days
    assert all(set(d.sensors) <= set(sim.labels()[0]["sensors"]) for d in raised)
