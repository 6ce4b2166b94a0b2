"""Automations: the traces a filter matches, added to a dataset or a review queue on a cadence.

An automation takes the traces its filter matches (the traces list's filter language, score
conditions and human/judge disagreements included) — all of them, or a random sample of N —
and adds them to a dataset (the root span's input, its output as a proposed expected answer,
the trace's metadata, lineage to the trace) or to a review queue, at most ``max_per_run`` per
run. "Every day, 20 random traces of the last day into the daily review queue" is one
automation: ``{"schedule": "daily", "sample": 20, "target": {"queue": ID}}``.

When it runs:

- ``hourly`` / ``daily`` / ``weekly``: a few minutes (:data:`SETTLE_NS`) after each UTC period
  ends, over the traces that *started* in that period (weeks start on Monday). The run records
  its window. A server that was down catches up period by period.
- ``on_arrival``: about every :data:`ARRIVAL_POLL_NS`, over the traces that got a span stored
  since the last run (a minute after it was stored, so the trace is complete) or, when the
  filter names scores, a new score.
- "Run now" (editors): a scheduled automation takes the last complete period; an on_arrival
  one takes what arrived since its last run. It does not move the schedule.

A trace goes into a target once, whichever automation adds it (``automation_added``). The
sample is a hash of the automation's id and the trace id, so running a window again picks the
same traces and adds nothing twice. Runs are claimed atomically (see store/automations.py):
two servers on one database never run the same period. A run that fails records its error
(shown by the API and the automation's page); a scheduled one moves on to the next period,
an on_arrival one tries the same arrivals again after :data:`RETRY_NS`.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from assay.errors import Conflict, NotFound, UserError
from assay.services import datasets as dataset_service
from assay.services import review as review_service
from assay.services.filters import InvalidFilters
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.services.rules import check_filter_keys, rule_filters
from assay.store import automations as automation_store
from assay.store import datasets as dataset_store
from assay.store import review as review_store
from assay.store.database import Connection, Database
from assay.store.engine import now_ns as clock_now
from assay.store.listing import Filters, has_score_filter

log = logging.getLogger("assay.automations")

SECOND_NS = 1_000_000_000
HOUR_NS = 3600 * SECOND_NS
DAY_NS = 24 * HOUR_NS
PERIODS = {"hourly": HOUR_NS, "daily": DAY_NS, "weekly": 7 * DAY_NS}
SCHEDULES = (*PERIODS, "on_arrival")
#: A period is run this long after it ends, so its late spans are stored.
SETTLE_NS = 5 * 60 * SECOND_NS
#: An arrival is taken this long after its span was stored (its trace has ended by then).
ARRIVAL_DELAY_NS = 60 * SECOND_NS
ARRIVAL_POLL_NS = 60 * SECOND_NS
#: A failed on_arrival run tries the same arrivals again after this long.
RETRY_NS = 5 * 60 * SECOND_NS
DEFAULT_MAX_PER_RUN = 1_000
MAX_PER_RUN = 10_000
MAX_SAMPLE = 10_000
MAX_RUNS_SHOWN = 200
MAX_ERROR_CHARS = 2_000
#: 1970-01-01 was a Thursday: days to add to an epoch day to count weekdays from Monday.
EPOCH_WEEKDAY = 3


# --- periods ----------------------------------------------------------------------------------


def period_start(schedule: str, at_ns: int) -> int:
    """The start of the UTC period (hour, day, Monday-based week) holding ``at_ns``."""
    if schedule == "weekly":
        days = at_ns // DAY_NS
        return (days - (days + EPOCH_WEEKDAY) % 7) * DAY_NS
    size = PERIODS[schedule]
    return at_ns // size * size


def previous_period(schedule: str, at_ns: int) -> tuple[int, int]:
    """[start, end) of the last complete period before ``at_ns``."""
    end = period_start(schedule, at_ns)
    return end - PERIODS[schedule], end


def first_run_ns(schedule: str, now_ns: int) -> int | None:
    """When a new (or resumed) automation first runs: after the current period ends."""
    if schedule == "on_arrival":
        return now_ns + ARRIVAL_POLL_NS
    return period_start(schedule, now_ns) + PERIODS[schedule] + SETTLE_NS


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sample_key(automation_id: int, trace_id: str) -> bytes:
    """Where a trace falls in an automation's random order: SHA-256 of both ids."""
    return hashlib.sha256(f"{automation_id}:{trace_id.lower()}".encode()).digest()


