"""Exponentially weighted z-score: the reference scorer that shows the pattern."""

from __future__ import annotations

import numba
import numpy as np

from detectors.base import Scorer, register


@numba.njit(cache=True, nogil=True)
def _ewz(slots, t, x, out, do_score, do_learn, n, mean, var, alpha, warmup, min_std):  # noqa: ANN001
    for i in range(len(x)):
        v = x[i]
        if np.isnan(v):
            continue
        s = slots[i]
        if do_score and n[s] >= warmup:
            sd = max(np.sqrt(var[s]), min_std)
            out[i] = abs(v - mean[s]) / sd
        if do_learn:
            if n[s] == 0:
                mean[s] = v
                var[s] = 0.0
            else:
                d = v - mean[s]
                incr = alpha * d
                mean[s] += incr
                var[s] = (1.0 - alpha) * (var[s] + d * incr)
            n[s] += 1


@register
class EWZ(Scorer):
    """|x - EW mean| / EW std, per stream.  Simple, cheap, and the template for other scorers.

    Works badly on seasonal signals (every daily peak looks anomalous) and on
    step changes it has learned (it adapts within ~1/alpha points).

    >>> import numpy as np
    >>> sc = EWZ(alpha=0.1, warmup=5)
    >>> x = np.array([10.0, 10.2, 9.9, 10.1, 10.0, 10.1, 30.0])
    >>> np.round(sc.process(np.zeros(7, dtype=np.int64), np.arange(7), x), 1)
    array([  0. ,   0. ,   0. ,   0. ,   0. ,   1.3, 294.8])
    """

    name = "ewz"
    params = {"alpha": 0.05, "warmup": 30, "min_std": 1e-9}
    STATE = {"n": ((), np.int64, 0), "mean": ((), np.float64, 0.0), "var": ((), np.float64, 0.0)}

    def _kernel(self, slots, t, x, out, do_score, do_learn):  # noqa: ANN001
        st = self.state
        _ewz(slots, t, x, out, do_score, do_learn, st["n"], st["mean"], st["var"],
             float(self.p["alpha"]), int(self.p["warmup"]), float(self.p["min_std"]))
