from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ingest.service import Ingest
from lifewatch.settings import Settings


class RunningIngest:
    """In-process ingest; entering waits until its subscription is granted."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.stop = threading.Event()
        self.ingest = Ingest(settings)

    def __enter__(self) -> RunningIngest:
        self.ingest.start(self.stop)
        assert self.ingest.consumer.subscribed.wait(15), "ingest did not subscribe within 15 s"
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.ingest.stop()


@pytest.fixture
def ingest_running(settings: Settings) -> Iterator[RunningIngest]:
    """In-process ingest on the test's settings (small batches, fast flushes)."""
    s = settings.replace(batch_size=1000, flush_interval=0.2)
    with RunningIngest(s) as ing:
        yield ing
