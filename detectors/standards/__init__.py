"""The standards that :mod:`detectors.thresholds` applies, as code with their sources.

Every number here is a named constant with its source beside it, tagged as
in ``../shared/reference/domain.md`` ([V] read in the standard's text, [S]
secondary, [U] unverified: those are parameters, never silent constants).

* :mod:`detectors.standards.aqi`: HJ 633-2012 / HJ 633-2026 IAQI and AQI,
  with the rule set chosen by the reading's event date;
* :mod:`detectors.standards.ieee1159`: IEEE 1159-2009 sag / swell /
  interruption categories by magnitude and duration (IEC 61000-4-30
  interruption threshold as an alternative);
* :mod:`detectors.standards.limits`: the single-number limits (GB/T 12325,
  GB/T 15945, CJJ 58, GB/T 50493, GB 50838, IEC 60076-7, EN 50160) that the
  lifeline YAML files state as their defaults; a test keeps the two equal.
"""
