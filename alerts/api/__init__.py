"""The alert queue's HTTP API: ``create_app(settings, *, clock=None, engine=None)``."""

from alerts.api.app import create_app

__all__ = ["create_app"]
