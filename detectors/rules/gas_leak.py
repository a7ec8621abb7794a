"""gas_leak: methane rising at neighbouring wells of a gas segment while its pressure drops."""

from __future__ import annotations

from typing import Any, ClassVar

import numba
import numpy as np

from detectors.frame import Frame, Registry
from detectors.rules._base import AssetRule
from detectors.rules._numba import bl_expect, bl_learn, emit_obs, fill_members, local_pos

METHANE, PRESSURE = 0, 1


@numba.njit(cache=True, nogil=True)
def _gas(loc, t, x, loc_asset, loc_role, indptr, members, offset_ns, nbins,  # noqa: ANN001
         bl_mean, bl_var, bl_cnt, val, base, sd, flag, last, trend, n_seen, elev_t, rise_t, low_t,
         quiet, latched,
         alpha, min_count, k_methane, min_rise, k_pressure, min_p_rel, a_trend, window, min_wells, red_lel,
         lvl, lvl_red, clear_points,
         o_asset, o_t, o_now, o_sev, o_score, o_snap, snap):
    k = 0
    nsnap = 0
    for i in range(len(loc)):
        m = loc[i]
        v = x[i]
        if np.isnan(v):
            continue
        a = loc_asset[m]
        role = loc_role[m]
        pos = local_pos(t[i], offset_ns, nbins)
        mu, s, ok = bl_expect(bl_mean, bl_var, bl_cnt, m, pos, min_count)
        if n_seen[m] > 0:
            trend[m] += a_trend * ((v - last[m]) - trend[m])
        last[m] = v
        n_seen[m] += 1
        hit = False
        if role == METHANE:
            if ok and v - mu > max(k_methane * s, min_rise):
                elev_t[m] = t[i]
                hit = True
                if trend[m] > 0.0:
                    rise_t[m] = t[i]
        else:
            s = max(s, min_p_rel * abs(mu))
            if ok and v < mu - k_pressure * s:
                low_t[m] = t[i]
                hit = True
        val[m] = v
        base[m] = mu if ok else np.nan
        sd[m] = s if ok else np.nan
        flag[m] = 1.0 if hit else 0.0
        if not hit and latched[a] == 0:
            bl_learn(bl_mean, bl_var, bl_cnt, m, pos, v, alpha, min_count)
        if role != METHANE or not ok:
            continue
        n_rise = 0
        n_elev = 0
        n_low = 0
        worst = 0.0
        top = 0.0
        for p in range(indptr[a], indptr[a + 1]):
            q = members[p]
            if loc_role[q] == METHANE:
                if rise_t[q] != 0 and t[i] - rise_t[q] <= window:
                    n_rise += 1
                if elev_t[q] != 0 and t[i] - elev_t[q] <= window:
                    n_elev += 1
                    if val[q] - base[q] > worst:
                        worst = val[q] - base[q]
                    if val[q] > top:
                        top = val[q]
            elif low_t[q] != 0 and t[i] - low_t[q] <= window:
                n_low += 1
        start = n_rise >= min_wells and n_low >= 1
        keep = latched[a] == 1 and n_elev >= min_wells
        latched[a] = 1 if (start or keep) else 0
        sev = 0
        if latched[a] == 1:
            sev = lvl_red if top >= red_lel else lvl
        j, nsnap = emit_obs(k, a, t[i], t[i], sev, worst, quiet, clear_points,
                            o_asset, o_t, o_now, o_sev, o_score, o_snap, nsnap)
        if j >= 0:
            snap[j, 0] = n_rise
            snap[j, 1] = n_elev
            snap[j, 2] = n_low
            snap[j, 3] = top
            fill_members(snap, j, 4, indptr, members, a, val, base, sd, flag)
        k += 1
    return k


