"""water_burst: DMA inlet flow up while the DMA's pressures fall, within minutes."""

from __future__ import annotations

from typing import Any, ClassVar

import numba
import numpy as np

from detectors.frame import Frame, Registry
from detectors.rules._base import AssetRule
from detectors.rules._numba import bl_expect, bl_learn, emit_obs, fill_members, local_pos

FLOW, PRESSURE = 0, 1


@numba.njit(cache=True, nogil=True)
def _burst(loc, t, x, loc_asset, loc_role, indptr, members, offset_ns, nbins,  # noqa: ANN001
           bl_mean, bl_var, bl_cnt, val, base, sd, flag, flag_t,
           quiet, latched,
           alpha, min_count, k_flow, k_pressure, min_rel_flow, min_rel_p, window, min_pressure, lvl, clear_points,
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
        s = max(s, (min_rel_flow if role == FLOW else min_rel_p) * abs(mu))
        hit = False
        if ok:
            if role == FLOW:
                hit = v > mu + k_flow * s
            else:
                hit = v < mu - k_pressure * s
        if hit:
            flag_t[m] = t[i]
        val[m] = v
        base[m] = mu if ok else np.nan
        sd[m] = s if ok else np.nan
        flag[m] = 1.0 if hit else 0.0
        if not hit and latched[a] == 0:
            bl_learn(bl_mean, bl_var, bl_cnt, m, pos, v, alpha, min_count)
        if role != FLOW or not ok:
            continue
        # evaluate the DMA at each inlet-flow reading
        n_low = 0
        for p in range(indptr[a], indptr[a + 1]):
            q = members[p]
            if loc_role[q] == PRESSURE and flag_t[q] != 0 and t[i] - flag_t[q] <= window:
                n_low += 1
        flow_high = flag_t[m] != 0 and t[i] - flag_t[m] <= window
        cond = flow_high and n_low >= min_pressure
        latched[a] = 1 if cond else 0
        sev = lvl if cond else 0
        j, nsnap = emit_obs(k, a, t[i], t[i], sev, (v - mu) / s if s > 0 else 0.0, quiet, clear_points,
                            o_asset, o_t, o_now, o_sev, o_score, o_snap, nsnap)
        if j >= 0:
            snap[j, 0] = v
            snap[j, 1] = mu
            snap[j, 2] = s
            snap[j, 3] = n_low
            fill_members(snap, j, 4, indptr, members, a, val, base, sd, flag)
        k += 1
    return k


class WaterBurst(AssetRule):
    """Burst in a DMA: the inlet flow jumps above its time-of-day baseline while pressures drop.

    Signature (domain.md §1.3 "Abrupt leak / burst": a step increase in DMA
    inlet flow and a step drop in nearby pressure, opening in minutes;
    BattLeDIM 5-min data, CUSUM on inlet flow detects medium-to-large
    bursts [S, Misiunas]; pressure loggers caught up to 82 % of bursts [S]).

    Every inlet-flow and pressure stream of a DMA has a time-of-day baseline
    (``bins`` per local day, learned across days; see
    :mod:`detectors.rules._numba`).  On each inlet-flow reading the DMA is
    evaluated: the flow is above ``baseline + k_flow x spread`` and at
    least ``min_pressure`` (2) pressure streams of the DMA were below
    ``baseline - k_pressure x spread`` within the last ``window_s``
    (10 min, in event time).  Baselines do not learn while a DMA is in the
    condition (or from the flagged points themselves).

    Needs about one day of history (every half-hour bin ``min_count``
    samples) before it can fire.  Works badly for small bursts that stay
    inside the day-to-day demand spread (about 5 %; see the MNF rule,
    :class:`WaterLeakMNF`, for slow leaks), and calls a demand surge with a
    pressure drop (a fire-fighting draw) a burst too.  Level orange.

    >>> import numpy as np
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.city import parse_city
    >>> from lifewatch.model import Reading
    >>> city = parse_city({"name": "t", "units": {l: {"id": l, "name": l} for l in
    ...     ("water", "power", "gas", "bridge", "air")}, "districts": [{"id": "d", "name": "d", "lat": 0, "lon": 0}],
    ...     "assets": [{"id": "dma", "lifeline": "water", "type": "dma", "district": "d"}],
    ...     "sensors": [{"id": "in", "lifeline": "water", "kind": "dma_inlet", "district": "d", "asset": "dma",
    ...                  "lat": 0, "lon": 0}] + [{"id": f"p{i}", "lifeline": "water", "kind": "pressure",
    ...                  "district": "d", "asset": "dma", "lat": 0, "lon": 0} for i in range(3)]})
    >>> rng = np.random.default_rng(3)
    >>> M = 60 * 10**9
    >>> def demand(i): return 1 + 0.5 * np.sin(2 * np.pi * i / 1440)
    >>> def burst(i): return 40 <= i - 2 * 1440 - 600 < 160
    >>> rs = []
    >>> for i in range(3 * 1440):
    ...     q = 100 * demand(i) * (1 + 0.02 * rng.standard_normal()) + (60 if burst(i) else 0)
    ...     rs.append(Reading("water", "d", "in", i * M, {"flow": float(q), "pressure": 0.45 - 0.02 * demand(i)}))
    ...     for j in range(3):
    ...         p = 0.40 - 0.03 * demand(i) + 0.002 * rng.standard_normal() - (0.03 if burst(i) else 0)
    ...         rs.append(Reading("water", "d", f"p{j}", i * M + j + 1, {"pressure": float(p)}))
    >>> pipe = DetectorPipeline([WaterBurst()], city)
    >>> for d in pipe.process(rs[:9000]) + pipe.process(rs[9000:]):
    ...     print(d.state, d.kind, d.asset, d.level.label, d.start_ns // M - 3480, d.ts_ns // M - 3480, d.sensors)
    raised water_burst dma orange 41 41 ('in', 'p0', 'p1', 'p2')
    cleared water_burst dma orange 41 172 ('in', 'p0', 'p1', 'p2')
    """

    name = "water_burst"
    lifeline = "water"
    asset_type = "dma"
    ROLES: ClassVar[dict] = {"inlet_flow": (("dma_inlet",), "flow"), "pressure": (("dma_inlet", "pressure"), "pressure")}
    source = ("burst: step up in DMA inlet flow with a step drop in pressure, within minutes (domain.md §1.3 [V/S]; "
              "BattLeDIM, Misiunas CUSUM on inlet flow [S]); k, window and counts are settings")
    defaults: ClassVar[dict[str, Any]] = {
        "bins": 48,  # half-hour bins of the local day
        "alpha": 0.02,  # per-sample EW rate inside a bin (about 50 samples: two days)
        "min_count": 20,
        "k_flow": 6.0,
        "k_pressure": 3.0,
        "min_flow_spread_rel": 0.03,  # flow spread floor: 3 % of the baseline (demand noise ~5 %, LeakDB generator [V])
        "min_pressure_spread_rel": 0.005,  # pressure spread floor: 0.5 % of the baseline
        "window_s": 600.0,  # flow up and pressures down within 10 minutes (event time)
        "min_pressure": 2,
    }
    N_SCALARS = 4

    def stream_spec(self) -> dict:
        b = int(self.p["bins"])
        return {"bl_mean": ((b,), np.float64, 0.0), "bl_var": ((b,), np.float64, 0.0), "bl_cnt": ((b,), np.int64, 0),
                "val": ((), np.float64, np.nan), "base": ((), np.float64, np.nan), "sd": ((), np.float64, np.nan),
                "flag": ((), np.float64, np.nan), "flag_t": ((), np.int64, 0)}

    def asset_spec(self) -> dict:
        return {"latched": ((), np.int8, 0)}

    def _metric(self) -> str:
        return "flow"

    def _kernel(self, frame: Frame, rows, loc, indptr, members, obs, snap) -> int:  # noqa: ANN001
        st, at = self.streams, self.assets_state
        off = int(round(frame.registry.city.utc_offset_hours * 3600)) * 1_000_000_000
        return _burst(loc, frame.t[rows], frame.x[rows], self.loc_asset, self.loc_role, indptr, members, off,
                      int(self.p["bins"]), st["bl_mean"], st["bl_var"], st["bl_cnt"], st["val"], st["base"], st["sd"],
                      st["flag"], st["flag_t"], at["_quiet"], at["latched"],
                      float(self.p["alpha"]), int(self.p["min_count"]), float(self.p["k_flow"]),
                      float(self.p["k_pressure"]), float(self.p["min_flow_spread_rel"]),
                      float(self.p["min_pressure_spread_rel"]), int(float(self.p["window_s"]) * 1e9),
                      int(self.p["min_pressure"]), self.lvl, int(self.p["clear_points"]),
                      obs["asset"], obs["t"], obs["now"], obs["sev"], obs["score"], obs["snap"], snap)

    def _evidence(self, asset: int, row: np.ndarray, members: np.ndarray, reg: Registry) -> dict[str, Any]:
        return {"inlet_flow": round(float(row[0]), 4), "flow_baseline": round(float(row[1]), 4),
                "flow_spread": round(float(row[2]), 4),
                "pressures_low": int(row[3]) if row[3] == row[3] else 0,
                "k_flow": float(self.p["k_flow"]), "k_pressure": float(self.p["k_pressure"]),
                "window_s": float(self.p["window_s"]), "members": self.members_evidence(row, members, reg)}
