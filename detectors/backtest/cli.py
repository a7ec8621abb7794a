"""``lifewatch backtest``: the detector pipeline over a recording, offline, with metrics, a report and sweeps.

::

    lifewatch backtest REC [--config FILE] [--labels FILE] [--report PATH.html] [--out PATH.jsonl]
                           [--set section.detector.param=a,b,c ...] [--mapping FILE] [--pipeline auto|city|series]
                           [--grace DURATION] [--json]

``REC`` is any recording :mod:`ingest.readers` reads, a single NAB CSV file
included.  The pipeline is the one ingest runs (city model from
``LIFEWATCH_CITY_FILE``, config from ``--config`` or
``LIFEWATCH_DETECTOR_CONFIG``, learned models from the state directory), or,
for recordings of sensors the city does not know, the bare-series pipeline
(:mod:`detectors.backtest.run`).  Event time only, deterministic.

Output: without ``--out`` the detections go to stdout as JSON Lines
(:meth:`Detection.to_json <detectors.events.Detection.to_json>`) and the
summary to stderr; with ``--out`` the detections go to the file and the
summary to stdout (``--json``: as one JSON object).  Labels (``--labels``:
the simulator's labels file or NAB's windows JSON; otherwise the labels the
recording carries, e.g. SKAB's ``anomaly`` column) add precision, recall,
F1, delay, false alarms per sensor-day and, for NAB files, NAB's score
(:mod:`detectors.backtest.metrics`).  ``--set`` runs the backtest once per
value (Cartesian product over several ``--set``) and prints a comparison
table (:mod:`detectors.backtest.sweep`); ``--out`` then holds every run's
detections, each with a ``"sweep"`` field naming its values.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from detectors.backtest import sweep as sweep_mod
from detectors.backtest.labels import Label, LabelsError, labels_from_recording, load_labels
from detectors.backtest.metrics import evaluate, nab_scores
from detectors.backtest.run import BATCH_ROWS, RunResult, recorded_metrics, run_pipeline, series_pipeline
from detectors.build import DetectorConfigError, build_pipeline, load_config
from detectors.events import RAISED, Detection
from detectors.pipeline import DetectorPipeline
from lifewatch.city import City
from lifewatch.model import NS

PIPELINES = ("auto", "city", "series")
DEFAULT_GRACE = {"simulator": 12 * 3600, "nab": 0, "recording": 0}  # s; 12 h as detectors.eval.scenarios


def choose_pipeline(cols: Any, city: City | None, config: Mapping[str, Any], mode: str = "auto",
                    model_dir: Path | None = None) -> tuple[DetectorPipeline, str]:
    """``(pipeline, "city" | "series")``: the city pipeline when asked or when a recorded sensor is in the city."""
    if mode not in PIPELINES:
        raise ValueError(f"pipeline must be one of {PIPELINES}")
    if mode == "auto":
        known = city is not None and any(s in city.sensors for s in cols.sensor_id.categories)
        mode = "city" if known else "series"
    if mode == "city":
        return build_pipeline(city, config, model_dir=model_dir), "city"
    return series_pipeline(recorded_metrics(cols), config), "series"


def count_sensors(cols: Any) -> int:
    if not len(cols.sensor_id.codes):
        return 0
    return int(np.count_nonzero(np.bincount(cols.sensor_id.codes[cols.sensor_id.codes >= 0],
                                            minlength=len(cols.sensor_id.categories))))


def backtest_once(cols: Any, pipe: DetectorPipeline, labels: list[Label], *, asset_of: Mapping[str, str | None],
                  grace_ns: int, nab_rows: np.ndarray | None = None, batch_rows: int = BATCH_ROWS,
                  progress: Callable[[int, int, int], None] | None = None) -> tuple[RunResult, dict[str, Any]]:
    """Run one pipeline over the (ordered) columns; return the run and its figures."""
    res = run_pipeline(pipe, cols, batch_rows=batch_rows, progress=progress)
    raised = [d for d in res.detections if d.state == RAISED]
    by_kind: dict[str, int] = {}
    for d in raised:
        k = f"{d.detector}:{d.kind}"
        by_kind[k] = by_kind.get(k, 0) + 1
    span = int(cols.ts_ns.max() - cols.ts_ns.min()) if len(cols) else 0
    sensor_days = count_sensors(cols) * span / (86400 * NS)
    doc: dict[str, Any] = {"readings": res.readings, "rows": res.rows, "detections": len(res.detections),
                           "raised": len(raised), "seconds": round(res.seconds, 3),
                           "raised_per_sensor_day": round(len(raised) / sensor_days, 4) if sensor_days > 0 else None,
                           "readings_per_s": round(res.readings_per_s) if res.seconds > 0 else None,
                           "by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1]))}
    if labels:
        doc["metrics"] = evaluate(res.detections, labels, sensors=count_sensors(cols), span_ns=span,
                                  asset_of=asset_of, grace_ns=grace_ns)
        if nab_rows is not None and any(lb.window for lb in labels):
            doc["nab"] = nab_scores(res.detections, nab_rows, labels)
    return res, doc


class _Progress:
    def __init__(self, label: str, out: Any = None, every_s: float = 5.0):
        self.out = out or sys.stderr
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.label = label
        self.every = 0.2 if self.tty else every_s
        self.t0 = time.monotonic()
        self.last = self.t0

    def __call__(self, done: int, total: int, dets: int) -> None:
        now = time.monotonic()
        final = done >= total
        if not final and now - self.last < self.every:
            return
        if final and not self.tty and now - self.t0 < self.every:
            return  # a short run needs no progress
        self.last = now
        line = f"{self.label}: {100 * done / max(total, 1):.0f}% of {total:,} rows, {dets:,} detections, {now - self.t0:.1f} s"
        self.out.write(("\r" + line + ("\n" if final else "\x1b[K")) if self.tty else line + "\n")
        self.out.flush()


def _dump(d: Detection, extra: Mapping[str, Any] | None = None) -> bytes:
    doc = d.to_json()
    if extra:
        doc.update(extra)
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS, default=str)


def summary_text(rec: str, pipeline: str, n_stages: int, doc: Mapping[str, Any]) -> str:
    lines = [f"backtest: {rec}: {doc['readings']:,} readings of {doc['sensors']} sensors, pipeline {pipeline} "
             f"({n_stages} stage{'s' if n_stages != 1 else ''}), {doc['detections']:,} detections "
             f"({doc['raised']:,} raised) in {doc['seconds']:.1f} s ({doc['readings_per_s'] or 0:,} readings/s)"]
    m = doc.get("metrics")
    if m:
        f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        delay = m["delay_s"]["mean"]
        lines.append(f"  {m['detected']}/{m['labels']} labels detected: precision {f(m['precision'])}, recall "
                     f"{f(m['recall'])}, F1 {f(m['f1'])}, mean delay {'-' if delay is None else f'{delay:.0f} s'}, "
                     f"false alarms {m['false_alarms']} ({m['false_alarms_per_sensor_day']} per sensor-day)")
    if doc.get("nab"):
        lines.append("  NAB: " + ", ".join(f"{k} {v}" for k, v in doc["nab"].items()))
    for k, n in list(doc.get("by_kind", {}).items())[:12]:
        lines.append(f"    {n:6d}  {k}")
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``recording``; ``--config``, ``--labels``, ``--report``, ``--out``, ``--set`` (repeatable), ``--mapping``,
    ``--pipeline``, ``--grace``, ``--max-plots``, ``--batch-rows``, ``--json``."""
    p.add_argument("recording", help="a recording (Parquet from 'lifewatch record', NAB/SKAB/mapped CSV, line protocol)")
    p.add_argument("--config", help="detector config file (YAML overrides; default LIFEWATCH_DETECTOR_CONFIG)")
    p.add_argument("--labels", help="ground truth: the simulator's labels file or NAB's windows JSON")
    p.add_argument("--report", help="write a self-contained HTML report here")
    p.add_argument("--out", help="write the detections here as JSON Lines (default: stdout)")
    p.add_argument("--set", action="append", default=[], metavar="PATH=V1,V2,...",
                   help="sweep a config value, e.g. rules.water_burst.k_flow=4,6,8 (repeatable: all combinations)")
    p.add_argument("--mapping", help="column mapping (YAML/JSON) for CSV recordings, or NAB/SKAB overrides")
    p.add_argument("--pipeline", choices=list(PIPELINES), default="auto",
                   help="city: the pipeline ingest runs; series: surprise_ensemble per series; auto: city if the "
                        "recording's sensors are in the city model (default)")
    p.add_argument("--grace", help="a detection may start this long after a label ends (default 12h for simulator "
                                   "labels, 0 for NAB windows and recording labels)")
    p.add_argument("--max-plots", type=int, default=60, help="sensors plotted in the report (default 60)")
    p.add_argument("--batch-rows", type=int, default=BATCH_ROWS, help=f"rows per frame (default {BATCH_ROWS:,})")
    p.add_argument("--json", action="store_true", help="summary as JSON (on stdout with --out or a sweep)")


