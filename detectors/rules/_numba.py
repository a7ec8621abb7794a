"""Numba helpers for the rule kernels: observations with snapshots, and a time-of-day baseline.

Time-of-day baseline (per stream, ``B`` bins of the local day): the bin's
mean and variance are learned across days (cumulative average for the
first samples, then EW with ``alpha``); the expectation at a time is the
linear interpolation between the two nearest bin centres, so a steep
morning ramp is not a jump between bins.  Water and gas demand follow the
local clock (domain.md §1.1: peaks 06-10 and 16-20, MNF 02-04 local), so
the baseline is on the city's local time (``utc_offset_hours``).
"""

from __future__ import annotations

import numba
import numpy as np

DAY_NS = 86_400 * 1_000_000_000


@numba.njit(cache=True, nogil=True)
def emit_obs(k, a, t, now, sev, score, quiet, clear_points, o_asset, o_t, o_now, o_sev, o_score, o_snap,  # noqa: ANN001
             nsnap):
    """Write observation ``k``; return the snapshot row to fill (or -1) and the new snapshot count.

    ``t`` is what the hysteresis sees (a condition's start is the ``t`` of
    its first abnormal observation), ``now`` the event time of the emission.
    """
    o_asset[k] = a
    o_t[k] = t
    o_now[k] = now
    o_sev[k] = sev
    o_score[k] = score
    if sev > 0:
        quiet[a] = 0
    elif quiet[a] < (1 << 40):
        quiet[a] += 1
    if quiet[a] <= clear_points:
        o_snap[k] = nsnap
        return nsnap, nsnap + 1
    o_snap[k] = -1
    return -1, nsnap


@numba.njit(cache=True, nogil=True)
def fill_members(snap, j, base, indptr, members, a, val, bl, sd, flag):  # noqa: ANN001
    """Copy the asset's per-member numbers into snapshot row ``j`` after ``base`` scalars."""
    c = base
    for p in range(indptr[a], indptr[a + 1]):
        m = members[p]
        snap[j, c] = val[m]
        snap[j, c + 1] = bl[m]
        snap[j, c + 2] = sd[m]
        snap[j, c + 3] = flag[m]
        c += 4


@numba.njit(cache=True, nogil=True)
def local_pos(t, offset_ns, nbins):  # noqa: ANN001
    """Position on the local day in bins (0 .. nbins)."""
    day = (t + offset_ns) % DAY_NS
    return day * nbins / DAY_NS


@numba.njit(cache=True, nogil=True)
def bl_expect(mean, var, cnt, m, pos, min_count):  # noqa: ANN001
    """(expected, spread, ok) of stream ``m`` at day position ``pos`` (in bins)."""
    nb = mean.shape[1]
    p = pos - 0.5
    i0 = int(np.floor(p))
    w = p - i0
    i0 = i0 % nb
    i1 = (i0 + 1) % nb
    ok = cnt[m, i0] >= min_count and cnt[m, i1] >= min_count
    mu = (1.0 - w) * mean[m, i0] + w * mean[m, i1]
    v = (1.0 - w) * var[m, i0] + w * var[m, i1]
    return mu, np.sqrt(max(v, 0.0)), ok


@numba.njit(cache=True, nogil=True)
def bl_learn(mean, var, cnt, m, pos, x, alpha, min_count):  # noqa: ANN001
    """Learn value ``x`` at day position ``pos`` into its bin (variance of the residual from the interpolation)."""
    nb = mean.shape[1]
    b = int(pos) % nb
    mu, sd, ok = bl_expect(mean, var, cnt, m, pos, min_count)
    a = max(1.0 / (cnt[m, b] + 1.0), alpha)
    if cnt[m, b] == 0:
        mean[m, b] = x
    else:
        mean[m, b] += a * (x - mean[m, b])
    r = x - mu if ok else x - mean[m, b]
    if cnt[m, b] == 0:
        var[m, b] = 0.0
    else:
        var[m, b] += a * (r * r - var[m, b])
    cnt[m, b] += 1
