"""Every InfluxQL query of every dashboard, run against a real InfluxDB holding a simulated hour of the demo city.

Queries are taken from the built JSON (panel targets, annotations, template
variables), substituted the way Grafana's InfluxDB datasource does
(``$timeFilter`` in epoch ms, ``$__interval``, the variables; "All" is the
variables' ``allValue`` ``.*``) and sent to the session's influxd.  None may
fail; with "All" every one must return rows.  The panels that show the city's
state are also checked against what the seed did: which sensors are offline
(silenced for 40 minutes) or alerting (the seeded alerts still active), which
alerts are open, the time to acknowledge.
"""

from __future__ import annotations

from typing import Any

import pytest

from dashboards.build import build_dashboards
from dashboards.materialize import STATE_OFFLINE
from lifewatch.city import load_city
from lifewatch.influx import InfluxQueryError
from lifewatch.levels import Level
from tests.dashboards.support import Query, Seed, influx_queries, regex_value, substitute

BUILT = build_dashboards(load_city())
ALL = {"rp": "autogen", "district": ".*", "sensor": ".*", "unit": ".*"}
ACTIVE = {"new", "acknowledged", "dispatched"}
TERMINAL = {"closed", "false_alarm"}


def rows(seed: Seed, query: Query, variables: dict[str, str]) -> list[dict[str, Any]]:
    text = substitute(query, variables, seed.now_ns, dashboard_from=_range(query.dashboard))
    out = []
    for statement in seed.client.query_all(text, epoch="ms"):
        for series in statement:
            for values in series.values:
                out.append({**series.tags, **dict(zip(series.columns, values, strict=True)), "_series": series.name})
    return out


def _range(uid: str) -> str:
    dash = next(d for d in BUILT.values() if d["uid"] == uid)
    return dash["time"]["from"].removeprefix("now-")


def queries_of(name: str) -> list[Query]:
    return list(influx_queries(BUILT[name]))


def panel_queries(title: str, uid_suffix: str = "overview") -> list[Query]:
    found = [q for name, d in BUILT.items() for q in influx_queries(d)
             if q.dashboard.endswith(uid_suffix) and q.where.startswith(f"panel {title!r}")]
    assert found, f"no panel {title!r} in {uid_suffix}"
    return found


def expected_not_ok(seed: Seed, lifeline: str | None = None) -> dict[str, int]:
    """sensor -> state_code from the seed itself: offline (silenced) wins over the worst active alert level."""
    out: dict[str, int] = {}
    for a in seed.alerts:
        if a.state in ACTIVE and (lifeline is None or a.lifeline == lifeline):
            out[a.sensor] = min(out.get(a.sensor, 9), int(a.level_now))
    for lid, sid in seed.offline.items():
        if lifeline is None or lid == lifeline:
            out[sid] = STATE_OFFLINE
    return out


@pytest.mark.parametrize("name", list(BUILT))
def test_every_query_runs_and_returns_rows(seeded, name: str) -> None:
    seed, _ = seeded
    failures, empty = [], []
    qs = queries_of(name)
    assert qs, f"{name}: no InfluxQL query found"
    for q in qs:
        try:
            if not rows(seed, q, ALL):
                empty.append(f"{q.where}: {q.text}")
        except InfluxQueryError as exc:
            failures.append(f"{q.where}: {exc}\n    {q.text}")
    assert not failures, f"{name}: {len(failures)} of {len(qs)} queries failed:\n" + "\n".join(failures)
    assert not empty, f"{name}: {len(empty)} of {len(qs)} queries returned nothing:\n" + "\n".join(empty)


@pytest.mark.parametrize("name", list(BUILT))
def test_queries_run_with_one_district_and_one_sensor(seeded, name: str) -> None:
    """The variables as an operator picks them: the first value each variable query offers."""
    seed, _ = seeded
    variables = dict(ALL, unit=regex_value(sorted({u.id for u in seed.city.units.values()})[0]))
    qs = queries_of(name)
    for var in ("district", "sensor"):
        vq = next((q for q in qs if q.where == f"variable {var!r}"), None)
        if vq is not None:
            values = sorted(r["value"] for r in rows(seed, vq, variables))
            assert values, f"{name}: variable {var} offers nothing"
            variables[var] = regex_value(values[0])
    for q in qs:
        rows(seed, q, variables)  # must not raise


def test_variable_queries_list_what_the_city_has(seeded) -> None:
    seed, _ = seeded
    city = seed.city
    overview = next(q for q in queries_of("overview.json") if q.where == "variable 'district'")
    assert sorted(r["value"] for r in rows(seed, overview, ALL)) == sorted(city.districts)
    for lid in ("water", "bridge"):
        qs = queries_of(f"{lid}.json")
        district = next(q for q in qs if q.where == "variable 'district'")
        assert sorted(r["value"] for r in rows(seed, district, ALL)) == sorted({s.district for s in city.sensors_of(lid)})
        sensor = next(q for q in qs if q.where == "variable 'sensor'")
        got = sorted(r["value"] for r in rows(seed, sensor, dict(ALL, district="d01")))
        assert got == sorted(s.id for s in city.sensors_of(lid) if s.district == "d01")


