"""Every scenario produces its documented signature, and its ground-truth label."""

from __future__ import annotations

import numpy as np
import pytest

from lifewatch.model import NS, format_ts
from simulators.engine import Simulation
from simulators.scenarios import SCENARIOS, ScenarioError, list_scenarios, make_incident

from ._util import H, aqi, local_day

T0 = local_day("2026-01-15")
REQUIRED = {
    "water.leak", "water.burst", "water.low_pressure", "power.sag", "power.outage", "power.overload",
    "power.frequency", "gas.leak", "gas.overpressure", "bridge.overload", "bridge.damage", "bridge.bearing_seizure",
    "air.inversion", "air.dust", "fault.stuck", "fault.drift", "fault.spike", "fault.dropout", "fault.clock_skew",
}


def pair(city, name, target, start, dur_s=None, params=None, sensors=None):
    inc = make_incident(name, target, start, dur_s, params)
    sim = Simulation(city, seed=1, start_ns=T0, incidents=[inc], sensors=sensors)
    base = Simulation(city, seed=1, start_ns=T0, sensors=sensors)
    return inc, sim, base, sim.labels()[0]


def kinds(city, ids, kind):
    return [i for i in ids if city.sensors[i].kind == kind]


def test_registry_has_every_scenario_with_documentation():
    assert REQUIRED <= set(SCENARIOS)
    for row in list_scenarios():
        cls = SCENARIOS[row["name"]]
        doc = cls.__doc__ or ""
        assert "Signature" in doc and "Params" in doc and "domain.md" in doc, row["name"]
        assert row["summary"] and row["default_duration"]


def test_label_shape(city):
    inc, sim, _, lab = pair(city, "water.burst", "dma-d01-1", T0 + H, 7200)
    assert lab == {"scenario": "water.burst", "target": "dma-d01-1",
                   "sensors": [s.id for s in city.sensors_by_asset["dma-d01-1"]],
                   "start": format_ts(T0 + H), "end": format_ts(T0 + 3 * H)}


def test_bad_targets_and_parameters_are_refused(city):
    for name, target, params in [("water.burst", "fdr-d01-1", None), ("water.burst", "nope", None),
                                 ("water.burst", "dma-d01-1", {"diameter": 3}), ("fault.stuck", "dma-d01-1", None),
                                 ("power.sag", "fdr-d01-1", {"depth": 1.5})]:
        with pytest.raises(ScenarioError):
            Simulation(city, seed=1, start_ns=T0, incidents=[make_incident(name, target, T0, 60, params)])
    with pytest.raises(ScenarioError):
        make_incident("no.such", "x", T0)


# ---------------------------------------------------------------- water


def test_water_burst_step_in_flow_and_pressure_largest_nearest(city):
    start = T0 + 10 * H
    inc, sim, base, lab = pair(city, "water.burst", "w-d01-004", start)
    inlet = kinds(city, lab["sensors"], "dma_inlet")[0]
    a = sim.series(inlet, start - H, start + H)
    b = base.series(inlet, start - H, start + H)
    before, after = a.event_ns < start, a.event_ns >= start + 120 * NS
    d = a.values["flow"] - b.values["flow"]
    assert np.all(d[before] == 0) and np.all(d[after] > 80)  # ~89 m3/h through a 40 mm hole
    drops = {}
    for sid in kinds(city, lab["sensors"], "pressure"):
        a, b = sim.series(sid, start + 300 * NS, start + H), base.series(sid, start + 300 * NS, start + H)
        drops[sid] = float((b.values["pressure"] - a.values["pressure"]).mean())
    assert min(drops.values()) > 0.01
    assert max(drops, key=drops.get) == "w-d01-004"  # the burst location
    # within minutes: the first inlet sample after the opening is already up
    a = sim.series(inlet, start, start + 300 * NS)
    b = base.series(inlet, start, start + 300 * NS)
    assert (a.values["flow"] - b.values["flow"])[1] > 40


def test_water_leak_grows_and_raises_mnf(city):
    start = T0
    inc, sim, base, lab = pair(city, "water.leak", "dma-d02-1", start, 3 * 86400)
    inlet = kinds(city, lab["sensors"], "dma_inlet")[0]
    a, b = sim.series(inlet, start, inc.end_ns), base.series(inlet, start, inc.end_ns)
    extra = a.values["flow"] - b.values["flow"]
    assert extra[:60].mean() < 1.0 and abs(extra[-60:].mean() - 15.0) < 0.5
    assert np.all(np.diff(extra[::60]) > -0.05)
    day = (a.event_ns - start) // (86400 * NS)
    mnf = [a.values["flow"][day == i].min() - b.values["flow"][day == i].min() for i in range(3)]
    assert mnf[0] < mnf[1] < mnf[2]
    logger = kinds(city, lab["sensors"], "pressure")[0]
    pa, pb = sim.series(logger, inc.end_ns - H, inc.end_ns), base.series(logger, inc.end_ns - H, inc.end_ns)
    assert 0 < (pb.values["pressure"] - pa.values["pressure"]).mean() < 0.01


