"""Detections in, alerts out: the queue's :class:`~detectors.sinks.DetectionSink`.

:meth:`AlertIntake.emit` takes a batch of detections (event-time order) and
stores it in one transaction; each detection runs in its own savepoint, so
one bad detection is logged and counted, never fatal.  A database failure
raises :class:`~alerts.errors.StoreError` and nothing of the batch is kept:
the caller retries, and a redelivered detection is recognised (idempotent).

**Dedup.** One alert takes all detections of one condition, ``Detection.key``
= ``lifeline:subject:kind`` (``alerts.open_key`` is unique):

* ``raised``: a new alert (``new``), or, when the condition's alert is still
  open, a repeat (``count + 1``; last seen, peak and level follow);
* ``updated``: last seen, peak score/value/evidence and level (a more severe
  level tightens the SLA deadlines and is announced); an update whose raise
  was never seen opens the alert itself;
* ``cleared``: a ``new`` alert becomes ``cleared``; an alert a crew owns is
  never cleared: the end of the condition is recorded and announced to it.

**Flapping.** The detectors' hysteresis stops most flapping; here, a condition
raised again within ``reopen_cooldown`` (event time) after it cleared re-opens
the same alert (``cleared -> new``, ``flaps + 1``) instead of a new one.
Cleared alerts of ``auto_close`` levels are closed by the system once the
cool-down has passed (event time here, wall time in the escalation tick).

**Grouping.** Alerts of one asset (DMA, feeder, bridge, gas segment) whose
event times lie within ``incident_window`` of each other form one incident
(two or more alerts; later ones join while the incident is open).

**Routing.** ``unit = city.unit_for(lifeline, district)``; an unknown lifeline
goes to :data:`UNROUTED` (visible to the control room) and is logged.

**Silences**: see :mod:`alerts.silences`.  Event time (the detections')
drives first/last seen, the cool-down, windows and silences; the injected
clock (wall time) drives created_at and the SLA deadlines.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import exc, select
from sqlalchemy.orm import Session

from alerts import silences
from alerts.clock import Clock, from_ns, system_clock
from alerts.config import AlertSettings
from alerts.db import Store
from alerts.escalation import auto_close, close_quiet_cleared, next_reminder, start_clocks, tighten_clocks
from alerts.journal import record
from alerts.lifecycle import apply
from alerts.models import Alert, Incident, Silence
from alerts.states import OWNED_STATES, TERMINAL_STATES, AlertState
from alerts.types import INTAKE, jsonable
from detectors.events import CLEARED, RAISED, UPDATED, Detection
from lifewatch.city import City
from lifewatch.levels import Level

log = logging.getLogger("lifewatch.alerts.intake")

UNROUTED = "unrouted"
NS = 1_000_000_000
MAX_SENSORS = 64  # sensors listed on one alert; more are counted, not listed
_TERMINAL = [s.value for s in TERMINAL_STATES]


class AlertIntake:
    """The alert queue's intake; implements ``detectors.sinks.DetectionSink``."""

    def __init__(self, store: Store, city: City, settings: AlertSettings, clock: Clock = system_clock):
        self.store = store
        self.city = city
        self.settings = settings
        self.clock = clock
        self.cooldown_ns = int(settings.reopen_cooldown * NS)
        self.window_ns = int(settings.incident_window * NS)
        # created, repeats, updates, cleared, reopened, owned_cleared, duplicates, stale, silenced, grouped, rejected
        self.counts: Counter[str] = Counter()

    def emit(self, detections: list[Detection]) -> None:
        if not detections:
            return
        with self.store.write() as s:
            now = self.clock()
            for d in detections:
                self._guarded(s, d, now)
            watermark = max(d.ts_ns for d in detections)
            self.counts["auto_closed"] += close_quiet_cleared(
                s, self.settings, now, INTAKE, ended_before_ns=watermark - self.cooldown_ns
            )

    def _guarded(self, s: Session, d: Detection, now: datetime) -> None:
        for attempt in (1, 2):
            try:
                with s.begin_nested():
                    self._one(s, d, now)
                return
            except exc.IntegrityError:
                if attempt == 2:  # another intake opened the same condition meanwhile: the retry sees it
                    log.exception("detection %s (%s) refused by the store", d.id, d.key)
            except exc.OperationalError:
                raise  # the database itself failed: the whole batch is retried by the caller
            except Exception:
                log.exception("detection %s (%s) could not be queued", getattr(d, "id", "?"), getattr(d, "key", "?"))
                break
        self.counts["rejected"] += 1

    # --- one detection -------------------------------------------------------------------------

    def _one(self, s: Session, d: Detection, now: datetime) -> None:
        if d.state == RAISED:
            self._raised(s, d, now)
        elif d.state == UPDATED:
            self._updated(s, d, now)
        elif d.state == CLEARED:
            self._cleared(s, d, now)
        else:
            raise ValueError(f"unknown detection state {d.state!r}")

    def _live(self, s: Session, key: str) -> Alert | None:
        q = select(Alert).where(Alert.open_key == key)
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update()
        return s.scalars(q).first()

    def _episode(self, s: Session, d: Detection) -> Alert | None:
        """The alert that already holds this detection's episode (same key and start), if any."""
        q = select(Alert).where(Alert.key == d.key, Alert.last_start_ns == d.start_ns).order_by(Alert.created_at.desc())
        return s.get(Alert, d.id) or s.scalars(q).first()

    def _raised(self, s: Session, d: Detection, now: datetime) -> None:
        a = self._live(s, d.key)
        if a is not None and d.start_ns <= a.last_start_ns:  # a redelivered raise
            self.counts["duplicates"] += 1
            return
        if a is not None and a.state == AlertState.CLEARED:
            if d.start_ns - (a.ended_ns or a.last_seen_ns) <= self.cooldown_ns:
                self._reopen(s, a, d, now)
                return
            self._retire(s, a, now)
            a = None
        if a is not None:
            self._repeat(s, a, d, now)
            return
        if self._episode(s, d) is not None:  # a redelivered raise of an episode already handled
            self.counts["duplicates"] += 1
            return
        self._create(s, d, now)

    def _updated(self, s: Session, d: Detection, now: datetime) -> None:
        a = self._live(s, d.key)
        if a is None or a.state == AlertState.CLEARED:
            known = self._episode(s, d)
            if known is None:
                self._raised(s, d, now)  # its raise never arrived (or belongs to the cleared episode's successor)
            elif known.state not in _TERMINAL and known.state != AlertState.CLEARED and d.ts_ns > known.last_seen_ns:
                self._merge(s, known, d, now)  # e.g. resolved, condition still reported: the control room sees it
            else:
                self.counts["stale"] += 1
            return
        if d.ts_ns <= a.last_seen_ns:
            self.counts["stale"] += 1
        elif d.start_ns > a.last_start_ns:
            self._repeat(s, a, d, now)
        else:
            self._merge(s, a, d, now)
            self.counts["updates"] += 1

    def _cleared(self, s: Session, d: Detection, now: datetime) -> None:
        a = self._live(s, d.key) or self._episode(s, d)
        if (
            a is None
            or a.state in _TERMINAL
            or a.state == AlertState.CLEARED
            or a.ended_ns is not None  # already recorded
            or d.start_ns < a.last_start_ns  # the end of an older episode
        ):
            self.counts["stale"] += 1
            return
        end_ns = d.end_ns if d.end_ns is not None else d.ts_ns
        a.last_seen_ns = max(a.last_seen_ns, d.ts_ns)
        a.ended_ns = end_ns
        a.updated_at = now
        if a.state == AlertState.NEW:
            apply(s, a, AlertState.CLEARED, INTAKE, now, event_ns=end_ns, data={"detector": d.detector})
            self.counts["cleared"] += 1
        else:  # a crew owns it (or it is resolved): tell them, change nothing else
            record(s, "condition_cleared", now, INTAKE, alert=a, event_ns=end_ns, data={"detector": d.detector}, notify="alert.condition_cleared")
            self.counts["owned_cleared"] += 1

    # --- changes ---------------------------------------------------------------------------------

    def _create(self, s: Session, d: Detection, now: datetime) -> Alert:
        level = Level(d.level)
        silence = self._silence(s, d, d.start_ns)
        evidence = jsonable(d.evidence)
        a = Alert(
            id=d.id,  # free: _raised() checked that this episode is not stored yet
            key=d.key,
            open_key=d.key,
            kind=d.kind,
            detector=d.detector,
            lifeline=d.lifeline,
            district=d.district,
            asset=d.asset,
            sensors=list(d.sensors)[:MAX_SENSORS],
            metric=d.metric,
            unit=self._route(d),
            level=level.value,
            state=AlertState.NEW.value,
            silenced=silence is not None,
            silence_id=silence.id if silence is not None else None,
            count=1,
            flaps=0,
            first_seen_ns=d.start_ns,
            last_seen_ns=max(d.start_ns, d.ts_ns),
            last_start_ns=d.start_ns,
            ended_ns=None,
            peak_score=float(d.score),
            peak_value=_peak_value(evidence),
            evidence=evidence,
            version=1,
            created_at=now,
            updated_at=now,
            reminders=0,
        )
        start_clocks(self.settings, a, now)
        if silence is not None:
            a.next_reminder_at = None
        s.add(a)
        s.flush()
        grouped = self._group(s, a, now)
        record(
            s,
            "raised",
            now,
            INTAKE,
            alert=a,
            to_state=AlertState.NEW,
            event_ns=d.start_ns,
            data={"detection": d.id, "detector": d.detector, "level": level.label, "score": d.score},
            notify="alert.raised",
        )
        if silence is not None:
            record(s, "silenced", now, INTAKE, alert=a, note=silence.reason, event_ns=d.start_ns, data={"silence_id": silence.id})
            self.counts["silenced"] += 1
        for m in grouped:
            record(s, "grouped", now, INTAKE, alert=m, data={"asset": a.asset})
        self.counts["created"] += 1
        return a

    def _repeat(self, s: Session, a: Alert, d: Detection, now: datetime) -> None:
        a.count += 1
        a.last_start_ns = d.start_ns
        if a.ended_ns is not None and a.state in {x.value for x in OWNED_STATES}:
            a.ended_ns = None  # the condition is back while the crew works on it
        self._merge(s, a, d, now)
        record(s, "repeat", now, INTAKE, alert=a, event_ns=d.start_ns, data={"detection": d.id, "count": a.count, "score": d.score})
        self.counts["repeats"] += 1

    def _reopen(self, s: Session, a: Alert, d: Detection, now: datetime) -> None:
        a.count += 1
        a.flaps += 1
        a.last_start_ns = d.start_ns
        self._merge(s, a, d, now)
        apply(
            s, a, AlertState.NEW, INTAKE, now, event_ns=d.start_ns, notify="alert.reopened",
            data={"detection": d.id, "flaps": a.flaps, "cooldown_s": self.settings.reopen_cooldown},
        )
        if not a.silenced:
            a.next_reminder_at = next_reminder(self.settings, a.level, now)
        self.counts["reopened"] += 1

    def _retire(self, s: Session, a: Alert, now: datetime) -> None:
        """A cleared alert whose cool-down is over gives its key up to a new alert (auto-close levels close)."""
        if Level(a.level) in self.settings.auto_close:
            auto_close(s, a, now, INTAKE)
        else:
            a.open_key = None
        s.flush()  # the key is free before the new alert takes it (open_key is unique)

    def _merge(self, s: Session, a: Alert, d: Detection, now: datetime) -> None:
        a.last_seen_ns = max(a.last_seen_ns, d.ts_ns)
        a.updated_at = now
        if len(a.sensors) < MAX_SENSORS and not set(d.sensors) <= set(a.sensors):
            a.sensors = (list(a.sensors) + [x for x in d.sensors if x not in a.sensors])[:MAX_SENSORS]
        if d.score > a.peak_score:
            evidence = jsonable(d.evidence)
            a.peak_score = float(d.score)
            a.peak_value = _peak_value(evidence)
            a.evidence = evidence
        level = Level(d.level)
        if level.more_severe(Level(a.level)):
            old = Level(a.level)
            tighten_clocks(self.settings, a, level, now)
            record(
                s, "level_raised", now, INTAKE, alert=a, event_ns=d.ts_ns,
                data={"from_level": old.label, "to_level": level.label}, notify="alert.level_raised",
            )
        if a.incident_id:
            inc = s.get(Incident, a.incident_id)
            if inc is not None:
                inc.last_seen_ns = max(inc.last_seen_ns, a.last_seen_ns)
                inc.level = min(inc.level, a.level)
                inc.updated_at = now
        if a.silenced and self._silence(s, d, d.ts_ns) is None:
            self._unsilence(s, a, d, now)

    @staticmethod
    def _silence(s: Session, d: Detection, at_ns: int) -> Silence | None:
        return silences.matching(
            s, from_ns(at_ns), lifeline=d.lifeline, district=d.district, asset=d.asset, sensors=d.sensors, kind=d.kind
        )

    def _unsilence(self, s: Session, a: Alert, d: Detection, now: datetime) -> None:
        a.silenced = False
        if a.state not in _TERMINAL:
            start_clocks(self.settings, a, now)  # the SLAs start when people are told
        record(s, "unsilenced", now, INTAKE, alert=a, event_ns=d.ts_ns, note="the condition outlived its silence",
               data={"silence_id": a.silence_id}, notify="alert.unsilenced")

    def _group(self, s: Session, a: Alert, now: datetime) -> list[Alert]:
        """Put ``a`` into its asset's open incident, or open one with its recent peers; the alerts grouped."""
        if not a.asset or self.window_ns <= 0:
            return []
        since = a.first_seen_ns - self.window_ns
        inc = s.scalars(
            select(Incident)
            .where(Incident.asset == a.asset, Incident.closed_at.is_(None), Incident.last_seen_ns >= since)
            .order_by(Incident.last_seen_ns.desc())
            .limit(1)
        ).first()
        if inc is not None:
            members = [a]
        else:
            members = list(
                s.scalars(
                    select(Alert)
                    .where(
                        Alert.asset == a.asset,
                        Alert.id != a.id,
                        Alert.incident_id.is_(None),
                        Alert.state.not_in(_TERMINAL),
                        Alert.last_seen_ns >= since,
                    )
                    .order_by(Alert.first_seen_ns, Alert.id)
                )
            )
            if not members:
                return []
            members.append(a)
            first = members[0]
            inc = Incident(
                id=f"inc-{first.id}",
                asset=a.asset,
                lifeline=a.lifeline,
                district=a.district,
                unit=a.unit,
                level=min(m.level for m in members),
                alert_count=0,
                first_seen_ns=min(m.first_seen_ns for m in members),
                last_seen_ns=max(m.last_seen_ns for m in members),
                created_at=now,
                updated_at=now,
            )
            s.add(inc)
            s.flush()
            record(
                s, "incident_created", now, INTAKE, incident_id=inc.id, unit=inc.unit,
                data={"asset": inc.asset, "level": Level(inc.level).label, "alerts": [m.id for m in members]},
                notify="incident.created",
            )
        for m in members:
            m.incident_id = inc.id
            inc.alert_count += 1
            inc.level = min(inc.level, m.level)
            inc.last_seen_ns = max(inc.last_seen_ns, m.last_seen_ns)
            inc.updated_at = now
        self.counts["grouped"] += len(members)
        return members

    def _route(self, d: Detection) -> str:
        try:
            return self.city.unit_for(d.lifeline, d.district).id
        except KeyError:
            log.error("no unit for lifeline %r in district %r: alert %s goes to %r", d.lifeline, d.district, d.key, UNROUTED)
            return UNROUTED


def _peak_value(evidence: dict[str, Any]) -> float | None:
    for name in ("peak", "value"):
        v = evidence.get(name)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return float(v)
    return None


def open_intake(settings: Any, *, clock: Clock | None = None, city: City | None = None) -> AlertIntake:
    """The intake for ``lifewatch.settings.Settings``: its database (migrated when auto_migrate) and city."""
    from alerts.db import open_store
    from lifewatch.city import load_city

    st = AlertSettings.from_settings(settings)
    return AlertIntake(open_store(st), city or load_city(st.city_file or None), st, clock or system_clock)
