"""Bearing seizure: a bearing's movement loses its linear relation to temperature.

Signature (domain.md §4.3 "Bearing seizure / joint blockage" [S]; thermal
check in §4.2, atlasofengineering case [S]): a free bearing moves by
dL = alpha x L x dT, so displacement tracks deck temperature; a seized
bearing or blocked joint moves much less than that.

Per bearing displacement sensor (city kind ``displacement`` with
``params.role == "bearing"``; a reading carries ``deflection`` and
``temperature``) the rule keeps two exponentially weighted regressions of
displacement on temperature: a long one (``long_h``, the bearing's learned
movement per kelvin) and a short one (``short_h``).  When the temperature has
swung enough within the short window (``min_temp_std`` K) for a slope to mean
anything, and the short slope has fallen below ``ratio`` x the long one, the
point is abnormal.  The long regression does not learn from abnormal points
(River's ``protect_anomaly_detector``), so a seizure lasting days is not
learned as the new normal.  Hysteresis (``min_points``, ``clear_points``)
turns the points into one orange condition per bearing.

Where it works badly: a bearing with little temperature swing (short window
std below ``min_temp_std``) is never judged; the thermal lag between the
sensor's temperature and the deck's effective temperature flattens the
short slope on days of fast weather change (hence ``ratio`` = 0.6, not 0.9).

>>> import numpy as np
>>> from lifewatch.model import Reading
>>> from detectors.pipeline import DetectorPipeline
>>> from lifewatch.city import City, District, Asset, Sensor, Unit
>>> units = {l: Unit(l, l) for l in ("water", "power", "gas", "bridge", "air")}
>>> city = City("t", 6, units, {"d": District("d", "d", 44.3, 86.0)}, {"br": Asset("br", "bridge", "bridge", "d")},
...             {"b-1": Sensor("b-1", "bridge", "displacement", "d", "br", 44.3, 86.0, {"role": "bearing"})})
>>> p = DetectorPipeline([BearingSeizure()], city)
>>> t = np.arange(0, 6 * 86400, 60)
>>> temp = 10 + 6 * np.sin(2 * np.pi * t / 86400)
>>> defl = 0.48 * (temp - 10) + np.random.default_rng(1).normal(0, 0.05, len(t))
>>> defl[t >= 4 * 86400] = defl[np.searchsorted(t, 4 * 86400)]   # seized on day 4
>>> rs = [Reading("bridge", "d", "b-1", int(ti) * 10**9, {"deflection": float(d), "temperature": float(c)})
...       for ti, d, c in zip(t, defl, temp)]
>>> [(d.state, d.kind, d.level.label, round(d.start_ns / 86400e9, 2)) for d in p.process(rs)]
[('raised', 'bearing_seizure', 'orange', 4.54)]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.decide import Hysteresis, level_to_severity
from detectors.events import Detection
from detectors.frame import Frame
from detectors.pipeline import Stage, emit_stream_events
from lifewatch.levels import Level

_FIELDS = ("n", "mt", "md", "ctd", "vt", "smt", "smd", "sctd", "svt", "sn")


class BearingSeizure(Stage):
    name = "bearing_seizure"
    defaults: dict[str, Any] = {
        "long_h": 72.0,  # learned movement per kelvin: a three-day memory
        "short_h": 12.0,  # recent movement per kelvin: half a daily cycle
        "warmup_h": 48.0,  # learn two days before judging
        "ratio": 0.6,  # abnormal when the recent slope is below 60% of the learned one
        "min_temp_std": 1.0,  # K of temperature swing in the short window, else no verdict
        "level": "orange",
        "min_points": 60,  # an hour of 1-minute readings
        "clear_points": 120,
    }

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise TypeError(f"{self.name}: unknown parameters {sorted(unknown)}; known: {sorted(self.defaults)}")
        self.p = {**self.defaults, **params}
        self.sev = level_to_severity(Level.parse(self.p["level"]))
        self.hyst = Hysteresis(int(self.p["min_points"]), int(self.p["clear_points"]))
        self.state: dict[str, np.ndarray] = {k: np.zeros(0) for k in _FIELDS}
        self._slot: dict[int, int] = {}  # sensor slot -> local slot (-1: not a bearing)
        self._restored: dict[str, int] = {}
        self.sensors: list[str] = []

    def _local(self, sensor_slot: int, frame: Frame) -> int | None:
        s = self._slot.get(sensor_slot)
        if s is not None:
            return s
        sid = frame.registry.sensor_ids[sensor_slot]
        if sid in self._restored:  # state loaded from a checkpoint
            s = self._slot[sensor_slot] = self._restored[sid]
            return s
        meta = frame.registry.sensor_meta[sensor_slot]
        if meta is None or meta.kind != "displacement" or meta.params.get("role") != "bearing":
            self._slot[sensor_slot] = -1
            return None
        s = self._slot[sensor_slot] = len(self.sensors)
        self.sensors.append(frame.registry.sensor_ids[sensor_slot])
        for k in _FIELDS:
            self.state[k] = np.append(self.state[k], 0.0)
        return s

    def process(self, frame: Frame) -> list[Detection]:
        reg = frame.registry
        code_d = reg.metric_code("bridge", "deflection")
        code_t = reg.metric_code("bridge", "temperature")
        rows = frame.select([code_d, code_t])
        if not len(rows):
            return []
        st = self.state
        out_rows, out_slots, out_t, out_sev, out_score = [], [], [], [], []
        n_rows = len(frame)
        for row in np.flatnonzero(frame.metric[rows] == code_d).tolist():
            row = int(rows[row])
            s = self._local(int(frame.sensor[row]), frame)
            if s is None or s < 0:
                continue
            x = float(frame.x[row])
            t = int(frame.t[row])
            # a reading's values are adjacent rows of the frame: find its temperature
            temp = None
            for nb in (row - 1, row + 1):
                if 0 <= nb < n_rows and frame.metric[nb] == code_t and frame.sensor[nb] == frame.sensor[row] and frame.t[nb] == t:
                    temp = float(frame.x[nb])
            if temp is None:
                continue
            sev, score = self._step(s, t, temp, x)
            out_rows.append(row)
            out_slots.append(s)
            out_t.append(t)
            out_sev.append(sev)
            out_score.append(score)
        if not out_rows:
            return []
        rows_a = np.array(out_rows, np.int64)
        slots_a = np.array(out_slots, np.int64)
        scores_a = np.array(out_score)
        events = self.hyst.step(slots_a, np.array(out_t, np.int64), np.array(out_sev, np.int8), scores_a, with_peaks=True)
        dets = emit_stream_events(frame, rows_a, events, detector=self.name, kind=self.name,
                                  scores=scores_a, evidence={"source": "domain.md §4.3 bearing seizure: movement << alpha L dT"})
        for d in dets:
            s = self.sensors.index(d.sensors[0])
            d.evidence["learned_mm_per_K"] = round(float(st["ctd"][s] / st["vt"][s]), 4) if st["vt"][s] > 1e-9 else None
            d.evidence["related_sensors"] = [m.id for m in (reg.city.sensors_by_asset.get(d.asset, []) if reg.city else [])]
        return dets

    def _step(self, s: int, t: int, temp: float, d: float) -> tuple[int, float]:
        st, p = self.state, self.p
        # per-point weights from the sampling interval (event time): memory in hours whatever the rate
        a_long = min(1.0, 60.0 / (p["long_h"] * 3600.0))
        a_short = min(1.0, 60.0 / (p["short_h"] * 3600.0))
        # short regression always learns
        self._ew(s, "s", a_short, temp, d)
        st["sn"][s] += 1
        n = st["n"][s]
        sev, score = 0, 0.0
        warm = n * 60.0 >= p["warmup_h"] * 3600.0
        slope_long = st["ctd"][s] / st["vt"][s] if st["vt"][s] > 1e-9 else 0.0
        if warm and abs(slope_long) > 1e-6:
            svt = st["svt"][s]
            if svt >= p["min_temp_std"] ** 2:
                slope_short = st["sctd"][s] / svt
                r = slope_short / slope_long
                score = max(0.0, 1.0 - r)
                if r < p["ratio"]:
                    sev = self.sev
        if sev == 0:  # protect the learned relation from abnormal points
            self._ew(s, "", a_long, temp, d)
            st["n"][s] += 1
        return sev, score

    def _ew(self, s: int, pre: str, a: float, temp: float, d: float) -> None:
        st = self.state
        mt, md, ctd, vt = st[pre + "mt"], st[pre + "md"], st[pre + "ctd"], st[pre + "vt"]
        if (st["n"][s] if pre == "" else st["sn"][s]) == 0:
            mt[s], md[s], ctd[s], vt[s] = temp, d, 0.0, 0.0
            return
        dt, dd = temp - mt[s], d - md[s]
        mt[s] += a * dt
        md[s] += a * dd
        ctd[s] = (1 - a) * (ctd[s] + a * dt * dd)
        vt[s] = (1 - a) * (vt[s] + a * dt * dt)

    def state_dict(self) -> dict[str, np.ndarray]:
        d = {k: v.copy() for k, v in self.state.items()}
        d["sensors"] = np.array(self.sensors, dtype=object)
        for k, v in self.hyst.state_dict().items():
            d["hyst_" + k] = v
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        self.sensors = [str(x) for x in d["sensors"]]
        self.state = {k: np.array(d[k], dtype=float) for k in _FIELDS}
        self.hyst.load_state_dict({k[5:]: v for k, v in d.items() if k.startswith("hyst_")})
        self._slot = {}
        self._restored = {sid: i for i, sid in enumerate(self.sensors)}

    def state_bytes_per_stream(self) -> int:
        return len(_FIELDS) * 8 + self.hyst.state_bytes_per_slot()

    def state_bytes_per_asset(self) -> int:
        """Nothing per asset: all state is per bearing sensor (8 bytes for its slot in the lookup)."""
        return 8
