"""The model store: versioned models per sensor class, each with a JSON manifest.

Layout (``settings.state_dir / "models"`` by default)::

    models/
      water.pressure.pressure/
        v1-20260101T000000Z.joblib     the fitted IsolationForest (joblib pickle)
        v1-20260101T000000Z.json       its manifest
        v2-20260108T000000Z.joblib
        v2-20260108T000000Z.json
        latest                         text: "v2-20260108T000000Z"

The manifest records the scikit-learn version, the feature list and feature
parameters, the training window (event time), the number of samples, the
calibrated score threshold, the per-feature training envelope (minimum and
maximum), the model parameters, the SHA-256 of the joblib
file and the creation time.  :func:`load_model` refuses a model whose feature
list or feature parameters differ from the code's, that was pickled by
another scikit-learn version, or whose file no longer matches its checksum
(:class:`~detectors.learned.errors.ModelMismatch`): retrain instead.

Versions only grow: a new model gets ``max(existing) + 1``, reserved with an
exclusive create so two trainers cannot take the same number.  ``latest`` is
replaced atomically after both files are in place, so a reader never sees a
half-written model.  A joblib file is a pickle: load models only from a
directory you trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

from detectors.learned.errors import ModelMismatch, ModelNotFound, ModelStoreError
from detectors.learned.features import FEATURE_NAMES, N_FEATURES, FeatureSpec, check_class_name
from lifewatch.model import format_ts

MANIFEST_FORMAT = 1
_NAME_RE = re.compile(r"v(\d+)-(\d{8}T\d{6}Z)\Z")


@dataclass(slots=True)
class TrainedModel:
    """A fitted model for one sensor class, before it is stored."""

    sensor_class: str
    estimator: IsolationForest
    spec: FeatureSpec
    threshold: float  # anomaly score at threshold_quantile of the training scores
    threshold_quantile: float
    score_max: float  # highest anomaly score seen in training
    feature_min: np.ndarray  # per feature, over the training sample: the envelope the stage checks
    feature_max: np.ndarray
    n_samples: int  # rows the forest was fitted and calibrated on
    n_rows: int  # warm feature rows seen in the training window
    n_streams: int
    window_start_ns: int
    window_end_ns: int
    params: dict[str, Any] = field(default_factory=dict)
    fit_seconds: float = 0.0
    score_quantiles: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class StoredModel:
    """A model loaded from (or just written to) the store."""

    sensor_class: str
    version: int
    name: str  # "v2-20260108T000000Z"
    path: Path  # the .joblib file
    manifest: dict[str, Any]
    estimator: IsolationForest
    spec: FeatureSpec
    threshold: float
    score_max: float
    feature_min: np.ndarray
    feature_max: np.ndarray

    @property
    def ref(self) -> str:
        """``class/name``: how detections cite the model."""
        return f"{self.sensor_class}/{self.name}"


def class_dir(model_dir: Path | str, sensor_class: str) -> Path:
    check_class_name(sensor_class)
    return Path(model_dir) / sensor_class


def list_classes(model_dir: Path | str) -> list[str]:
    """Sensor classes that have a ``latest`` model, sorted."""
    root = Path(model_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "latest").is_file())


def list_versions(model_dir: Path | str, sensor_class: str) -> list[tuple[int, str]]:
    """(version, name) of every stored model of a class, oldest first."""
    d = class_dir(model_dir, sensor_class)
    if not d.is_dir():
        return []
    out = []
    for p in d.glob("v*.json"):
        m = _NAME_RE.match(p.stem)
        if m:
            out.append((int(m.group(1)), p.stem))
    return sorted(out)


def save_model(model_dir: Path | str, trained: TrainedModel, *, now: datetime | None = None) -> StoredModel:
    """Write a new version of ``trained.sensor_class`` and point ``latest`` at it.

    ``now`` is the creation time recorded in the name and manifest (wall
    time by default; tests pass a fixed one).
    """
    created = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    d = class_dir(model_dir, trained.sensor_class)
    d.mkdir(parents=True, exist_ok=True)
    version = _reserve_version(d)
    name = f"v{version}-{created:%Y%m%dT%H%M%SZ}"
    path = d / f"{name}.joblib"
    tmp = d / f".{name}.joblib.tmp"
    joblib.dump(trained.estimator, tmp)
    digest = _sha256(tmp)
    tmp.replace(path)
    manifest = {
        "format": MANIFEST_FORMAT,
        "sensor_class": trained.sensor_class,
        "version": version,
        "name": name,
        "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "model": "sklearn.ensemble.IsolationForest",
        "sklearn_version": sklearn.__version__,
        "numpy_version": np.__version__,
        "params": trained.params,
        "features": list(FEATURE_NAMES),
        "feature_spec": trained.spec.to_json(),
        "training_window": {
            "start": format_ts(trained.window_start_ns),
            "end": format_ts(trained.window_end_ns),
            "start_ns": trained.window_start_ns,
            "end_ns": trained.window_end_ns,
        },
        "n_samples": trained.n_samples,
        "n_rows": trained.n_rows,
        "n_streams": trained.n_streams,
        "threshold": trained.threshold,
        "threshold_quantile": trained.threshold_quantile,
        "score_max": trained.score_max,
        "feature_min": [float(v) for v in trained.feature_min],
        "feature_max": [float(v) for v in trained.feature_max],
        "score_quantiles": trained.score_quantiles,
        "fit_seconds": round(trained.fit_seconds, 3),
        "sha256": digest,
        "file": path.name,
    }
    _atomic_write(d / f"{name}.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    _atomic_write(d / "latest", name + "\n")
    return StoredModel(trained.sensor_class, version, name, path, manifest, trained.estimator, trained.spec,
                       trained.threshold, trained.score_max, np.asarray(trained.feature_min, np.float64),
                       np.asarray(trained.feature_max, np.float64))


def read_manifest(model_dir: Path | str, sensor_class: str, version: int | None = None) -> dict[str, Any]:
    """The manifest of ``version`` (default: the ``latest`` one) without loading the model."""
    d = class_dir(model_dir, sensor_class)
    if version is None:
        try:
            name = (d / "latest").read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ModelNotFound(f"no model for {sensor_class} in {Path(model_dir)}") from None
    else:
        names = [n for v, n in list_versions(model_dir, sensor_class) if v == version]
        if not names:
            raise ModelNotFound(f"no version {version} of {sensor_class} in {Path(model_dir)}")
        name = names[0]
    if not _NAME_RE.match(name):
        raise ModelStoreError(f"{d / 'latest'} names {name!r}, not a model version")
    try:
        return json.loads((d / f"{name}.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelNotFound(f"manifest {d / (name + '.json')} is missing") from None
    except json.JSONDecodeError as exc:
        raise ModelStoreError(f"manifest {d / (name + '.json')} is not JSON: {exc}") from None


def load_model(
    model_dir: Path | str, sensor_class: str, version: int | None = None, *, spec: FeatureSpec | None = None
) -> StoredModel:
    """Load a stored model, refusing one that does not fit this code.

    Raises :class:`ModelNotFound` when there is none and :class:`ModelMismatch`
    when its feature list differs from :data:`FEATURE_NAMES`, its feature
    parameters differ from ``spec`` (when given), it was pickled by another
    scikit-learn version, or its file does not match the manifest's checksum.
    """
    m = read_manifest(model_dir, sensor_class, version)
    ref = f"{sensor_class}/{m.get('name')}"
    if m.get("features") != list(FEATURE_NAMES):
        raise ModelMismatch(
            f"{ref}: feature list {m.get('features')} differs from the code's {list(FEATURE_NAMES)}; "
            "retrain with 'lifewatch detectors train'"
        )
    model_spec = FeatureSpec.from_json(m["feature_spec"])
    if spec is not None and model_spec != spec:
        raise ModelMismatch(f"{ref}: trained with {model_spec}, expected {spec}")
    if m.get("sklearn_version") != sklearn.__version__:
        raise ModelMismatch(
            f"{ref}: pickled by scikit-learn {m.get('sklearn_version')}, this is {sklearn.__version__}; "
            "retrain with 'lifewatch detectors train'"
        )
    path = class_dir(model_dir, sensor_class) / m["file"]
    try:
        digest = _sha256(path)
    except FileNotFoundError:
        raise ModelNotFound(f"{ref}: model file {path} is missing") from None
    if digest != m.get("sha256"):
        raise ModelMismatch(f"{ref}: {path.name} does not match the manifest's checksum")
    est = joblib.load(path)
    if not isinstance(est, IsolationForest) or getattr(est, "n_features_in_", None) != N_FEATURES:
        raise ModelMismatch(f"{ref}: {path.name} is not an IsolationForest over {N_FEATURES} features")
    lo = np.asarray(m.get("feature_min", []), np.float64)
    hi = np.asarray(m.get("feature_max", []), np.float64)
    if lo.shape != (N_FEATURES,) or hi.shape != (N_FEATURES,):
        raise ModelMismatch(f"{ref}: manifest lacks the per-feature training envelope (feature_min/feature_max)")
    return StoredModel(sensor_class, int(m["version"]), m["name"], path, m, est, model_spec,
                       float(m["threshold"]), float(m["score_max"]), lo, hi)


# ---------------------------------------------------------------- helpers


def _reserve_version(d: Path) -> int:
    taken = {v for v, _ in list_versions(d.parent, d.name)}
    taken |= {int(p.name[2:-5]) for p in d.glob(".v*.lock") if p.name[2:-5].isdigit()}
    v = max(taken, default=0) + 1
    while True:
        try:
            fd = os.open(d / f".v{v}.lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            v += 1
            continue
        os.close(fd)
        return v


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