class GasLeak(AssetRule):
    """Leak on a gas segment: methane rising in at least two valve wells while the segment's pressure drops.

    Signature (domain.md §3.3 "Pipeline leak" [S]: a rapid pressure drop,
    largest near the leak, and CH4 rising in nearby manholes or valve wells;
    "Leak in an enclosed space": %LEL ramps up through 20/25 % toward
    35/50 %).  Each well and pressure stream has a time-of-day baseline
    (:mod:`detectors.rules._numba`).  A well is *elevated* when its %LEL is
    above ``baseline + max(k_methane x spread, min_rise_lel)`` and *rising*
    when, in addition, its EW trend of steps is positive.  The segment is
    raised when, within ``window_s``, at least ``min_wells`` (2) wells were
    rising and at least one pressure stream was below ``baseline -
    k_pressure x spread``; it stays raised while ``min_wells`` wells remain
    elevated.  Level orange, red once any well reaches ``red_lel`` (50 %LEL:
    GB/T 50493-2019 2nd-level alarm [S]).  ``min_rise_lel`` (2 %LEL) and the
    k's are settings.

    Needs about a day of history (the pressure baseline follows the daily
    demand).  A leak seen by a single well (wells far apart) or without a
    pressure drop (a small leak on a well-fed segment) is missed here and
    left to the %LEL thresholds; methane from another source (sewer gas)
    with a coincident pressure dip would be called a leak.

    >>> import numpy as np
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.city import parse_city
    >>> from lifewatch.model import Reading
    >>> city = parse_city({"name": "t", "units": {l: {"id": l, "name": l} for l in
    ...     ("water", "power", "gas", "bridge", "air")}, "districts": [{"id": "d", "name": "d", "lat": 0, "lon": 0}],
    ...     "assets": [{"id": "seg", "lifeline": "gas", "type": "segment", "district": "d"}],
    ...     "sensors": [{"id": f"w{i}", "lifeline": "gas", "kind": "well_methane", "district": "d", "asset": "seg",
    ...                  "lat": 0, "lon": 0} for i in range(3)] + [{"id": "p0", "lifeline": "gas", "kind": "pressure",
    ...                  "district": "d", "asset": "seg", "lat": 0, "lon": 0}]})
    >>> rng = np.random.default_rng(5)
    >>> M = 60 * 10**9
    >>> L0 = 2 * 1440 + 300
    >>> def leak(i, peak): return peak * (1 - np.exp(-(i - L0) / 30)) if L0 <= i < L0 + 180 else 0.0
    >>> rs = []
    >>> for i in range(2 * 1440 + 600):
    ...     p = 150 - 5 * np.sin(2 * np.pi * i / 1440) + 0.3 * rng.standard_normal() - leak(i, 20)
    ...     rs.append(Reading("gas", "d", "p0", i * M, {"pressure": float(p)}))
    ...     for j, peak in enumerate((60, 25, 0)):
    ...         lel = max(0.5 + 0.1 * rng.standard_normal() + leak(i, peak), 0.0)
    ...         rs.append(Reading("gas", "d", f"w{j}", i * M + j + 1, {"ch4_lel": float(lel)}))
    >>> pipe = DetectorPipeline([GasLeak()], city)
    >>> for d in pipe.process(rs[:6000]) + pipe.process(rs[6000:]):
    ...     print(d.state, d.asset, d.level.label, d.start_ns // M - L0, d.ts_ns // M - L0, d.evidence["wells_rising"])
    raised seg orange 3 3 2
    updated seg red 3 52 2
    cleared seg red 3 195 0
    """

    name = "gas_leak"
    lifeline = "gas"
    asset_type = "segment"
    ROLES: ClassVar[dict] = {"methane": (("well_methane",), "ch4_lel"), "pressure": (("pressure",), "pressure")}
    source = ("gas leak: pressure drop near the leak and CH4 rising in nearby valve wells (domain.md §3.3 [S]); "
              "red at 50 %LEL, GB/T 50493-2019 2nd-level alarm [S]; k, min rise and window are settings")
    defaults: ClassVar[dict[str, Any]] = {
        "bins": 24,
        "alpha": 0.02,
        "min_count": 20,
        "k_methane": 6.0,
        "min_rise_lel": 2.0,  # %LEL above baseline (a setting; normal wells read 0-2 %LEL)
        "k_pressure": 3.0,
        "min_pressure_spread_rel": 0.003,
        "trend_alpha": 0.3,
        "window_s": 900.0,
        "min_wells": 2,
        "red_lel": 50.0,  # GB/T 50493-2019 2nd-level alarm [S]
        "level": "orange",
        "clear_points": 3,
    }
    N_SCALARS = 4

    def stream_spec(self) -> dict:
        b = int(self.p["bins"])
        spec = {"bl_mean": ((b,), np.float64, 0.0), "bl_var": ((b,), np.float64, 0.0), "bl_cnt": ((b,), np.int64, 0)}
        spec.update({k: ((), np.float64, np.nan) for k in ("val", "base", "sd")})
        spec.update({k: ((), np.float64, 0.0) for k in ("flag", "last", "trend")})
        spec.update({k: ((), np.int64, 0) for k in ("n_seen", "elev_t", "rise_t", "low_t")})
        return spec

    def asset_spec(self) -> dict:
        return {"latched": ((), np.int8, 0)}

    def _kernel(self, frame: Frame, rows, loc, indptr, members, obs, snap) -> int:  # noqa: ANN001
        st, at = self.streams, self.assets_state
        off = int(round(frame.registry.city.utc_offset_hours * 3600)) * 1_000_000_000
        from detectors.health._kit import level_severity

        return _gas(loc, frame.t[rows], frame.x[rows], self.loc_asset, self.loc_role, indptr, members, off,
                    int(self.p["bins"]), st["bl_mean"], st["bl_var"], st["bl_cnt"], st["val"], st["base"], st["sd"],
                    st["flag"], st["last"], st["trend"], st["n_seen"], st["elev_t"], st["rise_t"], st["low_t"],
                    at["_quiet"], at["latched"],
                    float(self.p["alpha"]), int(self.p["min_count"]), float(self.p["k_methane"]),
                    float(self.p["min_rise_lel"]), float(self.p["k_pressure"]), float(self.p["min_pressure_spread_rel"]),
                    float(self.p["trend_alpha"]), int(float(self.p["window_s"]) * 1e9), int(self.p["min_wells"]),
                    float(self.p["red_lel"]), self.lvl, level_severity("red"), int(self.p["clear_points"]),
                    obs["asset"], obs["t"], obs["now"], obs["sev"], obs["score"], obs["snap"], snap)

    def _evidence(self, asset: int, row: np.ndarray, members: np.ndarray, reg: Registry) -> dict[str, Any]:
        return {"wells_rising": int(row[0]), "wells_elevated": int(row[1]), "pressures_low": int(row[2]),
                "max_lel": round(float(row[3]), 3), "min_rise_lel": float(self.p["min_rise_lel"]),
                "red_lel": float(self.p["red_lel"]), "members": self.members_evidence(row, members, reg)}
