"""Indexes for the dashboard's metrics: a covering index of the trace columns they sum and rank
(one index-only scan of a project's time range), and scores by creation time (the score names
a dashboard draws charts for).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_traces_project_start_metrics",
        "traces",
        [
            "project_id",
            "start_ns",
            "models",
            "duration_ns",
            "error_count",
            "total_tokens",
            "cost",
        ],
    )
    op.create_index("ix_scores_project_created", "scores", ["project_id", "created_ns"])


def downgrade() -> None:
    op.drop_index("ix_scores_project_created", table_name="scores")
    op.drop_index("ix_traces_project_start_metrics", table_name="traces")
