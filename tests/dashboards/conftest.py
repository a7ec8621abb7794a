"""A session-wide InfluxDB database holding a simulated hour of the demo city, alert state changes and the derived state.

Built once (about 2 s) on the session's own influxd (tests/conftest.py) and
dropped at the end; tests that change data use the function-scoped
``influx`` fixture instead.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from dashboards.materialize import Materializer, RunReport
from lifewatch.influx import InfluxClient
from lifewatch.lineprotocol import quote_ident
from tests.dashboards.support import Seed, seed


@pytest.fixture(scope="session")
def seeded(influxd) -> Iterator[tuple[Seed, RunReport]]:  # noqa: ANN001 - tests.conftest.Influxd
    db = f"t_dash_{uuid.uuid4().hex[:10]}"
    client = InfluxClient(influxd.url, db, timeout=30.0)
    client.create_database()
    try:
        now = time.time_ns()
        s = seed(client, now)
        m = Materializer(client, s.city)
        m.seed_metadata()
        report = m.run_once(now)
        yield s, report
    finally:
        client.query_all(f"DROP DATABASE {quote_ident(db)}", db="", method="POST")
        client.close()
