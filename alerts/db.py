"""Engines, migrations and transactions of the alert store; SQLAlchemy errors stop here.

* :func:`make_engine` turns a URL into an engine.  SQLite (the embedded
  default) gets WAL, ``synchronous=FULL`` (a committed transition survives a
  power cut), foreign keys and a busy timeout; ``postgresql://`` URLs get the
  psycopg 3 driver.
* :func:`migrate` runs ``alembic upgrade head`` on ``alerts/migrations``.
* :class:`Store` hands out sessions: :meth:`Store.read` (closed at the end,
  which ends its transaction) and :meth:`Store.write` (committed at the end).  On SQLite a write
  transaction starts with ``BEGIN IMMEDIATE``: writers queue for the lock
  instead of failing with "database is locked" when a read-then-write
  transaction meets another writer.  On PostgreSQL (READ COMMITTED) the
  compare-and-set ``UPDATE ... WHERE version = :expected`` does the same job.

Every SQLAlchemy/DBAPI exception leaving a :class:`Store` session becomes a
:class:`~alerts.errors.StoreError` (or :class:`~alerts.errors.AuditImmutable`
when a trigger refused to change the audit trail).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, exc
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from alerts.errors import AlertError, AuditImmutable, StoreError

log = logging.getLogger("lifewatch.alerts")

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalise_url(url: str | URL) -> URL:
    """``postgresql://`` and ``postgres://`` mean psycopg 3; everything else is taken as given."""
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres"):
        u = u.set(drivername="postgresql+psycopg")
    return u


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    u = normalise_url(url)
    if u.get_backend_name() == "sqlite":
        if u.database and u.database != ":memory:":
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(u, pool_pre_ping=True, **kwargs)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred and skips SAVEPOINTs)
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cur.close()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("lw_write") else "BEGIN")


def migrate(target: str | URL | Engine) -> None:
    """``alembic upgrade head`` on the alert store (a URL or an engine)."""
    from alembic import command
    from alembic.config import Config

    engine = target if isinstance(target, Engine) else make_engine(target)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.execution_options(lw_write=True).begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except exc.SQLAlchemyError as e:
        raise StoreError(f"migrating the alert store failed: {_reason(e)}") from e
    finally:
        if engine is not target:
            engine.dispose()


@contextmanager
def translate_errors() -> Iterator[None]:
    """Turn SQLAlchemy exceptions into the queue's own (the boundary of :mod:`alerts`)."""
    try:
        yield
    except AlertError:
        raise
    except exc.SQLAlchemyError as e:
        reason = _reason(e)
        if "append-only" in reason:
            raise AuditImmutable(reason) from e
        raise StoreError(f"alert store: {reason}") from e


def _reason(e: exc.SQLAlchemyError) -> str:
    orig = getattr(e, "orig", None)
    return str(orig).strip().splitlines()[0] if orig is not None and str(orig).strip() else e.__class__.__name__


class Store:
    """The engine plus the two kinds of unit of work the queue uses."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._read = sessionmaker(engine, expire_on_commit=False)
        self._write = sessionmaker(engine.execution_options(lw_write=True), expire_on_commit=False)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reading; closing it ends the transaction and leaves loaded objects usable."""
        with translate_errors(), self._read() as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        with translate_errors(), self._write() as s:
            try:
                yield s
                s.commit()
            except BaseException:
                s.rollback()
                raise

    def session(self, write: bool) -> Session:
        """A bare session (the API's per-request dependency commits it itself)."""
        return (self._write if write else self._read)()

    def dispose(self) -> None:
        self.engine.dispose()


def open_store(settings: Any) -> Store:
    """The store of :class:`~alerts.config.AlertSettings`: engine on ``db_url``, migrated when ``auto_migrate``."""
    engine = make_engine(settings.db_url)
    if settings.auto_migrate:
        migrate(engine)
    return Store(engine)
