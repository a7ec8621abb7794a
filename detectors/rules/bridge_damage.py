"""bridge_damage: a temperature-compensated drop of the natural frequency, sustained for hours."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from detectors.frame import Frame, Registry
from detectors.rules._base import AssetRule
from detectors.rules._numba import emit_obs, fill_members

FREQ, TEMP = 0, 1


@numba.njit(cache=True, nogil=True)
def _damage(loc, t, x, loc_asset, loc_role, indptr, members, n_acc,  # noqa: ANN001
            val, pred, resid, flag, last_t, n, first_t, mt, mf, vt, ctf, tmin, tmax, r_s, below_since,
            quiet, temp_lag, temp_t,
            alpha_min, tau_temp, fresh, warmup, min_range, drop, tau_r, min_dur, lvl, clear_points,
            o_asset, o_t, o_now, o_sev, o_score, o_snap, snap):
    k = 0
    nsnap = 0
    buf = np.empty(max(1, members.shape[0]))
    for i in range(len(loc)):
        m = loc[i]
        v = x[i]
        if np.isnan(v):
            continue
        a = loc_asset[m]
        prev_t = last_t[m]
        val[m] = v
        last_t[m] = t[i]
        if loc_role[m] == TEMP:
            # bridge temperature = median of the fresh temperature readings, then a first-order lag
            c = 0
            for p in range(indptr[a], indptr[a + 1]):
                q = members[p]
                if loc_role[q] == TEMP and last_t[q] != 0 and t[i] - last_t[q] <= fresh:
                    buf[c] = val[q]
                    c += 1
            for u in range(1, c):
                w = buf[u]
                z = u - 1
                while z >= 0 and buf[z] > w:
                    buf[z + 1] = buf[z]
                    z -= 1
                buf[z + 1] = w
            med = buf[c // 2] if c % 2 == 1 else 0.5 * (buf[c // 2 - 1] + buf[c // 2])
            if temp_t[a] == 0:
                temp_lag[a] = med
            else:
                dt = max((t[i] - temp_t[a]) / 1e9, 0.0)
                temp_lag[a] += (1.0 - math.exp(-dt / tau_temp)) * (med - temp_lag[a])
            temp_t[a] = t[i]
            continue
        if temp_t[a] == 0 or t[i] - temp_t[a] > fresh:
            continue  # no temperature to compensate with
        T = temp_lag[a]
        if n[m] == 0:
            first_t[m] = t[i]
            tmin[m] = T
            tmax[m] = T
        warm = t[i] - first_t[m] >= warmup and tmax[m] - tmin[m] >= min_range and vt[m] > 0.0
        r = 0.0
        if warm:
            pr = mf[m] + ctf[m] / vt[m] * (T - mt[m])
            pred[m] = pr
            r = v / pr - 1.0 if pr > 0 else 0.0
            dt = max((t[i] - prev_t) / 1e9, 0.0) if prev_t != 0 else 0.0
            r_s[m] += (1.0 - math.exp(-dt / tau_r)) * (r - r_s[m])
            resid[m] = r_s[m]
            if r_s[m] < -drop:
                if below_since[m] == 0:
                    below_since[m] = t[i]
            else:
                below_since[m] = 0
        sustained = below_since[m] != 0 and t[i] - below_since[m] >= min_dur
        flag[m] = 1.0 if sustained else 0.0
        if not warm or r_s[m] > -0.5 * drop:  # never learn a damaged state as normal
            a_l = max(1.0 / (n[m] + 1.0), alpha_min)
            dT = T - mt[m]
            df = v - mf[m]
            mt[m] += a_l * dT
            mf[m] += a_l * df
            vt[m] = (1.0 - a_l) * (vt[m] + a_l * dT * dT)
            ctf[m] = (1.0 - a_l) * (ctf[m] + a_l * dT * df)
            if T < tmin[m]:
                tmin[m] = T
            if T > tmax[m]:
                tmax[m] = T
            n[m] += 1
        if not warm:
            continue
        n_sus = 0
        worst = 0.0
        since = 0
        for p in range(indptr[a], indptr[a + 1]):
            q = members[p]
            if loc_role[q] == FREQ and flag[q] > 0:
                n_sus += 1
                if resid[q] < worst:
                    worst = resid[q]
                if since == 0 or below_since[q] < since:
                    since = below_since[q]
        need = min(2, n_acc[a]) if n_acc[a] > 0 else 1
        sev = lvl if n_sus >= need else 0
        j, nsnap = emit_obs(k, a, since if sev > 0 else t[i], t[i], sev, -worst * 100.0, quiet, clear_points,
                            o_asset, o_t, o_now, o_sev, o_score, o_snap, nsnap)
        if j >= 0:
            snap[j, 0] = n_sus
            snap[j, 1] = T
            snap[j, 2] = worst
            snap[j, 3] = need
            fill_members(snap, j, 4, indptr, members, a, val, pred, resid, flag)
        k += 1
    return k


class BridgeDamage(AssetRule):
    """Structural damage: the temperature-compensated natural frequency stays a few % low for hours.

    Natural frequencies fall as temperature rises (concrete modulus,
    bearings); normal climate swings move them by 5-10 % [S], so a raw
    frequency threshold is useless.  Per accelerometer, an EW least-squares
    fit ``f ~ a + b T`` (T = median of the bridge's temperature streams
    with a first-order lag ``tau_temp_s`` 30 min, the deck's thermal
    inertia) is learned over at least ``warmup_s`` (2 days) and a
    temperature range of ``min_temp_range`` (4 K); then ``r = f / f(T) - 1``
    (EW-smoothed over ``tau_resid_s``) below ``-drop`` (3 %) for
    ``min_duration_s`` (6 h) is damage (domain.md §4.3 "Progressive
    structural damage": a temperature-compensated drop of a few %; Z24
    second mode 5.02 -> 4.72 Hz, -6 % [S]; controlled-damage drops of
    0.37-1.4 % are below this rule's reach).  At least two accelerometers
    (all if fewer) must agree: one sensor alone is a sensor fault.  The fit
    never learns while the residual is below ``-drop / 2``.

    A pure temperature swing does not alarm as long as the frequency stays
    linear in temperature; it *does* alarm if the relation bends outside the
    learned range (frozen bearings and asphalt below 0 degC stiffen the
    Z24 bridge, domain.md §4.1 [U]): let the fit see a winter first.  Level
    orange.

    >>> import numpy as np
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.city import parse_city
    >>> from lifewatch.model import Reading
    >>> city = parse_city({"name": "t", "units": {l: {"id": l, "name": l} for l in
    ...     ("water", "power", "gas", "bridge", "air")}, "districts": [{"id": "d", "name": "d", "lat": 0, "lon": 0}],
    ...     "assets": [{"id": "br", "lifeline": "bridge", "type": "bridge", "district": "d"}],
    ...     "sensors": [{"id": f"a{i}", "lifeline": "bridge", "kind": "accelerometer", "district": "d", "asset": "br",
    ...                  "lat": 0, "lon": 0} for i in range(2)] + [{"id": "s0", "lifeline": "bridge",
    ...                  "kind": "strain_gauge", "district": "d", "asset": "br", "lat": 0, "lon": 0}]})
    >>> rng = np.random.default_rng(7)
    >>> M = 60 * 10**9
    >>> def temp(i): return 5 + 8 * np.sin(2 * np.pi * i / 1440) + (15 if i > 4 * 1440 else 0) * np.sin(np.pi * (i % 1440) / 1440)
    >>> def damage(i): return 0.05 if i >= 5 * 1440 else 0.0
    >>> rs = []
    >>> for i in range(6 * 1440):
    ...     rs.append(Reading("bridge", "d", "s0", i * M, {"strain": 0.0, "temperature": float(temp(i))}))
    ...     for j in range(2):
    ...         f = 2.5 * (1 - 0.0015 * (temp(i) - 10)) * (1 - damage(i)) * (1 + 0.002 * rng.standard_normal())
    ...         rs.append(Reading("bridge", "d", f"a{j}", i * M + j + 1, {"frequency": float(f)}))
    >>> pipe = DetectorPipeline([BridgeDamage()], city)
    >>> for d in pipe.process(rs[:10000]) + pipe.process(rs[10000:]):
    ...     print(d.state, d.asset, d.level.label, round(d.start_ns / M / 1440, 2), round(d.ts_ns / M / 1440, 2),
    ...           round(d.evidence["worst_residual_pct"], 1))
    raised br orange 5.02 5.27 -5.1
    """

    name = "bridge_damage"
    lifeline = "bridge"
    asset_type = "bridge"
    ROLES: ClassVar[dict] = {"frequency": (("accelerometer",), "frequency"),
                             "temperature": (("strain_gauge", "displacement"), "temperature")}
    source = ("damage: temperature-compensated natural-frequency drop of a few % (domain.md §4.3 [S]; Z24 "
              "5.02 -> 4.72 Hz, normal climate variation 5-10 %, domain.md §4.2 [S]); 3 % for 6 h is a setting")
    defaults: ClassVar[dict[str, Any]] = {
        "alpha_min": 1.0 / 20160.0,  # about 14 days of one-minute samples
        "tau_temp_s": 1800.0,
        "fresh_s": 900.0,
        "warmup_s": 2 * 86400.0,
        "min_temp_range": 4.0,
        "drop": 0.03,
        "tau_resid_s": 1800.0,
        "min_duration_s": 6 * 3600.0,
        "level": "orange",
        "clear_points": 10,
    }
    N_SCALARS = 4
    STREAM: ClassVar[dict] = {**{k: ((), np.float64, np.nan) for k in ("val", "pred", "resid")},
                              **{k: ((), np.float64, 0.0) for k in ("flag", "mt", "mf", "vt", "ctf", "tmin", "tmax",
                                                                     "r_s")},
                              **{k: ((), np.int64, 0) for k in ("last_t", "n", "first_t", "below_since")}}
    ASSET: ClassVar[dict] = {"temp_lag": ((), np.float64, 0.0), "temp_t": ((), np.int64, 0)}

    def _metric(self) -> str:
        return "frequency"

    def _kernel(self, frame: Frame, rows, loc, indptr, members, obs, snap) -> int:  # noqa: ANN001
        st, at = self.streams, self.assets_state
        return _damage(loc, frame.t[rows], frame.x[rows], self.loc_asset, self.loc_role, indptr, members,
                       self.role_count[:, 0].copy(),
                       st["val"], st["pred"], st["resid"], st["flag"], st["last_t"], st["n"], st["first_t"], st["mt"],
                       st["mf"], st["vt"], st["ctf"], st["tmin"], st["tmax"], st["r_s"], st["below_since"],
                       at["_quiet"], at["temp_lag"], at["temp_t"],
                       float(self.p["alpha_min"]), float(self.p["tau_temp_s"]), int(float(self.p["fresh_s"]) * 1e9),
                       int(float(self.p["warmup_s"]) * 1e9), float(self.p["min_temp_range"]), float(self.p["drop"]),
                       float(self.p["tau_resid_s"]), int(float(self.p["min_duration_s"]) * 1e9), self.lvl,
                       int(self.p["clear_points"]),
                       obs["asset"], obs["t"], obs["now"], obs["sev"], obs["score"], obs["snap"], snap)

    def _evidence(self, asset: int, row: np.ndarray, members: np.ndarray, reg: Registry) -> dict[str, Any]:
        mem = [m for m in self.members_evidence(row, members, reg, ("value", "expected", "residual", "flag"))
               if m["role"] == "frequency"]
        return {"accelerometers_low": int(row[0]), "needed": int(row[3]), "temperature": round(float(row[1]), 3),
                "worst_residual_pct": round(100.0 * float(row[2]), 3), "drop_pct": 100.0 * float(self.p["drop"]),
                "min_duration_s": float(self.p["min_duration_s"]), "members": mem}
