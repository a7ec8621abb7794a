"""Where detections go: the small interface between detectors and the rest of the platform.

Detectors never import ``alerts``; the alert queue (and anything else) only
has to implement :class:`DetectionSink`.  :class:`MqttDetectionPublisher`
publishes every detection as JSON on
``<prefix>/detections/<lifeline>/<kind>`` at QoS 1.
"""

from __future__ import annotations

import logging
import time
from typing import Protocol

import orjson

from detectors.events import Detection

log = logging.getLogger("lifewatch.detectors")


class DetectionSink(Protocol):
    def emit(self, detections: list[Detection]) -> None:
        """Take a batch of detections, in event-time order.  Must not raise for one bad item."""


def detection_topic(prefix: str, d: Detection) -> str:
    return f"{prefix}/detections/{d.lifeline}/{d.kind}"


class MqttDetectionPublisher:
    """Publishes detections through an existing paho client (ingest's own connection)."""

    def __init__(self, client, prefix: str = "lifelines", qos: int = 1):  # noqa: ANN001 - paho.mqtt.client.Client
        self.client = client
        self.prefix = prefix
        self.qos = qos
        self.published = 0

    def emit(self, detections: list[Detection]) -> None:
        import paho.mqtt.client as mqtt

        for d in detections:
            payload = orjson.dumps(d.to_json())
            info = self.client.publish(detection_topic(self.prefix, d), payload, qos=self.qos)
            while info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:  # paho's queue is full: wait, never drop
                time.sleep(0.05)
                info = self.client.publish(detection_topic(self.prefix, d), payload, qos=self.qos)
            if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
                log.error("publishing detection %s failed: %s", d.id, mqtt.error_string(info.rc))
            self.published += 1


class ListSink:
    """Collects detections in memory (backtests, tests)."""

    def __init__(self) -> None:
        self.items: list[Detection] = []

    def emit(self, detections: list[Detection]) -> None:
        self.items.extend(detections)
