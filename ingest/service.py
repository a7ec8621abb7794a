"""``lifewatch ingest``: MQTT -> validate -> line protocol -> InfluxDB, wired together.

The message path (one typed message per hop)::

    MQTT message --parse_message--> Reading / Reject --encode--> line
        --BatchWriter--> InfluxDB /write  (or the dead-letter store) --> ack
"""

from __future__ import annotations

import logging
import pickle
import signal
import threading
import time

from ingest.consumer import MqttConsumer
from ingest.deadletter import DeadLetterStore
from ingest.metrics import IngestMetrics
from ingest.writer import BatchWriter, Pending
from lifewatch.influx import InfluxClient, InfluxError, InfluxQueryError
from lifewatch.lifelines import load_lifelines
from lifewatch.lineprotocol import encode_reading
from lifewatch.model import Limits, Reading, Reject, parse_message
from lifewatch.settings import Settings

log = logging.getLogger("lifewatch.ingest")


class Ingest:
    """One ingest process: consumer + writer + dead letters + metrics."""

    def __init__(self, settings: Settings, topic_filter: str | None = None, metrics: IngestMetrics | None = None):
        self.settings = settings
        self.topic_filter = topic_filter or f"{settings.topic_prefix}/+/+/+/reading"
        self.lifelines = load_lifelines()
        self.limits = Limits.from_settings(settings)
        self.metrics = metrics or IngestMetrics()
        self.influx = InfluxClient.from_settings(settings)
        self.deadletters = DeadLetterStore.from_settings(settings)
        self.consumer = MqttConsumer(settings, self.topic_filter, self._on_message, self._on_connected)
        self.writer = BatchWriter(
            self.influx,
            self.deadletters,
            self.consumer.ack,
            self.metrics,
            batch_size=settings.batch_size,
            flush_interval=settings.flush_interval,
            retry_initial=settings.retry_initial,
            retry_max=settings.retry_max,
            max_pending_points=max(2 * settings.mqtt_max_inflight, 2 * settings.batch_size),
        )
        self._server = None
        self.pipeline = None
        self.sinks: list = []
        self._checkpoint_at = 0.0
        self._stop = threading.Event()
        if settings.detectors:
            self._setup_detectors()

    # ------------------------------------------------------------ detectors

    @property
    def detector_state_path(self):  # noqa: ANN201
        return self.settings.state_dir / "detectors" / "state.npz"

    def _setup_detectors(self) -> None:
        from detectors.build import build_from_settings
        from detectors.sinks import MqttDetectionPublisher
        from lifewatch.city import load_city

        city = load_city(self.settings.city_file or None)
        self.pipeline = build_from_settings(self.settings, city)
        if self.detector_state_path.exists():
            try:
                self.pipeline.load(self.detector_state_path)
                log.info("detector state restored from %s", self.detector_state_path)
            except (ValueError, KeyError, OSError, pickle.UnpicklingError) as exc:
                # a checkpoint from another version of the detectors: keep it aside and learn afresh
                aside = self.detector_state_path.with_suffix(f".incompatible-{time.strftime('%Y%m%dT%H%M%S')}.npz")
                self.detector_state_path.replace(aside)
                from detectors.build import build_from_settings as rebuild

                self.pipeline = rebuild(self.settings, city)
                log.warning("detector state in %s does not fit these detectors (%s); kept as %s, learning afresh",
                            self.detector_state_path, exc, aside.name)
        self.sinks.append(MqttDetectionPublisher(self.consumer.client, self.settings.topic_prefix))
        if self.settings.alert_intake:
            from alerts.intake import open_intake

            self.sinks.append(open_intake(self.settings, city=city))
        self.writer.hooks.append(self._detect)
        self._checkpoint_at = time.monotonic() + self.settings.detector_checkpoint

    def add_sink(self, sink) -> None:  # noqa: ANN001 - a detectors.sinks.DetectionSink
        self.sinks.append(sink)

    def _detect(self, readings: list[Reading]) -> None:
        t0 = time.perf_counter()
        detections = self.pipeline.process(readings)
        self.metrics.detector_seconds.observe(time.perf_counter() - t0)
        if detections:
            for d in detections:
                self.metrics.detections.labels(d.lifeline, d.kind, d.state).inc()
            for sink in self.sinks:
                self._emit(sink, detections)
        if time.monotonic() >= self._checkpoint_at:
            self.save_detector_state()

    def _emit(self, sink, detections: list) -> None:  # noqa: ANN001
        """Hand detections to a sink, retrying with capped backoff: the batch is not acked until it is taken.

        Sinks are idempotent on a detection's id (the alert intake treats a
        redelivered detection as a repeat), so retrying is safe.  Gives up only
        when ingest is stopping; the batch then stays on the broker.
        """
        delay = 0.5
        while True:
            try:
                sink.emit(detections)
                if delay > 0.5:
                    self.metrics.backpressure.labels("detection_sink").set(0)
                return
            except Exception:  # noqa: BLE001 - e.g. the alert database is down
                log.exception("detection sink %r failed; retrying in %.1f s (acks withheld)", sink, delay)
                self.metrics.backpressure.labels("detection_sink").set(1)
                if self._stop.wait(delay):
                    raise
                delay = min(delay * 2, 30.0)

    def save_detector_state(self) -> None:
        if self.pipeline is not None:
            self.pipeline.save(self.detector_state_path)
            self._checkpoint_at = time.monotonic() + self.settings.detector_checkpoint

    def _on_connected(self, up: bool) -> None:
        self.metrics.connected.set(1 if up else 0)

    def _on_message(self, gen: int, mid: int, qos: int, topic: str, payload: bytes, arrival_ns: int) -> None:
        try:
            readings, rejects = parse_message(topic, payload, self.lifelines, arrival_ns, self.limits, self.settings.topic_prefix)
            lines = [encode_reading(r) for r in readings]
        except Exception as exc:  # noqa: BLE001 - nothing may crash ingest or vanish
            log.exception("unexpected error parsing a message on %s", topic)
            readings, lines, rejects = [], [], [Reject("internal_error", f"{type(exc).__name__}: {exc}")]
        self.writer.submit(Pending(gen, mid, qos, topic, payload, arrival_ns, readings, lines, rejects))

    def ensure_database(self, stop: threading.Event, timeout: float | None = None) -> bool:
        """Create the database, waiting for InfluxDB with a capped backoff."""
        delay, t0 = 0.5, time.monotonic()
        while not stop.is_set():
            try:
                self.influx.create_database()
                return True
            except InfluxQueryError as exc:
                # a non-admin user may not CREATE DATABASE; that is fine when the database is already there
                if "admin" in str(exc) and self._database_listed():
                    return True
                raise
            except InfluxError as exc:
                if timeout is not None and time.monotonic() - t0 > timeout:
                    raise
                log.warning("InfluxDB at %s not ready (%s); retrying in %.1f s", self.settings.influx_url, exc, delay)
                stop.wait(delay)
                delay = min(delay * 2, 10.0)
        return False

    def _database_listed(self) -> bool:
        try:
            series = self.influx.query("SHOW DATABASES", db="")
        except InfluxError:
            return False
        return any(row and row[0] == self.settings.influx_db for s in series for row in s.values)

    def start(self, stop: threading.Event) -> None:
        self._stop = stop
        self.metrics.deadletter_pending.set(self.deadletters.pending)
        self._server = self.metrics.serve(self.settings.metrics_addr)
        self.ensure_database(stop)
        self.writer.start()
        self.consumer.start()

    def stop(self) -> None:
        """Graceful: flush and acknowledge everything buffered, then disconnect."""
        self.writer.stop(drain=True)
        self.save_detector_state()
        self.consumer.stop()
        if self._server is not None:
            self._server.shutdown()
        self.deadletters.close()
        self.influx.close()


def run(settings: Settings, duration: float | None = None, topic_filter: str | None = None, stop: threading.Event | None = None) -> int:
    stop = stop or threading.Event()
    ingest = Ingest(settings, topic_filter)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    ingest.start(stop)
    log.info(
        "ingest running: mqtt://%s:%d %s -> %s db=%s; metrics on %s",
        settings.mqtt_host, settings.mqtt_port, ingest.topic_filter, settings.influx_url, settings.influx_db,
        settings.metrics_addr or "(off)",
    )
    stop.wait(duration)
    log.info("stopping: flushing %d buffered points", ingest.writer.pending_points)
    ingest.stop()
    log.info("ingest stopped: %d points written, %d dead letters", ingest.writer.written_total, ingest.writer.deadlettered_total)
    return 0


def cli(args, settings: Settings) -> int:  # noqa: ANN001
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(settings, duration=args.duration, topic_filter=args.topic)
