"""Normal behaviour of every sensor kind, as a pure function of (sensor, event time, seed).

Nothing here keeps state between calls.  Randomness is *counter based*: a
value is a hash of (seed, sensor or group, stream, integer time index), so the
reading of a sensor at a given event time is the same whichever chunk of time
it is computed in, and in whatever order.  Smooth random wander (weather,
demand, frequency) is value noise: hashed Gaussian knots on an absolute time
grid joined by Catmull-Rom splines.  Thermal lags are finite exponential
kernels on an absolute grid (see :func:`lagged`), again chunk independent.

Time: storage and event time are UTC (ns since the epoch); daily patterns are
evaluated on the city's local clock (``city.utc_offset_hours``, +6 for
Shihezi).  The profiles are the shapes people live by on their own clock:
Xinjiang time (UTC+6) hours equal eastern-China Beijing-time hours, so on a
Beijing-time clock every peak appears +2 h later (domain.md §0.1).  E.g. the
evening power peak at 20:00 Xinjiang time is 22:00 Beijing time.

What each lifeline does (numbers: ../shared/reference/domain.md):

water (§1.1)
    DMA demand = LeakDB-style pattern: daily Fourier (5 harmonics, each
    coefficient randomised ±10 % per DMA) x weekly x yearly x (1 + 5 %
    noise); the noise and the pattern are shared by all sensors of a DMA.
    Minimum night flow at 02:00-04:00 local.  Pressure = static pressure
    (DMA inlet pressure minus elevation) minus a Hazen-Williams head loss
    k * D**1.852 growing with the distance to the inlet: highest at night,
    mostly 0.25-0.45 MPa at the network ends, never near 0.14 MPa.
power (§2.1)
    Feeder load: morning (09-12) and evening (19-21 local) peaks, winter a
    little higher; meters on one feeder share the feeder's wander.  Meter
    voltage 220 V x (1.03 set-point - drop x transformer load +/- 1 % noise),
    inside GB/T 12325's +7 %/-10 %; feeder heads ~10.2 kV; 50 Hz with a
    slow wander shared by the whole grid, typically +/-0.05 Hz and bounded
    to +/-0.12 Hz.  Transformer hot-spot by the IEC 60076-7 exponential
    model (ONAN distribution transformer: top-oil rise 55 K, hot-spot
    gradient 23 K, R 5, x 0.8, y 1.6, tau_o 180 min, tau_w 4 min), ambient =
    outdoor air + enclosure rise; normally below 90 degC.
gas (§3.1)
    Medium-pressure B network, regulator set-point ~150 kPa, drop with gas
    demand (cooking peaks, more in winter): 135-155 kPa.  Valve-well methane
    0-2 %LEL.
bridge (§4.1)
    Air temperature: Shihezi climate (Jan about -13, Jul about +26 degC),
    daily cycle, synoptic wander.  Deck temperature lags air by 1.5 h
    (plus sun); strain, bearing movement (alpha L dT) and the natural
    frequency (-0.15 %/K) follow the deck temperature with a further lag;
    traffic gives strain, deflection and vibration peaks at 08:00 and 18:00.
    All sensors of a bridge share its temperature and traffic.  Normal
    values stay below half the design values.
air (§5.1)
    City-wide ventilation factor (multi-day wander) shared by all stations;
    heating season (mid-October to mid-April) raises PM, CO and SO2; evening
    surge from 17:00 peaking about 21:00, minimum about 16:00; NO2/CO peak
    with traffic; O3 peaks in the afternoon, highest in summer.  Normal
    values stay at AQI <= 100 under both HJ 633-2012 and -2026 (PM2.5 < 60,
    PM10 < 120 ug/m3, a soft knee), because air.yaml alarms from AQI 101:
    real Shihezi winters have many lightly polluted days (AQI 101-150);
    simulate them, and worse episodes, with the ``air.*`` scenarios.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lifewatch.city import City, Sensor
from lifewatch.lifelines import load_lifelines

NS = 1_000_000_000
_U64 = np.uint64
_GOLDEN = _U64(0x9E3779B97F4A7C15)
_C1 = _U64(0xBF58476D1CE4E5B9)
_C2 = _U64(0x94D049BB133111EB)

# decimals per metric in a published reading
DECIMALS: dict[str, dict[str, int]] = {
    "water": {"pressure": 4, "flow": 2},
    "power": {"voltage": 2, "voltage_kv": 3, "frequency": 3, "load": 2, "hotspot_temp": 2},
    "gas": {"pressure": 2, "ch4_lel": 2},
    "bridge": {"strain": 2, "frequency": 4, "vibration": 2, "deflection": 3, "tilt": 4, "temperature": 2},
    "air": {"pm25": 1, "pm10": 1, "no2": 1, "so2": 1, "o3": 1, "co": 3},
}

# ---------------------------------------------------------------- counter-based random numbers


def key64(*parts: object) -> int:
    """A stable 64-bit key for a tuple of names and numbers (independent of PYTHONHASHSEED)."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64 output function on a uint64 array (wrapping arithmetic)."""
    x = x ^ (x >> _U64(30))
    x = x * _C1
    x = x ^ (x >> _U64(27))
    x = x * _C2
    return x ^ (x >> _U64(31))


