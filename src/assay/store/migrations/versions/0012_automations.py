"""Automations: filter-based rules that add traces to a dataset or a review queue on a
schedule or as they arrive, their runs, and what they added where (a trace once per target).

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _project() -> sa.Column[int]:
    return sa.Column(
        "project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _project(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("filter", Json, nullable=False),
        sa.Column("sample", sa.Integer),
        sa.Column("schedule", sa.String(16), nullable=False),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("target_name", sa.String(200), nullable=False),
        sa.Column("max_per_run", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("next_run_ns", sa.BigInteger),
        sa.Column("cursor_span_id", sa.BigInteger, nullable=False),
        sa.Column("cursor_score_id", sa.BigInteger, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_automations_name"),
    )
    op.create_index("ix_automations_due", "automations", ["enabled", "next_run_ns"])
    op.create_table(
        "automation_runs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        _project(),
        sa.Column(
            "automation_id",
            sa.Integer,
            sa.ForeignKey("automations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("window_start_ns", sa.BigInteger),
        sa.Column("window_end_ns", sa.BigInteger),
        sa.Column("window", Json, nullable=False),
        sa.Column("started_ns", sa.BigInteger, nullable=False),
        sa.Column("finished_ns", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("matched", sa.Integer, nullable=False),
        sa.Column("sampled", sa.Integer, nullable=False),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("skipped", sa.Integer, nullable=False),
        sa.Column("over_cap", sa.Integer, nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_automation_runs_automation", "automation_runs", ["automation_id", "id"])
    op.create_table(
        "automation_added",
        _project(),
        sa.Column("target_kind", sa.String(16), nullable=False),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("automation_id", sa.Integer, nullable=False),
        sa.Column("run_id", sa.BigInteger),
        sa.Column("added_ns", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("target_kind", "target_id", "trace_id", name="pk_automation_added"),
    )


def downgrade() -> None:
    op.drop_table("automation_added")
    op.drop_index("ix_automation_runs_automation", "automation_runs")
    op.drop_table("automation_runs")
    op.drop_index("ix_automations_due", "automations")
    op.drop_table("automations")
