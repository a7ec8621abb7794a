"""A micro-batch of readings in columnar form: what every detector stage reads.

The pipeline builds one :class:`Frame` per batch of readings: one row per
(reading, non-null metric), with dense integer codes for sensors, metrics and
streams, so stages select rows with numpy masks instead of Python loops.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detectors.base import StreamIndex
from lifewatch.city import City, Sensor
from lifewatch.lifelines import LIFELINE_IDS
from lifewatch.model import Reading


class Registry:
    """Dense codes for sensors and metrics, plus what the city says about each sensor.

    Sensors that are not in the city file still get a slot (ingest does not
    require registration); they just have no asset or kind.
    """

    def __init__(self, city: City | None):
        self.city = city
        self.sensor_ids: list[str] = []
        self.sensor_meta: list[Sensor | None] = []
        self.sensor_district: list[str] = []
        self.sensor_lifeline: list[str] = []
        self._sensor_slot: dict[str, int] = {}
        self.metric_names: list[str] = []  # "water.pressure"
        self._metric_code: dict[str, int] = {}
        self.streams = StreamIndex()
        for lid in LIFELINE_IDS:
            from lifewatch.lifelines import load_lifelines

            for m in load_lifelines()[lid].metrics:
                self.metric_code(lid, m)

    def sensor_slot(self, sensor_id: str, lifeline: str, district: str) -> int:
        s = self._sensor_slot.get(sensor_id)
        if s is None:
            s = self._sensor_slot[sensor_id] = len(self.sensor_ids)
            self.sensor_ids.append(sensor_id)
            meta = self.city.sensors.get(sensor_id) if self.city else None
            self.sensor_meta.append(meta)
            self.sensor_district.append(district)
            self.sensor_lifeline.append(lifeline)
        return s

    def metric_code(self, lifeline: str, metric: str) -> int:
        key = f"{lifeline}.{metric}"
        c = self._metric_code.get(key)
        if c is None:
            c = self._metric_code[key] = len(self.metric_names)
            self.metric_names.append(key)
        return c

    def asset_of(self, sensor_slot: int) -> str | None:
        meta = self.sensor_meta[sensor_slot]
        return meta.asset if meta else None


@dataclass(slots=True)
class Frame:
    sensor: np.ndarray  # int64 sensor slot
    metric: np.ndarray  # int64 metric code (lifeline.metric)
    stream: np.ndarray  # int64 stream slot (sensor, metric)
    t: np.ndarray  # int64 event time, ns
    x: np.ndarray  # float64 value
    registry: Registry = field(repr=False)
    # per reading (not per value): for stages that look at whole readings (silence, clock skew)
    reading_sensor: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    reading_t: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.x)

    def select(self, metric_codes: list[int] | np.ndarray) -> np.ndarray:
        """Row indices whose metric is one of ``metric_codes``, in order."""
        if len(metric_codes) == 1:
            return np.flatnonzero(self.metric == metric_codes[0])
        return np.flatnonzero(np.isin(self.metric, np.asarray(metric_codes)))


def build_frame(readings: list[Reading], reg: Registry) -> Frame:
    n = sum(len(r.values) for r in readings)
    sensor = np.empty(n, np.int64)
    metric = np.empty(n, np.int64)
    stream = np.empty(n, np.int64)
    t = np.empty(n, np.int64)
    x = np.empty(n, np.float64)
    rs = np.empty(len(readings), np.int64)
    rt = np.empty(len(readings), np.int64)
    i = 0
    sensor_slot, metric_code, stream_slot = reg.sensor_slot, reg.metric_code, reg.streams.slot
    for j, r in enumerate(readings):
        s = sensor_slot(r.sensor_id, r.lifeline, r.district)
        rs[j] = s
        rt[j] = r.ts_ns
        for m, v in r.values.items():
            if v is None:
                continue
            sensor[i] = s
            metric[i] = metric_code(r.lifeline, m)
            stream[i] = stream_slot(r.sensor_id, m)
            t[i] = r.ts_ns
            x[i] = v
            i += 1
    return Frame(sensor[:i], metric[:i], stream[:i], t[:i], x[:i], reg, rs, rt)
