"""MQTT: every alert notification on ``<prefix>/alerts/<unit>/<level>`` at QoS 1 (paho-mqtt 2.x).

The payload is :meth:`Notice.doc` as JSON (``outbox_id`` and
``idempotency_key`` inside: MQTT 3.1.1 has no headers).  A notice counts as
delivered only when the broker's PUBACK came back; paho's return codes are
checked: ``MQTT_ERR_QUEUE_SIZE`` (paho's own queue full) waits and tries
again, ``MQTT_ERR_NO_CONN`` and a missing PUBACK are retried later by the
worker (the outbox row stays).  A PUBACK that was lost after the broker took
the message means the message is published twice: subscribers drop
duplicates by ``outbox_id``.

The client connects in the background (``connect_async`` + paho's loop
thread, which reconnects with a 1-30 s backoff), so a broker that is down at
start-up only delays deliveries.  Only notices about one alert (with a
level) go to MQTT: incident notices have no level for the topic.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import datetime
from typing import Any

import orjson
import paho.mqtt.client as mqtt

from alerts.notify.channel import DELIVERED, NOT_TRIED, Channel, Outcome, Route, retry
from alerts.notify.message import Notice

log = logging.getLogger("lifewatch.notify.mqtt")

QUEUE_FULL_PAUSE_S = 0.05


def topic_segment(text: str | None) -> str:
    """One topic level: no '/', '+', '#' or NUL; empty becomes '_'.

    >>> topic_segment("shz-water"), topic_segment("a/b+#"), topic_segment(None)
    ('shz-water', 'a_b__', '_')
    """
    if not text:
        return "_"
    return "".join("_" if ch in "/+#\x00" else ch for ch in text)


def alert_topic(prefix: str, n: Notice) -> str:
    return f"{prefix}/alerts/{topic_segment(n.unit or n.alert.get('unit'))}/{topic_segment(n.level_label)}"


class MqttChannel(Channel):
    name = "mqtt"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str = "",
        password: str = "",
        client_id: str = "",
        prefix: str = "lifelines",
        keepalive: int = 30,
        timeout: float = 10.0,
        max_inflight: int = 1000,
    ):
        self.host, self.port = host, port
        self.username, self._password = username, password
        self.client_id = client_id or f"lifewatch-notify-{os.getpid()}"
        self.prefix = prefix
        self.keepalive = keepalive
        self.timeout = timeout
        self.max_inflight = max_inflight
        self.route = Route(alerts_only=True)
        self._client: mqtt.Client | None = None
        self._connected = threading.Event()
        self.last_connect_error: str | None = None

    @classmethod
    def from_settings(cls, settings: Any, notify: Any) -> MqttChannel:
        return cls(
            settings.mqtt_host,
            settings.mqtt_port,
            username=settings.mqtt_username,
            password=settings.mqtt_password,
            client_id=notify.mqtt_client_id,
            prefix=settings.topic_prefix,
            keepalive=settings.mqtt_keepalive,
            timeout=notify.timeout,
        )

    def __repr__(self) -> str:
        return f"MqttChannel({self.host}:{self.port}, client_id={self.client_id!r}, user={self.username or '-'!r})"

    def open(self) -> None:
        if self._client is not None:
            return
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311, clean_session=True)
        if self.username:
            c.username_pw_set(self.username, self._password)
        c.max_inflight_messages_set(self.max_inflight)
        c.max_queued_messages_set(0)
        c.reconnect_delay_set(1, 30)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.connect_async(self.host, self.port, self.keepalive)
        c.loop_start()
        self._client = c

    def close(self) -> None:
        c, self._client = self._client, None
        if c is not None:
            c.disconnect()
            c.loop_stop()
        self._connected.clear()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001 - paho's signature
        if reason_code.is_failure:
            self.last_connect_error = f"broker refused the connection: {reason_code}"
            log.error("MQTT %s:%d: %s", self.host, self.port, self.last_connect_error)
            return
        self.last_connect_error = None
        self._connected.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        self._connected.clear()
        if reason_code != 0:
            log.warning("MQTT %s:%d disconnected (%s); paho reconnects", self.host, self.port, reason_code)

    def deliver(self, notices: list[Notice], now: datetime) -> list[Outcome]:
        if not notices:
            return []
        self.open()
        assert self._client is not None
        if not self._connected.wait(self.timeout):
            why = self.last_connect_error or f"not connected to the broker {self.host}:{self.port}"
            return [retry(why)] + [NOT_TRIED] * (len(notices) - 1)
        deadline = time.monotonic() + self.timeout
        sent: list[mqtt.MQTTMessageInfo] = []
        stop: Outcome | None = None
        for n in notices:
            info = self._publish(alert_topic(self.prefix, n), orjson.dumps(n.doc()), deadline)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                stop = retry(f"publish failed: {mqtt.error_string(info.rc)}")
                break
            sent.append(info)
        outcomes: list[Outcome] = []
        for info in sent:
            try:
                info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            except (RuntimeError, ValueError) as exc:
                outcomes.append(retry(f"no PUBACK: {exc}"))
                break
            if not info.is_published():
                outcomes.append(retry(f"no PUBACK within {self.timeout:g} s"))
                break
            outcomes.append(DELIVERED)
        else:
            if stop is not None:
                outcomes.append(stop)
        return outcomes + [NOT_TRIED] * (len(notices) - len(outcomes))

    def _publish(self, topic: str, payload: bytes, deadline: float) -> mqtt.MQTTMessageInfo:
        assert self._client is not None
        info = self._client.publish(topic, payload, qos=1)
        while info.rc == mqtt.MQTT_ERR_QUEUE_SIZE and time.monotonic() < deadline:  # paho's queue is full: wait
            time.sleep(QUEUE_FULL_PAUSE_S)
            info = self._client.publish(topic, payload, qos=1)
        return info
