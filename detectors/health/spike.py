"""Spikes: single-point outliers relative to their neighbours."""

from __future__ import annotations

from typing import Any, ClassVar

import numba
import numpy as np

from detectors.frame import Frame
from detectors.health._kit import NS, StateArrays
from detectors.health._sensor import GroupTable, SensorHealthStage, metric_mask


@numba.njit(cache=True, nogil=True)
def _spike(stream, sensor, t, x, group,  # noqa: ANN001
           p1, p2, t1, n, spread, nlearn, zrun,
           j_t1, j_s1, j_t2, j_s2,
           last_spike, sp_val, sp_t, sp_before, sp_after, sp_score,
           k_row, ret_frac, alpha, warmup, clip, common_window, hold, lvl,
           obs_row, obs_sev, obs_score, obs_val, obs_t, obs_before, obs_after):
    k = 0
    cur_sensor = -1
    cur_t = -1
    cur_row = -1
    for i in range(len(x) + 1):
        if i == len(x) or sensor[i] != cur_sensor or t[i] != cur_t:
            if cur_row >= 0:
                ls = last_spike[cur_sensor]
                sev = 0
                if ls >= 0 and cur_t - ls <= hold:
                    sev = lvl
                obs_row[k] = cur_row
                obs_sev[k] = sev
                obs_score[k] = sp_score[cur_sensor] if sev > 0 else 0.0
                obs_val[k] = sp_val[cur_sensor]
                obs_t[k] = sp_t[cur_sensor]
                obs_before[k] = sp_before[cur_sensor]
                obs_after[k] = sp_after[cur_sensor]
                k += 1
            if i == len(x):
                break
            cur_sensor = sensor[i]
            cur_t = t[i]
            cur_row = i
        v = x[i]
        if np.isnan(v):
            continue
        s = stream[i]
        g = group[s]
        k_sigma = k_row[i]
        warm = nlearn[s] >= warmup
        sc = spread[s]
        if n[s] >= 2 and warm and sc > 0.0:
            d1 = p1[s] - p2[s]
            d2 = v - p1[s]
            m = min(abs(d1), abs(d2))
            if d1 * d2 < 0.0 and m > k_sigma * sc and abs(v - p2[s]) < ret_frac * m:
                # p1 was a one-point excursion that came back: a spike, unless peers jumped with it
                win = max(common_window, 2 * (t[i] - t1[s]))
                common = False
                me = sensor[i]
                if g >= 0:
                    if j_s1[g] >= 0 and j_s1[g] != me and abs(j_t1[g] - t1[s]) <= win:
                        common = True
                    if j_s2[g] >= 0 and j_s2[g] != me and abs(j_t2[g] - t1[s]) <= win:
                        common = True
                if not common:
                    sn = sensor[i]
                    last_spike[sn] = t1[s]
                    sp_val[sn] = p1[s]
                    sp_t[sn] = t1[s]
                    sp_before[sn] = p2[s]
                    sp_after[sn] = v
                    sp_score[sn] = m / sc
                    cur_row = i
        if n[s] >= 1:
            d = abs(v - p1[s])
            if g >= 0 and warm and sc > 0.0 and d > k_sigma * sc:
                if j_s1[g] == sensor[i]:  # jump records are per sensor: a sensor's own metrics are not peers
                    j_t1[g] = t[i]
                else:
                    j_t2[g] = j_t1[g]
                    j_s2[g] = j_s1[g]
                    j_t1[g] = t[i]
                    j_s1[g] = sensor[i]
            zrun[s] = zrun[s] + 1 if d == 0.0 else 0
            if zrun[s] < 3:  # a run of identical values (a stuck sensor) must not shrink the scale
                if nlearn[s] >= 10 and d > clip * sc:
                    d = clip * sc
                a = max(1.0 / (nlearn[s] + 1.0), alpha)
                spread[s] += a * (d - spread[s])
                nlearn[s] += 1
        p2[s] = p1[s]
        p1[s] = v
        t1[s] = t[i]
        n[s] += 1
    return k


def asset_key(reg, sensor: int, metric: int) -> str | None:  # noqa: ANN001
    """Common-mode group for spikes: the whole asset (a lorry shows in strain *and* deflection)."""
    return reg.asset_of(sensor)


