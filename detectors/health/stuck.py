"""Stuck (flat-line) sensors."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numba
import numpy as np

from detectors.frame import Frame
from detectors.health._sensor import GroupTable, SensorHealthStage, asset_metric_key, metric_mask

# Metrics whose physical floor or ceiling is an ordinary state: clean air at 0 %LEL, no flow, no load.
# A flat line *at* such a bound is not called stuck (so a methane monitor stuck at 0 is missed).
FLOOR_OK = frozenset({
    "gas.ch4_lel", "gas.flow", "water.flow", "power.load", "power.current", "bridge.vibration",
    "air.pm25", "air.pm10", "air.no2", "air.so2", "air.o3", "air.co",
})


@numba.njit(cache=True, nogil=True)
def _stuck(stream, sensor, t, x, lo, hi, min_spread, floor_ok, group,  # noqa: ANN001
           buf, pos, n, spread, nlearn, last, flat, run, g_members, g_flat,
           window, tol_noise, alpha, warmup, common_frac, lvl,
           obs_row, obs_sev, obs_score, obs_range, obs_tol):
    k = 0
    cur_sensor = -1
    cur_t = -1
    cur_sev = 0
    cur_score = 0.0
    cur_row = -1
    cur_range = np.nan
    cur_tol = np.nan
    for i in range(len(x)):
        if sensor[i] != cur_sensor or t[i] != cur_t:
            if cur_row >= 0:
                obs_row[k] = cur_row
                obs_sev[k] = cur_sev
                obs_score[k] = cur_score
                obs_range[k] = cur_range
                obs_tol[k] = cur_tol
                k += 1
            cur_sensor = sensor[i]
            cur_t = t[i]
            cur_sev = 0
            cur_score = 0.0
            cur_row = i
            cur_range = np.nan
            cur_tol = np.nan
        v = x[i]
        if np.isnan(v):
            continue
        s = stream[i]
        g = group[s]
        if n[s] == 0 and g >= 0:
            g_members[g] += 1
        d = abs(v - last[s]) if n[s] > 0 else 0.0
        buf[s, pos[s]] = v
        pos[s] = (pos[s] + 1) % window
        n[s] += 1
        is_flat = False
        rng = np.nan
        tol = np.nan
        if n[s] >= window and nlearn[s] >= warmup:
            mx = buf[s, 0]
            mn = buf[s, 0]
            for j in range(1, window):
                b = buf[s, j]
                if b > mx:
                    mx = b
                if b < mn:
                    mn = b
            rng = mx - mn
            tol = tol_noise * spread[s]
            if spread[s] > min_spread[i] and rng < tol:
                is_flat = True
                if floor_ok[i] and (v - lo[i] <= tol or hi[i] - v <= tol):
                    is_flat = False
        if is_flat and flat[s] == 0 and g >= 0:
            g_flat[g] += 1
        elif not is_flat and flat[s] == 1 and g >= 0:
            g_flat[g] -= 1
        flat[s] = 1 if is_flat else 0
        sev = 0
        if is_flat:
            run[s] += 1
            sev = lvl
            if g >= 0 and g_members[g] >= 2:
                need = max(2, int(math.ceil(common_frac * g_members[g])))
                if g_flat[g] >= need:
                    sev = 0  # common mode: the asset's other streams are flat too (an outage, not a sensor)
        else:
            run[s] = 0
            if n[s] > 1:
                if nlearn[s] >= 10 and d > 5.0 * spread[s]:
                    d = 5.0 * spread[s]  # winsorised: one jump does not inflate the noise scale
                a = max(1.0 / (nlearn[s] + 1.0), alpha)
                spread[s] += a * (d - spread[s])
                nlearn[s] += 1
        last[s] = v
        if sev > cur_sev:
            cur_sev = sev
            cur_score = float(run[s])
            cur_row = i
            cur_range = rng
            cur_tol = tol
    if cur_row >= 0:
        obs_row[k] = cur_row
        obs_sev[k] = cur_sev
        obs_score[k] = cur_score
        obs_range[k] = cur_range
        obs_tol[k] = cur_tol
        k += 1
    return k


class Stuck(SensorHealthStage):
    """Flat line: ``max - min < tolerance`` over the last ``window`` samples of a stream.

    The rule is open-fdd's flat-line check (``bbartling/open-fdd``: max - min
    < tolerance over a rolling **12-sample** window; domain.md §0.2 [V]).  The
    tolerance is relative to the stream's own noise: ``tol_noise`` x its
    typical step ``|x[t] - x[t-1]|`` (a winsorised EW mean learned while the
    stream is not flat), so one parameter fits MPa, volts and %LEL alike.

    Not flagged:

    * a stream that never varied (its learned step is below ``min_spread_frac``
      of the metric's physical range): a genuinely constant signal;
    * a flat line *at* the metric's physical floor or ceiling for metrics
      where that is an ordinary state (``floor_ok``: 0 %LEL, zero flow or
      load, pollutants at 0): a methane monitor stuck at 0 is missed;
    * common mode: when at least half (``common_frac``) of the asset's
      streams of the same metric are flat together (a feeder outage puts
      every meter at 0 V), it is the asset, not the sensor.  The first meter
      to go flat is suppressed because ``min_points`` (3) consecutive flat
      readings are needed and the others follow within one interval.

    One condition per sensor (a frozen meter's voltage and load are one
    fault).  Severity: ``level`` (blue).  Works badly on coarsely quantised
    or very slow signals (a 1-decimal reading that moves less than one step
    per 12 samples looks flat): raise ``min_spread_frac`` or lower
    ``tol_noise`` for those.

    >>> import numpy as np
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.model import Reading
    >>> rng = np.random.default_rng(1)
    >>> x = list(0.30 + 0.002 * rng.standard_normal(200)) + [0.3012] * 20 + list(0.30 + 0.002 * rng.standard_normal(5))
    >>> rs = [Reading("water", "d01", "w-1", i * 60_000_000_000, {"pressure": float(v)}) for i, v in enumerate(x)]
    >>> pipe = DetectorPipeline([Stuck()])
    >>> for d in pipe.process(rs[:150]) + pipe.process(rs[150:]):
    ...     print(d.state, d.kind, d.sensors, d.metric, d.start_ns // 60_000_000_000, d.ts_ns // 60_000_000_000)
    raised sensor_stuck ('w-1',) pressure 211 213
    cleared sensor_stuck ('w-1',) pressure 211 222
    """

    name = "stuck"
    kind = "sensor_stuck"
    source = "open-fdd flat-line rule (max - min < tolerance over 12 samples), domain.md §0.2 [V]"
    defaults: ClassVar[dict[str, Any]] = {
        "window": 12,  # open-fdd rolling window [V]
        "tol_noise": 0.1,  # tolerance = 0.1 x typical step (setting)
        "alpha": 0.01,  # EW rate of the typical step
        "warmup": 60,  # learned steps before the rule is armed
        "min_spread_frac": 1e-6,  # typical step below this share of the metric range: constant signal
        "common_frac": 0.5,
        "floor_ok": FLOOR_OK,
        "metrics": None,  # None: every metric; else a set of "lifeline.metric"
        "level": "blue",
        "min_points": 3,
        "clear_points": 3,
    }
    STREAM: ClassVar[dict] = {}

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.groups = GroupTable(asset_metric_key)
        from detectors.health._kit import StateArrays

        self.group_state = StateArrays({"members": ((), np.int64, 0), "flat": ((), np.int64, 0)})

    def stream_spec(self) -> dict:
        w = int(self.p["window"])
        if w < 2:
            raise ValueError("stuck: window must be >= 2")
        return {"buf": ((w,), np.float64, 0.0), "pos": ((), np.int64, 0), "n": ((), np.int64, 0),
                "spread": ((), np.float64, 0.0), "nlearn": ((), np.int64, 0), "last": ((), np.float64, 0.0),
                "flat": ((), np.int8, 0), "run": ((), np.int64, 0)}

    def _select(self, frame: Frame) -> np.ndarray:
        if self.p["metrics"] is None:
            return np.arange(len(frame), dtype=np.int64)
        mask = metric_mask(frame.registry, frozenset(self.p["metrics"]))
        return np.flatnonzero(mask[frame.metric])

    def _walk(self, frame: Frame, rows: np.ndarray):
        reg = frame.registry
        self.groups.sync(frame, rows)
        self.group_state.ensure(len(self.groups.keys) + 1)
        mc = frame.metric[rows]
        lo, hi = self.metrics.lo[mc], self.metrics.hi[mc]
        width = hi - lo
        min_spread = np.where(np.isfinite(width), float(self.p["min_spread_frac"]) * width, 0.0)
        floor_ok = metric_mask(reg, frozenset(self.p["floor_ok"]))[mc]
        n = len(rows)
        obs_row = np.empty(n, np.int64)
        obs_sev = np.empty(n, np.int8)
        obs_score = np.empty(n, np.float64)
        obs_range = np.empty(n, np.float64)
        obs_tol = np.empty(n, np.float64)
        st, gs = self.streams, self.group_state
        k = _stuck(frame.stream[rows], frame.sensor[rows], frame.t[rows], frame.x[rows], lo, hi, min_spread, floor_ok,
                   self.groups.stream_group, st["buf"], st["pos"], st["n"], st["spread"], st["nlearn"], st["last"],
                   st["flat"], st["run"], gs["members"], gs["flat"], int(self.p["window"]), float(self.p["tol_noise"]),
                   float(self.p["alpha"]), int(self.p["warmup"]), float(self.p["common_frac"]), self.sev_level,
                   obs_row, obs_sev, obs_score, obs_range, obs_tol)
        return obs_row[:k], obs_sev[:k], obs_score[:k], {"range": obs_range[:k], "tol": obs_tol[:k]}

    def _evidence(self, extra, i, frame, row):  # noqa: ANN001
        out: dict[str, Any] = {"window": int(self.p["window"])}
        if np.isfinite(extra["range"][i]):
            out["window_range"] = float(extra["range"][i])
            out["tolerance"] = float(extra["tol"][i])
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        d = super().state_dict()
        d.update(self.groups.state_dict())
        d.update(self.group_state.state_dict("group/"))
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        super().load_state_dict(d)
        self.groups.load_state_dict(d)
        self.group_state.load_state_dict(d, "group/")