def test_water_low_pressure_below_014(city):
    start = T0 + 8 * H
    inc, sim, _, lab = pair(city, "water.low_pressure", "dma-d03-2", start)
    for sid in lab["sensors"]:
        a = sim.series(sid, start + 900 * NS, inc.end_ns)
        assert a.values["pressure"].max() < 0.14


# ---------------------------------------------------------------- power


def test_power_sag_on_all_meters_of_the_feeder(city):
    start = T0 + 10 * H
    inc, sim, base, lab = pair(city, "power.sag", "fdr-d01-1", start, 20, {"depth": 0.5})
    meters = kinds(city, lab["sensors"], "meter")
    assert len(meters) == 10 and kinds(city, lab["sensors"], "feeder_head")
    for sid in meters:
        a, b = sim.series(sid, start - 300 * NS, start + 300 * NS), base.series(sid, start - 300 * NS, start + 300 * NS)
        ratio = a.values["voltage"] / b.values["voltage"]
        assert 1 <= np.sum(np.isclose(ratio, 0.5, atol=0.01)) <= 2 and np.sum(ratio < 0.99) <= 2
        assert 0.1 <= a.values["voltage"].min() / 220 <= 0.9


def test_power_outage_all_meters_zero_at_once(city):
    start = T0 + 12 * H
    inc, sim, base, lab = pair(city, "power.outage", "fdr-d03-1", start)
    meters = kinds(city, lab["sensors"], "meter")
    first_zero = []
    for sid in meters:
        a = sim.series(sid, start - 300 * NS, inc.end_ns + 300 * NS)
        inside = (a.event_ns >= start) & (a.event_ns < inc.end_ns)
        assert np.all(a.values["voltage"][inside] == 0) and np.all(a.values["load"][inside] == 0)
        assert np.all(a.values["voltage"][~inside] > 190)
        first_zero.append(a.event_ns[inside][0])
    assert max(first_zero) - start < 60 * NS  # every meter's next sample
    head = kinds(city, lab["sensors"], "feeder_head")[0]
    a, b = sim.series(head, start, inc.end_ns), base.series(head, start, inc.end_ns)
    assert np.all(a.values["load"] == 0) and b.values["load"].min() > 100
    assert a.values["voltage_kv"].min() > 9.5  # the bus stays energised


def test_power_overload_hotspot_rises_with_lag(city):
    start = T0 + 8 * H
    inc, sim, base, lab = pair(city, "power.overload", "fdr-d01-2", start)
    tr = kinds(city, lab["sensors"], "transformer")[0]
    rated = float(city.sensors[tr].params["rated_kva"]) * 0.92
    a = sim.series(tr, start - H, inc.end_ns + 3 * H)
    k = a.values["load"] / rated
    hs = a.values["hotspot_temp"]
    assert k[a.event_ns < start].max() < 0.9 and k.max() > 1.7
    t_over = a.event_ns[np.argmax(k > 1.0)]
    t98, t120 = a.event_ns[np.argmax(hs > 98)], a.event_ns[np.argmax(hs > 120)]
    assert hs.max() > 120 and t_over < t98 < t120 < inc.end_ns
    assert t98 - t_over > 10 * 60 * NS  # thermal lag
    after = a.event_ns >= inc.end_ns
    assert hs[after][-1] < hs.max() - 40  # cools after the overload
    head = kinds(city, lab["sensors"], "feeder_head")[0]
    ha, hb = sim.series(head, start + H, start + 2 * H), base.series(head, start + H, start + 2 * H)
    assert (ha.values["load"] - hb.values["load"]).min() > 0.5 * rated


def test_power_frequency_excursion_everywhere(city):
    start = T0 + 9 * H
    inc, sim, _, lab = pair(city, "power.frequency", "city", start, 600)
    heads = [s.id for s in city.sensors.values() if s.kind == "feeder_head"]
    assert lab["sensors"] == heads
    for sid in heads:
        a = sim.series(sid, start - 600 * NS, inc.end_ns + 600 * NS)
        inside = (a.event_ns >= start + 30 * NS) & (a.event_ns < inc.end_ns - 30 * NS)
        assert np.all(a.values["frequency"][inside] < 49.8)
        assert np.all(np.abs(a.values["frequency"][~((a.event_ns >= start) & (a.event_ns < inc.end_ns))] - 50) < 0.2)


