"""Alembic environment of the alert store.

Run through :func:`alerts.db.migrate` (which hands over a connection in
``config.attributes["connection"]``), or by hand with a ``sqlalchemy.url``
main option (``alembic -x`` is not used).  Online mode only: the migrations
create triggers that must run against the real database.
"""

from __future__ import annotations

from alembic import context

from alerts.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    from alerts.db import make_engine

    engine = make_engine(config.get_main_option("sqlalchemy.url"))
    try:
        with engine.execution_options(lw_write=True).begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


def _run(connection) -> None:  # noqa: ANN001 - sqlalchemy.engine.Connection
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("the alert store migrations run online only (they create triggers)")
run()
