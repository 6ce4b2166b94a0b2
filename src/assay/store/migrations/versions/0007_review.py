"""Human review: rubrics (versioned), review queues, their items, reviews (leases and
submissions) and gold labels; labels are scores that name their rubric and review; personal
API keys act as a user.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _project() -> sa.Column[int]:
    return sa.Column(
        "project_id",
        sa.Integer,
        sa.ForeignKey("projects.id", ondelete="CASCADE"),
        nullable=False,
    )


def _queue() -> sa.Column[int]:
    return sa.Column(
        "queue_id", sa.Integer, sa.ForeignKey("queues.id", ondelete="CASCADE"), nullable=False
    )


def _item() -> sa.Column[int]:
    return sa.Column(
        "item_id",
        sa.BigInteger,
        sa.ForeignKey("queue_items.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("rubric_id", sa.Integer))
        batch.add_column(sa.Column("rubric_version", sa.Integer))
        batch.add_column(sa.Column("review_id", sa.BigInteger))
    op.create_index("ix_scores_review", "scores", ["review_id"])
    op.create_index("ix_scores_rubric", "scores", ["rubric_id", "created_ns"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer))

    op.create_table(
        "rubrics",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _project(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("definition", Json, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_rubrics_project_name"),
    )
    op.create_table(
        "rubric_versions",
        sa.Column(
            "rubric_id",
            sa.Integer,
            sa.ForeignKey("rubrics.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("definition", Json, nullable=False),
    )
    op.create_table(
        "queues",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _project(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("reviews_per_item", sa.Integer, nullable=False),
        sa.Column("lease_seconds", sa.Integer, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("rubric_ids", Json, nullable=False),
        sa.Column("reviewers", Json, nullable=False),
        sa.Column("description", sa.Text),
        sa.UniqueConstraint("project_id", "name", name="uq_queues_project_name"),
    )
    op.create_table(
        "queue_items",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        _queue(),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("ref", sa.String(300), nullable=False),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("span_id", sa.String(16)),
        sa.Column("session_id", sa.String(200)),
        sa.Column("experiment_row_id", sa.BigInteger),
        sa.Column("dataset_id", sa.Integer),
        sa.Column("record_id", sa.String(64)),
        sa.Column("reviews_done", sa.Integer, nullable=False),
        sa.Column("is_done", sa.Boolean, nullable=False),
        sa.Column("added_ns", sa.BigInteger, nullable=False),
        sa.Column("added_by", sa.String(200)),
        sa.UniqueConstraint("queue_id", "ref", name="uq_queue_items_ref"),
    )
    op.create_index("ix_queue_items_next", "queue_items", ["queue_id", "is_done", "id"])
    op.create_table(
        "reviews",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        _queue(),
        _item(),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("leased_until_ns", sa.BigInteger, nullable=False),
        sa.Column("opened_ns", sa.BigInteger, nullable=False),
        sa.Column("submitted_ns", sa.BigInteger),
        sa.UniqueConstraint("item_id", "reviewer", name="uq_reviews_item_reviewer"),
    )
    op.create_index("ix_reviews_queue_reviewer", "reviews", ["queue_id", "reviewer", "state"])
    op.create_index("ix_reviews_item_state", "reviews", ["item_id", "state"])
    op.create_table(
        "gold_labels",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        _queue(),
        _item(),
        sa.Column("rubric_id", sa.Integer, nullable=False),
        sa.Column("rubric_version", sa.Integer, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("label", sa.String(200)),
        sa.Column("author", sa.String(200)),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("rationale", sa.Text),
        sa.Column("metadata", Json, nullable=False),
        sa.UniqueConstraint("item_id", "rubric_id", name="uq_gold_labels_item_rubric"),
    )


def downgrade() -> None:
    op.drop_table("gold_labels")
    op.drop_table("reviews")
    op.drop_table("queue_items")
    op.drop_table("queues")
    op.drop_table("rubric_versions")
    op.drop_table("rubrics")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("user_id")
    op.drop_index("ix_scores_rubric", "scores")
    op.drop_index("ix_scores_review", "scores")
    with op.batch_alter_table("scores") as batch:
        batch.drop_column("review_id")
        batch.drop_column("rubric_version")
        batch.drop_column("rubric_id")
