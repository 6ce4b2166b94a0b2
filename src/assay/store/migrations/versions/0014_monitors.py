"""Monitors: a metric over a window against a threshold, their state, and each evaluation with
the notification it sent (or failed to send).

Revision ID: 0014
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitors",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("window_minutes", sa.Integer, nullable=False),
        sa.Column("threshold", sa.Float, nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("webhook_url", sa.Text),
        sa.Column("renotify_minutes", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("state_since_ns", sa.BigInteger, nullable=False),
        sa.Column("notified_state", sa.String(16), nullable=False),
        sa.Column("last_evaluated_ns", sa.BigInteger),
        sa.Column("last_notified_ns", sa.BigInteger),
        sa.Column("last_delivery", sa.Text),
        sa.Column("last_delivery_ok", sa.Boolean),
        sa.Column("next_due_ns", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_ns", sa.BigInteger),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_monitors_project_name"),
    )
    op.create_index("ix_monitors_due", "monitors", ["enabled", "next_due_ns"])
    op.create_table(
        "monitor_evaluations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "monitor_id",
            sa.Integer,
            sa.ForeignKey("monitors.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("at_ns", sa.BigInteger, nullable=False),
        sa.Column("since_ns", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("low", sa.Float),
        sa.Column("high", sa.Float),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("notification", sa.String(16)),
        sa.Column("delivered", sa.Boolean),
        sa.Column("delivery", sa.Text),
    )
    op.create_index("ix_monitor_evaluations_monitor", "monitor_evaluations", ["monitor_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_monitor_evaluations_monitor", "monitor_evaluations")
    op.drop_table("monitor_evaluations")
    op.drop_index("ix_monitors_due", "monitors")
    op.drop_table("monitors")
