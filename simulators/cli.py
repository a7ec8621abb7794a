"""``lifewatch simulate``: publish a simulated city (normal behaviour + incidents).

The options are declared in :mod:`lifewatch.cli`; this is the handler.
Progress goes to stderr about every 5 s; stdout carries only the final
summary line (and the table of ``--list-scenarios``).

Incident specs: ``--scenario NAME@TARGET@START[+DURATION]`` where START is RFC
3339 (``2026-01-15T10:00:00Z``) or relative to the run start (``+30m``) and
DURATION like ``2h`` (default: the scenario's own).  ``--incidents FILE``
takes a YAML list of ``{scenario, target, start, duration, params}`` (``end``
may replace ``duration``).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from lifewatch.city import CityError, load_city
from lifewatch.model import NS, ContractError, format_ts, parse_ts
from lifewatch.settings import Settings, parse_duration
from simulators.clock import RunStats, ms, parse_speed, progress_line, run
from simulators.engine import Simulation, default_start_ns
from simulators.publisher import JsonlSink, MqttPublisher, PublishError
from simulators.scenarios import Incident, ScenarioError, list_scenarios, make_incident

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = r"\d+(?:\.\d+)?(?:ms|s|m|h|d|w)?"
_ABS_SPEC = re.compile(rf"(?P<start>.+?)(?:\+(?P<dur>{_DURATION}))?")


class UsageError(ValueError):
    pass


def _seconds(text: Any, what: str) -> float:
    try:
        return float(text) if isinstance(text, (int, float)) else parse_duration(str(text))
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None


def _when(value: Any, run_start_ns: int, what: str) -> int:
    """An RFC 3339 time, a YAML datetime, or '+30m' relative to the run start -> ns."""
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return (dt - _EPOCH) // timedelta(microseconds=1) * 1000
    text = str(value).strip()
    if text.startswith("+"):
        return run_start_ns + int(round(_seconds(text[1:], what) * NS))
    try:
        return parse_ts(text)
    except ContractError as exc:
        raise UsageError(f"{what}: {exc.detail}") from None


def parse_scenario_spec(spec: str, run_start_ns: int) -> Incident:
    """``NAME@TARGET@START[+DURATION]`` -> Incident (START RFC 3339 or +offset from the run start)."""
    parts = spec.split("@")
    if len(parts) != 3 or not all(parts):
        raise UsageError(f"--scenario {spec!r}: expected NAME@TARGET@START[+DURATION], e.g. water.burst@dma-d01-1@+30m+2h")
    name, target, when = parts
    dur: float | None = None
    if when.startswith("+"):
        pieces = when[1:].split("+")
        if len(pieces) > 2:
            raise UsageError(f"--scenario {spec!r}: START+DURATION has too many '+'")
        start = run_start_ns + int(round(_seconds(pieces[0], f"--scenario {spec!r}") * NS))
        if len(pieces) == 2:
            dur = _seconds(pieces[1], f"--scenario {spec!r}")
    else:
        m = _ABS_SPEC.fullmatch(when)
        assert m is not None  # the pattern matches any non-empty text
        start = _when(m.group("start"), run_start_ns, f"--scenario {spec!r}")
        if m.group("dur"):
            dur = _seconds(m.group("dur"), f"--scenario {spec!r}")
    try:
        return make_incident(name, target, start, dur)
    except ScenarioError as exc:
        raise UsageError(str(exc)) from None


def load_incidents(path: str | Path, run_start_ns: int) -> list[Incident]:
    """A YAML list of {scenario, target, start, duration | end, params} -> incidents."""
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"--incidents {path}: {exc}") from None
    if doc is None:
        return []
    if isinstance(doc, dict) and "incidents" in doc:
        doc = doc["incidents"]
    if not isinstance(doc, list):
        raise UsageError(f"--incidents {path}: expected a YAML list of incidents")
    out = []
    for i, item in enumerate(doc, 1):
        where = f"--incidents {path} item {i}"
        if not isinstance(item, dict) or not {"scenario", "target", "start"} <= set(item):
            raise UsageError(f"{where}: needs scenario, target and start")
        extra = set(item) - {"scenario", "target", "start", "duration", "end", "params"}
        if extra:
            raise UsageError(f"{where}: unknown key(s) {sorted(extra)}")
        start = _when(item["start"], run_start_ns, where)
        dur = None
        if item.get("duration") is not None:
            dur = _seconds(item["duration"], where)
        elif item.get("end") is not None:
            dur = (_when(item["end"], run_start_ns, where) - start) / NS
        params = item.get("params") or {}
        if not isinstance(params, dict):
            raise UsageError(f"{where}: params must be a mapping")
        try:
            out.append(make_incident(str(item["scenario"]), str(item["target"]), start, dur, params))
        except ScenarioError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return out


def labels_document(sim: Simulation) -> dict[str, Any]:
    return {"city": sim.city.name, "seed": sim.seed, "incidents": sim.labels()}


def print_scenarios(out: Any = None) -> None:
    out = out or sys.stdout
    rows = list_scenarios()
    w = max(len(r["name"]) for r in rows)
    for r in rows:
        params = ", ".join(f"{k}={v}" for k, v in r["params"].items()) or "-"
        print(f"{r['name']:<{w}}  {r['default_duration']:>4}  {r['summary']}", file=out)
        print(f"{'':<{w}}        target: {r['targets']}; params: {params}", file=out)


def summary_line(st: RunStats) -> str:
    how = {"end": "", "wall-duration": ", stopped at --wall-duration", "stopped": ", stopped by signal"}.get(st.reason, "")
    flushed = "" if st.flushed else ", NOT all acknowledged"
    return (f"simulate: {st.readings} readings in {st.messages} messages, simulated {ms(st.start_ns)} .. "
            f"{ms(st.sim_ns)}, {st.wall_s:.1f} s wall, {st.rate:.0f} readings/s{how}{flushed}")


def cli(args: argparse.Namespace, settings: Settings) -> int:
    if args.list_scenarios:
        print_scenarios()
        return 0
    try:
        return _run(args, settings)
    except (UsageError, ScenarioError, CityError) as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 2
    except PublishError as exc:
        print(f"simulate: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        speed = parse_speed(args.speed)
    except ValueError as exc:
        raise UsageError(f"--speed: {exc}") from None
    duration_s = _seconds(args.duration, "--duration") if args.duration else None
    if duration_s is not None and duration_s <= 0:
        raise UsageError("--duration must be > 0")
    if args.batch < 0 or args.batch > settings.max_batch_readings:
        raise UsageError(f"--batch must be 0..{settings.max_batch_readings} (LIFEWATCH_MAX_BATCH_READINGS)")
    if args.sensors is not None and args.sensors < 1:
        raise UsageError("--sensors must be >= 1")
    now = time.time_ns()
    start = _when(args.start, now, "--start") if args.start else default_start_ns(now, duration_s)
    end = start + int(round(duration_s * NS)) if duration_s is not None else None

    city = load_city(args.city or settings.city_file or None)
    incidents = [parse_scenario_spec(spec, start) for spec in args.scenario]
    if args.incidents:
        incidents += load_incidents(args.incidents, start)
    sim = Simulation(city, seed=args.seed, start_ns=start, incidents=incidents, sensors=args.sensors)
    for lab in sim.labels():
        if not lab["sensors"]:
            print(f"simulate: warning: {lab['scenario']}@{lab['target']} touches no simulated sensor", file=sys.stderr)
    if args.labels:
        Path(args.labels).write_text(json.dumps(labels_document(sim), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if start > now:
        print(f"simulate: start {format_ts(start)} is in the future; waiting for the wall clock", file=sys.stderr)

    sink = JsonlSink(args.out, settings.topic_prefix, args.batch) if args.out else \
        MqttPublisher(settings, batch=args.batch).connect()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        st = run(sim, sink, speed=speed, end_ns=end, wall_duration_s=args.wall_duration, stop=stop,
                 progress=lambda s, now: print(progress_line(s, now), file=sys.stderr, flush=True))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if isinstance(sink, MqttPublisher):
            sink.close(timeout=10.0)
        else:
            sink.close()
    print(summary_line(st), flush=True)
    return 0 if st.flushed else 1
