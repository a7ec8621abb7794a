"""Parameter sweeps: ``--set <dotted.path>=v1,v2,...`` over the detector config.

The path walks into the config dict that :func:`detectors.build.build_pipeline`
takes (``thresholds``, ``stats``, ``rules``, ``health``, ``disable``,
``learned``), creating the dicts on the way; each value is read as YAML
(``4`` is a number, ``true`` a boolean, ``[a, b]`` a list).  Several
``--set`` options sweep their Cartesian product.  Keys that contain a dot
(a stats stage ``water.seasonal_robust_z``, a threshold
``water.end_pressure_low``) are written as they are: under ``stats`` and
``thresholds`` a lifeline name joins the next part; any other part can be
double-quoted (``rules."my.rule".k=1``).

>>> path, values = parse_set("rules.water_burst.k_flow=4,6,8")
>>> path, values
(['rules', 'water_burst', 'k_flow'], [4, 6, 8])
>>> parse_set("stats.water.seasonal_robust_z.levels.blue=4,5")[0]
['stats', 'water.seasonal_robust_z', 'levels', 'blue']
>>> parse_set('health."odd.name".window=3')[0]
['health', 'odd.name', 'window']
>>> [apply_set({"rules": {"water_leak": {"gamma": 0.3}}}, {"rules.water_burst.k_flow": v}) for v in values[:1]]
[{'rules': {'water_leak': {'gamma': 0.3}, 'water_burst': {'k_flow': 4}}}]
>>> [c["set"] for c in combinations(["stats.seasonal_robust_z.levels.blue=4,5", "disable=[spike],[]"])]
[{'stats.seasonal_robust_z.levels.blue': 4, 'disable': ['spike']}, {'stats.seasonal_robust_z.levels.blue': 4, 'disable': []}, {'stats.seasonal_robust_z.levels.blue': 5, 'disable': ['spike']}, {'stats.seasonal_robust_z.levels.blue': 5, 'disable': []}]
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from lifewatch.lifelines import LIFELINE_IDS

SECTIONS = ("thresholds", "stats", "rules", "health", "disable", "learned")
MAX_RUNS = 200


class SweepError(ValueError):
    pass


def _split_values(text: str) -> list[str]:
    """Split on commas outside brackets and quotes."""
    out, cur, depth, quote = [], [], 0, ""
    for ch in text:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur))
    return [v.strip() for v in out]


def _split_path(key: str) -> list[str]:
    parts, cur, quoted = [], [], False
    for ch in key:
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    if len(parts) > 2 and parts[0] in ("stats", "thresholds") and parts[1] in LIFELINE_IDS:
        parts = [parts[0], f"{parts[1]}.{parts[2]}", *parts[3:]]
    return parts


def parse_set(spec: str) -> tuple[list[str], list[Any]]:
    """``"a.b.c=1,2"`` -> (["a", "b", "c"], [1, 2])."""
    key, sep, raw = spec.partition("=")
    path = _split_path(key.strip())
    if not sep or not key.strip() or any(not p for p in path) or not raw.strip():
        raise SweepError(f"--set {spec!r}: expected section.detector.param=v1,v2,... e.g. rules.water_burst.k_flow=4,6,8")
    if path[0] not in SECTIONS:
        raise SweepError(f"--set {spec!r}: the path starts with one of {', '.join(SECTIONS)}")
    values = []
    for v in _split_values(raw):
        try:
            values.append(yaml.safe_load(v) if v else None)
        except yaml.YAMLError as exc:
            raise SweepError(f"--set {spec!r}: value {v!r} is not valid YAML: {exc}") from None
    return path, values


def apply_set(config: Mapping[str, Any], assignments: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``config`` with each dotted path set to its value."""
    cfg = copy.deepcopy(dict(config))
    for dotted, value in assignments.items():
        path = _split_path(dotted)
        node = cfg
        for p in path[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise SweepError(f"--set {dotted}: {p} is a {type(nxt).__name__}, not a mapping")
            node = nxt
        node[path[-1]] = copy.deepcopy(value)
    return cfg


def combinations(specs: Sequence[str]) -> list[dict[str, Any]]:
    """Every combination of the ``--set`` values: ``[{"set": {dotted: value, ...}}, ...]``."""
    parsed = [parse_set(s) for s in specs]
    keys = [".".join(f'"{x}"' if "." in x else x for x in p) for p, _ in parsed]
    if len(set(keys)) != len(keys):
        raise SweepError("--set names the same path twice")
    runs = [{"set": dict(zip(keys, combo, strict=True))} for combo in itertools.product(*(v for _, v in parsed))]
    if len(runs) > MAX_RUNS:
        raise SweepError(f"--set asks for {len(runs)} runs; at most {MAX_RUNS}")
    return runs


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The comparison table printed after a sweep."""
    if not rows:
        return ""
    keys = list(rows[0]["set"].keys())
    cols = [("raised", "detections"), ("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
            ("false_alarms_per_sensor_day", "false/sensor-day"), ("raised_per_sensor_day", "raised/sensor-day")]
    if any(r.get("nab_standard") is not None for r in rows):
        cols.append(("nab_standard", "NAB"))

    def fmt(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.4g}" if isinstance(v, float) else str(v)

    head = keys + [c[1] for c in cols]
    body = [[fmt(r["set"][k]) for k in keys] + [fmt(r.get(c[0])) for c in cols] for r in rows]
    widths = [max(len(h), *(len(b[i]) for b in body)) for i, h in enumerate(head)]
    lines = ["  ".join(h.ljust(w) if i < len(keys) else h.rjust(w) for i, (h, w) in enumerate(zip(head, widths, strict=True)))]
    for b in body:
        lines.append("  ".join(c.ljust(w) if i < len(keys) else c.rjust(w) for i, (c, w) in enumerate(zip(b, widths, strict=True))))
    return "\n".join(lines)
