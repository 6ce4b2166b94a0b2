"""Routing to people: a rule's actions (add what its judges scored to a review queue when the
judge disagrees with end-user feedback, cannot decide, or as a random share), the cursor of the
feedback sweep, and one row per item routed (so nothing is routed twice, and counts show).

Revision ID: 0013
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0013"
down_revision = "0015"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("actions", Json))
        batch.add_column(sa.Column("route_cursor", sa.BigInteger))
    op.create_table(
        "rule_routes",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "rule_id", sa.Integer, sa.ForeignKey("rules.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column(
            "queue_id", sa.Integer, sa.ForeignKey("queues.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "rule_id", "trigger", "queue_id", "trace_id", "span_id", name="uq_rule_routes_item"
        ),
    )


def downgrade() -> None:
    op.drop_table("rule_routes")
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("route_cursor")
        batch.drop_column("actions")
