"""The streaming stage of the learned detectors: stored IsolationForests score every row of a frame."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from detectors.decide import Hysteresis
from detectors.events import Detection
from detectors.frame import Frame, Registry
from detectors.learned.errors import ModelStoreError
from detectors.learned.features import FEATURE_NAMES, FeatureSpec, StreamFeatures, sensor_class
from detectors.learned.store import StoredModel, list_classes, load_model
from detectors.pipeline import Stage, emit_stream_events

log = logging.getLogger("detectors.learned")

# Features the envelope check looks at: all but ew_std (after a collapse the EW variance needs
# ~100 points to forget it, so an envelope on it would hold a 4-minute event open for two hours;
# the forest still sees it) and the hour features (bounded, never outside).
ENVELOPE_FEATURES: tuple[str, ...] = ("value", "dev_ewm", "diff1", "min_k", "max_k", "range_k")
_ENV_MASK = np.array([n in ENVELOPE_FEATURES for n in FEATURE_NAMES])

_UNRESOLVED = -1
_NO_MODEL = -2


def severity(a: np.ndarray, threshold: float, score_max: float, max_severity: int = 2,
             outside: np.ndarray | None = None) -> np.ndarray:
    """Anomaly scores -> severities: 1 (blue) from the calibrated threshold, 2 (yellow) beyond anything in training.

    "Beyond anything in training" is a score above the training maximum, or
    (``outside``, one flag per row) a feature outside the training envelope
    (:func:`outside_envelope`).  All bounds come from the model's own
    training sample, not from a standard: a learned anomaly says "unlike
    the history of this sensor class", worth a look, not an emergency.
    ``max_severity`` caps the result (default 2, yellow).

    >>> severity(np.array([0.40, 0.62, 0.70, 0.41]), threshold=0.60, score_max=0.68,
    ...          outside=np.array([False, False, False, True]))
    array([0, 1, 2, 2], dtype=int8)
    """
    sev = (a >= threshold).astype(np.int8) + (a > score_max).astype(np.int8)
    if outside is not None:
        sev = np.where(outside, np.maximum(sev, np.int8(2)), sev).astype(np.int8)
    return np.minimum(sev, np.int8(max_severity))


def outside_envelope(feats: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float) -> np.ndarray:
    """Per value: is it outside ``[lo - margin * (hi - lo), hi + margin * (hi - lo)]`` (lo, hi per column)?

    Why the stage needs it: an isolation tree splits between the minimum and
    the maximum of its training points, so a point far outside the training
    range follows the most extreme training points down the tree and gets
    their path length (Liu, Ting & Zhou 2008: scores come from path lengths
    in trees fitted on the training sample).  A pressure collapse to a tenth
    of normal then scores no higher than the edge of normal.  Measured here:
    five readings at 0.02 MPa against loggers trained at 0.27-0.33 MPa scored
    0.61-0.63 with a 99.9 % threshold of 0.62.

    >>> outside_envelope(np.array([[0.5, 1.0], [1.2, 0.0], [0.5, 2.5]]), np.zeros(2), np.ones(2), 0.25)
    array([[False, False],
           [False, False],
           [False,  True]])
    """
    span = hi - lo
    return (feats < lo - margin * span) | (feats > hi + margin * span)


class LearnedStage(Stage):
    """Score each row with the latest stored model of its sensor class; hysteresis; detections.

    Per frame: the rows whose class has a model go, in order, through the
    streaming features (:class:`~detectors.learned.features.StreamFeatures`,
    features then learn per point), the warm rows are scored class by class
    with one vectorised ``score_samples`` call per class (a pure, row-wise
    function), the anomaly score is mapped to a severity against the model's
    calibrated threshold, and rows with a feature of :data:`ENVELOPE_FEATURES`
    outside the training envelope (widened by ``envelope_margin`` of its
    range; ``None`` turns the check off) count as beyond anything seen in training, which isolation
    scores alone cannot tell (:func:`severity`, :func:`outside_envelope`);
    :class:`~detectors.decide.Hysteresis`
    turns severities into raised / updated / cleared detections
    (``detector="isolation_forest"``, ``kind="learned_anomaly"``; the
    evidence names the model version, its threshold and the row's features).
    Batch size never changes the result.

    Classes without a model are skipped (logged once per class).  A stored
    model that does not fit this code (feature list, feature parameters,
    scikit-learn version) is refused, logged, and its class skipped; see
    ``refused``.  The feature parameters follow the models' manifests unless
    ``spec`` is given, so the features are computed live exactly as in
    training.

    Works badly where the training history was not normal (incidents above
    0.1 % of it raise the threshold), on sensors whose level differs from the
    rest of their class more than the class varies (they look anomalous all
    the time), and on slow drifts (the features look at minutes, not weeks).
    A learned anomaly carries no physical meaning: it is capped at yellow.

    >>> import tempfile
    >>> import numpy as np
    >>> from detectors.learned.store import save_model
    >>> from detectors.learned.train import train
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.model import Reading
    >>> from datetime import datetime, UTC
    >>> from detectors.learned.features import NS
    >>> rng = np.random.default_rng(7)
    >>> T0, MIN = 1_767_225_600 * NS, 60 * NS                   # 2026-01-01T00:00Z, one minute
    >>> t = T0 + np.arange(5_000) * MIN
    >>> hist = {(f"w-{i}", "pressure"): (t, 0.30 + 0.005 * rng.standard_normal(5_000)) for i in range(3)}
    >>> models = tempfile.mkdtemp()
    >>> trained = train(hist, "water.pressure", n_estimators=25, random_state=0)
    >>> save_model(models, trained, now=datetime(2026, 1, 5, tzinfo=UTC)).name
    'v1-20260105T000000Z'
    >>> pipe = DetectorPipeline([LearnedStage(models)])
    >>> live = 0.30 + 0.005 * rng.standard_normal(300)
    >>> live[80:84] = 0.12                                        # pressure collapses for 4 minutes
    >>> readings = [Reading("water", "d01", "w-0", int(t[-1] + (k + 1) * MIN), {"pressure": float(v)})
    ...             for k, v in enumerate(live)]
    >>> for d in pipe.process(readings):
    ...     minute = (d.ts_ns - int(t[-1])) // MIN - 1
    ...     print(minute, d.state, d.level.label, d.sensors[0], round(d.score, 3), d.evidence["model"])
    82 raised yellow w-0 0.696 water.pressure/v1-20260105T000000Z
    104 cleared yellow w-0 0.538 water.pressure/v1-20260105T000000Z
    """

    name = "learned"
    detector = "isolation_forest"
    kind = "learned_anomaly"

    def __init__(
        self,
        model_dir: Path | str,
        *,
        spec: FeatureSpec | None = None,
        classes: Iterable[str] | None = None,
        min_points: int = 3,
        clear_points: int = 10,
        max_severity: int = 2,
        envelope_margin: float | None = 0.1,
        say: Callable[[str], None] | None = None,
    ):
        self.model_dir = Path(model_dir)
        self._only = set(classes) if classes is not None else None
        self.min_points = min_points
        self.clear_points = clear_points
        self.max_severity = max_severity
        self.envelope_margin = envelope_margin
        self._say = say or log.info
        self._said: set[str] = set()
        self.models: list[StoredModel] = []
        self.refused: dict[str, str] = {}
        self.spec = spec
        self._load_models()
        self.features = StreamFeatures(self.spec or FeatureSpec())
        self.hyst = Hysteresis(min_points, clear_points)
        self._stream_class = np.full(64, _UNRESOLVED, np.int64)

    @classmethod
    def from_settings(cls, settings, **kwargs) -> LearnedStage:  # noqa: ANN001 - Settings
        """The stage on the default model directory, ``settings.state_dir / "models"``."""
        return cls(Path(settings.state_dir) / "models", **kwargs)

    # ---- models

    def _load_models(self) -> None:
        self.models = []
        self._class_index: dict[str, int] = {}
        self.refused = {}
        for cls in list_classes(self.model_dir):
            if self._only is not None and cls not in self._only:
                continue
            try:
                m = load_model(self.model_dir, cls, spec=self.spec)
            except ModelStoreError as exc:
                self.refused[cls] = str(exc)
                log.error("learned: refusing the model of %s: %s", cls, exc)
                continue
            if self.spec is None:
                self.spec = m.spec
            self._class_index[cls] = len(self.models)
            self.models.append(m)

    def reload(self) -> None:
        """Pick up newly trained models (same feature parameters; others are refused)."""
        self._load_models()
        if self.spec is not None and self.spec != self.features.spec:
            log.warning("learned: feature parameters are now %s; every stream warms up again", self.spec)
            self.features = StreamFeatures(self.spec)
        self._stream_class[:] = _UNRESOLVED
        self._said.clear()

    # ---- the stage

    def process(self, frame: Frame) -> list[Detection]:
        n = len(frame)
        if n == 0:
            return []
        streams = frame.stream
        top = int(streams.max())
        if top >= len(self._stream_class):
            grown = np.full(max(top + 1, 2 * len(self._stream_class)), _UNRESOLVED, np.int64)
            grown[: len(self._stream_class)] = self._stream_class
            self._stream_class = grown
        cls = self._stream_class[streams]
        if (cls == _UNRESOLVED).any():
            self._resolve(frame, np.flatnonzero(cls == _UNRESOLVED))
            cls = self._stream_class[streams]
        sel = np.flatnonzero(cls >= 0)
        if len(sel) == 0:
            return []
        slots = streams[sel]
        t = frame.t[sel]
        rc = cls[sel]
        feats, warm = self.features.process(slots, t, frame.x[sel])
        scores = np.zeros(len(sel))
        sev = np.zeros(len(sel), np.int8)
        for c in np.unique(rc[warm]).tolist():
            idx = np.flatnonzero(warm & (rc == c))
            m = self.models[c]
            f = feats[idx]
            a = -m.estimator.score_samples(f)
            scores[idx] = a
            out = None
            if self.envelope_margin is not None:
                out = outside_envelope(f, m.feature_min, m.feature_max, self.envelope_margin)[:, _ENV_MASK].any(axis=1)
            sev[idx] = severity(a, m.threshold, m.score_max, self.max_severity, out)
        events = self.hyst.step(slots, t, sev, scores, with_peaks=True)
        dets = emit_stream_events(frame, sel, events, detector=self.detector, kind=self.kind, scores=scores)
        for d, r in zip(dets, events[0].tolist(), strict=True):
            m = self.models[int(rc[r])]
            f = feats[r]
            if self.envelope_margin is not None:
                far = outside_envelope(f[None, :], m.feature_min, m.feature_max, self.envelope_margin)[0] & _ENV_MASK
                d.evidence["outside_training_range"] = [n for n, o in zip(FEATURE_NAMES, far.tolist(), strict=True) if o]
            d.evidence.update(
                model=m.ref,
                model_version=m.version,
                sensor_class=m.sensor_class,
                threshold=m.threshold,
                threshold_quantile=float(m.manifest["threshold_quantile"]),
                score_max=m.score_max,
                features={k: float(v) for k, v in zip(FEATURE_NAMES, f, strict=True)},
            )
        return dets

    def _resolve(self, frame: Frame, rows: np.ndarray) -> None:
        reg = frame.registry
        streams, first = np.unique(frame.stream[rows], return_index=True)
        city = reg.city
        if city is not None and self.spec is not None and city.utc_offset_hours != self.spec.utc_offset_hours \
                and "utc-offset" not in self._said:
            self._said.add("utc-offset")
            log.warning("learned: models use utc_offset_hours=%s, the city says %s; features follow the models",
                        self.spec.utc_offset_hours, city.utc_offset_hours)
        for stream, i in zip(streams.tolist(), first.tolist(), strict=True):
            row = int(rows[i])
            try:
                name = self.class_of(reg, int(frame.sensor[row]), int(frame.metric[row]))
            except ValueError as exc:  # a kind or metric name that cannot be a class directory
                name = str(exc)
            c = self._class_index.get(name, _NO_MODEL)
            self._stream_class[stream] = c
            if c == _NO_MODEL and name not in self._said:
                self._said.add(name)
                if name in self.refused:
                    self._say(f"learned: {name}: model refused ({self.refused[name]}); not scoring it")
                else:
                    self._say(f"learned: {name}: no model in {self.model_dir}; not scoring it")

    @staticmethod
    def class_of(reg: Registry, sensor: int, metric_code: int) -> str:
        """The sensor class of a frame row's stream (the same rule training uses)."""
        lifeline = reg.sensor_lifeline[sensor]
        metric = reg.metric_names[metric_code].split(".", 1)[1]
        meta = reg.sensor_meta[sensor]
        kind = meta.kind if meta is not None and meta.lifeline == lifeline else None
        return sensor_class(lifeline, metric, kind)

    # ---- state

    def state_dict(self) -> dict[str, np.ndarray]:
        d = {f"feat/{k}": v for k, v in self.features.state_dict().items()}
        d.update({f"hyst/{k}": v for k, v in self.hyst.state_dict().items()})
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        feat = {k[5:]: v for k, v in d.items() if k.startswith("feat/")}
        hyst = {k[5:]: v for k, v in d.items() if k.startswith("hyst/")}
        if feat:
            try:
                self.features.load_state_dict(feat)
            except ValueError as exc:
                log.warning("learned: saved feature state not reused (%s); streams warm up again", exc)
        if hyst:
            self.hyst.load_state_dict(hyst)

    def state_bytes_per_stream(self) -> int:
        return self.features.state_bytes_per_stream() + self.hyst.state_bytes_per_slot() + 8  # + class cache
