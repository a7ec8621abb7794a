"""Seasonal robust z-score: a baseline that is smooth in the (local) time of day, learned over days."""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from detectors.base import Scorer, register
from detectors.scorers._robust import MEANAD_TO_SIGMA, BaselineMixin

HOUR_NS = 3_600_000_000_000
HALF_HOUR_NS = HOUR_NS // 2
MINUTE_NS = 60_000_000_000
#: number of bins of each season layout
SEASONS = {"hour_of_day": 24, "hour_x_weekend": 48, "hour_of_week": 168}
#: "no reading learned yet" marker of ``t_last``
NO_TIME = np.iinfo(np.int64).min
#: which deviations score: both ways, only above the baseline, only below
SIDES = {"both": 0, "up": 1, "down": -1}
#: the CUSUM statistic stops growing at G_CAP * h, so it falls back below h about h / k minutes after a departure ends
G_CAP = 2.0
EMPTY32 = np.empty((0,), dtype=np.float32)


@numba.njit(cache=True, nogil=True, inline="always")
def _bin(h, layout):  # noqa: ANN001
    """Bin of the hour ``h`` (hours since 1970-01-01 00:00 local)."""
    hod = h % 24
    if layout == 0:
        return hod
    dow = (h // 24 + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0 ... Sunday = 6
    if layout == 1:
        return hod + 24 * (1 if dow >= 5 else 0)
    return hod + 24 * dow


@numba.njit(cache=True, nogil=True, inline="always")
def _mix(w0, a, b, use_a, use_b):  # noqa: ANN001
    """``w0 * a + (1 - w0) * b`` over the bins in use (one alone if the other is not)."""
    if use_a and use_b:
        return w0 * a + (1.0 - w0) * b
    return a if use_a else b


@numba.njit(cache=True, nogil=True)
def _seasonal(slots, t, x, out, base, do_score, do_learn, loc, sig, wt, t_last, gp, gn,
              offset_ns, layout, memory, warm, clip, max_gap_ns, min_scale, min_rel, side,
              cusum, k_ref, h_dec, z_clip):  # noqa: ANN001
    want_base = len(base) > 0
    g_cap = G_CAP * h_dec
    for i in range(len(x)):
        v = x[i]
        if np.isnan(v):
            continue
        s = slots[i]
        # the two bin centres (hh:30 local) around the point, and the point's weight toward each
        u = t[i] + offset_ns - HALF_HOUR_NS
        h0 = u // HOUR_NS  # floor division: also right before 1970
        f = (u - h0 * HOUR_NS) / HOUR_NS  # 0 at the left centre, 1 at the right one
        b0 = _bin(h0, layout)
        b1 = _bin(h0 + 1, layout)
        w0 = 1.0 - f
        w1 = f
        W0 = np.float64(wt[s, b0])
        W1 = np.float64(wt[s, b1])
        L0 = np.float64(loc[s, b0])
        L1 = np.float64(loc[s, b1])
        S0 = np.float64(sig[s, b0])
        S1 = np.float64(sig[s, b1])
        mu = v
        if W0 > 0.0 or W1 > 0.0:  # a bin's location is known from its first reading
            mu = _mix(w0, L0, L1, W0 > 0.0, W1 > 0.0)
            if want_base:
                base[i] = mu
        sd = 0.0
        has_sd = W0 > 1.0 or W1 > 1.0  # a bin has a scale from its second day on
        if has_sd:
            sd = _mix(w0, S0, S1, W0 > 1.0, W1 > 1.0)
        first = t_last[s] == NO_TIME
        dt = 0 if first else min(max(t[i] - t_last[s], 0), max_gap_ns)  # 0: first, duplicate or out of order
        if has_sd and W0 + W1 >= warm:
            z = (v - mu) / max(sd, min_scale, min_rel * abs(mu))
            if cusum:
                # time-weighted two-sided CUSUM of the clipped residual z (z-minutes), capped at G_CAP * h
                zc = min(max(z, -z_clip), z_clip)
                minutes = dt / MINUTE_NS
                up = min(max(0.0, gp[s] + (zc - k_ref) * minutes), g_cap)
                dn = min(max(0.0, gn[s] - (zc + k_ref) * minutes), g_cap)
                if do_score:
                    g = max(up, dn) if side == 0 else (up if side > 0 else dn)
                    out[i] = g / h_dec
                if do_learn:
                    gp[s] = up
                    gn[s] = dn
            elif do_score:
                out[i] = abs(z) if side == 0 else max(side * z, 0.0)
        if not do_learn:
            continue
        if first:  # the first reading only starts the clock: it stands for no time yet
            t_last[s] = t[i]
            continue
        if dt <= 0:  # duplicate or out-of-order time: nothing to learn from it
            continue
        t_last[s] = t[i]
        hours = dt / HOUR_NS
        r = v - mu
        cap = clip * sd
        for k in range(2):
            if k == 0:
                b, a, W, L, S = b0, w0 * hours, W0, L0, S0
            else:
                b, a, W, L, S = b1, w1 * hours, W1, L1, S1
            if a <= 0.0:
                continue
            if W <= 0.0:  # the bin's first data
                loc[s, b] = v
                sig[s, b] = 0.0
                wt[s, b] = a
                continue
            if W < 1.0:
                # first day of the bin: the kernel-weighted running mean of the readings around its centre;
                # it ends at exactly 1, so that a weight above 1 means "has learned a scale"
                L += a / (W + a) * (v - L)
                Wn = min(W + a, 1.0)
            else:
                Wn = min(W + a, memory)
                # then: a step on the residual from the interpolated baseline (a least-squares fit of the
                # piecewise-linear day), Huber-clipped so that one reading moves it by at most clip * scale * a / W
                rc = r
                if cap > 0.0:
                    rc = min(max(r, -cap), cap)
                L += a / Wn * rc
                # scale: from the bin's second day on, the mean absolute residual (clipped) made a sigma
                e = abs(r) * MEANAD_TO_SIGMA
                if S > 0.0:
                    e = min(e, clip * S)
                S += a / max(Wn - 1.0, a) * (e - S)
            loc[s, b] = L
            sig[s, b] = S
            wt[s, b] = Wn


@register
class SeasonalRobustZ(BaselineMixin, Scorer):
    """Robust z-score against a baseline that is smooth in the time of day: ``|x - mu(t)| / sigma(t)``.

    Each stream keeps, per *bin* of local time, a location and a scale placed
    at the bin's centre (hh:30); the baseline at any moment is the linear
    interpolation between the two nearest centres, so it follows a daily ramp
    instead of jumping at every full hour (the hour-average of a piecewise-
    constant baseline is far from the value at the start and end of an hour
    on a steep ramp: 14 % of a feeder's load, 34 % of a DMA's flow on the
    simulated city's profiles; linear interpolation leaves 1 % and 5 %).
    Every reading teaches both neighbouring bins, each with the weight of its
    proximity (1 at its centre, 0 an hour away).

    What is learned, per bin (``a`` = proximity x the time since the stream's
    previous reading, in hours, at most ``max_gap_s``; a full day adds 1 to
    each bin):

    * **weight** ``W``: days of data so far, capped at ``memory_days``;
    * **location**: on the bin's first day the proximity-weighted mean of the
      readings; after that a step ``a / W`` on the residual from the
      interpolated baseline (a least-squares fit of the piecewise-linear day),
      clipped at ``clip`` scales (Huber), so it is an exponentially weighted
      average over the last ``memory_days`` days: day-to-day variation
      (weather) stays in the residuals instead of being followed within the
      hour;
    * **scale**: from the bin's second day on, the running and then
      exponentially weighted mean of ``|residual| * sqrt(pi/2)`` (a standard
      deviation for normal residuals; clipped at ``clip`` scales), so it
      measures how far a day strays from the typical day at that time, not
      only the noise within an hour.

    A point scores once its two bins together hold ``2 * warmup_days - 1.75``
    days of data and one of them has a scale: each day adds at most about 1
    to each bin, and by the point's time of day its earlier bin has the first
    half of today's window (0.5 plus) and its later bin little, so the data
    then span ``warmup_days`` different days (with a quarter day of slack for
    gaps).  Before that it scores exactly 0.  The first reading of a stream
    only starts its clock, so :attr:`warmup` (a lower bound in readings) is
    ``1 + ceil((2 * warmup_days - 1.75) * 3600 / max_gap_s)``.

    Bins (``season``): ``"hour_x_weekend"`` (default, 48 bins: hour of day x
    {Mon-Fri, Sat-Sun}; China's working week is Monday to Friday),
    ``"hour_of_day"`` (24) or ``"hour_of_week"`` (168, 2 KiB per stream).
    Weights and memory count the days a bin sees: weekend bins warm up after
    ``warmup_days`` weekend days (the second or third weekend) and remember
    ``memory_days`` weekend days.
    Event time is UTC; ``utc_offset_h`` moves it to the local clock of the
    demand pattern.  Default 6: Xinjiang (Urumqi) time is UTC+6, daily peaks in
    Xinjiang cities follow it (domain.md §0.1 [S]); use 8 for Beijing time.
    The scale has a floor ``max(min_scale, min_rel_scale * |mu|)`` (settings:
    sensor resolution, not statistics).  ``side``: ``"both"`` (default),
    ``"up"`` (only readings above the baseline score, e.g. pollutants) or
    ``"down"``.

    Measured on the simulated city (``detectors/eval/scenarios.py``, the
    incident library, 7 days after an 11-day warm-up, seeds 1-3, the stage's
    defaults: blue >= 4, 5 points): no false alert on the 12 DMA inlet flows
    or the 144 power loads (the hour-average baseline it replaces raised
    about 530 in 7 days on the loads); the bursts, low pressure, outages and
    the transformer overload found in 4-10 minutes.  On PM2.5/PM10 it found
    dust and the inversion no earlier than the AQI thresholds, and multi-day
    stagnation (normal weather) raised 0-3 alerts a week after an 11-day
    warm-up but up to 35 after a 6-day one: one week of days does not
    sample the weather, so it is not enabled there.

    State: per bin float32 location, scale and weight (48 x 12 bytes) and the
    stream's last event time (int64): 584 bytes per stream.

    Works badly for readings much sparser than ``max_gap_s`` (each counts as
    ``max_gap_s`` only, so the warm-up takes longer in days: raise it for hourly
    data), on holidays that fall on weekdays (they look like anomalies: they
    are, for this baseline), after a lasting level change (the baseline follows
    over about ``memory_days`` days, at most ``clip`` scales per day at first,
    and scores it meanwhile), for shapes sharper than an hour (a step at 08:00
    on weekends only is smeared over 07:30-08:30), for discrete or constant
    signals (scale 0: any change is divided by the floor), and for heavy-
    tailed signals whose single readings wander far (a household meter:
    use it with the stage's ``min_points``).  Interpolating the scale too means
    a quiet hour next to a busy one borrows some of its spread.

    Fourteen days of 5-minute readings, a noisy daily cycle with day-to-day
    wander, and a step at night on the last day:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(14 * 288) * 300_000_000_000  # 5-minute readings from 1970-01-01 (a Thursday), UTC
    >>> local_h = ((t // 60_000_000_000 + 360) % 1440) / 60  # the local clock, UTC+6
    >>> day_offset = np.repeat(rng.normal(0, 3, 15), 288)[:len(t)]  # weather: each day a little off
    >>> x = 100 + 30 * np.sin(2 * np.pi * local_h / 24) + day_offset + rng.normal(0, 1, len(t))
    >>> at3 = np.flatnonzero(local_h == 3)[-1] + np.arange(6)  # 03:00-03:25 local, the last night
    >>> x[at3] += 15  # five typical days' spreads, at night
    >>> sc = SeasonalRobustZ(season="hour_of_day")
    >>> z, mu = sc.process_baseline(np.zeros(len(t), dtype=np.int64), t, x)
    >>> print(f"normal days 4-14, 99th percentile: {np.percentile(z[3 * 288:at3[0]], 99):.1f}, max {z[3 * 288:at3[0]].max():.1f}")
    normal days 4-14, 99th percentile: 3.0, max 4.1
    >>> np.round(z[at3], 1)
    array([5.8, 4.9, 5.2, 4.6, 4.6, 4.7])
    >>> print(f"expected at 03:00 {mu[at3[0]]:.1f}, read {x[at3[0]]:.1f}")
    expected at 03:00 120.2, read 137.6
    >>> sc.state_bytes_per_stream(), SeasonalRobustZ().state_bytes_per_stream()
    (296, 584)
    """

    name = "seasonal_robust_z"
    params = {"season": "hour_x_weekend", "utc_offset_h": 6.0, "memory_days": 7.0, "warmup_days": 2.0,
              "clip": 3.0, "max_gap_s": 600.0, "min_scale": 1e-9, "min_rel_scale": 0.0, "side": "both"}
    STATE: dict[str, tuple[tuple[int, ...], Any, float]] = {}
    _cusum = False

    def __init__(self, **params: Any):
        p = {**self.params, **params}
        season = p["season"]
        if season not in SEASONS:
            raise ValueError(f"season must be one of {sorted(SEASONS)}, not {season!r}")
        if not 1.5 <= float(p["warmup_days"]) <= float(p["memory_days"]):
            raise ValueError("need 1.5 <= warmup_days <= memory_days (the scale learns from the second day on)")
        if p["side"] not in SIDES:
            raise ValueError(f"side must be one of {sorted(SIDES)}, not {p['side']!r}")
        if float(p["max_gap_s"]) <= 0 or float(p["clip"]) <= 0:
            raise ValueError("max_gap_s and clip must be positive")
        # per-instance layout (the class attribute stays the default's)
        self.STATE = _layout(SEASONS[season], self._cusum)
        super().__init__(**params)

    @property
    def warmup(self) -> int:
        return 1 + math.ceil((2.0 * float(self.p["warmup_days"]) - 1.75) * 3600.0 / float(self.p["max_gap_s"]))

    def _run(self, slots, t, x, out, base, do_score, do_learn):  # noqa: ANN001
        st, p = self.state, self.p
        cus = self._cusum
        _seasonal(slots, t, x, out, base, do_score, do_learn, st["loc"], st["sig"], st["wt"], st["t_last"],
                  st["gp"] if cus else EMPTY32, st["gn"] if cus else EMPTY32,
                  int(round(float(p["utc_offset_h"]) * HOUR_NS)), list(SEASONS).index(p["season"]),
                  float(p["memory_days"]), 2.0 * float(p["warmup_days"]) - 1.75, float(p["clip"]),
                  int(float(p["max_gap_s"]) * 1e9), float(p["min_scale"]), float(p["min_rel_scale"]),
                  SIDES[p["side"]], cus, float(p.get("k", 0.0)), float(p.get("h", 1.0)), float(p.get("z_clip", 0.0)))


@register
class SeasonalCusum(SeasonalRobustZ):
    """CUSUM of the seasonal residual: sustained departures from the typical day, in z-minutes.

    The baseline, scale, bins and warm-up are :class:`SeasonalRobustZ`'s; on
    its signed residual ``z = (x - mu(t)) / sigma(t)``, clipped to
    ``[-z_clip, z_clip]``, runs a two-sided tabular CUSUM (Page's test)
    weighted by the time each reading stands for (``dt`` in minutes since the
    stream's previous reading, at most ``max_gap_s``), so that ``k`` and ``h``
    mean the same for 1-minute and 5-minute streams::

        g+ = min(max(0, g+ + (z - k) dt), 2 h)      g- = min(max(0, g- - (z + k) dt), 2 h)
        score = max(g+, g-) / h                     (>= 1: a sustained departure)

    A departure of ``z`` sigmas sustained for ``h / (z - k)`` minutes reaches
    the threshold: with the defaults (``k = 1``, ``h = 60`` z-minutes) 30
    minutes at 3 sigma, 2 hours at 1.5 sigma.  Unlike
    :class:`~detectors.scorers.changepoint.Cusum` it does not restart at an
    alarm: the statistic is capped at ``2 h``, so a lasting departure keeps
    the score >= 1 (one raised condition) and it falls back below 1 about
    ``h / k`` minutes after the departure ends (later while the residual
    stays between 0 and ``k``, e.g. as a departure fades out slowly).
    ``side`` ``"up"`` / ``"down"`` keeps only ``g+`` / ``g-``.  The defaults are settings measured on the
    simulated city (``detectors/eval/scenarios.py``, 3 seeds, 7 days after an
    11- or 6-day warm-up, the 12 DMA inlet flows): the worst normal stretch
    reached 0.47 of ``h``, and the growing leak (15 m3/h over 3 days) was found
    after 23-24 h, at its second night.  State: :class:`SeasonalRobustZ`'s
    plus two float32 statistics: 592 bytes per stream.

    Works badly where the seasonal residual is strongly autocorrelated for
    hours or days (air pollutants under multi-day weather, a feeder's load on
    a cold day): a departure of ``k`` sigmas or more that lasts ``h / k``
    minutes is an alarm whether or not anything is wrong, so use it on
    signals whose typical day is tight (DMA inlet flow).  It needs the
    seasonal baseline's warm-up, and it is slower than the plain z-score
    for large steps (a burst of many sigmas is found after about
    ``h / (z_clip - k)`` = 20 minutes).

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> t = np.arange(12 * 1440) * 60_000_000_000  # 1-minute readings, from 1970-01-01 (a Thursday)
    >>> local_h = ((t // 60_000_000_000 + 360) % 1440) / 60
    >>> day = (t // 60_000_000_000 + 360) // 1440  # local day number
    >>> x = 100 + 40 * np.sin(2 * np.pi * local_h / 24) + rng.normal(0, 1, 14)[day] + rng.normal(0, 2, len(t))
    >>> leak = np.clip((np.arange(len(t)) - 10 * 1440) / 1440, 0, None) * 6  # +6 per day from day 10 on
    >>> g = SeasonalCusum().process(np.zeros(len(t), dtype=np.int64), t, x + leak)
    >>> z = SeasonalRobustZ().process(np.zeros(len(t), dtype=np.int64), t, x + leak)
    >>> print(f"normal days 3-10: max {g[3 * 1440:10 * 1440].max():.2f}")
    normal days 3-10: max 0.12
    >>> hit = np.flatnonzero(g >= 1)[0]
    >>> print(f"leak found after {(hit - 10 * 1440) / 60:.1f} h, at +{leak[hit]:.1f}; z-score so far: max {z[10 * 1440:hit + 1].max():.1f}")
    leak found after 14.4 h, at +3.6; z-score so far: max 3.3
    >>> SeasonalCusum().state_bytes_per_stream()
    592
    """

    name = "seasonal_cusum"
    params = {**SeasonalRobustZ.params, "k": 1.0, "h": 60.0, "z_clip": 4.0}
    _cusum = True

    def __init__(self, **params: Any):
        p = {**self.params, **params}
        if not (float(p["k"]) >= 0 and float(p["h"]) > 0 and float(p["z_clip"]) > float(p["k"])):
            raise ValueError("need k >= 0, h > 0 and z_clip > k")
        super().__init__(**params)


def _layout(nb: int, cusum: bool = False) -> dict[str, tuple[tuple[int, ...], Any, float]]:
    st = {"loc": ((nb,), np.float32, 0.0), "sig": ((nb,), np.float32, 0.0), "wt": ((nb,), np.float32, 0.0),
          "t_last": ((), np.int64, NO_TIME)}
    if cusum:
        st.update({"gp": ((), np.float32, 0.0), "gn": ((), np.float32, 0.0)})
    return st


SeasonalRobustZ.STATE = _layout(48)
SeasonalCusum.STATE = _layout(48, cusum=True)