# ---------------------------------------------------------------- gas


def test_gas_leak_crosses_25_lel_at_neighbouring_wells_and_pressure_drops(city):
    start = T0 + 10 * H
    inc, sim, base, lab = pair(city, "gas.leak", "gas-d01-1", start)
    wells = kinds(city, lab["sensors"], "well_methane")
    over = []
    for sid in wells:
        a = sim.series(sid, start, inc.end_ns)
        if a.values["ch4_lel"].max() >= 25:
            over.append((sid, (a.event_ns[np.argmax(a.values["ch4_lel"] >= 25)] - start) / NS))
    assert len(over) >= 2  # neighbouring wells
    assert min(t for _, t in over) < 30 * 60
    peak = max(sim.series(s, start, inc.end_ns).values["ch4_lel"].max() for s in wells)
    assert peak >= 50
    for sid in kinds(city, lab["sensors"], "pressure"):
        a, b = sim.series(sid, start + 600 * NS, inc.end_ns), base.series(sid, start + 600 * NS, inc.end_ns)
        assert (b.values["pressure"] - a.values["pressure"]).mean() > 3


def test_gas_overpressure_and_slam_shut(city):
    start = T0 + 10 * H
    inc, sim, _, lab = pair(city, "gas.overpressure", "gas-d02-1", start, 3600, {"shut_after_s": "40m"})
    for sid in lab["sensors"]:
        a = sim.series(sid, start, inc.end_ns)
        t = (a.event_ns - start) / NS
        assert a.values["pressure"][(t > 700) & (t < 2300)].min() > 200
        assert a.values["pressure"][t > 2460].max() < 5


# ---------------------------------------------------------------- bridge


def test_bridge_overload_peaks_correlated_along_the_span(city):
    start = T0 + 11 * H
    inc, sim, base, lab = pair(city, "bridge.overload", "br-d03-1", start)
    design = city.assets["br-d03-1"].params
    peaks = {}
    for sid in kinds(city, lab["sensors"], "strain_gauge"):
        a, b = sim.series(sid, start, inc.end_ns), base.series(sid, start, inc.end_ns)
        jump = a.values["strain"] - b.values["strain"]
        peaks[sid] = a.event_ns[jump > 50]
        if city.sensors[sid].params["pos"] == 0.5:
            assert a.values["strain"].max() > 0.85 * design["strain_design"] > b.values["strain"].max()
    # every gauge sees the same 3 passages, within one reporting interval
    times = list(peaks.values())
    assert all(len(t) == 3 for t in times)
    assert np.all(np.ptp(np.array(times), axis=0) < 60 * NS)
    mid = [s for s in kinds(city, lab["sensors"], "displacement")][0]
    a = sim.series(mid, start, inc.end_ns)
    assert a.values["deflection"].max() > 0.85 * design["deflection_design"]


def test_bridge_damage_temperature_compensated_frequency_drop(city):
    start = T0
    inc, sim, base, lab = pair(city, "bridge.damage", "br-d01-1", start, 2 * 86400, {"drop_pct": 3})
    for sid in lab["sensors"]:
        a, b = sim.series(sid, start + 86400 * NS, inc.end_ns), base.series(sid, start + 86400 * NS, inc.end_ns)
        ratio = a.values["frequency"] / b.values["frequency"]
        assert abs(ratio.mean() - 0.97) < 0.002


def test_bridge_bearing_seizure_loses_temperature_relation(city):
    start = T0
    inc, sim, base, lab = pair(city, "bridge.bearing_seizure", "br-d05-1", start, 2 * 86400)
    bearing = next(s for s in lab["sensors"] if city.sensors[s].params.get("role") == "bearing")
    a, b = sim.series(bearing, start, inc.end_ns), base.series(bearing, start, inc.end_ns)
    assert np.corrcoef(b.values["deflection"], b.values["temperature"])[0, 1] > 0.9
    assert abs(np.corrcoef(a.values["deflection"], a.values["temperature"])[0, 1]) < 0.3
    assert np.ptp(a.values["deflection"]) < 0.3 * np.ptp(b.values["deflection"])


# ---------------------------------------------------------------- air


