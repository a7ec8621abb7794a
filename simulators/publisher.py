"""Send simulated readings: to MQTT (paho-mqtt 2.x, QoS 1) or to a JSON Lines file.

Messages follow the reading contract (:mod:`lifewatch.model`): topic
``<prefix>/<lifeline>/<district>/<sensor_id>/reading`` and the payload of
:func:`~lifewatch.model.reading_to_json`, serialised with orjson.  With
``batch=N`` a gateway per district and lifeline sends JSON arrays of up to N
readings on ``<prefix>/<lifeline>/<district>/gw-<district>-<lifeline>/reading``
(the sensor id slot of the topic names the gateway); a batch goes out when full
or after lingering a second, like a gateway's upload timer.

:class:`MqttPublisher` keeps at most ``max_unacked`` (20,000) QoS 1 messages
published but not yet PUBACKed: paho's message ids wrap at 65,535 and
``publish()`` answers MQTT_ERR_QUEUE_SIZE when an id is still in use, so the
publisher waits for acknowledgements when over the window, retries on
MQTT_ERR_QUEUE_SIZE, accepts MQTT_ERR_NO_CONN (paho queues QoS 1 messages and
sends them after reconnecting) and raises :class:`PublishError` on anything
else.  :meth:`MqttPublisher.flush` waits until every message is acknowledged.

:class:`JsonlSink` writes ``{"topic": ..., "payload": ...}`` lines, the format
``../shared/peers/ingest-drain`` reads with ``--messages``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, Protocol

import orjson
import paho.mqtt.client as mqtt

from lifewatch.model import Reading, reading_to_json, reading_topic
from lifewatch.settings import Settings


class PublishError(RuntimeError):
    """The broker could not be reached, refused us, or stopped acknowledging."""


def gateway_id(district: str, lifeline: str) -> str:
    return f"gw-{district}-{lifeline}"


class Batcher:
    """Gateway batching: readings of one district and lifeline collect into one payload.

    A batch is sent when it holds ``batch`` readings or has been open for
    ``linger_s`` seconds (wall time, checked by :meth:`due`); :meth:`drain`
    sends the rest.  With ``batch <= 1`` every reading is its own message.
    Within one gateway the readings keep their order.
    """

    def __init__(self, prefix: str, batch: int = 0, linger_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        self.prefix = prefix
        self.batch = batch
        self.linger_s = linger_s
        self.clock = clock
        self._open: dict[tuple[str, str], tuple[float, list[dict]]] = {}

    def _topic(self, key: tuple[str, str]) -> str:
        lifeline, district = key
        return reading_topic(self.prefix, lifeline, district, gateway_id(district, lifeline))

    def add(self, readings: Iterable[Reading]) -> list[tuple[str, Any]]:
        if self.batch <= 1:
            return [(reading_topic(self.prefix, r.lifeline, r.district, r.sensor_id), reading_to_json(r)) for r in readings]
        out = []
        now = self.clock()
        for r in readings:
            key = (r.lifeline, r.district)
            opened = self._open.get(key)
            if opened is None:
                opened = self._open[key] = (now, [])
            opened[1].append(reading_to_json(r))
            if len(opened[1]) >= self.batch:
                out.append((self._topic(key), opened[1]))
                del self._open[key]
        return out

    def due(self) -> list[tuple[str, Any]]:
        """Partial batches open for longer than the linger time."""
        if not self._open:
            return []
        limit = self.clock() - self.linger_s
        keys = [k for k, (t, _) in self._open.items() if t <= limit]
        return [(self._topic(k), self._open.pop(k)[1]) for k in keys]

    def drain(self) -> list[tuple[str, Any]]:
        out = [(self._topic(k), b) for k, (_, b) in self._open.items()]
        self._open.clear()
        return out


def messages(readings: Iterable[Reading], prefix: str, batch: int = 0) -> list[tuple[str, Any]]:
    """(topic, payload object) for the readings: one per reading, or gateway batches of up to ``batch``."""
    b = Batcher(prefix, batch)
    return b.add(readings) + b.drain()


class Sink(Protocol):
    readings: int
    messages: int

    def send(self, readings: list[Reading]) -> None: ...

    def poll(self) -> None: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...


class JsonlSink:
    """Messages as JSON Lines ``{"topic": ..., "payload": ...}`` (file path or open binary file)."""

    def __init__(self, out: str | Path | IO[bytes], prefix: str = "lifelines", batch: int = 0):
        self._own = not hasattr(out, "write")
        self._f: IO[bytes] = open(out, "wb") if self._own else out  # type: ignore[arg-type]
        self.prefix = prefix
        self.batcher = Batcher(prefix, batch)
        self.readings = 0
        self.messages = 0

    def _write(self, msgs: list[tuple[str, Any]]) -> None:
        if msgs:
            self._f.write(b"\n".join(orjson.dumps({"topic": t, "payload": p}) for t, p in msgs) + b"\n")
            self.messages += len(msgs)

    def send(self, readings: list[Reading]) -> None:
        self._write(self.batcher.add(readings))
        self.readings += len(readings)

    def poll(self) -> None:
        pass  # a file does not need timely partial batches: they fill up across chunks

    def flush(self, timeout: float | None = None) -> bool:
        self._write(self.batcher.drain())
        self._f.flush()
        return True

    def close(self) -> None:
        self.flush()
        if self._own:
            self._f.close()


class MqttPublisher:
    """QoS 1 publisher with a bounded window of unacknowledged messages."""

    def __init__(
        self,
        settings: Settings,
        *,
        batch: int = 0,
        client_id: str | None = None,
        max_unacked: int = 20_000,
        ack_timeout: float = 120.0,
        qos: int = 1,
        linger_s: float = 1.0,
    ):
        self.settings = settings
        self.prefix = settings.topic_prefix
        self.batcher = Batcher(self.prefix, batch, linger_s)
        self.max_unacked = max_unacked
        self.ack_timeout = ack_timeout
        self.qos = qos
        self.readings = 0
        self.messages = 0
        self.acked = 0
        self._cond = threading.Condition()
        self._pending: set[int] = set()
        self._early: set[int] = set()  # PUBACKs that arrived before publish() returned
        self._connected = threading.Event()
        self._connect_error: str | None = None
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"lifewatch-simulate-{os.getpid()}",
            protocol=mqtt.MQTTv311,
        )
        if settings.mqtt_username:
            self.client.username_pw_set(settings.mqtt_username, settings.mqtt_password or None)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    # -- paho callbacks (network thread)

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            self._connect_error = str(reason)
        else:
            self._connect_error = None
            self._connected.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self._connected.clear()

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        with self._cond:
            if mid in self._pending:
                self._pending.discard(mid)
            else:
                self._early.add(mid)
            self.acked += 1
            self._cond.notify_all()

    # -- lifecycle

    def connect(self, timeout: float = 10.0) -> MqttPublisher:
        s = self.settings
        try:
            self.client.connect(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive)
        except OSError as exc:
            raise PublishError(f"cannot connect to MQTT broker {s.mqtt_host}:{s.mqtt_port}: {exc}") from exc
        self.client.loop_start()
        deadline = time.monotonic() + timeout
        while not self._connected.wait(0.1):
            if self._connect_error or time.monotonic() > deadline:
                self.client.loop_stop()
                why = self._connect_error or f"no CONNACK within {timeout:.0f} s"
                raise PublishError(f"MQTT broker {s.mqtt_host}:{s.mqtt_port} refused the connection: {why}")
        return self

    def close(self, timeout: float = 30.0) -> bool:
        ok = self.flush(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        return ok

    # -- publishing

    @property
    def unacked(self) -> int:
        with self._cond:
            return len(self._pending)

    def _wait_below(self, limit: int) -> None:
        """Block until fewer than ``limit`` messages are unacknowledged (raise if acks stop coming)."""
        with self._cond:
            last, last_change = self.acked, time.monotonic()
            while len(self._pending) >= limit:
                self._cond.wait(0.5)
                if self.acked != last:
                    last, last_change = self.acked, time.monotonic()
                elif time.monotonic() - last_change > self.ack_timeout:
                    raise PublishError(
                        f"broker acknowledged nothing for {self.ack_timeout:.0f} s ({len(self._pending)} unacknowledged)")

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        """Publish one message at QoS 1, keeping the unacknowledged window bounded."""
        for attempt in range(100):
            if len(self._pending) >= self.max_unacked:
                self._wait_below(self.max_unacked)
            info = self.client.publish(topic, payload, qos=self.qos, retain=retain)
            rc = info.rc
            if rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                if self.qos > 0:
                    with self._cond:
                        if info.mid in self._early:
                            self._early.discard(info.mid)
                        else:
                            self._pending.add(info.mid)
                self.messages += 1
                return
            if rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                # the message id is still in use or paho's queue is full: let acknowledgements drain
                self._wait_below(max(1, min(self.max_unacked, len(self._pending)) // 2 or 1))
                time.sleep(0.01 * attempt)
                continue
            raise PublishError(f"publish to {topic} failed: {mqtt.error_string(rc)}")
        raise PublishError(f"publish to {topic} kept failing with MQTT_ERR_QUEUE_SIZE")

    def _publish_all(self, msgs: list[tuple[str, Any]]) -> None:
        for topic, payload in msgs:
            self.publish(topic, orjson.dumps(payload))

    def send(self, readings: list[Reading]) -> None:
        self._publish_all(self.batcher.add(readings))
        self._publish_all(self.batcher.due())
        self.readings += len(readings)

    def poll(self) -> None:
        """Send gateway batches that have lingered long enough."""
        self._publish_all(self.batcher.due())

    def flush(self, timeout: float | None = None) -> bool:
        """Send open batches, then wait until every message is PUBACKed; False on timeout."""
        self._publish_all(self.batcher.drain())
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(0.5 if left is None else min(0.5, left))
        return True
