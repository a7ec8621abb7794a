"""The notifier: outbox worker (order, backoff, per-channel state, dead deliveries), MQTT through the test
broker, InfluxDB's ``alerts`` measurement, webhooks against a local receiver (down then up, signatures,
WeCom/DingTalk/SMS shapes, 4xx dead), the SSRF guard, settings and the CLI.

Every test that touches the database runs on SQLite and PostgreSQL (``store`` from conftest).  All
traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import base64
import doctest
import hashlib
import hmac
import http.server
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import select

import alerts.notify.config
import alerts.notify.message
import alerts.notify.mqtt
import alerts.notify.ssrf
import alerts.notify.webhook
from alerts.escalation import Escalator
from alerts.lifecycle import transition
from alerts.models import Alert, Outbox
from alerts.notify.channel import DELIVERED, NOT_TRIED, Channel, Outcome, Result, Route, dead, retry
from alerts.notify.config import NotifySettings, WebhookSpec, load_webhooks, webhook_from_dict
from alerts.notify.errors import AddressRefused, ConfigError
from alerts.notify.influx import InfluxChannel
from alerts.notify.message import Notice, Texts
from alerts.notify.mqtt import MqttChannel
from alerts.notify.ssrf import check_url
from alerts.notify.store import Delivery, migrate_notify
from alerts.notify.webhook import WebhookChannel, verify
from alerts.notify.worker import OutboxWorker, cli, dead_deliveries
from alerts.states import AlertState, Role
from alerts.types import Actor
from lifewatch.influx import InfluxClient, InfluxUnavailable
from lifewatch.levels import Level
from lifewatch.lineprotocol import quote_ident
from lifewatch.services import free_port
from lifewatch.settings import Settings
from tests.alerts.helpers import UNIT_A, det

CREW_A = Actor("crew-a", Role.CREW, UNIT_A)
# the worker's database logic runs on both backends; channel behaviour (payloads, receivers) on SQLite only
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
FAST = NotifySettings(retry_initial=1.0, retry_max=4.0, timeout=2.0, batch=50)


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
def nstore(store):  # noqa: ANN001, ANN201 - the conftest store with the notifier's table
    migrate_notify(store.engine)
    migrate_notify(store.engine)  # twice: a no-op
    return store


@pytest.fixture
def lw_settings(broker, influxd, tmp_path: Path) -> Iterator[Settings]:  # noqa: ANN001
    """Main settings on the session broker and InfluxDB (the alert conftest's ``settings`` is AlertSettings)."""
    tag = uuid.uuid4().hex[:12]
    s = Settings(state_dir=tmp_path / "state", demo=True, mqtt_host=broker.host, mqtt_port=broker.port,
                 mqtt_client_id=f"lw-test-{tag}", influx_url=influxd.url, influx_rpc_port=influxd.rpc_port,
                 influx_db=f"t_{tag}", influx_timeout=10.0, metrics_addr="")
    with InfluxClient.from_settings(s) as admin:
        admin.create_database()
        try:
            yield s
        finally:
            try:
                admin.query_all(f"DROP DATABASE {quote_ident(s.influx_db)}", db="", method="POST")
            except InfluxUnavailable:
                pass


class FakeChannel(Channel):
    """Delivers unless told to fail: ``script`` is a list of outcomes handed out one per attempt."""

    def __init__(self, name: str, script: list[Outcome] | None = None, route: Route | None = None):
        self.name = name
        self.route = route or Route()
        self.script = list(script or [])
        self.got: list[int] = []
        self.calls: list[tuple[datetime, list[int]]] = []

    def deliver(self, notices: list[Notice], now: datetime) -> list[Outcome]:
        self.calls.append((now, [n.outbox_id for n in notices]))
        out: list[Outcome] = []
        for n in notices:
            o = self.script.pop(0) if self.script else DELIVERED
            out.append(o)
            if o.result is Result.DELIVERED:
                self.got.append(n.outbox_id)
            if o.result is Result.RETRY:
                break
        return out + [NOT_TRIED] * (len(notices) - len(out))


def outbox_ids(store) -> list[int]:  # noqa: ANN001
    with store.read() as s:
        return list(s.scalars(select(Outbox.id).order_by(Outbox.id)))


def pending(store) -> list[int]:  # noqa: ANN001
    with store.read() as s:
        return list(s.scalars(select(Outbox.id).where(Outbox.delivered_at.is_(None)).order_by(Outbox.id)))


def deliveries(store) -> dict[tuple[int, str], Delivery]:  # noqa: ANN001
    with store.read() as s:
        return {(d.outbox_id, d.channel): d for d in s.scalars(select(Delivery))}


def raise_and_ack(intake, store, clock) -> str:  # noqa: ANN001
    """One alert raised, then acknowledged by its crew: two outbox rows (alert.raised, alert.transition)."""
    intake.emit([det()])
    with store.read() as s:
        alert_id = s.scalars(select(Alert.id)).one()
    clock.advance(60)
    with store.write() as s:
        transition(s, alert_id, AlertState.ACKNOWLEDGED, CREW_A, clock())
    return alert_id


class Receiver:
    """A webhook receiver on 127.0.0.1 in a thread; ``answer(path, headers, body) -> (status, body)``."""

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.requests: list[dict[str, Any]] = []
        self.answer: Callable[[str, dict[str, str], bytes], tuple[int, bytes]] = lambda *_: (200, b"ok")
        self._server: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = outer.answer(self.path, headers, body)
                outer.requests.append({"path": self.path, "headers": headers, "body": body, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if 200 <= r["status"] < 300]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.stop()


def hook(receiver: Receiver, template: str = "generic", secret: str = "s3cret-key", **kw: Any) -> WebhookSpec:
    return WebhookSpec(name=f"{template}-test", url=receiver.url, template=template, secret=secret, **kw)


def webhook_channel(spec: WebhookSpec, city, allow_private: bool = True) -> WebhookChannel:  # noqa: ANN001
    return WebhookChannel(spec, Texts(city), allow_private=allow_private, timeout=2.0)


# --- pure pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize("module", [alerts.notify.config, alerts.notify.message, alerts.notify.mqtt,
                                    alerts.notify.ssrf, alerts.notify.webhook])
