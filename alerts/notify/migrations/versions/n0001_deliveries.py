"""notify_deliveries: per-channel delivery state of outbox rows.

Revision ID: n0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "n0001"
down_revision = None
branch_labels = None
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_deliveries",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("channel", sa.String(length=120), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_attempt_at", UTC_TIME, nullable=False),
        sa.Column("last_attempt_at", UTC_TIME, nullable=False),
        sa.Column("next_attempt_at", UTC_TIME, nullable=True),
        sa.Column("delivered_at", UTC_TIME, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notify_deliveries")),
        sa.UniqueConstraint("outbox_id", "channel", name=op.f("uq_notify_deliveries_outbox_id_channel")),
    )
    op.create_index(op.f("ix_notify_deliveries_outbox_id"), "notify_deliveries", ["outbox_id"], unique=False)
    op.create_index("ix_notify_deliveries_channel_state", "notify_deliveries", ["channel", "state"], unique=False)


def downgrade() -> None:
    op.drop_table("notify_deliveries")
