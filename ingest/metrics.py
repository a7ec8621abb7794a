"""Ingest's own metrics, in the Prometheus text format on ``/metrics``.

Rates and drops are metrics, not log lines.  Counters are bumped once per
batch (not per message) to keep them off the hot path.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.messages = Counter("lifewatch_ingest_messages_received", "MQTT messages received", registry=r)
        self.readings = Counter("lifewatch_ingest_readings_received", "valid readings received", ["lifeline"], registry=r)
        self.written = Counter("lifewatch_ingest_points_written", "points written to InfluxDB", ["lifeline"], registry=r)
        self.rejected = Counter("lifewatch_ingest_rejected", "readings or messages rejected, by reason", ["reason"], registry=r)
        self.deadletters = Counter("lifewatch_ingest_deadletters", "items stored in the dead-letter store", registry=r)
        self.write_errors = Counter("lifewatch_ingest_write_errors", "failed InfluxDB writes, by kind", ["kind"], registry=r)
        self.retries = Counter("lifewatch_ingest_write_retries", "InfluxDB write retries", registry=r)
        self.batch_seconds = Histogram(
            "lifewatch_ingest_batch_seconds",
            "time to write one batch (including retries)",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=r,
        )
        self.batch_points = Histogram(
            "lifewatch_ingest_batch_points", "points per batch", buckets=(1, 10, 100, 500, 1000, 2500, 5000, 10000, 20000), registry=r
        )
        self.buffer_depth = Gauge("lifewatch_ingest_buffer_depth", "points waiting to be written", registry=r)
        self.buffer_messages = Gauge("lifewatch_ingest_buffer_messages", "messages waiting to be acknowledged", registry=r)
        self.lag = Gauge("lifewatch_ingest_lag_seconds", "arrival time minus event time of the newest written reading", registry=r)
        self.deadletter_pending = Gauge("lifewatch_deadletter_pending", "letters in the dead-letter store", registry=r)
        self.backpressure = Gauge(
            "lifewatch_ingest_backpressure", "1 while ingest withholds acknowledgements (store full / InfluxDB down)", ["cause"], registry=r
        )
        self.detections = Counter(
            "lifewatch_detections", "detections emitted by the streaming detectors", ["lifeline", "kind", "state"], registry=r
        )
        self.detector_seconds = Histogram(
            "lifewatch_detector_batch_seconds", "time the detector pipeline takes per batch",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5), registry=r,
        )
        self.connected = Gauge("lifewatch_ingest_mqtt_connected", "1 while connected to the broker", registry=r)

    def serve(self, addr: str) -> object | None:
        """Serve /metrics on ``host:port``; returns the server (or None when addr is empty)."""
        if not addr:
            return None
        host, port = addr.rsplit(":", 1)
        server, _thread = start_http_server(int(port), addr=host, registry=self.registry)
        return server
