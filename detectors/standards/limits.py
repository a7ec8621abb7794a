"""Single-number limits from the standards, with their sources (``../shared/reference/domain.md``).

The lifeline YAML files (``lifewatch/lifelines/*.yaml``) are what the
detectors read, so that dashboards and simulators see the same numbers; the
defaults written there must equal these constants
(``tests/detectors/test_thresholds.py`` checks it).  Numbers that are
settings rather than standard values (the orange / red voltage bands, the
bridge design shares) are not here: the YAML marks them as settings.
"""

from __future__ import annotations

# ---- power: supply voltage deviation, GB/T 12325-2008 (effective 2009-05-01)
GBT12325_LE20KV_PCT = (-7.0, 7.0)  # <= 20 kV three-phase: +/-7 % of nominal [V/S]
GBT12325_220V_PCT = (-10.0, 7.0)  # 220 V single-phase: +7 % / -10 % [V]
GBT12325_GE35KV_TOTAL_PCT = 10.0  # >= 35 kV: |+dev| + |-dev| <= 10 % [V] (no >= 35 kV sensors yet)
NOMINAL_LV_V = 220.0  # LV phase voltage (domain.md §2.1)
NOMINAL_MV_KV = 10.0  # 10 kV feeder heads (domain.md §2.1)

# EN 50160 (reference outside China), LV 10-min mean rms, 100 % of the time: +10 % / -15 % [V, Rockwell 1426 App. H]
EN50160_LV_ALWAYS_PCT = (-15.0, 10.0)
# EN 50160 frequency, 100 % of the time: 50 Hz +4 % / -6 % = 52 / 47 Hz [V, Rockwell 1426 App. H]
EN50160_FREQ_ALWAYS_HZ = (-3.0, 2.0)

# ---- power: frequency deviation, GB/T 15945-2008
GBT15945_HZ = 0.2  # +/-0.2 Hz (grid >= 3 GW) [S, two consistent secondary pages]
GBT15945_SMALL_SYSTEM_HZ = 0.5  # small-capacity systems (< 3 GW) may relax to +/-0.5 Hz [S]
NOMINAL_HZ = 50.0

# ---- power: transformer winding hot-spot temperature, IEC 60076-7 (Alliander thermal-model docs) [V]
IEC60076_HOTSPOT_RATED_C = 98.0  # normal (non-upgraded) paper at rated load, normal ageing [V]
IEC60076_HOTSPOT_RATED_UPGRADED_C = 110.0  # thermally upgraded paper at rated load [V]
IEC60076_HOTSPOT_NORMAL_CYCLIC_C = 120.0  # IEC 60076-7:2018 Table 2, normal cyclic loading [V]
IEC60076_HOTSPOT_LONG_EMERGENCY_C = 140.0  # Table 2, long-time emergency loading [V]
IEC60076_HOTSPOT_SHORT_EMERGENCY_C = 160.0  # Table 2, short-time emergency loading [V]

# ---- water: network end pressure, 城镇供水服务 §3.3.1 citing CJJ 58-2007 §3.1.3 [V text; U standard number]
CJJ58_END_PRESSURE_MIN_MPA = 0.14

# ---- gas: combustible gas alarm set-points (% LEL)
GBT50493_LEVEL1_LEL = 25.0  # GB/T 50493-2019 1st-level alarm <= 25 % LEL [S, vendor page]
GBT50493_LEVEL2_LEL = 50.0  # GB/T 50493-2019 2nd-level alarm <= 50 % LEL [S]
GB50838_ALARM_LEL = 20.0  # GB 50838 utility-tunnel gas cabin: alarm + accident ventilation <= 20 % LEL [S]
GB50838_SHUTOFF_LEL = 35.0  # GB 50838 utility-tunnel gas cabin: emergency shut-off <= 35 % LEL [S]
GB6222_LOW_LEL = 10.0  # older practice (GB 6222 / GBZ) low alarm 10 % LEL [S, gas-detector setting table]
