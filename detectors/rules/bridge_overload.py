"""bridge_overload: strain/deflection peaks far above the traffic envelope at several gauges at once."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from detectors.frame import Frame, Registry
from detectors.rules._base import AssetRule
from detectors.rules._numba import emit_obs, fill_members
from lifewatch.city import Sensor


@numba.njit(cache=True, nogil=True)
def _overload(loc, t, x, loc_asset, indptr, members,  # noqa: ANN001
              val, base, env, env_t, noise, last, last_t, first_t, n_seen, peak_t, flag,
              quiet, last_cond,
              tau_base, tau_env, ratio, k_noise, warmup, window, min_gauges, hold, lvl, clear_points,
              o_asset, o_t, o_now, o_sev, o_score, o_snap, snap):
    k = 0
    nsnap = 0
    for i in range(len(loc)):
        m = loc[i]
        v = x[i]
        if np.isnan(v):
            continue
        a = loc_asset[m]
        if n_seen[m] == 0:
            base[m] = v
            first_t[m] = t[i]
            env_t[m] = t[i]
            last[m] = v
            last_t[m] = t[i]
        dt = (t[i] - env_t[m]) / 1e9
        env_now = env[m] * math.exp(-max(dt, 0.0) / tau_env)
        dev = v - base[m]
        warm = t[i] - first_t[m] >= warmup
        peak = warm and abs(dev) > ratio * env_now and abs(dev) > k_noise * noise[m]
        val[m] = v
        flag[m] = 1.0 if peak else 0.0
        if peak:
            peak_t[m] = t[i]
        else:
            # learn the thermal baseline, the traffic envelope and the noise (never from an overload peak)
            env[m] = max(env_now, abs(dev))
            env_t[m] = t[i]
            step = abs(v - last[m])
            if n_seen[m] >= 10 and step > 5.0 * noise[m]:
                step = 5.0 * noise[m]
            an = max(1.0 / (n_seen[m] + 1.0), 0.01)
            noise[m] += an * (step - noise[m])
            ab = 1.0 - math.exp(-max((t[i] - last_t[m]) / 1e9, 0.0) / tau_base)
            base[m] += ab * (v - base[m])
        last[m] = v
        last_t[m] = t[i]
        n_seen[m] += 1
        n_peak = 0
        top = 0.0
        for p in range(indptr[a], indptr[a + 1]):
            q = members[p]
            if peak_t[q] != 0 and t[i] - peak_t[q] <= window:
                n_peak += 1
                r = abs(val[q] - base[q]) / max(env[q], 1e-12)
                if r > top:
                    top = r
        if n_peak >= min_gauges:
            last_cond[a] = t[i]
        sev = lvl if last_cond[a] != 0 and t[i] - last_cond[a] <= hold else 0
        j, nsnap = emit_obs(k, a, t[i], t[i], sev, top, quiet, clear_points,
                            o_asset, o_t, o_now, o_sev, o_score, o_snap, nsnap)
        if j >= 0:
            snap[j, 0] = n_peak
            snap[j, 1] = top
            snap[j, 2] = last_cond[a]
            snap[j, 3] = 0.0
            fill_members(snap, j, 4, indptr, members, a, val, base, env, flag)
        k += 1
    return k


class BridgeOverload(AssetRule):
    """Overload on a bridge: short peaks far above the traffic envelope at several gauges simultaneously.

    Signature (domain.md §4.3 "Overload / heavy-vehicle event" [S]: a short
    strain and deflection peak, seconds, well above the daily traffic
    envelope, correlated across the gauges along the span).  Per strain
    gauge and (non-bearing) deflection sensor: a slow thermal baseline (EW,
    ``tau_base_s`` 1 h), the *traffic envelope* = the largest recent
    ``|value - baseline|``, decaying with ``tau_envelope_s`` (1 day), and
    the noise step.  A reading is a *peak* when ``|value - baseline|``
    exceeds ``ratio`` (2) x the envelope and ``k_noise`` x the noise; peaks
    never enter the envelope.  The bridge is overloaded when at least
    ``min_gauges`` (2) gauges peaked within ``window_s`` (2 min: loggers
    report each interval's peak, so one passage shows in every gauge's next
    sample); the condition holds ``hold_s`` (30 min) after the last such
    moment, so a convoy of heavy vehicles is one detection.

    Needs a full day (``warmup_s``) to learn the envelope.  Works badly when
    traffic grows suddenly beyond anything seen in the last day (a detour
    sends lorries over the bridge: that *is* a new load regime, reported
    until the envelope has learned it) and for a single heavy vehicle on a
    long span seen by one gauge only.  The design-value shares (JT/T
    1037-2022 levels) are the threshold stage's job.  Level orange.

    >>> import numpy as np
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.city import parse_city
    >>> from lifewatch.model import Reading
    >>> city = parse_city({"name": "t", "units": {l: {"id": l, "name": l} for l in
    ...     ("water", "power", "gas", "bridge", "air")}, "districts": [{"id": "d", "name": "d", "lat": 0, "lon": 0}],
    ...     "assets": [{"id": "br", "lifeline": "bridge", "type": "bridge", "district": "d"}],
    ...     "sensors": [{"id": f"s{i}", "lifeline": "bridge", "kind": "strain_gauge", "district": "d", "asset": "br",
    ...                  "lat": 0, "lon": 0} for i in range(3)]})
    >>> rng = np.random.default_rng(6)
    >>> M = 60 * 10**9
    >>> lorry = {2 * 1440 + 100, 2 * 1440 + 110}
    >>> rs = [Reading("bridge", "d", f"s{j}", i * M + j, {"strain": float(
    ...       20 * np.sin(2 * np.pi * i / 1440) + 30 * rng.random() * (1 + np.sin(2 * np.pi * i / 1440))
    ...       + (300 if i in lorry else 0)), "temperature": 5.0}) for i in range(3 * 1440) for j in range(3)]
    >>> pipe = DetectorPipeline([BridgeOverload()], city)
    >>> for d in pipe.process(rs[:7000]) + pipe.process(rs[7000:]):
    ...     print(d.state, d.asset, d.level.label, d.start_ns // M - 2 * 1440, d.ts_ns // M - 2 * 1440,
    ...           d.evidence["gauges_peaking"])
    raised br orange 100 100 2
    cleared br orange 100 142 0
    """

    name = "bridge_overload"
    lifeline = "bridge"
    asset_type = "bridge"
    ROLES: ClassVar[dict] = {"strain": (("strain_gauge",), "strain"), "deflection": (("displacement",), "deflection")}
    source = ("overload: short strain/deflection peaks well above the daily traffic envelope, correlated across "
              "gauges (domain.md §4.3 [S]); ratio, window and hold are settings")
    defaults: ClassVar[dict[str, Any]] = {
        "tau_base_s": 3600.0,
        "tau_envelope_s": 86400.0,
        "ratio": 2.0,
        "k_noise": 10.0,
        "warmup_s": 86400.0,
        "window_s": 120.0,
        "min_gauges": 2,
        "hold_s": 1800.0,
        "level": "orange",
        "clear_points": 1,
    }
    N_SCALARS = 4
    STREAM: ClassVar[dict] = {**{k: ((), np.float64, 0.0) for k in ("val", "base", "env", "noise", "last", "flag")},
                              **{k: ((), np.int64, 0) for k in ("env_t", "last_t", "first_t", "n_seen", "peak_t")}}
    ASSET: ClassVar[dict] = {"last_cond": ((), np.int64, 0)}

    def _accepts(self, sensor: Sensor, role: int) -> bool:
        return sensor.params.get("role") != "bearing"  # a bearing follows temperature, not traffic

    def _kernel(self, frame: Frame, rows, loc, indptr, members, obs, snap) -> int:  # noqa: ANN001
        st, at = self.streams, self.assets_state
        return _overload(loc, frame.t[rows], frame.x[rows], self.loc_asset, indptr, members,
                         st["val"], st["base"], st["env"], st["env_t"], st["noise"], st["last"], st["last_t"], st["first_t"],
                         st["n_seen"], st["peak_t"], st["flag"], at["_quiet"], at["last_cond"],
                         float(self.p["tau_base_s"]), float(self.p["tau_envelope_s"]), float(self.p["ratio"]),
                         float(self.p["k_noise"]), int(float(self.p["warmup_s"]) * 1e9),
                         int(float(self.p["window_s"]) * 1e9), int(self.p["min_gauges"]),
                         int(float(self.p["hold_s"]) * 1e9), self.lvl, int(self.p["clear_points"]),
                         obs["asset"], obs["t"], obs["now"], obs["sev"], obs["score"], obs["snap"], snap)

    def _evidence(self, asset: int, row: np.ndarray, members: np.ndarray, reg: Registry) -> dict[str, Any]:
        return {"gauges_peaking": int(row[0]), "peak_over_envelope": round(float(row[1]), 3),
                "ratio": float(self.p["ratio"]),
                "members": self.members_evidence(row, members, reg, ("value", "baseline", "envelope", "flag"))}
