"""water_leak: the minimum-night-flow (MNF) rule of LeakDB."""

from __future__ import annotations

from typing import Any, ClassVar

import numba
import numpy as np

from detectors.frame import Frame, Registry
from detectors.rules._base import AssetRule
from detectors.rules._numba import DAY_NS, emit_obs

HOUR_NS = 3_600_000_000_000


@numba.njit(cache=True, nogil=True)
def _mnf(loc, t, x, loc_asset, offset_ns, h0, h1,  # noqa: ANN001
         win_day, win_min, done, hist, hist_n, hist_pos,
         quiet, w, gamma, lvl, clear_points,
         o_asset, o_t, o_now, o_sev, o_score, o_snap, snap):
    k = 0
    nsnap = 0
    for i in range(len(loc)):
        m = loc[i]
        v = x[i]
        if np.isnan(v):
            continue
        lt = t[i] + offset_ns
        day = lt // DAY_NS
        h = lt - day * DAY_NS
        if win_day[m] >= 0 and done[m] == 0 and (day != win_day[m] or h >= h1):
            # the night window of win_day is over: its MNF is final
            mnf = win_min[m]
            done[m] = 1
            n = hist_n[m]
            ref = np.nan
            alarm = False
            if n >= w:
                ref = hist[m, 0]
                for j in range(1, w):
                    if hist[m, j] < ref:
                        ref = hist[m, j]
                alarm = mnf - ref > gamma * ref
            if not alarm:  # only non-alarm days enter the window (LeakDB algorithmMNF.m)
                hist[m, hist_pos[m]] = mnf
                hist_pos[m] = (hist_pos[m] + 1) % w
                if n < w:
                    hist_n[m] = n + 1
            a = loc_asset[m]
            sev = lvl if alarm else 0
            score = (mnf - ref) / ref if ref == ref and ref > 0 else 0.0
            j, nsnap = emit_obs(k, a, t[i], t[i], sev, score, quiet, clear_points, o_asset, o_t, o_now, o_sev,
                                o_score, o_snap, nsnap)
            if j >= 0:
                snap[j, 0] = mnf
                snap[j, 1] = ref
                snap[j, 2] = win_day[m]
                snap[j, 3] = n
            k += 1
        if h0 <= h < h1:
            if win_day[m] != day:
                win_day[m] = day
                win_min[m] = v
                done[m] = 0
            elif v < win_min[m]:
                win_min[m] = v
    return k


