"""The store itself: migrations equal the models, the audit trail refuses changes, data survives a restart."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select, text

from alerts.db import Store, make_engine, migrate
from alerts.errors import AuditImmutable
from alerts.lifecycle import Feedback, transition
from alerts.models import Alert, AuditEvent, Base, Outbox
from alerts.states import AlertState, Role
from alerts.types import Actor
from tests.alerts.helpers import UNIT_A, det

CREW = Actor("crew-a", Role.CREW, UNIT_A)


def test_migrations_match_the_models(engine) -> None:  # noqa: ANN001
    with engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), Base.metadata) == []


def test_migrate_twice_is_a_no_op(engine) -> None:  # noqa: ANN001
    migrate(engine)
    with engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0001"


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:  # noqa: ANN001
    engine = make_engine(f"sqlite:///{tmp_path / 'x' / 'alerts.sqlite'}")  # the folder is created
    migrate(engine)
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    engine.dispose()


def test_database_refuses_to_change_the_audit_trail(store, intake) -> None:  # noqa: ANN001
    intake.emit([det()])

    def rows() -> list[tuple]:
        with store.read() as s:
            return [(e.id, e.kind, e.note) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]

    before = rows()
    assert before
    statements = ["UPDATE audit SET note = 'edited'", "DELETE FROM audit", f"DELETE FROM audit WHERE id = {before[0][0]}"]
    if store.dialect == "postgresql":
        statements.append("TRUNCATE audit")
    for statement in statements:
        with pytest.raises(AuditImmutable, match="append-only"):
            with store.write() as s:
                s.execute(text(statement))
    assert rows() == before


def test_everything_survives_a_restart(db_url, store, intake, clock) -> None:  # noqa: ANN001
    intake.emit([det(t=0), det("inlet_flow_high", t=30, sensors=("w-d01-001",))])
    with store.write() as s:
        a = s.scalars(select(Alert).order_by(Alert.first_seen_ns)).first()
        transition(s, a.id, AlertState.ACKNOWLEDGED, CREW, clock())
    with store.write() as s:
        transition(s, a.id, AlertState.DISPATCHED, CREW, clock(), feedback=Feedback(crew=["Li Wei"]))

    def snapshot(st: Store) -> tuple:
        with st.read() as s:
            alerts = [(x.id, x.state, x.version, x.count, x.crew, x.incident_id) for x in s.scalars(select(Alert).order_by(Alert.id))]
            audit = [(e.id, e.kind, e.from_state, e.to_state) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))]
            outbox = s.scalar(select(func.count()).select_from(Outbox))
        return alerts, audit, outbox

    before = snapshot(store)
    store.dispose()
    reopened = Store(make_engine(db_url))
    try:
        after = snapshot(reopened)
    finally:
        reopened.dispose()
    assert after == before
    alerts, audit, outbox = after
    assert [x[1] for x in alerts if x[0] == a.id] == ["dispatched"]
    assert [(k, f, t) for _, k, f, t in audit if k == "transition"] == [
        ("transition", "new", "acknowledged"),
        ("transition", "acknowledged", "dispatched"),
    ]
    assert outbox >= 4  # two raised, two transitions
