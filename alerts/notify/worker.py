"""The outbox worker: delivers every outbox row to every channel it is routed to, at least once, in order.

The queue writes an outbox row in the same transaction as the change it
announces (:mod:`alerts.journal`); this worker is the only reader.  One pass
(:meth:`OutboxWorker.run_once`, driven by the clock it is given) does, for
each channel:

1. read the channel's undelivered rows in outbox order: rows with
   ``delivered_at IS NULL``, routed to the channel (:class:`~alerts.notify.channel.Route`,
   as SQL), with no final delivery for it yet (``notify_deliveries``), at most
   ``batch``; the walk stops at the first row whose retry is not yet due, so
   a channel's notices go out in order and a receiver that is down is tried
   again only after its backoff;
2. hand them to the channel **outside** any database transaction (no lock is
   held during network I/O); every payload carries the outbox id as the
   idempotency key;
3. record the outcomes (short write transaction): ``delivered``, ``dead``
   (permanent refusal, with its reason) or ``retry`` with the next attempt
   ``retry_initial * 2**(attempts-1)`` later, capped at ``retry_max``.

Then an outbox row whose routed channels are all ``delivered`` or ``dead``
gets ``delivered_at``.  Nothing is ever deleted: a notification waits in the
outbox for as long as its receiver is down, and a worker that dies between
sending and recording sends again after a restart (at-least-once; receivers
drop duplicates by the outbox id).

Run **one** worker per alert database: two workers would both deliver the
same rows (harmless for idempotent receivers, but doubled traffic).  A
receiver that answers 5xx forever to one particular notice holds back that
channel's later notices (the price of in-order delivery); ``lifewatch notify
--status`` shows it.

``cli(args, settings)`` is ``lifewatch notify``: the loop until SIGTERM/SIGINT;
``args.once``: one pass; ``args.status``: pending and dead counts per channel (JSON);
``args.dead``: the dead deliveries, newest first (JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select

from alerts.clock import Clock, system_clock
from alerts.db import Store
from alerts.journal import iso
from alerts.models import Alert, Outbox
from alerts.notify.channel import Channel, Outcome, Result, retry
from alerts.notify.config import NotifySettings
from alerts.notify.errors import ConfigError
from alerts.notify.message import Notice, Texts
from alerts.notify.store import FINAL_STATES, Delivery, DeliveryState

log = logging.getLogger("lifewatch.notify")


class OutboxWorker:
    def __init__(self, store: Store, channels: Iterable[Channel], settings: NotifySettings | None = None, clock: Clock = system_clock):
        self.store = store
        self.channels = list(channels)
        names = [c.name for c in self.channels]
        if not names:
            raise ConfigError("no notification channel is enabled (LIFEWATCH_NOTIFY_MQTT, LIFEWATCH_NOTIFY_INFLUX, LIFEWATCH_WEBHOOKS)")
        if len(names) != len(set(names)):
            raise ConfigError(f"channel names must be unique: {names}")
        self.settings = settings or NotifySettings()
        self.clock = clock
        self.totals: Counter[str] = Counter()

    def __enter__(self) -> OutboxWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for ch in self.channels:
            try:
                ch.close()
            except Exception:  # noqa: BLE001 - closing one channel must not stop closing the others
                log.exception("closing %s failed", ch.name)

    # --- one pass ------------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> Counter[str]:
        """One pass over every channel; returns counts (delivered, retry, dead, completed, full_batches)."""
        now = now or self.clock()
        done: Counter[str] = Counter()
        touched: set[int] = set()
        for ch in self.channels:
            due = self._due(ch, now)
            if not due:
                continue
            try:
                outcomes = ch.deliver(due, now)
            except Exception as exc:  # noqa: BLE001 - a channel bug must not stop the others; the rows stay
                log.exception("channel %s failed", ch.name)
                outcomes = [retry(f"channel error: {type(exc).__name__}: {exc}")]
            if len(outcomes) != len(due):  # a channel returning too few outcomes: the rest are simply not tried
                outcomes = (list(outcomes) + [Outcome(Result.NOT_TRIED)] * len(due))[: len(due)]
            self._record(ch, due, outcomes, now)
            for n, o in zip(due, outcomes, strict=True):
                if o.result is not Result.NOT_TRIED:
                    done[str(o.result)] += 1
                    touched.add(n.outbox_id)
            if len(due) >= self.settings.batch and all(o.result is Result.DELIVERED for o in outcomes):
                done["full_batches"] += 1
        done["completed"] += self._complete(touched, now)
        self.totals.update(done)
        return done

    def _due(self, ch: Channel, now: datetime) -> list[Notice]:
        q = (
            select(Outbox, Delivery)
            .outerjoin(Delivery, and_(Delivery.outbox_id == Outbox.id, Delivery.channel == ch.name))
            .where(
                Outbox.delivered_at.is_(None),
                or_(Delivery.id.is_(None), Delivery.state == DeliveryState.RETRY.value),
                ch.route.sql(),
            )
            .order_by(Outbox.id)
            .limit(self.settings.batch)
        )
        with self.store.read() as s:
            rows: list[Outbox] = []
            for row, d in s.execute(q):
                if d is not None and d.next_attempt_at is not None and d.next_attempt_at > now:
                    break  # the channel's oldest undelivered notice waits for its backoff: so do the later ones
                rows.append(row)
            need = {r.alert_id for r in rows if r.alert_id and "evidence" not in ((r.payload or {}).get("alert") or {})}
            evidence = {aid: ev for aid, ev in s.execute(select(Alert.id, Alert.evidence).where(Alert.id.in_(sorted(need))))} if need else {}
        return [Notice.from_row(r, evidence.get(r.alert_id)) for r in rows]

    def _record(self, ch: Channel, notices: list[Notice], outcomes: list[Outcome], now: datetime) -> None:
        tried = [(n, o) for n, o in zip(notices, outcomes, strict=True) if o.result is not Result.NOT_TRIED]
        if not tried:
            return
        ids = [n.outbox_id for n, _ in tried]
        with self.store.write() as s:
            existing = {
                d.outbox_id: d for d in s.scalars(select(Delivery).where(Delivery.channel == ch.name, Delivery.outbox_id.in_(ids)))
            }
            rows = {o.id: o for o in s.scalars(select(Outbox).where(Outbox.id.in_(ids)))}
            for n, o in tried:
                d = existing.get(n.outbox_id)
                if d is None:
                    d = Delivery(outbox_id=n.outbox_id, channel=ch.name, state=DeliveryState.RETRY.value, attempts=0,
                                 first_attempt_at=now, last_attempt_at=now)
                    s.add(d)
                d.attempts += 1
                d.last_attempt_at = now
                row = rows.get(n.outbox_id)
                if row is not None:
                    row.attempts = (row.attempts or 0) + 1
                if o.result is Result.DELIVERED:
                    d.state, d.delivered_at, d.next_attempt_at = DeliveryState.DELIVERED.value, now, None
                    continue
                d.last_error = (o.error or str(o.result))[:2000]
                if o.result is Result.DEAD:
                    d.state, d.next_attempt_at = DeliveryState.DEAD.value, None
                    log.error("%s: outbox %d is dead: %s", ch.name, n.outbox_id, d.last_error)
                else:
                    d.state = DeliveryState.RETRY.value
                    d.next_attempt_at = now + timedelta(seconds=self.settings.backoff(d.attempts))
                if row is not None:
                    row.last_error = f"{ch.name}: {d.last_error}"[:2000]
                    row.next_attempt_at = d.next_attempt_at

    def _complete(self, touched: set[int], now: datetime) -> int:
        """Mark outbox rows delivered once every channel routed to them is final (delivered or dead)."""
        with self.store.write() as s:
            head = set(s.scalars(select(Outbox.id).where(Outbox.delivered_at.is_(None)).order_by(Outbox.id).limit(self.settings.batch)))
            ids = sorted(head | touched)
            if not ids:
                return 0
            states: dict[tuple[int, str], str] = {
                (oid, chn): st
                for oid, chn, st in s.execute(select(Delivery.outbox_id, Delivery.channel, Delivery.state).where(Delivery.outbox_id.in_(ids)))
            }
            n = 0
            for row in s.scalars(select(Outbox).where(Outbox.id.in_(ids), Outbox.delivered_at.is_(None))):
                routed = [c.name for c in self.channels if c.route.match(row.unit, row.level, row.kind, row.alert_id)]
                if all(states.get((row.id, name)) in FINAL_STATES for name in routed):
                    row.delivered_at = now
                    row.next_attempt_at = None
                    n += 1
            return n

    # --- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Passes until ``stop`` is set; sleeps ``poll_interval`` between passes unless a full batch went out."""
        for ch in self.channels:
            ch.open()
        log.info("notifier running: %s", ", ".join(repr(c) for c in self.channels))
        while not stop.is_set():
            try:
                done = self.run_once(self.clock())
            except Exception:  # noqa: BLE001 - the database may be down: log, wait, try again
                log.exception("notifier pass failed; retrying in %.1f s", self.settings.poll_interval)
                done = Counter()
            if not done["full_batches"]:
                stop.wait(self.settings.poll_interval)
        log.info("notifier stopped: %s", dict(self.totals))

    # --- what is stuck ---------------------------------------------------------------------------

    def status(self, now: datetime | None = None) -> dict[str, Any]:
        now = now or self.clock()
        with self.store.read() as s:
            pending = s.scalar(select(func.count()).select_from(Outbox).where(Outbox.delivered_at.is_(None))) or 0
            oldest = s.scalar(select(func.min(Outbox.created_at)).where(Outbox.delivered_at.is_(None)))
            by_state = {
                (ch, st): c
                for ch, st, c in s.execute(select(Delivery.channel, Delivery.state, func.count()).group_by(Delivery.channel, Delivery.state))
            }
        return {
            "pending_rows": pending,
            "oldest_pending": iso(oldest),
            "oldest_pending_age_s": (now - oldest).total_seconds() if oldest is not None else None,
            "channels": {
                c.name: {st.value: by_state.get((c.name, st.value), 0) for st in DeliveryState} for c in self.channels
            },
        }


