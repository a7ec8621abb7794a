"""Backtest metrics: event-level precision, recall and F1, detection delay, false alarms, NAB score.

Only *raised* detections count (an update or a clear is the same condition).
A raised detection **matches** a label as in :mod:`detectors.eval.scenarios`:
its start lies between the label's start minus one minute and its end plus
``grace``, and it names one of the label's sensors, or the label's target
asset, or an asset one of the label's sensors belongs to; a label without
sensors (NAB windows, SKAB anomalies) is about every sensor of the recording.

* **recall** = labels matched by at least one raised detection / labels;
* **precision** = raised detections matching some label / raised detections;
* **F1** = their harmonic mean;
* **delay** of a matched label = first matching detection's event time minus
  the label's start (0 when it was raised within the minute before);
* **false alarms per sensor-day** = raised detections matching no label /
  (sensors in the recording x days the recording spans).

For NAB data, :func:`nab_scores` also scores the raised detections with
NAB's own rules (:mod:`detectors.eval.nab`): each row at which a detection
was raised gets anomaly score 1, every other row 0, and the file is scored
at threshold 0.5 for each profile and normalised like a corpus of one file.

>>> from detectors.backtest.labels import Label
>>> from detectors.events import Detection
>>> from lifewatch.levels import Level
>>> M = 60 * 10**9
>>> d = lambda s, start: Detection("x", "k", "raised", "water", "d", None, (s,), Level.BLUE, 1.0, start, start)
>>> labels = [Label("burst", 10 * M, 20 * M, frozenset({"w-1"})), Label("leak", 100 * M, 110 * M, frozenset({"w-2"}))]
>>> r = evaluate([d("w-1", 12 * M), d("w-1", 50 * M), d("w-3", 13 * M)], labels, sensors=3, span_ns=1440 * M)
>>> r["recall"], round(r["precision"], 3), r["false_alarms"], r["false_alarms_per_sensor_day"], r["delay_s"]["mean"]
(0.5, 0.333, 2, 0.667, 120.0)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from detectors.backtest.labels import Label
from detectors.events import RAISED, Detection

NS = 1_000_000_000
EARLY_NS = 60 * NS  # a detection may start up to a minute before the label (detectors.eval.scenarios)


def matches(d: Detection, label: Label, asset_of: Mapping[str, str | None], grace_ns: int = 0) -> bool:
    if not (label.start_ns - EARLY_NS <= d.start_ns <= label.end_ns + grace_ns):
        return False
    if label.sensors is None:
        return True
    if label.sensors.intersection(d.sensors):
        return True
    return d.asset is not None and (d.asset == label.target or any(asset_of.get(s) == d.asset for s in label.sensors))


def _f1(p: float | None, r: float | None) -> float | None:
    if p is None or r is None:
        return None
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


def evaluate(detections: Iterable[Detection], labels: Sequence[Label], *, sensors: int, span_ns: int,
             asset_of: Mapping[str, str | None] | None = None, grace_ns: int = 0) -> dict[str, Any]:
    """Event-level scores of the raised detections against ``labels`` (see the module docstring)."""
    asset_of = asset_of or {}
    raised = [d for d in detections if d.state == RAISED]
    first: list[int | None] = [None] * len(labels)
    hits = 0
    false_by_kind: dict[str, int] = {}
    for d in raised:
        hit = False
        for i, lb in enumerate(labels):
            if matches(d, lb, asset_of, grace_ns):
                hit = True
                if first[i] is None or d.ts_ns < first[i]:
                    first[i] = d.ts_ns
        if hit:
            hits += 1
        else:
            k = f"{d.detector}:{d.kind}"
            false_by_kind[k] = false_by_kind.get(k, 0) + 1
    detected = sum(f is not None for f in first)
    precision = hits / len(raised) if raised and labels else None
    recall = detected / len(labels) if labels else None
    delays = [max(0, f - lb.start_ns) / NS for f, lb in zip(first, labels, strict=True) if f is not None]
    fa = len(raised) - hits
    days = span_ns / (86400 * NS)
    sensor_days = sensors * days
    return {
        "raised": len(raised),
        "labels": len(labels),
        "detected": detected,
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "false_alarms": fa,
        "false_alarms_per_sensor_day": round(fa / sensor_days, 3) if sensor_days > 0 else None,
        "false_alarms_by_kind": dict(sorted(false_by_kind.items(), key=lambda kv: -kv[1])),
        "delay_s": {"mean": float(np.mean(delays)) if delays else None,
                    "median": float(np.median(delays)) if delays else None,
                    "max": float(np.max(delays)) if delays else None},
        "per_label": [{"name": lb.name, "target": lb.target, "start_ns": lb.start_ns, "end_ns": lb.end_ns,
                       "detected": f is not None, "delay_s": None if f is None else max(0, f - lb.start_ns) / NS}
                      for f, lb in zip(first, labels, strict=True)],
        "sensors": sensors,
        "days": round(days, 4),
    }


def nab_scores(detections: Iterable[Detection], row_ts_ns: np.ndarray, labels: Sequence[Label],
               relpath: str = "recording.csv") -> dict[str, float]:
    """NAB's normalised score (per profile) of raised detections on one NAB series.

    ``row_ts_ns`` are the file's timestamps (one per row, as read); ``labels``
    must carry NAB's window limits (:func:`~detectors.backtest.labels.load_labels`).
    """
    from detectors.eval import nab

    windows = [lb.window for lb in labels if lb.window is not None]
    ts = np.asarray(row_ts_ns, dtype=np.int64).view("datetime64[ns]")
    dfile = nab.DataFile(relpath, ts, windows)
    anomaly = np.zeros(len(ts))
    raised = np.array(sorted({d.ts_ns for d in detections if d.state == RAISED}), dtype=np.int64)
    if raised.size:
        rows = np.asarray(row_ts_ns, dtype=np.int64)
        anomaly[np.isin(rows, raised)] = 1.0
    out = {}
    for name, cost in nab.NAB_PROFILES.items():
        c = nab.cost_matrix(cost)
        res = nab.score_file(dfile, anomaly, 0.5, c)
        _, w, ok = nab.sweep_scores(dfile, c)
        scored = len(np.unique(w[ok & (w >= 0)]))
        null = -c["fnWeight"] * scored
        perfect = c["tpWeight"] * len(windows)
        out[name] = round(nab.normalise(res["score"], null, perfect), 3) if perfect != null else None
    return out
