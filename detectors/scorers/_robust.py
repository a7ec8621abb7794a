"""Shared pieces of the statistical scorers: online robust location/scale and the baseline output.

Robust location and scale are learned online in two phases:

* **warm-up** (the first ``warm`` points): exact running mean, and the running
  mean of the absolute deviations of each point from the mean of the points
  before it (scaled by ``sqrt(k / (k + 1))``, which makes it unbiased, and by
  ``sqrt(pi/2)``, which turns a mean absolute deviation of normal data into a
  standard deviation: E|x - mu| = sigma * sqrt(2/pi));
* **after**: stochastic quantile updates (the "frugal" median of Ma, Muthukrishnan
  and Sandler, with a step proportional to the current scale): the location moves
  by ``max(eta, 1/(k+1)) * scale * sign(x - loc)`` (equilibrium: the median) and
  the scale by ``max(eta_sig, 1/(k+1)) * scale * sign(1.4826 |x - loc| - scale)``
  (equilibrium: 1.4826 * MAD, the MAD made consistent with the standard
  deviation of normal data); the ``1/(k+1)`` term lets the first points after
  warm-up correct the warm-up estimates quickly.  The scale's step ``eta_sig``
  is smaller than the location's, so that a lasting level shift moves the
  location before it inflates the scale (all points fall on one side, which
  the scale would otherwise read as growing noise).  One outlier
  moves either estimate by at most ``eta * scale``, whatever its size; a lasting
  change is followed at a relative rate of about ``eta`` per point.

Warm-up points are not protected against outliers (an outlier among the first
points inflates the scale until the sign updates bring it back); that is the
price of an explicit, short warm-up.
"""

from __future__ import annotations

import math

import numba
import numpy as np

#: 1.4826 = 1 / Phi^-1(3/4): MAD -> standard deviation for normal data (Rousseeuw & Croux 1993)
MAD_TO_SIGMA = 1.482602218505602
#: sqrt(pi/2): mean absolute deviation -> standard deviation for normal data
MEANAD_TO_SIGMA = math.sqrt(math.pi / 2.0)

EMPTY = np.empty(0, dtype=np.float64)


@numba.njit(cache=True, nogil=True, inline="always")
def robust_step(v, k, loc, sig, eta, eta_sig, warm, floor):  # noqa: ANN001
    """One learning step: returns the new ``(loc, sig)`` after the ``k``-th point ``v`` (k counts from 0)."""
    if k == 0:
        return v, 0.0
    if k < warm:
        d = v - loc  # deviation from the mean of the k previous points: variance sigma^2 (1 + 1/k)
        loc2 = loc + d / (k + 1.0)
        sig2 = sig + (abs(d) * math.sqrt(k / (k + 1.0)) * MEANAD_TO_SIGMA - sig) / k
        return loc2, sig2
    sc = max(sig, floor)
    early = 1.0 / (k + 1.0)
    step = sc * max(eta, early)
    d = v - loc
    if d > 0.0:
        loc += step
    elif d < 0.0:
        loc -= step
    a = abs(v - loc) * MAD_TO_SIGMA
    step = sc * max(eta_sig, early)
    if a > sig:
        sig += step
    elif a < sig:
        sig -= step
        if sig < 0.0:
            sig = 0.0
    return loc, sig


class BaselineMixin:
    """For scorers whose kernel can also report, per point, the value it expected (before learning it).

    Subclasses implement ``_run(slots, t, x, out, base, do_score, do_learn)``;
    ``base`` is either empty (not wanted) or as long as the batch.
    """

    def _kernel(self, slots, t, x, out, do_score, do_learn):  # noqa: ANN001
        self._run(slots, t, x, out, EMPTY, do_score, do_learn)

    def process_baseline(self, slots: np.ndarray, t: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like ``process``, also returning the expected value of each point (NaN where there is none yet)."""
        slots, t, x = self._prepare(slots, t, x)
        out = np.zeros(len(x), dtype=np.float64)
        base = np.full(len(x), np.nan)
        self._run(slots, t, x, out, base, True, True)
        return out, base
