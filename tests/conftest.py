"""Shared fixtures: the project's OWN Mosquitto and InfluxDB, on free ports, per test session.

The tests never touch the machine's broker on 1883 or a database on 8086.
Both services are the classes ``lifewatch services up`` uses
(:mod:`lifewatch.services`), started in ``tmp_path_factory`` directories.

* ``broker`` (session): ``.host``, ``.port``, ``.workdir``, ``.log_path``,
  ``.process`` (a :class:`~lifewatch.services.MosquittoService` with
  ``start/stop/restart/kill/freeze/thaw/wait_healthy``).  Demo mode
  (anonymous on loopback), ``max_queued_messages 0``,
  ``max_inflight_messages 20000``, persistence on.
* ``influxd`` (session): ``.url``, ``.port``, ``.rpc_port``, ``.workdir``,
  ``.log_path``, ``.process`` (an :class:`~lifewatch.services.InfluxdService`).
* ``settings`` (function): :class:`~lifewatch.settings.Settings` pointing at
  both, with its own state dir, its own (already created) database
  ``t_<hex>`` and its own MQTT client id ``lw-test-<hex>``; the database is
  dropped after the test.
* ``influx`` (function): an :class:`~lifewatch.influx.InfluxClient` on that
  database, closed after the test.

Missing binaries are installed with :func:`lifewatch.services.install_binaries`
(apt-get as root); if that is impossible the fixtures fail, never skip.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from lifewatch.influx import InfluxClient, InfluxUnavailable
from lifewatch.lineprotocol import quote_ident
from lifewatch.services import (
    InfluxdService,
    ManagedProcess,
    MosquittoService,
    PortInUse,
    ServiceError,
    ServiceUnhealthy,
    free_port,
    install_binaries,
    missing_binaries,
)
from lifewatch.settings import Settings


def pytest_configure(config: pytest.Config) -> None:
    """Give every pytest session its own base temp dir.

    pytest's default ``/tmp/pytest-of-<user>/pytest-N`` rotation deletes the
    oldest session dirs, including those of a concurrent session whose
    services still live in them; a private dir avoids that.
    """
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        import tempfile

        config.option.basetemp = tempfile.mkdtemp(prefix="lifewatch-pytest-")


BROKER_MAX_INFLIGHT = 20000
BROKER_MAX_QUEUED = 0
START_TIMEOUT = 15.0

P = TypeVar("P", bound=ManagedProcess)


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    workdir: Path
    log_path: Path
    process: MosquittoService


@dataclass(frozen=True)
class Influxd:
    url: str
    port: int
    rpc_port: int
    workdir: Path
    log_path: Path
    process: InfluxdService


def _ensure_binaries() -> None:
    if not missing_binaries():
        return
    try:
        install_binaries()
    except ServiceError as exc:
        pytest.fail(f"Mosquitto/InfluxDB binaries are needed for the tests: {exc}", pytrace=False)
    still = missing_binaries()
    if still:
        pytest.fail(f"still missing after install_binaries(): {', '.join(still)}", pytrace=False)


def _start(make: Callable[[], P], attempts: int = 3) -> P:
    """Start a service on fresh free ports; retry if another process grabbed a port meanwhile."""
    last: Exception | None = None
    for _ in range(attempts):
        proc = make()
        try:
            proc.start()
            proc.wait_healthy(START_TIMEOUT)
            return proc
        except PortInUse as exc:
            last = exc
        except ServiceUnhealthy as exc:
            proc.stop()
            last = exc
            if "address already in use" not in exc.log_tail.lower():
                break
    pytest.fail(f"could not start a test service: {last}", pytrace=False)


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    _ensure_binaries()
    workdir = tmp_path_factory.mktemp("mosquitto")
    proc = _start(
        lambda: MosquittoService(
            workdir,
            free_port(),
            allow_anonymous=True,
            max_inflight=BROKER_MAX_INFLIGHT,
            max_queued=BROKER_MAX_QUEUED,
            persistence=True,
        )
    )
    try:
        yield Broker(proc.host, proc.port, proc.workdir, proc.log_path, proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    _ensure_binaries()
    workdir = tmp_path_factory.mktemp("influxd")
    proc = _start(lambda: InfluxdService(workdir, free_port(), free_port()))
    try:
        yield Influxd(proc.url, proc.http_port, proc.rpc_port, proc.workdir, proc.log_path, proc)
    finally:
        proc.stop()


@pytest.fixture
def settings(broker: Broker, influxd: Influxd, tmp_path: Path) -> Iterator[Settings]:
    tag = uuid.uuid4().hex[:12]
    s = Settings(
        state_dir=tmp_path / "state",
        demo=True,
        mqtt_host=broker.host,
        mqtt_port=broker.port,
        mqtt_client_id=f"lw-test-{tag}",
        mqtt_max_inflight=BROKER_MAX_INFLIGHT,
        mqtt_max_queued=BROKER_MAX_QUEUED,
        influx_url=influxd.url,
        influx_rpc_port=influxd.rpc_port,
        influx_db=f"t_{tag}",
        influx_timeout=10.0,
        metrics_addr="",
    )
    s.validate()
    with InfluxClient.from_settings(s) as admin:
        admin.create_database()
        try:
            yield s
        finally:
            try:
                admin.query_all(f"DROP DATABASE {quote_ident(s.influx_db)}", db="", method="POST")
            except InfluxUnavailable:
                pass  # a fault-injection test left influxd down; its data dies with the session


@pytest.fixture
def influx(settings: Settings) -> Iterator[InfluxClient]:
    client = InfluxClient.from_settings(settings)
    try:
        yield client
    finally:
        client.close()
