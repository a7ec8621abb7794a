"""Base for per-sensor health stages that walk value rows (stuck, spike, drift).

A subclass's numba kernel walks the selected rows of a frame in order, keeps
per-*stream* state (one sensor's metric), and reports one observation per
*reading*: the worst severity over that reading's metrics.  Hysteresis then
runs per *sensor*, so a fault that hits every metric of a sensor (a frozen
meter: voltage and load) is one condition, not one per metric.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from detectors.decide import Hysteresis
from detectors.events import Detection
from detectors.frame import Frame, Registry
from detectors.health._kit import StateArrays, hyst_state, level_severity, load_hyst
from detectors.pipeline import Stage, emit_stream_events
from lifewatch.lifelines import load_lifelines


class MetricTable:
    """Per metric code (``lifeline.metric``): physical range and membership flags, as arrays."""

    def __init__(self) -> None:
        self.n = 0
        self.lo = np.zeros(0)
        self.hi = np.zeros(0)

    def sync(self, reg: Registry) -> None:
        if len(reg.metric_names) == self.n:
            return
        ll = load_lifelines()
        lo, hi = [], []
        for name in reg.metric_names:
            lid, m = name.split(".", 1)
            spec = ll[lid].metrics.get(m) if lid in ll else None
            lo.append(spec.range[0] if spec else -np.inf)
            hi.append(spec.range[1] if spec else np.inf)
        self.lo = np.array(lo, dtype=np.float64)
        self.hi = np.array(hi, dtype=np.float64)
        self.n = len(reg.metric_names)


def metric_mask(reg: Registry, names: frozenset[str] | None) -> np.ndarray:
    """Boolean per metric code: is ``lifeline.metric`` in ``names`` (None: all)."""
    if names is None:
        return np.ones(len(reg.metric_names), dtype=bool)
    return np.array([n in names for n in reg.metric_names], dtype=bool)


class SensorHealthStage(Stage):
    """Common plumbing; subclasses set ``name``, ``kind``, ``defaults``, ``STREAM``, ``SENSOR`` and ``_walk``."""

    name: ClassVar[str]
    kind: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    STREAM: ClassVar[dict[str, tuple[tuple[int, ...], Any, float]]] = {}
    SENSOR: ClassVar[dict[str, tuple[tuple[int, ...], Any, float]]] = {}
    hyst_min_points: ClassVar[int] = 1
    hyst_clear_points: ClassVar[int] = 1

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise TypeError(f"{self.name}: unknown parameters {sorted(unknown)}; known: {sorted(self.defaults)}")
        self.p = {**self.defaults, **params}
        self.sev_level = level_severity(self.p.get("level", "blue"))
        self.streams = StateArrays(self.stream_spec())
        self.sensors = StateArrays(self.SENSOR) if self.SENSOR else None
        self.hyst = Hysteresis(int(self.p.get("min_points", self.hyst_min_points)),
                               int(self.p.get("clear_points", self.hyst_clear_points)))
        self.metrics = MetricTable()

    # ---- subclass hooks

    def stream_spec(self) -> dict[str, tuple[tuple[int, ...], Any, float]]:
        return dict(self.STREAM)

    def _select(self, frame: Frame) -> np.ndarray:
        """Rows this stage looks at (default: all)."""
        return np.arange(len(frame), dtype=np.int64)

    def _walk(self, frame: Frame, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Walk ``rows``; return (obs_rows, obs_sev, obs_score, extra per observation)."""
        raise NotImplementedError

    def _evidence(self, extra: dict[str, np.ndarray], i: int, frame: Frame, row: int) -> dict[str, Any]:
        return {}

    # ---- Stage

    def process(self, frame: Frame) -> list[Detection]:
        if not len(frame):
            return []
        reg = frame.registry
        self.metrics.sync(reg)
        rows = self._select(frame)
        if not len(rows):
            return []
        self.streams.ensure(int(frame.stream[rows].max()) + 1)
        if self.sensors is not None:
            self.sensors.ensure(len(reg.sensor_ids))
        obs_rows, sev, score, extra = self._walk(frame, rows)
        if not len(obs_rows):
            return []
        frows = rows[obs_rows]
        slots = frame.sensor[frows]
        ev = self.hyst.step(slots, frame.t[frows], sev, score, with_peaks=True)
        if not len(ev[0]):
            return []
        out = emit_stream_events(frame, frows, ev, detector=self.name, kind=self.kind,
                                 evidence={"source": self.source}, scores=score)
        for d, i in zip(out, ev[0].tolist(), strict=True):
            d.evidence.update(self._evidence(extra, i, frame, int(frows[i])))
        return out

    source: ClassVar[str] = ""

    def state_dict(self) -> dict[str, np.ndarray]:
        d = self.streams.state_dict("stream/")
        if self.sensors is not None:
            d.update(self.sensors.state_dict("sensor/"))
        d.update(hyst_state(self.hyst))
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        self.streams.load_state_dict(d, "stream/")
        if self.sensors is not None:
            self.sensors.load_state_dict(d, "sensor/")
        load_hyst(self.hyst, d)

    def state_bytes_per_stream(self) -> int:
        """Bytes per stream, counting the per-sensor arrays (hysteresis included) once per stream."""
        per_sensor = self.hyst.state_bytes_per_slot() + (self.sensors.bytes_per_slot() if self.sensors else 0)
        return self.streams.bytes_per_slot() + per_sensor