def test_doctests(module) -> None:  # noqa: ANN001
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/hook", "http://10.1.2.3/hook", "http://169.254.169.254/latest",
                                 "http://[::1]:8080/hook", "https://localhost/hook", "http://[fe80::1]/x",
                                 "http://100.64.0.1/x", "http://0.0.0.0/x", "http://[::ffff:10.0.0.1]/x"])
def test_ssrf_guard_refuses_non_public_addresses_by_default(url: str) -> None:
    with pytest.raises(AddressRefused):
        check_url(url)
    with pytest.raises(ConfigError, match="LIFEWATCH_WEBHOOK_ALLOW_PRIVATE"):
        webhook_from_dict({"name": "x", "url": url}, environ={})
    assert check_url(url, allow_private=True)  # the setting allows them
    assert webhook_from_dict({"name": "x", "url": url}, allow_private=True, environ={}).url == url


def test_ssrf_guard_lets_public_addresses_through_without_sending_anything() -> None:
    assert check_url("https://93.184.216.34/hook") == ["93.184.216.34"]  # a literal: no DNS, no connection
    with pytest.raises(ConfigError, match="http or https"):
        check_url("file:///etc/passwd")


@SQLITE_ONLY
def test_refused_webhook_is_dead_and_the_receiver_never_hears_of_it(nstore, intake, clock, receiver, city) -> None:  # noqa: ANN001
    receiver.start()
    intake.emit([det()])
    ch = webhook_channel(hook(receiver), city, allow_private=False)
    with OutboxWorker(nstore, [ch], FAST, clock) as w:
        w.run_once(clock())
    assert receiver.requests == []
    dead_rows = dead_deliveries(nstore)
    assert [d["outbox_id"] for d in dead_rows] == outbox_ids(nstore)
    assert all("127.0.0.1 is loopback" in d["error"] for d in dead_rows)
    assert pending(nstore) == []  # dead is final: visible in notify_deliveries, not retried


def test_settings_from_env_and_the_webhook_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "dt.secret"
    secret_file.write_text("SECfile-secret\n")
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "webhooks:\n"
        "  - {name: control-room, url: 'https://hooks.example.org/lw?token=abc', secret_env: LW_SECRET,"
        " units: [shz-water], levels: 'red,orange', events: [alert.raised]}\n"
        "  - {name: ding, url: 'https://oapi.dingtalk.com/robot/send?access_token=t', template: dingtalk,"
        f" secret_file: '{secret_file}'}}\n"
    )
    env = {"LIFEWATCH_WEBHOOKS": str(path), "LW_SECRET": "env-secret", "LIFEWATCH_NOTIFY_POLL": "250ms",
           "LIFEWATCH_NOTIFY_INFLUX": "0", "LIFEWATCH_NOTIFY_INFLUX_SKIP": "alert.reminder"}
    s = NotifySettings.from_env(env)
    assert (s.poll_interval, s.influx, s.mqtt, s.influx_skip) == (0.25, False, True, frozenset({"alert.reminder"}))
    a, b = s.webhooks
    assert (a.secret, a.units, a.levels, a.events) == ("env-secret", {"shz-water"}, {Level.RED, Level.ORANGE}, {"alert.raised"})
    assert (b.template, b.secret) == ("dingtalk", "SECfile-secret")
    shown = repr(s)
    assert "env-secret" not in shown and "SECfile-secret" not in shown and "token=abc" not in shown
    with pytest.raises(ConfigError, match="LW_SECRET is not set"):
        load_webhooks(path, environ={})
    path.write_text("- {name: x, url: 'https://example.org/h', template: telegram}\n")
    with pytest.raises(ConfigError, match="template must be one of"):
        load_webhooks(path, environ={})
    with pytest.raises(ConfigError, match="LIFEWATCH_NOTIFY_RETRY_INITIAL"):
        NotifySettings.from_env({"LIFEWATCH_NOTIFY_RETRY_INITIAL": "2m", "LIFEWATCH_NOTIFY_RETRY_MAX": "1m"})


