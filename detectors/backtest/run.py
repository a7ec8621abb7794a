"""Run a detector pipeline over a recording offline: event time, big batches, no broker.

The rows are processed in the order the replay publishes them (event time,
ties in file order: ``Columns.ordered()``), in reading-aligned batches of
about ``batch_rows`` rows (default 1,000,000), each turned into one
:class:`~detectors.frame.Frame` by :class:`~detectors.backtest.columns.FrameBuilder`
and handed to every stage, exactly as :meth:`DetectorPipeline.process
<detectors.pipeline.DetectorPipeline.process>` does with the frame it
builds from a list of readings.  Stages walk their rows in order, so the
detections do not depend on the batch size, and a backtest of a recording
equals live ingest on a replay of it.

Pipelines:

* **city** (the default whenever a recorded sensor is in the city model):
  :func:`detectors.build.build_pipeline` with the city, the detector config
  and the model directory, i.e. what ingest runs;
* **series** (NAB / SKAB files and other recordings of sensors the city does
  not know): one :class:`~detectors.stats_stage.StatStage` running the
  ``surprise_ensemble`` scorer (:mod:`detectors.scorers.nab_best`, the
  general-purpose detector of ``lifewatch eval nab``) over every recorded
  ``lifeline.metric``, see :data:`SERIES_STAGE`.  The city pipeline would
  mostly stay silent there: its rules and thresholds need sensor kinds,
  assets and units that a bare series does not have.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.backtest.columns import FrameBuilder, reading_starts_mask
from detectors.events import Detection
from detectors.pipeline import DetectorPipeline

BATCH_ROWS = 1_000_000

#: the bare-series stage: surprise_ensemble, detection from a score of 0.4445 on, one point raises, five clear.
#: 0.4445 is the threshold NAB's standard profile picks for this scorer on the NAB corpus (``lifewatch eval nab``:
#: standard 74.7; reward-low-FP 67.4 at 0.4478); a setting tuned on NAB, not a standard.  Points, not seconds:
#: ``clear_points=5`` merges re-crossings within five readings into one event.
SERIES_STAGE: dict[str, Any] = {"scorer": "surprise_ensemble", "levels": {"blue": 0.4445}, "min_points": 1,
                                "clear_points": 5, "kind": "anomaly"}


def series_pipeline(metrics: list[str], config: Mapping[str, Any] | None = None) -> DetectorPipeline:
    """The bare-series pipeline over ``metrics`` (``"water.flow"``...); ``config["stats"]["surprise_ensemble"]``
    overrides the stage's ``params``, ``levels``, ``min_points``, ``clear_points`` or ``kind``."""
    from detectors.stats_stage import StatStage

    cfg = dict(((config or {}).get("stats") or {}).get(SERIES_STAGE["scorer"]) or {})
    kw = {k: v for k, v in SERIES_STAGE.items() if k != "scorer"}
    kw.update(cfg)
    return DetectorPipeline([StatStage(SERIES_STAGE["scorer"], metrics, **kw)], None)


def recorded_metrics(cols: Any) -> list[str]:
    """Every ``lifeline.metric`` with at least one row, in order of first appearance."""
    nm = max(1, len(cols.metric.categories))
    key = cols.lifeline.codes.astype(np.int64) * nm + cols.metric.codes
    key = key[cols.metric.codes >= 0]
    u, first = np.unique(key, return_index=True)
    out = []
    for k in u[np.argsort(first)].tolist():
        lc, mc = divmod(k, nm)
        out.append(f"{cols.lifeline.categories[lc]}.{cols.metric.categories[mc]}")
    return out


