"""The alert queue's tables (SQLAlchemy 2.x, the same on SQLite and PostgreSQL).

The schema is created by the Alembic migrations in ``alerts/migrations``
(never by ``create_all``); ``tests/alerts/test_db.py`` checks that the
migrations and these models agree.

* ``alerts``: one row per alert.  ``open_key`` is the detection key while the
  alert takes repeats (unique, NULL otherwise): two open alerts for one
  condition cannot exist, whoever writes.  ``version`` counts state changes
  (optimistic concurrency); repeats from the intake do not change it.
  Event times (``*_ns``) are Unix nanoseconds from the detections; wall times
  (``*_at``, ``*_due``) come from the injected clock.
* ``incidents``: correlated alerts of one asset (DMA, feeder, bridge, gas segment).
* ``audit``: append-only history of every transition, escalation, reminder,
  silence, comment and user change; triggers refuse UPDATE and DELETE.  Its
  increasing ``id`` is also the change feed behind ``/api/stream``.
* ``comments``, ``silences``, ``users``, ``tokens`` (SHA-256 of the token,
  never the token), ``outbox`` (notifications, written in the same
  transaction as the change they announce; a worker delivers and marks them).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite autoincrements only an INTEGER PRIMARY KEY (the rowid)
SerialId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on both backends (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the alert store keeps aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)  # the first detection's deterministic id
    key: Mapped[str] = mapped_column(String(300), index=True)
    open_key: Mapped[str | None] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(100))
    detector: Mapped[str] = mapped_column(String(100))
    lifeline: Mapped[str] = mapped_column(String(32), index=True)
    district: Mapped[str] = mapped_column(String(64), index=True)
    asset: Mapped[str | None] = mapped_column(String(100), index=True)
    sensors: Mapped[list[str]] = mapped_column(Json)
    metric: Mapped[str | None] = mapped_column(String(100))
    unit: Mapped[str] = mapped_column(String(100), index=True)
    level: Mapped[int] = mapped_column(SmallInteger, index=True)  # lifewatch.levels.Level value: 1 = red
    state: Mapped[str] = mapped_column(String(20), index=True)
    silenced: Mapped[bool] = mapped_column(Boolean, default=False)
    silence_id: Mapped[int | None] = mapped_column(ForeignKey("silences.id"))
    count: Mapped[int] = mapped_column(Integer, default=1)  # raised detections merged (episodes)
    flaps: Mapped[int] = mapped_column(Integer, default=0)  # re-opened within the cool-down
    first_seen_ns: Mapped[int] = mapped_column(BigInteger)
    last_seen_ns: Mapped[int] = mapped_column(BigInteger)
    last_start_ns: Mapped[int] = mapped_column(BigInteger)  # start of the latest merged episode
    ended_ns: Mapped[int | None] = mapped_column(BigInteger)  # the condition's end, when it cleared
    peak_score: Mapped[float] = mapped_column(Float)
    peak_value: Mapped[float | None] = mapped_column(Float)
    evidence: Mapped[dict[str, Any]] = mapped_column(Json)  # of the detection with the peak score
    incident_id: Mapped[str | None] = mapped_column(ForeignKey("incidents.id"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ack_due: Mapped[datetime] = mapped_column(UTCDateTime)
    resolve_due: Mapped[datetime] = mapped_column(UTCDateTime)
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reminders: Mapped[int] = mapped_column(Integer, default=0)
    ack_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolve_escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    crew: Mapped[list[str] | None] = mapped_column(Json)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[dict[str, Any] | None] = mapped_column(Json)  # cause, action, notes
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    asset: Mapped[str] = mapped_column(String(100), index=True)
    lifeline: Mapped[str] = mapped_column(String(32))
    district: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(100), index=True)
    level: Mapped[int] = mapped_column(SmallInteger)  # most severe member
    alert_count: Mapped[int] = mapped_column(Integer)
    first_seen_ns: Mapped[int] = mapped_column(BigInteger)
    last_seen_ns: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when its last member reached a terminal state


class AuditEvent(Base):
    """Append-only: the code only inserts; database triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(40))
    alert_id: Mapped[str | None] = mapped_column(String(32), index=True)
    incident_id: Mapped[str | None] = mapped_column(String(32))
    unit: Mapped[str | None] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(Json)
    event_ns: Mapped[int | None] = mapped_column(BigInteger)  # event time, for what detections caused


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    author: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)


class Silence(Base):
    """A maintenance window: detections of a sensor, asset or district inside [starts_at, ends_at) are silenced."""

    __tablename__ = "silences"
    __table_args__ = (Index("ix_silences_scope_target", "scope", "target"),)

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16))  # sensor | asset | district
    target: Mapped[str] = mapped_column(String(100))
    lifeline: Mapped[str | None] = mapped_column(String(32))  # district silences may name one lifeline
    kind: Mapped[str | None] = mapped_column(String(100))  # only this detection kind (None = all)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)  # compared with the detection's event time
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    unit: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)  # public handle, e.g. tk-1a2b3c4d
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 hex of the token
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Outbox(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_pending",
            "id",
            sqlite_where=text("delivered_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(SerialId, primary_key=True, autoincrement=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(40))  # alert.raised, alert.transition, alert.reminder, ...
    alert_id: Mapped[str | None] = mapped_column(String(32))
    unit: Mapped[str | None] = mapped_column(String(100))
    level: Mapped[int | None] = mapped_column(SmallInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(Json)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
