"""Judge calibration: calibration runs and their items, the mapping of a judge's choices onto a
rubric's, drift alerts sent, and the reason a rule was paused by the server.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _evaluator() -> sa.Column[int]:
    return sa.Column(
        "evaluator_id",
        sa.Integer,
        sa.ForeignKey("evaluators.id", ondelete="CASCADE"),
        nullable=False,
    )


def _version() -> sa.Column[int]:
    return sa.Column(
        "evaluator_version_id",
        sa.Integer,
        sa.ForeignKey("evaluator_versions.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    with op.batch_alter_table("rules") as batch:
        batch.add_column(sa.Column("paused_reason", sa.Text))
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _evaluator(),
        _version(),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column(
            "rubric_id", sa.Integer, sa.ForeignKey("rubrics.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("rubric_version", sa.Integer, nullable=False),
        sa.Column("mapping", Json, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("summary", Json, nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("finished_ns", sa.BigInteger),
    )
    op.create_index("ix_calibrations_evaluator", "calibrations", ["evaluator_id", "id"])
    op.create_index("ix_calibrations_version", "calibrations", ["evaluator_version_id", "id"])
    op.create_table(
        "calibration_items",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column(
            "calibration_id",
            sa.Integer,
            sa.ForeignKey("calibrations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("item_id", sa.BigInteger, nullable=False),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("span_id", sa.String(16)),
        sa.Column("human_label", sa.String(200)),
        sa.Column("human_value", sa.Float),
        sa.Column("human_source", sa.String(8), nullable=False),
        sa.Column("human_rationale", sa.Text),
        sa.Column("judge_label", sa.String(200)),
        sa.Column("judge_value", sa.Float),
        sa.Column("judge_rationale", sa.Text),
        sa.Column("error", sa.Text),
        sa.UniqueConstraint("calibration_id", "item_id", name="uq_calibration_items_item"),
    )
    op.create_table(
        "judge_mappings",
        sa.Column(
            "evaluator_id",
            sa.Integer,
            sa.ForeignKey("evaluators.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "rubric_id",
            sa.Integer,
            sa.ForeignKey("rubrics.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("mapping", Json, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "judge_drift_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _version(),
        sa.Column("window_start_ns", sa.BigInteger, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("figures", Json, nullable=False),
        sa.Column("delivery", sa.Text),
        sa.UniqueConstraint(
            "evaluator_version_id", "window_start_ns", name="uq_judge_drift_alerts"
        ),
    )


def downgrade() -> None:
    op.drop_table("judge_drift_alerts")
    op.drop_table("judge_mappings")
    op.drop_table("calibration_items")
    op.drop_index("ix_calibrations_version", "calibrations")
    op.drop_index("ix_calibrations_evaluator", "calibrations")
    op.drop_table("calibrations")
    with op.batch_alter_table("rules") as batch:
        batch.drop_column("paused_reason")