class WaterLeakMNF(AssetRule):
    """Leak in a DMA by minimum night flow (MNF), the LeakDB reference algorithm.

    Daily MNF = the minimum of the DMA inlet flow between 02:00 and 04:00
    *local* time (MNF usually occurs 02:00-04:00, domain.md §1.1 [V]; the
    city's ``utc_offset_hours``).  When the night window is over (the first
    inlet reading at or after 04:00 local, or of a later day), the day is
    judged: alarm if ``MNF(d) - min(MNF over the last w non-alarm days) >
    gamma x that minimum``; only non-alarm days enter the window
    (``KIOS-Research/LeakDB``, ``Detection Algorithms/MNF/algorithmMNF.m``
    [V], domain.md §1.2; ``w = 10`` as there).  ``gamma`` is a setting: the
    example at the top of that file uses 0.1, but on the simulated city
    (5 % demand noise, weekend +4 %) normal nights reach an excess of 0.18
    (99.9 % quantile 0.16 over 4,800 DMA-nights), so 0.1 would raise about
    one DMA in ten every night; the default is 0.25.  Needs ``w`` days of
    history first (warm-up: no verdict before).

    One observation per DMA per day, so a leak is raised the morning after
    its first alarming night and cleared after ``clear_points`` (1) normal
    night(s).  Works badly for leaks smaller than gamma x the night flow
    and when night use changes for other reasons (holidays, a new
    consumer); a leak that starts inside the warm-up is learned as normal.
    Level yellow.

    >>> import numpy as np
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.city import parse_city
    >>> from lifewatch.model import Reading
    >>> city = parse_city({"name": "t", "utc_offset_hours": 6, "units": {l: {"id": l, "name": l} for l in
    ...     ("water", "power", "gas", "bridge", "air")}, "districts": [{"id": "d", "name": "d", "lat": 0, "lon": 0}],
    ...     "assets": [{"id": "dma", "lifeline": "water", "type": "dma", "district": "d"}],
    ...     "sensors": [{"id": "in", "lifeline": "water", "kind": "dma_inlet", "district": "d", "asset": "dma",
    ...                  "lat": 0, "lon": 0}]})
    >>> rng = np.random.default_rng(4)
    >>> H = 3600 * 10**9
    >>> rs = [Reading("water", "d", "in", i * H // 4, {"flow": float(40 + 60 * ((i // 4 + 6) % 24 >= 6)
    ...       + rng.uniform(0, 2) + (12 if i >= 4 * 24 * 14 else 0))}) for i in range(4 * 24 * 17)]
    >>> pipe = DetectorPipeline([WaterLeakMNF()], city)
    >>> for d in pipe.process(rs):
    ...     print(d.state, d.asset, d.level.label, d.ts_ns // (24 * H), round(d.evidence["mnf"], 2),
    ...           round(d.evidence["mnf_reference"], 2))
    raised dma yellow 14 52.14 40.04
    """

    name = "water_leak"
    lifeline = "water"
    asset_type = "dma"
    ROLES: ClassVar[dict] = {"inlet_flow": (("dma_inlet",), "flow")}
    source = ("LeakDB MNF rule: alarm if MNF(d) - min(MNF of the last w=10 non-alarm days) > gamma x that minimum "
              "(KIOS-Research/LeakDB algorithmMNF.m [V], domain.md §1.2); MNF window 02:00-04:00 local "
              "(domain.md §1.1 [V]); gamma is a setting")
    defaults: ClassVar[dict[str, Any]] = {
        "window_days": 10,  # w in algorithmMNF.m [V]
        "gamma": 0.25,  # a setting: LeakDB's example uses 0.1; see the class docstring
        "night_start_h": 2.0,
        "night_end_h": 4.0,
        "level": "yellow",
        "clear_points": 1,
    }
    N_SCALARS = 4

    def stream_spec(self) -> dict:
        w = int(self.p["window_days"])
        if w < 1:
            raise ValueError("water_leak: window_days must be >= 1")
        return {"win_day": ((), np.int64, -1), "win_min": ((), np.float64, np.nan), "done": ((), np.int8, 1),
                "hist": ((w,), np.float64, np.nan), "hist_n": ((), np.int64, 0), "hist_pos": ((), np.int64, 0)}

    def _metric(self) -> str:
        return "flow"

    def _kernel(self, frame: Frame, rows, loc, indptr, members, obs, snap) -> int:  # noqa: ANN001
        st = self.streams
        off = int(round(frame.registry.city.utc_offset_hours * 3600)) * 1_000_000_000
        return _mnf(loc, frame.t[rows], frame.x[rows], self.loc_asset, off,
                    int(float(self.p["night_start_h"]) * HOUR_NS), int(float(self.p["night_end_h"]) * HOUR_NS),
                    st["win_day"], st["win_min"], st["done"], st["hist"], st["hist_n"], st["hist_pos"],
                    self.assets_state["_quiet"], int(self.p["window_days"]), float(self.p["gamma"]), self.lvl,
                    int(self.p["clear_points"]), obs["asset"], obs["t"], obs["now"], obs["sev"], obs["score"], obs["snap"], snap)

    def _evidence(self, asset: int, row: np.ndarray, members: np.ndarray, reg: Registry) -> dict[str, Any]:
        import datetime as dt

        day = dt.date(1970, 1, 1) + dt.timedelta(days=int(row[2])) if row[2] == row[2] else None
        ref = float(row[1])
        return {"mnf": round(float(row[0]), 4), "mnf_reference": round(ref, 4) if ref == ref else None,
                "excess": round((float(row[0]) - ref) / ref, 4) if ref == ref and ref > 0 else None,
                "night": day.isoformat() if day else None, "history_days": int(row[3]),
                "gamma": float(self.p["gamma"]), "window_days": int(self.p["window_days"])}
