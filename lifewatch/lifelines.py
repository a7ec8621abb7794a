"""The five lifelines as declarative data.

Each lifeline is one YAML description in ``lifewatch/lifelines/`` that the
contract validation, the simulators, the detectors and the dashboards all
read: metrics with units, physical ranges and missing-value sentinels, the
sensor kinds, and the standard thresholds with their sources.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

import yaml

LIFELINE_IDS: tuple[str, ...] = ("water", "power", "gas", "bridge", "air")


@dataclass(frozen=True, slots=True)
class Metric:
    name: str
    unit: str
    range: tuple[float, float]
    description: str = ""
    # numbers that mean "missing" for this metric only (e.g. -200 in UCI Air Quality)
    sentinel_numbers: frozenset[float] = frozenset()
    # strings that mean "missing" (e.g. "NaN", "NA")
    sentinel_strings: frozenset[str] = frozenset()
    nan_is_sentinel: bool = False


@dataclass(frozen=True, slots=True)
class SensorKind:
    name: str
    metrics: tuple[str, ...]
    interval_s: float
    nominal: dict[str, float] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str
    name: str
    op: str
    levels: dict[str, Any]
    source: str
    nominal: float | None = None


@dataclass(frozen=True, slots=True)
class Lifeline:
    id: str
    title: str
    title_zh: str
    responsible: str
    metrics: dict[str, Metric]
    sensor_kinds: dict[str, SensorKind]
    thresholds: tuple[Threshold, ...]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def _metric(name: str, spec: dict[str, Any]) -> Metric:
    numbers: set[float] = set()
    strings: set[str] = set()
    nan = False
    for s in spec.get("sentinels") or []:
        if isinstance(s, str):
            strings.add(s)
            if s.lower() == "nan":
                nan = True
        elif isinstance(s, float) and math.isnan(s):
            nan = True
            strings.add("NaN")
        else:
            numbers.add(float(s))
    lo, hi = spec["range"]
    return Metric(
        name=name,
        unit=str(spec["unit"]),
        range=(float(lo), float(hi)),
        description=spec.get("description", ""),
        sentinel_numbers=frozenset(numbers),
        sentinel_strings=frozenset(strings),
        nan_is_sentinel=nan,
    )


def parse_lifeline(doc: dict[str, Any]) -> Lifeline:
    metrics = {name: _metric(name, spec) for name, spec in doc["metrics"].items()}
    kinds = {}
    for name, spec in doc["sensor_kinds"].items():
        unknown = set(spec["metrics"]) - set(metrics)
        if unknown:
            raise ValueError(f"lifeline {doc['id']}: sensor kind {name} names unknown metrics {sorted(unknown)}")
        kinds[name] = SensorKind(
            name=name,
            metrics=tuple(spec["metrics"]),
            interval_s=float(spec.get("interval_s", 60)),
            nominal={k: float(v) for k, v in (spec.get("nominal") or {}).items()},
            description=spec.get("description", ""),
        )
    thresholds = []
    for t in doc.get("thresholds") or []:
        if not t.get("source"):
            raise ValueError(f"lifeline {doc['id']}: threshold {t.get('name')} has no source")
        thresholds.append(
            Threshold(
                metric=t["metric"],
                name=t["name"],
                op=t["op"],
                levels=dict(t["levels"]),
                source=t["source"],
                nominal=t.get("nominal"),
            )
        )
    return Lifeline(
        id=doc["id"],
        title=doc["title"],
        title_zh=doc.get("title_zh", ""),
        responsible=doc["responsible"],
        metrics=metrics,
        sensor_kinds=kinds,
        thresholds=tuple(thresholds),
        raw=doc,
    )


@cache
def load_lifelines() -> dict[str, Lifeline]:
    """All five lifeline descriptions, keyed by id (read once, on first use)."""
    out: dict[str, Lifeline] = {}
    base = resources.files("lifewatch") / "lifelines"
    for lid in LIFELINE_IDS:
        doc = yaml.safe_load((base / f"{lid}.yaml").read_text(encoding="utf-8"))
        if doc.get("id") != lid:
            raise ValueError(f"{lid}.yaml declares id {doc.get('id')!r}")
        out[lid] = parse_lifeline(doc)
    return out
