"""Sensor-health stages: each fires on its fault's signature, stays quiet on normal data and on physical
events that hit a whole asset, and gives the same detections however the readings are batched or restored.

Simulated data comes from :mod:`simulators` (the Shihezi demo city); small synthetic streams pin down the
edge cases (constant signals, floors, feed gaps, backlog flushes).
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest

from detectors.health import ClockSkew, Drift, Offline, Spike, Stuck, default_stages
from detectors.pipeline import DetectorPipeline
from lifewatch.city import load_city, parse_city
from lifewatch.model import NS, Reading
from simulators.engine import Simulation
from simulators.scenarios import make_incident

T0 = 1_767_225_600 * NS  # 2026-01-01T00:00Z (06:00 Shihezi time)
H = 3600 * NS
M = 60 * NS
ASSETS = ("dma-d01-1", "fdr-d01-1", "gas-d01-1")


@functools.cache
def city():
    return load_city()


def ids(*assets: str) -> list[str]:
    return [s.id for a in assets for s in city().sensors_by_asset[a]]


@functools.cache
def simulate(incidents: tuple = (), hours: float = 30.0, assets: tuple = ASSETS, seed: int = 7) -> list[Reading]:
    incs = [make_incident(name, target, T0 + int(at_h * H), params=dict(params)) for name, target, at_h, params in incidents]
    sim = Simulation(city(), seed=seed, start_ns=T0, incidents=incs, sensors=ids(*assets))
    return sim.readings_between(T0, T0 + int(hours * H))


def run(stages, readings: list[Reading], sizes=None, city_model=None):
    pipe = DetectorPipeline(stages, city() if city_model is None else city_model)
    out = []
    i = 0
    rng = np.random.default_rng(0)
    while i < len(readings):
        n = 2500 if sizes is None else int(sizes(rng))
        out += pipe.process(readings[i:i + n])
        i += n
    return out, pipe


def raised(dets, detector=None):
    return [d for d in dets if d.state == "raised" and (detector is None or d.detector == detector)]


def canon(dets) -> list[str]:
    return [json.dumps(d.to_json(), sort_keys=True, default=str) for d in dets]


CITY_1 = {"name": "t", "units": {lid: {"id": lid, "name": lid} for lid in ("water", "power", "gas", "bridge", "air")},
          "districts": [{"id": "d", "name": "d", "lat": 0, "lon": 0}],
          "assets": [{"id": "dma", "lifeline": "water", "type": "dma", "district": "d"}]}


def tiny_city(n: int, kind: str = "pressure", lifeline: str = "water"):
    doc = dict(CITY_1)
    doc["sensors"] = [{"id": f"s{i}", "lifeline": lifeline, "kind": kind, "district": "d", "asset": "dma",
                       "lat": 0, "lon": 0} for i in range(n)]
    return parse_city(doc)


# ---------------------------------------------------------------- normal data


def test_normal_simulated_day_and_a_half_gives_no_detection():
    dets, pipe = run(default_stages(), simulate())
    assert dets == []
    # and the stages did look: every stream has state, the watermark advanced to the end
    assert pipe.stages[0].watermark("water") > T0 + 29 * H


# ---------------------------------------------------------------- each fault, on the simulator


@pytest.mark.parametrize("target", ["w-d01-003", "p-d01-005"])
def test_stuck_fires_once_on_the_frozen_sensor(target):
    dets, _ = run([Stuck(), Spike()], simulate((("fault.stuck", target, 14.0, ()),)))
    r = raised(dets)
    assert [(d.detector, d.sensors) for d in r] == [("stuck", (target,))]
    d = r[0]
    assert d.kind == "sensor_stuck" and d.level.label == "blue"
    assert 14 * H < d.start_ns < 14.5 * H + T0 and d.evidence["window_range"] < d.evidence["tolerance"]
    assert any(x.state == "cleared" and x.sensors == (target,) for x in dets)  # values move again after 20:00


def test_stuck_at_zero_meter_is_stuck_not_an_outage():
    dets, _ = run([Stuck()], simulate((("fault.stuck", "p-d01-005", 14.0, (("value", 0.0),)),)))
    assert [(d.sensors, d.metric) for d in raised(dets)] == [(("p-d01-005",), "voltage")]


def test_spike_fires_once_per_spiky_episode():
    dets, _ = run([Spike(), Stuck(), Drift()], simulate((("fault.spike", "w-d01-003", 14.0, ()),)))
    r = raised(dets)
    assert [(d.detector, d.sensors) for d in r] == [("spike", ("w-d01-003",))]
    ev = r[0].evidence
    assert abs(ev["spike_value"] - ev["before"]) > 0.1 and abs(ev["after"] - ev["before"]) < 0.02


def test_dropout_is_offline_and_cleared_when_it_reports_again():
    dets, _ = run([Offline()], simulate((("fault.dropout", "p-d01-005", 14.0, ()),)))
    assert [(d.state, d.sensors) for d in dets] == [("raised", ("p-d01-005",)), ("cleared", ("p-d01-005",))]
    up, down = dets
    assert up.kind == "sensor_offline"
    assert 14 * H + T0 - 2 * M <= up.start_ns <= 14 * H + T0  # last heard just before the dropout
    assert 5 * M <= up.ts_ns - up.start_ns <= 6 * M  # k = 5 intervals of silence
    assert 15 * H + T0 <= down.ts_ns <= 15 * H + T0 + 2 * M and down.evidence["silence_s"] >= 3540


def test_feeder_outage_is_not_offline_nor_stuck():
    readings = simulate((("power.outage", "fdr-d01-1", 14.0, ()),))
    dets, _ = run(default_stages(), readings)
    assert dets == []
    # the meters did report 0 V during the outage
    zero = [r for r in readings if r.sensor_id == "p-d01-005" and 14 * H + T0 + 5 * M < r.ts_ns < 15 * H + T0]
    assert zero and all(r.values["voltage"] == 0.0 for r in zero)


def test_clock_skew_found_with_its_offset_and_nobody_goes_offline():
    dets, _ = run([ClockSkew(), Offline()], simulate((("fault.clock_skew", "w-d01-003", 14.0, ()),)))
    assert [(d.detector, d.state, d.sensors) for d in dets] == [
        ("clock_skew", "raised", ("w-d01-003",)), ("clock_skew", "cleared", ("w-d01-003",))]
    up = dets[0]
    assert abs(up.evidence["offset_s"] - 7200) < 60 and up.kind == "sensor_clock_skew"
    assert 14 * H + T0 <= up.start_ns <= 14 * H + T0 + 2 * M
    assert 30 * M <= up.ts_ns - up.start_ns <= 32 * M


def test_drift_fires_on_the_drifting_sensor_only():
    dets, _ = run([Drift(), Stuck(), Spike()], simulate((("fault.drift", "w-d01-003", 20.0, ()),), hours=26))
    r = raised(dets)
    assert [(d.detector, d.sensors, d.metric) for d in r] == [("drift", ("w-d01-003",), "pressure")]
    assert r[0].start_ns - (20 * H + T0) < 3 * H
    assert r[0].evidence["residual"] > 0  # the default drift goes up


def test_drift_ignores_a_burst_next_to_a_logger():
    dets, _ = run([Drift()], simulate((("water.burst", "w-d01-004", 20.0, ()),), hours=30))
    assert dets == []


# ---------------------------------------------------------------- edge cases on synthetic streams


def test_stuck_never_flags_a_signal_that_never_varied_or_sits_at_its_floor():
    rng = np.random.default_rng(1)
    rs = [Reading("gas", "d", "w0", i * M, {"ch4_lel": 0.0}) for i in range(300)]  # %LEL at 0 from the start
    lel = np.maximum(0.3 + 0.1 * rng.standard_normal(400), 0.0)
    lel[200:] = 0.0  # a real well drops to its floor (clean air) and stays
    rs += [Reading("gas", "d", "w1", i * M + 1, {"ch4_lel": float(v)}) for i, v in enumerate(lel)]
    p = 150 + 0.2 * rng.standard_normal(400)
    p[200:] = 0.0  # a pressure stuck at 0 is not an ordinary state
    rs += [Reading("gas", "d", "p1", i * M + 2, {"pressure": float(v)}) for i, v in enumerate(p)]
    rs.sort(key=lambda r: r.ts_ns)
    dets, _ = run([Stuck()], rs, city_model=tiny_city(0))
    assert [d.sensors for d in raised(dets)] == [("p1",)]


def test_stuck_common_mode_is_the_asset_not_the_sensor():
    rng = np.random.default_rng(2)
    rs = []
    for i in range(300):
        for j in range(5):
            v = 0.4 + 0.002 * rng.standard_normal()
            if i >= 200 and (j < 4):  # four of five loggers flat together (a valve shut): not a sensor fault
                v = 0.1
            rs.append(Reading("water", "d", f"s{j}", i * M + j, {"pressure": float(v)}))
    assert run([Stuck()], rs, city_model=tiny_city(5))[0] == []
    one = [Reading(r.lifeline, r.district, r.sensor_id, r.ts_ns,
                   {"pressure": 0.1 if (r.sensor_id == "s0" and r.ts_ns >= 200 * M) else
                    (0.4 + 0.002 * rng.standard_normal())}) for r in rs]
    assert [d.sensors for d in raised(run([Stuck()], one, city_model=tiny_city(5))[0])] == [("s0",)]


def test_spike_common_mode_is_physics():
    rng = np.random.default_rng(3)
    rs = [Reading("water", "d", f"s{j}", i * M + j, {"pressure": float(0.4 + 0.002 * rng.standard_normal()
                                                                     - (0.2 if i == 150 and j < 2 else 0))})
          for i in range(300) for j in range(4)]
    assert run([Spike()], rs, city_model=tiny_city(4))[0] == []  # two loggers dip together: a transient
    rs = [Reading(r.lifeline, r.district, r.sensor_id, r.ts_ns,
                  {"pressure": r.values["pressure"] - (0.2 if r.sensor_id == "s2" and r.ts_ns // M == 200 else 0)})
          for r in rs]
    assert [d.sensors for d in raised(run([Spike()], rs, city_model=tiny_city(4))[0])] == [("s2",)]


def test_offline_ignores_a_gap_of_the_whole_feed():
    rs = [Reading("water", "d", f"s{j}", i * M + j, {"pressure": 0.3}) for i in range(100) for j in range(4)
          if not 30 <= i < 90]  # nobody reports for an hour: an ingest gap, not four silent sensors
    assert run([Offline()], rs, city_model=tiny_city(4))[0] == []
    rs = [r for r in rs if not (r.sensor_id == "s1" and r.ts_ns > 95 * M)]
    assert [(d.state, d.sensors) for d in run([Offline()], rs, city_model=tiny_city(4))[0]] == [("raised", ("s1",))]


def test_offline_scope_global_sees_a_lonely_sensor():
    rs = [Reading("water", "d", "s0", i * M, {"pressure": 0.3}) for i in range(20)]
    rs += [Reading("power", "d", "m0", i * M + 1, {"voltage": 220.0}) for i in range(40)]
    rs.sort(key=lambda r: r.ts_ns)
    assert run([Offline()], rs, city_model=tiny_city(0))[0] == []  # water's own watermark stops with it
    dets = run([Offline(scope="global", default_interval_s=60)], rs, city_model=tiny_city(0))[0]
    assert [(d.state, d.sensors) for d in dets] == [("raised", ("s0",))]


def test_clock_skew_behind_and_backlog_flush():
    base = [Reading("water", "d", f"s{j}", i * M + j, {"pressure": 0.3}) for i in range(200) for j in range(3)]
    behind = [Reading(r.lifeline, r.district, r.sensor_id, r.ts_ns - (2 * H if r.sensor_id == "s2" and r.ts_ns > 50 * M
                                                                       else 0), r.values) for r in base]
    dets = run([ClockSkew()], behind, city_model=tiny_city(3))[0]
    assert [(d.state, d.sensors) for d in dets] == [("raised", ("s2",))]
    assert abs(dets[0].evidence["offset_s"] + 7200) < 60
    # a gateway that was cut off for an hour delivers its backlog within seconds: late, but not skewed
    flush = [r for r in base if not (r.sensor_id == "s2" and 50 * M < r.ts_ns < 110 * M)]
    late = [r for r in base if r.sensor_id == "s2" and 50 * M < r.ts_ns < 110 * M]
    at = next(i for i, r in enumerate(flush) if r.ts_ns > 110 * M)
    flush = flush[:at] + late + flush[at:]
    assert run([ClockSkew(), Offline(default_interval_s=60)], flush, city_model=tiny_city(3))[0][0].detector == "offline"
    assert run([ClockSkew()], flush, city_model=tiny_city(3))[0] == []


# ---------------------------------------------------------------- batching, replay, restore

FAULTS = (("fault.stuck", "w-d01-003", 14.0, ()), ("fault.spike", "p-d01-007", 15.0, ()),
          ("fault.dropout", "g-d01-002", 16.0, ()), ("fault.clock_skew", "w-d01-005", 14.5, ()),
          ("fault.drift", "p-d01-009", 20.0, ()))


@functools.cache
def faulty():
    return simulate(FAULTS, hours=26)


@functools.cache
def reference():
    dets, _ = run(default_stages(), faulty())
    return dets


def test_all_faults_found_together():
    got = {(d.detector, d.sensors[0]) for d in raised(reference())}
    assert got == {("stuck", "w-d01-003"), ("spike", "p-d01-007"), ("offline", "g-d01-002"),
                   ("clock_skew", "w-d01-005"), ("drift", "p-d01-009")}


@pytest.mark.parametrize("sizes", [lambda r: r.integers(1, 40), lambda r: r.integers(1000, 20000)])
def test_batch_split_independent(sizes):
    dets, _ = run(default_stages(), faulty(), sizes=sizes)
    assert canon(dets) == canon(reference())


def test_save_restore_continues_exactly(tmp_path):
    rs = faulty()
    cut = len(rs) * 3 // 5  # inside the drift, the stuck and the clock-skew episodes
    a = DetectorPipeline(default_stages(), city())
    first = a.process(rs[:cut])
    a.save(tmp_path / "state.npz")
    b = DetectorPipeline(default_stages(), city())
    b.load(tmp_path / "state.npz")
    rest = []
    for i in range(cut, len(rs), 3000):
        rest += b.process(rs[i:i + 3000])
    assert canon(first + rest) == canon(reference())


def test_clock_skew_equal_under_a_100x_replay_with_jittered_arrival():
    """Live: readings one by one; replay at 100x: big batches, and arrival order jittered within 5 s."""
    rs = simulate((("fault.clock_skew", "w-d01-003", 14.0, ()),), hours=22)
    live, _ = run([ClockSkew(), Offline()], rs, sizes=lambda r: 1 + r.integers(0, 3))
    fast, _ = run([ClockSkew(), Offline()], rs, sizes=lambda r: 100 * 60)
    assert canon(fast) == canon(live)
    rng = np.random.default_rng(9)
    # the simulator's order is the arrival order (a skewed reading is sent when measured, stamped wrongly);
    # arrival time = the latest timestamp of the other sensors, then shuffle within 5-second buckets
    arrival = np.maximum.accumulate(np.array([0 if r.sensor_id == "w-d01-003" else r.ts_ns for r in rs]))
    order = np.argsort(arrival // (5 * NS) * 1000 + rng.integers(0, 1000, len(rs)), kind="stable")
    jittered, _ = run([ClockSkew(), Offline()], [rs[i] for i in order], sizes=lambda r: 6000)
    assert [(d.detector, d.state, d.sensors) for d in jittered] == [(d.detector, d.state, d.sensors) for d in live]
    for a, b in zip(jittered, live, strict=True):
        assert abs(a.start_ns - b.start_ns) <= 10 * NS and abs(a.evidence["offset_s"] - b.evidence["offset_s"]) < 60


def test_state_is_bounded_per_stream():
    short, p1 = run(default_stages(), simulate(hours=6))
    long, p2 = run(default_stages(), simulate())
    for s1, s2 in zip(p1.stages, p2.stages, strict=True):
        b = s1.state_bytes_per_stream()
        assert 0 < b < 2048 and b == s2.state_bytes_per_stream()
        a1 = {k: v.nbytes for k, v in s1.state_dict().items()}
        a2 = {k: v.nbytes for k, v in s2.state_dict().items()}
        assert a1 == a2  # five times the data, same state


def test_unknown_parameters_are_refused():
    with pytest.raises(TypeError):
        Stuck(windw=12)
    with pytest.raises(ValueError):
        Offline(tol_s=4000)  # must stay below the skew threshold
