"""Hysteresis: raise after min_points, update on worsening, clear after clear_points, exact peaks for any batching."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.decide import CLEAR, RAISE, UPDATE, Hysteresis, level_to_severity, severity_to_level
from lifewatch.levels import Level

SEV = np.array([0, 1, 0, 1, 1, 2, 3, 0, 1, 0, 0, 0], np.int8)
SCORE = np.array([0, 5, 0, 3, 7, 6, 9, 0, 2, 0, 0, 0], float)


def run(splits: list[int]) -> list[tuple]:
    h = Hysteresis(min_points=2, clear_points=2)
    out, lo = [], 0
    for hi in [*splits, len(SEV)]:
        rows, kinds, sevs, starts, peaks = h.step(np.zeros(hi - lo, np.int64), np.arange(lo, hi), SEV[lo:hi], SCORE[lo:hi], with_peaks=True)
        out += [(int(r) + lo, int(k), int(s), int(st), float(p)) for r, k, s, st, p in zip(rows, kinds, sevs, starts, peaks, strict=True)]
        lo = hi
    return out


def test_raise_update_clear_with_peaks():
    # the lone abnormal point at 1 is flapping: not raised; the condition starts at 3 and its peak counts from there
    assert run([]) == [(4, RAISE, 1, 3, 7.0), (5, UPDATE, 2, 3, 7.0), (6, UPDATE, 3, 3, 9.0), (10, CLEAR, 3, 3, 9.0)]


@pytest.mark.parametrize("splits", [[1], [4], [5, 6], [2, 4, 6, 8, 10], list(range(1, 12))])
def test_any_batching_gives_the_same_events(splits):
    assert run(splits) == run([])


def test_slots_are_independent_and_state_round_trips():
    h = Hysteresis(1, 1)
    h.step(np.array([0, 1]), np.array([0, 0]), np.array([2, 0], np.int8))
    assert (h.active(0), h.active(1)) == (2, 0)
    g = Hysteresis(1, 1)
    g.load_state_dict(h.state_dict())
    assert g.step(np.array([0]), np.array([1]), np.array([0], np.int8))[1].tolist() == [CLEAR]


def test_level_mapping():
    assert [severity_to_level(s) for s in (1, 2, 3, 4)] == [Level.BLUE, Level.YELLOW, Level.ORANGE, Level.RED]
    assert level_to_severity(Level.RED) == 4
