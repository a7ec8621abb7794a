"""Normal behaviour: realistic ranges and daily patterns per lifeline, and no false alarms."""

from __future__ import annotations

import numpy as np
import pytest

from lifewatch.lifelines import load_lifelines
from lifewatch.model import NS
from simulators.engine import Simulation
from simulators.normal import NormalModel, gauss, lagged, smooth, uniform

from ._util import alarms, hourly_means, local_day, local_hour

DAYS = [("2026-01-15", 1), ("2026-04-20", 5), ("2026-07-20", 2)]


@pytest.fixture(scope="module", params=DAYS, ids=[d for d, _ in DAYS])
def day(request, city):
    date, seed = request.param
    t0 = local_day(date)
    sim = Simulation(city, seed=seed, start_ns=t0)
    return date, sim.all_series(t0, t0 + 86400 * NS)


def of_kind(city, series, kind):
    return {sid: ser for sid, ser in series.items() if city.sensors[sid].kind == kind}


# ---------------------------------------------------------------- building blocks


def test_counter_based_noise_is_pure_and_unit_scaled():
    n = np.arange(200_000)
    u = uniform(42, n)
    assert 0.0 <= u.min() and u.max() < 1.0 and abs(u.mean() - 0.5) < 0.01
    g = gauss(42, n)
    assert abs(g.mean()) < 0.02 and abs(g.std() - 1.0) < 0.02
    assert np.array_equal(gauss(42, n[1000:1010]), g[1000:1010])
    assert not np.array_equal(gauss(43, n[:10]), g[:10])
    t = np.arange(0, 400 * 86400, 997, dtype=np.int64) * NS
    s = smooth(7, t, 3600.0)
    assert abs(s.std() - 1.0) < 0.1
    assert np.array_equal(smooth(7, t[5000:5100], 3600.0), s[5000:5100])
    keys = np.full(100, 7, dtype=np.uint64)
    assert np.allclose(smooth(keys, t[:100], 3600.0), s[:100], rtol=0, atol=1e-12)
    # smooth: neighbouring samples (997 s apart, scale 1 h) are strongly correlated
    assert np.corrcoef(s[:-1], s[1:])[0, 1] > 0.8


def test_lag_is_first_order_and_chunk_independent():
    t = np.arange(0, 20 * 3600, 60, dtype=np.int64) * NS + 10**18

    def stepfn(g):
        return np.where(g >= 10**18 + 3600 * NS, 1.0, 0.0)

    y = lagged(stepfn, t, tau_s=1800.0, step_s=60.0)
    i = np.searchsorted(t, 10**18 + 3600 * NS + 1800 * NS)
    assert 0.58 < y[i] < 0.68  # 1 - 1/e after one time constant
    assert y[-1] > 0.99
    assert np.array_equal(lagged(stepfn, t[300:400], 1800.0, 60.0), y[300:400])


def test_sampling_interval_and_phase(city):
    model = NormalModel(city, 1)
    t0 = local_day("2026-01-15")
    phases = set()
    for s in list(city.sensors.values())[:60]:
        k, t = model.sample_times(s, t0, t0 + 3600 * NS)
        iv = int(s.interval_s * NS)
        assert np.all(np.diff(t) == iv)
        assert len(t) == 3600 * NS // iv
        phases.add(int(t[0] - t0) % iv)
        assert 0 <= int(t[0]) - t0 < iv
    assert len(phases) > 50  # per-sensor offsets, not all on the minute


# ---------------------------------------------------------------- per lifeline, a simulated day


def test_all_values_within_the_lifeline_metric_ranges(city, day):
    _, series = day
    ll = load_lifelines()
    for sid, ser in series.items():
        s = city.sensors[sid]
        assert set(ser.values) == set(ll[s.lifeline].sensor_kinds[s.kind].metrics)
        for m, v in ser.values.items():
            lo, hi = ll[s.lifeline].metrics[m].range
            assert np.isfinite(v).all() and lo <= v.min() and v.max() <= hi, (sid, m)


def test_no_false_alarms_on_a_normal_day(city, day):
    _, series = day
    assert alarms(city, series) == []


def test_water_mnf_at_night_and_pressure_inverse_to_demand(city, day):
    _, series = day
    for sid, ser in of_kind(city, series, "dma_inlet").items():
        flow = hourly_means(ser, "flow", city)
        assert int(flow.argmin()) in (2, 3), (sid, flow.round(1))
        assert flow.max() > 2.5 * flow.min()
        dma = city.sensors[sid].asset
        for other in city.sensors_by_asset[dma]:
            if other.kind != "pressure":
                continue
            p = hourly_means(series[other.id], "pressure", city)
            assert np.corrcoef(flow, p)[0, 1] < -0.6, other.id
            assert p[2:5].mean() > p[7:10].mean()  # highest at night
    pressures = np.concatenate([ser.values["pressure"] for ser in of_kind(city, series, "pressure").values()
                                if ser.sensor.lifeline == "water"])
    assert 0.2 < pressures.min() and pressures.max() < 0.5
    assert 0.8 < np.mean((pressures > 0.25) & (pressures < 0.45))


def test_water_sensors_in_one_dma_move_together(city, day):
    _, series = day
    loggers = [s for s in city.sensors_by_asset["dma-d01-1"] if s.kind == "pressure"]
    a, b = (series[s.id].values["pressure"] for s in loggers[:2])
    n = min(len(a), len(b))
    assert np.corrcoef(a[:n], b[:n])[0, 1] > 0.8


