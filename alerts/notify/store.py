"""Per-channel delivery state of the outbox: the ``notify_deliveries`` table and its own migrations.

One outbox row (:class:`alerts.models.Outbox`) may go to several channels
(MQTT, InfluxDB, each webhook).  A row in ``notify_deliveries`` records, per
``(outbox_id, channel)``, how far that delivery got:

* ``retry``: tried and failed for a reason that may pass (receiver down, 5xx,
  timeout); ``next_attempt_at`` says when to try again;
* ``delivered``: the receiver confirmed (MQTT PUBACK, HTTP 2xx, InfluxDB 204);
* ``dead``: the receiver refused for good (HTTP 4xx, a refused address,
  InfluxDB rejected the point); ``last_error`` says why.  Dead deliveries are
  kept and listed by ``lifewatch notify --dead``; they are never retried.

No row yet means "not tried".  The outbox row's own ``delivered_at`` is set
once every channel it is routed to has reached ``delivered`` or ``dead``.

**Its own migrations.**  The table lives in its own Alembic environment
(``alerts/notify/migrations``, version table ``alembic_version_notify``) and
on its own ``MetaData``, so the queue's schema, its head revision and its
models-equal-migrations check are untouched.  :func:`migrate_notify` runs
``upgrade head`` there; the worker calls it at start-up when
``auto_migrate`` is on.  There is no foreign key to ``outbox`` (the two
schemas are migrated separately); ``outbox_id`` is indexed.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path

from sqlalchemy import BigInteger, Index, Integer, MetaData, String, Text, UniqueConstraint, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from alerts.errors import StoreError
from alerts.models import NAMING, SerialId, UTCDateTime

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version_notify"


class DeliveryState(StrEnum):
    RETRY = "retry"
    DELIVERED = "delivered"
    DEAD = "dead"


FINAL_STATES = frozenset({DeliveryState.DELIVERED, DeliveryState.DEAD})


class NotifyBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Delivery(NotifyBase):
    __tablename__ = "notify_deliveries"
    __table_args__ = (
        UniqueConstraint("outbox_id", "channel"),
        Index("ix_notify_deliveries_channel_state", "channel", "state"),
    )

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    outbox_id: Mapped[int] = mapped_column(BigInteger, index=True)
    channel: Mapped[str] = mapped_column(String(120))  # mqtt | influx | webhook:<name>
    state: Mapped[str] = mapped_column(String(12))  # DeliveryState
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    first_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


def migrate_notify(engine: Engine) -> None:
    """``alembic upgrade head`` on the notifier's own migrations (version table ``alembic_version_notify``)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.execution_options(lw_write=True).begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except exc.SQLAlchemyError as e:
        orig = getattr(e, "orig", None)
        raise StoreError(f"migrating the notifier's tables failed: {orig or e.__class__.__name__}") from e
