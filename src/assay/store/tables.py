"""The schema: one definition for SQLite and PostgreSQL.

Times are integers in nanoseconds since the epoch (OpenTelemetry's unit), so nothing is lost in
conversion and both engines compare them the same way. JSON is JSONB on PostgreSQL.
Alembic migrations restate this schema on their own (they import nothing from the app);
``tests/test_migrations.py`` checks that the two agree.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
Json = JSON().with_variant(JSONB(), "postgresql")
# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid, which FTS5 joins on.
BigId = BigInteger().with_variant(Integer(), "sqlite")

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("created_ns", BigInteger, nullable=False),
    # Per-project settings such as price overrides: {"prices": {"model": {...}}}.
    Column("settings", Json, nullable=False, default=dict),
)

spans = Table(
    "spans",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=False),
    Column("parent_span_id", String(16)),
    Column("kind", SmallInteger, nullable=False),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("status_code", SmallInteger, nullable=False),
    Column("is_root", Boolean, nullable=False),
    Column("type", String(32), nullable=False),
    Column("is_error", Boolean, nullable=False),
    Column("duration_ns", BigInteger, nullable=False),
    Column("model", String(200)),
    Column("provider", String(100)),
    Column("operation", String(100)),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cached_tokens", Integer),
    Column("reasoning_tokens", Integer),
    Column("total_tokens", Integer),
    Column("cost", Float),
    Column("session_id", String(200)),
    Column("user_id", String(200)),
    Column("ingested_ns", BigInteger, nullable=False),
    # Variable-size columns last: SQLite then reads every fixed-size column (times, tokens,
    # cost) from a row's first page without walking the overflow pages of large values.
    Column("name", Text, nullable=False),
    Column("status_message", Text),
    Column("error", Text),
    Column("tags", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("input", Text),
    Column("output", Text),
    Column("attributes", Json, nullable=False),
    Column("events", Json, nullable=False),
    Column("links", Json, nullable=False),
    Column("resource", Json, nullable=False),
    Column("scope", Json, nullable=False),
    # A trace id is unique within a project only: a service that received another project's
    # traceparent writes its own trace under the same id (see ``traces``).
    UniqueConstraint("project_id", "trace_id", "span_id", name="uq_spans_project_trace_span"),
    Index("ix_spans_project_start", "project_id", "start_ns"),
    Index("ix_spans_project_type_start", "project_id", "type", "start_ns"),
)

# One row per trace, kept current by the writer: the root span's fields and the sums the
# trace list shows and filters on, so listing never aggregates a million spans.
# A trace is (project, trace id): when a supervisor in one project calls a sub-agent in another
# and passes its W3C traceparent, each project holds a trace of its own spans under the same id,
# and neither can read or change the other's.
traces = Table(
    "traces",
    metadata,
    Column("trace_id", String(32), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("root_span_id", String(16)),
    Column("name", Text),
    Column("start_ns", BigInteger, nullable=False),
    Column("end_ns", BigInteger, nullable=False),
    Column("duration_ns", BigInteger, nullable=False),
    Column("status_code", SmallInteger, nullable=False, default=0),
    Column("span_count", Integer, nullable=False),
    Column("error_count", Integer, nullable=False),
    Column("input_tokens", BigInteger),
    Column("output_tokens", BigInteger),
    Column("total_tokens", BigInteger),
    Column("cost", Float),
    Column("input_preview", Text),
    Column("output_preview", Text),
    Column("session_id", String(200)),
    Column("user_id", String(200)),
    # The distinct models and span types in the trace as ",a,b,": filtering traces by them
    # reads this row instead of joining the trace's spans.
    Column("models", Text),
    Column("span_types", Text),
    Column("tags", Json, nullable=False, default=list),
    Column("metadata", Json, nullable=False, default=dict),
    PrimaryKeyConstraint("project_id", "trace_id", name="pk_traces"),
    # Which projects hold a trace id: the fixed /api/v1/traces/{id} path and the links
    # between the two sides of a trace that crossed projects.
    Index("ix_traces_trace", "trace_id"),
    Index("ix_traces_project_start", "project_id", "start_ns"),
    Index("ix_traces_project_duration", "project_id", "duration_ns"),
    Index("ix_traces_project_cost", "project_id", "cost"),
    Index("ix_traces_project_session", "project_id", "session_id", "start_ns"),
    Index("ix_traces_project_user", "project_id", "user_id", "start_ns"),
    # Metrics (store/metrics.py) sum and rank these over a project's time range: covered, the
    # scan reads the index alone.
    Index(
        "ix_traces_project_start_metrics",
        "project_id",
        "start_ns",
        "models",
        "duration_ns",
        "error_count",
        "total_tokens",
        "cost",
    ),
)

scores = Table(
    "scores",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("trace_id", String(32)),
    Column("span_id", String(16)),
    Column("name", String(200), nullable=False),
    Column("value", Float),
    Column("label", String(200)),
    Column("rationale", Text),
    Column("source", String(16), nullable=False),  # code | llm | human
    Column("author", String(200)),
    Column("metadata", Json, nullable=False, default=dict),
    Column("created_ns", BigInteger, nullable=False),
    # A reviewer's label from a review queue: the rubric (and the version they answered) and
    # their review. Automated scores never carry a review, so they can never stand in for,
    # or overwrite, a person's label.
    Column("rubric_id", Integer),
    Column("rubric_version", Integer),
    Column("review_id", BigInteger),
    Index("ix_scores_project_trace", "project_id", "trace_id"),
    Index("ix_scores_project_name_value", "project_id", "name", "value"),
    Index("ix_scores_review", "review_id"),
    Index("ix_scores_rubric", "rubric_id", "created_ns"),
    # Metrics: score means per trace (covering; see migration 0016 for why it matters on
    # SQLite), and the score names given in a time range (the dashboard's score charts).
    Index("ix_scores_project_trace_name", "project_id", "trace_id", "name", "source", "value"),
    Index("ix_scores_project_created", "project_id", "created_ns", "name", "source", "value"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # NULL project: the key works for every project (an administrator's key).
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE")),
    Column("name", String(200), nullable=False),
    Column("prefix", String(16), nullable=False),
    # SHA-256 of the whole key: keys are 256-bit random, so a fast hash is safe here.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("revoked_ns", BigInteger),
    Column("last_used_ns", BigInteger),
    # A personal key acts as this user, with the user's roles (limited to project_id if set);
    # ``role`` is then unused. Users are never deleted, so no cascade is needed.
    Column("user_id", Integer),
)

# Datasets are versioned by validity ranges: a record row is part of every version from
# version_added up to (not including) version_removed. An update retires the old row and adds a
# new one under the same record_id, so any past version can be read back exactly.
datasets = Table(
    "datasets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text),
    Column("version", Integer, nullable=False, default=0),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_datasets_project_name"),
)

dataset_records = Table(
    "dataset_records",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False),
    Column("record_id", String(64), nullable=False),
    Column("version_added", Integer, nullable=False),
    Column("version_removed", Integer),
    Column("source_trace_id", String(32)),
    Column("source_span_id", String(16)),
    Column("created_ns", BigInteger, nullable=False),
    Column("input", Json, nullable=False),
    Column("expected", Json),
    Column("metadata", Json, nullable=False),
    Column("tags", Json, nullable=False),
    Index("ix_dataset_records_dataset_record", "dataset_id", "record_id"),
    Index("ix_dataset_records_dataset_added", "dataset_id", "version_added"),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column(
        "dataset_id",
        Integer,
        ForeignKey("datasets.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("version", Integer, primary_key=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("author", String(200)),
    Column("message", Text),
    Column("added", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("deleted", Integer, nullable=False),
)

# An experiment: one run of an eval's task over its cases; one row per case and trial.
experiments = Table(
    "experiments",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("eval_name", String(200), nullable=False),
    Column("dataset_id", Integer, ForeignKey("datasets.id", ondelete="SET NULL")),
    Column("dataset_version", Integer),
    Column("status", String(16), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("finished_ns", BigInteger),
    Column("metadata", Json, nullable=False),
    Column("summary", Json, nullable=False),
    Index("ix_experiments_project_eval", "project_id", "eval_name", "created_ns"),
)

experiment_rows = Table(
    "experiment_rows",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "experiment_id",
        Integer,
        ForeignKey("experiments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # The dataset record id when there is one, else a hash of the input: what rows of two
    # experiments are matched on.
    Column("case_key", String(64), nullable=False),
    Column("trial", Integer, nullable=False),
    Column("latency_ms", Float),
    Column("input_tokens", Integer),
    Column("output_tokens", Integer),
    Column("cost", Float),
    Column("trace_id", String(32)),
    Column("created_ns", BigInteger, nullable=False),
    Column("error", Text),
    Column("input", Json),
    Column("expected", Json),
    Column("metadata", Json, nullable=False),
    Column("output", Json),
    Column("scores", Json, nullable=False),
    UniqueConstraint("experiment_id", "case_key", "trial", name="uq_experiment_rows_case"),
)

# Small key/value state, e.g. how far the background search indexer has got.
store_state = Table(
    "store_state",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# People who sign in to the web UI. Never deleted, only disabled, so a name is never reused
# and the open mode (which ends when the first user exists) cannot come back by accident.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, unique=True),
    # argon2id, with its parameters and salt in the string.
    Column("password_hash", String(200), nullable=False),
    # Administrators have every role in every project, and manage users.
    Column("is_admin", Boolean, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("disabled_ns", BigInteger),
)

# A user's role in one project: viewer < annotator < editor < admin.
memberships = Table(
    "memberships",
    metadata,
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
)

# Signed-in browsers. The cookie holds a random token; only its SHA-256 is stored, so a copy
# of the database does not let anyone sign in.
user_sessions = Table(
    "user_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("csrf_token", String(64), nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("last_seen_ns", BigInteger, nullable=False),
    Column("expires_ns", BigInteger, nullable=False),
    # A one-time message for the next page (a new API key's secret), encrypted with a key
    # derived from the session token, which only the browser holds.
    Column("flash", Text),
    Index("ix_user_sessions_user", "user_id"),
)

# --- human review ---------------------------------------------------------------------------

# What reviewers are asked. ``definition`` holds the kind's settings (choices, scale, anchors),
# the rationale rule and the instructions; every edit bumps ``version`` and keeps the old
# definition in ``rubric_versions``, so a label is always read against what its author saw.
rubrics = Table(
    "rubrics",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("definition", Json, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_rubrics_project_name"),
)

rubric_versions = Table(
    "rubric_versions",
    metadata,
    Column("rubric_id", Integer, ForeignKey("rubrics.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("author", String(200)),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("definition", Json, nullable=False),
)

# A review queue: items waiting for ``reviews_per_item`` different people each. ``reviewers``
# lists the user names who may review; empty means anyone with the annotator role.
queues = Table(
    "queues",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("reviews_per_item", Integer, nullable=False),
    Column("lease_seconds", Integer, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("author", String(200)),
    Column("rubric_ids", Json, nullable=False),
    Column("reviewers", Json, nullable=False),
    Column("description", Text),
    UniqueConstraint("project_id", "name", name="uq_queues_project_name"),
)

# One thing to review: a trace, a span, a session, an experiment row or a dataset record.
# ``ref`` names it canonically ("trace:<id>", "span:<trace>/<span>", ...) so adding it twice
# is a no-op. ``is_done`` (it has its reviews) leads the index the next-item query walks.
queue_items = Table(
    "queue_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("queue_id", Integer, ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("ref", String(300), nullable=False),
    Column("trace_id", String(32)),
    Column("span_id", String(16)),
    Column("session_id", String(200)),
    Column("experiment_row_id", BigInteger),
    Column("dataset_id", Integer),
    Column("record_id", String(64)),
    Column("reviews_done", Integer, nullable=False),
    Column("is_done", Boolean, nullable=False),
    Column("added_ns", BigInteger, nullable=False),
    Column("added_by", String(200)),
    UniqueConstraint("queue_id", "ref", name="uq_queue_items_ref"),
    Index("ix_queue_items_next", "queue_id", "is_done", "id"),
)

# One person's review of one item: leased while they have it open (until ``leased_until_ns``),
# then submitted (their labels are scores with this review's id) or skipped.
reviews = Table(
    "reviews",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("queue_id", Integer, ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", BigInteger, ForeignKey("queue_items.id", ondelete="CASCADE"), nullable=False),
    Column("reviewer", String(200), nullable=False),
    Column("state", String(16), nullable=False),  # leased | submitted | skipped
    Column("leased_until_ns", BigInteger, nullable=False),
    Column("opened_ns", BigInteger, nullable=False),
    Column("submitted_ns", BigInteger),
    UniqueConstraint("item_id", "reviewer", name="uq_reviews_item_reviewer"),
    Index("ix_reviews_queue_reviewer", "queue_id", "reviewer", "state"),
    Index("ix_reviews_item_state", "item_id", "state"),
)

# The final (gold) label an editor set for an item and rubric after comparing the reviewers'
# labels: kept apart from theirs, which stay as they were given.
gold_labels = Table(
    "gold_labels",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("queue_id", Integer, ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
    Column("item_id", BigInteger, ForeignKey("queue_items.id", ondelete="CASCADE"), nullable=False),
    Column("rubric_id", Integer, nullable=False),
    Column("rubric_version", Integer, nullable=False),
    Column("value", Float),
    Column("label", String(200)),
    Column("author", String(200)),
    Column("created_ns", BigInteger, nullable=False),
    Column("rationale", Text),
    Column("metadata", Json, nullable=False),
    UniqueConstraint("item_id", "rubric_id", name="uq_gold_labels_item_rubric"),
)

# OTLP log records. Logs arrive on their own, often after their spans were stored, so they
# get a table of their own rather than a rewrite of span rows: a record that names a span
# (trace and span id) is shown among that span's events; the others are the project's logs.
logs = Table(
    "logs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    # The record's time: time_unix_nano, else the collector's observed time.
    Column("time_ns", BigInteger, nullable=False),
    Column("observed_ns", BigInteger, nullable=False),
    Column("trace_id", String(32)),
    Column("span_id", String(16)),
    Column("severity_number", SmallInteger, nullable=False),
    Column("severity_text", String(100)),
    Column("event_name", String(1000)),
    Column("ingested_ns", BigInteger, nullable=False),
    # The body as text (a structured body as its JSON), which `q` searches.
    Column("body", Text),
    Column("attributes", Json, nullable=False),
    Column("resource", Json, nullable=False),
    Column("scope", Json, nullable=False),
    Index("ix_logs_project_time", "project_id", "time_ns"),
    Index("ix_logs_project_trace_span", "project_id", "trace_id", "span_id"),
)

# --- online scoring: provider connections, stored evaluators, rules, the job queue ---------------

# A project's way to reach a model provider. The API key is encrypted (Fernet) and is only ever
# sent to the base URL it was saved with: changing the URL needs the key again.
connections = Table(
    "connections",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("base_url", Text),
    Column("default_model", String(200)),
    Column("max_concurrency", Integer, nullable=False),
    # The last four characters, to tell keys apart; the key itself is never read back out.
    Column("key_last4", String(4)),
    Column("key_encrypted", Text),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_connections_project_name"),
)

# An evaluator: a name and its versions. A version is a definition (a judge's prompt, choices
# and model, or a built-in scorer and its parameters) and the hash `assay.judge` gives it, so a
# judge pushed from code and the one edited in the browser are the same version when equal.
evaluators = Table(
    "evaluators",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("kind", String(16), nullable=False),  # judge | builtin
    Column("connection_id", Integer, ForeignKey("connections.id", ondelete="SET NULL")),
    Column("version", Integer, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_evaluators_project_name"),
)

evaluator_versions = Table(
    "evaluator_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "evaluator_id", Integer, ForeignKey("evaluators.id", ondelete="CASCADE"), nullable=False
    ),
    Column("version", Integer, nullable=False),
    Column("version_hash", String(64), nullable=False),
    Column("author", String(200)),
    Column("created_ns", BigInteger, nullable=False),
    Column("definition", Json, nullable=False),
    UniqueConstraint("evaluator_id", "version", name="uq_evaluator_versions_version"),
)

# What to score online: traces (their root span) or spans of a type/name, among those the
# filter matches, a sample of them by a hash of the trace id, once the trace has been quiet
# for ``delay_seconds``. ``cursor_span_id`` is how far the scheduler has looked.
rules = Table(
    "rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("target", String(8), nullable=False),  # trace | span
    Column("span_type", String(32)),
    Column("span_name", Text),
    Column("filter", Json, nullable=False),
    Column("sample_rate", Float, nullable=False),
    Column("delay_seconds", Integer, nullable=False),
    Column("daily_budget_usd", Float),
    Column("calls_per_minute", Integer),
    Column("enabled", Boolean, nullable=False),
    # Why the server turned the rule off by itself (a judge that drifted), shown as its status.
    Column("paused_reason", Text),
    # What to route to people: [{"when", "queue", "rate"?, ...}] (services/routing.py).
    Column("actions", Json),
    # The feedback sweep's place in ``scores`` (an id): what it has compared already.
    Column("route_cursor", BigInteger),
    Column("cursor_span_id", BigInteger, nullable=False),
    Column("matched", BigInteger, nullable=False),
    Column("sampled", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_rules_project_name"),
)

rule_evaluators = Table(
    "rule_evaluators",
    metadata,
    Column("rule_id", Integer, ForeignKey("rules.id", ondelete="CASCADE"), primary_key=True),
    Column(
        "evaluator_id", Integer, ForeignKey("evaluators.id", ondelete="CASCADE"), primary_key=True
    ),
)

# The job queue: one row per (trace or span, evaluator version), so each is scored at most once
# whichever worker, scheduler or backfill gets there first. A trace's job has span_id ''.
eval_jobs = Table(
    "eval_jobs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", Integer, ForeignKey("rules.id", ondelete="CASCADE")),
    Column(
        "evaluator_version_id",
        Integer,
        ForeignKey("evaluator_versions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=False),
    Column("status", String(8), nullable=False),  # pending | running | done | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ns", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires_ns", BigInteger),
    Column("cost", Float),
    Column("score_id", BigInteger),
    Column("created_ns", BigInteger, nullable=False),
    Column("started_ns", BigInteger),
    Column("finished_ns", BigInteger),
    Column("last_error", Text),
    UniqueConstraint(
        "project_id", "trace_id", "span_id", "evaluator_version_id", name="uq_eval_jobs_item"
    ),
    Index("ix_eval_jobs_status_due", "status", "next_attempt_ns"),
    Index("ix_eval_jobs_rule_status", "rule_id", "status"),
)

# An item a rule's action added to a review queue, once per (rule, trigger, queue, item): the
# counts on the rule's page, and why it was routed. A trace's row has span_id ''.
rule_routes = Table(
    "rule_routes",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("rule_id", Integer, ForeignKey("rules.id", ondelete="CASCADE"), nullable=False),
    Column("queue_id", Integer, ForeignKey("queues.id", ondelete="CASCADE"), nullable=False),
    Column("trigger", String(32), nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("span_id", String(16), nullable=False),
    Column("detail", Text),
    Column("created_ns", BigInteger, nullable=False),
    UniqueConstraint(
        "rule_id", "trigger", "queue_id", "trace_id", "span_id", name="uq_rule_routes_item"
    ),
)

# What each rule spent, per UTC day: the daily budget reads today's row.
rule_spend = Table(
    "rule_spend",
    metadata,
    Column("rule_id", Integer, ForeignKey("rules.id", ondelete="CASCADE"), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("cost", Float, nullable=False),
    Column("calls", Integer, nullable=False),
)

# The prompt registry. A prompt is a name in a project; every save is an immutable row of
# ``prompt_versions`` (its messages, model, parameters, tools and response format live in
# ``definition``). Labels point at versions; every move of a label is a row of
# ``prompt_label_moves`` (from None: the label was new; to None: an undo removed it), and an
# undo is itself a move naming the move it undid.
prompts = Table(
    "prompts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_prompts_project_name"),
)

prompt_versions = Table(
    "prompt_versions",
    metadata,
    Column("prompt_id", Integer, ForeignKey("prompts.id", ondelete="CASCADE"), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("created_ns", BigInteger, nullable=False),
    Column("author", String(200)),
    Column("message", Text),
    Column("definition", Json, nullable=False),
)

prompt_labels = Table(
    "prompt_labels",
    metadata,
    Column("prompt_id", Integer, ForeignKey("prompts.id", ondelete="CASCADE"), primary_key=True),
    Column("label", String(100), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("author", String(200)),
)

prompt_label_moves = Table(
    "prompt_label_moves",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("prompt_id", Integer, ForeignKey("prompts.id", ondelete="CASCADE"), nullable=False),
    Column("label", String(100), nullable=False),
    Column("from_version", Integer),
    Column("to_version", Integer),
    Column("author", String(200)),
    Column("created_ns", BigInteger, nullable=False),
    Column("undo_of", Integer),
    Index("ix_prompt_label_moves_prompt_label", "prompt_id", "label", "id"),
)

# --- judge calibration: a judge version run over people's labels of a rubric ----------------------

# One calibration run: which evaluator version, against which rubric (and version), with which
# mapping of the judge's choices onto the rubric's, and the figures it gave (``summary``).
calibrations = Table(
    "calibrations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "evaluator_id", Integer, ForeignKey("evaluators.id", ondelete="CASCADE"), nullable=False
    ),
    Column(
        "evaluator_version_id",
        Integer,
        ForeignKey("evaluator_versions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("version", Integer, nullable=False),
    Column("rubric_id", Integer, ForeignKey("rubrics.id", ondelete="CASCADE"), nullable=False),
    Column("rubric_version", Integer, nullable=False),
    Column("mapping", Json, nullable=False),
    Column("status", String(16), nullable=False),  # done | failed
    Column("summary", Json, nullable=False),
    Column("author", String(200)),
    Column("created_ns", BigInteger, nullable=False),
    Column("finished_ns", BigInteger),
    Index("ix_calibrations_evaluator", "evaluator_id", "id"),
    Index("ix_calibrations_version", "evaluator_version_id", "id"),
)

# One labelled item of a calibration: the people's label (gold when adjudicated) and the judge's
# verdict on the same trace or span, each with its rationale.
calibration_items = Table(
    "calibration_items",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "calibration_id",
        Integer,
        ForeignKey("calibrations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("item_id", BigInteger, nullable=False),
    Column("trace_id", String(32)),
    Column("span_id", String(16)),
    Column("human_label", String(200)),
    Column("human_value", Float),
    Column("human_source", String(8), nullable=False),  # gold | labels
    Column("human_rationale", Text),
    Column("judge_label", String(200)),
    Column("judge_value", Float),
    Column("judge_rationale", Text),
    Column("error", Text),
    UniqueConstraint("calibration_id", "item_id", name="uq_calibration_items_item"),
)

# How a judge's choices read as a rubric's values ({"A": "correct"}), per evaluator and rubric.
judge_mappings = Table(
    "judge_mappings",
    metadata,
    Column(
        "evaluator_id", Integer, ForeignKey("evaluators.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("rubric_id", Integer, ForeignKey("rubrics.id", ondelete="CASCADE"), primary_key=True),
    Column("mapping", Json, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
)

# A drift alert sent (or tried): one per evaluator version and window, so a drift alerts once.
judge_drift_alerts = Table(
    "judge_drift_alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "evaluator_version_id",
        Integer,
        ForeignKey("evaluator_versions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("window_start_ns", BigInteger, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("figures", Json, nullable=False),
    Column("delivery", Text),
    UniqueConstraint("evaluator_version_id", "window_start_ns", name="uq_judge_drift_alerts"),
)

# --- automations: traces matching a filter added to a dataset or a review queue, on a cadence ---

# An automation: which traces (filter, sample of N or all), when (hourly, daily, weekly: the
# previous period; on_arrival: traces stored since the cursors), where (a dataset or a queue),
# at most ``max_per_run`` each run. ``next_run_ns`` is claimed atomically by the worker that
# runs it, so two servers on one database never run the same period twice.
automations = Table(
    "automations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("filter", Json, nullable=False),
    Column("sample", Integer),  # None: all matching traces
    Column("schedule", String(16), nullable=False),
    Column("target_kind", String(16), nullable=False),  # dataset | queue
    Column("target_id", Integer, nullable=False),
    Column("target_name", String(200), nullable=False),
    Column("max_per_run", Integer, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("next_run_ns", BigInteger),
    Column("cursor_span_id", BigInteger, nullable=False),
    Column("cursor_score_id", BigInteger, nullable=False),
    Column("created_by", String(200)),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_automations_name"),
    Index("ix_automations_due", "enabled", "next_run_ns"),
)

# One run of an automation: its window (times for a schedule, span ids for on_arrival), what
# it matched, added, skipped as already added to the target, left over the cap, and its error.
automation_runs = Table(
    "automation_runs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column(
        "automation_id",
        Integer,
        ForeignKey("automations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("trigger", String(16), nullable=False),  # schedule | manual | arrival
    Column("window_start_ns", BigInteger),
    Column("window_end_ns", BigInteger),
    Column("window", Json, nullable=False),
    Column("started_ns", BigInteger, nullable=False),
    Column("finished_ns", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # ok | failed
    Column("matched", Integer, nullable=False),
    Column("sampled", Integer, nullable=False),
    Column("added", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("over_cap", Integer, nullable=False),
    Column("error", Text),
    Index("ix_automation_runs_automation", "automation_id", "id"),
)

# What automations added where: a trace goes into a target (a dataset or a queue) once,
# whichever automation added it (kept when that automation is deleted).
automation_added = Table(
    "automation_added",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("target_kind", String(16), nullable=False),
    Column("target_id", Integer, nullable=False),
    Column("trace_id", String(32), nullable=False),
    Column("automation_id", Integer, nullable=False),
    Column("run_id", BigInteger),
    Column("added_ns", BigInteger, nullable=False),
    PrimaryKeyConstraint("target_kind", "target_id", "trace_id", name="pk_automation_added"),
)

# --- agent endpoints: the team's real agent, served by `assay agent serve` ------------------------

# One agent endpoint of a project, by name: where the server calls it, the token the server sends
# on every call (sealed with the server's secret key, like a connection's API key: the server
# needs it back to send it), who registered it, and when it was last heard from.
agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("target", String(500)),
    Column("token_sealed", Text, nullable=False),
    Column("registered_by", String(200)),
    Column("online", Boolean, nullable=False),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    Column("last_seen_ns", BigInteger),
    UniqueConstraint("project_id", "name", name="uq_agents_project_name"),
)

# --- monitors: a metric over a window against a threshold -----------------------------------------

# A monitor: a metric (services/metrics.py) over the last ``window_minutes``, compared with a
# threshold (alerting when below or above it). ``state`` is what the last evaluation found
# (ok | alerting | no_data); ``notified_state`` what the webhook was last told (a failed
# delivery leaves it, so the next evaluation tries again). ``next_due_ns`` and the lease make
# an evaluation one worker's: a claim is a conditional UPDATE that only one process wins.
monitors = Table(
    "monitors",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("metric", String(32), nullable=False),
    Column("params", Json, nullable=False),
    Column("window_minutes", Integer, nullable=False),
    Column("threshold", Float, nullable=False),
    Column("direction", String(8), nullable=False),  # below | above
    Column("webhook_url", Text),
    Column("renotify_minutes", Integer, nullable=False),  # 0: never again while alerting
    Column("enabled", Boolean, nullable=False),
    Column("state", String(16), nullable=False),
    Column("state_since_ns", BigInteger, nullable=False),
    Column("notified_state", String(16), nullable=False),
    Column("last_evaluated_ns", BigInteger),
    Column("last_notified_ns", BigInteger),
    Column("last_delivery", Text),
    Column("last_delivery_ok", Boolean),
    Column("next_due_ns", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires_ns", BigInteger),
    Column("created_ns", BigInteger, nullable=False),
    Column("updated_ns", BigInteger, nullable=False),
    UniqueConstraint("project_id", "name", name="uq_monitors_project_name"),
    Index("ix_monitors_due", "enabled", "next_due_ns"),
)

# One evaluation of a monitor: the window's value, the state it led to, and the notification
# it sent (alert | reminder | recovery) with how the delivery went.
monitor_evaluations = Table(
    "monitor_evaluations",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("monitor_id", Integer, ForeignKey("monitors.id", ondelete="CASCADE"), nullable=False),
    Column("project_id", Integer, ForeignKey("projects.id", ondelete="CASCADE"), nullable=False),
    Column("at_ns", BigInteger, nullable=False),
    Column("since_ns", BigInteger, nullable=False),
    Column("value", Float),
    Column("n", BigInteger, nullable=False),
    Column("low", Float),
    Column("high", Float),
    Column("state", String(16), nullable=False),
    Column("error", Text),  # why the metric could not be computed (the state stayed)
    Column("notification", String(16)),
    Column("delivered", Boolean),
    Column("delivery", Text),
    Index("ix_monitor_evaluations_monitor", "monitor_id", "id"),
)
