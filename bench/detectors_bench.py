"""Detector cost per lifeline: µs per reading of each lifeline's full suite and bytes of state per sensor.

One simulated day of the demo city, one lifeline at a time, through the very
pipeline ingest runs (built from the lifeline descriptions); live-sized
batches (1,000 readings).  Baseline in the same run: the cost of building
the pipeline's input frames alone, so the detector figure can be read as a
ratio against it.
"""

from __future__ import annotations

import io
import time

import numpy as np

from detectors.build import build_pipeline
from detectors.frame import Registry, build_frame
from lifewatch.city import load_city
from lifewatch.lifelines import LIFELINE_IDS
from lifewatch.model import NS, parse_ts
from simulators.engine import Simulation

T0 = parse_ts("2026-01-05T00:00:00Z")
BATCH = 1000


def state_bytes(pipe) -> int:  # noqa: ANN001
    total = 0
    for st in pipe.stages:
        for v in st.state_dict().values():
            arr = np.asarray(v)
            total += arr.nbytes if arr.dtype != object else sum(len(str(x)) for x in arr.ravel())
    return total


def run(days: float = 1.0) -> list[dict]:
    city = load_city()
    out = []
    for lid in LIFELINE_IDS:
        sensors = [s.id for s in city.sensors.values() if s.lifeline == lid]
        sim = Simulation(city, seed=2, start_ns=T0, sensors=sensors)
        readings = sim.readings_between(T0, T0 + int(days * 86400) * NS)
        pipe = build_pipeline(city, {})
        pipe.process(readings[:BATCH])  # compile and warm up outside the clock
        pipe = build_pipeline(city, {})
        t = time.perf_counter()
        for i in range(0, len(readings), BATCH):
            pipe.process(readings[i:i + BATCH])
        secs = time.perf_counter() - t
        reg = Registry(city)
        t = time.perf_counter()
        for i in range(0, len(readings), BATCH):
            build_frame(readings[i:i + BATCH], reg)
        frame_secs = time.perf_counter() - t
        buf = io.BytesIO()
        np.savez(buf, x=np.zeros(1))
        out.append({
            "lifeline": lid,
            "sensors": len(sensors),
            "readings": len(readings),
            "us_per_reading": round(secs / len(readings) * 1e6, 2),
            "frame_us_per_reading": round(frame_secs / len(readings) * 1e6, 2),
            "state_bytes_per_sensor": round(state_bytes(pipe) / len(sensors)),
        })
    return out


def city_state(hours: float = 3.0) -> dict:
    """State bytes per sensor with the whole city in one pipeline (per-lifeline runs carry every stage's
    minimum allocation over few sensors, which overstates the per-sensor figure)."""
    city = load_city()
    sim = Simulation(city, seed=2, start_ns=T0)
    readings = sim.readings_between(T0, T0 + int(hours * 3600) * NS)
    pipe = build_pipeline(city, {})
    for i in range(0, len(readings), BATCH):
        pipe.process(readings[i:i + BATCH])
    return {"sensors": len(city.sensors), "streams": len(pipe.registry.streams),
            "state_bytes_per_sensor": round(state_bytes(pipe) / len(city.sensors))}


def main() -> int:
    c = city_state()
    print(f"bench detectors city sensors={c['sensors']} streams={c['streams']} state_bytes_per_sensor={c['state_bytes_per_sensor']} "
          f"target=4096", flush=True)
    for row in run():
        print(f"bench detectors lifeline={row['lifeline']} sensors={row['sensors']} readings={row['readings']} "
              f"us_per_reading={row['us_per_reading']} baseline_frame_us_per_reading={row['frame_us_per_reading']} "
              f"ratio={row['us_per_reading'] / max(row['frame_us_per_reading'], 1e-9):.1f} "
              f"state_bytes_per_sensor={row['state_bytes_per_sensor']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
