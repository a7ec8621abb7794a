"""Standard thresholds as a pipeline stage: four warning levels from the lifeline descriptions.

:class:`ThresholdStage` reads the ``thresholds:`` of all five lifeline YAML
files (``lifewatch/lifelines/*.yaml``), applies configuration overrides, and
for every frame row of a metric with thresholds computes a severity (0 none,
1 blue IV, 2 yellow III, 3 orange II, 4 red I) with numpy, then runs a
:class:`~detectors.decide.Hysteresis` per (stream, threshold) and emits
:class:`~detectors.events.Detection` events (``detector="threshold"``,
``kind`` = the threshold's name).

Ops (the ``op:`` of a threshold; boundaries in ``levels``, by level name):

===============  =============================================================
``<`` / ``<=``   value below (at or below) the level's number
``>`` / ``>=``   value above (at or above) the level's number
``band_pct``     value outside nominal x (1 + [lo, hi] / 100); at the limit is inside
``band_abs``     value outside nominal + [lo, hi]
``design_share`` \\|value\\| at or above share x the design value (bridge: sensor
                 params, then asset params from the city file, then
                 ``params.default_design``; the name is ``params.design_param``)
``ieee1159``     IEEE 1159 category (by pu magnitude and run duration,
                 :mod:`detectors.standards.ieee1159`) listed under the level
``aqi``          HJ 633 AQI of a station's reading (max IAQI over its
                 pollutants, :mod:`detectors.standards.aqi`) at or above the number
===============  =============================================================

Nominal values: the sensor's ``params.nominal_<metric>``, else the
threshold's ``nominal``, else the sensor kind's ``nominal``.  Rule sets: a
threshold's ``rule_set`` names its own levels; ``rule_sets`` holds
alternatives (partial specs merged over it).  The selected set is the
override's ``rule_set``, unless the sensor's (or its asset's) params say
otherwise: ``threshold_rule_sets: {methane_lel: utility_tunnel}``.

Overrides (the constructor's ``overrides``, e.g. from a config file) are
keyed ``"<lifeline>.<threshold name>"`` and merged into the YAML spec:
``levels``, ``level_sources``, ``params`` and ``rule_sets`` key by key (a
``None`` value removes a key), everything else replaced; ``enabled: false``
drops a threshold; a name that is not in the YAML defines a new threshold
(it then needs ``metric``, ``op``, ``levels`` and ``source``).  Hysteresis
settings are params: ``min_points`` (default 1) and ``clear_points``
(default 3).

Evidence of every detection: ``value``, ``crossed`` (the levels whose
boundary the value is beyond, with the boundaries in the metric's unit),
``limits`` (all levels), ``nominal`` / ``design`` where used, ``source`` and
``level_source`` (the standard's text), ``rule_set``, ``overrides`` (which
keys a configuration changed) and ``peak`` (the worst value of the
condition so far, as ``peak_is`` says); IEEE 1159 adds the category and the
duration bounds, AQI the IAQI of every pollutant and the primary pollutants.

Example: a network-end pressure flapping around 0.14 MPa gives one
condition, not one per crossing (``clear_points`` = 3 normal readings):

>>> from lifewatch.model import Reading
>>> from detectors.pipeline import DetectorPipeline
>>> p = DetectorPipeline([ThresholdStage()])
>>> x = [0.20, 0.139, 0.141, 0.138, 0.142, 0.137, 0.15, 0.16, 0.17, 0.18]
>>> rs = [Reading("water", "d01", "w-1", i * 60 * 10**9, {"pressure": v}) for i, v in enumerate(x)]
>>> for d in p.process(rs):
...     print(d.state, d.kind, d.level.label, d.ts_ns // 10**9, d.evidence["value"], d.evidence["crossed"], d.evidence["peak"])
raised end_pressure_low yellow 60 0.139 {'yellow': 0.14} 0.139
cleared end_pressure_low yellow 480 0.17 {} 0.137

A feeder outage seen by a 60-s meter: IEEE 1159 escalates with the duration
it can prove (lower bound); the GB/T 12325 deviation waits for its three
readings (``min_points`` in power.yaml), then raises red from the first:

>>> p = DetectorPipeline([ThresholdStage()])
>>> rs = [Reading("power", "d01", "m-1", i * 60 * 10**9, {"voltage": v})
...       for i, v in enumerate([221.0, 0.0, 0.0, 0.0, 0.0, 222.0])]
>>> for d in p.process(rs):
...     print(d.state, d.kind, d.level.label, d.ts_ns // 10**9, d.evidence.get("class"), d.evidence.get("duration_min_s"))
raised ieee1159_lv yellow 60 momentary_interruption 0.0
updated ieee1159_lv orange 120 temporary_interruption 60.0
raised voltage_deviation_lv red 180 None None
updated ieee1159_lv red 180 sustained_interruption 120.0
cleared ieee1159_lv red 300 None None

Where it works badly: thresholds judge readings, while GB/T 12325 and
EN 50160 judge 10-min mean RMS values (``min_points`` = 3 only approximates
that persistence); IEEE 1159 durations are only as fine as the sampling interval
(a 30-s sag seen by a 60-s meter is "instantaneous" with an upper bound of
60 s); bridge design shares count thermal strain and offsets as load; the
AQI is computed per hourly-updated reading with the 24-h PM breakpoints, not
the official 24-h or 8-h averages, so it is a real-time indicator.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from detectors.decide import CLEAR, RAISE, Hysteresis, severity_to_level
from detectors.events import CLEARED, RAISED, UPDATED, Detection
from detectors.frame import Frame, Registry
from detectors.pipeline import Stage
from detectors.standards import aqi as aqi_std
from detectors.standards import ieee1159
from lifewatch.lifelines import LEVEL_NAMES, Lifeline, load_lifelines

SEVERITY = {name: i + 1 for i, name in enumerate(LEVEL_NAMES)}  # blue 1 ... red 4
ONE_SIDED = ("<", "<=", ">", ">=")
BANDS = ("band_pct", "band_abs")
OPS = (*ONE_SIDED, *BANDS, "design_share", "ieee1159", "aqi")
MERGED_KEYS = ("levels", "level_sources", "params", "rule_sets")
OVERRIDE_KEYS = {*MERGED_KEYS, "nominal", "source", "rule_set", "enabled", "sensor_kinds"}
NEW_KEYS = {*OVERRIDE_KEYS, "metric", "op"}
RULE_SET_PARAM = "threshold_rule_sets"  # sensor / asset params: {threshold name: rule set}


def merge_spec(base: Mapping[str, Any], delta: Mapping[str, Any]) -> dict[str, Any]:
    """``delta`` over ``base``: dict-valued keys merge key by key (None removes), others are replaced.

    >>> merge_spec({"levels": {"yellow": 1, "red": 3}, "source": "a"}, {"levels": {"red": None, "orange": 2}})
    {'levels': {'yellow': 1, 'orange': 2}, 'source': 'a'}
    """
    out = copy.deepcopy(dict(base))
    for k, v in delta.items():
        if k in MERGED_KEYS and isinstance(v, Mapping):
            m = dict(out.get(k) or {})
            for kk, vv in v.items():
                if vv is None:
                    m.pop(kk, None)
                else:
                    m[kk] = copy.deepcopy(vv)
            out[k] = m
        else:
            out[k] = copy.deepcopy(v)
    return out


def _spec_of(t: Any) -> dict[str, Any]:
    return {
        "metric": t.metric, "name": t.name, "op": t.op, "levels": dict(t.levels), "source": t.source,
        "nominal": t.nominal, "level_sources": dict(t.level_sources), "params": dict(t.params),
        "rule_set": t.rule_set, "rule_sets": {k: dict(v) for k, v in t.rule_sets.items()},
        "sensor_kinds": list(t.sensor_kinds),
    }


def _clean(v: float) -> float:
    """A boundary computed from a nominal and a percentage, without the float noise (198.00000000000003)."""
    return float(f"{v:.12g}")


class ThresholdError(ValueError):
    """A threshold spec or override that cannot be used (raised at construction, or when a sensor asks
    for a rule set that does not exist)."""


# ================================================================ rules


class _Rule:
    """One threshold after overrides: its rule sets, per-sensor profiles and hysteresis."""

    def __init__(self, lifeline: Lifeline, spec: dict[str, Any], selected: str, overridden: tuple[str, ...]):
        self.lifeline = lifeline
        self.name = spec["name"]
        self.key = f"{lifeline.id}.{self.name}"
        self.metric = spec["metric"]
        self.op = spec["op"]
        self.sensor_kinds = tuple(spec.get("sensor_kinds") or ())
        self.overridden = overridden
        base_name = str(spec.get("rule_set") or "default")
        plain = {k: v for k, v in spec.items() if k != "rule_sets"}
        self.sets: dict[str, dict[str, Any]] = {base_name: plain}
        for name, delta in (spec.get("rule_sets") or {}).items():
            self.sets[str(name)] = merge_spec(plain, {k: v for k, v in delta.items() if k != "rule_set"})
        if selected not in self.sets:
            raise ThresholdError(f"{self.key}: unknown rule set {selected!r}; known: {', '.join(self.sets)}")
        self.selected = selected
        params = dict(self.sets[selected].get("params") or {})
        self.min_points = int(params.get("min_points", 1))
        self.clear_points = int(params.get("clear_points", 3))
        for name, s in self.sets.items():
            self._validate(name, s)
        self.present = sorted({SEVERITY[lv] for s in self.sets.values() for lv in (s.get("levels") or {})})
        self.hyst = Hysteresis(self.min_points, self.clear_points)
        self.prof = np.full(64, -1, np.int32)  # local slot -> profile id
        self.profiles: list[dict[str, Any]] = []
        self._profile_ids: dict[Any, int] = {}
        self._build_tables()

    # ---- validation (construction time: a bad config fails loudly)

    def _validate(self, set_name: str, s: dict[str, Any]) -> None:
        where = f"{self.key} (rule set {set_name})"
        if s.get("op") not in OPS:
            raise ThresholdError(f"{where}: unknown op {s.get('op')!r}; known: {', '.join(OPS)}")
        if not s.get("source"):
            raise ThresholdError(f"{where}: no source")
        if self.op != "aqi" and self.metric not in self.lifeline.metrics:
            raise ThresholdError(f"{where}: {self.metric!r} is not a {self.lifeline.id} metric")
        levels = s.get("levels") or {}
        unknown = set(levels) - set(SEVERITY)
        if unknown:
            raise ThresholdError(f"{where}: unknown levels {sorted(unknown)}; known: {', '.join(LEVEL_NAMES)}")
        ordered = [(SEVERITY[k], v) for k, v in sorted(levels.items(), key=lambda kv: SEVERITY[kv[0]])]
        self._validate_levels(where, ordered, s)

    def _validate_levels(self, where: str, ordered: list[tuple[int, Any]], s: dict[str, Any]) -> None:
        raise NotImplementedError

    # ---- profiles: what one sensor's rows are compared with

    def _select_set(self, meta: Any, asset: Any) -> str:
        for params in (getattr(meta, "params", None), getattr(asset, "params", None)):
            chosen = ((params or {}).get(RULE_SET_PARAM) or {}).get(self.name)
            if chosen is not None:
                if chosen not in self.sets:
                    who = meta.id if meta is not None else "?"
                    raise ThresholdError(f"{self.key}: sensor {who} asks for unknown rule set {chosen!r}; "
                                         f"known: {', '.join(self.sets)}")
                return str(chosen)
        return self.selected

    def _nominal(self, s: dict[str, Any], meta: Any) -> float | None:
        if meta is not None:
            v = meta.params.get(f"nominal_{self.metric}")
            if v is not None:
                return float(v)
        if s.get("nominal") is not None:
            return float(s["nominal"])
        if meta is not None:
            kind = self.lifeline.sensor_kinds.get(meta.kind)
            if kind is not None and self.metric in kind.nominal:
                return float(kind.nominal[self.metric])
        return None

    def profiles_for(self, frame: Frame, rows: np.ndarray, local: np.ndarray) -> np.ndarray:
        """Profile id per row, resolving sensors seen for the first time (or since a restore)."""
        top = int(local.max())
        if top >= len(self.prof):
            new = np.full(max(top + 1, 2 * len(self.prof)), -1, np.int32)
            new[: len(self.prof)] = self.prof
            self.prof = new
        p = self.prof[local]
        missing = p < 0
        if missing.any():
            reg = frame.registry
            where = np.flatnonzero(missing)
            u, first = np.unique(local[where], return_index=True)
            for slot, i in zip(u.tolist(), first.tolist(), strict=True):
                sensor = int(frame.sensor[rows[where[i]]])
                meta = reg.sensor_meta[sensor]
                asset = reg.city.assets.get(meta.asset) if (reg.city is not None and meta is not None) else None
                self.prof[slot] = self._profile_id(meta, asset)
            p = self.prof[local]
        return p.astype(np.int64)

    def _profile_id(self, meta: Any, asset: Any) -> int:
        if self.sensor_kinds and meta is not None and meta.kind not in self.sensor_kinds:
            prof = {"disabled": True, "rule_set": None}
        else:
            set_name = self._select_set(meta, asset)
            prof = self._profile(set_name, self.sets[set_name], meta, asset)
        key = repr(sorted(prof.items()))
        pid = self._profile_ids.get(key)
        if pid is None:
            pid = self._profile_ids[key] = len(self.profiles)
            self.profiles.append(prof)
            self._build_tables()
        return pid

    def _profile(self, set_name: str, s: dict[str, Any], meta: Any, asset: Any) -> dict[str, Any]:
        raise NotImplementedError

    def _build_tables(self) -> None:
        """Numpy tables indexed by profile id (rebuilt when a profile is added: rare)."""

    # ---- evidence common to all ops

    def _common_evidence(self, prof: dict[str, Any], sev: int) -> dict[str, Any]:
        set_name = prof.get("rule_set")
        s = self.sets.get(set_name) or self.sets[self.selected]
        level = LEVEL_NAMES[sev - 1]
        ev: dict[str, Any] = {
            "threshold": self.key,
            "op": self.op,
            "rule_set": set_name,
            "source": s["source"],
            "level_source": (s.get("level_sources") or {}).get(level, s["source"]),
        }
        if self.overridden:
            ev["overrides"] = list(self.overridden)
        return ev

    # ---- state

    def state_dict(self) -> dict[str, np.ndarray]:
        return {f"hyst/{k}": v for k, v in self.hyst.state_dict().items()}

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        h = {k[5:]: v for k, v in d.items() if k.startswith("hyst/")}
        if h:
            self.hyst.load_state_dict(h)
        self.prof[:] = -1  # profiles are configuration: resolved again from the city on the next rows

    def state_bytes_per_slot(self) -> int:
        return self.hyst.state_bytes_per_slot() + self.prof.itemsize

    # ---- the work

    def process(self, frame: Frame, rows: np.ndarray, local: np.ndarray) -> list[Detection]:
        prof = self.profiles_for(frame, rows, local)
        x = frame.x[rows]
        sev, score, extra = self._severity(x, prof, local, frame.t[rows])
        # peaks as of each event's row, whatever the batching
        ev_row, ev_kind, ev_sev, ev_start, peaks = self.hyst.step(local, frame.t[rows], sev, score, with_peaks=True)
        out: list[Detection] = []
        for e, (r, k, sv, start) in enumerate(zip(ev_row.tolist(), ev_kind.tolist(), ev_sev.tolist(), ev_start.tolist(), strict=True)):
            row = int(rows[r])
            p = self.profiles[int(prof[r])]
            ev = self._common_evidence(p, sv)
            ev.update(self._evidence(float(x[r]), p, r, extra, sv))
            ev["peak"], ev["peak_is"] = self._peak(float(peaks[e]), p)
            out.append(_detection(frame, row, self, k, sv, start, ev, self.metric))
        return out

    def _severity(self, x: np.ndarray, prof: np.ndarray, local: np.ndarray, t: np.ndarray):  # noqa: ANN202
        raise NotImplementedError

    def _evidence(self, x: float, prof: dict[str, Any], r: int, extra: dict[str, np.ndarray], sev: int) -> dict[str, Any]:
        raise NotImplementedError

    def _peak(self, peak: float, prof: dict[str, Any]) -> tuple[float, str]:
        raise NotImplementedError


class _BoundRule(_Rule):
    """``<``, ``<=``, ``>``, ``>=``, ``band_pct``, ``band_abs`` and ``design_share``: per-level boundaries."""

    def _validate_levels(self, where: str, ordered: list[tuple[int, Any]], s: dict[str, Any]) -> None:
        op = s["op"]
        prev = None
        for sev, v in ordered:
            if op in BANDS:
                if not (isinstance(v, (list, tuple)) and len(v) == 2):
                    raise ThresholdError(f"{where}: {LEVEL_NAMES[sev - 1]} must be [lo, hi], got {v!r}")
                lo, hi = float(v[0]), float(v[1])
                if not lo <= 0.0 <= hi:
                    raise ThresholdError(f"{where}: band {v!r} must contain 0 (deviations from nominal)")
                if prev is not None and not (lo <= prev[0] and hi >= prev[1]):
                    raise ThresholdError(f"{where}: band {LEVEL_NAMES[sev - 1]} {v!r} must contain the milder band {list(prev)}")
                prev = (lo, hi)
            else:
                if not isinstance(v, (int, float)) or isinstance(v, bool):
                    raise ThresholdError(f"{where}: {LEVEL_NAMES[sev - 1]} must be a number, got {v!r}")
                if op == "design_share" and v <= 0:
                    raise ThresholdError(f"{where}: design shares must be > 0")
                rising = op not in ("<", "<=")
                if prev is not None and (v <= prev if rising else v >= prev):
                    raise ThresholdError(f"{where}: levels must get {'higher' if rising else 'lower'} with severity")
                prev = float(v)
        if op == "design_share":
            p = s.get("params") or {}
            if not p.get("design_param") or p.get("default_design") is None:
                raise ThresholdError(f"{where}: design_share needs params.design_param and params.default_design")

    def _profile(self, set_name: str, s: dict[str, Any], meta: Any, asset: Any) -> dict[str, Any]:
        op = s["op"]
        levels = s.get("levels") or {}
        prof: dict[str, Any] = {"rule_set": set_name}
        lo = [math.nan] * 5
        hi = [math.nan] * 5
        limits: dict[str, Any] = {}
        if op in BANDS:
            nominal = self._nominal(s, meta)
            if nominal is None:
                raise ThresholdError(f"{self.key}: no nominal value for {getattr(meta, 'id', 'an unknown sensor')}")
            prof["nominal"] = nominal
            for name, (a, b) in levels.items():
                k = SEVERITY[name]
                if op == "band_pct":
                    lo[k], hi[k] = _clean(nominal * (1 + a / 100.0)), _clean(nominal * (1 + b / 100.0))
                else:
                    lo[k], hi[k] = _clean(nominal + a), _clean(nominal + b)
                limits[name] = [lo[k], hi[k]]
        elif op == "design_share":
            p = s.get("params") or {}
            dp = p["design_param"]
            design, origin = float(p["default_design"]), "default (lifeline YAML params.default_design)"
            for who, params in (("asset", getattr(asset, "params", None)), ("sensor", getattr(meta, "params", None))):
                if params and params.get(dp) is not None:
                    design, origin = float(params[dp]), f"{who} {asset.id if who == 'asset' else meta.id} {dp}"
            prof["design"], prof["design_from"] = design, origin
            for name, share in levels.items():
                k = SEVERITY[name]
                hi[k] = _clean(share * design)
                limits[name] = hi[k]
        else:
            for name, v in levels.items():
                k = SEVERITY[name]
                if op in ("<", "<="):
                    lo[k] = float(v)
                else:
                    hi[k] = float(v)
                limits[name] = float(v)
        prof["lo"], prof["hi"], prof["limits"] = tuple(lo), tuple(hi), limits
        return prof

    def _build_tables(self) -> None:
        n = max(len(self.profiles), 1)
        self.lo_tab = np.full((n, 5), np.nan)
        self.hi_tab = np.full((n, 5), np.nan)
        self.nominal_tab = np.zeros(n)
        self.design_tab = np.ones(n)
        for i, p in enumerate(self.profiles):
            if p.get("disabled"):
                continue
            self.lo_tab[i] = p["lo"]
            self.hi_tab[i] = p["hi"]
            self.nominal_tab[i] = p.get("nominal", 0.0)
            self.design_tab[i] = p.get("design", 1.0)
        self.uniform = len(self.profiles) == 1

    def _severity(self, x: np.ndarray, prof: np.ndarray, local: np.ndarray, t: np.ndarray):  # noqa: ANN202
        op = self.op
        y = np.abs(x) if op == "design_share" else x
        lo_incl = op == "<="
        hi_incl = op in (">=", "design_share")
        sev = np.zeros(len(x), np.int8)
        for k in self.present:
            if self.uniform:
                lo, hi = self.lo_tab[0, k], self.hi_tab[0, k]
            else:
                lo, hi = self.lo_tab[prof, k], self.hi_tab[prof, k]
            crossed = (y <= lo if lo_incl else y < lo) | (y >= hi if hi_incl else y > hi)
            sev[crossed] = k
        if op in ("<", "<="):
            score = -x
        elif op in BANDS:
            score = np.abs(x - (self.nominal_tab[0] if self.uniform else self.nominal_tab[prof]))
        elif op == "design_share":
            score = y / (self.design_tab[0] if self.uniform else self.design_tab[prof])
        else:
            score = x
        return sev, score, {}

    def _evidence(self, x: float, prof: dict[str, Any], r: int, extra: dict[str, np.ndarray], sev: int) -> dict[str, Any]:
        op = self.op
        y = abs(x) if op == "design_share" else x
        crossed: dict[str, Any] = {}
        for name, lim in prof["limits"].items():
            k = SEVERITY[name]
            lo, hi = prof["lo"][k], prof["hi"][k]
            lo_x = (y <= lo) if op == "<=" else (y < lo)
            hi_x = (y >= hi) if op in (">=", "design_share") else (y > hi)
            if lo_x or hi_x:
                crossed[name] = lim if op not in BANDS else (lo if lo_x else hi)
        ev: dict[str, Any] = {"value": x, "crossed": crossed, "limits": prof["limits"]}
        if "nominal" in prof:
            ev["nominal"] = prof["nominal"]
            ev["deviation_pct"] = round(100.0 * (x - prof["nominal"]) / prof["nominal"], 6)
        if "design" in prof:
            ev["design"] = prof["design"]
            ev["design_from"] = prof["design_from"]
            ev["design_share"] = round(y / prof["design"], 6)
            ev["shares"] = dict(self.sets[prof["rule_set"]].get("levels") or {})
        return ev

    def _peak(self, peak: float, prof: dict[str, Any]) -> tuple[float, str]:
        if self.op in ("<", "<="):
            return -peak, "lowest value"
        if self.op in BANDS:
            return peak, "largest |value - nominal|"
        if self.op == "design_share":
            return peak, "largest |value| / design"
        return peak, "highest value"


class _IEEE1159Rule(_Rule):
    """IEEE 1159 categories from runs of out-of-band RMS readings (:func:`detectors.standards.ieee1159.runs`)."""

    RUNS = ("under_start", "under_before", "int_start", "int_before", "over_start", "over_before", "last_t")

    def __init__(self, *a: Any, **kw: Any):
        self.run_state: dict[str, np.ndarray] = {k: np.full(64, ieee1159.NO_TIME, np.int64) for k in self.RUNS}
        super().__init__(*a, **kw)

    def _validate_levels(self, where: str, ordered: list[tuple[int, Any]], s: dict[str, Any]) -> None:
        seen: set[str] = set()
        for _, names in ordered:
            for n in names or []:
                if n not in ieee1159.CLASS_CODE:
                    raise ThresholdError(f"{where}: unknown IEEE 1159 category {n!r}; known: {', '.join(ieee1159.CLASS_CODE)}")
                if n in seen:
                    raise ThresholdError(f"{where}: category {n!r} is listed under two levels")
                seen.add(n)
        p = s.get("params") or {}
        ip = float(p.get("interruption_pu", ieee1159.IEEE_INTERRUPTION_PU))
        sp = float(p.get("sag_pu", ieee1159.SAG_PU))
        wp = float(p.get("swell_pu", ieee1159.SWELL_PU))
        if not 0.0 <= ip < sp < 1.0 < wp:
            raise ThresholdError(f"{where}: need 0 <= interruption_pu < sag_pu < 1 < swell_pu")

    def _profile(self, set_name: str, s: dict[str, Any], meta: Any, asset: Any) -> dict[str, Any]:
        nominal = self._nominal(s, meta)
        if nominal is None or nominal <= 0:
            raise ThresholdError(f"{self.key}: no nominal value for {getattr(meta, 'id', 'an unknown sensor')}")
        p = s.get("params") or {}
        sevmap = [0] * len(ieee1159.CLASSES)
        for name, classes in (s.get("levels") or {}).items():
            for c in classes or []:
                sevmap[ieee1159.CLASS_CODE[c]] = SEVERITY[name]
        return {
            "rule_set": set_name,
            "nominal": nominal,
            "interruption_pu": float(p.get("interruption_pu", ieee1159.IEEE_INTERRUPTION_PU)),
            "sag_pu": float(p.get("sag_pu", ieee1159.SAG_PU)),
            "swell_pu": float(p.get("swell_pu", ieee1159.SWELL_PU)),
            "system_hz": float(p.get("system_hz", ieee1159.SYSTEM_HZ)),
            "sevmap": tuple(sevmap),
        }

    def _build_tables(self) -> None:
        n = max(len(self.profiles), 1)
        self.nominal_tab = np.ones(n)
        self.int_tab = np.full(n, -np.inf)  # disabled profile: never out of band
        self.sag_tab = np.full(n, -np.inf)
        self.swell_tab = np.full(n, np.inf)
        self.inst_tab = np.full(n, ieee1159.INSTANTANEOUS_MAX_CYCLES / ieee1159.SYSTEM_HZ)
        self.sevmap_tab = np.zeros((n, len(ieee1159.CLASSES)), np.int8)
        for i, p in enumerate(self.profiles):
            if p.get("disabled"):
                continue
            self.nominal_tab[i] = p["nominal"]
            self.int_tab[i] = p["interruption_pu"]
            self.sag_tab[i] = p["sag_pu"]
            self.swell_tab[i] = p["swell_pu"]
            self.inst_tab[i] = ieee1159.INSTANTANEOUS_MAX_CYCLES / p["system_hz"]
            self.sevmap_tab[i] = p["sevmap"]

    def _grow_runs(self, top: int) -> None:
        cap = len(self.run_state["last_t"])
        if top < cap:
            return
        new_cap = max(top + 1, 2 * cap)
        for k, old in self.run_state.items():
            new = np.full(new_cap, ieee1159.NO_TIME, np.int64)
            new[:cap] = old
            self.run_state[k] = new

    def _severity(self, x: np.ndarray, prof: np.ndarray, local: np.ndarray, t: np.ndarray):  # noqa: ANN202
        n = len(x)
        self._grow_runs(int(local.max()))
        pu = x / self.nominal_tab[prof]
        code = np.zeros(n, np.int64)
        dlo = np.zeros(n)
        dhi = np.zeros(n)
        st = self.run_state
        ieee1159.runs(local, np.ascontiguousarray(t, np.int64), pu, prof, self.int_tab, self.sag_tab, self.swell_tab,
                      self.inst_tab, st["under_start"], st["under_before"], st["int_start"], st["int_before"],
                      st["over_start"], st["over_before"], st["last_t"], code, dlo, dhi)
        sev = self.sevmap_tab[prof, code]
        return sev, np.abs(pu - 1.0), {"pu": pu, "code": code, "dlo": dlo, "dhi": dhi}

    def _evidence(self, x: float, prof: dict[str, Any], r: int, extra: dict[str, np.ndarray], sev: int) -> dict[str, Any]:
        pu = float(extra["pu"][r])
        name = ieee1159.CLASSES[int(extra["code"][r])] or None
        nominal = prof["nominal"]
        thresholds = {k: prof[k] for k in ("interruption_pu", "sag_pu", "swell_pu")}
        ev: dict[str, Any] = {"value": x, "pu": round(pu, 6), "nominal": nominal, "class": name,
                              "thresholds_pu": thresholds, "crossed": {}, "limits": dict(self.sets[prof["rule_set"]]["levels"])}
        if name is None:
            return ev
        dlo = float(extra["dlo"][r])
        dhi = float(extra["dhi"][r])
        fam_thr = "interruption_pu" if name.endswith("interruption") else ("sag_pu" if pu < 1.0 else "swell_pu")
        ev["crossed"] = {LEVEL_NAMES[sev - 1]: _clean(prof[fam_thr] * nominal)}
        ev["crossed_pu"] = {fam_thr: prof[fam_thr]}
        ev["duration_min_s"] = dlo
        ev["duration_max_s"] = dhi if dhi >= 0 else None
        kw = {k: prof[k] for k in ("interruption_pu", "sag_pu", "swell_pu", "system_hz")}
        ev["duration_resolved"] = dhi >= 0 and ieee1159.classify(pu, dhi, **kw) == name
        ev["typical_range_pu"] = list(ieee1159.TYPICAL[name])
        ev["within_typical"] = ieee1159.within_typical(name, pu)
        return ev

    def _peak(self, peak: float, prof: dict[str, Any]) -> tuple[float, str]:
        return peak, "largest |pu - 1|"

    def state_dict(self) -> dict[str, np.ndarray]:
        d = super().state_dict()
        d.update({f"runs/{k}": v.copy() for k, v in self.run_state.items()})
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        super().load_state_dict(d)
        runs = {k[5:]: v for k, v in d.items() if k.startswith("runs/")}
        if runs:
            n = len(runs["last_t"])
            self.run_state = {k: np.full(max(n, 64), ieee1159.NO_TIME, np.int64) for k in self.RUNS}
            for k in self.RUNS:
                self.run_state[k][:n] = runs[k]

    def state_bytes_per_slot(self) -> int:
        return super().state_bytes_per_slot() + 8 * len(self.RUNS)


class _AQIRule(_Rule):
    """HJ 633 AQI per station reading (all pollutant rows of one sensor at one event time)."""

    FORCE = {"hj633_2012": 1, "hj633_2026": 2}

    def _validate_levels(self, where: str, ordered: list[tuple[int, Any]], s: dict[str, Any]) -> None:
        prev = None
        for _, v in ordered:
            if not isinstance(v, (int, float)) or (prev is not None and v <= prev):
                raise ThresholdError(f"{where}: AQI levels must be numbers rising with severity")
            prev = v

    def _profile(self, set_name: str, s: dict[str, Any], meta: Any, asset: Any) -> dict[str, Any]:
        levels = s.get("levels") or {}
        b = [math.nan] * 5
        for name, v in levels.items():
            b[SEVERITY[name]] = float(v)
        return {"rule_set": set_name, "bounds": tuple(b), "force": self.FORCE.get(set_name, 0),
                "limits": {k: float(v) for k, v in levels.items()}}

    def _build_tables(self) -> None:
        n = max(len(self.profiles), 1)
        self.bound_tab = np.full((n, 5), np.nan)
        self.force_tab = np.zeros(n, np.int64)
        for i, p in enumerate(self.profiles):
            if p.get("disabled"):
                continue
            self.bound_tab[i] = p["bounds"]
            self.force_tab[i] = p["force"]

    def process_station(self, frame: Frame, rows: np.ndarray, local: np.ndarray) -> list[Detection]:
        """``rows``: the pollutant rows (non-NaN); ``local``: the station's AQI slot per row."""
        reg = frame.registry
        sensor = frame.sensor[rows]
        t = frame.t[rows]
        prof = self.profiles_for(frame, rows, local)
        force = self.force_tab[prof]
        new_rules = np.where(force == 0, t >= aqi_std.HJ633_2026_EFFECTIVE_NS, force == 2)
        metric = frame.metric[rows]
        x = frame.x[rows]
        sub = np.full(len(rows), np.nan)
        for pol in aqi_std.POLLUTANTS:
            m = metric == reg.metric_code("air", pol)
            if m.any():
                sub[m] = aqi_std.iaqi_array(pol, x[m], new_rules[m])
        # group the rows of one reading: same sensor, same event time (in order of first row)
        order = np.lexsort((rows, t, sensor))
        s_o, t_o = sensor[order], t[order]
        head = np.ones(len(order), bool)
        head[1:] = (s_o[1:] != s_o[:-1]) | (t_o[1:] != t_o[:-1])
        starts = np.flatnonzero(head)
        ends = np.append(starts[1:], len(order))
        g_aqi = np.maximum.reduceat(np.nan_to_num(sub[order], nan=-1.0), starts)
        g_first = order[starts]  # index into rows of each group's first row
        g_order = np.argsort(g_first, kind="stable")
        keep = g_order[g_aqi[g_order] >= 0]  # readings with at least one IAQI
        gi = g_first[keep]
        g_val = g_aqi[keep]
        g_prof = prof[gi]
        sev = np.zeros(len(keep), np.int8)
        for k in self.present:
            sev[g_val >= self.bound_tab[g_prof, k]] = k
        ev_row, ev_kind, ev_sev, ev_start, peaks = self.hyst.step(local[gi], t[gi], sev, g_val, with_peaks=True)
        out: list[Detection] = []
        for e, (j, k, sv, start) in enumerate(zip(ev_row.tolist(), ev_kind.tolist(), ev_sev.tolist(), ev_start.tolist(), strict=True)):
            g = keep[j]
            members = order[starts[g]:ends[g]]
            row = int(rows[g_first[g]])
            ts = int(t[g_first[g]])
            p = self.profiles[int(g_prof[j])]
            values = {reg.metric_names[int(metric[i])].split(".", 1)[1]: float(x[i]) for i in members}
            rs = aqi_std.RULES_2026 if new_rules[g_first[g]] else aqi_std.RULES_2012
            res = aqi_std.aqi(values, ts, rs)
            ev = self._common_evidence(p, sv)
            level6 = res.level
            ev.update({
                "value": res.aqi, "aqi": res.aqi, "aqi_level": level6,
                "category": aqi_std.AQI_CATEGORIES[level6][1] if level6 else None,
                "category_zh": aqi_std.AQI_CATEGORIES[level6][0] if level6 else None,
                "primary_pollutants": list(res.primary_pollutants),
                "iaqi": aqi_std.iaqi_all(values, ts, rs), "concentrations": values,
                "aqi_rules": rs,
                "averaging": {m: aqi_std.HOURLY_ITEM[m] + " breakpoints on the hourly value" for m in values},
                "crossed": {n: v for n, v in p["limits"].items() if res.aqi is not None and res.aqi >= v},
                "limits": p["limits"],
            })
            ev["peak"], ev["peak_is"] = float(peaks[e]), "highest AQI"
            out.append(_detection(frame, row, self, k, sv, start, ev, "aqi"))
        return out


