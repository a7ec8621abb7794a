"""China's Air Quality Index: HJ 633-2012, and HJ 633-2026 from 2026-03-01.

Sources (``../shared/reference/domain.md`` §5.2): the HJ 633-2012 IAQI
breakpoints are [V] (``caiyunapp/aqi-hub`` ``aqi_cn/common.py`` @3e5a92d and
at least six independent implementations for SO2 24 h); the HJ 633-2026
changes are [S] (news reports, aqi-hub README and ``cn.rs``).

The rules implemented:

* IAQI = linear interpolation inside the breakpoint segment, **rounded up**
  to an integer; AQI = the maximum IAQI over the pollutants present.
* Primary pollutant(s): IAQI > 50 and equal to the AQI (ties give several).
* The rule set follows the reading's **event date**: HJ 633-2026 applies from
  2026-03-01 00:00 China Standard Time (UTC+8, the time in which national
  standards take effect) = 2026-02-28T16:00:00Z; before that, HJ 633-2012.

Hourly readings.  A station reports hourly-updated concentrations (the
lifeline's ``pm25``, ``pm10``, ``so2``, ``no2``, ``o3``, ``co`` metrics).
HJ 633 has no 1-h breakpoints for particles, and the official real-time rule
text was not read [U], so this module applies, to a metric's hourly value:

======  ==================================================================
pm25    the 24-h breakpoints (as aqi-hub and other implementations do [V code])
pm10    the 24-h breakpoints (same)
so2     the 1-h breakpoints; above 800 ug/m3 (the top of the 1-h table):
        2012 rules: the 24-h breakpoints applied to the hourly value (stand-in
        for the commonly quoted HJ 633-2012 note "use the 24-h IAQI", [U]);
        2026 rules: IAQI 200 [S]
no2     the 1-h breakpoints
co      the 1-h breakpoints (mg/m3)
o3      the 1-h breakpoints (the 8-h moving mean needs 8 h of history; pass
        ``o3_8h`` explicitly when you have it)
======  ==================================================================

Explicit averaging periods can be passed instead (``pm25_24h``, ``so2_1h``,
``so2_24h``, ``no2_1h``, ``no2_24h``, ``co_1h``, ``co_24h``, ``o3_1h``,
``o3_8h``...).  Above the top of its table, ``so2_1h`` and ``o3_8h`` follow
the rule set: 2012 gives no IAQI (the note says to use ``so2_24h`` /
``o3_1h`` instead [U]); 2026 gives 200 / 300 [S].  Every other item above
its table's top is capped at IAQI 500 ("beyond the index", reported as 500).
Negative concentrations (calibration offsets) count as 0.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

NS = 1_000_000_000

# HJ 633-2012 Table 1, IAQI column (same in HJ 633-2026) [V]
IAQI_BREAKS = (0, 50, 100, 150, 200, 300, 400, 500)

# ---- HJ 633-2012 Table 1 concentration breakpoints [V] (ug/m3; CO mg/m3)
PM25_24H = (0, 35, 75, 115, 150, 250, 350, 500)
PM10_24H = (0, 50, 150, 250, 350, 420, 500, 600)
# NOT 0/150/500/650/800: that is the 1-h column copied by caiyunapp/aqi-hub (bug noted in domain.md §5.2)
SO2_24H = (0, 50, 150, 475, 800, 1600, 2100, 2620)
SO2_1H = (0, 150, 500, 650, 800)  # IAQI 0-200; above 800 see the rules in the module docstring
NO2_24H = (0, 40, 80, 180, 280, 565, 750, 940)
NO2_1H = (0, 100, 200, 700, 1200, 2340, 3090, 3840)
CO_24H = (0, 2, 4, 14, 24, 36, 48, 60)
CO_1H = (0, 5, 10, 35, 60, 90, 120, 150)
O3_1H = (0, 160, 200, 300, 400, 800, 1000, 1200)
O3_8H = (0, 100, 160, 215, 265, 800)  # IAQI 0-300; above 800 see the rules in the module docstring

# ---- HJ 633-2026 changes [S: aqi-hub README and cn.rs, news reports]
PM25_24H_2026 = (0, 35, 60, 115, 150, 250, 350, 500)  # IAQI 100 at 60 (was 75) [S]
# IAQI 100 at 120 (was 150) [S]; the other PM10 breakpoints are assumed unchanged [U]
PM10_24H_2026 = (0, 50, 120, 250, 350, 420, 500, 600)
SO2_1H_ABOVE_TOP_IAQI_2026 = 200  # SO2 1 h above 800 ug/m3 -> IAQI 200 [S]
O3_8H_ABOVE_TOP_IAQI_2026 = 300  # O3 8 h above 800 ug/m3 -> IAQI 300 [S]
IAQI_CAP = 500  # top of the index (HJ 633 Table 1); values beyond a table's top are reported as 500

# HJ 633-2026 takes effect 2026-03-01 [S, several news reports], 00:00 China Standard Time (UTC+8)
HJ633_2026_EFFECTIVE_NS = calendar.timegm((2026, 2, 28, 16, 0, 0, 0, 0, 0)) * NS

RULES_2012 = "HJ 633-2012"
RULES_2026 = "HJ 633-2026"
RULE_SETS = (RULES_2012, RULES_2026)

# HJ 633-2012 Table 2: AQI level upper bounds (level 1: 0-50 ... level 6: > 300) [V]
AQI_LEVEL_TOPS = (50, 100, 150, 200, 300)
AQI_CATEGORIES = {
    1: ("优", "excellent"),
    2: ("良", "good"),
    3: ("轻度污染", "lightly polluted"),
    4: ("中度污染", "moderately polluted"),
    5: ("重度污染", "heavily polluted"),
    6: ("严重污染", "severely polluted"),
}

TABLES: dict[str, dict[str, tuple[float, ...]]] = {
    RULES_2012: {
        "pm25_24h": PM25_24H,
        "pm10_24h": PM10_24H,
        "so2_24h": SO2_24H,
        "so2_1h": SO2_1H,
        "no2_24h": NO2_24H,
        "no2_1h": NO2_1H,
        "co_24h": CO_24H,
        "co_1h": CO_1H,
        "o3_1h": O3_1H,
        "o3_8h": O3_8H,
    },
}
TABLES[RULES_2026] = {**TABLES[RULES_2012], "pm25_24h": PM25_24H_2026, "pm10_24h": PM10_24H_2026}

# which averaging period's breakpoints apply to a metric's hourly value (see the module docstring)
HOURLY_ITEM = {"pm25": "pm25_24h", "pm10": "pm10_24h", "so2": "so2_1h", "no2": "no2_1h", "co": "co_1h", "o3": "o3_1h"}
POLLUTANTS = tuple(HOURLY_ITEM)


class AQI(NamedTuple):
    aqi: int | None
    primary_pollutants: tuple[str, ...]
    level: int | None  # 1..6 (HJ 633 Table 2)
    rule_set: str


def rule_set_for(ts_ns: int) -> str:
    """The AQI rule set in force at an event time (UTC ns).

    >>> rule_set_for(HJ633_2026_EFFECTIVE_NS - 1), rule_set_for(HJ633_2026_EFFECTIVE_NS)
    ('HJ 633-2012', 'HJ 633-2026')
    """
    return RULES_2026 if ts_ns >= HJ633_2026_EFFECTIVE_NS else RULES_2012


def _interp(c: np.ndarray, bp: tuple[float, ...]) -> np.ndarray:
    """Segment-wise linear IAQI, rounded up; values above the table's top give NaN (caller decides)."""
    b = np.asarray(bp, dtype=np.float64)
    ia = np.asarray(IAQI_BREAKS[: len(bp)], dtype=np.float64)
    cc = np.maximum(c, 0.0)
    j = np.clip(np.searchsorted(b, cc, side="right") - 1, 0, len(b) - 2)
    v = ia[j] + (cc - b[j]) * (ia[j + 1] - ia[j]) / (b[j + 1] - b[j])
    v = np.ceil(np.round(v, 6))  # "rounded up"; the round() keeps 100.0000000001 from becoming 101
    return np.where(cc > b[-1], np.nan, v)