def test_air_inversion_builds_up_over_days(city):
    start = T0
    inc, sim, base, lab = pair(city, "air.inversion", "city", start, 3 * 86400)
    assert len(lab["sensors"]) == 7
    a, b = sim.series("a-d04-001", start, inc.end_ns), base.series("a-d04-001", start, inc.end_ns)
    day = (a.event_ns - start) // (86400 * NS)
    pm = [a.values["pm25"][day == i].mean() for i in range(3)]
    assert pm[0] < pm[1] and max(pm) > 200
    rising = a.values["pm25"] > b.values["pm25"] + 50
    for m in ("co", "so2"):
        assert np.all(a.values[m][rising] > b.values[m][rising])
    assert np.median((a.values["pm25"] / a.values["pm10"])[rising]) > 0.7
    q = aqi(a.values)
    assert 200 <= q.max() <= 500 and q[day == 0].min() < 150


def test_air_dust_pm10_far_above_pm25(city):
    start = T0 + 6 * H
    inc, sim, base, lab = pair(city, "air.dust", "d03", start)
    assert lab["sensors"] == ["a-d03-001"]
    a, b = sim.series("a-d03-001", start + 3 * H, start + 8 * H), base.series("a-d03-001", start + 3 * H, start + 8 * H)
    assert a.values["pm10"].min() > 350
    assert np.all(a.values["pm25"] / a.values["pm10"] < 0.3)
    assert np.allclose(a.values["no2"], b.values["no2"]) and np.allclose(a.values["co"], b.values["co"])


# ---------------------------------------------------------------- sensor faults


def _fault(city, name, sid, params=None, dur=3600):
    start = T0 + 10 * H
    inc, sim, base, lab = pair(city, name, sid, start, dur, params)
    assert lab["sensors"] == [sid]
    a = sim.series(sid, start - 600 * NS, inc.end_ns + 600 * NS)
    b = base.series(sid, start - 600 * NS, inc.end_ns + 600 * NS)
    return start, inc.end_ns, a, b


def test_fault_stuck(city):
    t0, t1, a, b = _fault(city, "fault.stuck", "p-d02-004")
    inside = (a.event_ns >= t0) & (a.event_ns < t1)
    for m in ("voltage", "load"):
        assert np.ptp(a.values[m][inside]) == 0 and np.ptp(b.values[m][inside]) > 0
        assert np.array_equal(a.values[m][~inside], b.values[m][~inside])
    t0, t1, a, _ = _fault(city, "fault.stuck", "w-d01-003", {"value": 0})
    assert np.all(a.values["pressure"][(a.event_ns >= t0) & (a.event_ns < t1)] == 0)


def test_fault_drift_and_bias(city):
    t0, t1, a, b = _fault(city, "fault.drift", "g-d04-002", {"rate": 6.0})
    d = a.values["pressure"] - b.values["pressure"]
    assert abs(d[a.event_ns < t1].max() - 6.0) < 0.2 and np.all(d[a.event_ns >= t1] == 0)
    t0, t1, a, b = _fault(city, "fault.bias", "g-d04-002", {"offset": 5.0})
    d = (a.values["pressure"] - b.values["pressure"])[(a.event_ns >= t0 + 600 * NS) & (a.event_ns < t1)]
    assert np.allclose(d, 5.0, atol=0.02)


def test_fault_spike(city):
    t0, t1, a, b = _fault(city, "fault.spike", "a-d02-001", {"prob": 0.3, "metric": "pm25"}, dur=6 * 3600)
    diff = np.abs(a.values["pm25"] - b.values["pm25"])
    inside = (a.event_ns >= t0) & (a.event_ns < t1)
    assert 5 <= np.sum(diff[inside] > 10) <= 40 and np.all(diff[~inside] == 0)
    assert np.array_equal(a.values["no2"], b.values["no2"])


def test_fault_dropout_sends_nothing_in_the_window(city):
    t0, t1, a, b = _fault(city, "fault.dropout", "b-d02-005")
    assert not np.any((a.event_ns >= t0) & (a.event_ns < t1))
    assert len(b.event_ns) - len(a.event_ns) == 60
    assert np.all(np.diff(a.seq) >= 1) and np.max(np.diff(a.seq)) == 61  # the gap shows in seq


def test_fault_clock_skew_plus_two_hours(city):
    t0, t1, a, b = _fault(city, "fault.clock_skew", "w-d05-001")
    inside = (a.event_ns >= t0) & (a.event_ns < t1)
    assert np.all(a.ts_ns[inside] - a.event_ns[inside] == 2 * H)
    assert np.all(a.ts_ns[~inside] == a.event_ns[~inside])
    assert np.array_equal(a.values["flow"], b.values["flow"])
