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


LEVEL_NAMES: tuple[str, ...] = ("blue", "yellow", "orange", "red")  # severity 1..4 (lifewatch.levels: IV..I)


@dataclass(frozen=True, slots=True)
class Threshold:
    """A standard threshold on one metric, as the lifeline YAML states it.

    ``levels`` maps warning-level names (blue, yellow, orange, red) to the
    boundary for that level; its shape depends on ``op`` (a number for
    ``<``/``>``, ``[lo, hi]`` for the ``band_*`` ops, a share for
    ``design_share``, class names for ``ieee1159``).  ``level_sources`` gives
    the source of each level's number where it differs from ``source``.
    ``rule_set`` names the rule set these levels belong to; ``rule_sets``
    holds alternative sets (partial specs merged over this one) that a
    configuration or a sensor can select.  ``params`` are op-specific
    settings (see :mod:`detectors.thresholds`).  ``sensor_kinds``, when set,
    limits the threshold to those kinds of sensor.
    """

    metric: str
    name: str
    op: str
    levels: dict[str, Any]
    source: str
    nominal: float | None = None
    level_sources: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    rule_set: str = "default"
    rule_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    sensor_kinds: tuple[str, ...] = ()


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


def parse_threshold(lifeline: str, t: dict[str, Any]) -> Threshold:
    """One entry of a lifeline's ``thresholds:`` list (every one must name its source)."""
    name = t.get("name")
    if not t.get("source"):
        raise ValueError(f"lifeline {lifeline}: threshold {name} has no source")
    for where, levels in [("levels", t.get("levels") or {})] + [
        (f"rule_sets.{k}.levels", (v or {}).get("levels") or {}) for k, v in (t.get("rule_sets") or {}).items()
    ]:
        unknown = set(levels) - set(LEVEL_NAMES)
        if unknown:
            raise ValueError(f"lifeline {lifeline}: threshold {name} {where} has unknown levels {sorted(unknown)}")
    nominal = t.get("nominal")
    return Threshold(
        metric=t["metric"],
        name=t["name"],
        op=t["op"],
        levels=dict(t["levels"]),
        source=t["source"],
        nominal=float(nominal) if nominal is not None else None,
        level_sources=dict(t.get("level_sources") or {}),
        params=dict(t.get("params") or {}),
        rule_set=str(t.get("rule_set", "default")),
        rule_sets={str(k): dict(v or {}) for k, v in (t.get("rule_sets") or {}).items()},
        sensor_kinds=tuple(t.get("sensor_kinds") or ()),
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
    thresholds = [parse_threshold(doc["id"], t) for t in doc.get("thresholds") or []]
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
