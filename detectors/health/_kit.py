"""Small shared pieces for the sensor-health stages and the incident rules.

* :class:`StateArrays`: named numpy arrays indexed by a slot, growing on
  demand, with ``state_dict`` / ``load_state_dict`` (what scorers do in
  :class:`detectors.base.Scorer`, for stages).
* :func:`hyst_state` / :func:`load_hyst`: a :class:`~detectors.decide.Hysteresis`
  inside a stage's state dict.
* :func:`event_peaks`: the peak score of each hysteresis event *as of that
  event* (``Hysteresis.peak(slot)`` read after a whole batch would give the
  peak at the end of the batch, which depends on where batches are cut).
* :func:`local_phase`: time of day on the city's clock as a fraction of a day.
"""

from __future__ import annotations

from typing import Any

import numba
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


@numba.njit(cache=True, nogil=True)
def _event_peaks(slots, sev, score, active0, peak0, ev_row, ev_kind):  # noqa: ANN001
    active = active0.copy()
    peak = peak0.copy()
    out = np.zeros(len(ev_row))
    k = 0
    for i in range(len(slots)):
        s = slots[i]
        if k < len(ev_row) and ev_row[k] == i:
            kind = ev_kind[k]
            if kind == 1:
                peak[s] = score[i]
                active[s] = 1
            elif kind == 2:
                if score[i] > peak[s]:
                    peak[s] = score[i]
            out[k] = peak[s]
            if kind == 3:
                active[s] = 0
            k += 1
        elif sev[i] > 0 and active[s] > 0:
            if score[i] > peak[s]:
                peak[s] = score[i]
    return out


def step_with_peaks(h: Hysteresis, slots: np.ndarray, t: np.ndarray, sev: np.ndarray, score: np.ndarray):
    """:meth:`Hysteresis.step` plus the peak score of each event as of the event."""
    slots = np.ascontiguousarray(slots, np.int64)
    if len(slots) and int(slots.max()) >= h.capacity:
        h._grow(max(int(slots.max()) + 1, 2 * h.capacity))
    active0 = h.state["active"].copy()
    peak0 = h.state["peak"].copy()
    score = np.ascontiguousarray(score, np.float64)
    ev = h.step(slots, t, sev, score)
    peaks = _event_peaks(slots, np.ascontiguousarray(sev, np.int8), score, active0, peak0, ev[0], ev[1])
    return ev, peaks


def local_phase(t_ns: np.ndarray | int, utc_offset_hours: float) -> np.ndarray:
    """Fraction of the local day (0 = midnight) of UTC event times."""
    off = int(round(utc_offset_hours * 3600)) * NS
    return ((np.asarray(t_ns, np.int64) + off) % DAY_NS) / DAY_NS
