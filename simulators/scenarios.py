"""Incident and sensor-fault scenarios, injectable by name, target and event-time window.

An :class:`Incident` names a scenario, a target (an asset id, a sensor id, a
district id or ``city``, depending on the scenario), a window [start, end)
of event time (UTC ns) and parameters.  :func:`activate` turns it into a
scenario object bound to a :class:`~simulators.normal.NormalModel`; the engine
asks it which sensors it touches and lets it change their values.  Every
scenario's docstring gives its signature, its parameters and the sources
(section of ../shared/reference/domain.md and the evidence tag there).

Effects stay inside the window, except physical lags that follow from a
changed driver (a transformer cools down over hours after an overload).
Random details (where a leak is, when heavy vehicles pass, which samples
spike) are hashed from the seed and the incident, so they do not depend on
chunking.

Each injected incident yields a ground-truth label
``{scenario, target, sensors, start, end}`` (:meth:`Scenario.label`).

Parameter names ending in ``_s`` are durations in seconds; they also accept
text such as ``"30m"`` or ``"2h"``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from lifewatch.city import Asset, City, Sensor
from lifewatch.model import NS, format_ts
from lifewatch.settings import parse_duration
from simulators.citygen import distance_m
from simulators.normal import (
    PM_DAY,
    TR_PF,
    LoadHook,
    NormalModel,
    gauss,
    local_time,
    smooth,
    uniform,
)

Values = dict[str, np.ndarray]


class ScenarioError(ValueError):
    """A scenario name, target or parameter that cannot be used."""


@dataclass
class Incident:
    """One injected incident: scenario name, target id, window [start_ns, end_ns) and parameters."""

    scenario: str
    target: str
    start_ns: int
    end_ns: int
    params: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- envelopes (vectorised over t_ns)


def inside(t: np.ndarray, t0: int, t1: int) -> np.ndarray:
    return (t >= t0) & (t < t1)


def step(t: np.ndarray, t0: int, t1: int, rise_s: float = 0.0) -> np.ndarray:
    """0 outside [t0, t1); inside, a linear rise over ``rise_s`` then 1."""
    x = np.ones(t.shape) if rise_s <= 0 else np.clip((t - t0) / (rise_s * NS), 0.0, 1.0)
    return np.where(inside(t, t0, t1), x, 0.0)


def approach(t: np.ndarray, t0: int, t1: int, tau_s: float) -> np.ndarray:
    """EPyT-Flow style ramp-in b(t) = 1 - exp(-(t - t0) / tau) inside [t0, t1), 0 outside."""
    x = 1.0 - np.exp(-np.maximum(t - t0, 0) / (tau_s * NS))
    return np.where(inside(t, t0, t1), x, 0.0)


def reported_in(t: np.ndarray, t0: int, t1: int, interval_ns: int) -> np.ndarray:
    """Samples whose reporting interval (t - interval, t] overlaps [t0, t1).

    Meters and SHM loggers report the extreme of the interval (minimum rms,
    peak strain), so an event of seconds shows in the next sample.
    """
    return (t > t0) & (t - interval_ns < t1)


# ---------------------------------------------------------------- registry

SCENARIOS: dict[str, type[Scenario]] = {}


def register(cls: type[Scenario]) -> type[Scenario]:
    SCENARIOS[cls.name] = cls
    return cls


def list_scenarios() -> list[dict[str, Any]]:
    """Name, lifeline, summary, default duration, default parameters and targets of every scenario."""
    return [
        {"name": c.name, "lifeline": c.lifeline or "fault", "summary": c.summary, "default_duration": c.default_duration,
         "params": dict(c.defaults), "targets": c.targets}
        for c in SCENARIOS.values()
    ]


def default_duration_s(name: str) -> float:
    return parse_duration(get(name).default_duration)


def get(name: str) -> type[Scenario]:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def make_incident(name: str, target: str, start_ns: int, duration_s: float | None = None,
                  params: dict[str, Any] | None = None) -> Incident:
    """An incident with the scenario's default duration when none is given."""
    dur = default_duration_s(name) if duration_s is None else float(duration_s)
    if dur <= 0:
        raise ScenarioError(f"{name}: duration must be > 0")
    return Incident(name, target, int(start_ns), int(start_ns + round(dur * NS)), dict(params or {}))


def activate(model: NormalModel, incident: Incident) -> Scenario:
    """Bind an incident to a model: checks the target and parameters, works out the affected sensors."""
    return get(incident.scenario)(model, incident)