# --- the worker -------------------------------------------------------------------------------------


def test_notify_migration_matches_its_model_and_leaves_the_queue_schema_alone(nstore) -> None:  # noqa: ANN001
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import text

    from alerts.models import Base
    from alerts.notify.store import NotifyBase

    def mine(name, type_, parent_names) -> bool:  # noqa: ANN001
        return type_ != "table" or name in NotifyBase.metadata.tables

    with nstore.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c, opts={"include_name": mine}), NotifyBase.metadata) == []
        assert c.execute(text("SELECT version_num FROM alembic_version_notify")).scalar_one() == "n0001"
    assert "notify_deliveries" not in Base.metadata.tables



def test_route_sql_and_python_agree(nstore, clock) -> None:  # noqa: ANN001
    kinds = ["alert.raised", "alert.reminder", "incident.created"]
    with nstore.write() as s:
        for i in range(24):
            has_alert = i % 3 != 2
            s.add(Outbox(created_at=clock(), kind=kinds[i % 3], alert_id=f"a{i}" if has_alert else None,
                         unit=["shz-water", "shz-power", None][i % 4 % 3], level=(i % 4 + 1) if has_alert else None,
                         payload={}, attempts=0))
    routes = [Route(), Route(units=frozenset({"shz-water"})), Route(levels=frozenset({Level.RED, Level.BLUE})),
              Route(events=frozenset({"alert.raised"}), skip_events=frozenset({"alert.reminder"})),
              Route(alerts_only=True, skip_events=frozenset({"alert.reminder"}))]
    with nstore.read() as s:
        rows = list(s.scalars(select(Outbox).order_by(Outbox.id)))
        for r in routes:
            by_sql = list(s.scalars(select(Outbox.id).where(r.sql()).order_by(Outbox.id)))
            by_python = [o.id for o in rows if r.match(o.unit, o.level, o.kind, o.alert_id)]
            assert by_sql == by_python and 0 < len(by_sql) <= len(rows), r


def test_retries_in_order_with_capped_backoff_while_other_channels_move_on(nstore, intake, clock) -> None:  # noqa: ANN001
    raise_and_ack(intake, nstore, clock)
    ids = outbox_ids(nstore)
    assert len(ids) == 2
    ok = FakeChannel("ok")
    down = FakeChannel("down", script=[retry("HTTP 503")] * 4)
    w = OutboxWorker(nstore, [ok, down], FAST, clock)
    t0 = clock()
    w.run_once(t0)
    assert ok.got == ids and down.got == []
    assert pending(nstore) == ids  # not delivered while one channel waits
    d = deliveries(nstore)
    assert d[(ids[0], "down")].state == "retry" and (ids[1], "down") not in d  # stopped at the first failure
    # backoff 1, 2, 4, 4 (cap) s: nothing is tried before it is due, and the channel keeps its order
    tries = [t0]
    for _ in range(40):
        clock.advance(0.5)
        before = len(down.calls)
        w.run_once(clock())
        if len(down.calls) > before:
            tries.append(clock())
        if not pending(nstore):
            break
    gaps = [(b - a).total_seconds() for a, b in zip(tries, tries[1:], strict=False)]
    assert gaps == [1.0, 2.0, 4.0, 4.0]
    assert down.got == ids and ok.got == ids  # no duplicate to the healthy channel
    assert pending(nstore) == []
    d = deliveries(nstore)
    assert d[(ids[0], "down")].attempts == 5 and d[(ids[0], "down")].state == "delivered"
    assert d[(ids[1], "down")].attempts == 1
    with nstore.read() as s:
        first = s.get(Outbox, ids[0])
        assert first.delivered_at == clock() and first.attempts == 6 and first.last_error == "down: HTTP 503"


