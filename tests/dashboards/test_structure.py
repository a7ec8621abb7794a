"""The dashboards' structure: checked-in JSON = a fresh build, unique uids, no overlapping panels,
datasources that provisioning creates, names from the lifeline descriptions, Prometheus names from ingest."""

from __future__ import annotations

import doctest
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashboards.build import CHECKED_IN, PROVISIONING, build_dashboards, folder_uid, render
from dashboards.context import BuildOptions, slug
from dashboards.grafana import SCHEMA_VERSION
from dashboards.lifeline import carried_metrics
from dashboards.style import AQI_COLOURS, grafana_unit
from detectors.standards.aqi import TABLES
from lifewatch.city import load_city
from lifewatch.levels import Level
from lifewatch.lifelines import load_lifelines
from tests.dashboards.support import prom_queries

CITY = load_city()
BUILT = build_dashboards(CITY)


def walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for k, v in node.items():
            yield k, v
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def test_checked_in_json_equals_a_fresh_build() -> None:
    """`lifewatch dashboards build` after changing a builder, a lifeline YAML or the city file, then commit."""
    folder = CHECKED_IN / slug(CITY.name)
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.json")}
    assert sorted(on_disk) == sorted(BUILT)
    stale = [name for name, dash in BUILT.items() if on_disk[name] != render(dash)]
    assert not stale, f"stale checked-in dashboards (run `lifewatch dashboards build`): {stale}"


def test_builds_are_deterministic_and_options_reach_the_json() -> None:
    assert build_dashboards(CITY) == BUILT
    other = build_dashboards(CITY, BuildOptions(api_url="https://alerts.example.org", aqi_rules="HJ 633-2012"))
    api = next(v for v in other["queue.json"]["templating"]["list"] if v["name"] == "api_url")
    assert api["query"] == "https://alerts.example.org"
    pm25 = next(p for p in other["overview.json"]["panels"] if p["title"].startswith("PM2.5"))
    assert [s["value"] for s in pm25["fieldConfig"]["defaults"]["thresholds"]["steps"][1:]] == list(TABLES["HJ 633-2012"]["pm25_24h"][1:6])


def test_uids_are_unique_and_valid() -> None:
    uids = [d["uid"] for d in BUILT.values()]
    assert len(uids) == len(set(uids)) == 8
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", u) for u in [*uids, folder_uid(CITY)])
    assert all(d["schemaVersion"] == SCHEMA_VERSION == 39 for d in BUILT.values())


@pytest.mark.parametrize("name", list(BUILT))
def test_panels_fit_the_grid_and_do_not_overlap(name: str) -> None:
    panels = BUILT[name]["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    boxes = []
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] >= 1 and g["x"] + g["w"] <= 24 and g["h"] >= 1, p["title"]
        for q, h in boxes:
            overlap = g["x"] < h["x"] + h["w"] and h["x"] < g["x"] + g["w"] and g["y"] < h["y"] + h["h"] and h["y"] < g["y"] + g["h"]
            assert not overlap, f"{name}: {p['title']!r} overlaps {q!r}"
        boxes.append((p["title"], g))
        refs = [t["refId"] for t in p.get("targets", [])]
        assert len(refs) == len(set(refs)), p["title"]


def test_every_datasource_reference_is_provisioned() -> None:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "lifewatch.yaml").read_text(encoding="utf-8"))
    provisioned = {(d["uid"], d["type"]) for d in doc["datasources"]}
    assert ("lifewatch-influxdb", "influxdb") in provisioned
    influx = next(d for d in doc["datasources"] if d["type"] == "influxdb")
    assert influx["jsonData"]["version"] == "InfluxQL"
    refs = [v for d in BUILT.values() for k, v in walk(d) if k == "datasource" and isinstance(v, dict)]
    assert refs
    for ref in refs:
        if ref == {"type": "datasource", "uid": "-- Mixed --"}:
            continue
        assert (ref["uid"], ref["type"]) in provisioned, ref
    used = {(r["uid"], r["type"]) for r in refs}
    assert used <= provisioned


def test_dashboard_provider_reads_the_built_folders() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "lifewatch.yaml").read_text(encoding="utf-8"))
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["options"]["foldersFromFilesStructure"] is True
    assert provider["allowUiUpdates"] is False


