"""Learned detectors: an IsolationForest per sensor class over rolling-window stream features.

* :mod:`detectors.learned.features`: the per-stream features (numba kernel),
  identical live and in training;
* :mod:`detectors.learned.train`: history from InfluxDB, fitting and
  calibration, the ``lifewatch detectors train`` command;
* :mod:`detectors.learned.store`: versioned models with manifests;
* :mod:`detectors.learned.stage`: :class:`LearnedStage`, the pipeline stage.
"""

from detectors.learned.errors import (
    LearnedError,
    ModelMismatch,
    ModelNotFound,
    ModelStoreError,
    NotEnoughData,
)
from detectors.learned.features import FEATURE_NAMES, FeatureSpec, StreamFeatures, sensor_class
from detectors.learned.stage import LearnedStage
from detectors.learned.store import (
    StoredModel,
    TrainedModel,
    list_classes,
    list_versions,
    load_model,
    save_model,
)
from detectors.learned.train import Trainer, train, train_from_influx

__all__ = [
    "FEATURE_NAMES",
    "FeatureSpec",
    "LearnedError",
    "LearnedStage",
    "ModelMismatch",
    "ModelNotFound",
    "ModelStoreError",
    "NotEnoughData",
    "StoredModel",
    "StreamFeatures",
    "TrainedModel",
    "Trainer",
    "list_classes",
    "list_versions",
    "load_model",
    "save_model",
    "sensor_class",
    "train",
    "train_from_influx",
]
