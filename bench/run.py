"""``make bench``: ingest throughput and CPU, single and gateway-batch payloads, against baselines from the same run.

1. Drain comparison (../shared/peers/ingest-drain): Node-RED first, the
   harness's reference Python consumer, and Lifewatch ingest last, on the
   harness's built-in single-reading messages.  The harness's stdout lines are
   printed unchanged (``ratio=`` is Lifewatch / Node-RED).
2. Gateway batches: the simulated city as batch payloads of 100 readings,
   drained by Lifewatch ingest; baseline = InfluxDB's own write rate for the
   same points in the same batches, measured in this run.
3. Detectors: µs per reading of each lifeline's full suite and state bytes
   per sensor (bench/detectors_bench.py), against the cost of building the
   frames alone.
4. End-to-end latency, publish to alert in the queue (bench/latency_bench.py).
5. Backtest readings/s (bench/backtest_bench.py), against reading the
   recording alone.

Every figure is also written to ``bench/results/latest.json``.  This machine
is shared and noisy: compare ratios, not absolute rates.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT.parent / "shared" / "peers" / "ingest-drain" / "run.sh"
CONSUMER = f"lifewatch=cmd:LIFEWATCH_DETECTORS=0 exec {ROOT / 'bench' / 'drain_consumer.sh'}"
CONSUMER_DETECTORS = f"lifewatch-detectors=cmd:LIFEWATCH_DETECTORS=1 exec {ROOT / 'bench' / 'drain_consumer.sh'}"
INFLIGHT = 10_000  # >= one Lifewatch batch (5,000); the same window for every consumer of a run

LINE = re.compile(r"^drain consumer=(\S+) n=(\d+) landed=(\d+) seconds=([\d.]+) msgs_per_s=([\d.]+) cpu_s=([\d.]+) rss_mib=([\d.]+)")


def harness(args: list[str]) -> list[str]:
    """Run the drain harness; echo its stdout unchanged and return the lines."""
    if not HARNESS.exists():
        raise SystemExit(f"bench: the drain harness is not at {HARNESS}")
    cmd = ["bash", str(HARNESS), "--broker-inflight", str(INFLIGHT), *args]
    print(f"# {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    lines = proc.stdout.splitlines()
    for line in lines:
        print(line, flush=True)
    if proc.returncode != 0:
        print(f"bench: the harness exited {proc.returncode}", file=sys.stderr)
    return lines


def parse(lines: list[str]) -> dict[str, dict]:
    out = {}
    for line in lines:
        m = LINE.match(line)
        if m:
            name, n, landed, secs, rate, cpu, rss = m.groups()
            out[name] = {"n": int(n), "landed": int(landed), "seconds": float(secs), "per_s": float(rate),
                         "cpu_s": float(cpu), "rss_mib": float(rss),
                         "cpu_s_per_10k": round(float(cpu) * 10_000 / max(int(landed), 1), 3)}
    return out


def simulated_messages(path: Path, batch: int, points: int) -> int:
    """The demo city as JSON Lines messages (single or gateway batches); returns the points written."""
    cmd = [sys.executable, "-m", "lifewatch.cli", "simulate", "--speed", "max", "--seed", "7",
           "--start", "2026-01-01T00:00:00Z", "--duration", _duration_for(points), "--out", str(path)]
    if batch:
        cmd += ["--batch", str(batch)]
    subprocess.run(cmd, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    n = 0
    with path.open("rb") as fh:
        for line in fh:
            doc = json.loads(line)
            n += len(doc["payload"]) if isinstance(doc["payload"], list) else 1
    return n


def _duration_for(points: int) -> str:
    from lifewatch.city import load_city

    city = load_city()
    per_hour = sum(3600 / s.interval_s for s in city.sensors.values())
    return f"{max(1, int(points / per_hour) + 1)}h"


def influx_baseline(messages: Path, batch_points: int = 5000) -> dict:
    """InfluxDB's own rate for the same points, written directly in batches of ``batch_points``."""
    from lifewatch.influx import InfluxClient
    from lifewatch.lifelines import load_lifelines
    from lifewatch.lineprotocol import encode_reading
    from lifewatch.model import Limits, parse_message
    from lifewatch.services import InfluxdService, free_port

    lifelines = load_lifelines()
    lines = []
    with messages.open("rb") as fh:
        for raw in fh:
            doc = json.loads(raw)
            readings, _ = parse_message(doc["topic"], json.dumps(doc["payload"]).encode(), lifelines, time.time_ns(), Limits())
            lines.extend(encode_reading(r) for r in readings)
    bodies = ["\n".join(lines[i : i + batch_points]).encode() for i in range(0, len(lines), batch_points)]
    workdir = Path(tempfile.mkdtemp(prefix="lw-bench-influx."))
    svc = InfluxdService(workdir, free_port(), free_port())
    svc.start()
    try:
        svc.wait_healthy(30)
        with InfluxClient(svc.url, "bench") as client:
            client.create_database()
            t0 = time.perf_counter()
            for body in bodies:
                client.write(body)
            secs = time.perf_counter() - t0
    finally:
        svc.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {"points": len(lines), "seconds": round(secs, 3), "per_s": round(len(lines) / secs, 1), "batch_points": batch_points}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000, help="readings per drain (default 200,000)")
    ap.add_argument("--skip-peers", action="store_true", help="Lifewatch only (no Node-RED / ref-python)")
    args = ap.parse_args()
    results: dict = {"n": args.n, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    print("== 1. drain: single-reading messages, Node-RED first, Lifewatch last", flush=True)
    consumers = [] if args.skip_peers else ["--consumer", "nodered", "--consumer", "ref-python"]
    lines = harness(["--n", str(args.n), *consumers, "--consumer", CONSUMER])
    single = parse(lines)
    results["drain_single"] = single
    if "lifewatch" in single:
        lw = single["lifewatch"]
        print(f"bench ingest payload=single readings_per_s={lw['per_s']:.0f} cpu_s_per_10k={lw['cpu_s_per_10k']}")
        if "nodered" in single:
            results["ratio_vs_nodered"] = round(lw["per_s"] / single["nodered"]["per_s"], 3)

    print("== 1b. drain with detectors and the alert intake on: simulated city, single readings, Node-RED first", flush=True)
    with tempfile.TemporaryDirectory(prefix="lw-bench.") as tmp:
        msgs = Path(tmp) / "single.jsonl"
        points = simulated_messages(msgs, 0, args.n)
        consumers = [] if args.skip_peers else ["--consumer", "nodered"]
        lines = harness(["--messages", str(msgs), "--points", str(points), *consumers, "--consumer", CONSUMER_DETECTORS])
        results["drain_detectors"] = parse(lines)

    print("== 2. gateway batches of 100 readings (simulated city) vs InfluxDB's own write rate", flush=True)
    with tempfile.TemporaryDirectory(prefix="lw-bench.") as tmp:
        msgs = Path(tmp) / "batches.jsonl"
        points = simulated_messages(msgs, 100, args.n)
        base = influx_baseline(msgs)
        print(f"bench baseline=influx_direct_write points={base['points']} batch_points={base['batch_points']} points_per_s={base['per_s']:.0f}")
        lines = harness(["--messages", str(msgs), "--points", str(points), "--consumer", CONSUMER.replace("lifewatch=", "lifewatch-batch=")])
        batch = parse(lines).get("lifewatch-batch")
    results["influx_baseline"] = base
    results["drain_batch"] = batch
    if batch:
        ratio = batch["per_s"] / base["per_s"]
        results["batch_ratio_vs_influx"] = round(ratio, 3)
        print(f"bench ingest payload=batch100 readings_per_s={batch['per_s']:.0f} cpu_s_per_10k={batch['cpu_s_per_10k']} "
              f"ratio_vs_influx_direct={ratio:.3f}")
    print("== 3. detectors: each lifeline's full suite, one simulated day, live-sized batches", flush=True)
    from bench import detectors_bench

    results["detectors_city"] = detectors_bench.city_state()
    print(f"bench detectors city state_bytes_per_sensor={results['detectors_city']['state_bytes_per_sensor']} target=4096")
    results["detectors"] = detectors_bench.run()
    for row in results["detectors"]:
        print(f"bench detectors lifeline={row['lifeline']} us_per_reading={row['us_per_reading']} "
              f"baseline_frame_us_per_reading={row['frame_us_per_reading']} state_bytes_per_sensor={row['state_bytes_per_sensor']}")
    print("== 4. end-to-end latency: publish -> alert in the queue, with incidents, vs publish -> InfluxDB", flush=True)
    from bench import latency_bench

    results["latency"] = []
    for rate in (1000, 10000):  # 10,000/s is the stretch: achieved_per_s says what this machine carried
        try:
            r = latency_bench.run(rate=rate, seconds=60)
        except Exception as exc:  # noqa: BLE001 - keep the figures of the other sections
            print(f"bench latency rate={rate} error={type(exc).__name__}: {exc}", flush=True)
            results["latency"].append({"rate": rate, "error": f"{type(exc).__name__}: {exc}"})
            continue
        results["latency"].append(r)
        print(latency_bench.line(r), flush=True)
    print("== 5. backtest: a simulated week through the statistical suite and the default pipeline", flush=True)
    from bench import backtest_bench

    backtest_bench.main(["--quiet"])
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    ok = bool(single.get("lifewatch")) and bool(batch) and single["lifewatch"]["landed"] == single["lifewatch"]["n"]
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
