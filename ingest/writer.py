"""The one writer: owns the buffer, batching, retries, dead-lettering and acknowledgements.

Telegraf's ``running_output`` pattern: sinks only write a batch and raise a
typed error; this class decides what happens next.

* Messages enter with :meth:`BatchWriter.submit` (from the MQTT thread),
  already parsed into encoded lines and rejects.
* A batch is flushed when it holds ``batch_size`` points or its oldest
  message has waited ``flush_interval`` seconds.
* Rejects go to the dead-letter store; points go to InfluxDB.  A 4xx is
  bisected down to the offending points, which are dead-lettered; a 5xx or a
  connection error is retried with capped exponential backoff.
* Only when every item of a message is in InfluxDB or in the dead-letter
  store is the message acknowledged to the broker, in arrival order.  Until
  then the broker keeps it, so a crash at any moment loses nothing.
* The buffer is bounded: ``submit`` blocks when it is full (the broker's
  in-flight window normally keeps it well below that).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from ingest.deadletter import DeadLetterFull, DeadLetterStore, Letter
from ingest.metrics import IngestMetrics
from lifewatch.influx import InfluxClient, InfluxRejected, InfluxUnavailable
from lifewatch.model import Reading, Reject, reading_to_json

log = logging.getLogger("lifewatch.ingest")


@dataclass(slots=True)
class Pending:
    """One MQTT message on its way: its readings (encoded) and its rejects."""

    gen: int  # connection generation: acks of an older connection are void
    mid: int
    qos: int
    topic: str
    payload: bytes
    arrival_ns: int
    readings: list[Reading] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    queued_at: float = 0.0  # time.monotonic() when submitted


Acker = Callable[[list[Pending]], None]
BatchHook = Callable[[list[Reading]], None]


class BatchWriter:
    def __init__(
        self,
        sink: InfluxClient,
        deadletters: DeadLetterStore,
        acker: Acker,
        metrics: IngestMetrics,
        *,
        batch_size: int = 5000,
        flush_interval: float = 0.5,
        retry_initial: float = 0.2,
        retry_max: float = 10.0,
        max_pending_points: int = 100_000,
    ):
        self.sink = sink
        self.deadletters = deadletters
        self.acker = acker
        self.metrics = metrics
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.max_pending_points = max(max_pending_points, batch_size)
        # called with the readings of each written batch, before its ack (detectors -> alert queue)
        self.hooks: list[BatchHook] = []
        self._queue: deque[Pending] = deque()
        self._points = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._drain_on_stop = True
        self._thread: threading.Thread | None = None
        self.written_total = 0
        self.deadlettered_total = 0

    # ------------------------------------------------------------ producer side

    def submit(self, p: Pending) -> None:
        n = len(p.lines)
        p.queued_at = time.monotonic()
        with self._cond:
            while self._points + n > self.max_pending_points and self._queue and not self._stop.is_set():
                self._cond.wait(0.5)
            self._queue.append(p)
            self._points += n
            if self._points >= self.batch_size:
                self._cond.notify_all()

    @property
    def pending_points(self) -> int:
        return self._points

    @property
    def pending_messages(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lifewatch-writer", daemon=True)
        self._thread.start()

    def stop(self, drain: bool = True, timeout: float = 60.0) -> None:
        """Stop the writer; with ``drain`` flush and acknowledge everything buffered first."""
        self._drain_on_stop = drain
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            if batch:
                self._process(batch)

    def _take(self) -> list[Pending] | None:
        with self._cond:
            while True:
                if self._stop.is_set():
                    if not self._drain_on_stop or not self._queue:
                        return None
                    break
                if self._points >= self.batch_size:
                    break
                if self._queue:
                    waited = time.monotonic() - self._queue[0].queued_at
                    remaining = self.flush_interval - waited
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining)
                else:
                    self._cond.wait(self.flush_interval)
            batch: list[Pending] = []
            points = 0
            while self._queue and (points < self.batch_size or not batch):
                p = self._queue[0]
                if batch and points + len(p.lines) > self.batch_size:
                    break
                self._queue.popleft()
                batch.append(p)
                points += len(p.lines)
            self._points -= points
            self._cond.notify_all()
            self.metrics.buffer_depth.set(self._points)
            self.metrics.buffer_messages.set(len(self._queue))
            return batch

    # ------------------------------------------------------------ one batch

    def _process(self, batch: list[Pending]) -> None:
        t0 = time.perf_counter()
        letters: list[Letter] = []
        for p in batch:
            for rj in p.rejects:
                letters.append(_letter_for_reject(p, rj))
        lines: list[str] = []
        owners: list[tuple[Pending, int]] = []
        for p in batch:
            for i, line in enumerate(p.lines):
                lines.append(line)
                owners.append((p, i))
        if lines and not self._write_all(lines, owners, letters):
            return  # stopping while InfluxDB is down: nothing acknowledged, the broker keeps it all
        if letters and not self._store_letters(letters):
            return
        readings: list[Reading] = [r for p in batch for r in p.readings]
        # hooks (the detectors and what they feed) run before the ack: a message is acknowledged only once
        # its detections are handed on; a hook raises only when it gives up (stopping), and then nothing is acked
        for hook in self.hooks:
            try:
                hook(readings)
            except Exception:  # noqa: BLE001 - the broker keeps the batch; a restart redelivers it
                log.exception("batch hook %r gave up; %d messages stay unacknowledged", hook, len(batch))
                return
        self.acker(batch)
        # counters, once per batch
        m = self.metrics
        m.messages.inc(len(batch))
        by_lifeline: dict[str, int] = {}
        reasons: dict[str, int] = {}
        newest_lag = None
        for p in batch:
            for r in p.readings:
                by_lifeline[r.lifeline] = by_lifeline.get(r.lifeline, 0) + 1
            if p.readings:
                newest_lag = (p.arrival_ns - p.readings[-1].ts_ns) / 1e9
            for rj in p.rejects:
                reasons[rj.reason] = reasons.get(rj.reason, 0) + 1
        for lid, n in by_lifeline.items():
            m.readings.labels(lid).inc(n)
        for reason, n in reasons.items():
            m.rejected.labels(reason).inc(n)
        rejected_points = sum(1 for lt in letters if lt.reason == "influx_rejected")
        written = len(lines) - rejected_points
        self.written_total += written
        for lid, n in by_lifeline.items():
            m.written.labels(lid).inc(n)
        if newest_lag is not None:
            m.lag.set(newest_lag)
        m.batch_points.observe(len(lines))
        m.batch_seconds.observe(time.perf_counter() - t0)

    def _write_all(self, lines: list[str], owners: list[tuple[Pending, int]], letters: list[Letter]) -> bool:
        """Write lines; bisect 4xx down to single points.  False only when stopping during an outage."""
        body = ("\n".join(lines)).encode("utf-8")
        delay = self.retry_initial
        while True:
            try:
                self.sink.write(body)
                self.metrics.backpressure.labels("influx_unavailable").set(0)
                return True
            except InfluxRejected as exc:
                self.metrics.write_errors.labels("rejected").inc()
                if len(lines) == 1:
                    p, i = owners[0]
                    r = p.readings[i]
                    letters.append(
                        Letter(p.topic, "influx_rejected", exc.message, orjson.dumps(reading_to_json(r)), None, p.arrival_ns)
                    )
                    self.metrics.rejected.labels("influx_rejected").inc()
                    return True
                mid = len(lines) // 2
                return self._write_all(lines[:mid], owners[:mid], letters) and self._write_all(
                    lines[mid:], owners[mid:], letters
                )
            except InfluxUnavailable as exc:
                self.metrics.write_errors.labels("unavailable").inc()
                self.metrics.backpressure.labels("influx_unavailable").set(1)
                if self._stop.is_set():
                    log.warning("stopping while InfluxDB is unavailable (%s): %d points stay on the broker", exc, len(lines))
                    return False
                log.warning("InfluxDB unavailable (%s); retrying in %.1f s", exc, delay)
                self.metrics.retries.inc()
                self._stop.wait(delay)
                delay = min(delay * 2, self.retry_max)

    def _store_letters(self, letters: list[Letter]) -> bool:
        delay = 1.0
        while True:
            try:
                self.deadletters.add_many(letters)
                self.deadlettered_total += len(letters)
                self.metrics.deadletters.inc(len(letters))
                self.metrics.deadletter_pending.set(self.deadletters.pending)
                self.metrics.backpressure.labels("deadletter_full").set(0)
                return True
            except DeadLetterFull as exc:
                # platform alert: the control room must learn that ingest is holding back
                self.metrics.backpressure.labels("deadletter_full").set(1)
                log.error("PLATFORM ALERT: %s; withholding acknowledgements", exc)
                if self._stop.is_set():
                    return False
                self._stop.wait(delay)
                delay = min(delay * 2, 30.0)


def _letter_for_reject(p: Pending, rj: Reject) -> Letter:
    if rj.index is None:
        payload = p.payload
    else:
        # one bad element of a batch: keep it as a one-element batch, so a re-drive is a valid message
        try:
            element = orjson.loads(p.payload)[rj.index]
            payload = orjson.dumps([element])
        except Exception:  # noqa: BLE001 - fall back to the whole message
            payload = p.payload
    return Letter(p.topic, rj.reason, rj.detail, payload, rj.index, p.arrival_ns)