class Scenario:
    """Base class: metadata, parameter checking, target resolution and the hooks the engine calls."""

    name: ClassVar[str]
    lifeline: ClassVar[str | None] = None  # None: a sensor fault (any lifeline)
    summary: ClassVar[str] = ""
    default_duration: ClassVar[str] = "1h"
    defaults: ClassVar[dict[str, Any]] = {}
    targets: ClassVar[str] = ""
    fault: ClassVar[bool] = False

    def __init__(self, model: NormalModel, incident: Incident):
        self.model = model
        self.city: City = model.city
        self.inc = incident
        self.t0 = int(incident.start_ns)
        self.t1 = int(incident.end_ns)
        if self.t1 <= self.t0:
            raise ScenarioError(f"{self.name}: the window is empty ({format_ts(self.t0)} .. {format_ts(self.t1)})")
        self.p = self._params(incident.params)
        self.key = model.key("incident", self.name, incident.target, self.t0, self.t1)
        self.sensors: list[str] = self.resolve()
        if not self.sensors:
            raise ScenarioError(f"{self.name}@{incident.target}: no sensors affected")

    # -- parameters

    def _params(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = set(given) - set(self.defaults)
        if unknown:
            raise ScenarioError(f"{self.name}: unknown parameter(s) {sorted(unknown)}; known: {sorted(self.defaults)}")
        out = dict(self.defaults)
        for k, v in given.items():
            d = self.defaults[k]
            try:
                if k.endswith("_s") and v is not None:
                    out[k] = parse_duration(v) if isinstance(v, str) else float(v)
                elif isinstance(d, bool):
                    out[k] = v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")
                elif isinstance(d, int):
                    out[k] = int(v)
                elif isinstance(d, float):
                    out[k] = float(v)
                else:
                    out[k] = v
            except (TypeError, ValueError) as exc:
                raise ScenarioError(f"{self.name}: parameter {k}={v!r}: {exc}") from None
        return out

    # -- targets

    def _asset_target(self, types: tuple[str, ...]) -> tuple[Asset, Sensor | None]:
        """The target as an asset of this lifeline (given directly or through one of its sensors)."""
        tid = self.inc.target
        if tid in self.city.assets:
            a = self.city.assets[tid]
            if a.lifeline == self.lifeline and a.type in types:
                return a, None
        if tid in self.city.sensors:
            s = self.city.sensors[tid]
            a = self.city.assets[s.asset]
            if s.lifeline == self.lifeline and a.type in types:
                return a, s
        examples = [a.id for a in self.city.assets.values() if a.lifeline == self.lifeline and a.type in types][:3]
        raise ScenarioError(f"{self.name}: target {tid!r} is not a {'/'.join(types)} (or one of its sensors) "
                            f"of the city; e.g. {', '.join(examples)}")

    def _sensor_target(self) -> Sensor:
        tid = self.inc.target
        if tid not in self.city.sensors:
            raise ScenarioError(f"{self.name}: target {tid!r} is not a sensor id of the city")
        return self.city.sensors[tid]

    def _sensors_of(self, asset_id: str, kinds: tuple[str, ...] | None = None) -> list[Sensor]:
        return [s for s in self.city.sensors_by_asset.get(asset_id, []) if kinds is None or s.kind in kinds]

    def _pick(self, candidates: list[Sensor]) -> Sensor:
        """A deterministic choice (from the seed and the incident) among candidates."""
        i = int(uniform(self.key + 1, np.array([0]))[0] * len(candidates))
        return candidates[i]

    @staticmethod
    def _dist(a: Sensor, b: Sensor) -> float:
        return distance_m((a.lat, a.lon), (b.lat, b.lon))

    # -- what the engine calls

    def resolve(self) -> list[str]:
        raise NotImplementedError

    def load_hook(self, sensor: Sensor) -> LoadHook | None:
        """A change of the transformer load factor K seen by ``sensor`` (power only)."""
        return None

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        """Change the values of ``sensor`` at event times ``t`` in place."""

    def drop_mask(self, sensor: Sensor, t: np.ndarray) -> np.ndarray | None:
        """Samples that are never sent (True = dropped)."""
        return None

    def ts_offset(self, sensor: Sensor, t: np.ndarray) -> np.ndarray | None:
        """Shift (ns) of the reported timestamp against the event time, per sample."""
        return None

    def label(self, simulated: set[str] | None = None) -> dict[str, Any]:
        sensors = [s for s in self.sensors if simulated is None or s in simulated]
        return {"scenario": self.name, "target": self.inc.target, "sensors": sensors,
                "start": format_ts(self.t0), "end": format_ts(self.t1)}


# ================================================================ water


class _WaterDMA(Scenario):
    lifeline = "water"
    targets = "a DMA (dma-...) or one of its sensors (= the location)"

    def resolve(self) -> list[str]:
        self.dma, at = self._asset_target(("dma",))
        members = self._sensors_of(self.dma.id)
        loggers = [s for s in members if s.kind == "pressure"] or members
        self.location = at if at is not None else self._pick(loggers)
        self.dist = {s.id: self._dist(s, self.location) for s in members}
        return [s.id for s in members]


@register
class WaterLeak(_WaterDMA):
    """Incipient (growing) leak in a DMA.

    Signature (domain.md §1.3 "Incipient (growing) leak" [V]; BattLeDIM
    incipient leaks grow linearly from start to a peak time, then stay): the
    leak flow ramps from 0 at ``start`` to ``peak_flow`` m3/h at ``start +
    growth_s`` (default: the end of the window) and stays there; the DMA inlet
    flow and so the minimum night flow (MNF, the LeakDB detector's input [V])
    rise by it; pressures fall a little, most next to the leak:
    ``pressure_drop`` MPa at peak flow times exp(-d / 800 m).

    Params: peak_flow (m3/h, 15 = 10-20 % of a DMA's average), growth_s
    (default: whole window), pressure_drop (MPa, 0.008).
    """

    name = "water.leak"
    summary = "growing leak: ramp in DMA inlet flow and MNF, small pressure decline"
    default_duration = "3d"
    defaults = {"peak_flow": 15.0, "growth_s": None, "pressure_drop": 0.008}

    def _level(self, t: np.ndarray) -> np.ndarray:
        growth = self.p["growth_s"] or (self.t1 - self.t0) / NS
        return np.where(inside(t, self.t0, self.t1), np.clip((t - self.t0) / (growth * NS), 0.0, 1.0), 0.0)

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        lvl = self._level(t)
        if "flow" in v:
            v["flow"] = v["flow"] + self.p["peak_flow"] * lvl
        v["pressure"] = v["pressure"] - self.p["pressure_drop"] * lvl * math.exp(-self.dist[sensor.id] / 800.0)


@register
class WaterBurst(_WaterDMA):
    """Burst (abrupt leak) in a DMA.

    Signature (domain.md §1.3 "Abrupt leak / burst" [V/S]): a step increase in
    the DMA inlet flow and a step drop in pressure, largest near the burst and
    decaying with distance; the MNF jumps.  Burst flow by the orifice law
    Q = Cd A sqrt(2 g h) with Cd = 0.75 (BattLeDIM [V]); the default hole of
    40 mm at 35 m head gives about 89 m3/h (BattLeDIM holes 9-23 mm, LeakDB
    up to 200 mm [V]).  The opening takes ``rise_s`` (bursts open in minutes:
    CUSUM on inlet flow detects them [S]).  Pressure drop: ``pressure_drop``
    x exp(-d / 500 m) + 0.01 MPa everywhere in the DMA (more head loss on the
    inlet main).

    Params: diameter_mm (40), cd (0.75), head_m (35), rise_s (60),
    pressure_drop (MPa at the burst, 0.06).
    """

    name = "water.burst"
    summary = "burst: step up in inlet flow, step down in pressure, largest nearest"
    default_duration = "6h"
    defaults = {"diameter_mm": 40.0, "cd": 0.75, "head_m": 35.0, "rise_s": 60.0, "pressure_drop": 0.06}

    @property
    def burst_flow(self) -> float:
        area = math.pi * (self.p["diameter_mm"] / 2000.0) ** 2
        return self.p["cd"] * area * math.sqrt(2 * 9.81 * self.p["head_m"]) * 3600.0

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        e = step(t, self.t0, self.t1, self.p["rise_s"])
        if "flow" in v:
            v["flow"] = v["flow"] + self.burst_flow * e
        drop = self.p["pressure_drop"] * math.exp(-self.dist[sensor.id] / 500.0) + 0.01
        v["pressure"] = v["pressure"] - drop * e


@register
class WaterLowPressure(_WaterDMA):
    """Low pressure / supply interruption in a DMA (e.g. a booster pump trips).

    Signature (domain.md §1.3 "Low pressure / supply interruption" [V]):
    network end pressure falls below 0.14 MPa (城镇供水服务 §3.3.1 citing CJJ
    58-2007 [V]); flows collapse.  Every pressure in the DMA is scaled by
    ``pressure / static pressure`` (the default 0.10 MPa puts every logger
    below 0.14 at any hour); demand follows pressure, so the inlet flow falls
    as sqrt of that ratio.  Onset over ``rise_s``.

    Params: pressure (MPa at a logger's static head, 0.10), rise_s (600).
    """

    name = "water.low_pressure"
    summary = "low pressure: DMA pressures below 0.14 MPa, inlet flow falls"
    default_duration = "2h"
    defaults = {"pressure": 0.10, "rise_s": 600.0}

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        e = step(t, self.t0, self.t1, self.p["rise_s"])
        p_static = float(self.dma.params.get("p_inlet", 0.42)) - 0.0098 * float(sensor.params.get("elev_m", 0.0))
        ratio = min(1.0, self.p["pressure"] / p_static)
        v["pressure"] = v["pressure"] * (1.0 - e + e * ratio)
        if "flow" in v:
            v["flow"] = v["flow"] * (1.0 - e + e * math.sqrt(ratio))


# ================================================================ power


class _Feeder(Scenario):
    lifeline = "power"
    targets = "a feeder (fdr-...) or one of its sensors"

    def resolve(self) -> list[str]:
        self.feeder, _ = self._asset_target(("feeder",))
        self.members = self._sensors_of(self.feeder.id)
        return [s.id for s in self.members]


@register
class PowerSag(_Feeder):
    """Voltage sag on a feeder (a fault elsewhere, a large motor start).

    Signature (domain.md §2.3 [V], IEEE 1159 sag: 0.1-0.9 pu for 0.5 cycle to
    1 min; IEC 61000-4-30 dip < 90 % of nominal): the rms voltage of every
    meter on the feeder and of the feeder head drops to ``depth`` pu of its
    value, then recovers.  Meters report the minimum rms of their interval
    (IEC 61000-4-30 Urms(1/2) minimum), so a sag of seconds shows in the
    next sample of every meter.

    Params: depth (retained voltage, pu, 0.6).
    """

    name = "power.sag"
    summary = "voltage sag to 0.1-0.9 pu for seconds-minutes on a feeder's meters"
    default_duration = "30s"
    defaults = {"depth": 0.6}

    def resolve(self) -> list[str]:
        super().resolve()
        if not 0.0 < self.p["depth"] < 1.0:
            raise ScenarioError("power.sag: depth must be between 0 and 1 pu")
        return [s.id for s in self.members if s.kind in ("meter", "feeder_head")]

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        hit = reported_in(t, self.t0, self.t1, engine.model.ctx(sensor).interval_ns)
        f = np.where(hit, self.p["depth"], 1.0)
        for m in ("voltage", "voltage_kv"):
            if m in v:
                v[m] = v[m] * f


@register
class PowerOutage(_Feeder):
    """Sustained outage of one feeder.

    Signature (domain.md §2.3 "Sustained outage" [V]/inference): 0 pu for more
    than a minute on all meters downstream of one feeder at once; this
    topology correlation tells an outage from meter dropouts.  Meters report
    voltage 0 and load 0 (last-gasp / battery-backed communication); the
    feeder-head load drops to 0 (its bus voltage stays); the transformer's
    load is 0 and its hot-spot cools toward ambient with the oil time
    constant.

    Params: none.
    """

    name = "power.outage"
    summary = "all meters on one feeder read 0 at once; feeder-head load drops"
    default_duration = "1h"
    defaults: ClassVar[dict[str, Any]] = {}

    def load_hook(self, sensor: Sensor) -> LoadHook | None:
        if sensor.asset != self.feeder.id:
            return None
        t0, t1 = self.t0, self.t1
        return lambda t, k: np.where(inside(t, t0, t1), 0.0, k)

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        off = inside(t, self.t0, self.t1)
        if sensor.kind == "meter":
            v["voltage"] = np.where(off, 0.0, v["voltage"])
            v["load"] = np.where(off, 0.0, v["load"])
        elif sensor.kind == "feeder_head":
            v["load"] = np.where(off, 0.0, v["load"])


@register
class PowerOverload(_Feeder):
    """Distribution-transformer overload.

    Signature (domain.md §2.3 "Transformer overload" [V]): load above 1.0 pu;
    hot-spot temperature rises with the thermal lag (IEC 60076-7 exponential
    model, tau_oil 180 min, tau_winding 4 min) toward and past 98 degC
    (normal ageing at rated load), 120 degC (normal cyclic) [V].  The load
    factor ramps from its normal value to ``peak_pu`` over ``ramp_s`` and
    stays until the end; the feeder head carries the extra load and the
    meters see a larger voltage drop.  After the window the hot-spot cools
    with the same lag.  1.8 pu is a Chinese O&M emergency level (1.75x for
    15 min outdoors, domain.md §2.2 [S]); with it the hot-spot passes 120
    degC within about 2.5 h even in a Shihezi winter.

    Params: peak_pu (1.8), ramp_s (1800).
    """

    name = "power.overload"
    summary = "transformer load > 1.0 pu, hot-spot rising with lag past 98/120 degC"
    default_duration = "6h"
    defaults = {"peak_pu": 1.8, "ramp_s": 1800.0}

    def _env(self, t: np.ndarray) -> np.ndarray:
        return step(t, self.t0, self.t1, self.p["ramp_s"])

    def load_hook(self, sensor: Sensor) -> LoadHook | None:
        if sensor.asset != self.feeder.id:
            return None
        peak = self.p["peak_pu"]
        return lambda t, k: k + (peak - k) * self._env(t)

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        if sensor.kind != "feeder_head":
            return
        tr = self.model.feeder_transformer(self.feeder.id)
        if tr is None:
            return
        k = self.model.transformer_k(tr, t)
        extra = (self.p["peak_pu"] - k) * self._env(t)
        v["load"] = v["load"] + np.maximum(extra, 0.0) * float(tr.params.get("rated_kva", 630.0)) * TR_PF


@register
class PowerFrequency(Scenario):
    """System frequency excursion (loss of a large generator or load).

    Signature (domain.md §2.3 "Frequency excursion"; GB/T 15945-2008 ±0.2 Hz
    for grids >= 3 GW, ±0.5 Hz small systems [S]): the frequency at every
    feeder head (it is one system) moves by ``delta_hz`` within ``ramp_s``,
    holds, and recovers at the end of the window.  The default -0.35 Hz
    leaves 49.8-50.2 but stays inside 49.5-50.5.

    Params: delta_hz (-0.35), ramp_s (20).  Target: any feeder (or ``city``).
    """

    name = "power.frequency"
    lifeline = "power"
    summary = "frequency excursion outside 49.8-50.2 Hz at every feeder head"
    default_duration = "5m"
    defaults = {"delta_hz": -0.35, "ramp_s": 20.0}
    targets = "city or any feeder / power sensor (the whole grid moves)"

    def resolve(self) -> list[str]:
        if self.inc.target not in ("city", "grid"):
            self._asset_target(("feeder",))
        return [s.id for s in self.city.sensors.values() if s.lifeline == "power" and s.kind == "feeder_head"]

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        r = self.p["ramp_s"] * NS
        up = np.clip((t - self.t0) / r, 0.0, 1.0)
        down = np.clip((self.t1 - t) / r, 0.0, 1.0)
        v["frequency"] = v["frequency"] + self.p["delta_hz"] * np.where(inside(t, self.t0, self.t1), np.minimum(up, down), 0.0)


# ================================================================ gas


class _GasSegment(Scenario):
    lifeline = "gas"
    targets = "a gas segment (gas-...) or one of its sensors (= the location)"

    def _segment(self) -> None:
        self.segment, at = self._asset_target(("segment",))
        self.members = self._sensors_of(self.segment.id)
        wells = [s for s in self.members if s.kind == "well_methane"] or self.members
        self.location = at if at is not None else self._pick(wells)
        self.dist = {s.id: self._dist(s, self.location) for s in self.members}


@register
class GasLeak(_GasSegment):
    """Leak on a medium-pressure gas main.

    Signature (domain.md §3.3 "Pipeline leak" and "Leak in an enclosed space"
    [S]): pressure drops quickly after the leak, largest near it and
    decaying with distance (``pressure_drop`` kPa x exp(-d / 400 m), time
    constant 2 min); methane accumulates in nearby valve wells: %LEL rises as
    ``peak_lel`` x exp(-d / 250 m) x (1 - exp(-(t - start) / tau_s)), so the
    nearest wells cross 25 %LEL (GB/T 50493-2019 1st-level alarm) and head
    for 50 %LEL (2nd level) [S], and neighbouring wells a few hundred metres
    away follow more weakly.  With the defaults the well at the leak crosses
    25 %LEL after ~15 min and 50 %LEL after ~45 min.

    Params: peak_lel (65), tau_s (1800), pressure_drop (kPa, 25).
    """

    name = "gas.leak"
    summary = "%LEL rising through 25 toward 50 at neighbouring wells while pressure drops"
    default_duration = "3h"
    defaults = {"peak_lel": 65.0, "tau_s": 1800.0, "pressure_drop": 25.0}

    def resolve(self) -> list[str]:
        self._segment()
        out = []
        for s in self.members:
            if s.kind == "pressure" or self.p["peak_lel"] * math.exp(-self.dist[s.id] / 250.0) >= 2.0:
                out.append(s.id)
        return out

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        d = self.dist[sensor.id]
        if "ch4_lel" in v:
            v["ch4_lel"] = v["ch4_lel"] + self.p["peak_lel"] * math.exp(-d / 250.0) * approach(t, self.t0, self.t1, self.p["tau_s"])
        if "pressure" in v:
            v["pressure"] = v["pressure"] - self.p["pressure_drop"] * math.exp(-d / 400.0) * approach(t, self.t0, self.t1, 120.0)


@register
class GasOverpressure(_GasSegment):
    """Regulator failure: overpressure downstream.

    Signature (domain.md §3.3 "Overpressure" [S]): downstream pressure rises
    toward or past the class upper bound (medium-pressure B: 0.2 MPa, GB
    50028-2006 [S]) over ``ramp_s`` and stays; if ``shut_after_s`` is set,
    the slam-shut valve closes then and the pressure collapses to ~0.

    Params: peak_kpa (240), ramp_s (600), shut_after_s (none).
    """

    name = "gas.overpressure"
    summary = "segment pressure rising past 200 kPa (optional slam-shut collapse)"
    default_duration = "1h"
    defaults = {"peak_kpa": 240.0, "ramp_s": 600.0, "shut_after_s": None}

    def resolve(self) -> list[str]:
        self._segment()
        return [s.id for s in self.members if s.kind == "pressure"]

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        e = step(t, self.t0, self.t1, self.p["ramp_s"])
        p = v["pressure"]
        p = p + (self.p["peak_kpa"] - p) * e
        if self.p["shut_after_s"]:
            shut = inside(t, self.t0 + int(self.p["shut_after_s"] * NS), self.t1)
            p = np.where(shut, 1.0 + 0.3 * np.abs(gauss(self.key ^ engine.model.ctx(sensor).key, t // NS)), p)
        v["pressure"] = p


# ================================================================ bridge


class _Bridge(Scenario):
    lifeline = "bridge"
    targets = "a bridge (br-...) or one of its sensors"

    def _bridge(self) -> None:
        self.bridge, _ = self._asset_target(("bridge",))
        self.members = self._sensors_of(self.bridge.id)


@register
class BridgeOverload(_Bridge):
    """Overload / heavy-vehicle events on a bridge.

    Signature (domain.md §4.3 "Overload / heavy-vehicle event" [S]): short
    strain and deflection peaks (seconds) well above the daily traffic
    envelope, correlated across the gauges along the span (mode shape
    sin(pi x / L)), with more vibration.  ``events`` heavy vehicles cross in
    the window; each adds ``load_share`` x the design value (x a dynamic
    factor 1.0-1.15) at midspan.  Loggers report the peak of their interval,
    so every gauge shows the passage in its next sample.  With 0.95 the
    midspan gauges pass the 0.85 share (orange) of the design value; the
    design-share levels themselves are settings (domain.md §8.1 [U]).

    Params: load_share (0.95), events (3).
    """

    name = "bridge.overload"
    summary = "short strain/deflection peaks above the traffic envelope, correlated along the span"
    default_duration = "30m"
    defaults = {"load_share": 0.95, "events": 3}

    def resolve(self) -> list[str]:
        self._bridge()
        n = max(1, self.p["events"])
        u = uniform(self.key + 2, np.arange(2 * n))
        span_ns = self.t1 - self.t0
        self.passages = [int(self.t0 + span_ns * (i + 0.2 + 0.6 * u[i]) / n) for i in range(n)]
        self.dynamic = [1.0 + 0.15 * u[n + i] for i in range(n)]
        return [s.id for s in self.members
                if s.kind in ("strain_gauge", "accelerometer") or (s.kind == "displacement" and s.params.get("role") != "bearing")]

    def _peaks(self, sensor: Sensor, t: np.ndarray, engine: Any) -> np.ndarray:
        iv = engine.model.ctx(sensor).interval_ns
        out = np.zeros(t.shape)
        for p, dyn in zip(self.passages, self.dynamic, strict=True):
            out = np.maximum(out, np.where((t >= p) & (t < p + iv), dyn, 0.0))
        return out

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        pk = self._peaks(sensor, t, engine)
        shape = math.sin(math.pi * float(sensor.params.get("pos", 0.5)))
        a = self.bridge.params
        if sensor.kind == "strain_gauge":
            v["strain"] = v["strain"] + pk * self.p["load_share"] * float(a.get("strain_design", 400.0)) * shape
        elif sensor.kind == "displacement":
            v["deflection"] = v["deflection"] + pk * self.p["load_share"] * float(a.get("deflection_design", 60.0)) * shape
        elif sensor.kind == "accelerometer":
            v["vibration"] = v["vibration"] * (1.0 + 2.5 * pk * shape)


@register
class BridgeDamage(_Bridge):
    """Progressive structural damage.

    Signature (domain.md §4.3 "Progressive structural damage" [S]): the
    temperature-compensated natural frequency drops by a few % (Z24 second
    mode 5.02 -> 4.72 Hz, -6 %; controlled-damage drops of 0.37-1.4 %; a 5 %
    tolerance is used as an indicator [S]).  The drop grows linearly to
    ``drop_pct`` over ``ramp_s`` and stays; the normal temperature dependence
    (-0.15 %/K) continues on top, so a detector has to compensate for it.

    Params: drop_pct (4.0), ramp_s (21600).
    """

    name = "bridge.damage"
    summary = "temperature-compensated natural-frequency drop of a few %"
    default_duration = "3d"
    defaults = {"drop_pct": 4.0, "ramp_s": 21600.0}

    def resolve(self) -> list[str]:
        self._bridge()
        return [s.id for s in self.members if s.kind == "accelerometer"]

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        v["frequency"] = v["frequency"] * (1.0 - self.p["drop_pct"] / 100.0 * step(t, self.t0, self.t1, self.p["ramp_s"]))


@register
class BridgeBearingSeizure(_Bridge):
    """Seized bearing / blocked expansion joint.

    Signature (domain.md §4.3 "Bearing seizure / joint blockage" [S]): the
    bearing displacement loses its linear relation to temperature (expected
    dL = alpha L dT; measured movement much smaller): it stays at its value
    at the onset.  The restrained movement shows as extra strain
    -restraint x alpha x (T - T_onset) (alpha 1e-5 /K) in the girder gauges.

    Params: restraint (0.5).
    """

    name = "bridge.bearing_seizure"
    summary = "bearing displacement loses its temperature relation; restraint strain"
    default_duration = "7d"
    defaults = {"restraint": 0.5}

    def resolve(self) -> list[str]:
        self._bridge()
        return [s.id for s in self.members
                if (s.kind == "displacement" and s.params.get("role") == "bearing") or s.kind == "strain_gauge"]

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        on = inside(t, self.t0, self.t1)
        if not on.any():
            return
        m = self.model
        t_on = np.array([self.t0], dtype=np.int64)
        if sensor.kind == "displacement":
            frozen = m.bearing_movement(sensor, t_on)[0]
            v["deflection"] = np.where(on, v["deflection"] - m.bearing_movement(sensor, t) + frozen, v["deflection"])
        else:
            te = m.bridge_effective_temp(sensor.asset, t)
            te0 = m.bridge_effective_temp(sensor.asset, t_on)[0]
            v["strain"] = v["strain"] - np.where(on, self.p["restraint"] * 1.0e-5 * 1.0e6 * (te - te0), 0.0)


# ================================================================ air


class _Air(Scenario):
    lifeline = "air"
    targets = "city, a district, an air area (air-...) or a station"

    def resolve(self) -> list[str]:
        tid = self.inc.target
        stations = [s for s in self.city.sensors.values() if s.lifeline == "air"]
        if tid == "city":
            return [s.id for s in stations]
        if tid in self.city.districts:
            hit = [s.id for s in stations if s.district == tid]
        elif tid in self.city.assets and self.city.assets[tid].lifeline == "air":
            hit = [s.id for s in stations if s.asset == tid]
        elif tid in self.city.sensors and self.city.sensors[tid].lifeline == "air":
            hit = [tid]
        else:
            raise ScenarioError(f"{self.name}: target {tid!r} is not 'city', a district, an air area or an air station")
        return hit


@register
class AirInversion(_Air):
    """Winter heating + temperature-inversion pollution episode.

    Signature (domain.md §5.3, from the sourced patterns of §5.1 [S]; the
    co-variation is an inference there): PM2.5, CO and SO2 rise together, the
    PM2.5/PM10 ratio is high, with a multi-day build-up under calm conditions
    and the evening surge on top; AQI 200-500 (Ürümqi 2015-16: 37 heavy and
    8 severe days in 60 [S]).  Extra PM2.5 = (peak_pm25 - 70) x build-up
    envelope x (0.8 + 0.2 x evening pattern); CO +0.012 mg/m3, SO2 +0.25,
    NO2 +0.12 and PM10 +1/0.85 per ug/m3 of extra PM2.5; O3 falls (titration,
    no sun).  The build-up is an S-curve over ``buildup_s`` (default 70 % of
    the window); the air clears linearly over the last ``clear_s``.

    Params: peak_pm25 (ug/m3, 320 -> AQI about 370), buildup_s (70 % of the
    window), clear_s (21600).
    """

    name = "air.inversion"
    summary = "PM2.5, CO, SO2 rise together over days (AQI 200-500)"
    default_duration = "3d"
    defaults = {"peak_pm25": 320.0, "buildup_s": None, "clear_s": 21600.0}

    def _env(self, t: np.ndarray) -> np.ndarray:
        dur = (self.t1 - self.t0) / NS
        build = self.p["buildup_s"] or 0.7 * dur
        clear = min(self.p["clear_s"], 0.3 * dur)
        x = np.clip((t - self.t0) / (build * NS), 0.0, 1.0)
        up = x * x * (3.0 - 2.0 * x)
        down = np.clip((self.t1 - t) / (clear * NS), 0.0, 1.0)
        return np.where(inside(t, self.t0, self.t1), up * down, 0.0)

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        e = self._env(t)
        evening = PM_DAY(local_time(t, self.model.offset_h).hour)
        extra = max(self.p["peak_pm25"] - 70.0, 0.0) * e * (0.8 + 0.2 * evening)
        v["pm25"] = v["pm25"] + extra
        v["pm10"] = v["pm10"] + extra / 0.85
        v["co"] = v["co"] + 0.012 * extra
        v["so2"] = v["so2"] + 0.25 * extra
        v["no2"] = v["no2"] + 0.12 * extra
        v["o3"] = v["o3"] * (1.0 - 0.6 * e)


@register
class AirDust(_Air):
    """Dust event.

    Signature (domain.md §5.3 "Dust event" [S]): PM10 jumps far above PM2.5
    (low PM2.5/PM10 ratio) with strong wind; gases not elevated; hours to
    days.  PM10 rises to about ``peak_pm10`` over ``rise_s``, fluctuates with
    gusts, and falls over the last quarter of the window; PM2.5 gains 12 % of
    the extra PM10.  The default 500 ug/m3 is IAQI 400 (severe) and stays
    inside the HJ 633-2012 PM10 table (top 600) [V].

    Params: peak_pm10 (500), rise_s (7200).
    """

    name = "air.dust"
    summary = "PM10 jumps far above PM2.5; gases unchanged"
    default_duration = "12h"
    defaults = {"peak_pm10": 500.0, "rise_s": 7200.0}

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        dur = self.t1 - self.t0
        up = np.clip((t - self.t0) / (self.p["rise_s"] * NS), 0.0, 1.0)
        down = np.clip((self.t1 - t) / (0.25 * dur), 0.0, 1.0)
        gust = 1.0 + 0.15 * np.tanh(smooth(self.key + 3, t, 1800.0))
        e = np.where(inside(t, self.t0, self.t1), np.minimum(up, down), 0.0)
        extra = max(self.p["peak_pm10"] - 100.0, 0.0) * e * gust
        v["pm10"] = v["pm10"] + extra
        v["pm25"] = v["pm25"] + 0.12 * extra


# ================================================================ sensor faults


class _Fault(Scenario):
    """Sensor faults (domain.md §0.2 [V]: EPyT-Flow / sensorfaultmodels; vtnsi/fault_injector)."""

    fault = True
    targets = "a sensor id"

    def resolve(self) -> list[str]:
        self.target_sensor = self._sensor_target()
        self.metrics = list(self.model.values(self.target_sensor, np.array([self.t0], dtype=np.int64)))
        metric = self.p.get("metric")
        if metric is not None and metric not in self.metrics:
            raise ScenarioError(f"{self.name}: {self.target_sensor.id} has no metric {metric!r} ({', '.join(self.metrics)})")
        return [self.target_sensor.id]

    def _chosen(self) -> list[str]:
        m = self.p.get("metric")
        return [m] if m else self.metrics

    def _onset(self, sensor: Sensor, engine: Any) -> dict[str, float]:
        """The sensor's (physical) values at its first sample in the window."""
        k = engine.model.sample_index(sensor, self.t0)
        c = engine.model.ctx(sensor)
        t = np.array([k * c.interval_ns + c.phase_ns], dtype=np.int64)
        return {m: float(a[0]) for m, a in engine.physical_values(sensor, t).items()}


@register
class FaultStuck(_Fault):
    """Stuck sensor (flat line).

    Signature (domain.md §0.2 [V]: stuck readings in vtnsi/fault_injector;
    flat-line rule max - min < tolerance over 12 samples in open-fdd): the
    sensor keeps sending, but the values stay at their value at the onset
    (or at ``value``, e.g. 0 for EPyT-Flow's stuck-at-zero).

    Params: metric (default: all metrics), value (default: the onset value).
    """

    name = "fault.stuck"
    summary = "values frozen at the onset value (or a given value)"
    default_duration = "6h"
    defaults = {"metric": None, "value": None}

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        on = inside(t, self.t0, self.t1)
        if not on.any():
            return
        onset = self._onset(sensor, engine) if self.p["value"] is None else {}
        for m in self._chosen():
            val = float(self.p["value"]) if self.p["value"] is not None else onset[m]
            v[m] = np.where(on, val, v[m])


@register
class FaultDrift(_Fault):
    """Sensor drift.

    Signature (domain.md §0.2 [V], EPyT-Flow drift x + b k (t - t0)): the
    reading departs linearly from the truth at ``rate`` units per hour.
    Default rate: 5 % per hour of the onset value (at least 1 % of the
    metric's value scale).

    Params: metric (default: the kind's first metric), rate (units/h).
    """

    name = "fault.drift"
    summary = "linear drift away from the true value"
    default_duration = "1d"
    defaults = {"metric": None, "rate": None}

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        on = inside(t, self.t0, self.t1)
        if not on.any():
            return
        m = self.p["metric"] or self.metrics[0]
        rate = self.p["rate"]
        if rate is None:
            x0 = self._onset(sensor, engine)[m]
            rate = 0.05 * max(abs(x0), 0.2)
        hours = (t - self.t0) / (3600.0 * NS)
        v[m] = v[m] + np.where(on, float(rate) * hours, 0.0)


@register
class FaultBias(_Fault):
    """Constant offset (bias).

    Signature (domain.md §0.2 [V], EPyT-Flow constant shift x + b c with the
    smooth ramp-in b = 1 - exp(-(t - t0)) (t in seconds here: one minute)).
    Default offset: +10 % of the onset value.

    Params: metric (default: the kind's first metric), offset (units).
    """

    name = "fault.bias"
    summary = "constant offset on one metric"
    default_duration = "1d"
    defaults = {"metric": None, "offset": None}

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        on = inside(t, self.t0, self.t1)
        if not on.any():
            return
        m = self.p["metric"] or self.metrics[0]
        off = self.p["offset"]
        if off is None:
            off = 0.1 * self._onset(sensor, engine)[m]
        v[m] = v[m] + float(off) * approach(t, self.t0, self.t1, 60.0)


@register
class FaultSpike(_Fault):
    """Isolated spikes (outliers).

    Signature (domain.md §0.2 [S]: outliers are among the dominant real error
    types): each sample in the window is, with probability ``prob``, replaced
    by x +/- magnitude x scale x U(0.5, 1), scale = max(|x|, 2 % of the
    metric's range); clipped to the metric's physical range.

    Params: metric (default: all), prob (0.05), magnitude (3.0).
    """

    name = "fault.spike"
    summary = "random isolated spikes"
    default_duration = "6h"
    defaults = {"metric": None, "prob": 0.05, "magnitude": 3.0}

    def apply(self, sensor: Sensor, t: np.ndarray, v: Values, engine: Any) -> None:
        on = inside(t, self.t0, self.t1)
        if not on.any():
            return
        ms = t // 1_000_000
        hit = on & (uniform(self.key + 5, ms) < self.p["prob"])
        sign = np.where(uniform(self.key + 6, ms) < 0.5, -1.0, 1.0)
        size = 0.5 + 0.5 * uniform(self.key + 7, ms)
        for m in self._chosen():
            lo, hi = self.model._lifelines[sensor.lifeline].metrics[m].range
            scale = np.maximum(np.abs(v[m]), 0.02 * (hi - lo))
            v[m] = np.where(hit, v[m] + sign * self.p["magnitude"] * scale * size, v[m])


@register
class FaultDropout(_Fault):
    """Dropout: the sensor is offline.

    Signature (domain.md §0.2 [V]: missing data, vtnsi/fault_injector): no
    messages at all in the window (sequence numbers skip the gap).

    Params: none.
    """

    name = "fault.dropout"
    summary = "no messages in the window (offline)"
    default_duration = "1h"
    defaults: ClassVar[dict[str, Any]] = {}

    def drop_mask(self, sensor: Sensor, t: np.ndarray) -> np.ndarray | None:
        return inside(t, self.t0, self.t1)


@register
class FaultClockSkew(_Fault):
    """Clock skew: a device on another clock convention.

    Signature (domain.md §0.1 [S]): Xinjiang runs Beijing time (UTC+8) and
    Xinjiang time (UTC+6) side by side, so a misconfigured device is off by
    exactly 2 h.  Readings are sent at their true time, but their ``ts`` is
    event time + ``offset_s`` (default +2 h).

    Params: offset_s (7200).
    """

    name = "fault.clock_skew"
    summary = "timestamps shifted by +2 h (event time unchanged)"
    default_duration = "6h"
    defaults = {"offset_s": 7200.0}

    def ts_offset(self, sensor: Sensor, t: np.ndarray) -> np.ndarray | None:
        return np.where(inside(t, self.t0, self.t1), int(round(self.p["offset_s"] * NS)), 0).astype(np.int64)


def compose_hooks(hooks: list[LoadHook]) -> LoadHook | None:
    if not hooks:
        return None
    if len(hooks) == 1:
        return hooks[0]

    def run(t: np.ndarray, k: np.ndarray, hooks: list[LoadHook] = hooks) -> np.ndarray:
        for h in hooks:
            k = h(t, k)
        return k

    return run

