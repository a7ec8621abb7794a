"""Rolling-window features per stream, computed incrementally: the same code live and offline.

The learned detectors do not look at a raw value but at a short description of
the value *in its recent context*.  :class:`StreamFeatures` keeps, per stream
(one sensor's metric), a few numbers and a ring of the last ``k - 1`` values,
and turns each point into one row of :data:`FEATURE_NAMES`:

=============  ===============================================================
``value``      the value itself
``dev_ewm``    value minus the exponentially weighted mean of the past points
``ew_std``     exponentially weighted standard deviation of the past points
``diff1``      value minus the previous value of the stream
``min_k``      minimum over the last ``k`` points (this one included)
``max_k``      maximum over the last ``k`` points
``range_k``    ``max_k - min_k``
``hour_sin``   sine of the local hour of day (``utc_offset_hours`` from the city)
``hour_cos``   cosine of the local hour of day
=============  ===============================================================

A point's features describe it against the state learned from the points
*before* it, so the point itself never hides in its own mean.  The numba
kernel walks a micro-batch ``(slots, t, x)`` in order, exactly like the
scorers of :mod:`detectors.base`: ``process`` (features, then learn, per
point) gives the same rows for any split of the input into batches, and the
training code calls the very same kernel on history read from InfluxDB.

``features`` alone is pure (every row against the state as it was before the
batch); ``learn`` advances the state.  The state of a stream is bounded:
``5 * 8 + 8 * (k - 1)`` bytes (112 bytes with the default ``k = 10``).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import numba
import numpy as np

FEATURE_NAMES: tuple[str, ...] = (
    "value",
    "dev_ewm",
    "ew_std",
    "diff1",
    "min_k",
    "max_k",
    "range_k",
    "hour_sin",
    "hour_cos",
)
N_FEATURES = len(FEATURE_NAMES)
NS = 1_000_000_000
DAY_NS = 86_400 * NS

_CLASS_RE = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+){1,2}\Z")


def sensor_class(lifeline: str, metric: str, kind: str | None = None) -> str:
    """The class a stream's model is trained for: ``lifeline.kind.metric``, or ``lifeline.metric``.

    Streams of sensors the city file knows are grouped by lifeline, sensor
    kind and metric (``water.pressure.pressure``: the pressure of network
    pressure loggers; ``water.dma_inlet.flow``).  A sensor the city does not
    know has no kind; its streams fall in the generic ``lifeline.metric``
    class.  Training and the streaming stage both call this one function.

    >>> sensor_class("water", "flow", "dma_inlet"), sensor_class("water", "pressure")
    ('water.dma_inlet.flow', 'water.pressure')
    """
    name = f"{lifeline}.{kind}.{metric}" if kind else f"{lifeline}.{metric}"
    check_class_name(name)
    return name


def check_class_name(name: str) -> None:
    """Class names become directory names in the model store: lower-case words and dots only."""
    if not _CLASS_RE.match(name):
        raise ValueError(f"bad sensor class {name!r}: expected lifeline.metric or lifeline.kind.metric")


@dataclass(frozen=True, slots=True)
class FeatureSpec:
    """The parameters of the features; stored with every model and checked on loading.

    All values are settings of this detector, not domain numbers:

    * ``alpha``: weight of the newest point in the EW mean and variance
      (``0.05``: a memory of about 20 points, as the EWZ scorer's default);
    * ``k``: the window of ``min_k``/``max_k``/``range_k`` in points
      (``10``: ten minutes at the 60 s interval most sensor kinds use,
      ``lifewatch/lifelines/*.yaml``);
    * ``warmup``: points a stream must have learned before its rows count
      (``30``: the EW state has then forgotten ~78 % of its first value);
    * ``utc_offset_hours``: local time of the city for the hour-of-day
      features (the demo city Shihezi is UTC+6, domain.md "Xinjiang Time").
    """

    alpha: float = 0.05
    k: int = 10
    warmup: int = 30
    utc_offset_hours: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        if self.k < 1:
            raise ValueError("k must be >= 1")
        if self.warmup < self.k - 1:
            raise ValueError("warmup must be >= k - 1 so that the min/max window is full")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> FeatureSpec:
        return cls(float(d["alpha"]), int(d["k"]), int(d["warmup"]), float(d["utc_offset_hours"]))

    def as_array(self) -> np.ndarray:
        return np.array([self.alpha, self.k, self.warmup, self.utc_offset_hours], dtype=np.float64)

    @classmethod
    def from_array(cls, a: np.ndarray) -> FeatureSpec:
        return cls(float(a[0]), int(a[1]), int(a[2]), float(a[3]))


@numba.njit(cache=True, nogil=True)
def _features(slots, t, x, out, warm, do_feat, do_learn,
              n, mean, var, last, ring, pos, alpha, warmup, offset_ns):  # noqa: ANN001
    w = ring.shape[1]
    two_pi = 2.0 * np.pi
    for i in range(len(x)):
        v = x[i]
        if np.isnan(v):
            if do_feat:
                for j in range(out.shape[1]):
                    out[i, j] = np.nan
                warm[i] = False
            continue
        s = slots[i]
        if do_feat:
            cnt = n[s]
            warm[i] = cnt >= warmup
            out[i, 0] = v
            if cnt > 0:
                out[i, 1] = v - mean[s]
                out[i, 2] = np.sqrt(var[s])
                out[i, 3] = v - last[s]
            else:
                out[i, 1] = 0.0
                out[i, 2] = 0.0
                out[i, 3] = 0.0
            lo = v
            hi = v
            m = cnt if cnt < w else w
            for j in range(m):
                r = ring[s, j]
                if r < lo:
                    lo = r
                if r > hi:
                    hi = r
            out[i, 4] = lo
            out[i, 5] = hi
            out[i, 6] = hi - lo
            frac = ((t[i] + offset_ns) % 86_400_000_000_000) / 86_400_000_000_000.0
            out[i, 7] = np.sin(two_pi * frac)
            out[i, 8] = np.cos(two_pi * frac)
        if do_learn:
            if n[s] == 0:
                mean[s] = v
                var[s] = 0.0
            else:
                d = v - mean[s]
                incr = alpha * d
                mean[s] += incr
                var[s] = (1.0 - alpha) * (var[s] + d * incr)
            last[s] = v
            if w > 0:
                ring[s, pos[s]] = v
                pos[s] = (pos[s] + 1) % w
            n[s] += 1


class StreamFeatures:
    """Per-stream rolling features over ``(slots, t, x)`` micro-batches (see the module docstring).

    Returns ``(rows, warm)``: a float64 matrix with one row of
    :data:`FEATURE_NAMES` per point and a boolean mask of the rows whose
    stream had learned at least ``warmup`` points before them.  ``NaN``
    values (missing readings) give a row of NaN, never warm, and are not
    learned.

    Works badly on streams with long gaps (after a day offline, ``diff1`` and
    ``dev_ewm`` compare with day-old values) and on points that arrive out of
    event-time order (the state follows arrival order, in live runs and
    replays alike).

    >>> import numpy as np
    >>> f = StreamFeatures(FeatureSpec(alpha=0.5, k=3, warmup=2, utc_offset_hours=6))
    >>> t = np.arange(4) * 3_600 * NS                # 00:00 .. 03:00 UTC = 06:00 .. 09:00 local
    >>> rows, warm = f.process(np.zeros(4, np.int64), t, np.array([1.0, 3.0, 2.0, 10.0]))
    >>> print(" ".join(f"{n:>8}" for n in f.names)); print(np.array2string(rows, precision=3, floatmode="fixed", suppress_small=True, max_line_width=200))
       value  dev_ewm   ew_std    diff1    min_k    max_k  range_k hour_sin hour_cos
    [[ 1.000  0.000  0.000  0.000  1.000  1.000  0.000  1.000  0.000]
     [ 3.000  2.000  0.000  2.000  1.000  3.000  2.000  0.966 -0.259]
     [ 2.000  0.000  1.000 -1.000  1.000  3.000  2.000  0.866 -0.500]
     [10.000  8.000  0.707  8.000  2.000 10.000  8.000  0.707 -0.707]]
    >>> warm
    array([False, False,  True,  True])
    >>> f.state_bytes_per_stream()
    56
    """

    names = FEATURE_NAMES

    def __init__(self, spec: FeatureSpec | None = None):
        self.spec = spec or FeatureSpec()
        self._w = self.spec.k - 1
        self.capacity = 0
        self.state: dict[str, np.ndarray] = {}
        self._grow(64)

    def _layout(self) -> dict[str, tuple[tuple[int, ...], Any]]:
        return {
            "n": ((), np.int64),
            "mean": ((), np.float64),
            "var": ((), np.float64),
            "last": ((), np.float64),
            "pos": ((), np.int64),
            "ring": ((self._w,), np.float64),
        }

    def _grow(self, capacity: int) -> None:
        for k, (shape, dtype) in self._layout().items():
            new = np.zeros((capacity, *shape), dtype=dtype)
            old = self.state.get(k)
            if old is not None:
                new[: len(old)] = old
            self.state[k] = new
        self.capacity = capacity

    def _run(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray, do_feat: bool, do_learn: bool):
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        t = np.ascontiguousarray(t, dtype=np.int64)
        x = np.ascontiguousarray(x, dtype=np.float64)
        if not (len(slots) == len(t) == len(x)):
            raise ValueError("slots, t and x must have the same length")
        if len(slots):
            top = int(slots.max())
            if top >= self.capacity:
                self._grow(max(top + 1, self.capacity * 2))
        n = len(x) if do_feat else 0
        out = np.empty((n, N_FEATURES), dtype=np.float64)
        warm = np.zeros(n, dtype=np.bool_)
        st = self.state
        sp = self.spec
        _features(slots, t, x, out, warm, do_feat, do_learn, st["n"], st["mean"], st["var"], st["last"],
                  st["ring"], st["pos"], float(sp.alpha), int(sp.warmup), int(round(sp.utc_offset_hours * 3600 * NS)))
        return out, warm

    def process(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per point in order: its features, then learn it.  Any batch split gives the same rows."""
        return self._run(slots, t, x, True, True)

    def features(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pure: every row against the state as it is now (before the batch)."""
        return self._run(slots, t, x, True, False)

    def learn(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray) -> None:
        self._run(slots, t, x, False, True)

    def warm_count(self, slot: int) -> int:
        return int(self.state["n"][slot]) if slot < self.capacity else 0

    def state_dict(self) -> dict[str, np.ndarray]:
        d = {k: v.copy() for k, v in self.state.items()}
        d["spec"] = self.spec.as_array()
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        spec = FeatureSpec.from_array(d["spec"])
        if spec != self.spec:
            raise ValueError(f"feature state was saved with {spec}, this extractor uses {self.spec}")
        missing = set(self._layout()) - set(d)
        if missing:
            raise ValueError(f"feature state is missing {sorted(missing)}")
        n = len(d["n"])
        self.state = {}
        self.capacity = 0
        self._grow(max(n, 64))
        for k in self._layout():
            self.state[k][:n] = d[k]

    def state_bytes_per_stream(self) -> int:
        return sum(int(math.prod(shape)) * np.dtype(dt).itemsize for shape, dt in self._layout().values())
