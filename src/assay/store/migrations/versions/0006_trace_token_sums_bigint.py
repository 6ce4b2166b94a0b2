"""A trace's token sums are 64-bit.

Each span's token counts fit 32 bits (ingest leaves a larger count out of the column), but a
trace sums them: two spans of 2^31 - 1 tokens made PostgreSQL refuse the trace row, and the
ingest request with it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("input_tokens", "output_tokens", "total_tokens")


def upgrade() -> None:
    # Batch mode: SQLite cannot change a column's type in place (it copies the table).
    with op.batch_alter_table("traces") as batch:
        for column in COLUMNS:
            batch.alter_column(column, type_=sa.BigInteger(), existing_type=sa.Integer())


def downgrade() -> None:
    for column in COLUMNS:
        op.execute(f"UPDATE traces SET {column} = 2147483647 WHERE {column} > 2147483647")
    with op.batch_alter_table("traces") as batch:
        for column in COLUMNS:
            batch.alter_column(column, type_=sa.Integer(), existing_type=sa.BigInteger())
