"""Agent endpoints: the team's real agent, served by `assay agent serve` and run from Assay.

Revision ID: 0015
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("target", sa.String(500)),
        sa.Column("token_sealed", sa.Text, nullable=False),
        sa.Column("registered_by", sa.String(200)),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("updated_ns", sa.BigInteger, nullable=False),
        sa.Column("last_seen_ns", sa.BigInteger),
        sa.UniqueConstraint("project_id", "name", name="uq_agents_project_name"),
    )


def downgrade() -> None:
    op.drop_table("agents")