def test_geomaps_return_coordinates_and_the_right_states(seeded) -> None:
    seed, _ = seeded
    city = seed.city
    maps = [(name, p) for name, d in BUILT.items() for p in d["panels"] if p["type"] == "geomap"]
    assert len(maps) == 1 + 5, "the overview and every drill-down have a map"
    lats = [s.lat for s in city.sensors.values()]
    lons = [s.lon for s in city.sensors.values()]
    for name, panel in maps:
        lifeline = None if name == "overview.json" else name.removesuffix(".json")
        qs = {q.ref_id: q for q in influx_queries(BUILT[name]) if q.where.startswith(f"panel {panel['title']!r}")}
        assert set(qs) == {"SENSORS", "STATE"}
        for ref, q in qs.items():
            got = rows(seed, q, ALL)
            assert got, f"{name} {ref}: no rows"
            for r in got:
                assert min(lats) <= r["latitude"] <= max(lats) and min(lons) <= r["longitude"] <= max(lons), r
        sensors = {r["sensor_id"] for r in rows(seed, qs["SENSORS"], ALL)}
        assert sensors == {s.id for s in city.sensors.values() if lifeline in (None, s.lifeline)}
        states = {r["sensor_id"]: r["state_code"] for r in rows(seed, qs["STATE"], ALL)}
        assert states == expected_not_ok(seed, lifeline), name


def test_status_tiles_add_up_to_the_city(seeded) -> None:
    seed, report = seeded
    expected = expected_not_ok(seed)
    for lid, ll in ((lid, seed.city.sensors_of(lid)) for lid in ("water", "power", "gas", "bridge", "air")):
        title = {"water": "Water supply 供水", "power": "Power distribution 供电", "gas": "Gas distribution 燃气",
                 "bridge": "Bridges 桥梁", "air": "Air quality 空气质量"}[lid]
        (q,) = panel_queries(title)
        (r,) = rows(seed, q, ALL)
        ids = {s.id for s in ll}
        assert r["ok"] + r["alerting"] + r["offline"] == len(ll)
        assert r["offline"] == sum(1 for sid, c in expected.items() if sid in ids and c == STATE_OFFLINE) == 1
        assert r["alerting"] == sum(1 for sid, c in expected.items() if sid in ids and c != STATE_OFFLINE)
    assert report.offline == 5 and report.sensors == len(seed.city.sensors)


def test_active_alerts_by_level(seeded) -> None:
    seed, _ = seeded
    (q,) = panel_queries("Active alerts by level")
    (r,) = rows(seed, q, ALL)
    for lv in Level:
        assert r[lv.label] == sum(1 for a in seed.alerts if a.state in ACTIVE and a.level_now is lv), lv


def test_open_alert_queue_lists_every_open_alert_once(seeded) -> None:
    seed, _ = seeded
    (q,) = panel_queries("Open alerts by priority", "queue")
    got = rows(seed, q, ALL)
    expected = {a.alert_id: (a.level_now.label, a.state) for a in seed.alerts if a.state not in TERMINAL}
    assert len(got) == len(expected)
    assert {r["alert_id"]: (r["level"], r["state"]) for r in got} == expected
    assert all(r["level_n"] == int(Level.parse(r["level"])) for r in got)
    # one unit only
    unit = "shz-water"
    mine = rows(seed, q, dict(ALL, unit=regex_value(unit)))
    assert {r["alert_id"] for r in mine} == {a.alert_id for a in seed.alerts if a.state not in TERMINAL and a.unit == unit}
    by_state = {r["state"]: r["alerts"] for r in rows(seed, panel_queries("Open alerts by state", "queue")[0], ALL)}
    assert by_state == {s: sum(1 for a in seed.alerts if a.state == s) for s in {a.state for a in seed.alerts} - TERMINAL}


def test_alert_annotations_show_raised_alerts_in_their_level(seeded) -> None:
    seed, _ = seeded
    anns = [q for q in queries_of("overview.json") if q.kind == "annotation"]
    assert len(anns) == 4
    for q, lv in zip(anns, Level, strict=True):
        got = rows(seed, q, ALL)
        assert len(got) == sum(1 for a in seed.alerts if a.level is lv), lv
        assert all(r["title"] and r["lifeline"] for r in got)
    water = [q for q in queries_of("water.json") if q.kind == "annotation"]
    assert {r["lifeline"] for q in water for r in rows(seed, q, ALL)} == {"water"}


def test_response_kpis(seeded) -> None:
    """Seeded alerts are acknowledged 5 minutes and resolved 10 minutes after they were raised."""
    seed, _ = seeded
    (tta,) = panel_queries("Time to acknowledge by level")
    got = {r["level"]: (r["mean"], r["alerts"]) for r in rows(seed, tta, ALL)}
    acked = [a for a in seed.alerts if "acknowledged" in a.states]
    assert got == {lv.label: (300.0, sum(1 for a in acked if a.level is lv)) for lv in {a.level for a in acked}}
    (ttr,) = panel_queries("Time to resolve by level")
    resolved = [a for a in seed.alerts if "resolved" in a.states]
    assert {r["level"]: r["mean"] for r in rows(seed, ttr, ALL)} == {a.level.label: 600.0 for a in resolved}
