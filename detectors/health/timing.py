"""Silence (sensor offline) and clock skew, both judged against a lifeline's event-time watermark.

No wall clock: "now" is the **watermark** of a scope (a lifeline by default,
or the whole city), the latest event time that the majority of its sensors
agree with.  Per reading, in order:

* a reading within ``tol_s`` of the watermark (or behind it) may advance it;
* a reading more than ``tol_s`` *ahead* does not (one clock-skewed sensor
  must not make every other sensor look silent); when at least a quorum
  (``quorum_frac`` of the scope's known sensors, at least 2) is ahead, the
  feed itself jumped (a gap in the whole feed) and the watermark follows;
* symmetrically, when a quorum is *behind* by more than ``tol_s`` (the
  watermark was set by a skewed sensor's first reading), it steps back.

Silence is measured on an **active clock**: the watermark minus feed gaps
(any single advance larger than ``gap_factor`` x the scope's shortest
reporting interval).  A sensor that was silent only while *nobody* reported
is not offline; a sensor that stops while the others go on is.

Both stages walk readings (``frame.reading_sensor`` / ``reading_t``) in
order, so results depend only on the order of readings, never on how they
were cut into batches.  A replay must keep the arrival order: replaying
readings sorted by their *stored* timestamps moves a skewed sensor's
readings to where its wrong clock put them, and the skew then shows as a
silence instead (see :class:`ClockSkew`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from detectors.decide import RAISE, Hysteresis, severity_to_level
from detectors.events import CLEARED, RAISED, UPDATED, Detection
from detectors.frame import Frame
from detectors.health._kit import NS, StateArrays, hyst_state, level_severity, load_hyst
from detectors.pipeline import Stage
from lifewatch.lifelines import LIFELINE_IDS

SCOPE = {"W": np.int64, "init": np.int8, "gap": np.int64, "n_ahead": np.int64, "n_behind": np.int64,
         "n_known": np.int64, "next_check": np.int64, "min_iv": np.int64}
SENSOR = {"scope": ((), np.int64, 0), "iv_cfg": ((), np.int64, 0), "known": ((), np.int8, 0),
          "heard": ((), np.int64, 0), "heard_w": ((), np.int64, 0), "last_ts": ((), np.int64, 0),
          "ahead": ((), np.int8, 0), "behind": ((), np.int8, 0), "iv_est": ((), np.float64, 0.0),
          "seen": ((), np.int64, 0), "offline": ((), np.int8, 0), "skew_since": ((), np.int64, -1),
          "skew_n": ((), np.int64, 0), "off_ew": ((), np.float64, 0.0)}
_BIG = np.iinfo(np.int64).max


@numba.njit(cache=True, nogil=True)
def _iv(q, iv_cfg, iv_est, seen):  # noqa: ANN001
    if iv_cfg[q] > 0:
        return iv_cfg[q]
    if seen[q] >= 3:
        return int(iv_est[q])
    return 0


@numba.njit(cache=True, nogil=True)
def _rescan(sc, scope, known, last_ts, ahead, behind, n_sens, W, tol, n_ahead, n_behind):  # noqa: ANN001
    na = 0
    nb = 0
    for q in range(n_sens):
        if known[q] == 0 or scope[q] != sc:
            continue
        a = 1 if last_ts[q] > W[sc] + tol else 0
        b = 1 if last_ts[q] < W[sc] - tol else 0
        ahead[q] = a
        behind[q] = b
        na += a
        nb += b
    n_ahead[sc] = na
    n_behind[sc] = nb


@numba.njit(cache=True, nogil=True)
def _timing(rs, rt, n_sens,  # noqa: ANN001
            W, init, gap, n_ahead, n_behind, n_known, next_check, min_iv,
            scope, iv_cfg, known, heard, heard_w, last_ts, ahead, behind, iv_est, seen, offline,
            skew_since, skew_n, off_ew,
            tol, k_iv, gap_factor, quorum_frac, default_iv, skew_thr, skew_min_dur, skew_min_points, alpha_off,
            do_offline, lvl,
            obs_sensor, obs_t, obs_w, obs_sev, obs_score, obs_e1, obs_e2, obs_iv):
    k = 0
    for i in range(len(rs)):
        s = rs[i]
        ts = rt[i]
        sc = scope[s]
        if known[s] == 0:
            known[s] = 1
            n_known[sc] += 1
            iv0 = iv_cfg[s] if iv_cfg[s] > 0 else default_iv
            if min_iv[sc] == 0 or iv0 < min_iv[sc]:
                min_iv[sc] = iv0
        if init[sc] == 0:
            init[sc] = 1
            W[sc] = ts
            gap[sc] = 0
            next_check[sc] = _BIG
        q_need = max(2, int(math.ceil(quorum_frac * n_known[sc])))
        if q_need > n_known[sc]:
            q_need = n_known[sc]
        if q_need < 1:
            q_need = 1
        last_ts[s] = ts
        if ts > W[sc] + tol:
            if behind[s] == 1:
                behind[s] = 0
                n_behind[sc] -= 1
            if ahead[s] == 0:
                ahead[s] = 1
                n_ahead[sc] += 1
            if n_ahead[sc] >= q_need:
                _rescan(sc, scope, known, last_ts, ahead, behind, n_sens, W, tol, n_ahead, n_behind)
                if n_ahead[sc] >= q_need:
                    new_w = _BIG
                    for q in range(n_sens):
                        if known[q] == 1 and scope[q] == sc and ahead[q] == 1 and last_ts[q] < new_w:
                            new_w = last_ts[q]
                    gap[sc] += new_w - W[sc]  # the whole feed jumped: not anybody's silence
                    W[sc] = new_w
                    _rescan(sc, scope, known, last_ts, ahead, behind, n_sens, W, tol, n_ahead, n_behind)
        elif ts < W[sc] - tol:
            if ahead[s] == 1:
                ahead[s] = 0
                n_ahead[sc] -= 1
            if behind[s] == 0:
                behind[s] = 1
                n_behind[sc] += 1
            if n_behind[sc] >= q_need:
                _rescan(sc, scope, known, last_ts, ahead, behind, n_sens, W, tol, n_ahead, n_behind)
                if n_behind[sc] >= q_need:
                    new_w = -_BIG
                    for q in range(n_sens):
                        if known[q] == 1 and scope[q] == sc and behind[q] == 1 and last_ts[q] > new_w:
                            new_w = last_ts[q]
                    gap[sc] -= W[sc] - new_w  # the active clock does not go back
                    W[sc] = new_w
                    _rescan(sc, scope, known, last_ts, ahead, behind, n_sens, W, tol, n_ahead, n_behind)
        else:
            if ahead[s] == 1:
                ahead[s] = 0
                n_ahead[sc] -= 1
            if behind[s] == 1:
                behind[s] = 0
                n_behind[sc] -= 1
            if ts > W[sc]:
                delta = ts - W[sc]
                g_thr = gap_factor * min_iv[sc]
                if delta > g_thr:
                    gap[sc] += delta - g_thr
                W[sc] = ts
        now = W[sc] - gap[sc]
        offset = ts - W[sc]
        # ---- the reading's own observation
        silence = 0.0
        if seen[s] >= 1:
            d = now - heard[s]
            silence = d / 1e9
            if d > 0 and (seen[s] < 3 or d < 3.0 * iv_est[s]):
                iv_est[s] = d if seen[s] == 1 else iv_est[s] + 0.1 * (d - iv_est[s])
        seen[s] += 1
        heard[s] = now
        heard_w[s] = W[sc]
        if do_offline:
            offline[s] = 0
            obs_sensor[k] = s
            obs_t[k] = W[sc]
            obs_w[k] = W[sc]
            obs_sev[k] = 0
            obs_score[k] = 0.0
            obs_e1[k] = silence
            obs_e2[k] = ts
            obs_iv[k] = _iv(s, iv_cfg, iv_est, seen) / 1e9
            k += 1
            ivs = _iv(s, iv_cfg, iv_est, seen)
            if ivs > 0 and now + int(k_iv * ivs) < next_check[sc]:
                next_check[sc] = now + int(k_iv * ivs)
            if now > next_check[sc]:
                nc = _BIG
                for q in range(n_sens):
                    if known[q] == 0 or scope[q] != sc or offline[q] == 1:
                        continue
                    ivq = _iv(q, iv_cfg, iv_est, seen)
                    if ivq <= 0:
                        continue
                    dl = heard[q] + int(k_iv * ivq)
                    if now > dl:
                        offline[q] = 1
                        obs_sensor[k] = q
                        obs_t[k] = heard_w[q]
                        obs_w[k] = W[sc]
                        obs_sev[k] = lvl
                        obs_score[k] = (now - heard[q]) / ivq
                        obs_e1[k] = (now - heard[q]) / 1e9
                        obs_e2[k] = last_ts[q]
                        obs_iv[k] = ivq / 1e9
                        k += 1
                    elif dl < nc:
                        nc = dl
                next_check[sc] = nc
        else:
            sev = 0
            if abs(offset) > skew_thr:
                if skew_since[s] < 0:
                    skew_since[s] = W[sc]
                    skew_n[s] = 0
                    off_ew[s] = offset / 1e9
                skew_n[s] += 1
                off_ew[s] += alpha_off * (offset / 1e9 - off_ew[s])
                if W[sc] - skew_since[s] >= skew_min_dur and skew_n[s] >= skew_min_points:
                    sev = lvl
            else:
                skew_since[s] = -1
                skew_n[s] = 0
            obs_sensor[k] = s
            obs_t[k] = skew_since[s] if sev > 0 else W[sc]
            obs_w[k] = W[sc]
            obs_sev[k] = sev
            obs_score[k] = abs(off_ew[s]) / 3600.0 if sev > 0 else 0.0
            obs_e1[k] = off_ew[s] if sev > 0 else offset / 1e9
            obs_e2[k] = ts
            obs_iv[k] = 0.0
            k += 1
    return k


class _Timing(Stage):
    name: ClassVar[str]
    kind: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {
        "scope": "lifeline",  # or "global": one watermark for the whole city
        "tol_s": 600.0,  # a reading more than 10 min ahead of the watermark does not move it (setting)
        "k": 5.0,  # offline after k reporting intervals of silence (setting)
        "gap_factor": 2.0,
        "quorum_frac": 0.5,
        "default_interval_s": 60.0,  # for sensors not in the city file (their interval is then estimated)
        "skew_threshold_s": 1800.0,
        "skew_min_duration_s": 1800.0,
        "skew_min_points": 3,
        "level": "blue",
        "clear_points": 1,
    }
    _do_offline: ClassVar[bool]

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise TypeError(f"{self.name}: unknown parameters {sorted(unknown)}; known: {sorted(self.defaults)}")
        self.p = {**self.defaults, **params}
        if self.p["scope"] not in ("lifeline", "global"):
            raise ValueError(f"{self.name}: scope must be 'lifeline' or 'global'")
        if not 0 < float(self.p["tol_s"]) < float(self.p["skew_threshold_s"]):
            raise ValueError(f"{self.name}: need 0 < tol_s < skew_threshold_s")
        self.lvl = level_severity(self.p["level"])
        n_scopes = len(LIFELINE_IDS) + 1
        self.scopes = {k: np.zeros(n_scopes, dtype=dt) for k, dt in SCOPE.items()}
        self.sensors = StateArrays(SENSOR)
        self.n_configured = 0
        self.hyst = Hysteresis(1, int(self.p["clear_points"]))

    def _configure(self, frame: Frame) -> None:
        reg = frame.registry
        n = len(reg.sensor_ids)
        self.sensors.ensure(n)
        if self.n_configured >= n:
            return
        scope, iv = self.sensors["scope"], self.sensors["iv_cfg"]
        for s in range(self.n_configured, n):
            if self.p["scope"] == "global":
                scope[s] = 0
            else:
                lid = reg.sensor_lifeline[s]
                scope[s] = LIFELINE_IDS.index(lid) if lid in LIFELINE_IDS else len(LIFELINE_IDS)
            meta = reg.sensor_meta[s]
            iv[s] = int(round(meta.interval_s * NS)) if meta is not None else 0
        self.n_configured = n

    def process(self, frame: Frame) -> list[Detection]:
        rs = frame.reading_sensor
        if not len(rs):
            return []
        self._configure(frame)
        n_sens = len(frame.registry.sensor_ids)
        cap = len(rs) + n_sens
        o_s = np.empty(cap, np.int64)
        o_t = np.empty(cap, np.int64)
        o_w = np.empty(cap, np.int64)
        o_sev = np.empty(cap, np.int8)
        o_sc = np.empty(cap, np.float64)
        o_e1 = np.empty(cap, np.float64)
        o_e2 = np.empty(cap, np.int64)
        o_iv = np.empty(cap, np.float64)
        sc, se = self.scopes, self.sensors
        k = _timing(np.ascontiguousarray(rs, np.int64), np.ascontiguousarray(frame.reading_t, np.int64), n_sens,
                    sc["W"], sc["init"], sc["gap"], sc["n_ahead"], sc["n_behind"], sc["n_known"], sc["next_check"],
                    sc["min_iv"], se["scope"], se["iv_cfg"], se["known"], se["heard"], se["heard_w"], se["last_ts"],
                    se["ahead"], se["behind"], se["iv_est"], se["seen"], se["offline"], se["skew_since"],
                    se["skew_n"], se["off_ew"],
                    int(float(self.p["tol_s"]) * NS), float(self.p["k"]), float(self.p["gap_factor"]),
                    float(self.p["quorum_frac"]), int(float(self.p["default_interval_s"]) * NS),
                    int(float(self.p["skew_threshold_s"]) * NS), int(float(self.p["skew_min_duration_s"]) * NS),
                    int(self.p["skew_min_points"]), 0.1, self._do_offline, self.lvl,
                    o_s, o_t, o_w, o_sev, o_sc, o_e1, o_e2, o_iv)
        o_s, o_t, o_w, o_sev, o_sc, o_e1, o_e2, o_iv = (a[:k] for a in (o_s, o_t, o_w, o_sev, o_sc, o_e1, o_e2, o_iv))
        ev_row, ev_kind, ev_sev, ev_start, peaks = self.hyst.step(o_s, o_t, o_sev, o_sc, with_peaks=True)
        reg = frame.registry
        out = []
        for r, kind, sev, start, pk in zip(ev_row.tolist(), ev_kind.tolist(), ev_sev.tolist(), ev_start.tolist(),
                                           peaks.tolist(), strict=True):
            s = int(o_s[r])
            ts = int(o_w[r])
            state = RAISED if kind == RAISE else (CLEARED if kind == 3 else UPDATED)
            out.append(Detection(
                detector=self.name, kind=self.kind, state=state, lifeline=reg.sensor_lifeline[s],
                district=reg.sensor_district[s], asset=reg.asset_of(s), sensors=(reg.sensor_ids[s],),
                level=severity_to_level(sev), score=float(o_sc[r]), start_ns=int(start), ts_ns=ts,
                end_ns=ts if state == CLEARED else None, metric=None,
                evidence=self._evidence(s, float(o_e1[r]), int(o_e2[r]), pk, state, float(o_iv[r]))))
        return out

    def _evidence(self, s: int, e1: float, e2: int, peak: float, state: str, iv: float) -> dict[str, Any]:
        raise NotImplementedError

    def state_dict(self) -> dict[str, np.ndarray]:
        d = {f"scope/{k}": v.copy() for k, v in self.scopes.items()}
        d.update(self.sensors.state_dict("sensor/"))
        d["n_configured"] = np.array([self.n_configured], dtype=np.int64)
        d.update(hyst_state(self.hyst))
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        for k in SCOPE:
            self.scopes[k] = np.asarray(d[f"scope/{k}"], dtype=SCOPE[k]).copy()
        self.sensors.load_state_dict(d, "sensor/")
        self.n_configured = int(d["n_configured"][0])
        load_hyst(self.hyst, d)

    def state_bytes_per_stream(self) -> int:
        """Bytes per *sensor* (these stages keep no per-metric state)."""
        return self.sensors.bytes_per_slot() + self.hyst.state_bytes_per_slot()

    def watermark(self, lifeline: str | None = None) -> int:
        """The current watermark of a scope (a lifeline id, or None for the global scope)."""
        i = 0 if self.p["scope"] == "global" or lifeline is None else LIFELINE_IDS.index(lifeline)
        return int(self.scopes["W"][i])


class Offline(_Timing):
    """Sensor offline: silent for more than ``k`` reporting intervals while its lifeline goes on.

    On every reading the scope's watermark advances and every known sensor
    of the scope whose silence (on the active clock, see the module
    docstring) exceeds ``k`` x its interval is flagged; the next reading of
    that sensor clears it.  The interval comes from the city file (the
    sensor kind's ``interval_s`` in the lifeline description, or the
    sensor's own ``params.interval_s``); sensors not in the city file get an
    estimate from their own spacing after 3 readings.  Checking is lazy
    (only when the watermark passes the earliest deadline), so the cost per
    reading stays O(1) between checks and O(sensors of the scope) at one.

    A whole-feeder outage is *not* silence: meters that report 0 V are
    reporting (that is :class:`detectors.rules.FeederOutage`).  Sensors that
    never reported since the stage started are not known, so not flagged.
    Kind ``sensor_offline``; start = the watermark when it was last heard.
    Works badly when a scope has a single sensor (nothing else advances the
    watermark: use ``scope="global"``) and for gateways that deliver in
    bursts longer than ``k`` intervals (raise ``k``).

    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.model import Reading
    >>> M = 60 * 10**9
    >>> rs = [Reading("water", "d01", sid, i * M + j, {"pressure": 0.3})
    ...       for i in range(30) for j, sid in enumerate(["a", "b", "c"]) if not (sid == "b" and 10 <= i < 20)]
    >>> pipe = DetectorPipeline([Offline(default_interval_s=60)])
    >>> for d in pipe.process(rs):
    ...     print(d.state, d.kind, d.sensors, d.start_ns // M, d.ts_ns // M, d.evidence["silence_s"])
    raised sensor_offline ('b',) 9 14 300.0
    cleared sensor_offline ('b',) 9 20 660.0
    """

    name = "offline"
    kind = "sensor_offline"
    _do_offline = True

    def _evidence(self, s, e1, e2, peak, state, iv):  # noqa: ANN001
        return {"silence_s": round(e1, 3), ("last_ts_ns" if state != CLEARED else "back_ts_ns"): e2, "interval_s": iv,
                "k": float(self.p["k"]), "peak_score": peak,
                "source": "missing data is a dominant real sensor fault (domain.md §0.2 [V/S]); k x interval is a setting"}


class ClockSkew(_Timing):
    """Clock skew: a sensor whose event times run consistently ahead of (or behind) its lifeline's watermark.

    Per reading, offset = reading's event time - scope watermark (normally
    between minus one interval and 0).  When ``|offset|`` stays above
    ``skew_threshold_s`` (30 min) for ``skew_min_points`` readings and
    ``skew_min_duration_s`` of watermark time, the sensor is skewed; the
    evidence carries the estimated offset (EW mean, seconds).  Xinjiang
    runs Beijing time (UTC+8) and Xinjiang time (UTC+6) side by side, so a
    misconfigured device is off by exactly 2 h (domain.md §0.1 [S]); the
    30-min threshold and durations are settings.

    The duration requirement tells a skewed clock from a backlog flush (a
    gateway delivering an hour of buffered readings within seconds of
    watermark time looks "behind" only briefly).  A backlog replayed at real
    speed is indistinguishable from a skew.  Peers, not the wall clock, are
    the reference, so a replay in arrival order at any speed gives the same
    result; a replay sorted by stored timestamps does not (the skew then
    shows as a silence of the skewed sensor).

    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.model import Reading
    >>> M = 60 * 10**9
    >>> rs = [Reading("water", "d01", sid, i * M + j + (120 * M if sid == "c" and 30 <= i < 100 else 0),
    ...               {"pressure": 0.3}) for i in range(130) for j, sid in enumerate(["a", "b", "c"])]
    >>> pipe = DetectorPipeline([ClockSkew()])
    >>> for d in pipe.process(rs[:100]) + pipe.process(rs[100:]):
    ...     print(d.state, d.sensors, d.start_ns // M, d.ts_ns // M, round(d.evidence["offset_s"] / 3600, 2))
    raised ('c',) 30 60 2.0
    cleared ('c',) 30 102 0.0
    """

    name = "clock_skew"
    kind = "sensor_clock_skew"
    _do_offline = False

    def __init__(self, **params: Any):
        params.setdefault("clear_points", 3)
        super().__init__(**params)

    def _evidence(self, s, e1, e2, peak, state, iv):  # noqa: ANN001
        return {"offset_s": round(e1, 3), "offset_h": round(e1 / 3600.0, 3), "last_ts_ns": e2, "peak_score": peak,
                "threshold_s": float(self.p["skew_threshold_s"]),
                "source": "Beijing (UTC+8) vs Xinjiang (UTC+6) time: devices off by exactly 2 h, domain.md §0.1 [S]; "
                          "the 30-min threshold is a setting"}