def cli(args: argparse.Namespace, settings: Any) -> int:  # noqa: C901 - one linear flow
    from ingest.readers import RecordingError, read_columns
    from lifewatch.city import CityError, load_city
    from lifewatch.settings import parse_duration

    err = sys.stderr
    try:
        cols = read_columns(Path(args.recording), mapping=args.mapping).ordered()
    except RecordingError as exc:
        print(f"backtest: {exc}", file=err)
        return 2
    if not len(cols):
        print(f"backtest: {args.recording} holds no readings", file=err)
        return 2
    try:
        city = load_city(getattr(settings, "city_file", "") or None)
        config = load_config(args.config or getattr(settings, "detector_config", "") or None)
        runs = sweep_mod.combinations(args.set) if args.set else [{"set": {}}]
        if args.labels:
            labels, kind = load_labels(args.labels, args.recording)
        else:
            labels, kind = labels_from_recording(cols.labels), "recording"
        grace_ns = int(parse_duration(args.grace) * NS) if args.grace else DEFAULT_GRACE[kind] * NS
    except (CityError, DetectorConfigError, sweep_mod.SweepError, LabelsError, ValueError) as exc:
        print(f"backtest: {exc}", file=err)
        return 2
    model_dir = Path(settings.state_dir) / "models" if getattr(settings, "state_dir", None) else None
    asset_of = {s.id: s.asset for s in city.sensors.values()} if city is not None else {}
    nab_rows = cols.ts_ns[cols.reading_starts()] if cols.format == "nab" else None
    sensors = count_sensors(cols)
    sweeping = bool(args.set)
    to_stdout = not args.out and not sweeping
    out_f = open(args.out, "wb") if args.out else None  # noqa: SIM115 - closed below
    results: list[dict[str, Any]] = []
    first: tuple[RunResult, dict[str, Any]] | None = None
    pipeline_name, n_stages = "", 0
    try:
        for k, run in enumerate(runs):
            try:
                cfg = sweep_mod.apply_set(config, run["set"])
                pipe, pipeline_name = choose_pipeline(cols, city, cfg, args.pipeline, model_dir)
            except (DetectorConfigError, sweep_mod.SweepError, ValueError, TypeError) as exc:
                print(f"backtest: {exc}", file=err)
                return 2
            n_stages = len(pipe.stages)
            label = "backtest" + (f" {k + 1}/{len(runs)} " + " ".join(f"{a}={b}" for a, b in run["set"].items())
                                  if sweeping else "")
            res, doc = backtest_once(cols, pipe, labels, asset_of=asset_of, grace_ns=grace_ns, nab_rows=nab_rows,
                                     batch_rows=args.batch_rows, progress=_Progress(label))
            doc.update(sensors=sensors, pipeline=pipeline_name, recording=str(args.recording))
            if first is None:
                first = (res, doc)
            extra = {"sweep": run["set"]} if sweeping else None
            if to_stdout:
                buf = sys.stdout.buffer
                for d in res.detections:
                    buf.write(_dump(d) + b"\n")
                buf.flush()
            elif out_f is not None:
                for d in res.detections:
                    out_f.write(_dump(d, extra) + b"\n")
            m = doc.get("metrics") or {}
            results.append({"set": run["set"], "detections": doc["detections"], "raised": doc["raised"],
                            "precision": m.get("precision"), "recall": m.get("recall"), "f1": m.get("f1"),
                            "false_alarms_per_sensor_day": m.get("false_alarms_per_sensor_day"),
                            "raised_per_sensor_day": doc["raised_per_sensor_day"],
                            "nab_standard": (doc.get("nab") or {}).get("standard"), "seconds": doc["seconds"],
                            "summary": doc})
    finally:
        if out_f is not None:
            out_f.close()
    assert first is not None
    res0, doc0 = first
    if args.report:
        from detectors.backtest.report import render

        Path(args.report).write_text(render(cols, res0.detections, labels, summary=doc0,
                                            sweep=results if sweeping else None, max_sensors=args.max_plots,
                                            title=f"Lifewatch backtest: {Path(args.recording).name}"), encoding="utf-8")
    summary_out = err if to_stdout else sys.stdout
    if args.json:
        payload = {"runs": results} if sweeping else doc0
        print(json.dumps(payload, default=str), file=summary_out)
    elif sweeping:
        print(f"backtest: {args.recording}: {doc0['readings']:,} readings of {sensors} sensors, pipeline "
              f"{pipeline_name}, {len(runs)} runs", file=summary_out)
        print(sweep_mod.table(results), file=summary_out)
    else:
        print(summary_text(str(args.recording), pipeline_name, n_stages, doc0), file=summary_out)
    return 0