class GroupTable:
    """Stream slot -> group of comparable streams (same asset and metric by default).

    Group ids are given in order of first appearance and saved with the
    stage, so a restored stage keeps them.  ``key(reg, sensor_slot,
    metric_code)`` returns the group key, or None for "no group" (e.g. a
    sensor that is not in the city file).
    """

    PENDING = -2

    def __init__(self, key) -> None:  # noqa: ANN001 - a callable
        self.key = key
        self.stream_group = np.zeros(0, dtype=np.int64)
        self.keys: list[str] = []
        self._index: dict[str, int] = {}
        self.version = 0  # bumps whenever a stream gets a group (CSR users rebuild)

    def sync(self, frame: Frame, rows: np.ndarray) -> None:
        reg = frame.registry
        n = len(reg.streams)
        if len(self.stream_group) < n:
            self.stream_group = np.concatenate(
                [self.stream_group, np.full(n - len(self.stream_group), self.PENDING, dtype=np.int64)])
        st = frame.stream[rows]
        pending = self.stream_group[st] == self.PENDING
        if not pending.any():
            return
        idx = np.flatnonzero(pending)
        uniq, first = np.unique(st[idx], return_index=True)
        for s, i in zip(uniq.tolist(), idx[first].tolist(), strict=True):
            row = int(rows[i])
            k = self.key(reg, int(frame.sensor[row]), int(frame.metric[row]))
            if k is None:
                self.stream_group[s] = -1
                continue
            g = self._index.get(k)
            if g is None:
                g = self._index[k] = len(self.keys)
                self.keys.append(k)
            self.stream_group[s] = g
        self.version += 1

    def members(self) -> tuple[np.ndarray, np.ndarray]:
        """CSR (indptr, streams) of the group members, streams ascending within a group."""
        sg = self.stream_group
        valid = np.flatnonzero(sg >= 0)
        order = valid[np.argsort(sg[valid], kind="stable")]
        counts = np.bincount(sg[valid], minlength=len(self.keys))
        indptr = np.zeros(len(self.keys) + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        return indptr, order.astype(np.int64)

    def state_dict(self, prefix: str = "groups/") -> dict[str, np.ndarray]:
        return {prefix + "stream_group": self.stream_group.copy(), prefix + "keys": np.array(self.keys, dtype=object)}

    def load_state_dict(self, d: dict[str, np.ndarray], prefix: str = "groups/") -> None:
        self.stream_group = np.asarray(d[prefix + "stream_group"], dtype=np.int64).copy()
        self.keys = [str(k) for k in d[prefix + "keys"]]
        self._index = {k: i for i, k in enumerate(self.keys)}
        self.version += 1


def asset_metric_key(reg: Registry, sensor: int, metric: int) -> str | None:
    """Group key: the sensor's asset and the metric (None when the sensor has no asset)."""
    asset = reg.asset_of(sensor)
    return None if asset is None else f"{asset}\x1f{reg.metric_names[metric]}"
