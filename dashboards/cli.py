"""``lifewatch dashboards build|push|materialize|seed-metadata``.

Wiring (``lifewatch/cli.py``)::

    "dashboards": ("dashboards.cli:cli", "build, push and feed the Grafana dashboards", dashboards.cli.add_arguments)

``add_arguments(p)`` adds the sub-commands (``args.action``); this module
imports nothing heavy at import time, so ``lifewatch --help`` stays fast.

* ``build [--out DIR] [--city FILE] [--api-url URL] [--aqi-rules R]``: write ``DIR/<city>/*.json``
  (default DIR ``dashboards/json``, the checked-in folder when run from the repository root);
* ``push --url URL [--token TOKEN] [--city FILE] [--api-url URL] [--aqi-rules R] [--timeout S]``: create or update them
  in a running Grafana (token: ``--token`` or the ``GRAFANA_TOKEN`` environment variable);
* ``materialize [--interval 60s] [--once | --check]``: the derived-state writer the overview reads
  (:mod:`dashboards.materialize`), until SIGTERM/SIGINT; ``--check`` is the container health check;
* ``seed-metadata``: write the sensors' coordinates (``lifewatch_meta.sensors``) and exit.

The city is ``--city``, else ``LIFEWATCH_CITY_FILE``, else the bundled demo city.
"""

from __future__ import annotations

import argparse
import os
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--city", help="city file (default LIFEWATCH_CITY_FILE, else the bundled demo city)")
        sp.add_argument("--api-url", help="alert API base URL the alert rows link to (default http://localhost:18080)")
        sp.add_argument("--aqi-rules", choices=["HJ 633-2026", "HJ 633-2012"], help="AQI breakpoints for the air bands (default HJ 633-2026)")

    b = sub.add_parser("build", help="write the dashboards as Grafana JSON (one folder per city)")
    b.add_argument("--out", default="dashboards/json", help="output folder (default dashboards/json)")
    common(b)
    ps = sub.add_parser("push", help="create or update the dashboards in a running Grafana (idempotent by uid)")
    ps.add_argument("--url", required=True, help="Grafana base URL, e.g. http://localhost:3000")
    ps.add_argument("--token", help="service account token (default: the GRAFANA_TOKEN environment variable)")
    ps.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    common(ps)
    m = sub.add_parser("materialize", help="write the derived state the dashboards read (sensor state, open alerts, KPIs)")
    m.add_argument("--interval", default="60s", help="seconds between runs (default 60s, at most 150s)")
    m.add_argument("--once", action="store_true", help="one run, then exit")
    m.add_argument("--check", action="store_true",
                   help="health check: exit 0 if the derived state was written in the last 5 minutes, else 1")
    m.add_argument("--city", help="city file (default LIFEWATCH_CITY_FILE, else the bundled demo city)")
    s = sub.add_parser("seed-metadata", help="write the sensors' coordinates for the maps and exit")
    s.add_argument("--city", help="city file (default LIFEWATCH_CITY_FILE, else the bundled demo city)")


def _city(args: argparse.Namespace, settings):  # noqa: ANN001, ANN202
    from lifewatch.city import load_city

    return load_city(getattr(args, "city", None) or settings.city_file or None)


def _options(args: argparse.Namespace):  # noqa: ANN202
    from dashboards.context import BuildOptions

    changes = {k: v for k, v in (("api_url", getattr(args, "api_url", None)), ("aqi_rules", getattr(args, "aqi_rules", None))) if v}
    return BuildOptions(**changes)


def cli(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - lifewatch.settings.Settings
    from lifewatch.city import CityError

    try:
        city = _city(args, settings)
    except CityError as exc:
        print(f"lifewatch dashboards: {exc}", file=sys.stderr)
        return 2
    if args.action == "build":
        return _build(args, city)
    if args.action == "push":
        return _push(args, city)
    if args.action == "materialize":
        return _materialize(args, settings, city)
    if args.action == "seed-metadata":
        return _seed(settings, city)
    raise AssertionError(args.action)


def _build(args: argparse.Namespace, city) -> int:  # noqa: ANN001
    from pathlib import Path

    from dashboards.build import write_dashboards

    paths = write_dashboards(Path(args.out), city, _options(args))
    for p in paths:
        print(p)
    return 0


def _push(args: argparse.Namespace, city) -> int:  # noqa: ANN001
    from dashboards.build import build_dashboards, folder_title, folder_uid
    from dashboards.push import GrafanaClient, PushError, push

    token = args.token or os.environ.get("GRAFANA_TOKEN", "")
    if not token:
        print("lifewatch dashboards push: give --token or set GRAFANA_TOKEN (a Grafana service account token)", file=sys.stderr)
        return 2
    try:
        with GrafanaClient(args.url, token, timeout=args.timeout) as client:
            report = push(client, build_dashboards(city, _options(args)), folder_uid(city), folder_title(city))
    except PushError as exc:
        print(f"lifewatch dashboards push: {exc}", file=sys.stderr)
        return 1
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"Grafana {report.grafana_version}: {report.summary()}")
    return 0


def _materialize(args: argparse.Namespace, settings, city) -> int:  # noqa: ANN001
    import logging
    import signal
    import threading

    from dashboards.materialize import MaterializeConfig, Materializer
    from lifewatch.influx import InfluxClient, InfluxError
    from lifewatch.settings import parse_duration

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = MaterializeConfig(interval_s=parse_duration(args.interval))
    except ValueError as exc:
        print(f"lifewatch dashboards materialize: {exc}", file=sys.stderr)
        return 2
    with InfluxClient.from_settings(settings) as client:
        if getattr(args, "check", False):
            return _check(client)
        m = Materializer(client, city, config)
        if args.once:
            try:
                m.ensure_schema()
                m.seed_metadata()
                print(m.run_once())
            except InfluxError as exc:
                print(f"lifewatch dashboards materialize: {exc}", file=sys.stderr)
                return 1
            return 0
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.is_set():
            try:
                m.run(stop)
            except InfluxError as exc:  # schema or metadata at start: InfluxDB not ready yet
                logging.getLogger("lifewatch.dashboards").warning("InfluxDB not ready (%s); retrying in 10 s", exc)
                stop.wait(10.0)
    return 0


def _check(client) -> int:  # noqa: ANN001
    from dashboards import queries as Q
    from dashboards.materialize import LIFELINE_STATUS
    from lifewatch.influx import InfluxError

    try:
        series = client.query(f"SELECT count(\"run_s\") FROM {Q.state(LIFELINE_STATUS)} WHERE {Q.RECENT} AND \"lifeline\" = 'all'")
    except InfluxError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    runs = series[0].values[0][1] if series and series[0].values else 0
    print(f"{runs} derived-state runs in the last 5 minutes")
    return 0 if runs else 1


def _seed(settings, city) -> int:  # noqa: ANN001
    from dashboards.materialize import Materializer
    from lifewatch.influx import InfluxClient, InfluxError

    try:
        with InfluxClient.from_settings(settings) as client:
            n = Materializer(client, city).seed_metadata()
    except InfluxError as exc:
        print(f"lifewatch dashboards seed-metadata: {exc}", file=sys.stderr)
        return 1
    print(f"{n} sensors written to lifewatch_meta.sensors")
    return 0
