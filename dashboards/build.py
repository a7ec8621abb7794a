"""Build every dashboard of a city as Grafana JSON, from the city model and the lifeline descriptions.

::

    dashboards = build_dashboards(load_city())     # {"overview.json": {...}, "water.json": {...}, ...}
    write_dashboards(Path("dashboards/json"), load_city())   # -> dashboards/json/<city slug>/*.json

The output is deterministic (the checked-in ``dashboards/json/`` must equal a
fresh build: ``tests/dashboards/test_structure.py``).  One folder per city:
the file provider (``dashboards/provisioning/dashboards/lifewatch.yaml``)
turns each sub-folder into a Grafana folder, and ``lifewatch dashboards
push`` creates the folder ``lifewatch-<slug>``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dashboards import lifeline, overview, platform, queue
from dashboards.context import BuildOptions, Context, slug
from lifewatch.city import City
from lifewatch.lifelines import Lifeline, load_lifelines

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKED_IN = PACKAGE_DIR / "json"
PROVISIONING = PACKAGE_DIR / "provisioning"


def build_dashboards(city: City, options: BuildOptions | None = None,
                     lifelines: dict[str, Lifeline] | None = None) -> dict[str, dict[str, Any]]:
    """File name -> dashboard JSON, in a fixed order (overview, one per lifeline, queue, platform)."""
    ctx = Context(city, lifelines or load_lifelines(), options or BuildOptions())
    out = {"overview.json": overview.build(ctx).to_json()}
    for lid in ctx.lifelines:
        out[f"{lid}.json"] = lifeline.build(ctx, lid).to_json()
    out["queue.json"] = queue.build(ctx).to_json()
    out["platform.json"] = platform.build(ctx).to_json()
    return out


def folder_uid(city: City) -> str:
    return f"lifewatch-{slug(city.name)}"


def folder_title(city: City) -> str:
    return f"Lifewatch · {city.name}"


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n"


def write_dashboards(out_dir: Path, city: City, options: BuildOptions | None = None) -> list[Path]:
    """Write ``<out_dir>/<city slug>/<name>.json``; JSON files there that the build no longer makes are removed."""
    target = Path(out_dir) / slug(city.name)
    target.mkdir(parents=True, exist_ok=True)
    built = build_dashboards(city, options)
    for stale in target.glob("*.json"):
        if stale.name not in built:
            stale.unlink()
    paths = []
    for name, dash in built.items():
        p = target / name
        text = render(dash)
        if not p.exists() or p.read_text(encoding="utf-8") != text:
            p.write_text(text, encoding="utf-8")
        paths.append(p)
    return paths
