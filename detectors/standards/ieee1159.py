"""IEEE 1159-2009 RMS-variation categories: sag, swell, interruption by magnitude AND duration.

Source: IEEE 1159-2009 Table 2 as reproduced in the Rockwell 1426 manual
[V]; IEC 61000-4-30 Class A event thresholds from the Dranetz PX5 / 4400
manual App. F [V] (``../shared/reference/domain.md`` §2.2).

=====================  ======================  ==========================
category               duration                typical magnitude (pu)
=====================  ======================  ==========================
instantaneous sag      0.5-30 cycles           0.1-0.9
instantaneous swell    0.5-30 cycles           1.1-1.8
momentary interruption 0.5 cycles-3 s          < 0.1
momentary sag          30 cycles-3 s           0.1-0.9
momentary swell        30 cycles-3 s           1.1-1.4
temporary interruption 3 s-1 min               < 0.1
temporary sag          3 s-1 min               0.1-0.9
temporary swell        3 s-1 min               1.1-1.2
sustained interruption > 1 min                 0.0
undervoltage           > 1 min                 0.8-0.9
overvoltage            > 1 min                 1.1-1.2
=====================  ======================  ==========================

How a reading is classified here: the *thresholds* decide the family
(interruption below ``interruption_pu``, sag below ``sag_pu``, swell above
``swell_pu``; IEC 61000-4-30 uses the same 90 % / 110 % and an interruption
threshold of 1 % instead of IEEE's 10 %); the *duration* decides the
category.  The magnitude columns are IEEE's *typical* ranges: a reading
outside them (a 1.5 pu swell lasting 10 s, an undervoltage of 0.7 pu for
5 min) keeps the duration's category and is flagged ``within_typical=False``.
Boundaries: a duration up to and including 30 cycles is instantaneous, up to
and including 3 s momentary, up to and including 1 min temporary; longer is
long-duration ("> 1 min").

Durations from periodic RMS readings.  A monitor that reports one RMS value
per interval cannot see durations shorter than its interval.  The duration
of a run of consecutive out-of-band readings of one stream is bracketed in
event time: at least ``t - t_first`` (first out-of-band reading of the run
to this one, assuming the voltage stayed out between consecutive
out-of-band samples) and at most ``t - t_before`` (the last in-band reading
before the run).  The category is taken from the **lower bound**, so a
single out-of-band reading of a 60-s meter is "instantaneous" with an upper
bound of 60 s: the class escalates only as the evidence accumulates (a
feeder outage seen by 60-s meters becomes "sustained" at the third zero
reading, 120 s after the first).  ``duration_resolved`` says whether both
bounds fall in the same category.
"""

from __future__ import annotations

import numba
import numpy as np

# ---- magnitude thresholds (pu of nominal)
SAG_PU = 0.9  # IEEE 1159-2009 sag 0.1-0.9 pu [V]; IEC 61000-4-30 dip < 90 % of nominal [V]
SWELL_PU = 1.1  # IEEE 1159-2009 swell from 1.1 pu [V]; IEC 61000-4-30 swell > 110 % [V]
IEEE_INTERRUPTION_PU = 0.1  # IEEE 1159-2009 interruption < 0.1 pu [V]
IEC_INTERRUPTION_PU = 0.01  # IEC 61000-4-30 Class A interruption < 1 % of nominal [V]

# ---- typical magnitude ranges (pu), IEEE 1159-2009 Table 2 [V]
SAG_TYPICAL = (0.1, 0.9)
INSTANTANEOUS_SWELL_TYPICAL = (1.1, 1.8)
MOMENTARY_SWELL_TYPICAL = (1.1, 1.4)
TEMPORARY_SWELL_TYPICAL = (1.1, 1.2)
UNDERVOLTAGE_TYPICAL = (0.8, 0.9)
OVERVOLTAGE_TYPICAL = (1.1, 1.2)
INTERRUPTION_TYPICAL = (0.0, 0.1)
SUSTAINED_INTERRUPTION_TYPICAL = (0.0, 0.0)

# ---- duration boundaries, IEEE 1159-2009 Table 2 [V]
INSTANTANEOUS_MAX_CYCLES = 30.0  # instantaneous 0.5-30 cycles
MOMENTARY_MAX_S = 3.0  # momentary 30 cycles-3 s
TEMPORARY_MAX_S = 60.0  # temporary 3 s-1 min; long duration > 1 min
SYSTEM_HZ = 50.0  # China's system frequency (GB/T 15945-2008 nominal 50 Hz)

NONE = 0
CLASSES = (
    "",
    "instantaneous_sag",
    "momentary_sag",
    "temporary_sag",
    "undervoltage",
    "instantaneous_swell",
    "momentary_swell",
    "temporary_swell",
    "overvoltage",
    "momentary_interruption",
    "temporary_interruption",
    "sustained_interruption",
)
CLASS_CODE = {name: i for i, name in enumerate(CLASSES) if name}
TYPICAL = {
    "instantaneous_sag": SAG_TYPICAL,
    "momentary_sag": SAG_TYPICAL,
    "temporary_sag": SAG_TYPICAL,
    "undervoltage": UNDERVOLTAGE_TYPICAL,
    "instantaneous_swell": INSTANTANEOUS_SWELL_TYPICAL,
    "momentary_swell": MOMENTARY_SWELL_TYPICAL,
    "temporary_swell": TEMPORARY_SWELL_TYPICAL,
    "overvoltage": OVERVOLTAGE_TYPICAL,
    "momentary_interruption": INTERRUPTION_TYPICAL,
    "temporary_interruption": INTERRUPTION_TYPICAL,
    "sustained_interruption": SUSTAINED_INTERRUPTION_TYPICAL,
}

