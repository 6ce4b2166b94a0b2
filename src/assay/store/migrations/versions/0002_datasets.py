"""Datasets: named, versioned records.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

json_type = sa.JSON().with_variant(JSONB(), "postgresql")
big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("description", sa.Text),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),
    )
    op.create_table(
        "dataset_records",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column(
            "dataset_id",
            sa.Integer,
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("version_added", sa.Integer, nullable=False),
        sa.Column("version_removed", sa.Integer),
        sa.Column("source_trace_id", sa.String(32)),
        sa.Column("source_span_id", sa.String(16)),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("input", json_type, nullable=False),
        sa.Column("expected", json_type),
        sa.Column("metadata", json_type, nullable=False),
        sa.Column("tags", json_type, nullable=False),
    )
    op.create_index(
        "ix_dataset_records_dataset_record", "dataset_records", ["dataset_id", "record_id"]
    )
    op.create_index(
        "ix_dataset_records_dataset_added", "dataset_records", ["dataset_id", "version_added"]
    )
    op.create_table(
        "dataset_versions",
        sa.Column(
            "dataset_id",
            sa.Integer,
            sa.ForeignKey("datasets.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("message", sa.Text),
        sa.Column("added", sa.Integer, nullable=False),
        sa.Column("updated", sa.Integer, nullable=False),
        sa.Column("deleted", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("dataset_versions")
    op.drop_table("dataset_records")
    op.drop_table("datasets")
