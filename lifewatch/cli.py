"""The ``lifewatch`` command.

Each subcommand names its handler as ``"module:function"``; the module is
imported only when that subcommand runs, so ``lifewatch --help`` stays fast
and a subcommand's heavy imports (pandas, scikit-learn) cost nothing elsewhere.
A handler takes ``(args, settings)`` and returns an exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable

from lifewatch.settings import Settings, SettingsError

Builder = Callable[[argparse.ArgumentParser], None]


def _services(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["up", "down", "status", "install"], help="start, stop or show the project-local services; install the binaries if missing")
    p.add_argument("--only", choices=["mosquitto", "influxd"], help="act on one service only")
    p.add_argument("--json", action="store_true", help="status as JSON")


def _ingest(p: argparse.ArgumentParser) -> None:
    p.add_argument("--topic", help="subscription filter (default <prefix>/+/+/+/reading)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: run until SIGTERM/Ctrl-C)")


def _simulate(p: argparse.ArgumentParser) -> None:
    p.add_argument("--city", help="city file (default: the bundled Shihezi demo city)")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same readings")
    p.add_argument("--speed", default="60", help="simulated seconds per wall second, or 'max' (default 60)")
    p.add_argument("--start", help="first event time, RFC 3339 (default: far enough in the past to never pass the wall clock)")
    p.add_argument("--duration", help="simulated time span, e.g. 2h, 7d (default: until stopped)")
    p.add_argument("--wall-duration", type=float, help="stop after this many wall seconds")
    p.add_argument("--batch", type=int, default=0, help="gateway batch payloads of up to N readings (0 = single)")
    p.add_argument("--scenario", action="append", default=[], metavar="NAME@TARGET@START[+DURATION]",
                   help="inject an incident, e.g. water.burst@dma-d01-1@+30m+2h (repeatable); see --list-scenarios")
    p.add_argument("--incidents", help="YAML file of incidents to inject")
    p.add_argument("--list-scenarios", action="store_true", help="list the scenario names and exit")
    p.add_argument("--labels", help="write the ground-truth labels of injected incidents to this file (JSON)")
    p.add_argument("--sensors", type=int, help="simulate only the first N sensors of the city")
    p.add_argument("--out", help="write messages as JSON Lines {topic, payload} instead of publishing")


def _status(p: argparse.ArgumentParser) -> None:
    p.add_argument("--since", default="10m", help="window for reading counts (default 10m)")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")


def _deadletter(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="list dead letters, newest first")
    ls.add_argument("--reason", help="only this reason")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--all", action="store_true", help="include re-driven letters")
    ls.add_argument("--json", action="store_true")
    sh = sub.add_parser("show", help="show one dead letter with its raw payload")
    sh.add_argument("id", type=int)
    rd = sub.add_parser("redrive", help="publish dead letters back to their topic (after fixing the cause)")
    rd.add_argument("ids", type=int, nargs="*", help="ids (default: all pending, filtered by --reason)")
    rd.add_argument("--reason", help="only this reason")
    rd.add_argument("--dry-run", action="store_true")


def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--duration", type=float, help="stop after this many seconds (env DURATION in make demo)")
    p.add_argument("--speed", default="60", help="simulation speed (default 60)")
    p.add_argument("--seed", type=int, default=1)


def _eval(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    nab = sub.add_parser("nab", help="run the best general-purpose detector over the NAB corpus and score it")
    nab.add_argument("--nab", help="NAB corpus folder (default $LIFEWATCH_NAB_DIR or ../shared/datasets/nab)")
    nab.add_argument("--out", required=True, help="where to write NAB-format results")
    nab.add_argument("--json", action="store_true", help="print only JSON on stdout")
    nab.set_defaults(_target="detectors.eval.nab_run:cli")
    sc = sub.add_parser("nab-score", help="score any detector's NAB results folder (NAB's published scoring)")
    sc.add_argument("--nab", dest="nab_dir", help="NAB corpus folder (default $LIFEWATCH_NAB_DIR or ../shared/datasets/nab)")
    sc.add_argument("--results", dest="results_dir", required=True, help="results folder: <category>/[<detector>_]<file>.csv")
    sc.add_argument("--detector", help="results file prefix, if the folder holds several detectors")
    sc.add_argument("--json", action="store_true", help="print only JSON on stdout")
    sc.set_defaults(_target="detectors.eval.nab_cli:cli")
    sn = sub.add_parser("scenarios", help="run the incident library over simulated days of the demo city")
    sn.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    sn.add_argument("--seed", type=int, default=1)
    sn.add_argument("--warmup-days", type=float, default=11.0,
                    help="simulated days learned from but not scored (default 11: the night-flow rule needs 10 nights)")
    sn.add_argument("--config", help="detector config file (YAML overrides)")
    sn.add_argument("--json", action="store_true", help="print only JSON on stdout")
    sn.set_defaults(_target="detectors.eval.scenarios:cli")


def _detectors(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    tr = sub.add_parser("train", help="fit the learned detectors per sensor class from history in InfluxDB")
    tr.add_argument("--since", default="30d", help="training window of event time per lifeline (default 30d)")
    tr.add_argument("--out", help="model directory (default <state_dir>/models)")
    tr.add_argument("--lifeline", action="append", choices=["water", "power", "gas", "bridge", "air"], help="only this lifeline (repeatable)")
    tr.add_argument("--chunk", default="1d", help="time span read per query (default 1d)")
    tr.set_defaults(_target="detectors.learned.train:cli")
    ls = sub.add_parser("list", help="the detector pipeline the lifeline descriptions and config build")
    ls.add_argument("--config", help="detector config file (YAML overrides)")
    ls.set_defaults(_target="detectors.build:cli_list")


def _users(p: argparse.ArgumentParser) -> None:
    from alerts.users_cli import configure_parser

    configure_parser(p)


def _api(p: argparse.ArgumentParser) -> None:
    from alerts.serve import configure_parser

    configure_parser(p)


def _notify(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="one pass over the outbox, then exit")
    p.add_argument("--status", action="store_true", help="pending rows and delivery states per channel (JSON)")
    p.add_argument("--dead", action="store_true", help="dead deliveries, newest first (JSON)")


def _report(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    sh = sub.add_parser("shift", help="a shift report (alerts by unit and level, open at hand-over, KPIs) as HTML")
    sh.add_argument("--from", dest="from_", required=True, help="start of the shift, RFC 3339")
    sh.add_argument("--to", required=True, help="end of the shift (hand-over), RFC 3339")
    sh.add_argument("--out", help="write the HTML here (default: stdout)")
    sh.set_defaults(_target="alerts.report:cli")


def _record(p: argparse.ArgumentParser) -> None:
    # arguments as in ingest.record.add_arguments (copied: importing it would slow down every command)
    p.add_argument("--from", dest="t_from", required=True, metavar="T", help="window start: RFC 3339, 'now' or -DURATION (e.g. -7d)")
    p.add_argument("--to", dest="t_to", default="now", metavar="T", help="window end, exclusive (default now)")
    p.add_argument("--lifeline", action="append", choices=["water", "power", "gas", "bridge", "air"], help="only this lifeline (repeatable)")
    p.add_argument("--district", action="append", default=[], help="only this district (repeatable)")
    p.add_argument("--sensor", action="append", default=[], help="only this sensor id (repeatable)")
    p.add_argument("--chunk", default="1h", help="event time read per query (default 1h)")
    p.add_argument("-o", "--out", required=True, help="the Parquet file to write (schema: docs/recording.md)")


def _replay(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", help="a recording: Parquet from 'lifewatch record', NAB/SKAB/mapped CSV, line protocol")
    p.add_argument("--speed", default="60", help="recorded seconds per wall second, or 'max' (default 60)")
    p.add_argument("--shift-to-now", action="store_true", help="shift all timestamps so the last reading lands at the wall clock")
    p.add_argument("--loop", action="store_true", help="repeat, each repetition shifted by the recording's period")
    p.add_argument("--batch", type=int, default=0, help="gateway batch payloads of up to N readings (0 = one per message)")
    p.add_argument("--mapping", help="column mapping (YAML/JSON) for CSV recordings, or NAB/SKAB overrides")
    p.add_argument("--wall-duration", type=float, help="stop after this many wall seconds")


def _backtest(p: argparse.ArgumentParser) -> None:
    p.add_argument("recording", help="a recording (Parquet from 'lifewatch record', NAB/SKAB/mapped CSV, line protocol)")
    p.add_argument("--config", help="detector config file (YAML overrides; default LIFEWATCH_DETECTOR_CONFIG)")
    p.add_argument("--labels", help="ground truth: the simulator's labels file or NAB's windows JSON")
    p.add_argument("--report", help="write a self-contained HTML report here")
    p.add_argument("--out", help="write the detections here as JSON Lines (default: stdout)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=V1,V2,...",
                   help="sweep a config value, e.g. rules.water_burst.k_flow=4,6,8 (repeatable: all combinations)")
    p.add_argument("--mapping", help="column mapping (YAML/JSON) for CSV recordings, or NAB/SKAB overrides")
    p.add_argument("--pipeline", choices=["auto", "city", "series"], default="auto",
                   help="city: the pipeline ingest runs; series: surprise_ensemble per series; auto: city if the "
                        "recording's sensors are in the city model (default)")
    p.add_argument("--grace", help="a detection may start this long after a label ends (default 12h for simulator "
                                   "labels, 0 for NAB windows and recording labels)")
    p.add_argument("--max-plots", type=int, default=60, help="sensors plotted in the report (default 60)")
    p.add_argument("--batch-rows", type=int, default=1_000_000, help="rows per frame (default 1,000,000)")
    p.add_argument("--json", action="store_true", help="summary as JSON (on stdout with --out or a sweep)")


def _dashboards(p: argparse.ArgumentParser) -> None:
    from dashboards.cli import add_arguments

    add_arguments(p)


def _settings(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true")


COMMANDS: dict[str, tuple[str, str, Builder]] = {
    "services": ("lifewatch.services:cli", "run project-local Mosquitto and InfluxDB", _services),
    "ingest": ("ingest.service:cli", "consume readings from MQTT into InfluxDB", _ingest),
    "simulate": ("simulators.cli:cli", "publish a simulated city (normal behaviour + incidents)", _simulate),
    "status": ("lifewatch.status:cli", "readings per lifeline, dead letters and service health", _status),
    "deadletter": ("ingest.deadletter_cli:cli", "inspect and re-drive rejected messages", _deadletter),
    "demo": ("lifewatch.demo:cli", "services + simulated city + ingest, in the foreground", _demo),
    "eval": ("", "evaluate detectors: NAB corpus, NAB scoring, simulated incident library", _eval),
    "detectors": ("", "train learned detectors; list the detector pipeline", _detectors),
    "record": ("ingest.record:cli", "export readings from InfluxDB to a Parquet recording", _record),
    "replay": ("simulators.replay:cli", "publish a recording to MQTT (QoS 1), keeping order and relative timing", _replay),
    "backtest": ("detectors.backtest.cli:cli", "run the detectors offline over a recording: detections, metrics, HTML report, sweeps", _backtest),
    "dashboards": ("dashboards.cli:cli", "build, push and feed the Grafana dashboards (docs/dashboards.md)", _dashboards),
    "api": ("alerts.serve:cli", "the alert queue's HTTP API and crew console (with the escalation tick)", _api),
    "users": ("alerts.users_cli:cli", "manage API users and tokens (only hashes are stored)", _users),
    "notify": ("alerts.notify.worker:cli", "deliver alert notifications from the outbox (MQTT, webhooks, InfluxDB)", _notify),
    "report": ("", "reports: the shift report", _report),
    "settings": ("lifewatch.cli:show_settings", "print every setting with its environment variable", _settings),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lifewatch",
        description="Lifewatch: watch a city's lifelines (water, power, gas, bridges, air) and turn sensor data into emergency work.",
        epilog="Settings come from LIFEWATCH_* environment variables; see 'lifewatch settings'.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (target, help_text, build) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if target:
            p.set_defaults(_target=target)
        build(p)  # nested commands set their own _target
    return parser


def show_settings(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses
    import json

    rows = {f"LIFEWATCH_{f.name.upper()}": getattr(settings, f.name) for f in dataclasses.fields(settings)}
    secret = {"LIFEWATCH_MQTT_PASSWORD", "LIFEWATCH_INFLUX_PASSWORD"}
    shown = {k: ("***" if k in secret and v else str(v)) for k, v in rows.items()}
    if args.json:
        print(json.dumps(shown, indent=2))
    else:
        for k, v in shown.items():
            print(f"{k}={v}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"lifewatch: bad setting: {exc}", file=sys.stderr)
        return 2
    module_name, func_name = args._target.split(":")
    handler = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(handler(args, settings) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
