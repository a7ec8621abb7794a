"""Alembic environment of the notifier's own tables (``notify_deliveries``).

Separate from the queue's environment (``alerts/migrations``): its own
version table ``alembic_version_notify`` and its own metadata, so the two
schemas are migrated independently.  Run through
:func:`alerts.notify.store.migrate_notify`.  Online mode only.
"""

from __future__ import annotations

from alembic import context

from alerts.notify.store import VERSION_TABLE, NotifyBase

config = context.config
target_metadata = NotifyBase.metadata


def include_name(name, type_, parent_names) -> bool:  # noqa: ANN001 - alembic's hook signature
    """Autogenerate looks at this environment's tables only (the queue's belong to alerts/migrations)."""
    return type_ != "table" or name in target_metadata.tables


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
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("the notifier's migrations run online only")
run()
