"""Initial schema: projects, spans, traces, scores, API keys, search index.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

json_type = sa.JSON().with_variant(JSONB(), "postgresql")
big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("settings", json_type, nullable=False),
    )
    op.create_table(
        "spans",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("trace_id", sa.String(32), nullable=False),
        sa.Column("span_id", sa.String(16), nullable=False),
        sa.Column("parent_span_id", sa.String(16)),
        sa.Column("kind", sa.SmallInteger, nullable=False),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("end_ns", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.SmallInteger, nullable=False),
        sa.Column("is_root", sa.Boolean, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("is_error", sa.Boolean, nullable=False),
        sa.Column("duration_ns", sa.BigInteger, nullable=False),
        sa.Column("model", sa.String(200)),
        sa.Column("provider", sa.String(100)),
        sa.Column("operation", sa.String(100)),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("cached_tokens", sa.Integer),
        sa.Column("reasoning_tokens", sa.Integer),
        sa.Column("total_tokens", sa.Integer),
        sa.Column("cost", sa.Float),
        sa.Column("session_id", sa.String(200)),
        sa.Column("user_id", sa.String(200)),
        sa.Column("ingested_ns", sa.BigInteger, nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("status_message", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("tags", json_type, nullable=False),
        sa.Column("metadata", json_type, nullable=False),
        sa.Column("input", sa.Text),
        sa.Column("output", sa.Text),
        sa.Column("attributes", json_type, nullable=False),
        sa.Column("events", json_type, nullable=False),
        sa.Column("links", json_type, nullable=False),
        sa.Column("resource", json_type, nullable=False),
        sa.Column("scope", json_type, nullable=False),
        sa.UniqueConstraint("trace_id", "span_id", name="uq_spans_trace_span"),
    )
    op.create_index("ix_spans_project_start", "spans", ["project_id", "start_ns"])
    op.create_index("ix_spans_project_type_start", "spans", ["project_id", "type", "start_ns"])

    op.create_table(
        "traces",
        sa.Column("trace_id", sa.String(32), primary_key=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("root_span_id", sa.String(16)),
        sa.Column("name", sa.Text),
        sa.Column("start_ns", sa.BigInteger, nullable=False),
        sa.Column("end_ns", sa.BigInteger, nullable=False),
        sa.Column("duration_ns", sa.BigInteger, nullable=False),
        sa.Column("status_code", sa.SmallInteger, nullable=False),
        sa.Column("span_count", sa.Integer, nullable=False),
        sa.Column("error_count", sa.Integer, nullable=False),
        sa.Column("input_tokens", sa.Integer),
        sa.Column("output_tokens", sa.Integer),
        sa.Column("total_tokens", sa.Integer),
        sa.Column("cost", sa.Float),
        sa.Column("input_preview", sa.Text),
        sa.Column("output_preview", sa.Text),
        sa.Column("session_id", sa.String(200)),
        sa.Column("user_id", sa.String(200)),
        sa.Column("models", sa.Text),
        sa.Column("span_types", sa.Text),
        sa.Column("tags", json_type, nullable=False),
        sa.Column("metadata", json_type, nullable=False),
    )
    op.create_index("ix_traces_project_start", "traces", ["project_id", "start_ns"])
    op.create_index("ix_traces_project_duration", "traces", ["project_id", "duration_ns"])
    op.create_index("ix_traces_project_cost", "traces", ["project_id", "cost"])
    op.create_index("ix_traces_project_session", "traces", ["project_id", "session_id", "start_ns"])
    op.create_index("ix_traces_project_user", "traces", ["project_id", "user_id", "start_ns"])

    op.create_table(
        "scores",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column(
            "project_id",
            sa.Integer,
            sa.ForeignKey("projects.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("trace_id", sa.String(32)),
        sa.Column("span_id", sa.String(16)),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("label", sa.String(200)),
        sa.Column("rationale", sa.Text),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("author", sa.String(200)),
        sa.Column("metadata", json_type, nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_scores_trace", "scores", ["trace_id"])
    op.create_index("ix_scores_project_name_value", "scores", ["project_id", "name", "value"])

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id", ondelete="CASCADE")),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("created_ns", sa.BigInteger, nullable=False),
        sa.Column("revoked_ns", sa.BigInteger),
        sa.Column("last_used_ns", sa.BigInteger),
    )
    op.create_table(
        "store_state",
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )

    if op.get_bind().dialect.name == "postgresql":
        # lz4 compresses the large text and JSON values several times faster than the default
        # pglz, which shows directly in ingest throughput. Only where the server supports it.
        has_lz4 = (
            op.get_bind()
            .execute(
                sa.text(
                    "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                    "WHERE name = 'default_toast_compression'"
                )
            )
            .scalar()
        )
        if has_lz4:
            for column in ("input", "output", "attributes", "events", "resource"):
                op.execute(f"ALTER TABLE spans ALTER COLUMN {column} SET COMPRESSION lz4")

    # Text search over span input/output, filled in the background by the search indexer.
    if op.get_bind().dialect.name == "sqlite":
        # Contentless: the text lives in `spans`; the index holds only tokens, keyed by rowid.
        op.execute(
            "CREATE VIRTUAL TABLE span_search USING fts5("
            "input, output, content='', tokenize='unicode61 remove_diacritics 2')"
        )
    else:
        op.create_table(
            "span_search",
            sa.Column(
                "span_id",
                sa.BigInteger,
                sa.ForeignKey("spans.id", ondelete="CASCADE"),
                primary_key=True,
            ),
            sa.Column("project_id", sa.Integer, nullable=False),
            sa.Column("tsv", sa.dialects.postgresql.TSVECTOR, nullable=False),
        )
        op.create_index("ix_span_search_tsv", "span_search", ["tsv"], postgresql_using="gin")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE IF EXISTS span_search")
    else:
        op.drop_table("span_search")
    op.drop_table("store_state")
    op.drop_table("api_keys")
    op.drop_table("scores")
    op.drop_table("traces")
    op.drop_table("spans")
    op.drop_table("projects")
