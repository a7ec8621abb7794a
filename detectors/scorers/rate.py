"""Rate of change per second of event time, scored against the robust spread of recent rates."""

from __future__ import annotations

import numba
import numpy as np

from detectors.base import Scorer, register
from detectors.scorers._robust import BaselineMixin, robust_step

SECOND_NS = 1_000_000_000


@numba.njit(cache=True, nogil=True)
def _rate(slots, t, x, out, base, do_score, do_learn, n, px, pt, loc, sig, warmup, eta, eta_sig, min_scale):  # noqa: ANN001
    want_base = len(base) > 0
    for i in range(len(x)):
        v = x[i]
        if np.isnan(v):
            continue
        s = slots[i]
        if np.isnan(px[s]):  # the stream's first point: nothing to compare with
            if do_learn:
                px[s] = v
                pt[s] = t[i]
            continue
        dt_ns = t[i] - pt[s]
        if dt_ns <= 0:  # duplicate or out-of-order timestamp: no rate, nothing learned
            continue
        dt = dt_ns / SECOND_NS
        r = (v - px[s]) / dt
        if want_base and n[s] > 0:
            base[i] = px[s] + loc[s] * dt
        if do_score and n[s] >= warmup:
            out[i] = abs(r - loc[s]) / max(sig[s], min_scale)
        if do_learn:
            lo, sg = robust_step(r, n[s], loc[s], sig[s], eta, eta_sig, warmup, min_scale)
            loc[s] = lo
            sig[s] = sg
            px[s] = v
            pt[s] = t[i]
            n[s] += 1


@register
class RateOfChange(BaselineMixin, Scorer):
    """Transients: ``|rate - median(rate)| / (1.4826 * MAD(rate))``, rate = change per second of event time.

    The rate between consecutive readings of a stream is ``(x - x_prev) /
    (t - t_prev)`` in units per second, so gaps in the data do not look like
    jumps (a ramp read every minute and every five minutes has the same rate).
    Its median and MAD are learned online (see :mod:`detectors.scorers._robust`);
    the score is the robust z-score of the current rate, i.e. the jump relative
    to the usual spread of changes.  The expected value reported by
    :meth:`process_baseline` is ``x_prev + median_rate * dt``.

    The first point of a stream only sets the previous value; duplicate and
    out-of-order timestamps are skipped (score 0, nothing learned).  Warm-up:
    ``warmup`` rates.  State: 5 numbers, 40 bytes per stream.

    Works badly on noisy signals read fast (white noise makes every rate look
    the same size, so a level shift hidden in noise is missed: use the CUSUM);
    on smooth signals whose rate changes slowly but a lot (a daily ramp scores
    high at its start if the MAD of rates learned at night is tiny); and on
    irregular sampling of noisy signals (dividing noise by a short gap makes a
    large rate: the score is not scaled for ``sqrt(dt)``).  A jump scores high
    on the point after it as well (the rate back to normal is also unusual)
    unless the new level persists, then only the jump itself scores.

    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> t = np.arange(100) * 60 * 1_000_000_000  # one reading a minute
    >>> x = 50 + np.cumsum(rng.normal(0, 0.1, 100))
    >>> x[80:] += 3.0  # a step of 30 typical changes
    >>> sc = RateOfChange(warmup=20)
    >>> z = sc.process(np.zeros(100, dtype=np.int64), t, x)
    >>> print(round(float(z[:80].max()), 1), round(float(z[80]), 1), round(float(z[81]), 1))
    2.6 29.9 0.8
    """

    name = "rate_of_change"
    params = {"warmup": 30, "eta": 0.05, "eta_sig": 0.01, "min_scale": 1e-12}
    STATE = {"n": ((), np.int64, 0), "px": ((), np.float64, np.nan), "pt": ((), np.int64, 0),
             "loc": ((), np.float64, 0.0), "sig": ((), np.float64, 0.0)}

    def _run(self, slots, t, x, out, base, do_score, do_learn):  # noqa: ANN001
        st, p = self.state, self.p
        _rate(slots, t, x, out, base, do_score, do_learn, st["n"], st["px"], st["pt"], st["loc"], st["sig"],
              int(p["warmup"]), float(p["eta"]), float(p["eta_sig"]), float(p["min_scale"]))
