"""SLA timers: reminders until someone acknowledges, escalation to the supervisors when an SLA is breached.

Per level an acknowledgement SLA and a resolution SLA
(:class:`~alerts.config.AlertSettings` ``ack_sla`` / ``resolve_sla``), both
counted in wall time from the moment the alert entered the queue.
:meth:`Escalator.tick` is driven by an injected clock (``lifewatch api``
calls it every ``tick_interval`` seconds; tests call it with a fake clock)
and, for every alert not under a silence:

* ``new`` and ``next_reminder_at <= now``: a reminder (audit + outbox
  ``alert.reminder``); the next one ``reminder_interval[level]`` later, so a
  tick after a long pause sends one reminder, not a burst;
* ``new`` past ``ack_due``: escalates once (``alert.escalated``, sla
  ``acknowledge``, target role ``supervisor``);
* ``new``/``acknowledged``/``dispatched`` past ``resolve_due``: escalates once
  (sla ``resolve``);
* ``cleared`` alerts of an ``auto_close`` level whose condition stayed away for
  ``reopen_cooldown`` (wall time here; the intake does the same in event
  time) are closed by the system.

Several API processes may tick the same database: rows are claimed with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL and by the writer lock on SQLite, so
no reminder goes out twice.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from alerts.clock import Clock, system_clock
from alerts.config import AlertSettings
from alerts.db import Store
from alerts.journal import iso, record
from alerts.lifecycle import Feedback, apply
from alerts.models import Alert
from alerts.states import OWNED_STATES, AlertState
from alerts.types import TIMER, Actor
from lifewatch.levels import Level

AUTO_CLOSED = Feedback(note="auto-closed: the condition stayed cleared through the re-open cool-down")


def ack_due(settings: AlertSettings, level: Level | int, start: datetime) -> datetime:
    return start + timedelta(seconds=settings.ack_sla[Level(level)])


def resolve_due(settings: AlertSettings, level: Level | int, start: datetime) -> datetime:
    return start + timedelta(seconds=settings.resolve_sla[Level(level)])


def next_reminder(settings: AlertSettings, level: Level | int, after: datetime) -> datetime:
    return after + timedelta(seconds=settings.reminder_interval[Level(level)])


def start_clocks(settings: AlertSettings, alert: Alert, now: datetime) -> None:
    """SLA deadlines and the first reminder, counted from ``now``."""
    alert.ack_due = ack_due(settings, alert.level, now)
    alert.resolve_due = resolve_due(settings, alert.level, now)
    alert.next_reminder_at = next_reminder(settings, alert.level, now) if alert.state == AlertState.NEW else None


def tighten_clocks(settings: AlertSettings, alert: Alert, level: Level, now: datetime) -> None:
    """The alert became ``level`` (more severe): its deadlines move to that level's SLAs, counted from when its
    clocks started (entering the queue, or the end of its silence); the next reminder comes no later than that
    level's interval from now."""
    old = Level(alert.level)
    started = alert.ack_due - timedelta(seconds=settings.ack_sla[old])
    alert.level = level.value
    alert.ack_due = min(alert.ack_due, ack_due(settings, level, started))
    alert.resolve_due = min(alert.resolve_due, resolve_due(settings, level, started))
    if alert.next_reminder_at is not None:
        alert.next_reminder_at = min(alert.next_reminder_at, next_reminder(settings, level, now))


def close_quiet_cleared(
    s: Session,
    settings: AlertSettings,
    now: datetime,
    actor: Actor,
    *,
    ended_before_ns: int | None = None,
    cleared_before: datetime | None = None,
) -> int:
    """Close cleared alerts of ``auto_close`` levels whose condition stayed away long enough."""
    if not settings.auto_close or (ended_before_ns is None and cleared_before is None):
        return 0
    quiet = []
    if ended_before_ns is not None:
        quiet.append(Alert.ended_ns <= ended_before_ns)
    if cleared_before is not None:
        quiet.append(Alert.cleared_at <= cleared_before)
    q = select(Alert).where(
        Alert.state == AlertState.CLEARED.value, Alert.level.in_([lv.value for lv in settings.auto_close]), or_(*quiet)
    )
    n = 0
    for alert in _claim(s, q):
        auto_close(s, alert, now, actor)
        n += 1
    return n


def auto_close(s: Session, alert: Alert, now: datetime, actor: Actor) -> None:
    apply(s, alert, AlertState.CLOSED, actor, now, feedback=AUTO_CLOSED, data={"auto": True})


def _claim(s: Session, q: Select) -> list[Alert]:
    if s.get_bind().dialect.name == "postgresql":
        q = q.with_for_update(skip_locked=True)
    return list(s.scalars(q.order_by(Alert.level, Alert.created_at)))


class Escalator:
    def __init__(self, store: Store, settings: AlertSettings, clock: Clock = system_clock):
        self.store = store
        self.settings = settings
        self.clock = clock
        self.totals: Counter[str] = Counter()

    def tick(self, now: datetime | None = None) -> Counter[str]:
        """One pass over the timers; returns what it did (reminders, escalations, auto_closed)."""
        now = now or self.clock()
        done: Counter[str] = Counter()
        st = self.settings
        with self.store.write() as s:
            waiting = select(Alert).where(Alert.state == AlertState.NEW.value, Alert.silenced.is_(False))
            for a in _claim(s, waiting.where(Alert.next_reminder_at <= now)):
                a.reminders += 1
                a.next_reminder_at = next_reminder(st, a.level, now)
                record(s, "reminder", now, TIMER, alert=a, data={"reminder": a.reminders, "ack_due": iso(a.ack_due)}, notify="alert.reminder")
                done["reminders"] += 1
            for a in _claim(s, waiting.where(Alert.ack_escalated_at.is_(None), Alert.ack_due <= now)):
                a.ack_escalated_at = now
                self._escalate(s, a, now, "acknowledge", a.ack_due)
                done["escalations"] += 1
            unresolved = [AlertState.NEW.value, *(x.value for x in OWNED_STATES)]
            q = select(Alert).where(
                Alert.state.in_(unresolved),
                Alert.silenced.is_(False),
                Alert.resolve_escalated_at.is_(None),
                Alert.resolve_due <= now,
            )
            for a in _claim(s, q):
                a.resolve_escalated_at = now
                self._escalate(s, a, now, "resolve", a.resolve_due)
                done["escalations"] += 1
            done["auto_closed"] += close_quiet_cleared(
                s, st, now, TIMER, cleared_before=now - timedelta(seconds=st.reopen_cooldown)
            )
        done = +done  # drop the zero counts
        self.totals.update(done)
        return done

    @staticmethod
    def _escalate(s: Session, a: Alert, now: datetime, sla: str, due: datetime) -> None:
        record(
            s,
            "escalation",
            now,
            TIMER,
            alert=a,
            note=f"{sla} SLA breached",
            data={"sla": sla, "due": iso(due), "overdue_s": (now - due).total_seconds(), "target_role": "supervisor"},
            notify="alert.escalated",
        )
