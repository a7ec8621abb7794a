"""Settings of the notifier: :class:`NotifySettings` (``LIFEWATCH_*`` variables) and the webhook file.

Variables (defaults in brackets)::

    LIFEWATCH_WEBHOOKS               [""]    YAML/JSON file listing the webhooks ("" = none)
    LIFEWATCH_WEBHOOK_ALLOW_PRIVATE  [0]     allow webhooks on private/loopback/link-local addresses
    LIFEWATCH_NOTIFY_MQTT            [1]     publish on <prefix>/alerts/<unit>/<level> (QoS 1)
    LIFEWATCH_NOTIFY_INFLUX          [1]     write the "alerts" measurement to InfluxDB
    LIFEWATCH_NOTIFY_INFLUX_SKIP     [alert.reminder,alert.comment]  outbox kinds not written to InfluxDB
    LIFEWATCH_NOTIFY_POLL            [1s]    how often the loop looks for new outbox rows
    LIFEWATCH_NOTIFY_BATCH           [200]   outbox rows per channel per pass
    LIFEWATCH_NOTIFY_RETRY_INITIAL   [1s]    first retry delay; doubles per failed attempt ...
    LIFEWATCH_NOTIFY_RETRY_MAX       [60s]   ... up to this cap
    LIFEWATCH_NOTIFY_TIMEOUT         [10s]   HTTP timeout, PUBACK wait, broker connect wait
    LIFEWATCH_NOTIFY_MQTT_CLIENT_ID  [""]    "" = lifewatch-notify-<pid>

The broker, InfluxDB, topic prefix, city and the alert database come from
the main settings (``LIFEWATCH_MQTT_*``, ``LIFEWATCH_INFLUX_*``,
``LIFEWATCH_TOPIC_PREFIX``, ``LIFEWATCH_CITY_FILE``, ``LIFEWATCH_ALERTS_DB_URL``).
The retry and timeout numbers are project defaults [U], not from a standard.

The webhook file (a list, or ``{webhooks: [...]}``)::

    webhooks:
      - name: control-room                 # letters, digits, . _ -; unique
        url: https://hooks.example.org/lifewatch
        template: generic                  # generic | wecom | dingtalk | sms
        secret_env: LW_CONTROL_ROOM_SECRET # or secret_file: /run/secrets/control-room (never logged)
        units: [shz-water, shz-gas]        # optional: only these units' alerts
        levels: [red, orange]              # optional: only these levels
        events: [alert.raised, alert.escalated]   # optional: only these outbox kinds

>>> s = NotifySettings.from_env({"LIFEWATCH_NOTIFY_RETRY_MAX": "2m", "LIFEWATCH_NOTIFY_MQTT": "0"})
>>> s.retry_max, s.mqtt, s.influx, sorted(s.influx_skip)
(120.0, False, True, ['alert.comment', 'alert.reminder'])
>>> s.backoff(1), s.backoff(3), s.backoff(20)
(1.0, 4.0, 120.0)
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerts.notify.errors import ConfigError
from alerts.notify.ssrf import AddressRefused, check_url, literal_address, parse_url, redact
from lifewatch.levels import Level
from lifewatch.settings import parse_duration

TEMPLATES = ("generic", "wecom", "dingtalk", "sms")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


@dataclass(frozen=True)
class WebhookSpec:
    """One webhook; the secret never appears in ``repr`` or logs."""

    name: str
    url: str
    template: str = "generic"
    secret: str = field(default="", repr=False)
    units: frozenset[str] | None = None
    levels: frozenset[Level] | None = None
    events: frozenset[str] | None = None

    @property
    def channel(self) -> str:
        return f"webhook:{self.name}"

    def __repr__(self) -> str:
        return (
            f"WebhookSpec(name={self.name!r}, url={redact(self.url)!r}, template={self.template!r}, "
            f"signed={bool(self.secret)}, units={_show(self.units)}, levels={_show(self.levels)}, events={_show(self.events)})"
        )


def _show(v: frozenset | None) -> str:
    return "all" if v is None else "[" + ",".join(sorted(x.label if isinstance(x, Level) else str(x) for x in v)) + "]"


# field -> environment variable
VARS = {
    "webhooks_file": "LIFEWATCH_WEBHOOKS",
    "webhook_allow_private": "LIFEWATCH_WEBHOOK_ALLOW_PRIVATE",
    "mqtt": "LIFEWATCH_NOTIFY_MQTT",
    "influx": "LIFEWATCH_NOTIFY_INFLUX",
    "influx_skip": "LIFEWATCH_NOTIFY_INFLUX_SKIP",
    "poll_interval": "LIFEWATCH_NOTIFY_POLL",
    "batch": "LIFEWATCH_NOTIFY_BATCH",
    "retry_initial": "LIFEWATCH_NOTIFY_RETRY_INITIAL",
    "retry_max": "LIFEWATCH_NOTIFY_RETRY_MAX",
    "timeout": "LIFEWATCH_NOTIFY_TIMEOUT",
    "mqtt_client_id": "LIFEWATCH_NOTIFY_MQTT_CLIENT_ID",
}


@dataclass(frozen=True)
class NotifySettings:
    webhooks_file: str = ""
    webhook_allow_private: bool = False
    mqtt: bool = True
    influx: bool = True
    influx_skip: frozenset[str] = frozenset({"alert.reminder", "alert.comment"})
    poll_interval: float = 1.0  # [U: project default]
    batch: int = 200
    retry_initial: float = 1.0  # [U: project default]
    retry_max: float = 60.0  # [U: project default]
    timeout: float = 10.0  # [U: project default]
    mqtt_client_id: str = ""
    # loaded from webhooks_file by from_env (or given directly, e.g. by tests)
    webhooks: tuple[WebhookSpec, ...] = ()

    def __post_init__(self) -> None:
        if self.poll_interval <= 0 or self.timeout <= 0:
            raise ConfigError("LIFEWATCH_NOTIFY_POLL and LIFEWATCH_NOTIFY_TIMEOUT must be > 0")
        if self.retry_initial <= 0 or self.retry_max < self.retry_initial:
            raise ConfigError("need 0 < LIFEWATCH_NOTIFY_RETRY_INITIAL <= LIFEWATCH_NOTIFY_RETRY_MAX")
        if self.batch < 1:
            raise ConfigError("LIFEWATCH_NOTIFY_BATCH must be >= 1")
        names = [w.name for w in self.webhooks]
        if len(names) != len(set(names)):
            raise ConfigError(f"webhook names must be unique: {names}")

    def backoff(self, attempts: int) -> float:
        """Delay before the next try after ``attempts`` failed ones: initial * 2**(attempts-1), capped."""
        return min(self.retry_max, self.retry_initial * 2.0 ** max(0, min(attempts - 1, 60)))

    def replace(self, **changes: Any) -> NotifySettings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> NotifySettings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            var = VARS.get(f.name)
            if var is None or var not in env:
                continue
            raw = env[var]
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            try:
                values[f.name] = _convert(raw, default)
            except ValueError as exc:
                raise ConfigError(f"{var}={raw!r}: {exc}") from None
        s = cls(**values)
        if s.webhooks_file:
            s = s.replace(webhooks=load_webhooks(s.webhooks_file, allow_private=s.webhook_allow_private, environ=env))
        return s


def _convert(raw: str, default: Any) -> Any:
    if isinstance(default, bool):
        low = raw.strip().lower()
        if low not in {"1", "true", "yes", "on", "0", "false", "no", "off", ""}:
            raise ValueError("not a boolean")
        return low in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return parse_duration(raw)
    if isinstance(default, frozenset):
        return frozenset(p.strip() for p in raw.split(",") if p.strip())
    return raw


def settings_table() -> list[tuple[str, str]]:
    """(variable, default) for the README."""
    out = []
    for f in dataclasses.fields(NotifySettings):
        if f.name not in VARS:
            continue
        d = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        shown = ",".join(sorted(d)) if isinstance(d, frozenset) else ("1" if d is True else "0" if d is False else str(d))
        out.append((VARS[f.name], shown))
    return out


def load_webhooks(path: str | Path, *, allow_private: bool = False, environ: Mapping[str, str] | None = None) -> tuple[WebhookSpec, ...]:
    """Read and check the webhook file; secrets are read here (from the named variable or file)."""
    env = os.environ if environ is None else environ
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"LIFEWATCH_WEBHOOKS: cannot read {p}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"LIFEWATCH_WEBHOOKS: {p} is not YAML/JSON: {exc}") from None
    if isinstance(doc, dict):
        doc = doc.get("webhooks")
    if doc is None:
        return ()
    if not isinstance(doc, list):
        raise ConfigError(f"LIFEWATCH_WEBHOOKS: {p}: expected a list of webhooks")
    return tuple(webhook_from_dict(item, allow_private=allow_private, environ=env, where=f"{p}[{i}]") for i, item in enumerate(doc))


def webhook_from_dict(
    item: Any, *, allow_private: bool = False, environ: Mapping[str, str] | None = None, where: str = "webhook"
) -> WebhookSpec:
    env = os.environ if environ is None else environ
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(item) - {"name", "url", "template", "secret_env", "secret_file", "units", "levels", "events"}
    if unknown:
        raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
    name = str(item.get("name", ""))
    if not _NAME.match(name):
        raise ConfigError(f"{where}: name must be 1-100 letters, digits, '.', '_' or '-': {name!r}")
    url = str(item.get("url", ""))
    host, _port = parse_url(url)
    template = str(item.get("template", "generic"))
    if template not in TEMPLATES:
        raise ConfigError(f"{where} ({name}): template must be one of {', '.join(TEMPLATES)}")
    if not allow_private and (literal_address(host) is not None or host.lower() in ("localhost", "localhost.localdomain")):
        try:
            check_url(url)
        except AddressRefused as exc:
            raise ConfigError(f"{where} ({name}): {exc}") from None
    secret = _secret(item, env, f"{where} ({name})")
    try:
        levels = None if item.get("levels") is None else frozenset(Level.parse(x) for x in _list(item["levels"]))
    except (KeyError, ValueError):
        raise ConfigError(f"{where} ({name}): levels must be red, orange, yellow or blue") from None
    units = None if item.get("units") is None else frozenset(str(x) for x in _list(item["units"]))
    events = None if item.get("events") is None else frozenset(str(x) for x in _list(item["events"]))
    return WebhookSpec(name, url, template, secret, units, levels, events)


def _list(v: Any) -> list[Any]:
    return [x.strip() for x in v.split(",")] if isinstance(v, str) else list(v)


def _secret(item: dict[str, Any], env: Mapping[str, str], where: str) -> str:
    if item.get("secret_env") and item.get("secret_file"):
        raise ConfigError(f"{where}: give secret_env or secret_file, not both")
    if item.get("secret_env"):
        var = str(item["secret_env"])
        value = env.get(var, "")
        if not value:
            raise ConfigError(f"{where}: the secret variable {var} is not set")
        return value
    if item.get("secret_file"):
        path = Path(str(item["secret_file"]))
        try:
            value = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read the secret file {path}: {exc.strerror}") from None
        if not value:
            raise ConfigError(f"{where}: the secret file {path} is empty")
        return value
    return ""
