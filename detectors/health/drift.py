"""Drift against neighbours: a sensor moving away from the other sensors of its asset."""

from __future__ import annotations

from typing import Any, ClassVar

import numba
import numpy as np

from detectors.frame import Frame, Registry
from detectors.health._sensor import GroupTable, SensorHealthStage, metric_mask

# Metrics with comparable neighbours in the demo city (same DMA / feeder / segment / bridge, or city-wide for air).
DRIFT_METRICS = frozenset({
    "water.pressure", "power.voltage", "gas.pressure", "bridge.temperature",
    "air.pm25", "air.pm10", "air.no2", "air.so2", "air.o3", "air.co",
})
CITY_WIDE = frozenset({"air"})  # one station per district in the demo city: compare with the whole city


@numba.njit(cache=True, nogil=True)
def _median(buf, n):  # noqa: ANN001
    for i in range(1, n):  # insertion sort: n is small (the members of one asset)
        v = buf[i]
        j = i - 1
        while j >= 0 and buf[j] > v:
            buf[j + 1] = buf[j]
            j -= 1
        buf[j + 1] = v
    if n % 2 == 1:
        return buf[n // 2]
    return 0.5 * (buf[n // 2 - 1] + buf[n // 2])


@numba.njit(cache=True, nogil=True)
def _drift(stream, sensor, t, x, group, indptr, members,  # noqa: ANN001
           latest, latest_t, pn, pmq, pms, pvq, pcov, n, var_e, sd_d, e_prev, e_prev2, e_prev3, e_slow, offset, m_z, zrun, last,
           e_ref, exc_since,
           min_nb, fresh, warmup, alpha_reg, alpha_e, a_z, zclip, jump_k, guard_k, thr, protect_z, ret_k, max_exc,
           lvl, obs_row, obs_sev, obs_score, obs_u, obs_pred, obs_e, obs_nb):
    k = 0
    npair = pn.shape[1]
    preds = np.empty(npair)
    zs = np.empty(npair)
    cur_sensor = -1
    cur_t = -1
    cur_row = -1
    cur_sev = 0
    cur_score = 0.0
    cur_u = np.nan
    cur_pred = np.nan
    cur_e = np.nan
    cur_nb = 0
    for i in range(len(x) + 1):
        if i == len(x) or sensor[i] != cur_sensor or t[i] != cur_t:
            if cur_row >= 0:
                obs_row[k] = cur_row
                obs_sev[k] = cur_sev
                obs_score[k] = cur_score
                obs_u[k] = cur_u
                obs_pred[k] = cur_pred
                obs_e[k] = cur_e
                obs_nb[k] = cur_nb
                k += 1
            if i == len(x):
                break
            cur_sensor = sensor[i]
            cur_t = t[i]
            cur_row = i
            cur_sev = 0
            cur_score = 0.0
            cur_u = np.nan
            cur_pred = np.nan
            cur_e = np.nan
            cur_nb = 0
        v = x[i]
        s = stream[i]
        g = group[s]
        if np.isnan(v) or g < 0:
            continue
        zrun[s] = zrun[s] + 1 if (n[s] > 0 and v == last[s]) else 0
        last[s] = v
        latest[s] = v
        latest_t[s] = t[i]
        if zrun[s] >= 3:
            continue  # a flat line is the stuck check's finding
        # pairwise predictions of this stream from each fresh neighbour (the first npair members of the asset)
        m = 0
        mz = 0
        warm = n[s] >= warmup
        xs = v - offset[s]
        for j in range(min(npair, indptr[g + 1] - indptr[g])):
            q = members[indptr[g] + j]
            if q == s or latest_t[q] == 0 or abs(t[i] - latest_t[q]) > fresh:
                continue
            xq = latest[q]
            if pn[s, j] >= 10 and pvq[s, j] > 0.0:
                sdq = np.sqrt(pvq[s, j])
                zs[mz] = (xq - pmq[s, j]) / sdq
                mz += 1
                preds[m] = pms[s, j] + pcov[s, j] / pvq[s, j] * (xq - pmq[s, j])
                m += 1
            if not warm or (abs(m_z[s]) <= protect_z and exc_since[s] == 0):
                a = max(1.0 / (pn[s, j] + 1.0), alpha_reg)
                dq = xq - pmq[s, j]
                ds = xs - pms[s, j]
                pmq[s, j] += a * dq
                pms[s, j] += a * ds
                pvq[s, j] = (1.0 - a) * (pvq[s, j] + a * dq * dq)
                pcov[s, j] = (1.0 - a) * (pcov[s, j] + a * dq * ds)
                pn[s, j] += 1
        if m < min_nb:
            continue
        pred = _median(preds, m)
        u = _median(zs, mz)
        e = xs - pred
        protect = False
        if warm:
            if abs(u) > guard_k:
                continue  # the neighbours themselves are far from normal (outage, low pressure): not this sensor
            sd_e = np.sqrt(var_e[s])
            if sd_e <= 0.0:
                sd_e = 1e-12
            if exc_since[s] != 0:
                if abs(e - e_ref[s]) < ret_k * sd_e:
                    exc_since[s] = 0  # back where it was before the step: judge again from the next reading
                    e_prev[s] = e
                    e_prev2[s] = e
                    e_prev3[s] = e
                    continue
                if t[i] - exc_since[s] > max_exc:
                    offset[s] += e - e_ref[s]  # a lasting step (re-installed, re-calibrated): new baseline
                    e = e_ref[s]
                    exc_since[s] = 0
                    e_prev[s] = e
                    e_prev2[s] = e
                    e_prev3[s] = e
                else:
                    continue
            elif sd_d[s] > 0.0 and (abs(e - e_prev[s]) > jump_k * sd_d[s] or abs(e - e_prev3[s]) > jump_k * sd_e):
                # a step within three readings (a burst next to it, a spike) is not a drift: wait for it to end,
                # comparing with the residual's slow level from before it
                exc_since[s] = t[i]
                e_ref[s] = e_slow[s]
                continue
            z = e / sd_e
            if z > zclip:
                z = zclip
            elif z < -zclip:
                z = -zclip
            m_z[s] += a_z * (z - m_z[s])
            sev = lvl if abs(m_z[s]) > thr else 0
            if sev > cur_sev or cur_nb == 0:
                cur_sev = max(cur_sev, sev)
                cur_score = abs(m_z[s])
                cur_row = i if sev > 0 else cur_row
                cur_u = u
                cur_pred = pred + offset[s]
                cur_e = e
                cur_nb = m
            protect = abs(m_z[s]) > protect_z
        d = abs(e - e_prev[s])
        e_prev3[s] = e_prev2[s]
        e_prev2[s] = e_prev[s]
        e_prev[s] = e
        e_slow[s] += (1.0 / 30.0 if n[s] >= 30 else 1.0 / (n[s] + 1.0)) * (e - e_slow[s])
        if protect:
            continue
        if n[s] >= 10:
            ae = max(1.0 / (n[s] - 9.0), alpha_e)
            ec = e * e
            if n[s] >= 100 and ec > 9.0 * var_e[s]:
                ec = 9.0 * var_e[s]  # winsorised at 3 sd
            var_e[s] += ae * (ec - var_e[s])
            if sd_d[s] > 0.0 and d > 4.0 * sd_d[s]:
                d = 4.0 * sd_d[s]
            sd_d[s] += ae * (d - sd_d[s])
        n[s] += 1
    return k


def group_key(reg: Registry, sensor: int, metric: int) -> str | None:
    """Neighbours: same asset and metric; for air (one station per district) every station in the city."""
    name = reg.metric_names[metric]
    lid = name.split(".", 1)[0]
    if lid in CITY_WIDE:
        return f"city\x1f{name}"
    asset = reg.asset_of(sensor)
    return None if asset is None else f"{asset}\x1f{name}"


class Drift(SensorHealthStage):
    """A sensor drifting away from its neighbours, not fooled by changes they all share.

    For each stream of a watched metric, ``u`` = median of the latest values
    of the *other* streams of the same asset and metric (fresh within
    ``fresh_s``; at least ``min_neighbours``).  An EW least-squares fit
    ``x ~ a + b u`` (memory ``1/alpha_reg`` samples, about 2 days at one a
    minute) predicts the sensor from its neighbours; the residual, normalised
    by its learned spread, is clipped at ``zclip`` and averaged with an EW
    mean (``a_z``, about an hour).  ``|mean| > threshold`` is a drift.  A
    drift grows slowly, so EW mean on the residual is the test (domain.md
    §0.2: drift x + b k (t - t0), EPyT-Flow [V]).

    Not a drift:

    * common mode: everything the neighbours share moves ``u`` and the fit
      follows it; when ``u`` itself is beyond ``guard_k`` of its usual spread
      (a feeder at 0 V, a DMA in low pressure) the stream is not judged;
    * a step: a jump of the residual within three readings larger than
      ``jump_k`` x its spread (a burst next to the sensor, a spike) starts an
      *excursion*: no judging and no learning until the residual is back
      within ``return_k`` sd of its slow level from before; a step that
      lasts longer than ``max_step_s`` (12 h) becomes the new baseline.  So
      this check answers "drift", not "bias";
    * a flat line (3 identical values): that is :class:`Stuck`'s finding.

    The fit and the spread stop learning while the mean residual is above
    ``protect_z`` (River's ``protect_anomaly_detector`` idea).  Works badly where neighbours do not share a common driver
    (bridge strain gauges with different thermal responses, meters' loads),
    so only ``metrics`` (default: pressures, LV voltage, bridge temperature,
    air pollutants city-wide) are watched, and with two sensors of a kind
    per asset it cannot tell which one drifts (``min_neighbours`` = 2).
    Warm-up counts samples (``warmup`` 1000: 17 h at one a minute, 3.5 days
    for 5-minute air stations).

    >>> import numpy as np
    >>> from detectors.pipeline import DetectorPipeline
    >>> from lifewatch.city import parse_city
    >>> from lifewatch.model import Reading
    >>> city = parse_city({"name": "t", "units": {l: {"id": l, "name": l} for l in
    ...     ("water", "power", "gas", "bridge", "air")}, "districts": [{"id": "d", "name": "d", "lat": 0, "lon": 0}],
    ...     "assets": [{"id": "dma", "lifeline": "water", "type": "dma", "district": "d"}],
    ...     "sensors": [{"id": f"w{i}", "lifeline": "water", "kind": "pressure", "district": "d", "asset": "dma",
    ...                  "lat": 0, "lon": 0} for i in range(4)]})
    >>> rng = np.random.default_rng(0)
    >>> M = 60 * 10**9
    >>> def day(i): return 0.35 + 0.05 * np.sin(2 * np.pi * i / 1440)
    >>> rs = [Reading("water", "d", f"w{j}", i * M + j, {"pressure": float(day(i) * (1 + 0.1 * j)
    ...       + 0.002 * rng.standard_normal() + (0.0002 * (i - 2000) if j == 2 and i > 2000 else 0))})
    ...       for i in range(2400) for j in range(4)]
    >>> pipe = DetectorPipeline([Drift()], city)
    >>> for d in pipe.process(rs[:5000]) + pipe.process(rs[5000:]):
    ...     print(d.state, d.sensors, d.start_ns // M, round(d.evidence["residual"], 4))
    raised ('w2',) 2144 0.0301
    """

    name = "drift"
    kind = "sensor_drift"
    source = "drift fault x + b k (t - t0) (EPyT-Flow, domain.md §0.2 [V]); EW mean of the neighbour residual"
    defaults: ClassVar[dict[str, Any]] = {
        "metrics": DRIFT_METRICS,
        "min_neighbours": 2,
        "max_neighbours": 12,  # pairwise fits with the first 12 other sensors of the asset
        "fresh_s": 600.0,
        "warmup": 1000,
        "alpha_reg": 1.0 / 2880.0,
        "alpha_e": 0.005,
        "a_z": 1.0 / 60.0,
        "zclip": 8.0,
        "jump_k": 6.0,
        "guard_k": 4.0,
        "threshold": 5.5,  # a setting: 4 gave ~0.2 false alarms per city-day on the simulator
        "protect_z": 1.0,  # no learning while the mean residual is above this
        "return_k": 3.0,  # a step has ended when the residual is back within 3 sd of its level before
        "max_step_s": 43200.0,  # a step lasting longer than 12 h becomes the new baseline
        "level": "blue",
        "min_points": 3,
        "clear_points": 30,
    }
    STREAM: ClassVar[dict] = {}

    def stream_spec(self) -> dict:
        p = int(self.p["max_neighbours"])
        spec = {k: ((), np.float64, 0.0) for k in ("latest", "var_e", "sd_d", "e_prev", "e_prev2", "e_prev3", "e_slow",
                                                    "offset",
                                                    "m_z", "last", "e_ref")}
        spec.update({k: ((), np.int64, 0) for k in ("latest_t", "n", "zrun", "exc_since")})
        spec.update({k: ((p,), np.float64, 0.0) for k in ("pmq", "pms", "pvq", "pcov")})
        spec["pn"] = ((p,), np.int64, 0)
        return spec

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.groups = GroupTable(group_key)
        self._csr_version = -1
        self._csr = (np.zeros(1, np.int64), np.zeros(0, np.int64))

    def _select(self, frame: Frame) -> np.ndarray:
        return np.flatnonzero(metric_mask(frame.registry, frozenset(self.p["metrics"]))[frame.metric])

    def _walk(self, frame: Frame, rows: np.ndarray):
        self.groups.sync(frame, rows)
        if self._csr_version != self.groups.version:
            self._csr = self.groups.members()
            self._csr_version = self.groups.version
            if len(self._csr[1]):
                self.streams.ensure(int(self._csr[1].max()) + 1)
        indptr, members = self._csr
        nr = len(rows)
        obs = {"row": np.empty(nr, np.int64), "sev": np.empty(nr, np.int8), "score": np.empty(nr, np.float64),
               "u": np.empty(nr, np.float64), "pred": np.empty(nr, np.float64), "e": np.empty(nr, np.float64),
               "nb": np.empty(nr, np.int64)}
        st = self.streams
        k = _drift(frame.stream[rows], frame.sensor[rows], frame.t[rows], frame.x[rows], self.groups.stream_group,
                   indptr, members, st["latest"], st["latest_t"], st["pn"], st["pmq"], st["pms"], st["pvq"], st["pcov"],
                   st["n"], st["var_e"], st["sd_d"], st["e_prev"], st["e_prev2"], st["e_prev3"], st["e_slow"], st["offset"], st["m_z"],
                   st["zrun"], st["last"],
                   st["e_ref"], st["exc_since"],
                   int(self.p["min_neighbours"]), int(float(self.p["fresh_s"]) * 1e9), int(self.p["warmup"]),
                   float(self.p["alpha_reg"]), float(self.p["alpha_e"]), float(self.p["a_z"]), float(self.p["zclip"]),
                   float(self.p["jump_k"]), float(self.p["guard_k"]), float(self.p["threshold"]),
                   float(self.p["protect_z"]), float(self.p["return_k"]), int(float(self.p["max_step_s"]) * 1e9),
                   self.sev_level,
                   obs["row"], obs["sev"], obs["score"], obs["u"], obs["pred"], obs["e"], obs["nb"])
        extra = {key: a[:k] for key, a in obs.items() if key not in ("row", "sev", "score")}
        return obs["row"][:k], obs["sev"][:k], obs["score"][:k], extra

    def _evidence(self, extra, i, frame, row):  # noqa: ANN001
        return {"neighbour_median": float(extra["u"][i]), "expected": float(extra["pred"][i]),
                "residual": float(extra["e"][i]), "neighbours": int(extra["nb"][i]),
                "threshold": float(self.p["threshold"])}

    def state_dict(self) -> dict[str, np.ndarray]:
        d = super().state_dict()
        d.update(self.groups.state_dict())
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        super().load_state_dict(d)
        self.groups.load_state_dict(d)
        self._csr_version = -1