Key = int | np.ndarray  # one stream, or one stream per element (uint64 array)


def _key(key: Key) -> np.uint64 | np.ndarray:
    if isinstance(key, np.ndarray):
        return key.astype(np.uint64, copy=False)
    return _U64(int(key) & 0xFFFFFFFFFFFFFFFF)


def uniform(key: Key, n: np.ndarray) -> np.ndarray:
    """U[0, 1) for each integer counter in ``n`` of stream ``key``."""
    c = np.asarray(n, dtype=np.int64).astype(np.uint64)
    z = _mix(c * _GOLDEN + _key(key))
    return (z >> _U64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def gauss(key: Key, n: np.ndarray) -> np.ndarray:
    """N(0, 1) for each integer counter (Box-Muller on two hashed uniforms)."""
    n = np.asarray(n, dtype=np.int64)
    u1 = uniform(key, 2 * n)
    u2 = uniform(key, 2 * n + 1)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def smooth(key: Key, t_ns: np.ndarray, scale_s: float) -> np.ndarray:
    """Smooth Gaussian wander with unit variance and correlation length ``scale_s``.

    Value noise: N(0, 1) knots every ``scale_s`` on the absolute time axis,
    Catmull-Rom interpolation, rescaled to unit variance between knots.  With
    a key array each element follows its own stream (same numbers as a
    scalar key would give).
    """
    t_ns = np.asarray(t_ns, dtype=np.int64)
    if t_ns.size == 0:
        return np.zeros(0)
    step = int(scale_s * NS)
    n = t_ns // step
    f = (t_ns - n * step).astype(np.float64) / step
    if isinstance(key, np.ndarray):
        p0, p1, p2, p3 = (gauss(key, n + d) for d in (-1, 0, 1, 2))
    else:
        lo = int(n.min()) - 1
        knots = gauss(key, np.arange(lo, int(n.max()) + 3, dtype=np.int64))
        i = n - lo
        p0, p1, p2, p3 = knots[i - 1], knots[i], knots[i + 1], knots[i + 2]
    f2 = f * f
    f3 = f2 * f
    w0 = -0.5 * f3 + f2 - 0.5 * f
    w1 = 1.5 * f3 - 2.5 * f2 + 1.0
    w2 = -1.5 * f3 + 2.0 * f2 + 0.5 * f
    w3 = 0.5 * f3 - 0.5 * f2
    norm = np.sqrt(w0 * w0 + w1 * w1 + w2 * w2 + w3 * w3)
    return (w0 * p0 + w1 * p1 + w2 * p2 + w3 * p3) / norm


def soft(x: np.ndarray, lim: float) -> np.ndarray:
    """Bounded to (-lim, lim), linear near 0."""
    return lim * np.tanh(np.asarray(x) / lim)


def knee(x: np.ndarray, a: float, cap: float) -> np.ndarray:
    """Identity below ``a``, then bends smoothly toward ``cap`` (never reaches it)."""
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= a, x, a + (cap - a) * np.tanh((x - a) / (cap - a)))


def lagged(fn: Callable[[np.ndarray], np.ndarray], t_ns: np.ndarray, tau_s: float, step_s: float) -> np.ndarray:
    """First-order lag (time constant ``tau_s``) of ``fn`` at times ``t_ns``.

    A truncated (5 tau) normalised exponential kernel over ``fn`` sampled on
    the absolute grid of ``step_s``; linear interpolation between grid points.
    Chunk independent: each grid value depends only on fn at fixed grid times.
    """
    t_ns = np.asarray(t_ns, dtype=np.int64)
    if t_ns.size == 0:
        return np.zeros(0)
    step = int(step_s * NS)
    j = max(1, int(math.ceil(5.0 * tau_s / step_s)))
    w = np.exp(-np.arange(j) * step_s / tau_s)
    w /= w.sum()
    g = t_ns // step
    g0, g1 = int(g.min()), int(g.max()) + 1
    grid = np.arange(g0 - j + 1, g1 + 1, dtype=np.int64) * step
    vals = fn(grid)
    m = g1 - g0 + 1  # outputs for grid points g0..g1
    out = np.zeros(m)
    for k in range(j):
        out += w[k] * vals[j - 1 - k : j - 1 - k + m]
    f = (t_ns - g * step).astype(np.float64) / step
    i = g - g0
    return out[i] * (1.0 - f) + out[i + 1] * f


# ---------------------------------------------------------------- calendar


@dataclass(frozen=True, slots=True)
class LocalTime:
    hour: np.ndarray  # 0..24 local
    dow: np.ndarray  # Monday = 0
    season: np.ndarray  # +1 mid-January (winter) .. -1 mid-July (summer)


def local_time(t_ns: np.ndarray, utc_offset_hours: float) -> LocalTime:
    local_s = np.asarray(t_ns, dtype=np.int64) / NS + utc_offset_hours * 3600.0
    days = np.floor(local_s / 86400.0)
    hour = (local_s - days * 86400.0) / 3600.0
    dow = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    doy = np.mod(local_s / 86400.0, 365.2425)
    season = np.cos(2.0 * np.pi * (doy - 15.0) / 365.2425)
    return LocalTime(hour, dow, season)


