"""``lifewatch demo`` (what ``make demo`` runs): the platform on a simulated city.

Starts the project-local services (those not already running), ingest in the
foreground, and the Shihezi simulator at 60x in a child process; prints what
runs and how to look; prints the status every 30 s.  Ctrl-C (or
``--duration``) stops the simulator, flushes ingest, prints a final status
and stops the services the demo itself started.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time

from ingest.service import Ingest
from lifewatch.services import ServiceError, influxd_service, mosquitto_service
from lifewatch.settings import Settings
from lifewatch.status import collect

log = logging.getLogger("lifewatch.demo")

# NAME@TARGET@START+DURATION, START relative to the simulation's start (at 60x, 1 simulated minute per second)
DEMO_INCIDENTS = (
    "power.outage@fdr-d02-1@+20m+20m",
    "gas.leak@gas-d03-1@+30m+40m",
    "water.low_pressure@dma-d01-2@+45m+30m",
    "bridge.overload@br-d02-1@+60m+10m",
    "air.dust@d05@+75m+1h",
)

BANNER = """
Lifewatch demo: the simulated city of Shihezi (Xinjiang, UTC+6), {sensors} sensors, at {speed}x
  broker    mqtt://{mqtt_host}:{mqtt_port}     (anonymous on loopback: demo mode)
  InfluxDB  {influx_url}  database {db}
  metrics   http://{metrics}/metrics
  alerts    http://{api}/console  (crew console)   http://{api}/docs  (API)
            demo tokens: demo-operator, demo-supervisor, demo-crew-<unit> e.g. demo-crew-{unit}
  state     {state}   (service logs under services/, dead letters in deadletter.sqlite)

How to look, from another terminal:
  .venv/bin/lifewatch status                  readings per lifeline over the last 10 min
  .venv/bin/lifewatch deadletter list         rejected messages, with reasons
  mosquitto_sub -p {mqtt_port} -t '{prefix}/#' -v
  curl -s -H 'Authorization: Bearer demo-operator' http://{api}/api/alerts   the queue, by priority
  curl -sG {influx_url}/query --data-urlencode db={db} --data-urlencode 'q=SHOW MEASUREMENTS'

Ctrl-C stops everything cleanly.{duration_note}
"""


def _status_line(settings: Settings) -> str:
    doc, ok = collect(settings, "10m")
    if not ok:
        return f"status: InfluxDB unreachable ({doc.get('error')})"
    parts = [f"{lid}={c['readings']}" for lid, c in doc["lifelines"].items()]
    return f"status (last 10 min of event time): {' '.join(parts)} dead_letters={doc.get('dead_letters')}"


def cli(args, settings: Settings) -> int:  # noqa: ANN001
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = settings.replace(demo=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    started = []
    try:
        for svc in (mosquitto_service(settings), influxd_service(settings)):
            if not svc.is_running():
                svc.preflight()
                svc.start()
                started.append(svc)
            svc.wait_healthy(30)
    except ServiceError as exc:
        print(f"lifewatch demo: {exc}", file=sys.stderr)
        for svc in reversed(started):
            svc.stop()
        return 1

    from lifewatch.city import load_city

    city = load_city(settings.city_file or None)
    ingest = Ingest(settings)
    ingest.start(stop)
    if not ingest.consumer.subscribed.wait(30):
        print("lifewatch demo: ingest could not subscribe to the broker", file=sys.stderr)
        stop.set()

    sim_cmd = [sys.executable, "-m", "lifewatch.cli", "simulate", "--speed", str(args.speed), "--seed", str(args.seed),
               "--labels", str(settings.state_dir / "demo-labels.json")]
    for spec in DEMO_INCIDENTS:  # incidents the standard thresholds see at once (no learning needed)
        sim_cmd += ["--scenario", spec]
    if args.duration:
        # a bounded run starts duration x speed in the past, so it ends at the wall clock
        span = args.duration * (float(args.speed) if args.speed != "max" else 60.0)
        sim_cmd += ["--wall-duration", str(args.duration), "--duration", f"{span:.0f}s"]
    import os

    env = {**os.environ, **settings.to_env()}
    from alerts.config import AlertSettings

    api_settings = AlertSettings.from_settings(settings)
    api = subprocess.Popen([sys.executable, "-m", "lifewatch.cli", "api"], env=env)
    notify = subprocess.Popen([sys.executable, "-m", "lifewatch.cli", "notify"], env=env)
    sim = subprocess.Popen(sim_cmd, env=env)
    print(
        BANNER.format(
            sensors=len(city.sensors), speed=args.speed, mqtt_host=settings.mqtt_host, mqtt_port=settings.mqtt_port,
            influx_url=settings.influx_url, db=settings.influx_db, metrics=settings.metrics_addr or "(off)",
            state=settings.state_dir, prefix=settings.topic_prefix,
            api=f"{api_settings.api_host}:{api_settings.api_port}", unit=city.unit_for("water", next(iter(city.districts))).id,
            duration_note=f"\nStopping by itself after {args.duration:g} s." if args.duration else "",
        ),
        flush=True,
    )
    t_end = time.monotonic() + args.duration if args.duration else None
    next_status = time.monotonic() + 30
    rc = 0
    while not stop.is_set():
        if t_end is not None and time.monotonic() >= t_end:
            break
        if sim.poll() is not None and t_end is None:
            log.error("the simulator exited with code %s", sim.returncode)
            rc = 1
            break
        if time.monotonic() >= next_status:
            print(_status_line(settings), flush=True)
            next_status += 30
        stop.wait(0.5)

    print("stopping: simulator, then ingest (flushing), then the services the demo started", flush=True)
    if sim.poll() is None:
        sim.send_signal(signal.SIGINT)
        try:
            sim.wait(30)
        except subprocess.TimeoutExpired:
            sim.kill()
    time.sleep(1.0)  # let the last PUBACKed messages reach ingest
    ingest.stop()
    for child in (notify, api):
        child.terminate()
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
    print(_status_line(settings), flush=True)
    from lifewatch.status import cli as status_cli

    class _A:  # the status command's arguments
        since = "10m"
        json = False

    status_cli(_A(), settings)
    for svc in reversed(started):
        svc.stop()
    if started:
        print("services stopped (data kept in " + str(settings.state_dir / "services") + ")")
    return rc
