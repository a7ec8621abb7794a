"""Settings of the alert queue: :class:`AlertSettings`, built once from the main settings and the environment.

Each field has one variable (``LIFEWATCH_ALERTS_*``, ``LIFEWATCH_API_*``).  When
:class:`lifewatch.settings.Settings` grows a field of the same name
(``alerts_db_url``, ``api_port``...), that field wins over the environment, so
moving these variables into the main settings later changes nothing here.

SLA defaults are **not** from a standard [U]: China's emergency-warning levels
(red I ... blue IV, lifewatch.levels) say how severe, not how fast a unit must
answer.  The defaults (red: acknowledge in 5 min, resolve in 2 h; orange 15 min
/ 8 h; yellow 1 h / 24 h; blue 4 h / 72 h) are the project's starting point;
set them from each unit's service agreement.

Per-level durations are written ``red=5m,orange=15m,yellow=1h,blue=4h``; a
single duration (``10m``) applies to every level; unnamed levels keep their
defaults.

>>> s = AlertSettings.from_settings(Settings(), environ={"LIFEWATCH_ALERTS_ACK_SLA": "red=2m"})
>>> s.ack_sla[Level.RED], s.ack_sla[Level.ORANGE], s.db_url
(120.0, 900.0, 'sqlite:///.lifewatch/alerts.sqlite')
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lifewatch.levels import Level
from lifewatch.settings import Settings, SettingsError, parse_duration

LevelDurations = dict[Level, float]


def _levels(red: float, orange: float, yellow: float, blue: float) -> LevelDurations:
    return {Level.RED: float(red), Level.ORANGE: float(orange), Level.YELLOW: float(yellow), Level.BLUE: float(blue)}


@dataclass(frozen=True)
class AlertSettings:
    # SQLAlchemy URL; empty = SQLite (WAL) at <state_dir>/alerts.sqlite.  PostgreSQL: postgresql+psycopg://...
    db_url: str = ""
    # acknowledgement SLA per level (seconds, wall time from entering the queue) [U: project default]
    ack_sla: LevelDurations = field(default_factory=lambda: _levels(300, 900, 3600, 14400))
    # resolution SLA per level (seconds from entering the queue to "resolved") [U: project default]
    resolve_sla: LevelDurations = field(default_factory=lambda: _levels(7200, 28800, 86400, 259200))
    # reminders repeat at this interval until someone acknowledges [U: project default]
    reminder_interval: LevelDurations = field(default_factory=lambda: _levels(120, 300, 900, 3600))
    # levels whose cleared alerts close themselves once the re-open cool-down has passed
    auto_close: frozenset[Level] = frozenset({Level.YELLOW, Level.BLUE})
    # a condition raised again within this much event time after it cleared re-opens the same alert
    reopen_cooldown: float = 600.0
    # alerts of one asset whose event times lie within this window form one incident
    incident_window: float = 1800.0
    # how often `lifewatch api` runs the escalation tick (0 = never: another process does)
    tick_interval: float = 15.0
    # how often /api/stream looks for new audit rows
    stream_poll: float = 1.0
    # longest silence (maintenance window) anyone may set
    max_silence: float = 30 * 86400.0
    api_host: str = "127.0.0.1"
    api_port: int = 18080
    # run `alembic upgrade head` when the API or the intake opens the database
    auto_migrate: bool = True
    # copied from the main settings
    demo: bool = False
    city_file: str = ""

    def __post_init__(self) -> None:
        for name in ("ack_sla", "resolve_sla", "reminder_interval"):
            table = getattr(self, name)
            if set(table) != set(Level) or any(v <= 0 for v in table.values()):
                raise SettingsError(f"{_var(name)}: every level needs a duration > 0")
        for lv in Level:
            if self.ack_sla[lv] > self.resolve_sla[lv]:
                raise SettingsError(f"{_var('ack_sla')}: {lv.label} acknowledgement SLA is longer than its resolution SLA")
        for name in ("reopen_cooldown", "incident_window", "tick_interval"):
            if getattr(self, name) < 0:
                raise SettingsError(f"{_var(name)} must be >= 0")
        if self.stream_poll <= 0 or self.max_silence <= 0:
            raise SettingsError("LIFEWATCH_ALERTS_STREAM_POLL and LIFEWATCH_ALERTS_MAX_SILENCE must be > 0")

    def __repr__(self) -> str:  # keep a database password out of logs
        shown = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        shown["db_url"] = re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", self.db_url)
        return "AlertSettings(" + ", ".join(f"{k}={v!r}" for k, v in shown.items()) + ")"

    @classmethod
    def from_settings(cls, settings: Settings, environ: Mapping[str, str] | None = None) -> AlertSettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {"demo": settings.demo, "city_file": settings.city_file}
        for f in dataclasses.fields(cls):
            if f.name in values:
                continue
            main_name = _MAIN_NAMES.get(f.name, "alerts_" + f.name)
            if hasattr(settings, main_name):
                values[f.name] = getattr(settings, main_name)
                continue
            var = _var(f.name)
            if var not in env:
                continue
            try:
                values[f.name] = _convert(f.name, env[var], f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default)
            except (ValueError, KeyError) as exc:
                raise SettingsError(f"{var}={env[var]!r}: {exc}") from None
        if not values.get("db_url"):
            values["db_url"] = f"sqlite:///{settings.state_dir / 'alerts.sqlite'}"
        return cls(**values)

    def replace(self, **changes: Any) -> AlertSettings:
        return dataclasses.replace(self, **changes)


_MAIN_NAMES = {"api_host": "api_host", "api_port": "api_port"}


def _var(name: str) -> str:
    return "LIFEWATCH_" + _MAIN_NAMES.get(name, "alerts_" + name).upper()


def parse_level_durations(text: str, default: LevelDurations) -> LevelDurations:
    """``red=5m,orange=15m`` (others keep ``default``) or one duration for all levels."""
    text = text.strip()
    if "=" not in text:
        return dict.fromkeys(Level, parse_duration(text))
    out = dict(default)
    for part in text.split(","):
        name, _, dur = part.partition("=")
        out[Level.parse(name)] = parse_duration(dur)
    return out


def _convert(name: str, raw: str, default: Any) -> Any:
    if isinstance(default, dict):
        return parse_level_durations(raw, default)
    if isinstance(default, frozenset):
        return frozenset(Level.parse(p) for p in raw.split(",") if p.strip())
    if isinstance(default, bool):
        low = raw.strip().lower()
        if low not in {"1", "true", "yes", "on", "0", "false", "no", "off"}:
            raise ValueError("not a boolean")
        return low in {"1", "true", "yes", "on"}
    if isinstance(default, int) and not isinstance(default, bool):
        return int(raw)
    if isinstance(default, float):
        return parse_duration(raw)
    return raw


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, field) for the README."""
    rows = []
    for f in dataclasses.fields(AlertSettings):
        if f.name in ("demo", "city_file"):
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if isinstance(default, dict):
            default = ",".join(f"{lv.label}={v:g}s" for lv, v in default.items())
        elif isinstance(default, frozenset):
            default = ",".join(lv.label for lv in sorted(default))
        rows.append((_var(f.name), str(default), f.name))
    return rows
