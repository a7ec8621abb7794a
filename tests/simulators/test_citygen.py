"""The demo city file: generated, checked in, and shaped as the other components expect."""

from __future__ import annotations

from collections import Counter

import pytest

from lifewatch.city import demo_city_path, load_city
from lifewatch.lifelines import LIFELINE_IDS
from simulators import citygen


@pytest.fixture(scope="module")
def city():
    return load_city()


def test_checked_in_file_is_what_the_generator_prints():
    assert demo_city_path().read_text(encoding="utf-8") == citygen.render(citygen.generate())


def test_generator_is_deterministic_and_seeded():
    assert citygen.render(citygen.generate(7)) == citygen.render(citygen.generate(7))
    assert citygen.render(citygen.generate(7)) != citygen.render(citygen.generate(8))


def test_size_districts_lifelines_units(city):
    assert city.name == "Shihezi"
    assert city.utc_offset_hours == 6
    assert len(city.sensors) >= 300
    assert len(city.districts) >= 6
    assert all(d.name_zh for d in city.districts.values())
    assert {s.lifeline for s in city.sensors.values()} == set(LIFELINE_IDS)
    assert {u.id for u in city.units.values()} == {"shz-water", "shz-power", "shz-gas", "shz-bridge", "shz-env"}
    assert all(u.name_zh for u in city.units.values())


def test_coordinates_spread_over_the_city(city):
    lats = [s.lat for s in city.sensors.values()]
    lons = [s.lon for s in city.sensors.values()]
    assert all(44.20 < x < 44.40 for x in lats)
    assert all(85.90 < x < 86.18 for x in lons)
    assert abs(sum(lats) / len(lats) - 44.30) < 0.02
    assert abs(sum(lons) / len(lons) - 86.04) < 0.03
    ns_km = (max(lats) - min(lats)) * 111.3
    ew_km = (max(lons) - min(lons)) * 111.3 * 0.716
    assert 9 < ns_km < 16 and 9 < ew_km < 16


def test_every_sensor_belongs_to_an_asset_of_its_lifeline(city):
    for s in city.sensors.values():
        a = city.assets[s.asset]
        assert a.lifeline == s.lifeline, s.id
        assert a.district == s.district, s.id
    types = {("water", "dma"), ("power", "feeder"), ("gas", "segment"), ("bridge", "bridge"), ("air", "air_area")}
    assert {(a.lifeline, a.type) for a in city.assets.values()} == types


def test_dmas_feeders_bridges(city):
    for a in city.assets.values():
        kinds = Counter(s.kind for s in city.sensors_by_asset.get(a.id, []))
        if a.type == "dma":
            assert kinds["dma_inlet"] == 1 and kinds["pressure"] >= 3, a.id
        elif a.type == "feeder":
            assert kinds["feeder_head"] == 1 and kinds["transformer"] == 1 and kinds["meter"] >= 5, a.id
        elif a.type == "segment":
            assert kinds["pressure"] >= 2 and kinds["well_methane"] >= 2, a.id
        elif a.type == "bridge":
            assert set(kinds) == {"strain_gauge", "accelerometer", "displacement", "inclinometer"}, a.id
            for k in ("strain_design", "deflection_design", "tilt_design", "span_m", "f0"):
                assert float(a.params[k]) > 0, (a.id, k)
        elif a.type == "air_area":
            assert kinds == {"station": 1}
    assert sum(a.type == "bridge" for a in city.assets.values()) >= 3
    # every air area is one district
    assert {a.district for a in city.assets.values() if a.type == "air_area"} == set(city.districts)


def test_gas_wells_are_close_to_each_other(city):
    for a in city.assets.values():
        if a.type != "segment":
            continue
        wells = [s for s in city.sensors_by_asset[a.id] if s.kind == "well_methane"]
        nearest = [min(citygen.distance_m((w.lat, w.lon), (o.lat, o.lon)) for o in wells if o is not w) for w in wells]
        assert max(nearest) < 400, a.id


def test_sensor_params_for_the_simulator(city):
    for s in city.sensors.values():
        if s.lifeline == "water":
            assert "dist_m" in s.params and "elev_m" in s.params
        if s.kind == "meter":
            assert 0 < s.params["drop"] < 0.1 and s.params["base_kw"] > 0
