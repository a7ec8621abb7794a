"""``lifewatch eval scenarios``: the incident library over simulated days of the demo city.

The library injects 24 incidents across all five lifelines plus sensor faults
into a simulated Shihezi, runs the very pipeline ingest runs (built from the
lifeline descriptions) offline in event time, and matches raised detections
to the ground-truth labels:

* an incident is **detected** when a raised detection names one of its
  sensors or its asset and starts between the incident's start and its end
  plus ``grace`` (slow signatures such as the night-flow leak rule need the
  next night);
* its **delay** is the first such detection's event time minus the start;
* every other raised detection is a **false alert**, reported per 100
  sensor-days of the evaluated span.

The first ``warmup_days`` are simulated and learned from but not scored (the
detectors' warm-up is explicit; a night-flow baseline needs nights).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from detectors.build import build_pipeline, load_config
from detectors.events import RAISED, Detection
from lifewatch.city import City, load_city
from lifewatch.model import NS, format_ts, parse_ts
from simulators.engine import Simulation
from simulators.scenarios import make_incident

EVAL_START = "2026-01-05T00:00:00Z"  # a Monday in the heating season
H = 3600

# (scenario, target, start hour after the scored span begins, duration hours or None = scenario default, params)
LIBRARY: list[tuple[str, str, float, float | None, dict[str, Any]]] = [
    ("water.burst", "dma-d01-1", 10.5, 6, {}),
    ("water.leak", "dma-d02-1", 20.0, 72, {}),
    ("water.low_pressure", "dma-d03-2", 34.0, 2, {}),
    ("water.burst", "dma-d05-2", 130.0, 4, {}),
    ("power.sag", "fdr-d02-1", 15.2, 0.01, {}),
    ("power.outage", "fdr-d03-1", 40.0, 1, {}),
    ("power.overload", "p-d05-002", 60.0, 6, {}),
    ("power.frequency", "fdr-d01-2", 80.0, 0.1, {}),
    ("power.outage", "fdr-d06-1", 150.0, 2, {}),
    ("gas.leak", "gas-d01-1", 25.0, 3, {}),
    ("gas.overpressure", "gas-d04-2", 95.0, 1, {}),
    ("gas.leak", "gas-d05-1", 140.0, 3, {}),
    ("bridge.overload", "br-d02-1", 17.0, 0.5, {}),
    ("bridge.damage", "br-d03-1", 50.0, 72, {}),
    ("bridge.bearing_seizure", "br-d04-1", 30.0, 96, {}),
    ("bridge.overload", "br-d05-1", 110.0, 0.5, {}),
    ("air.inversion", "d04", 70.0, 48, {}),
    ("air.dust", "d06", 120.0, 12, {}),
    ("fault.stuck", "w-d04-003", 12.0, 6, {}),
    ("fault.drift", "g-d02-002", 44.0, 24, {}),
    ("fault.spike", "b-d01-002", 66.0, 6, {}),
    ("fault.dropout", "p-d04-004", 88.0, 2, {}),
    ("fault.clock_skew", "a-d07-001", 100.0, 6, {}),
    ("fault.stuck", "p-d07-005", 125.0, 6, {}),
]


@dataclass
class Outcome:
    scenario: str
    target: str
    start_ns: int
    end_ns: int
    sensors: list[str]
    detected: bool = False
    delay_s: float | None = None
    first: str | None = None  # detector:kind of the first matching detection


def _matches(d: Detection, label: dict, asset_of: dict[str, str], grace_ns: int) -> bool:
    if not (label["start_ns"] - 60 * NS <= d.start_ns <= label["end_ns"] + grace_ns):
        return False
    sensors = set(label["sensors"])
    if sensors.intersection(d.sensors):
        return True
    target = label["target"]
    return d.asset is not None and (d.asset == target or any(asset_of.get(s) == d.asset for s in sensors))


def run_scenarios(days: float = 7.0, *, seed: int = 1, warmup_days: float = 2.0, config: dict | None = None,
                  city: City | None = None, library: list | None = None, grace_h: float = 12.0,
                  chunk_s: float = 600.0, progress: bool = False) -> dict[str, Any]:
    city = city or load_city()
    t_eval = parse_ts(EVAL_START)
    t0 = t_eval - int(warmup_days * 86400) * NS
    t1 = t_eval + int(days * 86400) * NS
    incidents = []
    for name, target, at_h, dur_h, params in library if library is not None else LIBRARY:
        start = t_eval + int(at_h * H) * NS
        if start >= t1:
            continue
        incidents.append(make_incident(name, target, start, None if dur_h is None else dur_h * H, params))
    sim = Simulation(city, seed=seed, start_ns=t0, incidents=incidents)
    pipe = build_pipeline(city, config or {}, model_dir=None)
    detections: list[Detection] = []
    n_readings = 0
    wall = time.perf_counter()
    det_s = 0.0
    step = int(chunk_s * NS)
    t = t0
    while t < t1:
        readings = sim.readings_between(t, min(t + step, t1))
        n_readings += len(readings)
        a = time.perf_counter()
        detections.extend(d for d in pipe.process(readings) if d.state == RAISED)
        det_s += time.perf_counter() - a
        t += step
        if progress and (t - t0) % (86400 * NS) < step:
            print(f"eval scenarios: simulated {format_ts(t)}, {n_readings:,} readings, {len(detections)} raised", file=sys.stderr)

    labels = []
    for lab in sim.labels():
        labels.append({**lab, "start_ns": parse_ts(lab["start"]), "end_ns": parse_ts(lab["end"])})
    asset_of = {s.id: s.asset for s in city.sensors.values()}
    grace = int(grace_h * H) * NS
    outcomes = [Outcome(lb["scenario"], lb["target"], lb["start_ns"], lb["end_ns"], list(lb["sensors"])) for lb in labels]
    false_alerts: list[Detection] = []
    for d in detections:
        if d.start_ns < t_eval:
            continue  # warm-up: not scored
        hit = False
        for o, lb in zip(outcomes, labels, strict=True):
            if _matches(d, lb, asset_of, grace):
                hit = True
                delay = (d.ts_ns - o.start_ns) / NS
                if not o.detected or delay < (o.delay_s or 0):
                    o.detected, o.delay_s, o.first = True, max(delay, 0.0), f"{d.detector}:{d.kind}"
        if not hit:
            false_alerts.append(d)
    sensor_days = len(city.sensors) * days
    by_kind: dict[str, int] = {}
    for d in false_alerts:
        key = f"{d.detector}:{d.kind}"
        by_kind[key] = by_kind.get(key, 0) + 1
    return {
        "days": days,
        "warmup_days": warmup_days,
        "seed": seed,
        "sensors": len(city.sensors),
        "readings": n_readings,
        "detector_seconds": round(det_s, 2),
        "us_per_reading": round(det_s / max(n_readings, 1) * 1e6, 2),
        "seconds": round(time.perf_counter() - wall, 1),
        "incidents": len(outcomes),
        "detected": sum(o.detected for o in outcomes),
        "false_alerts": len(false_alerts),
        "false_alerts_per_100_sensor_days": round(100 * len(false_alerts) / sensor_days, 3),
        "false_alerts_by_kind": by_kind,
        "false_alert_examples": [
            {"detector": d.detector, "kind": d.kind, "sensors": list(d.sensors)[:3], "start": format_ts(d.start_ns)}
            for d in false_alerts[:10]
        ],
        "scenarios": [
            {"scenario": o.scenario, "target": o.target, "start": format_ts(o.start_ns), "detected": o.detected,
             "delay_s": o.delay_s, "first_detection": o.first}
            for o in outcomes
        ],
    }


def cli(args, settings) -> int:  # noqa: ANN001
    cfg = load_config(getattr(args, "config", None))
    doc = run_scenarios(args.days, seed=args.seed, warmup_days=args.warmup_days, config=cfg, progress=not args.json)
    if args.json:
        print(json.dumps(doc))
    else:
        print(f"{doc['incidents']} incidents over {doc['days']:g} simulated days of {doc['sensors']} sensors "
              f"({doc['readings']:,} readings, detectors {doc['us_per_reading']} us/reading)")
        for s in doc["scenarios"]:
            delay = f"{s['delay_s'] / 60:7.1f} min" if s["delay_s"] is not None else "        -"
            print(f"  {'detected' if s['detected'] else 'MISSED  '}  {delay}  {s['scenario']:<24} {s['target']:<12} "
                  f"{s['first_detection'] or ''}")
        print(f"detected {doc['detected']}/{doc['incidents']}; false alerts {doc['false_alerts']} "
              f"= {doc['false_alerts_per_100_sensor_days']} per 100 sensor-days")
        for k, n in sorted(doc["false_alerts_by_kind"].items(), key=lambda kv: -kv[1]):
            print(f"    {n:5d}  {k}")
    ok = doc["detected"] == doc["incidents"] and doc["false_alerts_per_100_sensor_days"] <= 1.0
    return 0 if ok else 1
