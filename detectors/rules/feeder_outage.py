"""feeder_outage: most meters of one feeder at ~0 V at once."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from detectors.frame import Frame, Registry
from detectors.rules._base import AssetRule
from detectors.rules._numba import emit_obs, fill_members
from lifewatch.lifelines import load_lifelines


@numba.njit(cache=True, nogil=True)
def _outage(loc, t, x, loc_asset, indptr, members, nominal, n_meters,  # noqa: ANN001
            val, pu, low_t, flag, cond_since,
            quiet, low_pu, frac, min_meters, window, min_dur, lvl, clear_points,
            o_asset, o_t, o_now, o_sev, o_score, o_snap, snap):
    k = 0
    nsnap = 0
    for i in range(len(loc)):
        m = loc[i]
        v = x[i]
        if np.isnan(v):
            continue
        a = loc_asset[m]
        val[m] = v
        pu[m] = v / nominal[m] if nominal[m] > 0 else np.nan
        low = pu[m] < low_pu
        flag[m] = 1.0 if low else 0.0
        if low:
            low_t[m] = t[i]
        n_low = 0
        for p in range(indptr[a], indptr[a + 1]):
            q = members[p]
            if flag[q] > 0 and low_t[q] != 0 and t[i] - low_t[q] <= window:
                n_low += 1
        need = max(min_meters, int(math.ceil(frac * n_meters[a])))
        cond = n_low >= need
        if cond:
            if cond_since[a] == 0:
                cond_since[a] = t[i]
        else:
            cond_since[a] = 0
        sev = lvl if cond and t[i] - cond_since[a] >= min_dur else 0
        share = n_low / n_meters[a] if n_meters[a] > 0 else 0.0
        j, nsnap = emit_obs(k, a, cond_since[a] if sev > 0 else t[i], t[i], sev, share, quiet, clear_points,
                            o_asset, o_t, o_now, o_sev, o_score, o_snap, nsnap)
        if j >= 0:
            snap[j, 0] = n_low
            snap[j, 1] = n_meters[a]
            snap[j, 2] = t[i]
            snap[j, 3] = need
            fill_members(snap, j, 4, indptr, members, a, val, nominal, pu, flag)
        k += 1
    return k


class FeederOutage(AssetRule):
    """Sustained outage of a feeder: at least 60 % of its meters below 0.1 pu within the same minute.

    Signature (domain.md §2.3 "Sustained outage": 0 pu for more than a minute
    on all meters downstream of one feeder at once; the topology
    correlation tells an outage from meter dropouts).  A meter is *low*
    below ``low_pu`` (0.1 pu: IEEE 1159 interruption < 0.1 pu [V]) of its
    nominal voltage (the sensor kind's ``nominal`` in the lifeline file,
    220 V); the feeder is out when, at a meter reading, at least
    ``min_share`` of the feeder's meters in the city file (and at least
    ``min_meters``) had a low reading within ``window_s``, continuously for
    ``min_duration_s`` (60 s: IEEE 1159 sustained interruption > 1 min [V]).
    The 60 % share is a setting.

    Not an outage: one meter going silent (that is
    :class:`detectors.health.Offline`: it stops reporting, while meters of a
    dead feeder keep reporting 0 V), one meter reading 0 (a sensor fault: one
    of ten is far below 60 %), a sag (0.1-0.9 pu).  A feeder whose meters
    lose their communication along with the power goes silent instead and is
    missed here.  Level red; one observation per meter reading, so
    ``clear_points`` (5) counts meter readings.

    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.city import parse_city
    >>> from lifewatch.model import Reading
    >>> city = parse_city({"name": "t", "units": {l: {"id": l, "name": l} for l in
    ...     ("water", "power", "gas", "bridge", "air")}, "districts": [{"id": "d", "name": "d", "lat": 0, "lon": 0}],
    ...     "assets": [{"id": "f1", "lifeline": "power", "type": "feeder", "district": "d"}],
    ...     "sensors": [{"id": f"m{i}", "lifeline": "power", "kind": "meter", "district": "d", "asset": "f1",
    ...                  "lat": 0, "lon": 0} for i in range(5)]})
    >>> M = 60 * 10**9
    >>> def volts(i, j): return 0.0 if 30 <= i < 50 else 228.0 - j
    >>> rs = [Reading("power", "d", f"m{j}", i * M + j * 10**9, {"voltage": volts(i, j), "load": 1.0})
    ...       for i in range(60) for j in range(5)]
    >>> pipe = DetectorPipeline([FeederOutage()], city)
    >>> for d in pipe.process(rs[:160]) + pipe.process(rs[160:]):
    ...     print(d.state, d.kind, d.asset, d.level.label, d.start_ns // 10**9, d.ts_ns // 10**9, d.evidence["meters_low"])
    raised feeder_outage f1 red 1802 1862 5
    cleared feeder_outage f1 red 1802 3061 0
    """

    name = "feeder_outage"
    lifeline = "power"
    asset_type = "feeder"
    ROLES: ClassVar[dict] = {"meter_voltage": (("meter",), "voltage")}
    source = ("sustained outage: 0 pu on the meters of one feeder at once for > 1 min (domain.md §2.3; IEEE 1159 "
              "interruption < 0.1 pu, sustained > 1 min [V]); the 60 % share is a setting")
    defaults: ClassVar[dict[str, Any]] = {
        "low_pu": 0.1,  # IEEE 1159 interruption [V]
        "min_share": 0.6,  # a setting
        "min_meters": 2,
        "window_s": 60.0,  # "within the same minute"
        "min_duration_s": 60.0,  # IEEE 1159 sustained interruption > 1 min [V]
        "level": "red",
        "clear_points": 5,
    }
    N_SCALARS = 4
    STREAM: ClassVar[dict] = {"val": ((), np.float64, np.nan), "pu": ((), np.float64, np.nan),
                              "low_t": ((), np.int64, 0), "flag": ((), np.float64, 0.0)}
    ASSET: ClassVar[dict] = {"cond_since": ((), np.int64, 0)}

    def _metric(self) -> str:
        return "voltage"

    def _nominal(self, reg: Registry) -> np.ndarray:
        cached = getattr(self, "_nominal_cache", None)
        if cached is not None and len(cached) == len(self.loc_sensor) + 1:
            return cached
        ll = load_lifelines()["power"]
        out = np.zeros(len(self.loc_sensor) + 1)
        for m, s in enumerate(self.loc_sensor.tolist()):
            meta = reg.sensor_meta[s]
            nom = float(meta.params.get("nominal", 0.0)) if meta is not None else 0.0
            if nom <= 0 and meta is not None and meta.kind in ll.sensor_kinds:
                nom = ll.sensor_kinds[meta.kind].nominal.get("voltage", 0.0)
            out[m] = nom if nom > 0 else 220.0
        self._nominal_cache = out
        return out

    def _kernel(self, frame: Frame, rows, loc, indptr, members, obs, snap) -> int:  # noqa: ANN001
        st, at = self.streams, self.assets_state
        return _outage(loc, frame.t[rows], frame.x[rows], self.loc_asset, indptr, members,
                       self._nominal(frame.registry), self.role_count[:, 0].copy(),
                       st["val"], st["pu"], st["low_t"], st["flag"], at["cond_since"], at["_quiet"],
                       float(self.p["low_pu"]), float(self.p["min_share"]), int(self.p["min_meters"]),
                       int(float(self.p["window_s"]) * 1e9), int(float(self.p["min_duration_s"]) * 1e9),
                       self.lvl, int(self.p["clear_points"]),
                       obs["asset"], obs["t"], obs["now"], obs["sev"], obs["score"], obs["snap"], snap)

    def _evidence(self, asset: int, row: np.ndarray, members: np.ndarray, reg: Registry) -> dict[str, Any]:
        return {"meters_low": int(row[0]), "meters": int(row[1]), "needed": int(row[3]),
                "low_pu": float(self.p["low_pu"]),
                "members": self.members_evidence(row, members, reg, ("value", "nominal", "pu", "flag"))}