def item_of(pollutant: str) -> str:
    """The breakpoint item a key uses: ``pm25`` -> ``pm25_24h`` (hourly convention), ``so2_24h`` -> itself."""
    item = HOURLY_ITEM.get(pollutant, pollutant)
    if item not in TABLES[RULES_2012]:
        raise ValueError(f"unknown pollutant {pollutant!r}; known: {', '.join([*HOURLY_ITEM, *TABLES[RULES_2012]])}")
    return item


def iaqi_array(pollutant: str, c: np.ndarray, rules_2026: np.ndarray) -> np.ndarray:
    """Vectorised IAQI of one pollutant key for many readings; ``rules_2026`` is a bool mask per value.

    NaN where the rule set gives no IAQI (2012 ``so2_1h`` / ``o3_8h`` above
    their tables) or the concentration is NaN.
    """
    c = np.asarray(c, dtype=np.float64)
    rules_2026 = np.asarray(rules_2026, dtype=bool)
    item = item_of(pollutant)
    t12, t26 = TABLES[RULES_2012][item], TABLES[RULES_2026][item]
    any26 = bool(rules_2026.any())
    all26 = any26 and bool(rules_2026.all())
    v12 = _interp(c, t12) if not all26 or t26 == t12 else np.full(len(c), np.nan)  # skip a table no row needs
    v26 = v12 if t26 == t12 else (_interp(c, t26) if any26 else v12)
    above12 = c > t12[-1]
    above26 = c > t26[-1]
    if item == "so2_1h":
        if pollutant == "so2":  # hourly reading: 2012 -> the 24-h breakpoints on the hourly value
            v12 = np.where(above12, _cap(_interp(c, SO2_24H)), v12)
        v26 = np.where(above26, float(SO2_1H_ABOVE_TOP_IAQI_2026), v26)
    elif item == "o3_8h":
        v26 = np.where(above26, float(O3_8H_ABOVE_TOP_IAQI_2026), v26)
    else:
        v12 = np.where(above12, float(IAQI_CAP), v12)
        v26 = np.where(above26, float(IAQI_CAP), v26)
    return np.where(rules_2026, v26, v12)