def dead_deliveries(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """The dead deliveries, newest first (channel, outbox row, reason)."""
    q = (
        select(Delivery, Outbox.kind, Outbox.alert_id, Outbox.unit)
        .join(Outbox, Outbox.id == Delivery.outbox_id)
        .where(Delivery.state == DeliveryState.DEAD.value)
        .order_by(Delivery.last_attempt_at.desc(), Delivery.id.desc())
        .limit(limit)
    )
    with store.read() as s:
        return [
            {"outbox_id": d.outbox_id, "channel": d.channel, "event": kind, "alert_id": alert_id, "unit": unit,
             "attempts": d.attempts, "at": iso(d.last_attempt_at), "error": d.last_error}
            for d, kind, alert_id, unit in s.execute(q)
        ]


def build_channels(settings: Any, notify: NotifySettings, city: Any = None) -> list[Channel]:
    """The channels the settings enable: MQTT, InfluxDB, then the webhooks in file order."""
    from alerts.notify.influx import InfluxChannel
    from alerts.notify.mqtt import MqttChannel
    from alerts.notify.webhook import WebhookChannel
    from lifewatch.influx import InfluxClient

    texts = Texts(city)
    channels: list[Channel] = []
    if notify.mqtt:
        channels.append(MqttChannel.from_settings(settings, notify))
    if notify.influx:
        channels.append(InfluxChannel(InfluxClient.from_settings(settings), texts, notify.influx_skip))
    for spec in notify.webhooks:
        channels.append(WebhookChannel(spec, texts, allow_private=notify.webhook_allow_private, timeout=notify.timeout))
    return channels


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--once", action="store_true", help="one pass over the outbox, then exit")
    p.add_argument("--status", action="store_true", help="pending rows and delivery states per channel (JSON)")
    p.add_argument("--dead", action="store_true", help="dead deliveries, newest first (JSON)")


def cli(args: argparse.Namespace, settings) -> int:  # noqa: ANN001 - lifewatch.settings.Settings
    """``lifewatch notify``: 0 on a clean stop, 1 on a database error, 2 on bad settings."""
    from alerts.config import AlertSettings
    from alerts.db import open_store
    from alerts.errors import StoreError
    from alerts.notify.store import migrate_notify
    from lifewatch.city import load_city
    from lifewatch.settings import SettingsError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    looping = not any(getattr(args, name, False) for name in ("once", "status", "dead"))
    stop = threading.Event()
    previous = {}
    if looping:  # from the start: a SIGTERM while migrating ends the loop before its first pass
        previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    channels: list[Channel] = []
    store: Store | None = None
    try:
        notify = NotifySettings.from_env()
        st = AlertSettings.from_settings(settings)
        channels = build_channels(settings, notify, load_city(settings.city_file or None))
        store = open_store(st)
        if st.auto_migrate:
            migrate_notify(store.engine)
        worker = OutboxWorker(store, channels, notify)
        if getattr(args, "status", False):
            print(json.dumps(worker.status(), indent=2, ensure_ascii=False))
        elif getattr(args, "dead", False):
            print(json.dumps(dead_deliveries(store), indent=2, ensure_ascii=False))
        elif getattr(args, "once", False):
            print(json.dumps(dict(worker.run_once())))
        else:
            worker.run(stop)
        return 0
    except SettingsError as exc:  # ConfigError is one
        print(f"lifewatch notify: bad setting: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"lifewatch notify: {exc}", file=sys.stderr)
        return 1
    finally:
        for ch in channels:
            try:
                ch.close()
            except Exception:  # noqa: BLE001 - best effort on the way out
                log.exception("closing %s failed", ch.name)
        if store is not None:
            store.dispose()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
