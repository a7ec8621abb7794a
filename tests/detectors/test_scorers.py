"""Behaviour of the statistical scorers: what each one flags, and what it leaves alone."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.scorers.changepoint import Cusum
from detectors.scorers.ewz import EWZ
from detectors.scorers.rate import RateOfChange
from detectors.scorers.seasonal import HOUR_NS, SeasonalRobustZ

MIN = 60 * 1_000_000_000
T0 = 1_767_571_200 * 1_000_000_000  # 2026-01-05T00:00:00Z, a Monday


def zeros(n: int) -> np.ndarray:
    return np.zeros(n, dtype=np.int64)


# --------------------------------------------------------------------------- seasonal_robust_z


def daily_cycle(days: int, step_min: int = 10, seed: int = 0, offset_h: float = 6.0):
    """Demand-like cycle on the local clock: trough 70 at 03:00, peak 130 at 15:00, noise sd 2."""
    rng = np.random.default_rng(seed)
    n = days * 1440 // step_min
    t = T0 + np.arange(n) * step_min * MIN
    local_h = ((t + int(offset_h * HOUR_NS)) % (24 * HOUR_NS)) / HOUR_NS
    x = 100 - 30 * np.cos(2 * np.pi * (local_h - 3) / 24) + rng.normal(0, 2, n)
    return t, x, local_h


def test_seasonal_leaves_a_normal_daily_cycle_alone() -> None:
    t, x, _ = daily_cycle(21)
    z = SeasonalRobustZ().process(zeros(len(t)), t, x)
    late = z[len(z) // 3:]
    assert np.percentile(late, 99) < 4.0
    assert (late >= 6).sum() == 0
    # a global baseline cannot: the daily swing itself is "unusual" most of the day
    g = EWZ(alpha=0.001).process(zeros(len(t)), t, x)
    assert np.percentile(g[len(g) // 3:], 90) > 1.0


def test_seasonal_flags_a_step_at_3am_that_is_normal_at_noon() -> None:
    t, x, local_h = daily_cycle(21)
    night = np.flatnonzero((local_h >= 3) & (local_h < 4))[-6:]  # the last 03:00-04:00
    x[night] += 25  # 95: inside the daily range (70-130), an ordinary value at 10:00 or 20:00
    z = SeasonalRobustZ().process(zeros(len(t)), t, x)
    assert (z[night] >= 6).all(), z[night]
    assert z[: night[0]][len(z) // 3:].max() < 6
    g = EWZ(alpha=0.001).process(zeros(len(t)), t, x)  # a non-seasonal z-score sees nothing special
    assert g[night].max() < 2


def test_seasonal_bins_follow_the_local_clock_and_weekends() -> None:
    fri_20_utc = T0 + (4 * 24 + 20) * HOUR_NS  # Friday 20:00 UTC = Saturday 02:00 at UTC+6
    for offset, expect in ((6.0, 24 + 2), (0.0, 20), (8.0, 24 + 4)):
        sc = SeasonalRobustZ(utc_offset_h=offset)
        sc.learn(zeros(1), np.array([fri_20_utc]), np.array([1.0]))
        assert np.flatnonzero(sc.state["cnt"][0]).tolist() == [expect], offset
    wk = SeasonalRobustZ(season="hour_of_week", utc_offset_h=6.0)
    wk.learn(zeros(1), np.array([fri_20_utc]), np.array([1.0]))
    assert np.flatnonzero(wk.state["cnt"][0]).tolist() == [5 * 24 + 2]
    assert wk.state_bytes_per_stream() == 168 * 9 + 8
    assert SeasonalRobustZ(season="hour_of_day").state_bytes_per_stream() == 24 * 9 + 8
    with pytest.raises(ValueError, match="season"):
        SeasonalRobustZ(season="monthly")


def test_seasonal_weekend_pattern_is_learned_apart() -> None:
    rng = np.random.default_rng(5)
    n = 28 * 144  # four weeks, 10-minute readings
    t = T0 + np.arange(n) * 10 * MIN
    hours = (t + 6 * HOUR_NS) // HOUR_NS
    weekend = ((hours // 24 + 3) % 7) >= 5
    morning = (hours % 24 >= 7) & (hours % 24 < 10)
    x = 50 + 40 * (morning & ~weekend) + rng.normal(0, 1, n)  # weekday morning peak, quiet weekends
    split = SeasonalRobustZ().process(zeros(n), t, x)
    flat = SeasonalRobustZ(season="hour_of_day").process(zeros(n), t, x)
    late_weekend_mornings = (np.arange(n) > 14 * 144) & weekend & morning
    assert np.median(split[late_weekend_mornings]) < 2
    assert np.median(flat[late_weekend_mornings]) > 6


def test_seasonal_warmup_is_per_bin_and_baseline_is_the_bin_median() -> None:
    t, x, _ = daily_cycle(3, step_min=1)
    sc = SeasonalRobustZ(warmup=8)
    z, base = sc.process_baseline(zeros(len(t)), t, x)
    hour_rank = np.arange(len(t)) % 60  # 60 readings per hour bin on day 1
    assert (z[: 1440][hour_rank[:1440] < 8] == 0).all()
    assert (z[: 1440][hour_rank[:1440] >= 8] > 0).all()
    first_of_bin = np.flatnonzero(np.isnan(base))  # no baseline before a bin's first point
    assert first_of_bin.tolist() == list(range(0, 1440, 60))
    assert np.median(np.abs(base[1440:] - x[1440:])) < 3  # within ~1.5 noise sd


# --------------------------------------------------------------------------- cusum


@pytest.mark.parametrize("shift", [1.5, -1.5, 3.0])
def test_cusum_catches_a_mean_shift_within_a_few_points(shift: float) -> None:
    delays = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        x = np.r_[rng.normal(0, 1, 400), rng.normal(shift, 1, 100)]
        g = Cusum().process(zeros(len(x)), np.arange(len(x)), x)
        hits = np.flatnonzero(g[400:] >= 1)
        delays.append(hits[0] if len(hits) else 999)
    assert np.median(delays) <= (8 if abs(shift) < 2 else 4), delays
    # a false alarm just before the shift starts a relearning of the baseline that absorbs it:
    # the documented blind spot, so not every shift is caught within 40 points
    assert np.mean(np.array(delays) <= 40) >= 0.85, delays


def test_cusum_in_control_false_alarms_are_rare() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(5, 2, 50_000)
    for h, at_least in ((5.0, 300), (8.0, 5_000)):
        g = Cusum(h=h).process(zeros(len(x)), np.arange(len(x)), x)
        alarms = int((g >= 1).sum())
        assert len(x) / max(alarms, 1) >= at_least, (h, alarms)


def test_cusum_ignores_a_single_spike_but_not_a_lasting_shift() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(0, 1, 600)
    x[300] += 50
    g = Cusum().process(zeros(len(x)), np.arange(len(x)), x)
    assert g[300] < 1 and g[300:310].max() < 1  # clipped at 3: one spike adds at most 2.5 of h = 5
    x[450:] += 2
    g = Cusum().process(zeros(len(x)), np.arange(len(x)), x)
    assert (g[450:470] >= 1).sum() == 1  # one declaration, then the baseline is relearned


def test_cusum_restarts_after_a_change() -> None:
    rng = np.random.default_rng(4)
    x = np.r_[rng.normal(0, 1, 300), rng.normal(4, 1, 300), rng.normal(0, 1, 300)]
    g, base = Cusum().process_baseline(zeros(len(x)), np.arange(len(x)), x)
    hits = np.flatnonzero(g >= 1)
    assert ((hits >= 300) & (hits < 306)).sum() == 1 and ((hits >= 600) & (hits < 606)).sum() == 1, hits
    assert abs(base[590] - 4) < 0.5 and abs(base[890]) < 0.5
    after = hits[(hits >= 300) & (hits < 306)][0]
    assert (g[after + 1: after + 60] == 0).all()  # relearning the baseline: warm-up again


# --------------------------------------------------------------------------- rate_of_change


def test_rate_catches_a_jump() -> None:
    rng = np.random.default_rng(2)
    t = T0 + np.arange(500) * MIN
    x = 0.35 + np.cumsum(rng.normal(0, 0.001, 500))
    x[400:] -= 0.05  # a pressure drop of 50 typical changes
    z = RateOfChange().process(zeros(500), t, x)
    assert z[400] >= 20
    assert z[30:400].max() < 6 and z[401:].max() < 6


def test_rate_is_per_second_so_gaps_are_not_jumps() -> None:
    rng = np.random.default_rng(8)
    gaps = rng.choice([1, 1, 1, 2, 5, 15], size=800)
    t = T0 + np.cumsum(gaps) * MIN
    x = 10 + 0.002 * (t - T0) / 1e9 + rng.normal(0, 0.003, 800)  # a steady ramp, irregular readings
    z, base = RateOfChange().process_baseline(zeros(800), t, x)
    long_gap = np.flatnonzero(gaps == 15)
    long_gap = long_gap[long_gap > 100]
    assert z[long_gap].max() < 3
    assert z[100:].max() < 8  # the noise of short gaps' rates is the larger (the documented limit)
    # the raw difference would have flagged the 15-minute gaps
    d = np.abs(np.diff(x))
    assert d[gaps[1:] == 15].min() > 10 * np.median(d[gaps[1:] == 1])
    assert np.median(np.abs(base[100:] - x[100:])) < 0.05  # expected = previous + median rate * dt


def test_rate_skips_duplicate_and_out_of_order_timestamps() -> None:
    t = T0 + np.arange(100) * MIN
    x = np.linspace(0, 99, 100)
    sc = RateOfChange(warmup=5)
    sc.process(zeros(100), t, x)
    before = {k: v.copy() for k, v in sc.state.items()}
    out = sc.process(zeros(3), np.array([t[-1], t[-1] - MIN, t[-1]]), np.array([1e6, -1e6, 5.0]))
    assert out.tolist() == [0.0, 0.0, 0.0]
    for k, v in sc.state.items():
        np.testing.assert_array_equal(v, before[k])
