"""Seasonal robust z-score: a robust baseline per hour of the (local) day, weekdays apart from weekends."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from detectors.base import Scorer, register
from detectors.scorers._robust import BaselineMixin, robust_step

HOUR_NS = 3_600_000_000_000
#: number of bins of each season layout
SEASONS = {"hour_of_day": 24, "hour_x_weekend": 48, "hour_of_week": 168}


@numba.njit(cache=True, nogil=True)
def _seasonal(slots, t, x, out, base, do_score, do_learn, cnt, loc, sig, n,
              offset_ns, layout, eta, eta_sig, warmup, min_scale):  # noqa: ANN001
    want_base = len(base) > 0
    for i in range(len(x)):
        v = x[i]
        if np.isnan(v):
            continue
        s = slots[i]
        h = (t[i] + offset_ns) // HOUR_NS  # hours since 1970-01-01 00:00 local (floor division)
        hod = h % 24
        if layout == 0:
            b = hod
        else:
            dow = (h // 24 + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0 ... Sunday = 6
            if layout == 1:
                b = hod + 24 * (1 if dow >= 5 else 0)
            else:
                b = hod + 24 * dow
        k = cnt[s, b]
        if do_score and k >= warmup:
            sd = max(np.float64(sig[s, b]), min_scale)
            out[i] = abs(v - loc[s, b]) / sd
        if want_base and k > 0:
            base[i] = loc[s, b]
        if do_learn:
            lo, sg = robust_step(v, k, np.float64(loc[s, b]), np.float64(sig[s, b]), eta, eta_sig, warmup,
                                 min_scale)
            loc[s, b] = lo
            sig[s, b] = sg
            if k < 255:
                cnt[s, b] = k + 1
            n[s] += 1


@register
class SeasonalRobustZ(BaselineMixin, Scorer):
    """Robust z-score against a seasonal baseline: ``|x - median[bin]| / (1.4826 * MAD[bin])``.

    Each stream keeps one robust location (median) and scale (MAD, scaled to a
    standard deviation) per *bin* of local time, learned online (warm-up:
    running mean and mean absolute deviation; then stochastic quantile updates,
    see :mod:`detectors.scorers._robust`).  Bins (``season``):

    * ``"hour_x_weekend"`` (default, 48 bins): hour of day x {Mon-Fri, Sat-Sun};
      China's working week is Monday to Friday;
    * ``"hour_of_day"`` (24 bins) or ``"hour_of_week"`` (168 bins, 1.5 KiB per stream).

    Event time is UTC; ``utc_offset_h`` moves it to the local clock of the
    demand pattern.  Default 6: Xinjiang (Urumqi) time is UTC+6, daily peaks in
    Xinjiang cities follow it (domain.md §0.1 [S]); use 8 for Beijing time.

    Warm-up is per bin: a point scores exactly 0 until its bin has learned
    ``warmup`` points (with 1-minute readings the 48 bins of a stream are warm
    after ``warmup`` hours of each weekday and weekend hour; hourly readings need
    ``warmup`` weeks for weekend bins).  State: 48 x (float32 location, float32
    scale, uint8 count) + one int64 count = 440 bytes per stream.

    Works badly when the pattern moves within an hour (a demand ramp from 06:00
    to 06:30 widens the 06:00 bin's spread, so anomalies in that hour are
    scored leniently), on holidays that fall on weekdays (they look like
    anomalies: they are, for this baseline), after a lasting level change (the
    median of a bin follows at ``eta * scale`` per point of that bin, so a
    step of 10 scales takes about ``10 / eta`` points of *each* bin, days with
    1-minute data), and for discrete or constant signals (MAD 0: scores are
    divided by ``min_scale``, so any change is enormous).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(21 * 144) * 600_000_000_000  # three weeks of 10-minute readings, UTC
    >>> local_hour = (t // 3_600_000_000_000 + 6) % 24
    >>> x = 100 + 30 * np.sin(2 * np.pi * local_hour / 24) + rng.normal(0, 2, len(t))
    >>> at3 = np.flatnonzero(local_hour == 3)[-6:]  # 03:00-03:50 local on the last day (a Thursday)
    >>> x[at3] += 12  # a step of 6 noise sigmas, at night
    >>> sc = SeasonalRobustZ()
    >>> z = sc.process(np.zeros(len(t), dtype=np.int64), t, x)
    >>> print(f"normal, 3rd week, 99th percentile: {np.percentile(z[14 * 144:at3[0]], 99):.1f}")
    normal, 3rd week, 99th percentile: 3.0
    >>> np.round(z[at3], 1)
    array([6.3, 6.7, 7.3, 6.3, 6.9, 5.9])
    >>> sc.state_bytes_per_stream()
    440
    """

    name = "seasonal_robust_z"
    params = {"season": "hour_x_weekend", "utc_offset_h": 6.0, "eta": 0.05, "eta_sig": 0.01, "warmup": 8, "min_scale": 1e-9}
    STATE: dict[str, tuple[tuple[int, ...], Any, float]] = {}

    def __init__(self, **params: Any):
        season = {**self.params, **params}["season"]
        if season not in SEASONS:
            raise ValueError(f"season must be one of {sorted(SEASONS)}, not {season!r}")
        nb = SEASONS[season]
        # per-instance layout (the class attribute stays the default's)
        self.STATE = {"cnt": ((nb,), np.uint8, 0), "loc": ((nb,), np.float32, 0.0),
                      "sig": ((nb,), np.float32, 0.0), "n": ((), np.int64, 0)}
        super().__init__(**params)
        if not 1 <= int(self.p["warmup"]) <= 255:
            raise ValueError("warmup must be 1..255 points per bin")

    def _run(self, slots, t, x, out, base, do_score, do_learn):  # noqa: ANN001
        st, p = self.state, self.p
        _seasonal(slots, t, x, out, base, do_score, do_learn, st["cnt"], st["loc"], st["sig"], st["n"],
                  int(round(float(p["utc_offset_h"]) * HOUR_NS)), list(SEASONS).index(p["season"]),
                  float(p["eta"]), float(p["eta_sig"]), int(p["warmup"]), float(p["min_scale"]))


SeasonalRobustZ.STATE = {"cnt": ((48,), np.uint8, 0), "loc": ((48,), np.float32, 0.0),
                         "sig": ((48,), np.float32, 0.0), "n": ((), np.int64, 0)}
