"""The city model: districts, responsible units, sensors and their assets.

A city file (YAML) says where every sensor is and which asset it belongs to
(the DMA of a water sensor, the feeder of a power meter, the bridge of a
bridge sensor, ...).  Simulators generate from it, alerts are routed with it
(lifeline + district -> unit), and dashboards draw its map.

Schema (``simulators/cities/shihezi.yaml`` is the demo city)::

    name: Shihezi
    utc_offset_hours: 6          # local time (Xinjiang, UTC+6); storage is always UTC
    units:                       # lifeline -> responsible unit (optionally per district)
      water: {id: water-co, name: ..., name_zh: ...}
    districts: [{id: d01, name: ..., name_zh: ..., lat: .., lon: ..}]
    assets:    [{id: dma-d01-1, lifeline: water, type: dma, district: d01, params: {...}}]
    sensors:   [{id: w-d01-001, lifeline: water, kind: dma_inlet, district: d01,
                 asset: dma-d01-1, lat: .., lon: .., params: {...}}]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from lifewatch.lifelines import LIFELINE_IDS, load_lifelines


@dataclass(frozen=True, slots=True)
class Unit:
    id: str
    name: str
    name_zh: str = ""
    lifeline: str = ""


@dataclass(frozen=True, slots=True)
class District:
    id: str
    name: str
    lat: float
    lon: float
    name_zh: str = ""


@dataclass(frozen=True, slots=True)
class Asset:
    """A DMA, feeder, gas network segment, bridge or air-monitoring area."""

    id: str
    lifeline: str
    type: str
    district: str
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Sensor:
    id: str
    lifeline: str
    kind: str
    district: str
    asset: str
    lat: float
    lon: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def interval_s(self) -> float:
        return float(self.params.get("interval_s", load_lifelines()[self.lifeline].sensor_kinds[self.kind].interval_s))


@dataclass(frozen=True)
class City:
    name: str
    utc_offset_hours: float
    units: dict[str, Unit]  # lifeline -> unit
    districts: dict[str, District]
    assets: dict[str, Asset]
    sensors: dict[str, Sensor]
    district_units: dict[tuple[str, str], Unit] = field(default_factory=dict)  # (lifeline, district) overrides

    def unit_for(self, lifeline: str, district: str) -> Unit:
        """Routing: the unit responsible for a lifeline in a district."""
        return self.district_units.get((lifeline, district)) or self.units[lifeline]

    @cached_property
    def sensors_by_asset(self) -> dict[str, list[Sensor]]:
        out: dict[str, list[Sensor]] = {}
        for s in self.sensors.values():
            out.setdefault(s.asset, []).append(s)
        return out

    def sensors_of(self, lifeline: str) -> list[Sensor]:
        return [s for s in self.sensors.values() if s.lifeline == lifeline]


class CityError(ValueError):
    pass


def parse_city(doc: dict[str, Any]) -> City:
    lifelines = load_lifelines()
    units = {}
    for lid, u in (doc.get("units") or {}).items():
        if lid not in LIFELINE_IDS:
            raise CityError(f"units: unknown lifeline {lid!r}")
        units[lid] = Unit(u["id"], u["name"], u.get("name_zh", ""), lid)
    missing = set(LIFELINE_IDS) - set(units)
    if missing:
        raise CityError(f"units: no responsible unit for {sorted(missing)}")
    district_units = {}
    for o in doc.get("district_units") or []:
        district_units[(o["lifeline"], o["district"])] = Unit(o["id"], o["name"], o.get("name_zh", ""), o["lifeline"])
    districts = {
        d["id"]: District(d["id"], d["name"], float(d["lat"]), float(d["lon"]), d.get("name_zh", ""))
        for d in doc["districts"]
    }
    assets = {}
    for a in doc.get("assets") or []:
        if a["district"] not in districts:
            raise CityError(f"asset {a['id']}: unknown district {a['district']!r}")
        assets[a["id"]] = Asset(a["id"], a["lifeline"], a["type"], a["district"], a.get("name", ""), a.get("params") or {})
    sensors = {}
    for s in doc["sensors"]:
        sid = s["id"]
        if sid in sensors:
            raise CityError(f"sensor {sid}: duplicate id")
        if s["lifeline"] not in lifelines:
            raise CityError(f"sensor {sid}: unknown lifeline {s['lifeline']!r}")
        if s["kind"] not in lifelines[s["lifeline"]].sensor_kinds:
            raise CityError(f"sensor {sid}: unknown kind {s['kind']!r} for {s['lifeline']}")
        if s["district"] not in districts:
            raise CityError(f"sensor {sid}: unknown district {s['district']!r}")
        if s["asset"] not in assets:
            raise CityError(f"sensor {sid}: unknown asset {s['asset']!r}")
        sensors[sid] = Sensor(
            sid, s["lifeline"], s["kind"], s["district"], s["asset"], float(s["lat"]), float(s["lon"]), s.get("params") or {}
        )
    return City(
        name=doc["name"],
        utc_offset_hours=float(doc.get("utc_offset_hours", 0)),
        units=units,
        districts=districts,
        assets=assets,
        sensors=sensors,
        district_units=district_units,
    )


def demo_city_path() -> Path:
    return Path(str(resources.files("simulators") / "cities" / "shihezi.yaml"))


def load_city(path: str | Path | None = None) -> City:
    p = Path(path) if path else demo_city_path()
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CityError(f"city file not found: {p}") from None
    return parse_city(doc)
