"""A trace is identified by (project, trace id), not by the trace id alone.

Before, the first project to send a trace id owned it: another project's spans under the same
id were filed in the first project's trace (readable there, missing from their own), and a span
reusing an id the other project had used was dropped. Now each project holds its own trace.

Data: a trace id whose spans were stored under several projects gets one trace row per project,
summed from that project's spans.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PREVIEW_CHARS = 500


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # SQLite cannot change a table's constraints in place: batch mode copies the table
    # (ids kept, so the FTS5 index, keyed by span id, stays valid).
    with op.batch_alter_table("spans") as batch:
        batch.drop_constraint("uq_spans_trace_span", type_="unique")
        batch.create_unique_constraint(
            "uq_spans_project_trace_span", ["project_id", "trace_id", "span_id"]
        )
    if sqlite:
        _rebuild_sqlite_traces(sa.PrimaryKeyConstraint("project_id", "trace_id", name="pk_traces"))
    else:
        op.drop_constraint("traces_pkey", "traces", type_="primary")
        op.create_primary_key("pk_traces", "traces", ["project_id", "trace_id"])
    op.create_index("ix_traces_trace", "traces", ["trace_id"])
    op.drop_index("ix_scores_trace", table_name="scores")
    op.create_index("ix_scores_project_trace", "scores", ["project_id", "trace_id"])
    _split_shared_traces(sqlite)


TRACE_INDEXES = {
    "ix_traces_project_start": ["project_id", "start_ns"],
    "ix_traces_project_duration": ["project_id", "duration_ns"],
    "ix_traces_project_cost": ["project_id", "cost"],
    "ix_traces_project_session": ["project_id", "session_id", "start_ns"],
    "ix_traces_project_user": ["project_id", "user_id", "start_ns"],
}


def _rebuild_sqlite_traces(primary_key: sa.PrimaryKeyConstraint) -> None:
    """SQLite cannot change a primary key: copy the rows into a table that has the new one."""
    op.create_table(
        "traces_rebuilt",
        sa.Column("trace_id", sa.String(32), nullable=False),
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
        sa.Column("tags", sa.JSON, nullable=False),
        sa.Column("metadata", sa.JSON, nullable=False),
        primary_key,
    )
    columns = (
        "trace_id, project_id, root_span_id, name, start_ns, end_ns, duration_ns, status_code, "
        "span_count, error_count, input_tokens, output_tokens, total_tokens, cost, "
        "input_preview, output_preview, session_id, user_id, models, span_types, tags, metadata"
    )
    op.execute(f"INSERT INTO traces_rebuilt ({columns}) SELECT {columns} FROM traces")
    op.drop_table("traces")
    op.rename_table("traces_rebuilt", "traces")
    for name, indexed in TRACE_INDEXES.items():
        op.create_index(name, "traces", indexed)


def _split_shared_traces(sqlite: bool) -> None:
    """One trace row per (project, trace id) for ids whose spans sit in several projects."""
    shared = "SELECT trace_id FROM spans GROUP BY trace_id HAVING COUNT(DISTINCT project_id) > 1"
    op.execute(f"DELETE FROM traces WHERE trace_id IN ({shared})")
    true = "1" if sqlite else "TRUE"
    agg = "group_concat(DISTINCT {0})" if sqlite else "string_agg(DISTINCT {0}, ',')"
    op.execute(
        f"""
        INSERT INTO traces (
            trace_id, project_id, start_ns, end_ns, duration_ns, status_code, span_count,
            error_count, input_tokens, output_tokens, total_tokens, cost, session_id, user_id,
            models, span_types, tags, metadata
        )
        SELECT trace_id, project_id, MIN(start_ns), MAX(end_ns), MAX(end_ns) - MIN(start_ns), 0,
            COUNT(*), SUM(CASE WHEN is_error THEN 1 ELSE 0 END),
            COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
            COALESCE(SUM(total_tokens), 0), COALESCE(SUM(cost), 0),
            MAX(session_id), MAX(user_id),
            ',' || {agg.format("model")} || ',', ',' || {agg.format("type")} || ',',
            '[]', '{{}}'
        FROM spans WHERE trace_id IN ({shared})
        GROUP BY project_id, trace_id
        """
    )
    # The root span's fields, where the project has the trace's root.
    preview = "CASE WHEN length(r.{0}) > {1} THEN substr(r.{0}, 1, {1}) || '…' ELSE r.{0} END"
    root = (
        "(SELECT {0} FROM spans r WHERE r.project_id = traces.project_id "
        f"AND r.trace_id = traces.trace_id AND r.is_root = {true} "
        "ORDER BY r.start_ns, r.id LIMIT 1)"
    )
    columns = {
        "root_span_id": "r.span_id",
        "name": "r.name",
        "status_code": "r.status_code",
        "input_preview": preview.format("input", PREVIEW_CHARS),
        "output_preview": preview.format("output", PREVIEW_CHARS),
        "tags": "r.tags",
        "metadata": "r.metadata",
    }
    assignments = ", ".join(
        f"{name} = COALESCE({root.format(value)}, {name})" for name, value in columns.items()
    )
    op.execute(f"UPDATE traces SET {assignments} WHERE trace_id IN ({shared})")


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    # Back to one row per trace id: keep the row of the lowest project id, as the old writer
    # kept the first project's.
    op.execute(
        "DELETE FROM traces WHERE EXISTS (SELECT 1 FROM traces older "
        "WHERE older.trace_id = traces.trace_id AND older.project_id < traces.project_id)"
    )
    op.execute(
        "DELETE FROM spans WHERE EXISTS (SELECT 1 FROM spans older "
        "WHERE older.trace_id = spans.trace_id AND older.span_id = spans.span_id "
        "AND older.project_id < spans.project_id)"
    )
    op.drop_index("ix_scores_project_trace", table_name="scores")
    op.create_index("ix_scores_trace", "scores", ["trace_id"])
    op.drop_index("ix_traces_trace", table_name="traces")
    if sqlite:
        _rebuild_sqlite_traces(sa.PrimaryKeyConstraint("trace_id"))
    else:
        op.drop_constraint("pk_traces", "traces", type_="primary")
        op.create_primary_key("traces_pkey", "traces", ["trace_id"])
    with op.batch_alter_table("spans") as batch:
        batch.drop_constraint("uq_spans_project_trace_span", type_="unique")
        batch.create_unique_constraint("uq_spans_trace_span", ["trace_id", "span_id"])
