"""What every channel implements, and which outbox rows it takes.

A channel (:class:`Channel`) gets the notices due for it in outbox order and
returns one :class:`Outcome` per notice, in the same order:

* ``DELIVERED``: the receiver confirmed;
* ``RETRY`` (with the reason): may pass; the worker backs off and the channel
  stops there: everything after it in this pass is ``NOT_TRIED``, so one
  channel's notices arrive in order and a dead receiver is not hammered;
* ``DEAD`` (with the reason): refused for good (4xx, refused address,
  rejected point); recorded, never retried, the channel moves on;
* ``NOT_TRIED``: left for a later pass.

Channels never raise for a delivery: library errors are translated at the
channel's boundary.  :class:`Route` says which rows a channel takes, both as
SQL (the worker's query) and in Python (completion checks); the two agree.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, true
from sqlalchemy.sql.elements import ColumnElement

from alerts.models import Outbox
from alerts.notify.message import Notice
from lifewatch.levels import Level


class Result(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    DEAD = "dead"
    NOT_TRIED = "not_tried"


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    error: str | None = None


DELIVERED = Outcome(Result.DELIVERED)
NOT_TRIED = Outcome(Result.NOT_TRIED)


def retry(reason: str) -> Outcome:
    return Outcome(Result.RETRY, reason)


def dead(reason: str) -> Outcome:
    return Outcome(Result.DEAD, reason)


def until_first_retry(outcomes: list[Outcome], total: int) -> list[Outcome]:
    """Pad to ``total`` with NOT_TRIED, and turn everything after the first RETRY into NOT_TRIED."""
    out: list[Outcome] = []
    for o in outcomes:
        out.append(o)
        if o.result is Result.RETRY:
            break
    return out + [NOT_TRIED] * (total - len(out))


@dataclass(frozen=True)
class Route:
    """Which outbox rows a channel takes (``None`` = no restriction)."""

    units: frozenset[str] | None = None
    levels: frozenset[Level] | None = None
    events: frozenset[str] | None = None
    skip_events: frozenset[str] = frozenset()
    alerts_only: bool = False  # rows about one alert (with a level): MQTT topics and InfluxDB points need them

    def sql(self) -> ColumnElement[bool]:
        terms: list[ColumnElement[bool]] = []
        if self.units is not None:
            terms.append(Outbox.unit.in_(sorted(self.units)))
        if self.levels is not None:
            terms.append(Outbox.level.in_(sorted(lv.value for lv in self.levels)))
        if self.events is not None:
            terms.append(Outbox.kind.in_(sorted(self.events)))
        if self.skip_events:
            terms.append(Outbox.kind.not_in(sorted(self.skip_events)))
        if self.alerts_only:
            terms += [Outbox.alert_id.is_not(None), Outbox.level.is_not(None)]
        return and_(true(), *terms)

    def match(self, unit: str | None, level: int | None, kind: str, alert_id: str | None) -> bool:
        if self.units is not None and unit not in self.units:
            return False
        if self.levels is not None and (level is None or level not in {lv.value for lv in self.levels}):
            return False
        if self.events is not None and kind not in self.events:
            return False
        if kind in self.skip_events:
            return False
        return not (self.alerts_only and (alert_id is None or level is None))


class Channel(ABC):
    """One receiver of notifications; ``name`` is its key in ``notify_deliveries``."""

    name: str
    route: Route

    def open(self) -> None:  # noqa: B027 - optional hook
        """Connect (called once by the worker before the first delivery)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    @abstractmethod
    def deliver(self, notices: list[Notice], now: datetime) -> list[Outcome]:
        """Deliver in order; one outcome per notice (see the module docstring)."""
