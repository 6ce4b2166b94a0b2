"""Indexes for the dashboard's metrics, each covering what its query reads:

- traces by start with the columns metrics sum and rank (an index-only scan of a time range);
- scores by trace and name with source and value (score means: without statistics, which
  SQLite never gathers unless told, the planner otherwise looked every trace's scores up
  through (project, name, value), reading all scores of that name once per trace);
- scores by creation time with name and source (the score names a dashboard draws).

Revision ID: 0016
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "0016"
down_revision = "0014"
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
    op.create_index(
        "ix_scores_project_trace_name",
        "scores",
        ["project_id", "trace_id", "name", "source", "value"],
    )
    op.create_index(
        "ix_scores_project_created",
        "scores",
        ["project_id", "created_ns", "name", "source", "value"],
    )


def downgrade() -> None:
    op.drop_index("ix_scores_project_created", table_name="scores")
    op.drop_index("ix_scores_project_trace_name", table_name="scores")
    op.drop_index("ix_traces_project_start_metrics", table_name="traces")
