"""Support of the console's browser tests: the real API under uvicorn, and Debian's headless Chromium.

* :class:`LiveServer`: ``uvicorn.Server`` in a thread, on a socket bound to a free
  127.0.0.1 port before the thread starts (no race for the port); stopped by
  ``should_exit``, with a short graceful timeout because /api/stream answers
  never end by themselves.
* :func:`launch_chromium`: Playwright's driver with ``/usr/bin/chromium`` (no
  ``playwright install``, no browser download).  A missing Chromium FAILS the
  test with the install line, it does not skip (``make console-deps`` installs it).
* :func:`seed`: a migrated SQLite file with users (crew of units A and B, a second
  crew of A, an operator) and alerts of both units; times on a :class:`FakeClock`.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from alerts.clock import FakeClock
from alerts.config import AlertSettings
from alerts.db import Store, make_engine, migrate
from alerts.intake import AlertIntake
from alerts.states import Role
from alerts.types import Actor
from alerts.users import add_user, issue_token
from lifewatch.city import load_city
from lifewatch.levels import Level
from tests.alerts.helpers import UNIT_A, UNIT_B, WALL0, det

CHROMIUM = os.environ.get("LIFEWATCH_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
ADMIN = Actor("test-admin", Role.ADMIN)


class LiveServer:
    """``with LiveServer(app) as url:`` the app served at ``url`` (``http://127.0.0.1:<port>``)."""

    def __init__(self, app: Any):
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, name="console-uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


def launch_chromium(playwright: Any) -> Any:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"the console tests need Debian's Chromium at {CHROMIUM}: `make console-deps` "
            "(as root: apt-get install -y chromium), or set LIFEWATCH_TEST_CHROMIUM",
            pytrace=False,
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@dataclass
class Seeded:
    db_url: str
    store: Store
    clock: FakeClock
    settings: AlertSettings
    intake: AlertIntake
    tokens: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)


# Evidence as the threshold stage and the burst rule write it (detectors/thresholds.py, detectors/rules).
PRESSURE_EVIDENCE = {
    "value": 0.121,
    "crossed": {"yellow": 0.14},
    "limits": {"yellow": 0.14},
    "peak": 0.118,
    "peak_is": "min",
    "op": "<",
    "source": "CJJ 58-2007 §3.1.3: network end pressure >= 0.14 MPa",
    "level_source": "CJJ 58-2007 §3.1.3",
    "rule_set": "default",
}
BURST_EVIDENCE = {
    "value": 412.5,
    "baseline": 164.2,
    "pressure_drops": 2,
    "related_sensors": ["w-d01-002", "w-d01-003"],
    "source": "domain.md §1.3: flow up and >= 2 pressures down within 10 min",
}


def seed(tmp: Path) -> Seeded:
    path = tmp / "console.sqlite"
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    migrate(engine)
    store = Store(engine)
    clock = FakeClock(WALL0)
    settings = AlertSettings(db_url=url, auto_migrate=False, stream_poll=0.05, tick_interval=0)
    tokens = {}
    with store.write() as s:
        for name, role, unit in (
            ("crew-a", Role.CREW, UNIT_A),
            ("crew-a2", Role.CREW, UNIT_A),
            ("crew-b", Role.CREW, UNIT_B),
            ("operator", Role.OPERATOR, None),
        ):
            add_user(s, name, role, unit, ADMIN, clock())
            tokens[name] = issue_token(s, name, ADMIN, clock())[1]
    intake = AlertIntake(store, load_city(), settings, clock)
    intake.emit(
        [
            det("end_pressure_low", t=0, level=Level.ORANGE, sensors=("w-d01-002",), evidence=PRESSURE_EVIDENCE),
            det("water_burst", t=30, level=Level.RED, sensors=("w-d01-001",), detector="water_burst", evidence=BURST_EVIDENCE),
            det("end_pressure_low", t=10, level=Level.YELLOW, sensors=("w-d02-004",), district="d02", asset="dma-d02-1",
                evidence=PRESSURE_EVIDENCE),
            det("voltage_low", t=40, lifeline="power", sensors=("p-d01-001",), asset="fdr-d01-1", level=Level.YELLOW,
                evidence={"value": 198.0, "nominal": 220.0, "source": "GB/T 12325-2008"}),
        ]
    )
    from sqlalchemy import select

    from alerts.models import Alert

    with store.read() as s:
        ids = {(a.kind, a.level): a.id for a in s.scalars(select(Alert))}
    named = {
        "orange": ids[("end_pressure_low", Level.ORANGE)],
        "red": ids[("water_burst", Level.RED)],
        "yellow": ids[("end_pressure_low", Level.YELLOW)],
        "power": ids[("voltage_low", Level.YELLOW)],
    }
    return Seeded(url, store, clock, settings, intake, tokens, named)