def _cap(v: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(v), float(IAQI_CAP), v)


def iaqi(pollutant: str, c: float, ts_ns: int, rule_set: str | None = None) -> int | None:
    """The individual AQI of one concentration (None where the rule set gives none).

    >>> ts = HJ633_2026_EFFECTIVE_NS
    >>> iaqi("so2", 900.0, ts - 1), iaqi("so2", 900.0, ts), iaqi("so2_1h", 900.0, ts - 1)
    (213, 200, None)
    """
    rs = rule_set or rule_set_for(ts_ns)
    if rs not in RULE_SETS:
        raise ValueError(f"unknown AQI rule set {rs!r}; known: {', '.join(RULE_SETS)}")
    v = iaqi_array(pollutant, np.array([c], dtype=np.float64), np.array([rs == RULES_2026]))[0]
    return None if math.isnan(v) else int(v)


def aqi_level(value: float) -> int:
    """AQI -> level 1..6 (HJ 633-2012 Table 2 [V]).

    >>> [aqi_level(a) for a in (0, 50, 51, 100, 101, 150, 151, 200, 201, 300, 301, 500)]
    [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    """
    return 1 + sum(value > top for top in AQI_LEVEL_TOPS)


def aqi(values: Mapping[str, float | None], ts_ns: int, rule_set: str | None = None) -> AQI:
    """AQI of one station reading: (aqi, primary_pollutants, level 1-6, rule set).

    ``values`` maps pollutant keys (``pm25``, ``pm10``, ``so2``, ``no2``,
    ``co``, ``o3`` for hourly values, or explicit items such as ``o3_8h``) to
    concentrations (ug/m3, CO in mg/m3); None or NaN means missing.  The rule
    set follows ``ts_ns`` unless given.

    The same concentrations before and after 2026-03-01 (PM2.5 70 -> IAQI 94,
    then 110 with IAQI 100 at 60 ug/m3):

    >>> from lifewatch.model import parse_ts
    >>> aqi({"pm25": 70.0, "pm10": 100.0, "no2": 40.0}, parse_ts("2026-02-01T00:00:00Z"))
    AQI(aqi=94, primary_pollutants=('pm25',), level=2, rule_set='HJ 633-2012')
    >>> aqi({"pm25": 70.0, "pm10": 100.0, "no2": 40.0}, parse_ts("2026-03-02T00:00:00Z"))
    AQI(aqi=110, primary_pollutants=('pm25',), level=3, rule_set='HJ 633-2026')

    Clean air has no primary pollutant (IAQI must exceed 50); ties give several:

    >>> aqi({"pm25": 20.0, "o3": 100.0}, 0)
    AQI(aqi=32, primary_pollutants=(), level=1, rule_set='HJ 633-2012')
    >>> aqi({"pm25": 75.0, "pm10": 150.0}, 0).primary_pollutants
    ('pm25', 'pm10')
    >>> aqi({"pm25": None}, 0)
    AQI(aqi=None, primary_pollutants=(), level=None, rule_set='HJ 633-2012')
    """
    rs = rule_set or rule_set_for(ts_ns)
    sub: dict[str, int] = {}
    for k, c in values.items():
        if c is None or math.isnan(c):
            item_of(k)  # still reject unknown keys
            continue
        v = iaqi(k, float(c), ts_ns, rs)
        if v is not None:
            sub[k] = v
    if not sub:
        return AQI(None, (), None, rs)
    top = max(sub.values())
    primary = tuple(k for k, v in sub.items() if v == top and v > 50)
    return AQI(top, primary, aqi_level(top), rs)


def iaqi_all(values: Mapping[str, float | None], ts_ns: int, rule_set: str | None = None) -> dict[str, int | None]:
    """Every pollutant's IAQI (None for missing or undefined), for evidence."""
    rs = rule_set or rule_set_for(ts_ns)
    return {k: (None if c is None or math.isnan(c) else iaqi(k, float(c), ts_ns, rs)) for k, c in values.items()}