class Spike(SensorHealthStage):
    """Single-point outliers: a value that jumps away from both neighbours and comes back.

    Hampel-style on differences: with the stream's robust step scale ``s``
    (winsorised EW mean of ``|x[t] - x[t-1]|``), the point ``x[t-1]`` is a
    spike when both steps around it exceed ``k_sigma`` x s in opposite
    directions and ``x[t]`` is back within ``ret_frac`` of the smaller step
    of ``x[t-2]``.  The decision needs the next point, so it comes one
    reading late; the evidence carries the spike's own value and time.
    Outliers are a dominant real error type (domain.md §0.2 [S]).

    Common mode is not a sensor fault: when another stream of the same
    asset (any metric) jumped within ``common_window_s`` (or two sampling
    intervals) of the spike, it is physics (a voltage sag on the whole
    feeder, a heavy lorry on the bridge) and is left to the incident rules.

    One condition per sensor: it stays raised while spikes keep coming and
    clears once ``hold_s`` of event time (default 3 h) passes without one,
    i.e. when the values have returned and stayed.  Works badly on streams
    whose normal steps are heavy-tailed (a spike must beat ``k_sigma`` x the
    typical step: ``k_sigma_metrics`` raises it for meter loads), misses
    two-point outliers, and misses a fault spike that
    coincides with a physical jump elsewhere on the same asset.

    >>> import numpy as np
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.model import Reading
    >>> rng = np.random.default_rng(2)
    >>> x = 220 + rng.standard_normal(300)
    >>> x[200] = 300.0
    >>> rs = [Reading("power", "d01", "m-1", i * 60 * 10**9, {"voltage": float(v)}) for i, v in enumerate(x)]
    >>> pipe = DetectorPipeline([Spike(hold_s=1800)])
    >>> for d in pipe.process(rs):
    ...     print(d.state, d.sensors, d.start_ns // (60 * 10**9), d.ts_ns // (60 * 10**9), d.evidence["spike_value"])
    raised ('m-1',) 201 201 300.0
    cleared ('m-1',) 201 231 300.0
    """

    name = "spike"
    kind = "sensor_spike"
    source = "Hampel-style one-point outlier on first differences; outliers: domain.md §0.2 [S]"
    defaults: ClassVar[dict[str, Any]] = {
        "k_sigma": 12.0,  # both steps > 12 x the typical step (setting)
        # household load is lognormal-like (appliances switching): a x3 jump within a minute is ordinary
        "k_sigma_metrics": {"power.load": 25.0, "power.current": 25.0},
        "ret_frac": 0.5,  # back within half the smaller step
        "alpha": 0.01,
        "warmup": 60,
        "clip": 4.0,  # winsorise learned steps at 4 x the scale
        "common_window_s": 150.0,
        "hold_s": 10800.0,  # one condition per spiky episode (setting)
        "metrics": None,
        "level": "blue",
    }
    STREAM: ClassVar[dict] = {"p1": ((), np.float64, 0.0), "p2": ((), np.float64, 0.0), "t1": ((), np.int64, 0),
                              "n": ((), np.int64, 0), "spread": ((), np.float64, 0.0), "nlearn": ((), np.int64, 0),
                              "zrun": ((), np.int64, 0)}
    SENSOR: ClassVar[dict] = {"last_spike": ((), np.int64, -1), "val": ((), np.float64, np.nan),
                              "t": ((), np.int64, 0), "before": ((), np.float64, np.nan),
                              "after": ((), np.float64, np.nan), "score": ((), np.float64, 0.0)}

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.groups = GroupTable(asset_key)
        self.group_state = StateArrays({"t1": ((), np.int64, 0), "s1": ((), np.int64, -1),
                                        "t2": ((), np.int64, 0), "s2": ((), np.int64, -1)})

    def _select(self, frame: Frame) -> np.ndarray:
        if self.p["metrics"] is None:
            return np.arange(len(frame), dtype=np.int64)
        return np.flatnonzero(metric_mask(frame.registry, frozenset(self.p["metrics"]))[frame.metric])

    def _walk(self, frame: Frame, rows: np.ndarray):
        self.groups.sync(frame, rows)
        self.group_state.ensure(len(self.groups.keys) + 1)
        n = len(rows)
        obs_row = np.empty(n, np.int64)
        obs_sev = np.empty(n, np.int8)
        obs_score = np.empty(n, np.float64)
        ev = {k: np.empty(n, np.float64) for k in ("val", "before", "after")}
        ev_t = np.empty(n, np.int64)
        st, gs, ss = self.streams, self.group_state, self.sensors
        k = _spike(frame.stream[rows], frame.sensor[rows], frame.t[rows], frame.x[rows], self.groups.stream_group,
                   st["p1"], st["p2"], st["t1"], st["n"], st["spread"], st["nlearn"], st["zrun"],
                   gs["t1"], gs["s1"], gs["t2"], gs["s2"],
                   ss["last_spike"], ss["val"], ss["t"], ss["before"], ss["after"], ss["score"],
                   self._k_rows(frame, rows), float(self.p["ret_frac"]), float(self.p["alpha"]), int(self.p["warmup"]),
                   float(self.p["clip"]), int(float(self.p["common_window_s"]) * NS), int(float(self.p["hold_s"]) * NS),
                   self.sev_level, obs_row, obs_sev, obs_score, ev["val"], ev_t, ev["before"], ev["after"])
        extra = {key: a[:k] for key, a in ev.items()}
        extra["t"] = ev_t[:k]
        return obs_row[:k], obs_sev[:k], obs_score[:k], extra

    def _k_rows(self, frame: Frame, rows: np.ndarray) -> np.ndarray:
        names = frame.registry.metric_names
        if getattr(self, "_k_table", None) is None or len(self._k_table) != len(names):
            over = dict(self.p["k_sigma_metrics"] or {})
            self._k_table = np.array([float(over.get(n, self.p["k_sigma"])) for n in names])
        return self._k_table[frame.metric[rows]]

    def _evidence(self, extra, i, frame, row):  # noqa: ANN001
        return {"spike_value": float(extra["val"][i]), "spike_ts_ns": int(extra["t"][i]),
                "before": float(extra["before"][i]), "after": float(extra["after"][i]),
                "k_sigma": float(self._k_table[int(frame.metric[row])])}