def null_sentinels(cols: Any, lifelines: Mapping[str, Any] | None = None) -> Any:
    """The columns with every missing-value sentinel of the lifeline descriptions (e.g. -9999) set to null.

    Ingest turns those values into nulls when it parses a message
    (:func:`lifewatch.model.parse_message`), so the backtest must too: a
    recording from InfluxDB has none left, a CSV file may.  Returns ``cols``
    itself when nothing changes.
    """
    from lifewatch.lifelines import load_lifelines

    lifelines = lifelines or load_lifelines()
    nm = max(1, len(cols.metric.categories))
    lut = np.full(max(1, len(cols.lifeline.categories)) * nm, -1, dtype=np.int64)
    sets: list[np.ndarray] = []
    for lc, lid in enumerate(cols.lifeline.categories):
        ll = lifelines.get(lid)
        if ll is None:
            continue
        for mc, m in enumerate(cols.metric.categories):
            spec = ll.metrics.get(m)
            if spec is not None and spec.sentinel_numbers:
                lut[lc * nm + mc] = len(sets)
                sets.append(np.array(sorted(spec.sentinel_numbers), dtype=np.float64))
    if not sets:
        return cols
    ok = cols.metric.codes >= 0
    which = np.full(len(cols.value), -1, dtype=np.int64)
    which[ok] = lut[cols.lifeline.codes[ok].astype(np.int64) * nm + cols.metric.codes[ok]]
    value = None
    for k, sent in enumerate(sets):
        rows = np.flatnonzero(which == k)
        hit = rows[np.isin(cols.value[rows], sent)]
        if hit.size:
            if value is None:
                value = cols.value.copy()
            value[hit] = np.nan
    if value is None:
        return cols
    import dataclasses

    return dataclasses.replace(cols, value=value)


@dataclass
class RunResult:
    detections: list[Detection]
    readings: int
    rows: int
    seconds: float
    frame_seconds: float
    batches: int
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def readings_per_s(self) -> float:
        return self.readings / self.seconds if self.seconds > 0 else float("inf")


def batch_bounds(reading_start: np.ndarray, batch_rows: int) -> list[tuple[int, int]]:
    """Row ranges of about ``batch_rows`` rows that begin on a reading's first row."""
    n = len(reading_start)
    starts = np.flatnonzero(reading_start)
    out = []
    a = 0
    while a < n:
        k = int(np.searchsorted(starts, a + max(1, batch_rows), side="left"))
        b = int(starts[k]) if k < len(starts) else n
        out.append((a, b))
        a = b
    return out


def run_pipeline(pipe: DetectorPipeline, cols: Any, *, batch_rows: int = BATCH_ROWS, finish: bool = False,
                 progress: Callable[[int, int, int], None] | None = None, timings: bool = False,
                 sentinels: bool = True) -> RunResult:
    """Every reading of ``cols`` (an ``ingest.readers.Columns``, put in event-time order here) through ``pipe``.

    ``progress(rows_done, rows_total, detections)`` is called after each
    batch; ``finish`` also collects :meth:`DetectorPipeline.finish`;
    ``timings`` adds the seconds spent in each stage; ``sentinels`` nulls the
    lifelines' missing-value sentinels first, as ingest does (:func:`null_sentinels`).
    """
    wall = time.perf_counter()
    cols = null_sentinels(cols.ordered()) if sentinels else cols.ordered()
    start_mask = reading_starts_mask(cols.reading)
    fb = FrameBuilder(pipe.registry, sensor=cols.sensor_id, lifeline=cols.lifeline, district=cols.district,
                      metric=cols.metric)
    out: list[Detection] = []
    frame_s = 0.0
    stage_s: dict[str, float] = {}
    bounds = batch_bounds(start_mask, batch_rows)
    for a, b in bounds:
        t = time.perf_counter()
        frame = fb.frame(cols.ts_ns, cols.value, start_mask, slice(a, b))
        frame_s += time.perf_counter() - t
        if timings:
            dets: list[Detection] = []
            for i, stage in enumerate(pipe.stages):
                t = time.perf_counter()
                dets.extend(stage.process(frame))
                key = f"{i}:{stage.name}"
                stage_s[key] = stage_s.get(key, 0.0) + time.perf_counter() - t
            dets.sort(key=lambda d: d.ts_ns)
        else:
            dets = pipe.process_frame(frame)
        out.extend(dets)
        if progress is not None:
            progress(b, len(cols), len(out))
    if finish:
        out.extend(pipe.finish())
    return RunResult(out, int(start_mask.sum()), len(cols), time.perf_counter() - wall, frame_s, len(bounds),
                     {k: round(v, 4) for k, v in stage_s.items()})
