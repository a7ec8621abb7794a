"""End-to-end latency: a reading published over MQTT -> the alert it raises is in the queue.

One run, all on this machine, every service our own (free ports, temp dirs):

* Mosquitto and InfluxDB (:mod:`lifewatch.services`), and ``lifewatch ingest``
  as a subprocess (``LIFEWATCH_*`` from :meth:`Settings.to_env`; default
  batching, detectors and the alert intake on, alerts in a SQLite file).
* The demo city (:class:`simulators.engine.Simulation`) published reading by
  reading (:class:`simulators.publisher.MqttPublisher`, QoS 1, batch=0) at a
  sustained ``rate`` readings/s, with at most 1,000 messages unacknowledged
  (paho's in-flight window: what is handed to the client is on the wire).
  When this machine cannot carry the rate, the publisher falls behind
  (``achieved_per_s``) rather than queueing.  The city makes 5.9 readings
  per simulated second, so event time runs ``rate / 5.9`` times faster than
  the wall clock (170x at 1,000/s); it starts in the past and never passes now.
* Incidents that threshold rules answer without warm-up (``INCIDENTS``:
  feeder outage, voltage sag, gas leak, gas overpressure, low pressure), one
  every ``incident_every_s`` wall seconds after a warm-up (planned for the
  target rate: a publisher that falls behind reaches fewer of them), each on
  an asset of its own so every alert is a new one (no dedup, no re-open).

Measured:

* ``latency`` per alert raised by an incident: the alert's ``created_at``
  (wall clock of the intake, in the outbox row ``alert.raised``, written in
  the same transaction) minus the wall time the reading that triggered it
  was handed to the MQTT client.  The triggering reading is the one of the
  alert's sensors whose event time is the raise's (``last_seen`` of the alert
  as raised).  Readings go out in slices every 5 ms; a slice's readings
  carry the wall time just before the slice was sent, so a figure may be
  long by up to ``publish_slice_max_ms`` (the slowest send; small unless the
  publisher waits for acknowledgements).  ``seen`` is the same up to the
  moment a poller (every 20 ms) saw the row: ``created_at`` is taken when
  the intake's transaction begins, the row is visible once it commits.
* baseline, same run: publish -> the point is in InfluxDB, for ~5 ordinary
  readings a second after the warm-up, found by polling InfluxDB every 10 ms
  (so it includes up to one poll interval and one query).  Alerts come after
  the InfluxDB write (the detectors run on a written batch before it is
  acknowledged), so the baseline is roughly the floor of the alert latency.
* ingest lag: readings the broker has acknowledged but ingest has not yet
  written to InfluxDB (ingest's ``/metrics``, every 0.5 s): the largest
  backlog in readings and in seconds at the achieved rate, and how long
  ingest took to write everything after the last publish.  (Ingest's own
  ``lifewatch_ingest_lag_seconds`` is arrival minus event time, meaningless
  when event time is compressed.)

``run(rate=1000, seconds=60) -> dict``; ``python -m bench.latency_bench``
prints ``bench latency rate=<r> incidents=<n> p50_ms=<x> p99_ms=<y>
baseline_publish_to_influx_p50_ms=<z> ...`` (``incidents``: those whose start
was published; ``detected``: those that raised an alert).  The machine is shared and
noisy: p99 over a few hundred alerts is close to the worst one.
"""

from __future__ import annotations

import argparse
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NS = 1_000_000_000
SLICE_S = 0.005  # pacing granularity: readings go out in 5 ms slices
PROBES_PER_S = 5.0  # baseline probes per wall second
INFLUX_POLL_S = 0.010
ALERT_POLL_S = 0.020
SCRAPE_S = 0.5

