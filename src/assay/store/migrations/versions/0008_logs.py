"""OTLP log records: a table of their own, read beside a span's events and as project logs.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

json_type = sa.JSON().with_variant(JSONB(), "postgresql")
big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "logs",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("time_ns", sa.BigInteger, nullable=False),
        sa.Column("observed_ns", sa.BigInteger, nullable=False),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("span_id", sa.String(16)),
        sa.Column("severity_number", sa.SmallInteger, nullable=False),
        sa.Column("severity_text", sa.String(100)),
        sa.Column("event_name", sa.String(1000)),
        sa.Column("ingested_ns", sa.BigInteger, nullable=False),
        sa.Column("body", sa.Text),
        sa.Column("attributes", json_type, nullable=False),
        sa.Column("resource", json_type, nullable=False),
        sa.Column("scope", json_type, nullable=False),
    )
    op.create_index("ix_logs_project_time", "logs", ["project_id", "time_ns"])
    op.create_index("ix_logs_project_trace_span", "logs", ["project_id", "trace_id", "span_id"])


def downgrade() -> None:
    op.drop_table("logs")
