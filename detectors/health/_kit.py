"""Small shared pieces for the sensor-health stages and the incident rules.

* :class:`StateArrays`: named numpy arrays indexed by a slot, growing on
  demand, with ``state_dict`` / ``load_state_dict`` (what scorers do in
  :class:`detectors.base.Scorer`, for stages).
* :func:`hyst_state` / :func:`load_hyst`: a :class:`~detectors.decide.Hysteresis`
  inside a stage's state dict.
* :func:`local_phase`: time of day on the city's clock as a fraction of a day.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.decide import Hysteresis
from lifewatch.levels import Level

NS = 1_000_000_000
DAY_NS = 86_400 * NS


class StateArrays:
    """Per-slot state: ``spec`` maps name -> (per-slot shape, dtype, fill)."""

    def __init__(self, spec: dict[str, tuple[tuple[int, ...], Any, float]], capacity: int = 64):
        self.spec = spec
        self.capacity = 0
        self.a: dict[str, np.ndarray] = {}
        self._grow(capacity)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.a[name]

    def ensure(self, n: int) -> None:
        if n > self.capacity:
            self._grow(max(n, 2 * self.capacity))

    def _grow(self, capacity: int) -> None:
        for k, (shape, dtype, fill) in self.spec.items():
            new = np.full((capacity, *shape), fill, dtype=dtype)
            old = self.a.get(k)
            if old is not None:
                new[: len(old)] = old
            self.a[k] = new
        self.capacity = capacity

    def state_dict(self, prefix: str = "") -> dict[str, np.ndarray]:
        return {prefix + k: v.copy() for k, v in self.a.items()}

    def load_state_dict(self, d: dict[str, np.ndarray], prefix: str = "") -> None:
        missing = [k for k in self.spec if prefix + k not in d]
        if missing:
            raise ValueError(f"state is missing {sorted(missing)}")
        n = len(d[prefix + next(iter(self.spec))])
        self.capacity = 0
        self.a = {}
        self._grow(max(n, 64))
        for k in self.spec:
            self.a[k][:n] = d[prefix + k]

    def bytes_per_slot(self) -> int:
        return sum(int(np.prod(shape, dtype=np.int64)) * np.dtype(dt).itemsize for shape, dt, _ in self.spec.values())


def hyst_state(h: Hysteresis, prefix: str = "hyst/") -> dict[str, np.ndarray]:
    return {prefix + k: v for k, v in h.state_dict().items()}


def load_hyst(h: Hysteresis, d: dict[str, np.ndarray], prefix: str = "hyst/") -> None:
    part = {k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)}
    if part:
        h.load_state_dict(part)


def level_severity(level: Level | str | int) -> int:
    """Hysteresis severity (1 blue .. 4 red) of a level given as a Level, name or number."""
    return 5 - int(Level.parse(level))


def local_phase(t_ns: np.ndarray | int, utc_offset_hours: float) -> np.ndarray:
    """Fraction of the local day (0 = midnight) of UTC event times."""
    off = int(round(utc_offset_hours * 3600)) * NS
    return ((np.asarray(t_ns, np.int64) + off) % DAY_NS) / DAY_NS
