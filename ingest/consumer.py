"""The MQTT side of ingest, after Telegraf's ``mqtt_consumer``.

* A persistent session (clean session false, fixed client id) at QoS 1, so
  the broker keeps what ingest has not yet acknowledged, across restarts.
* Manual acknowledgement: the writer acks a message only after its readings
  are written (or dead-lettered).
* Subscribes in ``on_connect``, so every reconnect resubscribes.
* Reconnects with a capped backoff (paho's own loop, 1 s to 30 s).
* Each connection has a generation number; acknowledgements owed to an
  older connection are dropped, since the broker redelivers those messages.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt

from ingest.writer import Pending

log = logging.getLogger("lifewatch.ingest")

OnMessage = Callable[[int, int, int, str, bytes, int], None]  # gen, mid, qos, topic, payload, arrival_ns


class MqttConsumer:
    def __init__(self, settings, topic_filter: str, on_message: OnMessage, on_connected: Callable[[bool], None] | None = None):  # noqa: ANN001
        self.settings = settings
        self.topic_filter = topic_filter
        self._on_message_cb = on_message
        self._on_connected = on_connected
        self.gen = 0
        self.connected = False
        self._stopping = False
        self.subscribed = threading.Event()  # set once the broker has granted the subscription
        self.status_topic = f"{settings.topic_prefix}/platform/ingest/{settings.mqtt_client_id}/status"
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.mqtt_client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            manual_ack=True,
        )
        if settings.mqtt_username:
            c.username_pw_set(settings.mqtt_username, settings.mqtt_password or None)
        c.reconnect_delay_set(min_delay=1, max_delay=30)
        c.will_set(self.status_topic, b"offline", qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: self.subscribed.set()
        self.client = c

    def start(self) -> None:
        self.client.connect_async(self.settings.mqtt_host, self.settings.mqtt_port, keepalive=self.settings.mqtt_keepalive)
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect without unsubscribing: the persistent session keeps collecting."""
        self._stopping = True
        try:
            if self.connected:
                self.client.publish(self.status_topic, b"stopped", qos=1, retain=True)
            self.client.disconnect()
        finally:
            self.client.loop_stop()

    def ack(self, batch: list[Pending]) -> None:
        gen = self.gen
        for p in batch:
            if p.qos > 0 and p.gen == gen:
                self.client.ack(p.mid, p.qos)

    # ------------------------------------------------------------ paho callbacks

    def _on_connect(self, client: mqtt.Client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        if reason_code.is_failure:
            log.error("MQTT connect refused: %s", reason_code)
            return
        self.gen += 1
        self.connected = True
        client.subscribe(self.topic_filter, qos=1)
        client.publish(self.status_topic, b"online", qos=1, retain=True)
        log.info(
            "connected to mqtt://%s:%d as %s (session present: %s), subscribed to %s",
            self.settings.mqtt_host, self.settings.mqtt_port, self.settings.mqtt_client_id,
            flags.session_present, self.topic_filter,
        )
        if self._on_connected:
            self._on_connected(True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:  # noqa: ANN001
        was = self.connected
        self.connected = False
        if was and not self._stopping:
            log.warning("MQTT disconnected (%s); reconnecting with backoff", reason_code)
        if self._on_connected:
            self._on_connected(False)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:  # noqa: ANN001
        arrival = time.time_ns()
        try:
            topic = msg._topic.decode("utf-8", errors="replace")  # noqa: SLF001 - the property raises on bad UTF-8
        except Exception:  # noqa: BLE001
            topic = "<undecodable>"
        self._on_message_cb(self.gen, msg.mid, msg.qos, topic, msg.payload, arrival)
