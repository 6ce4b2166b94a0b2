"""Experiments and their rows.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

json_type = sa.JSON().with_variant(JSONB(), "postgresql")
big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("eval_name", sa.String(200), nullable=False),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id", ondelete="SET NULL")),
        sa.Column("dataset_version", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("finished_ns", sa.BigInteger),
        sa.Column("metadata", json_type, nullable=False),
        sa.Column("summary", json_type, nullable=False),
    )
    op.create_index(
        "ix_experiments_project_eval", "experiments", ["project_id", "eval_name", "created_ns"]
    )
    op.create_table(
        "experiment_rows",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column(
            "experiment_id",
            sa.Integer,
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("case_key", sa.String(64), nullable=False),
        sa.Column("trial", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Float),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("cost", sa.Float),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("input", json_type),
        sa.Column("expected", json_type),
        sa.Column("metadata", json_type, nullable=False),
        sa.Column("output", json_type),
        sa.Column("scores", json_type, nullable=False),
        sa.UniqueConstraint("experiment_id", "case_key", "trial", name="uq_experiment_rows_case"),
    )


def downgrade() -> None:
    op.drop_table("experiment_rows")
    op.drop_table("experiments")