# (scenario, asset kind prefix): threshold rules raise these at once, no warm-up (explored on the demo city:
# outage 3.5 s of event time after the start, sag 0.04 s, gas leak 24 s, overpressure 18 s, low pressure
# ~8.5 min because the DMA's pressure sinks towards its new level with a time constant)
INCIDENTS = [
    ("power.outage", "fdr-"),
    ("gas.leak", "gas-"),
    ("power.sag", "fdr-"),
    ("water.low_pressure", "dma-"),
    ("gas.overpressure", "gas-"),
]
INCIDENT_EVENT_S = 900.0  # each incident lasts 15 simulated minutes (low pressure needs ~9 to cross its threshold)


@dataclass
class Services:
    workdir: Path
    mosquitto: object
    influxd: object
    ingest: subprocess.Popen | None = None
    ingest_log: Path | None = None
    log_fh: object = None

    def stop(self) -> None:
        if self.ingest is not None and self.ingest.poll() is None:
            self.ingest.terminate()
            try:
                self.ingest.wait(30)
            except subprocess.TimeoutExpired:
                self.ingest.kill()
                self.ingest.wait(5)
        for svc in (self.mosquitto, self.influxd):
            if svc is not None:
                svc.stop()
        if self.log_fh is not None:
            self.log_fh.close()
        shutil.rmtree(self.workdir, ignore_errors=True)


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values), q)), 1) if values else None


def _start_services(workdir: Path):  # noqa: ANN202
    from lifewatch.services import InfluxdService, MosquittoService, free_port

    mq = MosquittoService(workdir / "mosquitto", free_port(), allow_anonymous=True, max_inflight=20000, max_queued=0)
    mq.start()
    ix = InfluxdService(workdir / "influxd", free_port(), free_port())
    ix.start()
    mq.wait_healthy(30)
    ix.wait_healthy(30)
    return mq, ix


def _metrics(url: str) -> dict[str, float]:
    """The ingest's Prometheus counters we need (sums over labels)."""
    out: dict[str, float] = {}
    text = httpx.get(url, timeout=2.0).text
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^([a-zA-Z_:]+)(\{[^}]*\})?\s+(\S+)", line)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0.0) + float(m.group(3))
    return out


def _plan(city, seconds: float, warmup_s: float, every_s: float, start_ns: int, speed: float):  # noqa: ANN001, ANN202
    """The incidents: one every ``every_s`` wall seconds after the warm-up, each on an unused asset, each over
    (in event time) a second before the publishing ends, so that every one has played out by then."""
    from simulators.scenarios import make_incident

    assets = sorted(city.assets)
    used: set[str] = set()
    out = []
    k = 0
    t = warmup_s
    while t + INCIDENT_EVENT_S / speed + 1.0 < seconds:
        name, prefix = INCIDENTS[k % len(INCIDENTS)]
        free = [a for a in assets if a.startswith(prefix) and a not in used]
        if not free:
            break
        target = free[(k * 7) % len(free)]  # spread over the districts
        used.add(target)
        out.append(make_incident(name, target, start_ns + int(t * speed * NS), INCIDENT_EVENT_S))
        k += 1
        t += every_s
    return out


