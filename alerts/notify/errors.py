"""Typed errors of the notifier.

::

    NotifyError
     ├── ConfigError          a notify setting or the webhook file cannot be used (a SettingsError too)
     └── DeliveryError        one delivery failed; the channel says how (never raised past the worker)
          ├── Transient           may pass: receiver down, timeout, 5xx, 429, broker queue full -> retry with backoff
          └── Permanent           will not pass by retrying: 4xx, refused address, rejected point -> dead

Channels translate their library's errors (paho return codes, httpx
exceptions, :mod:`lifewatch.influx` errors) into these at their boundary and
return :class:`~alerts.notify.channel.Outcome` values; the worker records them.
"""

from __future__ import annotations

from lifewatch.settings import SettingsError


class NotifyError(Exception):
    pass


class ConfigError(NotifyError, SettingsError):
    """A bad notify setting: the worker refuses to start."""


class DeliveryError(NotifyError):
    pass


class Transient(DeliveryError):
    """Retry later (capped exponential backoff); the notification stays in the outbox."""


class Permanent(DeliveryError):
    """The receiver refused for good: the delivery is recorded as dead, with this reason."""


class AddressRefused(Permanent):
    """The SSRF guard refused the webhook's address (private, loopback, link-local...)."""
