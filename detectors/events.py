"""The detection event: what detectors hand to the alert queue (and publish on MQTT).

One typed message per hop: ``Reading`` -> ``Detection`` -> ``Alert``.
A detection has a lifecycle of its own, driven only by event time:
``raised`` when a condition starts (after hysteresis / minimum duration),
``updated`` when its level or peak changes, ``cleared`` when it ends.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

from lifewatch.levels import Level
from lifewatch.model import format_ts

RAISED = "raised"
UPDATED = "updated"
CLEARED = "cleared"


@dataclass(slots=True)
class Detection:
    detector: str  # registry name of the detector that decided, e.g. "threshold", "stuck", "water_burst"
    kind: str  # what happened, e.g. "end_pressure_low", "sensor_stuck", "water_burst"
    state: str  # raised | updated | cleared
    lifeline: str
    district: str
    asset: str | None  # DMA, feeder, gas segment, bridge... (None when unknown)
    sensors: tuple[str, ...]
    level: Level
    score: float
    start_ns: int  # event time the condition started
    ts_ns: int  # event time of this emission
    end_ns: int | None = None  # set when cleared
    metric: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)  # values, threshold/baseline, related sensors, source

    @property
    def key(self) -> str:
        """What dedup groups on: one open condition per (asset or sensor, kind)."""
        subject = self.sensors[0] if len(self.sensors) == 1 else (self.asset or ",".join(self.sensors))
        return f"{self.lifeline}:{subject}:{self.kind}"

    @property
    def id(self) -> str:
        """Deterministic: the same condition found by a replay or backtest has the same id."""
        return hashlib.sha1(f"{self.key}@{self.start_ns}".encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["id"] = self.id
        doc["key"] = self.key
        doc["level"] = self.level.label
        doc["sensors"] = list(self.sensors)
        doc["start"] = format_ts(self.start_ns)
        doc["ts"] = format_ts(self.ts_ns)
        doc["end"] = format_ts(self.end_ns) if self.end_ns is not None else None
        return doc
