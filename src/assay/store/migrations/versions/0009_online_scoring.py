"""Online scoring: provider connections, stored and versioned evaluators, rules, the job queue
and each rule's spend per day.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0009"
down_revision = "0008"
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
        "connections",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _project(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("base_url", sa.Text),
        sa.Column("default_model", sa.String(200)),
        sa.Column("max_concurrency", sa.Integer, nullable=False),
        sa.Column("key_last4", sa.String(4)),
        sa.Column("key_encrypted", sa.Text),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_connections_project_name"),
    )
    op.create_table(
        "evaluators",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _project(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column(
            "connection_id", sa.Integer, sa.ForeignKey("connections.id", ondelete="SET NULL")
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_evaluators_project_name"),
    )
    op.create_table(
        "evaluator_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "evaluator_id",
            sa.Integer,
            sa.ForeignKey("evaluators.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("version_hash", sa.String(64), nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("definition", Json, nullable=False),
        sa.UniqueConstraint("evaluator_id", "version", name="uq_evaluator_versions_version"),
    )
    op.create_table(
        "rules",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _project(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("target", sa.String(8), nullable=False),
        sa.Column("span_type", sa.String(32)),
        sa.Column("span_name", sa.Text),
        sa.Column("filter", Json, nullable=False),
        sa.Column("sample_rate", sa.Float, nullable=False),
        sa.Column("delay_seconds", sa.Integer, nullable=False),
        sa.Column("daily_budget_usd", sa.Float),
        sa.Column("calls_per_minute", sa.Integer),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("cursor_span_id", sa.BigInteger, nullable=False),
        sa.Column("matched", sa.BigInteger, nullable=False),
        sa.Column("sampled", sa.BigInteger, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_rules_project_name"),
    )
    op.create_table(
        "rule_evaluators",
        sa.Column(
            "rule_id", sa.Integer, sa.ForeignKey("rules.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column(
            "evaluator_id",
            sa.Integer,
            sa.ForeignKey("evaluators.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_table(
        "eval_jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        _project(),
        sa.Column("rule_id", sa.Integer, sa.ForeignKey("rules.id", ondelete="CASCADE")),
        sa.Column(
            "evaluator_version_id",
            sa.Integer,
            sa.ForeignKey("evaluator_versions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_ns", sa.BigInteger, nullable=False),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_ns", sa.BigInteger),
        sa.Column("cost", sa.Float),
        sa.Column("score_id", sa.BigInteger),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("started_ns", sa.BigInteger),
        sa.Column("finished_ns", sa.BigInteger),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint(
            "project_id", "trace_id", "span_id", "evaluator_version_id", name="uq_eval_jobs_item"
        ),
    )
    op.create_index("ix_eval_jobs_status_due", "eval_jobs", ["status", "next_attempt_ns"])
    op.create_index("ix_eval_jobs_rule_status", "eval_jobs", ["rule_id", "status"])
    op.create_table(
        "rule_spend",
        sa.Column(
            "rule_id", sa.Integer, sa.ForeignKey("rules.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("calls", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rule_spend")
    op.drop_index("ix_eval_jobs_rule_status", "eval_jobs")
    op.drop_index("ix_eval_jobs_status_due", "eval_jobs")
    op.drop_table("eval_jobs")
    op.drop_table("rule_evaluators")
    op.drop_table("rules")
    op.drop_table("evaluator_versions")
    op.drop_table("evaluators")
    op.drop_table("connections")