def choose(automation_id: int, trace_ids: list[str], sample: int | None) -> list[str]:
    """All the traces, or the ``sample`` first in the automation's random order (a uniform
    sample that is the same every time the same traces are offered)."""
    if sample is None or sample >= len(trace_ids):
        return list(trace_ids)
    return sorted(trace_ids, key=lambda t: sample_key(automation_id, t))[:sample]


# --- checking what is asked -------------------------------------------------------------------


def _filters(given: Any) -> Filters:
    if not isinstance(given, Mapping):
        raise UserError("filter: must be an object of the traces list's filters")
    try:
        check_filter_keys(given)
        return rule_filters(given)
    except InvalidFilters as bad:
        raise UserError(f"filter: {bad}") from None
    except UserError as bad:
        text = str(bad)
        raise UserError(text if text.startswith("filter") else f"filter: {text}") from None


def _sample(given: Any) -> int | None:
    if given is None or given == "all":
        return None
    if isinstance(given, Mapping) and set(given) == {"random"}:
        given = given["random"]
    if isinstance(given, bool) or not isinstance(given, int) or not 1 <= given <= MAX_SAMPLE:
        raise UserError(
            f"sample: {str(given)[:40]!r} is not 'all' or a number of traces from 1 to "
            f"{MAX_SAMPLE} (a random sample)"
        )
    return given


def _schedule(given: Any) -> str:
    if given not in SCHEDULES:
        raise UserError(f"schedule: {str(given)[:40]!r} is not one of {', '.join(SCHEDULES)}")
    return str(given)


def _max_per_run(given: Any) -> int:
    if given is None:
        return DEFAULT_MAX_PER_RUN
    if isinstance(given, bool) or not isinstance(given, int) or not 1 <= given <= MAX_PER_RUN:
        raise UserError(f"max_per_run: must be a whole number from 1 to {MAX_PER_RUN}")
    return given


def _target(conn: Connection, found: int, given: Any) -> dict[str, Any]:
    """target_kind, target_id and target_name of ``{"dataset": name}`` or ``{"queue": id}``."""
    if not isinstance(given, Mapping) or len(given) != 1 or not set(given) <= {"dataset", "queue"}:
        raise UserError('target: give {"dataset": NAME} or {"queue": ID}')
    if "dataset" in given:
        name = given["dataset"]
        dataset_id = (
            automation_store.dataset_named(conn, found, name) if isinstance(name, str) else None
        )
        if dataset_id is None:
            raise UserError(
                f"target: there is no dataset {str(name)[:200]!r} in this project; create it "
                "first (Datasets, or POST /api/v1/projects/{project}/datasets)"
            )
        return {"target_kind": "dataset", "target_id": dataset_id, "target_name": name}
    queue_id = given["queue"]
    queue = None
    if isinstance(queue_id, int) and not isinstance(queue_id, bool) and 1 <= queue_id < 2**31:
        queue = review_store.get_queue(conn, queue_id)
    if queue is None or int(queue["project_id"]) != found:
        raise UserError(f"target: queue {str(queue_id)[:40]} is not a review queue of this project")
    return {"target_kind": "queue", "target_id": queue_id, "target_name": str(queue["name"])}


def _automation(
    conn: Connection, who: Principal, automation_id: int, role: str = "viewer"
) -> dict[str, Any]:
    found = automation_store.get(conn, automation_id)
    if found is None or not who.may_see(str(found["project"])):
        raise NotFound(f"automation {automation_id} does not exist")
    who.require(str(found["project"]), role)
    return found


# --- what is shown ----------------------------------------------------------------------------