class DailyProfile:
    """A smooth daily pattern (mean 1) from anchor points (hour, factor), by Fourier series.

    ``jitter`` randomises each harmonic's coefficients by up to that share
    (LeakDB randomises its Fourier coefficients by +/-10 %).
    """

    def __init__(self, anchors: list[tuple[float, float]], harmonics: int = 6):
        hours = np.arange(288) / 12.0
        xs = [h for h, _ in anchors] + [anchors[0][0] + 24.0]
        ys = [v for _, v in anchors] + [anchors[0][1]]
        curve = np.interp(hours, xs, ys, period=None)
        curve = curve / curve.mean()
        spec = np.fft.rfft(curve) / 288.0
        self.a = 2.0 * spec.real[1 : harmonics + 1]
        self.b = -2.0 * spec.imag[1 : harmonics + 1]
        self.h = np.arange(1, harmonics + 1)

    def coefficients(self, key: int | None = None, jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        if key is None or jitter == 0.0:
            return self.a, self.b
        u = uniform(key, np.arange(2 * len(self.h))) * 2.0 - 1.0
        return self.a * (1.0 + jitter * u[: len(self.h)]), self.b * (1.0 + jitter * u[len(self.h) :])

    def __call__(self, hour: np.ndarray, coef: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        a, b = coef if coef is not None else (self.a, self.b)
        x = 2.0 * np.pi * np.asarray(hour)[..., None] * self.h / 24.0
        return 1.0 + (np.cos(x) * a).sum(-1) + (np.sin(x) * b).sum(-1)


# local hours (Xinjiang time).  Shapes: domain.md §1.1 (water: peaks 06-10 and 16-20, MNF 02-04),
# §2.1 (power: morning and evening peaks, no Chinese numbers found [U]), §5.1 (air: evening surge to 21:00).
WATER_DAY = DailyProfile([
    (0, 0.56), (1, 0.44), (2, 0.37), (3, 0.34), (4, 0.37), (5, 0.52), (6, 0.95), (7, 1.42), (8, 1.55),
    (9, 1.40), (10, 1.22), (11, 1.15), (12, 1.20), (13, 1.10), (14, 1.00), (15, 0.97), (16, 1.03),
    (17, 1.18), (18, 1.32), (19, 1.40), (20, 1.33), (21, 1.15), (22, 0.92), (23, 0.72),
], harmonics=5)
POWER_DAY = DailyProfile([
    (0, 0.56), (1, 0.49), (2, 0.45), (3, 0.43), (4, 0.43), (5, 0.46), (6, 0.55), (7, 0.70), (8, 0.82),
    (9, 0.90), (10, 0.94), (11, 0.95), (12, 0.93), (13, 0.88), (14, 0.85), (15, 0.85), (16, 0.87),
    (17, 0.92), (18, 1.00), (19, 1.12), (20, 1.18), (21, 1.14), (22, 0.95), (23, 0.72),
])
HOUSE_DAY = DailyProfile([
    (0, 0.45), (1, 0.36), (2, 0.33), (3, 0.32), (4, 0.32), (5, 0.36), (6, 0.55), (7, 0.80), (8, 0.78),
    (9, 0.62), (10, 0.55), (11, 0.60), (12, 0.75), (13, 0.70), (14, 0.58), (15, 0.55), (16, 0.60),
    (17, 0.78), (18, 0.98), (19, 1.15), (20, 1.22), (21, 1.15), (22, 0.92), (23, 0.65),
])
GAS_DAY = DailyProfile([
    (0, 0.55), (2, 0.45), (4, 0.45), (5, 0.55), (6, 0.85), (7, 1.30), (8, 1.35), (9, 1.05), (10, 0.95),
    (11, 1.15), (12, 1.40), (13, 1.20), (14, 0.95), (15, 0.90), (16, 0.95), (17, 1.20), (18, 1.50),
    (19, 1.55), (20, 1.30), (21, 1.05), (22, 0.85), (23, 0.65),
])
TRAFFIC_DAY = DailyProfile([
    (0, 0.10), (1, 0.06), (2, 0.05), (3, 0.05), (4, 0.07), (5, 0.16), (6, 0.42), (7, 0.85), (8, 1.05),
    (9, 0.88), (10, 0.72), (11, 0.72), (12, 0.78), (13, 0.76), (14, 0.72), (15, 0.74), (16, 0.84),
    (17, 1.00), (18, 1.05), (19, 0.86), (20, 0.62), (21, 0.46), (22, 0.30), (23, 0.17),
], harmonics=8)
PM_DAY = DailyProfile([
    (0, 1.25), (2, 1.12), (4, 0.98), (6, 0.92), (8, 1.02), (10, 1.00), (12, 0.86), (14, 0.74),
    (16, 0.68), (17, 0.76), (18, 0.95), (19, 1.15), (20, 1.35), (21, 1.45), (22, 1.42), (23, 1.35),
])
_TRAFFIC_MEAN_TO_PEAK = 1.0 / float(TRAFFIC_DAY(np.arange(0, 24, 0.05)).max())
_POWER_MEAN_TO_PEAK = 1.0 / float(POWER_DAY(np.arange(0, 24, 0.05)).max())

WATER_WEEK = np.array([1.00, 0.99, 0.99, 1.00, 1.01, 1.04, 1.03])

# IEC 60076-7 ONAN distribution transformer (domain.md §2.2 [V]); 20 + 55 + 23 = 98 degC at rated load
TR_OIL_RISE = 55.0
TR_HS_GRADIENT = 23.0
TR_R = 5.0
TR_X = 0.8
TR_Y = 1.6
TR_TAU_OIL_S = 180 * 60.0
TR_TAU_WINDING_S = 4 * 60.0
TR_PF = 0.92

# Normal air stays at AQI <= 100 under both HJ 633-2012 and HJ 633-2026 (IAQI 100 at PM2.5 60 and PM10
# 120 ug/m3 in the 2026 table): air.yaml alarms from AQI 101 (level 3, light pollution).  Lightly to
# severely polluted days are incidents: air.inversion (peak_pm25 ~ 90 gives a light-pollution day).
PM25_NORMAL_CAP = 59.0
PM10_NORMAL_CAP = 118.0

CONCRETE_ALPHA = 1.0e-5  # 1/K (domain.md §4.2 uses 1.2e-5 [U] for steel-like; concrete ~1.0e-5)
FREQ_PER_K = -0.0015  # relative natural-frequency change per K (5-10 % seasonal swing, domain.md §4.1 [S])

LoadHook = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (t_ns, K pu) -> K pu


@dataclass
class _Ctx:
    sensor: Sensor
    key: int
    interval_ns: int
    phase_ns: int
    params: dict[str, Any]
    asset_params: dict[str, Any]


class Batch:
    """Sensors of one kind evaluated together over their concatenated sample times.

    ``owner[i]`` is the index (into ``ctxs``) of the sensor of sample ``i``;
    :meth:`param`, :meth:`aparam` and :meth:`akey` give per-sample arrays of a
    sensor parameter, an asset parameter and a hashed per-asset key, so one
    vectorised formula serves every sensor of the kind.  A single sensor is a
    batch of one: the numbers are the same either way.
    """

    def __init__(self, model: NormalModel, ctxs: list[_Ctx], counts: list[int] | np.ndarray):
        self.model = model
        self.ctxs = ctxs
        self.owner = np.repeat(np.arange(len(ctxs)), counts)
        self._cache: dict[tuple, np.ndarray] = {}

    def col(self, name: str, fn: Callable[[_Ctx], Any], dtype: Any = np.float64) -> np.ndarray:
        k = (name, dtype)
        a = self._cache.get(k)
        if a is None:
            a = np.array([fn(c) for c in self.ctxs], dtype=dtype)[self.owner]
            self._cache[k] = a
        return a

    def param(self, name: str, default: float) -> np.ndarray:
        return self.col("p:" + name, lambda c: float(c.params.get(name, default)))

    def aparam(self, name: str, default: float) -> np.ndarray:
        return self.col("a:" + name, lambda c: float(c.asset_params.get(name, default)))

    def akey(self, tag: str) -> np.ndarray:
        return self.col("ak:" + tag, lambda c: self.model.key(tag, c.sensor.asset), np.uint64)

    def skey(self, stream: int) -> np.ndarray:
        """Per-sample key of a sensor's own random stream."""
        return self.col(f"sk:{stream}", lambda c: (c.key + stream) & 0xFFFFFFFFFFFFFFFF, np.uint64)


class NormalModel:
    """Normal readings of the sensors of one city, for one seed."""

    def __init__(self, city: City, seed: int):
        self.city = city
        self.seed = int(seed)
        self.offset_h = city.utc_offset_hours
        self._ctx: dict[str, _Ctx] = {}
        self._lifelines = load_lifelines()
        k = self.key
        self.k_temp = k("air-temperature")
        self.k_grid = k("grid-frequency")
        self.k_vent = k("air-ventilation")
        self.k_city_load = k("city-load")
        self.k_gas = k("gas-demand")
        self._transformer: dict[str, Sensor | None] = {}
        for a in city.assets.values():
            if a.type == "feeder":
                self._transformer[a.id] = next(
                    (s for s in city.sensors_by_asset.get(a.id, []) if s.kind == "transformer"), None)

    def key(self, *parts: object) -> int:
        return key64("lifewatch-sim", self.seed, *parts)

    # ---------------------------------------------------------------- sampling

    def ctx(self, sensor: Sensor) -> _Ctx:
        c = self._ctx.get(sensor.id)
        if c is None:
            interval_ns = int(round(sensor.interval_s * NS))
            key = self.key("sensor", sensor.id)
            interval_ms = max(1, interval_ns // 1_000_000)
            phase_ns = int(uniform(self.key("phase", sensor.id), np.array([0]))[0] * interval_ms) * 1_000_000
            asset = self.city.assets.get(sensor.asset)
            c = _Ctx(sensor, key, interval_ns, phase_ns, dict(sensor.params), dict(asset.params) if asset else {})
            self._ctx[sensor.id] = c
        return c

    def sample_index(self, sensor: Sensor, t_ns: int) -> int:
        """Index k of the first sample at or after ``t_ns`` (sample k is at k * interval + phase)."""
        c = self.ctx(sensor)
        return -((c.phase_ns - t_ns) // c.interval_ns)

    def sample_times(self, sensor: Sensor, t0_ns: int, t1_ns: int) -> tuple[np.ndarray, np.ndarray]:
        """(k, t_ns) of the samples of ``sensor`` with t0_ns <= t < t1_ns."""
        c = self.ctx(sensor)
        k0 = self.sample_index(sensor, t0_ns)
        k1 = self.sample_index(sensor, t1_ns)
        k = np.arange(k0, max(k0, k1), dtype=np.int64)
        return k, k * c.interval_ns + c.phase_ns

    def feeder_transformer(self, feeder_id: str) -> Sensor | None:
        return self._transformer.get(feeder_id)

    # ---------------------------------------------------------------- shared drivers (whole city)

    def air_temp(self, t_ns: np.ndarray) -> np.ndarray:
        """Outdoor air temperature (degC): Shihezi climate, daily cycle (max 16:00), synoptic wander."""
        lt = local_time(t_ns, self.offset_h)
        mean = 6.5 + 20.0 * -lt.season
        amp = 6.0 - 1.5 * lt.season
        daily = amp * np.cos(2.0 * np.pi * (lt.hour - 16.0) / 24.0)
        weather = soft(3.5 * smooth(self.k_temp, t_ns, 36 * 3600.0) + 1.2 * smooth(self.k_temp + 1, t_ns, 6 * 3600.0), 9.0)
        return mean + daily + weather

    def traffic(self, t_ns: np.ndarray) -> np.ndarray:
        """City traffic intensity, 1 at the daily peak (08:00 and 18:00 local), weekends lighter."""
        lt = local_time(t_ns, self.offset_h)
        x = TRAFFIC_DAY(lt.hour) * _TRAFFIC_MEAN_TO_PEAK
        weekend = lt.dow >= 5
        return np.where(weekend, x * np.where(lt.hour < 11.0, 0.7, 0.9), x)

    def grid_frequency(self, t_ns: np.ndarray) -> np.ndarray:
        """System frequency (Hz): 50 with a slow wander shared by every feeder, bounded to +/-0.12."""
        k = self.k_grid
        dev = 0.025 * smooth(k, t_ns, 90.0) + 0.02 * smooth(k + 1, t_ns, 900.0) + 0.01 * smooth(k + 2, t_ns, 3 * 3600.0)
        return 50.0 + soft(dev, 0.12)

    def gas_demand(self, t_ns: np.ndarray) -> np.ndarray:
        lt = local_time(t_ns, self.offset_h)
        return GAS_DAY(lt.hour) * (1.0 + 0.35 * lt.season) * (1.0 + soft(0.05 * smooth(self.k_gas, t_ns, 1800.0), 0.15))

    def ventilation(self, t_ns: np.ndarray) -> np.ndarray:
        """City-wide stagnation factor for air pollutants (median 1; > 1 means poor dispersion)."""
        k = self.k_vent
        return np.exp(soft(0.35 * smooth(k, t_ns, 30 * 3600.0) + 0.15 * smooth(k + 1, t_ns, 6 * 3600.0), 0.9))

    def heating(self, t_ns: np.ndarray) -> np.ndarray:
        """Heating-season intensity 0..1 (on from mid-October to mid-April, full in mid-winter)."""
        return np.clip((local_time(t_ns, self.offset_h).season + 0.05) / 0.35, 0.0, 1.0)

    # ---------------------------------------------------------------- per-asset drivers (key arrays)

    def water_demand(self, dma_key: np.ndarray | int, coef: tuple[np.ndarray, np.ndarray], t_ns: np.ndarray) -> np.ndarray:
        """DMA demand factor (mean ~1): daily x weekly x yearly x (1 + 5 % noise), shared by the DMA."""
        lt = local_time(t_ns, self.offset_h)
        daily = WATER_DAY(lt.hour, coef)
        weekly = WATER_WEEK[lt.dow]
        yearly = 1.0 - 0.12 * lt.season
        noise = 1.0 + soft(0.05 * smooth(dma_key, t_ns, 300.0), 0.15)
        return daily * weekly * yearly * noise

    def feeder_shape(self, feeder_key: np.ndarray | int, t_ns: np.ndarray) -> np.ndarray:
        """Feeder load relative to its daily peak (1 at a typical peak), with feeder and city wander."""
        lt = local_time(t_ns, self.offset_h)
        shape = POWER_DAY(lt.hour) * _POWER_MEAN_TO_PEAK
        weekly = np.where(lt.dow >= 5, np.where((lt.hour > 8.0) & (lt.hour < 18.0), 0.95, 1.0), 1.0)
        season = 1.0 + 0.08 * lt.season
        wander = 1.0 + soft(0.03 * smooth(feeder_key, t_ns, 1200.0) + 0.02 * smooth(self.k_city_load, t_ns, 3 * 3600.0), 0.1)
        return shape * weekly * season * wander

    def deck_temp(self, bridge_key: np.ndarray | int, t_ns: np.ndarray) -> np.ndarray:
        """Structural (deck) temperature: air temperature 1.5 h earlier plus solar gain."""
        t_ns = np.asarray(t_ns, dtype=np.int64)
        lt = local_time(t_ns, self.offset_h)
        sun = np.clip(np.sin(np.pi * (lt.hour - 9.0) / 10.0), 0.0, None) * (4.0 - 2.0 * lt.season)
        return self.air_temp(t_ns - int(1.5 * 3600 * NS)) + sun + 0.5 * smooth(bridge_key, t_ns, 3 * 3600.0)

    def effective_temp(self, bridge_key: np.ndarray | int, t_ns: np.ndarray) -> np.ndarray:
        """Bulk temperature driving strain, bearing movement and frequency: deck temperature 30 min earlier."""
        return self.deck_temp(bridge_key, np.asarray(t_ns, dtype=np.int64) - 1800 * NS)

    def bridge_live(self, bridge_key: np.ndarray | int, t_ns: np.ndarray) -> np.ndarray:
        """Live-load intensity on a bridge (about 1 at a busy peak minute, at most 1.2)."""
        x = self.traffic(t_ns) * (0.62 + 0.22 * smooth(bridge_key, t_ns, 60.0)
                                  + 0.12 * smooth(np.asarray(bridge_key, dtype=np.uint64) + _U64(1), t_ns, 600.0))
        return np.clip(x, 0.0, 1.2)

    # single-asset conveniences (used by scenarios and tests)

    def bridge_key(self, bridge_id: str) -> int:
        return self.key("bridge", bridge_id)

    def bridge_effective_temp(self, bridge_id: str, t_ns: np.ndarray) -> np.ndarray:
        return self.effective_temp(self.bridge_key(bridge_id), t_ns)

    def bearing_movement(self, sensor: Sensor, t_ns: np.ndarray) -> np.ndarray:
        """Free longitudinal bearing movement (mm): alpha * span * (T_eff - t_ref)."""
        a = self.ctx(sensor).asset_params
        te = self.bridge_effective_temp(sensor.asset, t_ns)
        return CONCRETE_ALPHA * float(a.get("span_m", 40.0)) * 1000.0 * (te - float(a.get("t_ref", 10.0)))

    def transformer_k(self, sensor: Sensor, t_ns: np.ndarray, hook: LoadHook | None = None) -> np.ndarray:
        """Load factor K (per unit of rating) of a transformer sensor, after incident hooks."""
        t_ns = np.asarray(t_ns, dtype=np.int64)
        b = Batch(self, [self.ctx(sensor)], [t_ns.size])
        return self._k(b, t_ns, hook, own=True)

    def _k(self, b: Batch, t: np.ndarray, hook: LoadHook | None, own: bool) -> np.ndarray:
        """K of the transformer of each sample's feeder (``own``: the sensors are transformers)."""
        if own:
            peak = b.param("peak_pu", 0.6)
            tkey = b.col("trk", lambda c: self.key("transformer", c.sensor.id), np.uint64)
        else:
            trs = lambda c: self._transformer.get(c.sensor.asset)  # noqa: E731
            peak = b.col("tr_peak", lambda c: float(trs(c).params.get("peak_pu", 0.6)) if trs(c) else 0.6)
            tkey = b.col("trk", lambda c: self.key("transformer", trs(c).id if trs(c) else c.sensor.asset), np.uint64)
        k = peak * self.feeder_shape(b.akey("feeder"), t) * (1.0 + soft(0.04 * smooth(tkey, t, 600.0), 0.1))
        if hook is not None:
            k = hook(t, k)
        return np.maximum(k, 0.0)

    # ---------------------------------------------------------------- per sensor kind

    def values(self, sensor: Sensor, t_ns: np.ndarray, load_hook: LoadHook | None = None) -> dict[str, np.ndarray]:
        """Normal values of every metric of ``sensor`` at event times ``t_ns`` (unrounded)."""
        t_ns = np.asarray(t_ns, dtype=np.int64)
        return self.values_batch([sensor], t_ns, [t_ns.size], load_hook)

    def values_batch(self, sensors: list[Sensor], t_ns: np.ndarray, counts: list[int] | np.ndarray,
                     load_hook: LoadHook | None = None) -> dict[str, np.ndarray]:
        """Values of several sensors of ONE kind: ``t_ns`` holds their sample times one sensor after
        another (``counts[i]`` for sensor i); the result arrays are laid out the same way."""
        s0 = sensors[0]
        b = Batch(self, [self.ctx(s) for s in sensors], counts)
        fn = getattr(self, f"_{s0.lifeline}_{s0.kind}")
        return fn(b, np.asarray(t_ns, dtype=np.int64), load_hook)

    def _noise(self, b: Batch, stream: int, t_ns: np.ndarray) -> np.ndarray:
        """Per-sample white noise N(0, 1) of each sensor (indexed by the sample's time in ms)."""
        return gauss(b.skey(stream), t_ns // 1_000_000)

    # water ------------------------------------------------------------

    def _demand(self, b: Batch, t: np.ndarray) -> np.ndarray:
        rows = [WATER_DAY.coefficients(self.key("dma-pattern", c.sensor.asset), 0.10) for c in b.ctxs]
        coef = (np.stack([r[0] for r in rows])[b.owner], np.stack([r[1] for r in rows])[b.owner])
        return self.water_demand(b.akey("dma-noise"), coef, t)

    def _pressure(self, b: Batch, t: np.ndarray, d: np.ndarray, inlet: bool) -> np.ndarray:
        p_inlet = b.aparam("p_inlet", 0.42)
        dist_km = b.param("dist_m", 0.0) / 1000.0
        elev = b.param("elev_m", 0.0)
        k_loss = 0.004 if inlet else 0.006 + 0.018 * dist_km
        source = 0.004 * smooth(b.akey("dma-source"), t, 7200.0)
        return p_inlet - 0.0098 * elev + source - k_loss * np.power(d, 1.852)

    def _water_dma_inlet(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        d = self._demand(b, t)
        flow = b.aparam("base_flow", 100.0) * d * (1.0 + 0.01 * self._noise(b, 1, t))
        p = self._pressure(b, t, d, True) + 0.0015 * self._noise(b, 2, t)
        return {"flow": flow, "pressure": p}

    def _water_pressure(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        return {"pressure": self._pressure(b, t, self._demand(b, t), False) + 0.002 * self._noise(b, 1, t)}

    # power ------------------------------------------------------------

    def _power_meter(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        k_tr = self._k(b, t, hook, own=False)
        setv = 1.03 + soft(0.006 * smooth(b.akey("feeder-volt"), t, 1800.0), 0.012)
        v = 220.0 * (setv - b.param("drop", 0.03) * k_tr + soft(0.005 * self._noise(b, 1, t), 0.02))
        lt = local_time(t, self.offset_h)
        house = HOUSE_DAY(lt.hour) * (1.0 + 0.1 * lt.season)
        shared = self.feeder_shape(b.akey("feeder"), t) / (POWER_DAY(lt.hour) * _POWER_MEAN_TO_PEAK * (1.0 + 0.08 * lt.season))
        own = np.exp(soft(0.3 * smooth(b.skey(7), t, 1800.0), 0.8) + 0.25 * self._noise(b, 2, t) - 0.07)
        load = b.param("base_kw", 0.7) * house * shared * own
        return {"voltage": v, "load": np.maximum(load, 0.02)}

    def _power_feeder_head(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        lf = b.aparam("peak_pu", 0.7) * self.feeder_shape(b.akey("feeder"), t)
        load = b.aparam("rated_kw", 4000.0) * lf * (1.0 + 0.005 * self._noise(b, 1, t))
        setv = soft(0.005 * smooth(b.akey("feeder-bus"), t, 1800.0), 0.012)
        kv = 10.0 * (1.025 + setv - 0.02 * lf + soft(0.002 * self._noise(b, 2, t), 0.006))
        f = self.grid_frequency(t) + soft(0.002 * self._noise(b, 3, t), 0.006)
        return {"voltage_kv": kv, "frequency": f, "load": load}

    def hotspot(self, sensor: Sensor, t_ns: np.ndarray, hook: LoadHook | None = None) -> np.ndarray:
        """Winding hot-spot temperature (degC): IEC 60076-7 exponential model, first-order lags.

        Top oil follows ambient + the ultimate oil rise 55 K x ((1 + R K^2) / (1 + R))^x with
        tau_o = 180 min; the winding gradient 23 K x K^y follows with tau_w = 4 min.
        """
        rise = float(self.ctx(sensor).params.get("enclosure_rise", 5.0))

        def oil(g: np.ndarray) -> np.ndarray:
            k = self.transformer_k(sensor, g, hook)
            ultimate = TR_OIL_RISE * np.power((1.0 + TR_R * k * k) / (1.0 + TR_R), TR_X)
            return self.air_temp(g) + rise + ultimate

        def winding(g: np.ndarray) -> np.ndarray:
            return TR_HS_GRADIENT * np.power(self.transformer_k(sensor, g, hook), TR_Y)

        return lagged(oil, t_ns, TR_TAU_OIL_S, 300.0) + lagged(winding, t_ns, TR_TAU_WINDING_S, 60.0)

    def _power_transformer(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        k = self._k(b, t, hook, own=True)
        load = b.param("rated_kva", 630.0) * TR_PF * k * (1.0 + 0.005 * self._noise(b, 1, t))
        hs = np.empty(t.shape)
        for i, c in enumerate(b.ctxs):
            sel = b.owner == i
            hs[sel] = self.hotspot(c.sensor, t[sel], hook)
        return {"load": load, "hotspot_temp": hs + 0.2 * self._noise(b, 2, t)}

    # gas --------------------------------------------------------------

    def _gas_pressure(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        reg = soft(1.0 * smooth(b.akey("regulator"), t, 3600.0), 2.5)
        p = b.aparam("setpoint_kpa", 150.0) + reg - b.param("drop_kpa", 5.0) * self.gas_demand(t)
        return {"pressure": p + 0.15 * self._noise(b, 1, t)}

    def _gas_well_methane(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        x = b.param("base_lel", 0.4) + soft(0.25 * smooth(b.skey(3), t, 7200.0), 0.8) + soft(0.08 * self._noise(b, 1, t), 0.3)
        return {"ch4_lel": np.maximum(x, 0.0)}

    # bridge -----------------------------------------------------------

    def _bkey(self, b: Batch) -> np.ndarray:
        return b.col("bk", lambda c: self.bridge_key(c.sensor.asset), np.uint64)

    def _bridge_strain_gauge(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        bk = self._bkey(b)
        shape = np.sin(np.pi * b.param("pos", 0.5))
        live = 0.25 * b.aparam("strain_design", 400.0) * shape * self.bridge_live(bk + _U64(7), t)
        thermal = b.param("t_coef", 0.0) * (self.effective_temp(bk, t) - b.aparam("t_ref", 10.0))
        strain = b.param("offset", 0.0) + thermal + live + 1.5 * self._noise(b, 1, t)
        return {"strain": strain, "temperature": self.deck_temp(bk, t) + 0.2 * self._noise(b, 2, t)}

    def _bridge_accelerometer(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        bk = self._bkey(b)
        shape = np.sin(np.pi * b.param("pos", 0.5))
        vib = (3.0 + 35.0 * shape * self.bridge_live(bk + _U64(7), t)) * np.exp(0.15 * self._noise(b, 1, t))
        te = self.effective_temp(bk, t)
        rel = 1.0 + FREQ_PER_K * (te - b.aparam("t_ref", 10.0))
        freq = b.aparam("f0", 2.5) * rel * (1.0 + 0.002 * self._noise(b, 2, t))
        return {"vibration": vib, "frequency": freq}

    def _bridge_displacement(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        bk = self._bkey(b)
        deck = self.deck_temp(bk, t)
        bearing = b.col("bearing", lambda c: c.params.get("role") == "bearing", bool)
        movement = CONCRETE_ALPHA * b.aparam("span_m", 40.0) * 1000.0 * (self.effective_temp(bk, t) - b.aparam("t_ref", 10.0))
        design = b.aparam("deflection_design", 60.0)
        midspan = 0.25 * design * self.bridge_live(bk + _U64(7), t) - 0.004 * design * (deck - self.air_temp(t))
        d = np.where(bearing, movement + 0.05 * self._noise(b, 1, t), midspan + 0.1 * self._noise(b, 1, t))
        return {"deflection": d, "temperature": deck + 0.2 * self._noise(b, 2, t)}

    def _bridge_inclinometer(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        deck = self.deck_temp(self._bkey(b), t)
        return {"tilt": b.param("offset", 0.0) + 0.0004 * (deck - 10.0) + 0.0005 * self._noise(b, 1, t)}

    # air --------------------------------------------------------------

    def _air_station(self, b: Batch, t: np.ndarray, hook: LoadHook | None) -> dict[str, np.ndarray]:
        lt = local_time(t, self.offset_h)
        heat = self.heating(t)
        summer = np.clip((-lt.season + 0.2) / 1.2, 0.0, 1.0)
        vent = self.ventilation(t)
        traffic = self.traffic(t)
        pm_day = PM_DAY(lt.hour) ** (0.4 + 0.6 * heat)
        weekly = np.where(lt.dow >= 5, 0.95, 1.0)

        def n(stream: int, sd: float) -> np.ndarray:
            return np.exp(soft(sd * self._noise(b, stream, t), 3 * sd))

        raw25 = (18.0 + 24.0 * heat) * pm_day * vent * b.param("local", 1.0) * weekly * n(1, 0.06)
        pm25 = knee(raw25, 45.0, PM25_NORMAL_CAP)
        ratio = 0.45 + 0.2 * heat
        coarse = np.exp(soft(0.1 * smooth(b.skey(11), t, 5400.0), 0.3))
        pm10 = knee(pm25 / ratio * coarse * n(2, 0.05), 90.0, PM10_NORMAL_CAP)
        no2 = knee((22.0 + 12.0 * heat) * (0.55 + 0.8 * traffic) * np.sqrt(vent) * b.param("traffic", 1.0) * n(3, 0.08),
                   120.0, 180.0)
        co = knee((0.5 + 1.1 * heat) * pm_day * vent * (0.8 + 0.25 * traffic) * n(4, 0.06), 4.0, 6.0)
        so2 = knee((6.0 + 22.0 * heat) * pm_day ** 0.7 * vent * b.param("industry", 1.0) * n(5, 0.08), 100.0, 140.0)
        sun = np.exp(-0.5 * ((lt.hour - 15.0) / 3.2) ** 2)
        o3 = (22.0 + (25.0 + 95.0 * summer) * sun) * (1.0 - 0.25 * traffic) / np.power(vent, 0.3) * n(6, 0.08)
        o3 = knee(np.maximum(o3, 2.0), 150.0, 190.0)
        return {"pm25": pm25, "pm10": pm10, "no2": no2, "so2": so2, "o3": o3, "co": co}


def metric_range(lifeline: str, metric: str) -> tuple[float, float]:
    return load_lifelines()[lifeline].metrics[metric].range
