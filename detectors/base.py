"""The detector contract: streaming scorers over many streams at once.

A *stream* is one sensor's metric (``("w-d01-003", "pressure")``).  A
:class:`Scorer` keeps the learned state of all its streams in numpy arrays
indexed by a stream *slot* (see :class:`StreamIndex`), and works on
micro-batches: three aligned arrays ``slots`` (int64), ``t`` (event time, ns,
int64) and ``x`` (float64).  Live ingest sends small batches, a backtest large
ones; the kernels walk a batch in order, so the results are identical to
point-by-point processing whatever the batch size.

The contract (checked for every registered scorer by
``tests/detectors/test_contract.py``):

* ``score(slots, t, x)`` is **pure**: it never changes state.  A high score
  means an anomaly; 0 means normal (or: not enough data yet).
* ``learn(slots, t, x)`` updates state from the points, in order.
* ``process(slots, t, x)`` is, for each point in order, score then learn;
  it returns the scores.  It equals calling ``score`` and ``learn`` on each
  point one at a time.
* **Event time only.**  ``t`` is the reading's event time; no wall clock.
* **Warm-up is explicit**: a stream that has learned fewer than ``warmup``
  points scores exactly 0.
* **Bounded state**: ``state_bytes_per_stream()`` is fixed at construction.
* **Save and restore**: ``state_dict()`` / ``load_state_dict()`` round-trip the
  whole state (plain numpy arrays), so a restart resumes without relearning.
* ``NaN`` values (missing readings) are skipped: score 0, nothing learned.

Deciding is kept apart from scoring: thresholds and hysteresis wrap scorers
(:mod:`detectors.decide`); alert policy (dedup, escalation) lives in
``alerts/``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

Batch = tuple[np.ndarray, np.ndarray, np.ndarray]  # slots, t, x


class StreamIndex:
    """Maps stream keys (sensor_id, metric) to dense slots, growing as new streams appear."""

    def __init__(self) -> None:
        self._slots: dict[tuple[str, str], int] = {}
        self.keys: list[tuple[str, str]] = []

    def __len__(self) -> int:
        return len(self.keys)

    def slot(self, sensor_id: str, metric: str) -> int:
        key = (sensor_id, metric)
        s = self._slots.get(key)
        if s is None:
            s = self._slots[key] = len(self.keys)
            self.keys.append(key)
        return s

    def get(self, sensor_id: str, metric: str) -> int | None:
        return self._slots.get((sensor_id, metric))

    def state_dict(self) -> dict[str, Any]:
        return {"keys": np.array(["\x1f".join(k) for k in self.keys], dtype=object)}

    @classmethod
    def from_state_dict(cls, d: dict[str, Any]) -> StreamIndex:
        idx = cls()
        for joined in d["keys"]:
            sensor, metric = str(joined).split("\x1f", 1)
            idx.slot(sensor, metric)
        return idx


class Scorer(ABC):
    """Base class: subclasses declare ``name``, ``params`` defaults, ``STATE`` layout and the kernel.

    ``STATE`` maps each state array name to (per-stream shape, dtype, fill).
    """

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    STATE: ClassVar[dict[str, tuple[tuple[int, ...], Any, float]]] = {}

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.params)
        if unknown:
            raise TypeError(f"{self.name}: unknown parameters {sorted(unknown)}; known: {sorted(self.params)}")
        self.p = {**self.params, **params}
        self.capacity = 0
        self.state: dict[str, np.ndarray] = {}
        self._grow(64)

    # ---- per-subclass pieces

    @property
    def warmup(self) -> int:
        return int(self.p.get("warmup", 0))

    @abstractmethod
    def _kernel(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray, out: np.ndarray, do_score: bool, do_learn: bool) -> None:
        """Walk the batch in order; write scores into ``out`` when ``do_score``; update state when ``do_learn``."""

    # ---- the contract

    def process(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        slots, t, x = self._prepare(slots, t, x)
        out = np.zeros(len(x), dtype=np.float64)
        self._kernel(slots, t, x, out, True, True)
        return out

    def score(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray) -> np.ndarray:
        slots, t, x = self._prepare(slots, t, x)
        out = np.zeros(len(x), dtype=np.float64)
        self._kernel(slots, t, x, out, True, False)
        return out

    def learn(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray) -> None:
        slots, t, x = self._prepare(slots, t, x)
        out = np.zeros(len(x), dtype=np.float64)
        self._kernel(slots, t, x, out, False, True)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.state.items()}

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        missing = set(self.STATE) - set(d)
        if missing:
            raise ValueError(f"{self.name}: state is missing {sorted(missing)}")
        n = len(next(iter(d.values())))
        self.capacity = 0
        self.state = {}
        self._grow(max(n, 64))
        for k in self.STATE:
            self.state[k][:n] = d[k]

    def state_bytes_per_stream(self) -> int:
        return sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize for shape, dtype, _ in self.STATE.values())

    # ---- helpers

    def _prepare(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray) -> Batch:
        slots = np.ascontiguousarray(slots, dtype=np.int64)
        t = np.ascontiguousarray(t, dtype=np.int64)
        x = np.ascontiguousarray(x, dtype=np.float64)
        if not (len(slots) == len(t) == len(x)):
            raise ValueError("slots, t and x must have the same length")
        if len(slots):
            top = int(slots.max())
            if top >= self.capacity:
                self._grow(max(top + 1, self.capacity * 2))
        return slots, t, x

    def _grow(self, capacity: int) -> None:
        for k, (shape, dtype, fill) in self.STATE.items():
            new = np.full((capacity, *shape), fill, dtype=dtype)
            old = self.state.get(k)
            if old is not None:
                new[: len(old)] = old
            self.state[k] = new
        self.capacity = capacity


REGISTRY: dict[str, type[Scorer]] = {}


def register(cls: type[Scorer]) -> type[Scorer]:
    """Class decorator: one line registers a scorer (Telegraf's registry pattern)."""
    if cls.name in REGISTRY and REGISTRY[cls.name] is not cls:
        raise ValueError(f"scorer name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def create(name: str, **params: Any) -> Scorer:
    import detectors.scorers  # noqa: F401 - importing registers the built-in scorers

    try:
        cls = REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown scorer {name!r}; known: {', '.join(sorted(REGISTRY))}") from None
    return cls(**params)


def all_scorers() -> dict[str, type[Scorer]]:
    import detectors.scorers  # noqa: F401

    return dict(REGISTRY)


Kernel = Callable[..., None]