def test_every_lifeline_has_a_drill_down_with_a_panel_per_metric() -> None:
    for lid, ll in load_lifelines().items():
        dash = BUILT[f"{lid}.json"]
        names = {v["name"] for v in dash["templating"]["list"]}
        assert {"district", "sensor", "rp"} <= names
        district = next(v for v in dash["templating"]["list"] if v["name"] == "district")
        assert district["query"] == f'SHOW TAG VALUES FROM "{lid}" WITH KEY = "district"'
        for metric in carried_metrics(ll):
            panel = next((p for p in dash["panels"] if p["title"] == f"{metric} ({ll.metrics[metric].unit})"), None)
            assert panel is not None, f"{lid}: no panel for {metric}"
            assert f'mean("{metric}")' in panel["targets"][0]["query"] and f'"$rp"."{lid}"' in panel["targets"][0]["query"]
            assert panel["fieldConfig"]["defaults"]["unit"] == grafana_unit(ll.metrics[metric].unit)


def test_warning_colours() -> None:
    assert [lv.colour for lv in Level] == ["#E02F44", "#FF780A", "#FADE2A", "#3274D9"]
    active = next(p for p in BUILT["overview.json"]["panels"] if p["title"] == "Active alerts by level")
    colours = {o["matcher"]["options"]: prop["value"]["fixedColor"] for o in active["fieldConfig"]["overrides"]
               for prop in o["properties"] if prop["id"] == "color"}
    assert colours == {lv.label: lv.colour for lv in Level}
    assert [a["iconColor"] for a in BUILT["overview.json"]["annotations"]["list"]] == [lv.colour for lv in Level]


def test_air_panels_carry_the_hj633_bands() -> None:
    for metric, item in (("PM2.5", "pm25_24h"), ("PM10", "pm10_24h")):
        panel = next(p for p in BUILT["overview.json"]["panels"] if p["title"].startswith(metric + " "))
        got = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [s["value"] for s in got] == [None, *TABLES["HJ 633-2026"][item][1:6]]
        assert [s["color"] for s in got] == list(AQI_COLOURS)


def test_alert_rows_link_to_the_crew_console() -> None:
    table = next(p for p in BUILT["queue.json"]["panels"] if p["title"] == "Open alerts by priority")
    links = {o["matcher"]["options"]: prop["value"][0]["url"] for o in table["fieldConfig"]["overrides"]
             for prop in o["properties"] if prop["id"] == "links"}
    assert links == {"alert_id": "${api_url}/console/#/alerts/${__value.raw}",
                     "title": "${api_url}/console/#/alerts/${__data.fields.alert_id}"}
    assert table["options"]["sortBy"] == [{"desc": False, "displayName": "priority"}]
    renamed = {o["matcher"]["options"]: prop["value"] for o in table["fieldConfig"]["overrides"]
               for prop in o["properties"] if prop["id"] == "displayName"}
    assert renamed["level_n"] == "priority"


def _ingest_metric_names() -> tuple[set[str], dict[str, set[str]]]:
    from ingest.metrics import IngestMetrics

    samples: set[str] = set()
    labels: dict[str, set[str]] = {}
    metrics = IngestMetrics()
    for attr in vars(metrics).values():
        if not hasattr(attr, "_labelnames"):
            continue
        kind, name = attr._type, attr._name
        names = {"counter": [f"{name}_total"], "histogram": [f"{name}_bucket", f"{name}_sum", f"{name}_count"]}.get(kind, [name])
        for n in names:
            samples.add(n)
            labels[n] = set(attr._labelnames) | ({"le"} if n.endswith("_bucket") else set())
    return samples, labels


def test_prometheus_expressions_name_real_ingest_metrics() -> None:
    samples, labels = _ingest_metric_names()
    exprs = [e for d in BUILT.values() for e in prom_queries(d)]
    assert len(exprs) >= 10
    seen = set()
    for where, expr in exprs:
        names = set(re.findall(r"\blifewatch_\w+", expr))
        assert names, f"{where}: no lifewatch metric in {expr}"
        for n in names:
            assert n in samples, f"{where}: {n} is not exposed by ingest/metrics.py"
            seen.add(n)
        used_labels = set(re.findall(r"by \(([^)]*)\)", expr)) | set(re.findall(r"\{(\w+)=", expr))
        for group in used_labels:
            for label in (x.strip() for x in group.split(",")):
                assert any(label in labels[n] for n in names), f"{where}: label {label!r} unknown for {names}"
    for wanted in ("lifewatch_ingest_lag_seconds", "lifewatch_deadletter_pending", "lifewatch_ingest_buffer_depth",
                   "lifewatch_ingest_write_errors_total", "lifewatch_ingest_points_written_total"):
        assert wanted in seen, f"platform health lacks {wanted}"


@pytest.mark.parametrize("module", ["grafana", "style", "context", "queries", "materialize"])
def test_doctests(module: str) -> None:
    mod = importlib.import_module(f"dashboards.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_checked_in_folder_is_the_package_folder() -> None:
    assert CHECKED_IN == Path(__file__).resolve().parents[2] / "dashboards" / "json"
