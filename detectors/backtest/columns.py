"""Detector frames straight from columnar arrays: no Python object per reading.

:func:`frame_from_columns` builds the very :class:`~detectors.frame.Frame`
that :func:`~detectors.frame.build_frame` builds from the same readings:
same rows (one per non-null value, in order), same registry codes, assigned
in the same order of first appearance (sensor slots over readings, stream
slots and new metric codes over value rows), so a backtest and live ingest
number their streams alike.  Codes are looked up with numpy through
per-category tables; Python runs once per *new* sensor, metric or stream.

The string columns come as codes into category lists (``ingest.readers``'
``Categorical``: ``.codes`` int32 with -1 = null, ``.categories``); any
object with those two attributes works.

>>> import numpy as np
>>> from types import SimpleNamespace as C
>>> from detectors.frame import Registry, build_frame
>>> from lifewatch.model import Reading
>>> readings = [Reading("water", "d1", "w-2", 10, {"flow": 1.0, "pressure": None}),
...             Reading("water", "d1", "w-1", 10, {"pressure": 0.3}),
...             Reading("water", "d1", "w-2", 20, {"flow": 2.0, "pressure": 0.4})]
>>> cat = lambda codes, cats: C(codes=np.array(codes, np.int32), categories=cats)
>>> fb = FrameBuilder(Registry(None), sensor=cat([0, 0, 1, 0, 0], ["w-2", "w-1"]),
...                   lifeline=cat([0] * 5, ["water"]), district=cat([0] * 5, ["d1"]),
...                   metric=cat([0, 1, 1, 0, 1], ["flow", "pressure"]))
>>> f = fb.frame(ts=np.array([10, 10, 10, 20, 20]), value=np.array([1.0, np.nan, 0.3, 2.0, 0.4]),
...              reading_start=np.array([True, False, True, True, False]))
>>> g = build_frame(readings, Registry(None))
>>> all(np.array_equal(getattr(f, k), getattr(g, k)) for k in ("sensor", "metric", "stream", "t", "x",
...                                                              "reading_sensor", "reading_t"))
True
>>> f.stream.tolist(), f.reading_sensor.tolist()
([0, 1, 0, 2], [0, 1, 0])
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.frame import Frame, Registry

#: a dense (sensor category x metric category) table of stream slots is used up to this many cells
DENSE_STREAM_CELLS = 1 << 24


def _first_appearance(codes: np.ndarray, size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of ``codes`` in order of first appearance, and the index of each first appearance.

    With ``size`` (codes are known to lie in ``[0, size)``) no sort of the rows
    is needed: an unbuffered minimum per code finds each first position.
    """
    if size is None or size > 4 * len(codes) + 1024:
        u, first = np.unique(codes, return_index=True)
        order = np.argsort(first, kind="stable")
        return u[order], first[order]
    pos = np.full(size, len(codes), dtype=np.int64)
    np.minimum.at(pos, codes, np.arange(len(codes), dtype=np.int64))
    present = np.flatnonzero(pos < len(codes))
    order = np.argsort(pos[present], kind="stable")
    return present[order], pos[present][order]