class Published:
    """Publish wall time of every reading: sensor index, event time and wall time as growing numpy arrays."""

    def __init__(self, sensor_index: dict[str, int]):
        self.index = sensor_index
        self._s: list[np.ndarray] = []
        self._t: list[np.ndarray] = []
        self._w: list[np.ndarray] = []

    def add(self, readings: list, wall: float) -> None:
        self._s.append(np.fromiter((self.index[r.sensor_id] for r in readings), dtype=np.int32, count=len(readings)))
        self._t.append(np.fromiter((r.ts_ns for r in readings), dtype=np.int64, count=len(readings)))
        self._w.append(np.full(len(readings), wall))

    def freeze(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.concatenate(self._s), np.concatenate(self._t), np.concatenate(self._w)


def _chunks(sim, start_ns: int, per_chunk_event_s: float) -> Iterator[list]:  # noqa: ANN001
    t = start_ns
    step = int(per_chunk_event_s * NS)
    while True:
        rs = sim.readings_between(t, t + step)
        t += step
        if rs:
            yield rs


def run(rate: float = 1000, seconds: float = 60, *, warmup_s: float = 5.0, incident_every_s: float = 4.0,
        seed: int = 7, flush_interval: float | None = None, batch_size: int | None = None, verbose: bool = True) -> dict:
    """Publish the demo city at ``rate`` readings/s for ``seconds`` with incidents; latencies in ms."""
    from sqlalchemy import inspect, select

    from alerts.db import make_engine
    from alerts.models import Outbox
    from lifewatch.city import load_city
    from lifewatch.influx import InfluxClient
    from lifewatch.lineprotocol import quote_ident, quote_literal
    from lifewatch.model import parse_ts
    from lifewatch.services import free_port
    from lifewatch.settings import Settings
    from simulators.engine import Simulation
    from simulators.publisher import MqttPublisher

    def say(msg: str) -> None:
        if verbose:
            print(f"# latency rate={rate:g}: {msg}", file=sys.stderr, flush=True)

    city = load_city()
    city_rate = sum(1.0 / s.interval_s for s in city.sensors.values())  # readings per simulated second
    speed = rate / city_rate
    span_s = (seconds + 10) * speed
    now_s = int(time.time())
    start_ns = (now_s - int(span_s) - 120) // 60 * 60 * NS  # event time stays behind the wall clock
    incidents = _plan(city, seconds, warmup_s, incident_every_s, start_ns, speed)
    sim = Simulation(city, seed=seed, start_ns=start_ns, incidents=incidents)
    labels = sim.labels()
    sensor_ids = list(city.sensors)
    published = Published({sid: i for i, sid in enumerate(sensor_ids)})

    workdir = Path(tempfile.mkdtemp(prefix="lw-bench-latency."))
    say(f"services in {workdir}; speed {speed:.0f}x, {len(incidents)} incidents")
    mq, ix = _start_services(workdir)
    svc = Services(workdir, mq, ix)
    try:
        metrics_port = free_port()
        settings = Settings(
            state_dir=workdir / "state", demo=True, mqtt_host=mq.host, mqtt_port=mq.port,
            mqtt_client_id=f"lw-bench-latency-{os.getpid()}", influx_url=ix.url, influx_rpc_port=ix.rpc_port,
            influx_db="bench", metrics_addr=f"127.0.0.1:{metrics_port}", detectors=True, alert_intake=True,
        )
        if flush_interval is not None:
            settings = settings.replace(flush_interval=flush_interval)
        if batch_size is not None:
            settings = settings.replace(batch_size=batch_size)
        settings.validate()
        db_path = workdir / "state" / "alerts.sqlite"
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFEWATCH_")}
        env.update(settings.to_env())
        env["LIFEWATCH_ALERTS_DB_URL"] = f"sqlite:///{db_path}"
        with InfluxClient(ix.url, "bench") as admin:
            admin.create_database()
        svc.ingest_log = workdir / "ingest.log"
        svc.log_fh = svc.ingest_log.open("wb")
        svc.ingest = subprocess.Popen([sys.executable, "-m", "lifewatch.cli", "ingest"], cwd=ROOT, env=env,
                                      stdout=svc.log_fh, stderr=subprocess.STDOUT)
        metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

        # ready: metrics served, connected, and one reading written end to end (the subscription is live)
        deadline = time.monotonic() + 60
        while True:
            if svc.ingest.poll() is not None:
                raise RuntimeError(f"ingest exited {svc.ingest.returncode}: {svc.ingest_log.read_text()[-2000:]}")
            try:
                if _metrics(metrics_url).get("lifewatch_ingest_mqtt_connected") == 1.0:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("ingest did not come up within 60 s")
            time.sleep(0.2)

        # at most paho's in-flight window (1,000) unacknowledged: a reading handed to the client is on the wire,
        # not waiting in the client's queue, so when this machine cannot carry the rate the publisher slows down
        # (achieved_per_s) instead of its queue passing for latency
        pub = MqttPublisher(settings, batch=0, client_id=f"lw-bench-pub-{os.getpid()}", max_unacked=1000).connect()
        chunks = _chunks(sim, start_ns, max(60.0, speed))  # about one wall second of readings per chunk
        first = next(chunks)
        ready_deadline = time.monotonic() + 60
        pending = list(first)
        while True:  # publish a reading at a time until one has landed: detectors compiled, subscription live
            r = pending.pop(0)
            published.add([r], time.time())
            pub.send([r])
            time.sleep(0.2)
            if _metrics(metrics_url).get("lifewatch_ingest_points_written_total", 0) >= 1:
                break
            if time.monotonic() > ready_deadline:
                raise RuntimeError(f"no reading reached InfluxDB within 60 s: {svc.ingest_log.read_text()[-2000:]}")
        say(f"ingest ready after {pub.readings} warm-up readings")

        # generator thread keeps a chunk or two ahead of the publisher
        ahead: queue.Queue = queue.Queue(maxsize=3)
        stop = threading.Event()

        def produce() -> None:
            ahead.put(pending)
            for rs in chunks:
                while not stop.is_set():
                    try:
                        ahead.put(rs, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return

        probes: queue.Queue = queue.Queue()  # (lifeline, sensor_id, ts_ns, wall)
        probe_times: list[tuple[float, float]] = []  # (published wall, landed wall)
        raised: dict[int, tuple] = {}  # outbox id -> (alert_id, created_at, seen wall, payload alert)
        backlog: list[tuple[float, int, int, float]] = []  # (wall, handed to the client, PUBACKed, written)

        def poll_influx() -> None:
            with InfluxClient(ix.url, "bench", timeout=5.0) as client:
                outstanding: list[tuple] = []
                while not stop.is_set() or outstanding or not probes.empty():
                    while not probes.empty():
                        outstanding.append(probes.get())
                    while outstanding:
                        lifeline, sid, ts, wall = outstanding[0]
                        q = (f"SELECT count(seq) FROM {quote_ident(lifeline)} WHERE sensor_id = {quote_literal(sid)} "
                             f"AND time = {ts}")
                        try:
                            found = bool(client.query(q))
                        except Exception:  # noqa: BLE001 - a slow or refused query: try again next round
                            found = False
                        if not found:
                            break
                        probe_times.append((wall, time.time()))
                        outstanding.pop(0)
                    if stop.is_set() and time.time() > stop_at[0] + 30:
                        return
                    time.sleep(INFLUX_POLL_S)

        engine = make_engine(f"sqlite:///{db_path}")

        def poll_alerts() -> None:
            last = 0
            ready = False
            while True:
                try:
                    ready = ready or inspect(engine).has_table("outbox")
                    if ready:
                        with engine.connect() as c:
                            rows = c.execute(select(Outbox.id, Outbox.alert_id, Outbox.created_at, Outbox.payload)
                                             .where(Outbox.kind == "alert.raised", Outbox.id > last)
                                             .order_by(Outbox.id)).all()
                        seen = time.time()
                        for oid, aid, created, payload in rows:
                            raised[oid] = (aid, created.timestamp(), seen, payload["alert"])
                            last = max(last, oid)
                except Exception:  # noqa: BLE001 - the intake holds the write lock or is migrating: next round
                    pass
                if stop.is_set() and time.time() > stop_at[0] + drain_wait[0]:
                    return
                time.sleep(ALERT_POLL_S)

        def scrape() -> None:
            while not (stop.is_set() and time.time() > stop_at[0] + drain_wait[0]):
                try:
                    m = _metrics(metrics_url)
                    backlog.append((time.time(), pub.messages, pub.acked, m.get("lifewatch_ingest_points_written_total", 0.0)))
                except (httpx.HTTPError, OSError):
                    pass
                time.sleep(SCRAPE_S)

        stop_at = [float("inf")]
        drain_wait = [30.0]
        threads = [threading.Thread(target=f, daemon=True, name=f.__name__) for f in (produce, poll_influx, poll_alerts, scrape)]
        for t in threads:
            t.start()

        say(f"publishing {rate:g} readings/s for {seconds:g} s")
        probe_every = max(1, int(rate / PROBES_PER_S))
        t0 = time.perf_counter()
        wall0 = time.time()
        sent = 0
        last_ts = 0
        slice_max = 0.0
        buf: list = []
        k = 0
        max_slice = max(1, int(rate * SLICE_S * 4))  # behind schedule: small slices back to back, never a flood
        while True:
            k += 1
            delay = t0 + k * SLICE_S - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break
            n = min(int(elapsed * rate) - sent, max_slice)  # readings that should be out by now
            if n <= 0:
                continue
            while len(buf) < n:
                buf.extend(ahead.get())
            slice_, buf = buf[:n], buf[n:]
            wall = time.time()
            published.add(slice_, wall)
            pub.send(slice_)
            slice_max = max(slice_max, time.time() - wall)
            if wall - wall0 >= warmup_s:
                for i in range(sent, sent + n):
                    if i % probe_every == 0:
                        r = slice_[i - sent]
                        probes.put((r.lifeline, r.sensor_id, r.ts_ns, wall))
            sent += n
            last_ts = slice_[-1].ts_ns
        publish_s = time.perf_counter() - t0
        last_wall = time.time()
        stop_at[0] = last_wall
        stop.set()
        pub.flush(60)
        say(f"published {sent} readings in {publish_s:.1f} s ({sent / publish_s:.0f}/s); draining")

        # drain: until everything published is written (or 60 s)
        total = pub.readings
        drained_at = None
        while time.time() < last_wall + 60:
            try:
                if _metrics(metrics_url).get("lifewatch_ingest_points_written_total", 0) >= total:
                    drained_at = time.time()
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        drain_wait[0] = (drained_at or time.time()) - last_wall + 1.0  # and one more second for the last alerts
        for t in threads[1:]:
            t.join(drain_wait[0] + 35)
        pub.close(10)
        engine.dispose()
        ingest_alive = svc.ingest.poll() is None
    finally:
        svc.stop()

    # --- attribution and figures ---------------------------------------------------------------
    s_ix, s_ts, s_wall = published.freeze()
    index = published.index
    samples: list[dict] = []
    unmatched = 0
    for _oid, (aid, created, seen, alert) in sorted(raised.items()):
        raise_ns = parse_ts(alert["last_seen"])
        sens = [index[s] for s in alert["sensors"] if s in index]
        mask = np.isin(s_ix, sens)
        exact = mask & (s_ts == raise_ns)
        if exact.any():
            trigger = float(s_wall[exact].max())
        else:  # not a reading's own time (a windowed rule): the last reading of its sensors at or before it
            before = mask & (s_ts <= raise_ns)
            if not before.any():
                unmatched += 1
                continue
            trigger = float(s_wall[before].max())
            unmatched += 1
        samples.append({"alert": aid, "kind": alert["kind"], "sensors": alert["sensors"], "raise_ns": raise_ns,
                        "latency_ms": (created - trigger) * 1000, "seen_ms": (seen - trigger) * 1000,
                        "published": trigger})
    per_incident = []
    in_incident: set[str] = set()
    for inc, lab in zip(incidents, labels, strict=True):
        ss = set(lab["sensors"])
        mine = [x for x in samples if ss & set(x["sensors"]) and inc.start_ns <= x["raise_ns"] <= inc.end_ns + 600 * NS]
        in_incident.update(x["alert"] for x in mine)
        first = min(mine, key=lambda x: x["raise_ns"]) if mine else None
        per_incident.append({
            "scenario": inc.scenario, "target": inc.target, "published": inc.start_ns <= last_ts, "alerts": len(mine),
            "detect_event_s": round((first["raise_ns"] - inc.start_ns) / NS, 3) if first else None,
            "first_alert_latency_ms": round(first["latency_ms"], 1) if first else None,
        })
    inc_samples = [x for x in samples if x["alert"] in in_incident]
    lat = [x["latency_ms"] for x in inc_samples]
    seen = [x["seen_ms"] for x in inc_samples]
    base = [(landed - pubw) * 1000 for pubw, landed in probe_times]
    ingest_backlog = max((a - w for _, _, a, w in backlog), default=None)  # at the broker or in ingest, not written
    client_backlog = max((h - a for _, h, a, _ in backlog), default=None)  # handed to the MQTT client, not PUBACKed
    achieved = sent / publish_s
    result = {
        "rate": rate,
        "seconds": seconds,
        "published": int(sent),
        "achieved_per_s": round(achieved, 1),
        "publish_slice_max_ms": round(slice_max * 1000, 1),  # the most a recorded publish time can be early by
        "speed": round(speed, 1),
        "settings": {"batch_size": settings.batch_size, "flush_interval": settings.flush_interval,
                     "detectors": True, "alert_intake": True, "alerts_db": "sqlite"},
        "incidents_planned": len(incidents),
        "incidents": sum(1 for p in per_incident if p["published"]),  # those whose start was published
        "incidents_detected": sum(1 for p in per_incident if p["alerts"]),
        "alerts": len(inc_samples),
        "alerts_other": len(samples) - len(inc_samples),
        "alerts_trigger_not_exact": unmatched,
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "max_ms": pct(lat, 100),
        "seen_p50_ms": pct(seen, 50),
        "seen_p99_ms": pct(seen, 99),
        "baseline_publish_to_influx_p50_ms": pct(base, 50),
        "baseline_publish_to_influx_p99_ms": pct(base, 99),
        "baseline_probes": len(base),
        "ingest_backlog_max_readings": int(ingest_backlog) if ingest_backlog is not None else None,
        "ingest_backlog_max_s": round(ingest_backlog / achieved, 3) if ingest_backlog is not None else None,
        "publisher_backlog_max_readings": int(client_backlog) if client_backlog is not None else None,
        "ingest_drain_s": round(drained_at - last_wall, 3) if drained_at else None,
        "ingest_alive_at_end": ingest_alive,
        "per_incident": per_incident,
        # for plots and post-mortems: seconds after the first paced slice
        "series": {
            "alerts": [(round(x["published"] - wall0, 3), round(x["latency_ms"], 1)) for x in inc_samples],
            "baseline": [(round(p - wall0, 3), round((landed - p) * 1000, 1)) for p, landed in probe_times],
            "backlog": [(round(w - wall0, 3), h - a, int(a - n)) for w, h, a, n in backlog],
        },
    }
    return result


def line(r: dict) -> str:
    return (f"bench latency rate={r['rate']:g} incidents={r['incidents']} p50_ms={r['p50_ms']} p99_ms={r['p99_ms']} "
            f"baseline_publish_to_influx_p50_ms={r['baseline_publish_to_influx_p50_ms']} "
            f"alerts={r['alerts']} detected={r['incidents_detected']} achieved_per_s={r['achieved_per_s']:.0f} "
            f"baseline_p99_ms={r['baseline_publish_to_influx_p99_ms']} seen_p50_ms={r['seen_p50_ms']} "
            f"ingest_backlog_max_s={r['ingest_backlog_max_s']} ingest_drain_s={r['ingest_drain_s']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=float, action="append", help="readings/s (repeatable; default 1000)")
    ap.add_argument("--seconds", type=float, default=60.0, help="publishing time per rate (default 60)")
    ap.add_argument("--flush-interval", type=float, default=None, help="ingest flush interval (default: the setting's)")
    ap.add_argument("--json", action="store_true", help="print the full result as JSON too")
    args = ap.parse_args(argv)
    ok = True
    for rate in args.rate or [1000.0]:
        r = run(rate=rate, seconds=args.seconds, flush_interval=args.flush_interval)
        print(line(r), flush=True)
        if args.json:
            import json

            print(json.dumps(r, indent=2))
        ok = ok and r["alerts"] > 0 and r["ingest_alive_at_end"]
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
