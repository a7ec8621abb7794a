"""Runtime settings, built once at start-up from the environment.

Nothing here is read at import time: call :meth:`Settings.from_env` in the
entry point and pass the object down.  Every field has one environment
variable, ``LIFEWATCH_<FIELD>`` (upper case); the README lists them all.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "LIFEWATCH_"


class SettingsError(ValueError):
    """A setting has a value that cannot be used."""


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in {"1", "true", "yes", "on"}:
        return True
    if low in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"not a boolean: {text!r}")


def parse_duration(text: str) -> float:
    """Parse ``90``, ``90s``, ``10m``, ``2h``, ``1d`` or ``500ms`` into seconds."""
    t = text.strip().lower()
    units = (("ms", 0.001), ("s", 1.0), ("m", 60.0), ("h", 3600.0), ("d", 86400.0), ("w", 604800.0))
    for suffix, mult in units:
        if t.endswith(suffix) and not (suffix == "s" and t.endswith("ms")):
            number = t[: -len(suffix)]
            try:
                return float(number) * mult
            except ValueError:
                break
    try:
        return float(t)
    except ValueError:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 2h, 1d)") from None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a Lifewatch process can be told.  Defaults suit a laptop demo.

    Ports avoid the standard ones (1883, 8086) because a system broker or
    database may already hold them.
    """

    # where services keep data, logs, PID files and the dead-letter store
    state_dir: Path = Path(".lifewatch")
    # demo mode: anonymous MQTT on loopback and demo tokens are allowed
    demo: bool = False

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 11883
    mqtt_username: str = ""
    mqtt_password: str = ""
    mqtt_client_id: str = "lifewatch-ingest"
    mqtt_keepalive: int = 30
    # the first level of every topic; readings are <prefix>/<lifeline>/<district>/<sensor>/reading
    topic_prefix: str = "lifelines"
    # broker window of unacknowledged QoS 1 messages; must hold at least one ingest batch
    mqtt_max_inflight: int = 20000
    # broker queue per persistent session; 0 = no limit (the default of 1000 drops messages)
    mqtt_max_queued: int = 0

    influx_url: str = "http://127.0.0.1:18086"
    influx_rpc_port: int = 18088
    influx_db: str = "lifelines"
    influx_username: str = ""
    influx_password: str = ""
    influx_timeout: float = 30.0

    # ingest batching: flush when this many points are pending, or after flush_interval seconds
    batch_size: int = 5000
    flush_interval: float = 0.5
    # retry of 5xx / connection errors: capped exponential backoff
    retry_initial: float = 0.2
    retry_max: float = 10.0

    # contract limits
    max_payload_bytes: int = 256 * 1024
    max_batch_readings: int = 1000
    # how far ahead of arrival an event time may be (a +2 h clock skew must still pass)
    future_margin: float = 86400.0

    # dead-letter store: total cap (messages) and per-payload cap (bytes)
    deadletter_max: int = 100_000
    deadletter_max_payload: int = 64 * 1024

    # Prometheus /metrics of the ingest process; empty = off
    metrics_addr: str = "127.0.0.1:19100"

    # city model (YAML); empty = the bundled demo city
    city_file: str = ""

    # streaming detectors right after ingest; their state is checkpointed every detector_checkpoint seconds
    detectors: bool = True
    # YAML overrides of detector thresholds and parameters (see detectors/build.py); empty = the lifeline defaults
    detector_config: str = ""
    detector_checkpoint: float = 300.0
    # hand detections to the alert queue (its database: LIFEWATCH_ALERTS_DB_URL, default <state_dir>/alerts.sqlite)
    alert_intake: bool = True

    @property
    def deadletter_path(self) -> Path:
        return self.state_dir / "deadletter.sqlite"

    @property
    def influx_port(self) -> int:
        return int(self.influx_url.rsplit(":", 1)[1].split("/")[0])

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``LIFEWATCH_*`` variables; keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            key = ENV_PREFIX + f.name.upper()
            if key not in env:
                continue
            raw = env[key]
            try:
                values[f.name] = _convert(f, raw)
            except ValueError as exc:
                raise SettingsError(f"{key}={raw!r}: {exc}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)  # type: ignore[arg-type]
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.batch_size < 1:
            raise SettingsError("LIFEWATCH_BATCH_SIZE must be >= 1")
        if self.mqtt_max_inflight and self.mqtt_max_inflight < self.batch_size:
            raise SettingsError(
                "LIFEWATCH_MQTT_MAX_INFLIGHT must hold at least one batch "
                f"({self.mqtt_max_inflight} < LIFEWATCH_BATCH_SIZE {self.batch_size})"
            )
        if self.flush_interval <= 0:
            raise SettingsError("LIFEWATCH_FLUSH_INTERVAL must be > 0")
        if not self.topic_prefix or "+" in self.topic_prefix or "#" in self.topic_prefix:
            raise SettingsError("LIFEWATCH_TOPIC_PREFIX must be a plain topic level")

    def to_env(self) -> dict[str, str]:
        """The ``LIFEWATCH_*`` variables that rebuild these settings in a child process."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[ENV_PREFIX + f.name.upper()] = ("1" if v else "0") if isinstance(v, bool) else str(v)
        return out

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _convert(f: dataclasses.Field, raw: str) -> object:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if kind == "bool":
        return _parse_bool(raw)
    if kind == "int":
        return int(raw)
    if kind == "float":
        return parse_duration(raw) if f.name in _DURATIONS else float(raw)
    if kind == "Path":
        return Path(raw)
    return raw


_DURATIONS = {"flush_interval", "retry_initial", "retry_max", "future_margin", "influx_timeout", "detector_checkpoint"}


def settings_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) for the README and ``lifewatch settings``."""
    rows = []
    for f in dataclasses.fields(Settings):
        default = f.default if f.default is not dataclasses.MISSING else ""
        rows.append((ENV_PREFIX + f.name.upper(), str(default), f.name))
    return rows


__all__ = ["Settings", "SettingsError", "parse_duration", "settings_table", "field"]
