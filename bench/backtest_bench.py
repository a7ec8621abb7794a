"""Backtest throughput: readings per second of the detector pipeline run offline over a recording.

A simulated week of the demo city (357 sensors, about 3.5 million readings,
5.7 million values; seed 1, from 2026-01-05) is written once as a Lifewatch
recording (cached under ``.lifewatch/bench/``), then, in this run:

* ``baseline``: reading the recording alone (``ingest.readers.read_columns``
  plus putting it in event-time order), the floor any backtest pays;
* ``stats``: the statistical suite, one
  :class:`~detectors.stats_stage.StatStage` per scorer (``seasonal_robust_z``,
  ``cusum``, ``rate_of_change``) over every metric of every lifeline;
* ``default``: the full default pipeline ingest runs
  (:func:`detectors.build.build_pipeline` with the city and no config).

Each suite is timed end to end (reading included) on a fresh pipeline after
a short warm-up run (numba loads its caches outside the clock).  Output, one
line per suite::

    bench backtest suite=<name> readings=N readings_per_s=X baseline=<readings/s of reading alone> ...

Run it with ``.venv/bin/python -m bench.backtest_bench [--days 7]``.  The
machine is shared and noisy: compare a suite with the baseline of the same run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / ".lifewatch" / "bench"
T0_TEXT = "2026-01-05T00:00:00Z"
SUITE_SCORERS = ("seasonal_robust_z", "cusum", "rate_of_change")


def simulate_columns(days: float = 7.0, seed: int = 1, chunk_h: float = 6.0, progress: bool = False):  # noqa: ANN201
    """The demo city simulated over ``days`` as recording columns, built from the simulator's arrays."""
    from ingest.readers.columns import Categorical, Columns, concat
    from lifewatch.city import load_city
    from lifewatch.model import NS, parse_ts
    from simulators.engine import Simulation

    city = load_city()
    t0 = parse_ts(T0_TEXT)
    sim = Simulation(city, seed=seed, start_ns=t0)
    t1 = t0 + int(days * 86400) * NS
    step = int(chunk_h * 3600) * NS
    parts = []
    for a in range(t0, t1, step):
        series = sim.all_series(a, min(a + step, t1))
        ts, sen, lif, dis, met, val, seq, rid = [], [], [], [], [], [], [], []
        sensors, lifelines, districts, metrics = {}, {}, {}, {}
        nread = 0
        for sid, s in series.items():
            n = len(s.ts_ns)
            if not n:
                continue
            names = list(s.values)
            k = len(names)
            ts.append(np.repeat(s.ts_ns, k))
            sen.append(np.full(n * k, sensors.setdefault(sid, len(sensors)), np.int32))
            lif.append(np.full(n * k, lifelines.setdefault(s.sensor.lifeline, len(lifelines)), np.int32))
            dis.append(np.full(n * k, districts.setdefault(s.sensor.district, len(districts)), np.int32))
            met.append(np.tile(np.array([metrics.setdefault(m, len(metrics)) for m in names], np.int32), n))
            val.append(np.column_stack([s.values[m] for m in names]).ravel())
            seq.append(np.repeat(s.seq, k))
            rid.append(np.repeat(np.arange(nread, nread + n, dtype=np.int64), k))
            nread += n
        if not ts:
            continue
        cols = Columns(np.concatenate(ts), Categorical(np.concatenate(sen), list(sensors)),
                       Categorical(np.concatenate(lif), list(lifelines)), Categorical(np.concatenate(dis), list(districts)),
                       Categorical(np.concatenate(met), list(metrics)), np.concatenate(val).astype(np.float64),
                       np.concatenate(seq).astype(np.int64), np.ones(sum(len(x) for x in ts), bool),
                       Categorical.constant(None, sum(len(x) for x in ts)), np.concatenate(rid))
        parts.append(cols.ordered())
        if progress:
            print(f"bench backtest: simulated {(a + step - t0) / 86400e9:.2f} of {days:g} days", file=sys.stderr, flush=True)
    out = concat(parts)
    return out


def recording(days: float = 7.0, seed: int = 1, progress: bool = True) -> Path:
    """The cached recording of ``days`` simulated days (simulated and written on first use)."""
    from ingest.readers.parquet import write_recording

    path = CACHE / f"demo-week-{days:g}d-seed{seed}.parquet"
    if not path.exists():
        cols = simulate_columns(days, seed, progress=progress)
        write_recording(path, cols, {"source": {"simulator": "demo city", "seed": seed, "days": days, "start": T0_TEXT}})
    return path


def stats_suite(city: Any):  # noqa: ANN201
    from detectors.pipeline import DetectorPipeline
    from detectors.stats_stage import StatStage
    from lifewatch.lifelines import load_lifelines

    ll = load_lifelines()
    metrics = [f"{lid}.{m}" for lid in ll for m in ll[lid].metrics]
    return DetectorPipeline([StatStage(name, metrics) for name in SUITE_SCORERS], city)


def run(days: float = 7.0, progress: bool = True) -> dict[str, Any]:
    """``{"baseline": {...}, "stats": {...}, "default": {...}}`` with readings, seconds and readings_per_s."""
    from detectors.backtest.run import run_pipeline
    from detectors.build import build_pipeline
    from ingest.readers import read_columns
    from lifewatch.city import load_city

    path = recording(days, progress=progress)
    city = load_city()
    out: dict[str, Any] = {"recording": str(path), "days": days}

    read_columns(path)  # the file in the page cache, as it is for the suites below
    t = time.perf_counter()
    cols = read_columns(path).ordered()
    read_s = time.perf_counter() - t
    n = cols.n_readings
    out["baseline"] = {"readings": n, "rows": len(cols), "seconds": round(read_s, 3), "readings_per_s": round(n / read_s)}
    small = cols.take(np.arange(min(len(cols), 200_000)))
    suites = {"stats": lambda: stats_suite(city), "default": lambda: build_pipeline(city, {})}
    for name, make in suites.items():
        run_pipeline(make(), small)  # warm-up: numba caches, first-call costs
        pipe = make()

        def show(done: int, total: int, dets: int, name: str = name) -> None:
            if progress:
                print(f"bench backtest: {name} {100 * done / total:.0f}% ({dets} detections)", file=sys.stderr, flush=True)

        t = time.perf_counter()
        c = read_columns(path).ordered()
        res = run_pipeline(pipe, c, progress=show, timings=True)
        secs = time.perf_counter() - t
        out[name] = {"readings": res.readings, "rows": res.rows, "seconds": round(secs, 3),
                     "readings_per_s": round(res.readings / secs), "pipeline_seconds": round(res.seconds, 3),
                     "frame_seconds": round(res.frame_seconds, 3), "detections": len(res.detections),
                     "stages": res.stage_seconds}
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.backtest_bench", description=__doc__.split("\n")[0])
    p.add_argument("--days", type=float, default=7.0)
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = p.parse_args(argv)
    doc = run(args.days, progress=not args.quiet)
    base = doc["baseline"]["readings_per_s"]
    print(f"bench backtest suite=read readings={doc['baseline']['readings']} readings_per_s={base} baseline={base}", flush=True)
    for name in ("stats", "default"):
        r = doc[name]
        pipe_rate = round(r["readings"] / r["pipeline_seconds"])
        print(f"bench backtest suite={name} readings={r['readings']} readings_per_s={r['readings_per_s']} baseline={base} "
              f"ratio={r['readings_per_s'] / base:.3f} pipeline_only_readings_per_s={pipe_rate} seconds={r['seconds']} "
              f"detections={r['detections']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