NO_TIME = np.iinfo(np.int64).min


@numba.njit(cache=True, nogil=True)
def _code(family: int, d: float, inst_max_s: float) -> int:
    """family 1 sag, 2 swell, 3 interruption; d = duration in seconds."""
    if family == 3:
        if d <= MOMENTARY_MAX_S:
            return 9
        if d <= TEMPORARY_MAX_S:
            return 10
        return 11
    base = 1 if family == 1 else 5
    if d <= inst_max_s:
        return base
    if d <= MOMENTARY_MAX_S:
        return base + 1
    if d <= TEMPORARY_MAX_S:
        return base + 2
    return base + 3


def classify(pu: float, duration_s: float, *, interruption_pu: float = IEEE_INTERRUPTION_PU,
             sag_pu: float = SAG_PU, swell_pu: float = SWELL_PU, system_hz: float = SYSTEM_HZ) -> str | None:
    """The IEEE 1159 category of an RMS value (pu of nominal) that has lasted ``duration_s``.

    >>> classify(0.5, 0.2), classify(0.5, 2.0), classify(0.5, 30.0), classify(0.85, 120.0)
    ('instantaneous_sag', 'momentary_sag', 'temporary_sag', 'undervoltage')
    >>> classify(0.05, 1.0), classify(0.05, 10.0), classify(0.0, 61.0)
    ('momentary_interruption', 'temporary_interruption', 'sustained_interruption')
    >>> classify(1.15, 0.5), classify(1.15, 3.0), classify(1.15, 60.0), classify(1.15, 60.1)
    ('instantaneous_swell', 'momentary_swell', 'temporary_swell', 'overvoltage')
    >>> classify(0.95, 600.0) is None, classify(0.05, 10.0, interruption_pu=IEC_INTERRUPTION_PU)
    (True, 'temporary_sag')
    """
    fam = family(pu, interruption_pu, sag_pu, swell_pu)
    if fam == 0:
        return None
    return CLASSES[_code(fam, max(duration_s, 0.0), INSTANTANEOUS_MAX_CYCLES / system_hz)]


def family(pu: float, interruption_pu: float, sag_pu: float, swell_pu: float) -> int:
    if pu < interruption_pu:
        return 3
    if pu < sag_pu:
        return 1
    if pu > swell_pu:
        return 2
    return 0


def within_typical(name: str, pu: float) -> bool:
    lo, hi = TYPICAL[name]
    return lo <= pu <= hi if name != "sustained_interruption" else pu <= IEEE_INTERRUPTION_PU


@numba.njit(cache=True, nogil=True)
def runs(slots, t, pu, prof, int_pu, sag_pu, swell_pu, inst_max_s,
         under_start, under_before, int_start, int_before, over_start, over_before, last_t,
         out_code, out_dlo, out_dhi):  # noqa: ANN001
    """Walk readings in order, tracking per-stream runs of out-of-band readings.

    Per row: the category code and the duration bounds (s; -1 when the upper
    bound is unknown because the run started with the stream's first reading).
    State per stream: start time and last in-band time of the under (< sag,
    which includes interruptions), interruption and over runs, and the time of
    the previous reading.  NaN values are skipped (state unchanged, code 0).
    """
    for i in range(len(slots)):
        out_code[i] = 0
        out_dlo[i] = 0.0
        out_dhi[i] = -1.0
        p = pu[i]
        if np.isnan(p):
            continue
        s = slots[i]
        k = prof[i]
        ti = t[i]
        prev = last_t[s]
        inter = p < int_pu[k]
        under = p < sag_pu[k]
        over = p > swell_pu[k]
        if under:
            if under_start[s] == NO_TIME:
                under_start[s] = ti
                under_before[s] = prev
        else:
            under_start[s] = NO_TIME
        if inter:
            if int_start[s] == NO_TIME:
                int_start[s] = ti
                int_before[s] = prev
        else:
            int_start[s] = NO_TIME
        if over:
            if over_start[s] == NO_TIME:
                over_start[s] = ti
                over_before[s] = prev
        else:
            over_start[s] = NO_TIME
        last_t[s] = ti
        if inter:
            fam, start, before = 3, int_start[s], int_before[s]
        elif under:
            fam, start, before = 1, under_start[s], under_before[s]
        elif over:
            fam, start, before = 2, over_start[s], over_before[s]
        else:
            continue
        dlo = max(ti - start, 0) / 1e9
        out_dlo[i] = dlo
        if before != NO_TIME:
            out_dhi[i] = max(ti - before, 0) / 1e9
        out_code[i] = _code(fam, dlo, inst_max_s[k])