class FrameBuilder:
    """Turns row ranges of one recording's columns into frames on ``registry`` (which it grows)."""

    def __init__(self, registry: Registry, *, sensor: Any, lifeline: Any, district: Any, metric: Any):
        self.reg = registry
        self.sensor, self.lifeline, self.district, self.metric = sensor, lifeline, district, metric
        self.n_metric_cats = max(1, len(metric.categories))
        self.sensor_lut = np.full(len(sensor.categories), -1, dtype=np.int64)
        self.metric_lut = np.full(max(1, len(lifeline.categories)) * self.n_metric_cats, -1, dtype=np.int64)
        cells = len(sensor.categories) * self.n_metric_cats
        self.dense = cells <= DENSE_STREAM_CELLS
        self.stream_lut = np.full(cells if self.dense else 0, -1, dtype=np.int64)
        self.stream_map: dict[int, int] = {}

    def _sensor_slots(self, s_codes: np.ndarray, l_codes: np.ndarray, d_codes: np.ndarray) -> np.ndarray:
        """Registry sensor slots of readings (new sensors registered in order of first appearance)."""
        slots = self.sensor_lut[s_codes]
        new = slots < 0
        if new.any():
            idx = np.flatnonzero(new)
            for code, first in zip(*_first_appearance(s_codes[idx], len(self.sensor_lut)), strict=True):
                row = idx[first]
                self.sensor_lut[code] = self.reg.sensor_slot(
                    self.sensor.categories[code], self.lifeline.categories[l_codes[row]], self.district.categories[d_codes[row]])
            slots = self.sensor_lut[s_codes]
        return slots

    def _metric_codes(self, l_codes: np.ndarray, m_codes: np.ndarray) -> np.ndarray:
        key = l_codes.astype(np.int64) * self.n_metric_cats + m_codes
        codes = self.metric_lut[key]
        new = codes < 0
        if new.any():
            for k in _first_appearance(key[new], len(self.metric_lut))[0]:
                lc, mc = divmod(int(k), self.n_metric_cats)
                self.metric_lut[k] = self.reg.metric_code(self.lifeline.categories[lc], self.metric.categories[mc])
            codes = self.metric_lut[key]
        return codes

    def _stream_slots(self, s_codes: np.ndarray, m_codes: np.ndarray) -> np.ndarray:
        key = s_codes.astype(np.int64) * self.n_metric_cats + m_codes
        slot_of = self.reg.streams.slot
        if self.dense:
            slots = self.stream_lut[key]
            new = slots < 0
            if new.any():
                for k in _first_appearance(key[new], len(self.stream_lut))[0]:
                    sc, mc = divmod(int(k), self.n_metric_cats)
                    self.stream_lut[k] = slot_of(self.sensor.categories[sc], self.metric.categories[mc])
                slots = self.stream_lut[key]
            return slots
        u, first, inv = np.unique(key, return_index=True, return_inverse=True)
        for k in u[np.argsort(first, kind="stable")].tolist():
            if k not in self.stream_map:
                sc, mc = divmod(k, self.n_metric_cats)
                self.stream_map[k] = slot_of(self.sensor.categories[sc], self.metric.categories[mc])
        return np.array([self.stream_map[k] for k in u.tolist()], dtype=np.int64)[inv]

    def frame(self, ts: np.ndarray, value: np.ndarray, reading_start: np.ndarray, rows: slice = slice(None)) -> Frame:
        """The frame of the rows ``rows`` (which begin on a reading's first row).

        ``ts``, ``value`` and ``reading_start`` (True on each reading's first
        row) are the full columns, or already sliced when ``rows`` is left out.
        """
        s_codes = self.sensor.codes[rows]
        l_codes = self.lifeline.codes[rows]
        d_codes = self.district.codes[rows]
        m_codes = self.metric.codes[rows]
        t = np.ascontiguousarray(ts[rows], dtype=np.int64)
        x = np.ascontiguousarray(value[rows], dtype=np.float64)
        first = np.flatnonzero(reading_start[rows])
        r_sensor = self._sensor_slots(s_codes[first], l_codes[first], d_codes[first])
        keep = (m_codes >= 0) & ~np.isnan(x)
        if keep.all():
            vi = None
            sv, lv, mv = s_codes, l_codes, m_codes
        else:
            vi = np.flatnonzero(keep)
            sv, lv, mv = s_codes[vi], l_codes[vi], m_codes[vi]
        # every value row's sensor slot: the slot of the reading it belongs to
        reading_of_row = np.cumsum(reading_start[rows]) - 1
        sensor_rows = r_sensor[reading_of_row if vi is None else reading_of_row[vi]]
        metric = self._metric_codes(lv, mv)
        stream = self._stream_slots(sv, mv)
        return Frame(sensor_rows.astype(np.int64, copy=False), metric, stream,
                     t if vi is None else t[vi], x if vi is None else x[vi], self.reg,
                     r_sensor.astype(np.int64, copy=False), t[first])


def frame_from_columns(registry: Registry, cols: Any, rows: slice = slice(None)) -> Frame:
    """One frame of (a reading-aligned row range of) an ``ingest.readers.Columns`` recording."""
    fb = FrameBuilder(registry, sensor=cols.sensor_id, lifeline=cols.lifeline, district=cols.district, metric=cols.metric)
    return fb.frame(cols.ts_ns, cols.value, reading_starts_mask(cols.reading), rows)


def reading_starts_mask(reading: np.ndarray) -> np.ndarray:
    """True on the first row of every reading (rows of one reading share a reading number and are contiguous)."""
    mask = np.empty(len(reading), dtype=bool)
    if len(reading):
        mask[0] = True
        np.not_equal(reading[1:], reading[:-1], out=mask[1:])
    return mask