def test_dead_delivery_is_final_visible_and_the_channel_moves_on(nstore, intake, clock) -> None:  # noqa: ANN001
    raise_and_ack(intake, nstore, clock)
    ids = outbox_ids(nstore)
    ch = FakeChannel("picky", script=[dead("HTTP 400: bad payload"), DELIVERED])
    w = OutboxWorker(nstore, [ch], FAST, clock)
    counts = w.run_once(clock())
    assert (counts["dead"], counts["delivered"], counts["completed"]) == (1, 1, 2)
    assert ch.got == [ids[1]] and pending(nstore) == []
    assert dead_deliveries(nstore) == [
        {"outbox_id": ids[0], "channel": "picky", "event": "alert.raised", "alert_id": dead_deliveries(nstore)[0]["alert_id"],
         "unit": UNIT_A, "attempts": 1, "at": clock().isoformat().replace("+00:00", "Z"), "error": "HTTP 400: bad payload"}
    ]
    w.run_once(clock.advance(3600))
    assert len(ch.calls) == 1  # never retried
    assert w.status(clock())["channels"]["picky"] == {"retry": 0, "delivered": 1, "dead": 1}


def test_new_rows_wait_behind_a_channel_in_backoff_and_batches_are_bounded(nstore, intake, clock) -> None:  # noqa: ANN001
    for i in range(5):
        intake.emit([det(f"kind_{i}", t=i * 10, asset=f"asset-{i}")])
    ids = outbox_ids(nstore)
    assert len(ids) == 5
    ch = FakeChannel("slow", script=[retry("down")])
    w = OutboxWorker(nstore, [ch], FAST.replace(batch=2), clock)
    w.run_once(clock())
    intake.emit([det("kind_late", t=100, asset="asset-late")])
    w.run_once(clock.advance(0.5))  # head not due: nothing newer jumps the queue
    assert ch.got == [] and len(ch.calls) == 1
    clock.advance(1)
    seen: list[int] = []
    for _ in range(5):
        w.run_once(clock())
        seen = ch.got
    assert seen == outbox_ids(nstore) and all(len(c[1]) <= 2 for c in ch.calls)


@SQLITE_ONLY
def test_loop_runs_until_stopped(nstore, intake, clock) -> None:  # noqa: ANN001
    intake.emit([det()])
    ch = FakeChannel("loop")
    w = OutboxWorker(nstore, [ch], FAST.replace(poll_interval=0.05), clock)
    stop = threading.Event()
    t = threading.Thread(target=w.run, args=(stop,))
    t.start()
    deadline = time.monotonic() + 10
    while pending(nstore) and time.monotonic() < deadline:
        time.sleep(0.02)
    intake.emit([det("inlet_flow_high", t=30, sensors=("w-d01-001",))])
    while pending(nstore) and time.monotonic() < deadline:
        time.sleep(0.02)
    stop.set()
    t.join(5)
    assert not t.is_alive() and pending(nstore) == [] and ch.got == outbox_ids(nstore)


def test_no_channel_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="no notification channel"):
        OutboxWorker(None, [])  # type: ignore[arg-type] - refused before the store is touched


# --- MQTT -------------------------------------------------------------------------------------------