def _detection(frame: Frame, row: int, rule: _Rule, k: int, sev: int, start: int, ev: dict[str, Any], metric: str) -> Detection:
    reg = frame.registry
    sensor = int(frame.sensor[row])
    t = int(frame.t[row])
    return Detection(
        detector="threshold",
        kind=rule.name,
        state=RAISED if k == RAISE else (CLEARED if k == CLEAR else UPDATED),
        lifeline=reg.sensor_lifeline[sensor],
        district=reg.sensor_district[sensor],
        asset=reg.asset_of(sensor),
        sensors=(reg.sensor_ids[sensor],),
        level=severity_to_level(sev),
        score=float(sev),
        start_ns=int(start),
        ts_ns=t,
        end_ns=t if k == CLEAR else None,
        metric=metric,
        evidence=ev,
    )


def _make_rule(lifeline: Lifeline, spec: dict[str, Any], selected: str, overridden: tuple[str, ...]) -> _Rule:
    op = spec.get("op")
    cls = _IEEE1159Rule if op == "ieee1159" else (_AQIRule if op == "aqi" else _BoundRule)
    return cls(lifeline, spec, selected, overridden)


# ================================================================ the stage


class ThresholdStage(Stage):
    """Every standard threshold of the five lifelines, with hysteresis, as one pipeline stage.

    ``overrides`` maps ``"<lifeline>.<threshold>"`` to a partial spec merged
    over the YAML (see the module docstring); ``lifelines`` replaces the
    packaged descriptions (tests).  Construction validates everything and
    raises :class:`ThresholdError` on a bad spec.

    State per stream: a metric-local slot (int32), and for each threshold on
    its metric the hysteresis (42 bytes), the profile id (int32) and, for
    IEEE 1159, the run times (56 bytes); per air station the same for the AQI.
    The worst case is a 220 V meter's voltage: 152 bytes
    (:meth:`state_bytes_by_metric` gives every metric).  Profiles (nominal,
    design value, rule set per sensor) are configuration, resolved from the
    city on a stream's first rows and again after a restore, not saved.
    """

    name = "threshold"

    def __init__(self, overrides: Mapping[str, Mapping[str, Any]] | None = None, *,
                 lifelines: Mapping[str, Lifeline] | None = None):
        self.lifelines = dict(lifelines or load_lifelines())
        overrides = {str(k): dict(v) for k, v in (overrides or {}).items()}
        rules: list[_Rule] = []
        for lid, ll in self.lifelines.items():
            for t in ll.thresholds:
                key = f"{lid}.{t.name}"
                spec = _spec_of(t)
                delta = overrides.pop(key, {})
                unknown = set(delta) - OVERRIDE_KEYS
                if unknown:
                    raise ThresholdError(f"override {key}: unknown keys {sorted(unknown)}; allowed: {sorted(OVERRIDE_KEYS)}")
                if delta.get("enabled", True) is False:
                    continue
                selected = str(delta.get("rule_set", spec["rule_set"]))
                merged = merge_spec(spec, {k: v for k, v in delta.items() if k not in ("rule_set", "enabled")})
                rules.append(_make_rule(ll, merged, selected, _changed(delta)))
        for key, delta in overrides.items():  # thresholds the YAML does not have
            lid, _, name = key.partition(".")
            if lid not in self.lifelines or not name:
                raise ThresholdError(f"override {key!r}: expected '<lifeline>.<threshold>' with a lifeline of "
                                     f"{', '.join(self.lifelines)}")
            missing = {"metric", "op", "levels", "source"} - set(delta)
            unknown = set(delta) - NEW_KEYS
            if missing or unknown:
                raise ThresholdError(f"override {key}: not a threshold of {lid}.yaml, so it defines a new one; "
                                     f"missing {sorted(missing)}, unknown {sorted(unknown)}")
            if delta.get("enabled", True) is False:
                continue
            spec = {"name": name, "rule_set": "default", **{k: v for k, v in delta.items() if k != "enabled"}}
            rules.append(_make_rule(self.lifelines[lid], spec, str(spec["rule_set"]), ("new",)))
        self.rules = rules
        self._aqi = next((r for r in rules if isinstance(r, _AQIRule)), None)
        if sum(isinstance(r, _AQIRule) for r in rules) > 1:
            raise ThresholdError("only one AQI threshold is supported")
        self._by_metric: dict[str, list[_Rule]] = {}
        for r in rules:
            if not isinstance(r, _AQIRule):
                self._by_metric.setdefault(f"{r.lifeline.id}.{r.metric}", []).append(r)
        self._metric_keys = sorted(self._by_metric)
        self._count = {k: 0 for k in self._metric_keys}
        self._local = np.full(64, -1, np.int32)  # global stream slot -> slot among its metric's streams
        self._n_global = 0
        self._aqi_local = np.full(64, -1, np.int32)  # sensor slot -> slot among AQI stations
        self._aqi_count = 0
        self._aqi_n = 0
        self._plan_reg: Registry | None = None
        self._plan_val: tuple[list[tuple[int, str]], list[int]] = ([], [])

    # ---- introspection

    def rule(self, key: str) -> _Rule:
        """The resolved threshold ``"<lifeline>.<name>"`` (levels, sets, profiles): for tests and dashboards."""
        for r in self.rules:
            if r.key == key:
                return r
        raise KeyError(f"no threshold {key!r}; known: {', '.join(r.key for r in self.rules)}")

    def check_city(self, city: Any) -> None:
        """Resolve every city sensor's profile now (nominal, design value, rule set), so a city file
        that names an unknown rule set or lacks a nominal fails at start-up rather than mid-stream."""
        for sensor in city.sensors.values():
            asset = city.assets.get(sensor.asset)
            kind = self.lifelines[sensor.lifeline].sensor_kinds.get(sensor.kind)
            metrics = set(kind.metrics) if kind is not None else set()
            for r in self.rules:
                if r.lifeline.id == sensor.lifeline and (r.metric in metrics or (r.op == "aqi" and metrics)):
                    r._profile_id(sensor, asset)

    # ---- processing

    def _plan(self, reg: Registry) -> tuple[list[tuple[int, str]], list[int]]:
        """Metric codes of this registry for the thresholds' metrics (and the AQI pollutants)."""
        if self._plan_reg is not reg:
            metric_codes = [(reg.metric_code(*k.split(".", 1)), k) for k in self._metric_keys]
            air = [reg.metric_code("air", p) for p in aqi_std.POLLUTANTS] if self._aqi else []
            self._plan_reg, self._plan_val = reg, (metric_codes, air)
        return self._plan_val

    def process(self, frame: Frame) -> list[Detection]:
        if not len(frame):
            return []
        metric_codes, air_codes = self._plan(frame.registry)
        out: list[Detection] = []
        finite = ~np.isnan(frame.x)
        for code, mkey in metric_codes:
            rows = np.flatnonzero((frame.metric == code) & finite)
            if not len(rows):
                continue
            local = self._local_slots(frame.stream[rows], mkey)
            for rule in self._by_metric[mkey]:
                out.extend(rule.process(frame, rows, local))
        if self._aqi is not None:
            rows = np.flatnonzero(np.isin(frame.metric, air_codes) & finite)
            if len(rows):
                out.extend(self._aqi.process_station(frame, rows, self._aqi_slots(frame.sensor[rows])))
        return out

    def _local_slots(self, streams: np.ndarray, mkey: str) -> np.ndarray:
        top = int(streams.max())
        if top >= len(self._local):
            new = np.full(max(top + 1, 2 * len(self._local)), -1, np.int32)
            new[: len(self._local)] = self._local
            self._local = new
        loc = self._local[streams]
        fresh = loc < 0
        if fresh.any():
            u, first = np.unique(streams[fresh], return_index=True)
            u = u[np.argsort(first)]
            base = self._count[mkey]
            self._local[u] = np.arange(base, base + len(u), dtype=np.int32)
            self._count[mkey] = base + len(u)
            self._n_global = max(self._n_global, top + 1)
            loc = self._local[streams]
        return loc.astype(np.int64)

    def _aqi_slots(self, sensors: np.ndarray) -> np.ndarray:
        top = int(sensors.max())
        if top >= len(self._aqi_local):
            new = np.full(max(top + 1, 2 * len(self._aqi_local)), -1, np.int32)
            new[: len(self._aqi_local)] = self._aqi_local
            self._aqi_local = new
        loc = self._aqi_local[sensors]
        fresh = loc < 0
        if fresh.any():
            u, first = np.unique(sensors[fresh], return_index=True)
            u = u[np.argsort(first)]
            self._aqi_local[u] = np.arange(self._aqi_count, self._aqi_count + len(u), dtype=np.int32)
            self._aqi_count += len(u)
            self._aqi_n = max(self._aqi_n, top + 1)
            loc = self._aqi_local[sensors]
        return loc.astype(np.int64)

    # ---- state

    def state_dict(self) -> dict[str, np.ndarray]:
        d: dict[str, np.ndarray] = {
            "local_stream": self._local[: self._n_global].copy(),
            "metric_keys": np.array(self._metric_keys, dtype=object),
            "metric_counts": np.array([self._count[k] for k in self._metric_keys], dtype=np.int64),
            "aqi_local": self._aqi_local[: self._aqi_n].copy(),
            "aqi_count": np.array([self._aqi_count], dtype=np.int64),
        }
        for r in self.rules:
            for k, v in r.state_dict().items():
                d[f"{r.key}/{k}"] = v
        return d

    def load_state_dict(self, d: dict[str, np.ndarray]) -> None:
        keys = [str(k) for k in d["metric_keys"]]
        counts = dict(zip(keys, (int(c) for c in d["metric_counts"]), strict=True))
        local = np.asarray(d["local_stream"], np.int32)
        # a metric that lost all its thresholds since the save keeps its (now unused) slots in local_stream
        self._count = {k: counts.get(k, 0) for k in self._metric_keys}
        self._local = np.full(max(len(local), 64), -1, np.int32)
        self._local[: len(local)] = local
        self._n_global = len(local)
        aqi_local = np.asarray(d["aqi_local"], np.int32)
        self._aqi_local = np.full(max(len(aqi_local), 64), -1, np.int32)
        self._aqi_local[: len(aqi_local)] = aqi_local
        self._aqi_n = len(aqi_local)
        self._aqi_count = int(d["aqi_count"][0])
        for r in self.rules:
            prefix = f"{r.key}/"
            r.load_state_dict({k[len(prefix):]: v for k, v in d.items() if k.startswith(prefix)})

    def state_bytes_by_metric(self) -> dict[str, int]:
        """Bytes of state per stream of each metric with thresholds (``air.aqi`` is per station)."""
        out = {k: self._local.itemsize + sum(r.state_bytes_per_slot() for r in rs) for k, rs in self._by_metric.items()}
        if self._aqi is not None:
            out["air.aqi"] = self._aqi_local.itemsize + self._aqi.state_bytes_per_slot()
        return out

    def state_bytes_per_stream(self) -> int:
        """The worst case over metrics (a 220 V meter's voltage: two thresholds, one with IEEE 1159 runs)."""
        return max(self.state_bytes_by_metric().values(), default=0)


def _changed(delta: Mapping[str, Any]) -> tuple[str, ...]:
    out = []
    for k, v in delta.items():
        if k in MERGED_KEYS and isinstance(v, Mapping):
            out.extend(f"{k}.{kk}" for kk in v)
        else:
            out.append(k)
    return tuple(out)
