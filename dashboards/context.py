"""What every dashboard builder reads: the city model, the lifeline descriptions and the build options."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from dashboards.grafana import CustomVariable, QueryVariable, TextboxVariable
from lifewatch.city import Asset, City
from lifewatch.lifelines import Lifeline

DEFAULT_API_URL = "http://localhost:18080"


@dataclass(frozen=True)
class BuildOptions:
    # base URL of the alert API (`lifewatch api`); rows of the alert tables link to <api_url>/console/#/alerts/<id>
    api_url: str = DEFAULT_API_URL
    # HJ 633 rule set for the PM2.5/PM10 colour bands: "HJ 633-2026" (in force from 2026-03-01) or "HJ 633-2012"
    aqi_rules: str = "HJ 633-2026"
    # retention policies the $rp variable offers; the first is the default (rollups go after it)
    rps: tuple[str, ...] = ("autogen",)


def slug(text: str, max_len: int = 24) -> str:
    """
    >>> slug("Shihezi"), slug("Ürümqi New Town")
    ('shihezi', 'urumqi-new-town')
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    s = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return (s or "city")[:max_len].strip("-")


@dataclass
class Context:
    city: City
    lifelines: dict[str, Lifeline]
    options: BuildOptions = field(default_factory=BuildOptions)

    @property
    def slug(self) -> str:
        return slug(self.city.name)

    def uid(self, name: str) -> str:
        return f"lw-{self.slug}-{name}"

    @property
    def tags(self) -> list[str]:
        return ["lifewatch", self.slug]

    def title(self, what: str) -> str:
        return f"{self.city.name} · {what}"

    @property
    def centre(self) -> tuple[float, float]:
        lats = [s.lat for s in self.city.sensors.values()] or [d.lat for d in self.city.districts.values()]
        lons = [s.lon for s in self.city.sensors.values()] or [d.lon for d in self.city.districts.values()]
        return (min(lats) + max(lats)) / 2, (min(lons) + max(lons)) / 2

    def assets(self, lifeline: str, type_: str | None = None) -> list[Asset]:
        return [a for a in self.city.assets.values() if a.lifeline == lifeline and (type_ is None or a.type == type_)]

    def links(self) -> list[dict[str, Any]]:
        return [{"asDropdown": True, "icon": "external link", "includeVars": False, "keepTime": True,
                 "tags": self.tags, "targetBlank": False, "title": "Lifewatch dashboards", "tooltip": "", "type": "dashboards", "url": ""}]

    # ------------------------------------------------------------ variables

    def rp_variable(self) -> CustomVariable:
        return CustomVariable("rp", "Retention policy", self.options.rps,
                              description="Where readings are read from. Long ranges: pick a rollup policy once they exist "
                                          "(same field names, coarser points).")

    def district_variable(self, lifeline: str) -> QueryVariable:
        return QueryVariable("district", "District", f'SHOW TAG VALUES FROM "{lifeline}" WITH KEY = "district"')

    def sensor_variable(self, lifeline: str) -> QueryVariable:
        return QueryVariable("sensor", "Sensor",
                             f'SHOW TAG VALUES FROM "{lifeline}" WITH KEY = "sensor_id" WHERE "district" =~ /^$district$/')

    def api_variable(self) -> TextboxVariable:
        return TextboxVariable("api_url", "Alert API", self.options.api_url,
                               description="Base URL of the alert API; rows link to its crew console.")

    def unit_variable(self) -> CustomVariable:
        units = sorted({u.id for u in self.city.units.values()} | {u.id for u in self.city.district_units.values()})
        return CustomVariable("unit", "Unit", tuple(units), include_all=True, multi=True)

    def districts_markdown(self) -> str:
        lines = ["| id | district | 名称 |", "|---|---|---|"]
        lines += [f"| {d.id} | {d.name} | {d.name_zh} |" for d in self.city.districts.values()]
        return "\n".join(lines)
