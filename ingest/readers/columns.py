"""Recordings in columnar form: one row per (reading, metric), strings as dictionary codes.

:class:`Columns` is what every reader produces and what the backtest and the
replay consume.  The string columns are :class:`Categorical`: an ``int32``
code per row (``-1`` = null) into a list of distinct strings, so a week of a
city (millions of rows, a few hundred sensors) costs a few arrays, not a
Python object per reading.

Rows of one reading are contiguous and share ``reading`` (a reading number);
a reading without any value (a heartbeat: every metric was null) is one row
whose ``metric`` is null.  ``value`` is ``NaN`` where the value is null.

>>> c = Columns.from_records([
...     ("water", "d01", "w-1", 20, {"flow": 1.5, "pressure": None}, 7, None),
...     ("water", "d01", "w-2", 10, {}, None, "missing"),
... ])
>>> len(c), c.n_readings
(3, 2)
>>> [(r.sensor_id, r.ts_ns, r.values) for r in c.ordered().iter_readings()]
[('w-2', 10, {}), ('w-1', 20, {'flow': 1.5, 'pressure': None})]
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lifewatch.model import Reading


@dataclass(slots=True)
class Categorical:
    """A string column as codes into ``categories`` (``-1`` = null)."""

    codes: np.ndarray  # int32
    categories: list[str]

    @classmethod
    def from_values(cls, values: Iterable[str | None]) -> Categorical:
        """Codes in order of first appearance."""
        index: dict[str, int] = {}
        cats: list[str] = []
        codes = []
        for v in values:
            if v is None:
                codes.append(-1)
                continue
            c = index.get(v)
            if c is None:
                c = index[v] = len(cats)
                cats.append(v)
            codes.append(c)
        return cls(np.asarray(codes, dtype=np.int32).reshape(-1), cats)

    @classmethod
    def constant(cls, value: str | None, n: int) -> Categorical:
        if value is None:
            return cls(np.full(n, -1, dtype=np.int32), [])
        return cls(np.zeros(n, dtype=np.int32), [value])

    def __len__(self) -> int:
        return len(self.codes)

    def __getitem__(self, i: int) -> str | None:
        c = int(self.codes[i])
        return None if c < 0 else self.categories[c]

    def values(self) -> np.ndarray:
        """The strings as an object array (``None`` for null)."""
        lut = np.array([*self.categories, None], dtype=object)
        return lut[self.codes]  # -1 picks the trailing None

    def take(self, idx: np.ndarray) -> Categorical:
        return Categorical(self.codes[idx], self.categories)


@dataclass
class Columns:
    """A recording, long format.  Iterating gives ``(ts_ns, sensor_id, lifeline, district, metric, value)``."""

    ts_ns: np.ndarray  # int64, ns since the epoch (UTC)
    sensor_id: Categorical
    lifeline: Categorical
    district: Categorical
    metric: Categorical  # null on the one row of a reading without values
    value: np.ndarray  # float64, NaN = null
    seq: np.ndarray  # int64 (0 where seq_valid is False)
    seq_valid: np.ndarray  # bool
    quality: Categorical
    reading: np.ndarray  # int64 reading number; the rows of one reading are contiguous
    format: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    #: labels the file itself carries (SKAB's ``anomaly`` column): {"name", "start_ns", "end_ns", "sensors"}
    labels: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts_ns)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.ts_ns, self.sensor_id, self.lifeline, self.district, self.metric, self.value))

    # ---- readings

    def reading_starts(self) -> np.ndarray:
        """Row index of the first row of every reading."""
        n = len(self.reading)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        new = np.empty(n, dtype=bool)
        new[0] = True
        np.not_equal(self.reading[1:], self.reading[:-1], out=new[1:])
        return np.flatnonzero(new)

    @property
    def n_readings(self) -> int:
        return len(self.reading_starts())

    def take(self, idx: np.ndarray) -> Columns:
        return Columns(self.ts_ns[idx], self.sensor_id.take(idx), self.lifeline.take(idx), self.district.take(idx),
                       self.metric.take(idx), self.value[idx], self.seq[idx], self.seq_valid[idx],
                       self.quality.take(idx), self.reading[idx], self.format, self.meta, self.labels)

    def ordered(self) -> Columns:
        """Readings in event-time order (stable: readings with equal times keep their file order).

        This is the order the replay publishes and the backtest processes.
        """
        starts = self.reading_starts()
        rts = self.ts_ns[starts]
        if len(rts) < 2 or bool(np.all(rts[1:] >= rts[:-1])):
            return self
        lengths = np.diff(np.append(starts, len(self.ts_ns)))
        order = np.argsort(rts, kind="stable")
        new_len = lengths[order]
        new_first = np.cumsum(new_len) - new_len
        rows = np.repeat(starts[order] - new_first, new_len) + np.arange(len(self.ts_ns))
        return self.take(rows)

    def iter_readings(self, start: int = 0, stop: int | None = None) -> Iterator[Reading]:
        """Readings of the rows ``[start, stop)`` (which must begin and end on reading boundaries)."""
        stop = len(self) if stop is None else stop
        if stop <= start:
            return
        ts = self.ts_ns[start:stop].tolist()
        rid = self.reading[start:stop].tolist()
        sid = self.sensor_id.codes[start:stop].tolist()
        lid = self.lifeline.codes[start:stop].tolist()
        did = self.district.codes[start:stop].tolist()
        mid = self.metric.codes[start:stop].tolist()
        val = self.value[start:stop].tolist()
        seq = self.seq[start:stop].tolist()
        seq_ok = self.seq_valid[start:stop].tolist()
        qid = self.quality.codes[start:stop].tolist()
        scat, lcat, dcat = self.sensor_id.categories, self.lifeline.categories, self.district.categories
        mcat, qcat = self.metric.categories, self.quality.categories
        cur: Reading | None = None
        prev = None
        for i in range(len(ts)):
            if rid[i] != prev or cur is None:
                if cur is not None:
                    yield cur
                prev = rid[i]
                cur = Reading(lcat[lid[i]], dcat[did[i]], scat[sid[i]], ts[i], {},
                              seq[i] if seq_ok[i] else None, qcat[qid[i]] if qid[i] >= 0 else None)
            if mid[i] >= 0:
                v = val[i]
                cur.values[mcat[mid[i]]] = None if v != v else v
        if cur is not None:
            yield cur

    def reading_batches(self, batch: int = 10_000) -> Iterator[list[Reading]]:
        """Readings in lists of at most ``batch``, in row order."""
        starts = self.reading_starts()
        for k in range(0, len(starts), batch):
            a = int(starts[k])
            b = int(starts[k + batch]) if k + batch < len(starts) else len(self)
            yield list(self.iter_readings(a, b))

    # ---- building

    @classmethod
    def from_records(cls, records: Iterable[tuple[str, str, str, int, dict[str, float | None], int | None, str | None]],
                     *, format: str = "", meta: dict[str, Any] | None = None) -> Columns:  # noqa: A002
        """``(lifeline, district, sensor_id, ts_ns, values, seq, quality)`` tuples -> columns (file order)."""
        b = ColumnsBuilder()
        for rec in records:
            b.add(*rec)
        return b.build(format=format, meta=meta)

    @classmethod
    def from_readings(cls, readings: Iterable[Reading], **kw: Any) -> Columns:
        return cls.from_records(((r.lifeline, r.district, r.sensor_id, r.ts_ns, r.values, r.seq, r.quality)
                                 for r in readings), **kw)


class ColumnsBuilder:
    """Accumulates readings row by row (for readers that parse line by line)."""

    def __init__(self) -> None:
        self._cats: dict[str, dict[str, int]] = {k: {} for k in ("sensor", "lifeline", "district", "metric", "quality")}
        self.ts: list[int] = []
        self.codes: dict[str, list[int]] = {k: [] for k in self._cats}
        self.value: list[float] = []
        self.seq: list[int] = []
        self.seq_valid: list[bool] = []
        self.reading: list[int] = []
        self.n_readings = 0

    def _code(self, kind: str, v: str | None) -> int:
        if v is None:
            return -1
        d = self._cats[kind]
        c = d.get(v)
        if c is None:
            c = d[v] = len(d)
        return c

    def add(self, lifeline: str, district: str, sensor_id: str, ts_ns: int, values: dict[str, float | None],
            seq: int | None = None, quality: str | None = None) -> None:
        r = self.n_readings
        self.n_readings += 1
        lc, dc, sc = self._code("lifeline", lifeline), self._code("district", district), self._code("sensor", sensor_id)
        qc = self._code("quality", quality)
        items = list(values.items()) or [(None, None)]
        for m, v in items:
            self.ts.append(ts_ns)
            self.codes["lifeline"].append(lc)
            self.codes["district"].append(dc)
            self.codes["sensor"].append(sc)
            self.codes["metric"].append(self._code("metric", m))
            self.codes["quality"].append(qc)
            self.value.append(np.nan if v is None else float(v))
            self.seq.append(0 if seq is None else int(seq))
            self.seq_valid.append(seq is not None)
            self.reading.append(r)

    def build(self, *, format: str = "", meta: dict[str, Any] | None = None) -> Columns:  # noqa: A002
        def cat(kind: str) -> Categorical:
            return Categorical(np.asarray(self.codes[kind], dtype=np.int32).reshape(-1), list(self._cats[kind]))

        return Columns(np.asarray(self.ts, dtype=np.int64).reshape(-1), cat("sensor"), cat("lifeline"), cat("district"),
                       cat("metric"), np.asarray(self.value, dtype=np.float64).reshape(-1),
                       np.asarray(self.seq, dtype=np.int64).reshape(-1), np.asarray(self.seq_valid, dtype=bool).reshape(-1),
                       cat("quality"), np.asarray(self.reading, dtype=np.int64).reshape(-1), format, dict(meta or {}))


def concat(parts: Sequence[Columns]) -> Columns:
    """Several column sets as one (categories merged, reading numbers kept distinct)."""
    if len(parts) == 1:
        return parts[0]

    def merge(get) -> Categorical:  # noqa: ANN001
        cats: dict[str, int] = {}
        codes = []
        for p in parts:
            c = get(p)
            lut = np.array([cats.setdefault(s, len(cats)) for s in c.categories] + [-1], dtype=np.int32)
            codes.append(lut[c.codes])
        return Categorical(np.concatenate(codes) if codes else np.zeros(0, np.int32), list(cats))

    offset = 0
    readings = []
    for p in parts:
        readings.append(p.reading + offset)
        offset += int(p.reading.max()) + 1 if len(p.reading) else 0
    return Columns(np.concatenate([p.ts_ns for p in parts]), merge(lambda p: p.sensor_id), merge(lambda p: p.lifeline),
                   merge(lambda p: p.district), merge(lambda p: p.metric), np.concatenate([p.value for p in parts]),
                   np.concatenate([p.seq for p in parts]), np.concatenate([p.seq_valid for p in parts]),
                   merge(lambda p: p.quality), np.concatenate(readings), parts[0].format if parts else "",
                   dict(parts[0].meta) if parts else {}, [lb for p in parts for lb in p.labels])
