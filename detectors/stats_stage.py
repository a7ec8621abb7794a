"""A pipeline stage that runs one statistical scorer over some metrics and decides with hysteresis.

:class:`StatStage` selects the frame rows of its metrics (``"water.flow"``,
``"water.pressure"``...), scores them with one registered scorer (one stream
per sensor and metric), maps each score to a severity with the stage's level
thresholds, and feeds :class:`~detectors.decide.Hysteresis`, whose raise /
update / clear events become :class:`~detectors.events.Detection` objects via
:func:`~detectors.pipeline.emit_stream_events`.

Everything walks the rows in order with event time only, so a replay gives
the same detections whatever its batch sizes.  Scoring and deciding stay
apart: the scorer knows nothing of levels, the stage nothing of statistics.

Default levels (settings, not standards; a statistical score says "unusual
for this stream", never "dangerous", so nothing above yellow by default,
matching domain.md §0.3's "INFO: deviation outside the normal band"):

=====================  ========  =========================  =============
scorer                 kind      levels                     min / clear
=====================  ========  =========================  =============
``seasonal_robust_z``  anomaly   blue >= 4, yellow >= 6     5 / 5 points
``seasonal_cusum``     change    blue >= 1                  1 / 5 points
``rate_of_change``     rate      blue >= 6, yellow >= 10    1 / 3 points
``cusum`` (``h=8``)    change    blue >= 1                  1 / 5 points
other scorers          anomaly   blue >= 4, yellow >= 6     3 / 5 points
=====================  ========  =========================  =============

Why these numbers: for normal noise a robust z-score reaches 4 with
probability 6.3e-5 per point (two-sided), so three consecutive points above
4 by chance are practically impossible; yellow at 6 sigma is a gross
deviation.  Real residuals are neither normal nor independent, though: the
seasonal z-score takes five points because household meter loads
(lognormal-like: a 25 % reading-to-reading spread on a wandering level) put
three consecutive readings above 4 about twice a day across the simulated
city's 120 meters (14 false alerts in 7 days with 3 points, none with 5, in
the incident eval, ``detectors/eval/scenarios.py``; 5 points cost 2 minutes
of delay at 1-minute readings).  Rates of change are heavier-tailed than
levels (differencing doubles the noise variance and real signals have
ramps), hence higher levels, and a transient is a single point, hence
``min_points=1``.  A CUSUM score of 1 *is* its decision threshold ``h``
(:class:`~detectors.scorers.changepoint.Cusum`: >= 1 on one point per
change; :class:`~detectors.scorers.seasonal.SeasonalCusum`: >= 1 while a
departure lasts); the stage raises ``cusum``'s ``h`` from
the textbook 5 to 8 because a city reads every minute: measured on N(0, 1)
noise, h = 5 gives a false change every ~580 points (10 hours of 1-minute
readings, per stream) and h = 8 every ~17,000 (12 days), at the price of
finding a one-sigma shift after a median 15 points instead of 11.  All of
them are constructor parameters (``params`` are the scorer's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from detectors.base import create
from detectors.decide import Hysteresis, level_to_severity
from detectors.events import Detection
from detectors.frame import Frame
from detectors.pipeline import Stage, emit_stream_events
from lifewatch.levels import Level

#: per scorer: kind of detection, level thresholds on the score, hysteresis (see the module docstring)
DEFAULTS: dict[str, dict[str, Any]] = {
    "seasonal_robust_z": {"kind": "anomaly", "levels": {"blue": 4.0, "yellow": 6.0}, "min_points": 5, "clear_points": 5},
    "seasonal_cusum": {"kind": "change", "levels": {"blue": 1.0}, "min_points": 1, "clear_points": 5},
    "rate_of_change": {"kind": "rate", "levels": {"blue": 6.0, "yellow": 10.0}, "min_points": 1, "clear_points": 3},
    "cusum": {"kind": "change", "levels": {"blue": 1.0}, "min_points": 1, "clear_points": 5, "params": {"h": 8.0}},
}
GENERIC = {"kind": "anomaly", "levels": {"blue": 4.0, "yellow": 6.0}, "min_points": 3, "clear_points": 5}


class StatStage(Stage):
    """Run scorer ``scorer`` over the rows of ``metrics`` and raise detections of ``kind``.

    ``levels`` maps a level (``"blue"``, ``"yellow"``, ``"orange"``, ``"red"``
    or a :class:`~lifewatch.levels.Level`) to the score from which it applies;
    omitted arguments take the scorer's defaults (:data:`DEFAULTS`).  The
    evidence of each detection carries the scorer, its expected value for the
    point (``baseline``, when the scorer can report one), the value, the score,
    the peak score so far and the level thresholds.

    >>> import numpy as np
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.model import Reading
    >>> rng = np.random.default_rng(0)
    >>> p = 0.35 + rng.normal(0, 0.002, 120)  # network pressure (MPa), one reading a minute
    >>> p[100:] -= 0.05  # a sudden drop, as after a burst
    >>> t0 = 1_767_571_200 * 10**9
    >>> readings = [Reading("water", "d01", "w-1", t0 + i * 60 * 10**9, {"pressure": float(v)})
    ...             for i, v in enumerate(p)]
    >>> pipe = DetectorPipeline([StatStage("rate_of_change", ["water.pressure"])])
    >>> for d in pipe.process(readings):
    ...     print(d.state, d.kind, d.level.label, round(d.score, 1), round(d.evidence["baseline"], 3))
    raised rate yellow 21.0 0.347
    cleared rate yellow 0.7 0.299
    """

    def __init__(self, scorer: str, metrics: Sequence[str], *, params: Mapping[str, Any] | None = None,
                 levels: Mapping[str | Level, float] | None = None, kind: str | None = None,
                 min_points: int | None = None, clear_points: int | None = None, name: str | None = None):
        if isinstance(metrics, str):
            metrics = [metrics]
        if not metrics:
            raise ValueError("StatStage needs at least one metric")
        self.metrics: list[tuple[str, str]] = []
        for m in metrics:
            lifeline, sep, metric = m.partition(".")
            if not sep or not lifeline or not metric:
                raise ValueError(f"metric {m!r} must be written '<lifeline>.<metric>', e.g. 'water.flow'")
            self.metrics.append((lifeline, metric))
        d = DEFAULTS.get(scorer, GENERIC)
        self.scorer_name = scorer
        self.scorer = create(scorer, **{**d.get("params", {}), **dict(params or {})})
        self.name = name or scorer
        self.kind = kind or d["kind"]
        lv = levels if levels is not None else d["levels"]
        self.levels: dict[str, float] = {}
        for level, thr in lv.items():
            self.levels[Level.parse(level).label] = float(thr)
        if not self.levels:
            raise ValueError("StatStage needs at least one level threshold")
        # ascending severity, so a later (more severe) level overwrites an earlier one
        self._sev_thr = sorted((level_to_severity(Level.parse(k)), v) for k, v in self.levels.items())
        self.hyst = Hysteresis(min_points if min_points is not None else d["min_points"],
                               clear_points if clear_points is not None else d["clear_points"])
        # dense local slots: the scorer's arrays hold only this stage's streams, not every stream of the city
        self._local = np.full(0, -1, np.int64)  # global stream slot -> local slot (-1: not seen yet)
        self._n_local = 0

    def _local_slots(self, g: np.ndarray) -> np.ndarray:
        """Local slots for global stream slots, assigned in order of first appearance (so any batching agrees)."""
        top = int(g.max())
        if top >= len(self._local):
            grown = np.full(max(top + 1, 2 * len(self._local), 64), -1, np.int64)
            grown[: len(self._local)] = self._local
            self._local = grown
        loc = self._local[g]
        missing = loc < 0
        if missing.any():
            new, first = np.unique(g[missing], return_index=True)
            new = new[np.argsort(first)]
            self._local[new] = np.arange(self._n_local, self._n_local + len(new))
            self._n_local += len(new)
            loc = self._local[g]
        return loc

    def severities(self, scores: np.ndarray) -> np.ndarray:
        """Severity 0..4 of each score (0 = normal)."""
        sev = np.zeros(len(scores), dtype=np.int8)
        for s, thr in self._sev_thr:
            sev[scores >= thr] = s
        return sev

    def process(self, frame: Frame) -> list[Detection]:
        reg = frame.registry
        codes = [reg.metric_code(lid, m) for lid, m in self.metrics]
        rows = frame.select(codes)
        if not len(rows):
            return []
        slots = self._local_slots(frame.stream[rows])
        t = frame.t[rows]
        x = frame.x[rows]
        if hasattr(self.scorer, "process_baseline"):
            scores, base = self.scorer.process_baseline(slots, t, x)
        else:
            scores, base = self.scorer.process(slots, t, x), np.full(len(x), np.nan)
        sev = self.severities(scores)
        events = self.hyst.step(slots, t, sev, scores, with_peaks=True)  # peaks as of each event's row
        out: list[Detection] = []
        for k in range(len(events[0])):
            one = tuple(a[k:k + 1] for a in events)
            r = int(events[0][k])
            evidence = {"scorer": self.scorer_name, "baseline": None if np.isnan(base[r]) else float(base[r]),
                        "levels": dict(self.levels)}
            out.extend(emit_stream_events(frame, rows, one, detector=self.name, kind=self.kind,
                                          evidence=evidence, scores=scores))
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        n = self._n_local
        d = {f"scorer/{k}": v[:n] for k, v in self.scorer.state_dict().items()}
        d.update({f"hyst/{k}": v[:n] for k, v in self.hyst.state_dict().items()})
        d["local"] = self._local.copy()
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        self.scorer.load_state_dict({k[len("scorer/"):]: v for k, v in d.items() if k.startswith("scorer/")})
        self.hyst.load_state_dict({k[len("hyst/"):]: v for k, v in d.items() if k.startswith("hyst/")})
        if "local" in d:
            self._local = np.asarray(d["local"], np.int64).copy()
            self._n_local = int(self._local.max()) + 1 if len(self._local) and self._local.max() >= 0 else 0
        else:  # a checkpoint from before local slots: its slots were the global ones
            n = len(next(v for k, v in d.items() if k.startswith("scorer/")))
            self._local = np.arange(n, dtype=np.int64)
            self._n_local = n

    def state_bytes_per_stream(self) -> int:
        return self.scorer.state_bytes_per_stream() + self.hyst.state_bytes_per_slot()