class Subscriber:
    def __init__(self, host: str, port: int, topic: str):
        self.messages: list[tuple[str, dict[str, Any]]] = []
        self.ready = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"test-sub-{uuid.uuid4().hex[:8]}")
        c.on_connect = lambda cl, *_: cl.subscribe(topic, qos=1)
        c.on_subscribe = lambda *_: self.ready.set()
        c.on_message = lambda _c, _u, m: self.messages.append((m.topic, orjson.loads(m.payload)))
        c.connect(host, port)
        c.loop_start()
        self.client = c
        assert self.ready.wait(10)

    def wait(self, n: int, timeout: float = 10.0) -> list[tuple[str, dict[str, Any]]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_publishes_each_change_on_the_unit_and_level_topic(nstore, intake, clock, lw_settings) -> None:  # noqa: ANN001
    prefix = f"t{uuid.uuid4().hex[:6]}"
    sub = Subscriber(lw_settings.mqtt_host, lw_settings.mqtt_port, f"{prefix}/alerts/#")
    alert_id = raise_and_ack(intake, nstore, clock)
    ch = MqttChannel(lw_settings.mqtt_host, lw_settings.mqtt_port, prefix=prefix, timeout=5.0, client_id=f"lw-notify-{uuid.uuid4().hex[:8]}")
    try:
        with OutboxWorker(nstore, [ch], FAST, clock) as w:
            counts = w.run_once(clock())
        messages = sub.wait(2)
    finally:
        sub.close()
    ids = outbox_ids(nstore)
    assert (counts["delivered"], counts["completed"]) == (2, 2)
    assert [t for t, _ in messages] == [f"{prefix}/alerts/{UNIT_A}/orange"] * 2
    raised, acked = (doc for _, doc in messages)
    assert [raised["outbox_id"], acked["outbox_id"]] == ids
    assert raised["idempotency_key"] == f"lifewatch-outbox-{ids[0]}"
    assert (raised["event"], raised["alert_id"], raised["state"], raised["level"], raised["unit"]) == (
        "alert.raised", alert_id, "new", "orange", UNIT_A)
    assert (raised["key"], raised["kind"], raised["lifeline"], raised["district"], raised["asset"], raised["sensors"]) == (
        "water:w-d01-002:end_pressure_low", "end_pressure_low", "water", "d01", "dma-d01-1", ["w-d01-002"])
    assert raised["first_seen"] == "2026-01-01T08:00:00Z" and raised["count"] == 1 and raised["peak"]["score"] == 3.0
    assert raised["evidence"]["source"] == "GB 50013-2018"
    assert acked["transition"] == {"from": "new", "to": "acknowledged", "action": "acknowledge", "actor": "crew-a",
                                   "role": "crew", "note": None}
    assert acked["evidence"]["source"] == "GB 50013-2018"  # read from the alert: only alert.raised payloads carry it
    assert all(d.state == "delivered" for d in deliveries(nstore).values())


@SQLITE_ONLY
def test_mqtt_broker_down_keeps_the_notice_until_it_is_up(nstore, intake, clock, lw_settings) -> None:  # noqa: ANN001
    intake.emit([det()])
    (oid,) = outbox_ids(nstore)
    nowhere = MqttChannel("127.0.0.1", free_port(), timeout=0.5, client_id=f"lw-notify-{uuid.uuid4().hex[:8]}")
    with OutboxWorker(nstore, [nowhere], FAST, clock) as w:
        assert w.run_once(clock())["retry"] == 1
    d = deliveries(nstore)[(oid, "mqtt")]
    assert d.state == "retry" and "not connected" in d.last_error and pending(nstore) == [oid]
    prefix = f"t{uuid.uuid4().hex[:6]}"
    sub = Subscriber(lw_settings.mqtt_host, lw_settings.mqtt_port, f"{prefix}/alerts/#")
    up = MqttChannel(lw_settings.mqtt_host, lw_settings.mqtt_port, prefix=prefix, timeout=5.0, client_id=f"lw-notify-{uuid.uuid4().hex[:8]}")
    try:
        with OutboxWorker(nstore, [up], FAST, clock) as w:
            assert w.run_once(clock.advance(0.5))["delivered"] == 0  # the backoff holds
            assert w.run_once(clock.advance(0.5))["delivered"] == 1
        messages = sub.wait(1)
    finally:
        sub.close()
    assert [doc["outbox_id"] for _, doc in messages] == [oid] and pending(nstore) == []
    assert deliveries(nstore)[(oid, "mqtt")].attempts == 2


# --- InfluxDB ---------------------------------------------------------------------------------------


def test_influx_alerts_measurement(nstore, intake, clock, lw_settings, city, settings) -> None:  # noqa: ANN001
    alert_id = raise_and_ack(intake, nstore, clock)
    intake.emit([det("inlet_flow_high", t=30, sensors=("w-d01-001",), level=Level.RED)])
    clock.advance(600)
    Escalator(nstore, settings, clock).tick()  # reminders: not written to InfluxDB by default
    with nstore.read() as s:
        kinds = list(s.scalars(select(Outbox.kind).order_by(Outbox.id)))
    assert "alert.reminder" in kinds
    with InfluxClient.from_settings(lw_settings) as client:
        ch = InfluxChannel(InfluxClient.from_settings(lw_settings), Texts(city), frozenset({"alert.reminder", "alert.comment"}))
        with OutboxWorker(nstore, [ch], FAST, clock) as w:
            w.run_once(clock())
            w.run_once(clock())  # a second pass writes nothing new
        series = client.query('SELECT * FROM "alerts" GROUP BY *')
    rows = sorted((dict(zip(sr.columns, v, strict=True)) | sr.tags for sr in series for v in sr.values), key=lambda r: r["outbox_id"])
    expected = [k for k in kinds if k.startswith("alert.") and k != "alert.reminder"]
    assert [r["event"] for r in rows] == expected and pending(nstore) == []
    first = rows[0]
    assert (first["unit"], first["level"], first["lifeline"], first["district"], first["kind"], first["state"]) == (
        UNIT_A, "orange", "water", "d01", "end_pressure_low", "new")
    assert (first["alert_id"], first["key"], first["count"], first["peak"]) == (alert_id, "water:w-d01-002:end_pressure_low", 1, 3.0)
    assert first["title"].startswith("【橙色预警(II级)】供水") and "[ORANGE (II)]" in first["title"]
    assert rows[1]["state"] == "acknowledged" and rows[2]["level"] == "red"
    with nstore.read() as s:
        created = s.get(Outbox, first["outbox_id"]).created_at
    assert first["time"] == int(created.timestamp()) * 10**9 + created.microsecond * 1000 + first["outbox_id"] % 1000


@SQLITE_ONLY
def test_influx_down_or_without_its_database_is_retried(nstore, intake, clock, city, influxd) -> None:  # noqa: ANN001
    intake.emit([det()])
    ch = InfluxChannel(InfluxClient(f"http://127.0.0.1:{free_port()}", "nowhere", timeout=1.0), Texts(city))
    with OutboxWorker(nstore, [ch], FAST, clock) as w:
        assert w.run_once(clock())["retry"] == 1
    (d,) = deliveries(nstore).values()
    assert d.state == "retry" and "InfluxDB unavailable" in d.last_error and len(pending(nstore)) == 1
    missing = InfluxChannel(InfluxClient(influxd.url, f"missing_{uuid.uuid4().hex[:8]}", timeout=5.0), Texts(city))
    with OutboxWorker(nstore, [missing], FAST, clock) as w:
        assert w.run_once(clock.advance(1))["retry"] == 1
    (d,) = deliveries(nstore).values()
    assert d.state == "retry" and "HTTP 404" in d.last_error and len(pending(nstore)) == 1


@SQLITE_ONLY
def test_influx_rejected_point_is_dead_and_the_rest_are_written(nstore, intake, clock, city, lw_settings) -> None:  # noqa: ANN001
    intake.emit([det("with_value", asset="dma-d01-1"), det("without_value", asset="dma-d02-1", district="d02", evidence={})])
    with_value, without_value = outbox_ids(nstore)
    with InfluxClient.from_settings(lw_settings) as client:
        # peak_value already a string in this shard: the first notice's point (peak_value=0.13) conflicts
        client.write(f'alerts,unit=elsewhere peak_value="text" {int(clock().timestamp()) * 10**9}')
        ch = InfluxChannel(InfluxClient.from_settings(lw_settings), Texts(city))
        with OutboxWorker(nstore, [ch], FAST, clock) as w:
            counts = w.run_once(clock())
        written = [r["outbox_id"] for sr in client.query('SELECT "outbox_id" FROM "alerts" WHERE "outbox_id" > 0') for r in sr.rows()]
    assert (counts["dead"], counts["delivered"]) == (1, 1) and written == [without_value]
    d = deliveries(nstore)
    assert d[(with_value, "influx")].state == "dead" and "field type conflict" in d[(with_value, "influx")].last_error
    assert d[(without_value, "influx")].state == "delivered" and pending(nstore) == []


# --- webhooks ---------------------------------------------------------------------------------------


def test_webhook_down_then_up_loses_nothing_and_signs_every_request(nstore, intake, clock, receiver, city) -> None:  # noqa: ANN001
    raise_and_ack(intake, nstore, clock)
    intake.emit([det("inlet_flow_high", t=30, sensors=("w-d01-001",))])
    ids = outbox_ids(nstore)
    spec = hook(receiver)
    w = OutboxWorker(nstore, [webhook_channel(spec, city)], FAST, clock)
    # 1. nobody listens: connection refused
    assert w.run_once(clock())["retry"] == 1
    assert "ConnectError" in deliveries(nstore)[(ids[0], spec.channel)].last_error
    # 2. up but failing (503), then a timeout-like 429, then healthy
    answers = iter([(503, b"busy"), (429, b"slow down")])
    receiver.answer = lambda *_: next(answers, (200, b"ok"))
    receiver.start()
    for _ in range(20):
        clock.advance(1)
        w.run_once(clock())
        if not pending(nstore):
            break
    w.close()
    statuses = [r["status"] for r in receiver.requests]
    assert statuses == [503, 429] + [200] * len(ids)
    got = [int(r["headers"]["x-lifewatch-delivery"]) for r in receiver.accepted()]
    assert got == ids and pending(nstore) == []  # each once, in order
    for r in receiver.requests:
        h = r["headers"]
        ts = h["x-lifewatch-timestamp"]
        assert verify(spec.secret, ts, r["body"], h["x-lifewatch-signature"], now=int(ts))
        assert not verify("wrong-secret", ts, r["body"], h["x-lifewatch-signature"], now=int(ts))
        mac = hmac.new(spec.secret.encode(), ts.encode() + b"." + r["body"], hashlib.sha256).hexdigest()
        assert h["x-lifewatch-signature"] == f"sha256={mac}" and h["content-type"] == "application/json"
        doc = orjson.loads(r["body"])
        assert doc["outbox_id"] == int(h["x-lifewatch-delivery"]) and h["idempotency-key"] == f"lifewatch-outbox-{doc['outbox_id']}"
        assert h["x-lifewatch-event"] == doc["event"]
    docs = [orjson.loads(r["body"]) for r in receiver.accepted()]
    assert docs[0]["text"]["zh"].startswith("【橙色预警(II级)】") and "14:00:05 (UTC+6)" in docs[0]["text"]["body"]
    assert [d["event"] for d in docs][:2] == ["alert.raised", "alert.transition"]


@SQLITE_ONLY
def test_webhook_4xx_is_dead_and_later_notices_still_go(nstore, intake, clock, receiver, city) -> None:  # noqa: ANN001
    raise_and_ack(intake, nstore, clock)
    ids = outbox_ids(nstore)
    receiver.answer = lambda _p, h, _b: (400, b"unknown field") if h["x-lifewatch-delivery"] == str(ids[0]) else (204, b"")
    receiver.start()
    spec = hook(receiver)
    with OutboxWorker(nstore, [webhook_channel(spec, city)], FAST, clock) as w:
        counts = w.run_once(clock())
        w.run_once(clock.advance(3600))
    assert (counts["dead"], counts["delivered"]) == (1, 1)
    assert [r["status"] for r in receiver.requests] == [400, 204]  # the dead one is not retried
    (d,) = dead_deliveries(nstore)
    assert (d["outbox_id"], d["channel"], d["error"]) == (ids[0], spec.channel, "HTTP 400: unknown field")
    assert pending(nstore) == []
    with nstore.read() as s:
        assert s.get(Outbox, ids[0]).last_error == f"{spec.channel}: HTTP 400: unknown field"


@SQLITE_ONLY
def test_webhook_filters_by_unit_level_and_event(nstore, intake, clock, receiver, city) -> None:  # noqa: ANN001
    raise_and_ack(intake, nstore, clock)
    intake.emit([det("overload", lifeline="power", district="d02", sensors=("p-d02-001",), asset="feeder-d02-1", level=Level.RED)])
    receiver.start()
    spec = hook(receiver, units=frozenset({UNIT_A}), events=frozenset({"alert.raised"}))
    red = WebhookSpec(name="red-only", url=receiver.url, secret="k", levels=frozenset({Level.RED}))
    with OutboxWorker(nstore, [webhook_channel(spec, city), webhook_channel(red, city)], FAST, clock) as w:
        w.run_once(clock())
    by_channel: dict[str, list[tuple[str, str, str]]] = {}
    for r in receiver.accepted():
        doc = orjson.loads(r["body"])
        by_channel.setdefault("red" if doc["level"] == "red" else "water", []).append((doc["event"], doc["unit"], doc["level"]))
    assert by_channel["water"] == [("alert.raised", UNIT_A, "orange")]
    assert by_channel["red"] == [("alert.raised", "shz-power", "red")]
    assert pending(nstore) == []  # rows no webhook takes are complete too


@SQLITE_ONLY
def test_dingtalk_wecom_and_sms_payloads(nstore, intake, clock, receiver, city) -> None:  # noqa: ANN001
    raise_and_ack(intake, nstore, clock)
    ids = outbox_ids(nstore)
    receiver.answer = lambda *_: (200, b'{"errcode":0,"errmsg":"ok"}')
    receiver.start()
    specs = [hook(receiver, "dingtalk", secret="SECding-secret"), hook(receiver, "wecom", secret=""), hook(receiver, "sms")]
    with OutboxWorker(nstore, [webhook_channel(s, city) for s in specs], FAST, clock) as w:
        w.run_once(clock())
    reqs = receiver.accepted()
    assert len(reqs) == 3 * len(ids)
    ding, wecom, sms = reqs[: len(ids)], reqs[len(ids): 2 * len(ids)], reqs[2 * len(ids):]
    for r in ding:
        doc = orjson.loads(r["body"])
        assert set(doc) == {"msgtype", "markdown"} and doc["msgtype"] == "markdown"
        assert set(doc["markdown"]) == {"title", "text"} and doc["markdown"]["title"].startswith("【橙色预警(II级)】")
        q = parse_qs(urlsplit(r["path"]).query)
        ts = q["timestamp"][0]
        assert int(ts) == int(clock().timestamp() * 1000)
        expected = base64.b64encode(hmac.new(b"SECding-secret", f"{ts}\nSECding-secret".encode(), hashlib.sha256).digest()).decode()
        assert q["sign"] == [expected]
    assert "状态变更 待确认→已确认" in orjson.loads(ding[1]["body"])["markdown"]["text"]
    for r in wecom:
        doc = orjson.loads(r["body"])
        assert set(doc) == {"msgtype", "markdown"} and set(doc["markdown"]) == {"content"}
        assert len(doc["markdown"]["content"].encode()) <= 4096 and "x-lifewatch-signature" not in r["headers"]
        assert urlsplit(r["path"]).query == ""
    assert '<font color="warning">' in orjson.loads(wecom[0]["body"])["markdown"]["content"]
    for r, oid in zip(sms, ids, strict=True):
        text = r["body"].decode()
        assert r["headers"]["content-type"] == "text/plain; charset=utf-8"
        zh, en = text.split("\n")
        assert zh.startswith("【Lifewatch】橙色预警(II级) 供水 新城街道") and "01-01 14:0" in zh
        assert en.startswith("ORANGE (II) Water supply") and en.endswith(f"UTC+6 #{oid}") and len(text) < 300


@SQLITE_ONLY
def test_gateway_errcodes(nstore, intake, clock, receiver, city) -> None:  # noqa: ANN001
    raise_and_ack(intake, nstore, clock)
    ids = outbox_ids(nstore)
    answers = iter([b'{"errcode":45009,"errmsg":"api freq out of limit"}', b'{"errcode":93000,"errmsg":"invalid webhook url"}'])
    receiver.answer = lambda *_: (200, next(answers, b'{"errcode":0}'))
    receiver.start()
    spec = hook(receiver, "wecom")
    with OutboxWorker(nstore, [webhook_channel(spec, city)], FAST, clock) as w:
        assert w.run_once(clock())["retry"] == 1
        assert w.run_once(clock.advance(1))["dead"] == 1
    d = deliveries(nstore)
    assert d[(ids[0], spec.channel)].state == "dead" and "93000" in d[(ids[0], spec.channel)].last_error
    assert d[(ids[1], spec.channel)].state == "delivered"


# --- lifewatch notify --------------------------------------------------------------------------------


def test_cli_once_status_and_dead(nstore, intake, clock, receiver, db_url, tmp_path, monkeypatch, capsys) -> None:  # noqa: ANN001
    raise_and_ack(intake, nstore, clock)
    receiver.answer = lambda _p, h, _b: (410, b"gone") if h["x-lifewatch-event"] == "alert.transition" else (200, b"ok")
    receiver.start()
    hooks = tmp_path / "hooks.json"
    hooks.write_text(orjson.dumps([{"name": "room", "url": receiver.url, "secret_env": "LW_TEST_HOOK_SECRET"}]).decode())
    for k, v in {"LIFEWATCH_ALERTS_DB_URL": db_url, "LIFEWATCH_NOTIFY_MQTT": "0", "LIFEWATCH_NOTIFY_INFLUX": "0",
                 "LIFEWATCH_WEBHOOKS": str(hooks), "LIFEWATCH_WEBHOOK_ALLOW_PRIVATE": "1",
                 "LW_TEST_HOOK_SECRET": "cli-secret"}.items():
        monkeypatch.setenv(k, v)
    settings = Settings(state_dir=tmp_path / "state")
    assert cli(argparse.Namespace(once=True, status=False, dead=False), settings) == 0
    assert orjson.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {"delivered": 1, "dead": 1, "completed": 2}
    assert cli(argparse.Namespace(once=False, status=True, dead=False), settings) == 0
    status = orjson.loads(capsys.readouterr().out)
    assert status["pending_rows"] == 0 and status["channels"]["webhook:room"] == {"retry": 0, "delivered": 1, "dead": 1}
    assert cli(argparse.Namespace(once=False, status=False, dead=True), settings) == 0
    (dead_row,) = orjson.loads(capsys.readouterr().out)
    assert dead_row["error"] == "HTTP 410: gone" and dead_row["event"] == "alert.transition"
    assert all("cli-secret" not in str(r["headers"]) for r in receiver.requests)
    monkeypatch.setenv("LIFEWATCH_WEBHOOK_ALLOW_PRIVATE", "0")
    assert cli(argparse.Namespace(once=True, status=False, dead=False), settings) == 2  # 127.0.0.1 refused at start-up
    assert "LIFEWATCH_WEBHOOK_ALLOW_PRIVATE" in capsys.readouterr().err


@SQLITE_ONLY
def test_notice_texts_follow_the_city_local_time(nstore, intake, clock, city, settings) -> None:  # noqa: ANN001
    intake.emit([det()])
    clock.advance(3600 * 12)  # 20:00:05 UTC = 02:00:05 next day in Shihezi (UTC+6)
    Escalator(nstore, settings, clock).tick()
    with nstore.read() as s:
        rows = list(s.scalars(select(Outbox).order_by(Outbox.id)))
    texts = Texts(city)
    escalated = [Notice.from_row(r) for r in rows if r.kind == "alert.escalated"]
    assert escalated and all("超时升级" in texts.title_zh(n) for n in escalated)
    assert "2026-01-02 02:00:05 (UTC+6)" in texts.plain(escalated[0])
    reminder = next(Notice.from_row(r) for r in rows if r.kind == "alert.reminder")
    assert "提醒:尚未确认(第1次)" in texts.title_zh(reminder) and "reminder: not acknowledged (#1)" in texts.title_en(reminder)