def test_power_voltage_frequency_load_and_transformer(city, day):
    _, series = day
    volts = np.concatenate([ser.values["voltage"] for ser in of_kind(city, series, "meter").values()])
    assert 198.0 <= volts.min() and volts.max() <= 235.4  # GB/T 12325-2008 220 V +7 % / -10 %
    assert 0.004 < np.std(volts / 220.0) < 0.03
    heads = of_kind(city, series, "feeder_head")
    freq = np.concatenate([ser.values["frequency"] for ser in heads.values()])
    assert 49.8 < freq.min() and freq.max() < 50.2  # GB/T 15945-2008
    assert 0.01 < freq.std() < 0.06
    # one grid: two feeder heads see the same wander
    f1, f2 = (ser.values["frequency"] for ser in list(heads.values())[:2])
    assert np.corrcoef(f1, f2)[0, 1] > 0.9
    kv = np.concatenate([ser.values["voltage_kv"] for ser in heads.values()])
    assert 9.3 <= kv.min() and kv.max() <= 10.7
    for sid, ser in heads.items():
        load = hourly_means(ser, "load", city)
        assert 19 <= int(load.argmax()) <= 21, (sid, load.round())  # evening peak, Xinjiang time
        assert 8 <= int(load[5:15].argmax()) + 5 <= 12  # morning peak
        assert load.min() < 0.6 * load.max()
    for ser in of_kind(city, series, "transformer").values():
        assert ser.values["hotspot_temp"].max() < 90.0


def test_meters_on_one_feeder_are_correlated(city, day):
    _, series = day
    meters = [s for s in city.sensors_by_asset["fdr-d01-1"] if s.kind == "meter"]
    loads = np.array([hourly_means(series[s.id], "load", city) for s in meters])
    c = np.corrcoef(loads)
    assert np.mean(c[np.triu_indices(len(meters), 1)]) > 0.6


def test_gas_pressure_and_methane(city, day):
    _, series = day
    p = np.concatenate([ser.values["pressure"] for ser in series.values() if ser.sensor.lifeline == "gas"
                        and ser.sensor.kind == "pressure"])
    assert 120.0 < p.min() and p.max() < 165.0 and 140 < np.median(p) < 155
    lel = np.concatenate([ser.values["ch4_lel"] for ser in of_kind(city, series, "well_methane").values()])
    assert lel.min() >= 0.0 and lel.max() < 10.0 and np.median(lel) < 2.0


def test_bridge_thermal_cycle_traffic_and_frequency(city, day):
    _, series = day
    for bid in [a.id for a in city.assets.values() if a.type == "bridge"]:
        sens = city.sensors_by_asset[bid]
        gauge = next(s for s in sens if s.kind == "strain_gauge" and s.params["pos"] == 0.5)
        temp = hourly_means(series[gauge.id], "temperature", city)
        assert 12 <= int(temp.argmax()) <= 18 and temp[13:17].mean() > temp[4:8].mean() + 2.0
        acc = next(s for s in sens if s.kind == "accelerometer")
        f = series[acc.id].values["frequency"]
        te = np.interp(series[acc.id].event_ns, series[gauge.id].event_ns, series[gauge.id].values["temperature"])
        assert np.corrcoef(f, te)[0, 1] < -0.7  # frequency falls as temperature rises
        vib = hourly_means(series[acc.id], "vibration", city)
        assert vib[7:10].mean() > 3 * vib[1:4].mean()  # traffic peaks
        bearing = next(s for s in sens if s.kind == "displacement" and s.params["role"] == "bearing")
        ser = series[bearing.id]
        assert np.corrcoef(ser.values["deflection"], ser.values["temperature"])[0, 1] > 0.9
        # correlated within a bridge: the two midspan gauges
        g1, g2 = (series[s.id].values["strain"] for s in sens if s.kind == "strain_gauge" and s.params["pos"] == 0.5)
        assert np.corrcoef(g1, g2)[0, 1] > 0.5


def test_air_daily_pattern(city, day):
    date, series = day
    stations = of_kind(city, series, "station")
    pm = np.array([hourly_means(ser, "pm25", city) for ser in stations.values()])
    assert np.corrcoef(pm)[0, 1:].min() > 0.7  # one city, one weather
    city_pm = pm.mean(0)
    o3 = np.array([hourly_means(ser, "o3", city) for ser in stations.values()]).mean(0)
    assert 12 <= int(o3.argmax()) <= 17
    no2 = np.array([hourly_means(ser, "no2", city) for ser in stations.values()]).mean(0)
    assert no2[7:10].mean() > no2[1:4].mean() * 1.3
    if date.startswith("2026-01"):
        assert 30 < city_pm.mean() < 60  # heating season, still AQI <= 100 (see simulators.normal)
        assert city_pm[19:23].mean() > city_pm[13:17].mean() * 1.15  # evening surge (heating, inversion)
    if date.startswith("2026-07"):
        assert city_pm.mean() < 45 and o3.max() > 90


def test_local_time_is_utc_plus_6(city):
    t = np.array([local_day("2026-01-15") + 3 * 3600 * NS])
    assert local_hour(t, city)[0] == 3
    assert (t[0] // NS) % 86400 == 21 * 3600  # 03:00 Xinjiang time is 21:00 UTC the day before
