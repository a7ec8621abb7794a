"""Build the detector pipeline from the lifeline descriptions (and an optional config file).

Each lifeline's YAML names its detectors under ``detectors:``::

    detectors:
      stats:                         # statistical scorers (detectors.stats_stage.StatStage)
        - {scorer: seasonal_robust_z, metrics: [flow, pressure]}
        - {scorer: cusum, metrics: [flow], params: {h: 8}}
      health: [offline, clock_skew, stuck, spike, drift]   # detectors.health
      rules:                         # detectors.rules, by name, with parameters
        water_burst: {}
        water_leak: {gamma: 0.3}

Standard thresholds come from the ``thresholds:`` sections (one
:class:`~detectors.thresholds.ThresholdStage`), learned models from the model
directory (:class:`~detectors.learned.stage.LearnedStage`, only when models
exist).  A config file (``LIFEWATCH_DETECTOR_CONFIG`` or ``--config``) can
override anything::

    thresholds: {water.end_pressure_low: {levels: {yellow: 0.15}}}
    stats: {seasonal_robust_z: {levels: {blue: 5}}}     # per scorer, or per stage name (water.seasonal_robust_z)
    rules: {water_burst: {k_flow: 5}}                    # per rule: parameters
    health: {stuck: {window: 12}}                        # per check: parameters
    disable: [spike, rate_of_change]                     # drop detectors by name (scorer or stage name)
    learned: false

Stage order: timing health (offline, clock skew) first, then thresholds,
statistics, the other health checks, rules, learned.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from detectors.pipeline import DetectorPipeline, Stage
from lifewatch.city import City
from lifewatch.lifelines import LIFELINE_IDS, Lifeline, load_lifelines

log = logging.getLogger("lifewatch.detectors")


class DetectorConfigError(ValueError):
    pass


def load_config(path: str | Path | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        doc = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise DetectorConfigError(f"detector config not found: {path}") from None
    if not isinstance(doc, dict):
        raise DetectorConfigError(f"{path}: expected a mapping at the top level")
    unknown = set(doc) - {"thresholds", "stats", "rules", "health", "disable", "learned"}
    if unknown:
        raise DetectorConfigError(f"{path}: unknown sections {sorted(unknown)}")
    return doc


def _health_classes() -> dict[str, type[Stage]]:
    from detectors import health

    return {c.name: c for c in (getattr(health, n) for n in health.__all__) if isinstance(c, type)}


def _rule_classes() -> dict[str, type[Stage]]:
    from detectors import rules

    return {c.name: c for c in (getattr(rules, n) for n in rules.__all__) if isinstance(c, type)}


def build_pipeline(
    city: City | None,
    config: Mapping[str, Any] | None = None,
    *,
    lifelines: Mapping[str, Lifeline] | None = None,
    model_dir: Path | None = None,
) -> DetectorPipeline:
    from detectors.stats_stage import StatStage
    from detectors.thresholds import ThresholdStage

    cfg = dict(config or {})
    lifelines = lifelines or load_lifelines()
    disabled = set(cfg.get("disable") or [])
    health_cls, rule_cls = _health_classes(), _rule_classes()

    stat_specs: list[tuple[str, str, list[str], dict[str, Any]]] = []  # (stage name, scorer, metrics, kwargs)
    health_names: list[str] = []
    rules: dict[str, dict[str, Any]] = {}
    for lid in LIFELINE_IDS:
        spec = lifelines[lid].raw.get("detectors") or {}
        for s in spec.get("stats") or []:
            scorer = s["scorer"]
            # one stage per entry: a lifeline's parameters never leak into another's
            name = s.get("name") or f"{lid}.{scorer}"
            kw = {k: s[k] for k in ("params", "levels", "min_points", "clear_points", "kind") if k in s}
            stat_specs.append((name, scorer, [f"{lid}.{m}" for m in s["metrics"]], kw))
        for h in spec.get("health") or []:
            if h not in health_cls:
                raise DetectorConfigError(f"{lid}.yaml: unknown health check {h!r}; known: {sorted(health_cls)}")
            if h not in health_names:
                health_names.append(h)
        for r, params in (spec.get("rules") or {}).items():
            if r not in rule_cls:
                raise DetectorConfigError(f"{lid}.yaml: unknown rule {r!r}; known: {sorted(rule_cls)}")
            rules[r] = dict(params or {})

    timing = [h for h in ("offline", "clock_skew") if h in health_names]
    other_health = [h for h in health_names if h not in timing]
    hcfg = cfg.get("health") or {}
    stages: list[Stage] = [health_cls[h](**(hcfg.get(h) or {})) for h in timing if h not in disabled]

    if "threshold" not in disabled:
        th = ThresholdStage(cfg.get("thresholds"), lifelines=lifelines)
        if city is not None:
            th.check_city(city)
        stages.append(th)

    scfg = cfg.get("stats") or {}
    for name, scorer, metrics, kw in stat_specs:
        if name in disabled or scorer in disabled:
            continue
        # config overrides by scorer (all its stages) then by stage name (one of them)
        merged = {**kw, **(scfg.get(scorer) or {}), **(scfg.get(name) or {})}
        stages.append(StatStage(scorer, metrics, name=name, **merged))

    stages += [health_cls[h](**(hcfg.get(h) or {})) for h in other_health if h not in disabled]
    rcfg = cfg.get("rules") or {}
    stages += [rule_cls[r](**{**p, **(rcfg.get(r) or {})}) for r, p in rules.items() if r not in disabled]

    if cfg.get("learned", True) and model_dir is not None and Path(model_dir).is_dir() and any(Path(model_dir).iterdir()):
        from detectors.learned.stage import LearnedStage

        stages.append(LearnedStage(model_dir))
    log.info("detector pipeline: %s", ", ".join(s.name for s in stages))
    return DetectorPipeline(stages, city)


def build_from_settings(settings, city: City | None, config_path: str | None = None) -> DetectorPipeline:  # noqa: ANN001
    cfg = load_config(config_path or getattr(settings, "detector_config", "") or None)
    return build_pipeline(city, cfg, model_dir=Path(settings.state_dir) / "models")


def cli_list(args, settings) -> int:  # noqa: ANN001
    """``lifewatch detectors list``: the stages the descriptions (and config) build, with their state budget."""
    from lifewatch.city import load_city

    city = load_city(settings.city_file or None)
    pipe = build_from_settings(settings, city, getattr(args, "config", None))
    total = 0
    for st in pipe.stages:
        b = st.state_bytes_per_stream()
        total += b
        extra = ""
        metrics = getattr(st, "metrics", None)
        if isinstance(metrics, list):
            extra = " " + ",".join(".".join(m) if isinstance(m, tuple) else str(m) for m in metrics)
        print(f"{st.name:<22} {b:>6} bytes/stream{extra}")
    print(f"{'total':<22} {total:>6} bytes/stream (upper bound; most streams pass through only some stages)")
    return 0