def _run_view(run: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    shown = dict(run)
    shown.pop("project_id", None)
    shown["window_start"] = iso(run.get("window_start_ns"))
    shown["window_end"] = iso(run.get("window_end_ns"))
    shown["started_at"] = iso(run.get("started_ns"))
    return shown


def _view(automation: Mapping[str, Any], last_run: Mapping[str, Any] | None) -> dict[str, Any]:
    target: dict[str, Any]
    if automation["target_kind"] == "dataset":
        target = {"dataset": automation["target_name"]}
    else:
        target = {"queue": automation["target_id"], "name": automation["target_name"]}
    return {
        "id": automation["id"],
        "project": automation["project"],
        "name": automation["name"],
        "filter": automation["filter"],
        "sample": "all" if automation["sample"] is None else automation["sample"],
        "schedule": automation["schedule"],
        "target": target,
        "max_per_run": automation["max_per_run"],
        "enabled": automation["enabled"],
        "next_run_ns": automation["next_run_ns"] if automation["enabled"] else None,
        "next_run_at": iso(automation["next_run_ns"]) if automation["enabled"] else None,
        "created_by": automation["created_by"],
        "created_ns": automation["created_ns"],
        "updated_ns": automation["updated_ns"],
        "last_run": _run_view(last_run),
    }


# --- use cases --------------------------------------------------------------------------------

FIELDS = ("name", "filter", "sample", "schedule", "target", "max_per_run", "enabled")


def create_automation(
    rt: Database,
    who: Principal,
    project: str,
    fields: Mapping[str, Any],
    *,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """A new automation (editors). UserError naming the field for a bad filter, sample,
    schedule or target; Conflict when the name is taken."""
    now = clock_now() if now_ns is None else now_ns
    name = fields.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise UserError("name: give a name of 1 to 200 characters")
    filter_ = dict(fields.get("filter") or {})
    _filters(filter_)
    sample = _sample(fields.get("sample"))
    schedule = _schedule(fields.get("schedule"))
    max_per_run = _max_per_run(fields.get("max_per_run"))
    enabled = fields.get("enabled") is not False
    with rt.write() as conn:
        found = project_id(conn, who, project, "editor")
        target = _target(conn, found, fields.get("target"))
        if automation_store.by_name(conn, found, name.strip()) is not None:
            raise Conflict(f"name: project {project!r} already has an automation {name!r}")
        # on_arrival: the traces stored from now on (older ones are a scheduled run's).
        span_cursor, score_cursor = automation_store.max_ids(conn)
        automation_id = automation_store.insert_automation(
            conn,
            found,
            {
                "name": name.strip(),
                "filter": filter_,
                "sample": sample,
                "schedule": schedule,
                **target,
                "max_per_run": max_per_run,
                "enabled": enabled,
                "next_run_ns": first_run_ns(schedule, now),
                "cursor_span_id": span_cursor,
                "cursor_score_id": score_cursor,
                "created_by": who.author,
                "created_ns": now,
                "updated_ns": now,
            },
        )
        return _view(_automation(conn, who, automation_id), None)


def update_automation(
    rt: Database,
    who: Principal,
    automation_id: int,
    fields: Mapping[str, Any],
    *,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """Change an automation (editors): only the fields given. ``enabled: false`` pauses it;
    resumed, it runs from the next period on (on_arrival: from what arrives next)."""
    now = clock_now() if now_ns is None else now_ns
    with rt.write() as conn:
        automation = _automation(conn, who, automation_id, "editor")
        values: dict[str, Any] = {}
        if fields.get("name") is not None:
            name = fields["name"]
            if not isinstance(name, str) or not name.strip() or len(name) > 200:
                raise UserError("name: give a name of 1 to 200 characters")
            other = automation_store.by_name(conn, automation["project_id"], name.strip())
            if other is not None and other["id"] != automation_id:
                raise Conflict(f"name: another automation is named {name!r}")
            values["name"] = name.strip()
        if fields.get("filter") is not None:
            _filters(fields["filter"])
            values["filter"] = dict(fields["filter"])
        if "sample" in fields:
            values["sample"] = _sample(fields["sample"])
        if fields.get("max_per_run") is not None:
            values["max_per_run"] = _max_per_run(fields["max_per_run"])
        if fields.get("target") is not None:
            values.update(_target(conn, automation["project_id"], fields["target"]))
        schedule = automation["schedule"]
        restart = False
        if fields.get("schedule") is not None and fields["schedule"] != schedule:
            schedule = _schedule(fields["schedule"])
            values["schedule"] = schedule
            restart = True
        if fields.get("enabled") is not None:
            enabled = bool(fields["enabled"])
            restart = restart or (enabled and not automation["enabled"])
            values["enabled"] = enabled
        if restart:
            values["next_run_ns"] = first_run_ns(schedule, now)
            values["cursor_span_id"], values["cursor_score_id"] = automation_store.max_ids(conn)
        automation_store.update_automation(conn, automation_id, {**values, "updated_ns": now})
        found = _automation(conn, who, automation_id)
        return _view(found, automation_store.last_runs(conn, [automation_id]).get(automation_id))


def delete_automation(rt: Database, who: Principal, automation_id: int) -> None:
    """Delete an automation and its runs (editors); what it added stays, and stays counted as
    added, so a new automation does not add the same traces again."""
    with rt.write() as conn:
        _automation(conn, who, automation_id, "editor")
        automation_store.delete_automation(conn, automation_id)


def get_automation(db: Database, who: Principal, automation_id: int) -> dict[str, Any]:
    """An automation with its last run and how many of its runs failed."""
    with db.read() as conn:
        found = _automation(conn, who, automation_id)
        shown = _view(found, automation_store.last_runs(conn, [automation_id]).get(automation_id))
        shown["failed_runs"] = automation_store.failed_runs(conn, automation_id)
        return shown


def list_automations(db: Database, who: Principal, project: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        found = automation_store.list_automations(conn, project_id(conn, who, project))
        last = automation_store.last_runs(conn, [int(a["id"]) for a in found])
        return [_view(a, last.get(int(a["id"]))) for a in found]


def list_runs(
    db: Database, who: Principal, automation_id: int, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The automation's runs, newest first."""
    with db.read() as conn:
        _automation(conn, who, automation_id)
        found = automation_store.runs(conn, automation_id, min(max(limit, 1), MAX_RUNS_SHOWN))
        return [shown for run in found if (shown := _run_view(run)) is not None]


def run_now(
    rt: Database,
    who: Principal,
    automation_id: int,
    *,
    now_ns: int | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> dict[str, Any]:
    """Run an automation at once (editors), paused or not: the run, failed or not. With
    ``since``/``until``, over the traces that started in that window (up to now) instead of
    the last period or the new arrivals; the schedule does not move either way."""
    now = clock_now() if now_ns is None else now_ns
    window = None
    if since_ns is not None or until_ns is not None:
        start = 0 if since_ns is None else since_ns
        end = now if until_ns is None else min(until_ns, now)
        if start >= end:
            raise UserError("since: the window must start before it ends (and before now)")
        window = (start, end)
    with rt.read() as conn:
        automation = _automation(conn, who, automation_id, "editor")
    run = execute(rt, automation, "manual", now, window=window)
    if run is None:  # an on_arrival run of the server's took the same arrivals
        raise Conflict("the automation is running right now; try again in a moment")
    return run


# --- running ----------------------------------------------------------------------------------


class _Lost(Exception):
    """Another worker claimed the run first."""


@dataclass
class _Plan:
    automation: dict[str, Any]
    trigger: str
    window: dict[str, Any]
    window_start_ns: int | None = None
    window_end_ns: int | None = None
    #: The automation's state after the run; None: a manual run moves nothing.
    claim: dict[str, Any] | None = None
    #: On failure, the state to move to instead.
    claim_on_failure: dict[str, Any] | None = None
    matched: list[str] = field(default_factory=list)


def _plan(
    conn: Connection,
    automation: dict[str, Any],
    trigger: str,
    now: int,
    window: tuple[int, int] | None = None,
) -> _Plan:
    schedule = automation["schedule"]
    filters = rule_filters(automation["filter"])
    project = int(automation["project_id"])
    if window is not None:  # a run by hand over a chosen window
        plan = _Plan(automation, trigger, {}, window[0], window[1])
        plan.window = {"kind": "chosen", "since": iso(window[0]), "until": iso(window[1])}
        plan.matched = automation_store.matching_traces(
            conn, project, filters, since_ns=window[0], until_ns=window[1]
        )
        return plan
    if schedule in PERIODS:
        size = PERIODS[schedule]
        if trigger == "schedule":
            start, end = previous_period(schedule, int(automation["next_run_ns"]))
            following = {"next_run_ns": int(automation["next_run_ns"]) + size}
            plan = _Plan(automation, trigger, {}, start, end, following, following)
        else:
            start, end = previous_period(schedule, now)
            plan = _Plan(automation, trigger, {}, start, end)
        plan.window = {"kind": schedule, "since": iso(start), "until": iso(end)}
        plan.matched = automation_store.matching_traces(
            conn, project, filters, since_ns=start, until_ns=end
        )
        return plan
    low_span, low_score = int(automation["cursor_span_id"]), int(automation["cursor_score_id"])
    high_span = max(
        low_span, automation_store.ready_span_id(conn, low_span, now - ARRIVAL_DELAY_NS)
    )
    high_score = max(low_score, automation_store.max_score_id(conn))
    moved = {"cursor_span_id": high_span, "cursor_score_id": high_score}
    if trigger == "schedule":
        plan = _Plan(
            automation,
            "arrival",
            {},
            claim={**moved, "next_run_ns": now + ARRIVAL_POLL_NS},
            claim_on_failure={"next_run_ns": now + RETRY_NS},
        )
    else:
        plan = _Plan(automation, trigger, {}, claim=moved)
    plan.window = {
        "kind": "on_arrival",
        "spans_after_id": low_span,
        "spans_to_id": high_span,
        "scores_after_id": low_score,
        "scores_to_id": high_score,
    }
    # New scores matter only to a filter on scores (thumbs_up = 0 given after the trace).
    scored = has_score_filter(filters) or bool(filters.disagreement)
    plan.matched = automation_store.matching_traces(
        conn,
        project,
        filters,
        span_ids=(low_span, high_span),
        score_ids=(low_score, high_score) if scored else None,
    )
    return plan


def _run_row(plan: _Plan, now: int, finished: int) -> dict[str, Any]:
    return {
        "project_id": plan.automation["project_id"],
        "automation_id": plan.automation["id"],
        "trigger": plan.trigger,
        "window_start_ns": plan.window_start_ns,
        "window_end_ns": plan.window_end_ns,
        "window": plan.window,
        "started_ns": now,
        "finished_ns": finished,
        "status": "ok",
        "matched": len(plan.matched),
        "sampled": 0,
        "added": 0,
        "skipped": 0,
        "over_cap": 0,
        "error": None,
    }


def _add(conn: Connection, plan: _Plan, now: int) -> dict[str, Any] | None:
    """Claim the run and add its traces, in the caller's transaction; the run's row (None: an
    arrival run that found nothing, which leaves no row)."""
    automation = plan.automation
    if plan.claim is not None and not automation_store.claim(
        conn, automation, plan.claim, schedule=plan.trigger != "manual"
    ):
        raise _Lost
    if not plan.matched and plan.trigger == "arrival":
        return None
    kind, target_id, name = (
        automation["target_kind"],
        int(automation["target_id"]),
        automation["name"],
    )
    project = int(automation["project_id"])
    dataset = queue = None
    if kind == "dataset":
        dataset = dataset_store.get(conn, project, automation["target_name"])
        if dataset is None or int(dataset["id"]) != target_id:
            raise UserError(f"the target dataset {automation['target_name']!r} no longer exists")
    else:
        queue = review_store.get_queue(conn, target_id)
        if queue is None or int(queue["project_id"]) != project:
            raise UserError(f"the target review queue {target_id} no longer exists")
    chosen = choose(int(automation["id"]), plan.matched, automation["sample"])
    held = automation_store.already_added(conn, kind, target_id, chosen)
    new = [t for t in chosen if t not in held]
    to_add = new[: int(automation["max_per_run"])]
    row = _run_row(plan, now, now)
    row.update(sampled=len(chosen), over_cap=len(new) - len(to_add))
    run_id = automation_store.insert_run(conn, row)
    fresh = automation_store.mark_added(conn, automation, to_add, run_id, now)
    author = f"automation {name}"
    added = len(fresh)
    if fresh and dataset is not None:
        metadata = automation_store.trace_metadata(conn, project, fresh)
        picked = [
            {
                "trace_id": trace_id,
                "span_id": None,
                "expected_from_output": True,
                "metadata": {
                    "automation": name,
                    "automation_run": run_id,
                    "expected_is_proposed": True,
                    "trace_metadata": metadata.get(trace_id, {}),
                },
            }
            for trace_id in fresh
        ]
        dataset_service.insert_spans(
            conn, project, dataset, picked, message=f"{author}, run {run_id}", author=author
        )
    elif fresh and queue is not None:
        added = review_service.add_traces(conn, queue, fresh, author)
    done = {
        "added": added,
        "skipped": len(held) + (len(to_add) - added),
        "finished_ns": max(now, clock_now()),
    }
    automation_store.update_run(conn, run_id, done)
    return {**row, **done, "id": run_id}


def execute(
    rt: Database,
    automation: dict[str, Any],
    trigger: str,
    now: int,
    *,
    window: tuple[int, int] | None = None,
) -> dict[str, Any] | None:
    """Run an automation once (``trigger``: schedule or manual); the run as shown, or None when
    another worker claimed it first or an arrival run found nothing new."""
    plan = _Plan(automation, trigger, {})
    try:
        with rt.read() as conn:
            plan = _plan(conn, automation, trigger, now, window)
        with rt.write() as conn:
            made = _add(conn, plan, now)
        return _run_view(made)
    except _Lost:
        return None
    except Exception as failed:
        if not isinstance(failed, UserError):
            log.exception("automation %s failed", automation["id"])
        return _record_failure(rt, plan, now, failed)


def _record_failure(
    rt: Database, plan: _Plan, now: int, failed: Exception
) -> dict[str, Any] | None:
    message = (str(failed) or type(failed).__name__)[:MAX_ERROR_CHARS]
    fallback: dict[str, Any] | None = None
    if plan.trigger != "manual":
        fallback = plan.claim_on_failure
        if fallback is None:  # the plan itself failed: move on a period, or retry arrivals
            size = PERIODS.get(plan.automation["schedule"])
            fallback = {
                "next_run_ns": int(plan.automation["next_run_ns"]) + size
                if size is not None
                else now + RETRY_NS
            }
    with rt.write() as conn:
        if fallback is not None and not automation_store.claim(
            conn, plan.automation, fallback, schedule=True
        ):
            return None
        row = {**_run_row(plan, now, clock_now()), "status": "failed", "error": message}
        run_id = automation_store.insert_run(conn, row)
    return _run_view({**row, "id": run_id})


def run_due(rt: Database, *, now_ns: int | None = None) -> list[dict[str, Any]]:
    """Run every automation whose time has come (each missed period in turn); the runs."""
    now = clock_now() if now_ns is None else now_ns
    done: list[dict[str, Any]] = []
    for _round in range(100):  # a server down for days catches up, a period per round
        with rt.read() as conn:
            found = automation_store.due(conn, now)
        if not found:
            break
        for automation in found:
            run = execute(rt, automation, "schedule", now)
            if run is not None:
                done.append(run)
    return done


Clock = Callable[[], int]


class AutomationWorker:
    """Runs due automations from a thread of the server (and of ``assay worker``)."""

    def __init__(
        self, rt: Database, *, poll_seconds: float = 5.0, clock: Clock = time.time_ns
    ) -> None:
        self.rt = rt
        self.poll_seconds = poll_seconds
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> AutomationWorker:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="assay-automations", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                run_due(self.rt, now_ns=self.clock())
            except Exception:
                log.exception("running automations failed; will try again")
