"""Deciding, kept apart from scoring: hysteresis turns per-point severities into raise/update/clear events.

A stage computes, for each point of a stream (or entity: a sensor, a DMA...),
a *severity*: 0 normal, 1 blue, 2 yellow, 3 orange, 4 red.  :class:`Hysteresis`
then emits

* ``raise`` once ``min_points`` consecutive points are abnormal (the start is
  the first of them, and the level the worst among them);
* ``update`` when an active condition gets worse;
* ``clear`` after ``clear_points`` consecutive normal points.

Flapping around a threshold therefore produces one condition, not many.
Event time only; the kernel walks the batch in order, so any batching gives
the same events.
"""

from __future__ import annotations

import numba
import numpy as np

from lifewatch.levels import Level

RAISE, UPDATE, CLEAR = 1, 2, 3


def severity_to_level(sev: int) -> Level:
    return Level(5 - int(sev))


def level_to_severity(level: Level) -> int:
    return 5 - int(level)


@numba.njit(cache=True, nogil=True)
def _hysteresis(slots, t, sev, score, min_points, clear_points,
                active, on_count, off_count, cand_start, cand_sev, start_t, peak, cand_peak,
                ev_row, ev_kind, ev_sev, ev_start, ev_peak):  # noqa: ANN001
    k = 0
    for i in range(len(slots)):
        s = slots[i]
        v = sev[i]
        if v > 0:
            off_count[s] = 0
            if on_count[s] == 0:
                cand_start[s] = t[i]
                cand_sev[s] = 0
                cand_peak[s] = score[i]
            elif score[i] > cand_peak[s]:
                cand_peak[s] = score[i]
            on_count[s] += 1
            if v > cand_sev[s]:
                cand_sev[s] = v
            if active[s] == 0:
                if on_count[s] >= min_points:
                    active[s] = cand_sev[s]
                    start_t[s] = cand_start[s]
                    peak[s] = cand_peak[s]
                    ev_row[k] = i
                    ev_kind[k] = 1
                    ev_sev[k] = active[s]
                    ev_start[k] = start_t[s]
                    ev_peak[k] = peak[s]
                    k += 1
            else:
                if score[i] > peak[s]:
                    peak[s] = score[i]
                if v > active[s]:
                    active[s] = v
                    ev_row[k] = i
                    ev_kind[k] = 2
                    ev_sev[k] = v
                    ev_start[k] = start_t[s]
                    ev_peak[k] = peak[s]
                    k += 1
        else:
            on_count[s] = 0
            if active[s] > 0:
                off_count[s] += 1
                if off_count[s] >= clear_points:
                    ev_row[k] = i
                    ev_kind[k] = 3
                    ev_sev[k] = active[s]
                    ev_start[k] = start_t[s]
                    ev_peak[k] = peak[s]
                    k += 1
                    active[s] = 0
                    off_count[s] = 0
    return k


class Hysteresis:
    """Per-slot raise/clear state for one kind of condition."""

    def __init__(self, min_points: int = 1, clear_points: int = 3):
        if min_points < 1 or clear_points < 1:
            raise ValueError("min_points and clear_points must be >= 1")
        self.min_points = min_points
        self.clear_points = clear_points
        self.capacity = 0
        self.state: dict[str, np.ndarray] = {}
        self._grow(64)

    _LAYOUT = {"active": np.int8, "on_count": np.int64, "off_count": np.int64, "cand_start": np.int64,
               "cand_sev": np.int8, "start_t": np.int64, "peak": np.float64, "cand_peak": np.float64}

    def _grow(self, capacity: int) -> None:
        for k, dt in self._LAYOUT.items():
            new = np.zeros(capacity, dtype=dt)
            old = self.state.get(k)
            if old is not None:
                new[: len(old)] = old
            self.state[k] = new
        self.capacity = capacity

    def step(self, slots: np.ndarray, t: np.ndarray, sev: np.ndarray, score: np.ndarray | None = None,
             with_peaks: bool = False):
        """Feed points; return (rows, kinds, severities, starts) of the events, in order.

        With ``with_peaks`` a fifth array holds each event's peak score *as of
        its row* (the worst score since the condition's first abnormal point),
        which does not depend on how the points were batched.
        """
        n = len(slots)
        slots = np.ascontiguousarray(slots, np.int64)
        if n and int(slots.max()) >= self.capacity:
            self._grow(max(int(slots.max()) + 1, 2 * self.capacity))
        score = np.zeros(n) if score is None else np.ascontiguousarray(score, np.float64)
        ev_row = np.empty(n, np.int64)
        ev_kind = np.empty(n, np.int8)
        ev_sev = np.empty(n, np.int8)
        ev_start = np.empty(n, np.int64)
        ev_peak = np.empty(n, np.float64)
        st = self.state
        k = _hysteresis(slots, np.ascontiguousarray(t, np.int64), np.ascontiguousarray(sev, np.int8), score,
                        self.min_points, self.clear_points, st["active"], st["on_count"], st["off_count"],
                        st["cand_start"], st["cand_sev"], st["start_t"], st["peak"], st["cand_peak"],
                        ev_row, ev_kind, ev_sev, ev_start, ev_peak)
        if with_peaks:
            return ev_row[:k], ev_kind[:k], ev_sev[:k], ev_start[:k], ev_peak[:k]
        return ev_row[:k], ev_kind[:k], ev_sev[:k], ev_start[:k]

    def active(self, slot: int) -> int:
        return int(self.state["active"][slot]) if slot < self.capacity else 0

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self.state.items()}

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        n = len(d["active"])
        self.state = {}
        self.capacity = 0
        self._grow(max(n, 64))
        for k in self._LAYOUT:
            if k in d:  # state saved before a field existed starts from zeros
                self.state[k][:n] = d[k]

    def state_bytes_per_slot(self) -> int:
        return sum(np.dtype(dt).itemsize for dt in self._LAYOUT.values())
