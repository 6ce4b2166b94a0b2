"""The online-scoring worker: a scheduler that turns quiet new traces into jobs, and threads
that claim jobs, call the judges and store their scores.

It runs inside `assay server` (ASSAY_SERVER_WORKER) and as `assay worker` processes; any number
of them may share one PostgreSQL database (one per SQLite database). Everything it knows is in
the store, so a worker killed at any moment loses nothing: its claimed jobs return to the queue
when their lease runs out, and the UNIQUE job per (item, evaluator version) and the lease check
at completion keep every item scored at most once.

The scheduler does not hook into ingest: it reads spans stored since its cursor (span ids are
assigned in commit order) whose storing is older than the rule's delay, and schedules each
trace whose last span is that old.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets as random_ids
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import orjson

from assay.errors import AssayError
from assay.ingest.normalize import normalize
from assay.ingest.otlp import RawSpan
from assay.scorers.judges import Judge
from assay.services import calibration, monitors, routing
from assay.services.connections import ModelAccess, model_access
from assay.services.evaluators import (
    Outcome,
    make_builtin,
    run_builtin,
    run_judge,
    runnable_judge,
)
from assay.services.rules import new_job, rule_filters, sampled, utc_day
from assay.services.runtime import Runtime
from assay.store import online as online_store
from assay.store.locks import WriteLock

log = logging.getLogger("assay.online")

MAX_ATTEMPTS = 5
FIRST_BACKOFF_S = 2.0
MAX_BACKOFF_S = 300.0
CLAIM_CANDIDATES = 16
#: How long a write of the worker's waits for ingest's queue to empty before going anyway.
WRITER_BUSY_WAIT_S = 0.5
#: A pause in ingest this long lets the worker schedule and claim at once ...
INGEST_PAUSE_S = 0.05
#: ... and without one it still takes a turn this often.
MAX_DEFER_S = 0.5
JUDGES_SUFFIX = ".judges"
SCORE_SOURCES = {"judge": "llm", "builtin": "code"}
#: How often the scheduler checks the judges' calibration and drift (see calibration.watch).
WATCH_SECONDS = 300.0
#: How often the worker looks for monitors due for evaluation (each is due once a minute).
MONITOR_SECONDS = 5.0
#: How often the scheduler compares new end-user feedback with the judges' verdicts.
ROUTE_SECONDS = 2.0

Clock = Callable[[], int]


def judges_project(project: str) -> str:
    """The project a project's judge calls are traced into, apart from its agent's traces."""
    return project + JUDGES_SUFFIX


def backoff_ns(attempts: int) -> int:
    return int(min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(attempts - 1, 0)) * 1e9)


@dataclass
class _Result:
    """A job's evaluation, waiting to be stored."""

    job: dict[str, Any]
    version: dict[str, Any] | None
    project: str
    outcome: Outcome
    started: int
    ended: int

    @property
    def retries(self) -> bool:
        return self.outcome.retryable and self.job["attempts"] < MAX_ATTEMPTS


@dataclass
class _Plan:
    """A rule's scheduling step: (rule id, old cursor, new cursor, matched, sampled, now)."""

    cursor_move: tuple[int, int, int, int, int, int]
    jobs: list[dict[str, Any]]


@dataclass
class _Budget:
    rule_id: int
    enabled: bool
    daily_budget_usd: float | None
    calls_per_minute: int | None


class OnlineWorker:
    """Schedules and runs online-scoring jobs. ``clock`` (ns) is injectable for tests."""

    def __init__(
        self,
        rt: Runtime,
        *,
        threads: int | None = None,
        lease_seconds: int | None = None,
        poll_seconds: float | None = None,
        clock: Clock = time.time_ns,
        name: str | None = None,
    ) -> None:
        settings = rt.settings
        self.rt = rt
        self.threads = threads or settings.worker_threads
        self.lease_ns = int((lease_seconds or settings.worker_lease_seconds) * 1e9)
        self.poll_seconds = poll_seconds or settings.worker_poll_ms / 1000
        self.clock = clock
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{random_ids.token_hex(3)}"
        # A call must end well inside its lease, or another worker would take the job over.
        self.call_timeout = max(1.0, min(60.0, self.lease_ns / 1e9 / 2))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._judges: OrderedDict[tuple[int, int, int], Judge] = OrderedDict()
        self._judges_lock = threading.Lock()
        self.scored = 0
        self._todo: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._done: queue.Queue[_Result] = queue.Queue()
        # SQLite: queue for the span writer's lock rather than sleep in the busy handler.
        self._lock = WriteLock(rt.updates)
        self._last_turn = 0.0
        #: The rules of the results being settled (their actions), read once per batch.
        self._rules: dict[int, dict[str, Any] | None] = {}

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> OnlineWorker:
        """One coordinator thread takes every write turn (schedule, claim a batch, settle a
        batch of results); the judge threads only call models. The store sees a few short
        write transactions per tick rather than two per job."""
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._coordinate, name="assay-online", daemon=True),
            # Monitors have a thread of their own: a slow webhook never holds up scoring.
            threading.Thread(target=self._monitor_loop, name="assay-monitors", daemon=True),
        ] + [
            threading.Thread(target=self._judge_loop, name=f"assay-judge-{i}", daemon=True)
            for i in range(self.threads)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for _ in range(self.threads):
            self._todo.put(None)
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        self._lock.close()

    def _coordinate(self) -> None:
        in_flight = 0
        next_schedule = 0.0
        idle = False
        watched = 0.0
        routed = 0.0
        while not self._stop.is_set():
            finished: list[_Result] = []
            try:
                # Sleep only when there is nothing to claim (or no thread free): a result
                # coming back wakes the loop at once.
                wait = self.poll_seconds if idle or in_flight >= self.threads else 0.0
                finished.append(self._done.get(timeout=wait) if wait else self._done.get_nowait())
                while True:
                    finished.append(self._done.get_nowait())
            except queue.Empty:
                pass
            try:
                if finished:
                    in_flight -= len(finished)
                    self._settle(finished)
                if time.monotonic() >= next_schedule and self._ingest_allows():
                    next_schedule = time.monotonic() + self.poll_seconds
                    self.schedule_once()
                idle = True
                free = self.threads - in_flight
                if free > 0 and self._ingest_allows():
                    jobs = self.claim_batch(free)
                    in_flight += len(jobs)
                    idle = not jobs
                    for job in jobs:
                        self._todo.put(job)
            except Exception:
                log.exception("online scoring failed in the worker; will try again")
                idle = True
            if time.monotonic() - routed >= ROUTE_SECONDS and self._ingest_allows():
                routed = time.monotonic()
                try:
                    # Judges whose verdict end-user feedback contradicts: to people.
                    routing.route_feedback(self.rt)
                except Exception:
                    log.exception("routing feedback disagreements failed; will try again")
            if time.monotonic() - watched >= WATCH_SECONDS:
                watched = time.monotonic()
                try:
                    # Judges that lost their calibration (a new version) or drifted: pause.
                    calibration.watch(self.rt)
                except Exception:
                    log.exception("checking the judges' calibration failed; will try again")

    def _monitor_loop(self) -> None:
        while not self._stop.wait(MONITOR_SECONDS):
            try:
                monitors.evaluate_due(self.rt, self.clock(), owner=self.name)
            except Exception:
                log.exception("evaluating monitors failed in the worker; will try again")

    def _judge_loop(self) -> None:
        while True:
            job = self._todo.get()
            if job is None:
                return
            try:
                result = self.evaluate(job)
            except Exception as failed:  # never lose a claimed job's slot
                log.exception("an online-scoring job failed in the worker")
                now = self.clock()
                result = _Result(job, None, "", Outcome(error=str(failed)), now, now)
            self._done.put(result)

    # --- taking turns with the span writer ----------------------------------------------

    def _ingest_allows(self) -> bool:
        """Ingest goes first: new work starts in a pause of ingest, or after waiting at most
        MAX_DEFER_S (so a server that never pauses still scores, a batch at a time)."""
        now = time.monotonic()
        if (
            self.rt.writer.ingest_quiet_for() >= INGEST_PAUSE_S
            or now - self._last_turn >= MAX_DEFER_S
        ):
            self._last_turn = now
            return True
        return False

    @contextmanager
    def _write(self) -> Iterator[Any]:
        """A write transaction that waits (a little) for ingest to be idle, then queues for
        the span writer's own lock, so neither sleeps in SQLite's busy handler."""
        deadline = time.monotonic() + WRITER_BUSY_WAIT_S
        while self.rt.writer.pending and time.monotonic() < deadline:
            time.sleep(0.002)
        with self._lock.held(), self.rt.write() as conn:
            yield conn

    # --- scheduling ---------------------------------------------------------------------

    def schedule_once(self) -> int:
        """Queue jobs for every enabled rule's quiet new traces; the number of jobs offered.
        Nothing new stored since the rules last looked costs one indexed read."""
        with self.rt.read() as conn:
            if not online_store.scheduling_due(conn):
                return 0
            found = [rule for rule in online_store.list_rules(conn) if rule["enabled"]]
        plans = [plan for plan in (self._plan(rule) for rule in found) if plan is not None]
        if not plans:
            return 0
        offered = 0
        with self._write() as conn:
            for plan in plans:
                if online_store.advance_cursor(conn, *plan.cursor_move):
                    online_store.enqueue(conn, plan.jobs)
                    offered += len(plan.jobs)
        return offered

    def schedule_rule(self, rule: dict[str, Any]) -> int:
        plan = self._plan(rule)
        if plan is None:
            return 0
        with self._write() as conn:
            if not online_store.advance_cursor(conn, *plan.cursor_move):
                return 0
            online_store.enqueue(conn, plan.jobs)
        return len(plan.jobs)

    def _plan(self, rule: dict[str, Any]) -> _Plan | None:
        """What scheduling a rule would write: the cursor's move, its counts, and the jobs."""
        now = self.clock()
        horizon = now - int(rule["delay_seconds"]) * 1_000_000_000
        cursor = int(rule["cursor_span_id"])
        filters = rule_filters(rule["filter"])
        with self.rt.read() as conn:
            upper = online_store.ready_window(conn, cursor, horizon)
            if upper <= cursor:
                return None
            items = online_store.quiet_items(conn, rule, filters, cursor, upper, horizon)
            versions = online_store.current_versions(conn, rule["evaluators"])
        chosen = [(t, s) for t, s in items if sampled(t, rule["sample_rate"])]
        jobs = [
            new_job(rule["project_id"], rule["id"], version["version_id"], t, s, now)
            for t, s in chosen
            for version in versions
        ]
        return _Plan((rule["id"], cursor, upper, len(items), len(chosen), now), jobs)

    # --- claiming -----------------------------------------------------------------------

    def _blocked(self, conn: Any, now: int) -> tuple[set[int], dict[int, _Budget]]:
        """Rules whose jobs may not start now (off, budget spent, rate cap reached), and the
        capped ones whose jobs need a closer look under the rule's lock."""
        blocked: set[int] = set()
        capped: dict[int, _Budget] = {}
        day = utc_day(now)
        for row in online_store.budgeted_rules(conn):
            budget = _Budget(
                row["id"], row["enabled"], row["daily_budget_usd"], row["calls_per_minute"]
            )
            if not budget.enabled:
                blocked.add(budget.rule_id)
                continue
            if budget.daily_budget_usd is not None:
                spent, _calls, _month = online_store.spend(conn, budget.rule_id, day)
                if spent >= budget.daily_budget_usd:
                    blocked.add(budget.rule_id)
                    continue
            if budget.calls_per_minute is not None:
                recent = online_store.calls_since(conn, budget.rule_id, now - 60_000_000_000)
                if recent >= budget.calls_per_minute:
                    blocked.add(budget.rule_id)
                    continue
            capped[budget.rule_id] = budget
        return blocked, capped

    def _may_start(self, conn: Any, budget: _Budget, now: int) -> bool:
        """Under the rule's lock: would one more call stay within the caps, counting the
        calls in flight at the rule's cost per call so far (one at a time before the first)?
        Jobs taken earlier in the same claim count as in flight."""
        online_store.lock_rule(conn, budget.rule_id)
        running = online_store.running_count(conn, budget.rule_id, now)
        if budget.calls_per_minute is not None:
            recent = online_store.calls_since(conn, budget.rule_id, now - 60_000_000_000)
            if recent >= budget.calls_per_minute:
                return False
        if budget.daily_budget_usd is not None:
            spent, calls, _month = online_store.spend(conn, budget.rule_id, utc_day(now))
            if calls == 0:
                return running == 0 and spent < budget.daily_budget_usd
            return spent + running * (spent / calls) < budget.daily_budget_usd
        return True

    def claim_batch(self, limit: int) -> list[dict[str, Any]]:
        """Take up to ``limit`` jobs in one write transaction (none taken, none written)."""
        now = self.clock()
        with self.rt.read() as conn:
            if not online_store.claimable(conn, now):
                return []
        taken: list[dict[str, Any]] = []
        with self._write() as conn:
            blocked, capped = self._blocked(conn, now)
            candidates = online_store.claim_candidates(
                conn, now, blocked, max(limit, CLAIM_CANDIDATES)
            )
            for job in candidates:
                budget = capped.get(job["rule_id"])
                if budget is not None and not self._may_start(conn, budget, now):
                    continue
                online_store.take(conn, job["id"], self.name, now, self.lease_ns)
                job["attempts"] += 1
                taken.append(job)
                if len(taken) >= limit:
                    break
        return taken

    def claim(self) -> dict[str, Any] | None:
        taken = self.claim_batch(1)
        return taken[0] if taken else None

    # --- running ------------------------------------------------------------------------

    def work_once(self) -> bool:
        """Claim one job and run it; False when there was none to claim."""
        job = self.claim()
        if job is None:
            return False
        self.run(job)
        return True

    def _judge_for(self, version: dict[str, Any], access: ModelAccess) -> Judge:
        key = (int(version["version_id"]), access.connection_id, access.updated_ns)
        with self._judges_lock:
            made = self._judges.get(key)
            if made is not None:
                self._judges.move_to_end(key)
                return made
        made = runnable_judge(
            self.rt, version["name"], version["definition"], access, self.call_timeout
        )
        with self._judges_lock:
            self._judges[key] = made
            while len(self._judges) > 64:
                self._judges.popitem(last=False)
        return made

    def _outcome(self, job: dict[str, Any], version: dict[str, Any] | None) -> Outcome:
        if version is None:
            return Outcome(error="the evaluator version was deleted")
        project = ""
        with self.rt.read() as conn:
            item = online_store.judged_item(
                conn, job["project_id"], job["trace_id"], job["span_id"]
            )
            if version["kind"] == "judge":
                if version["connection_id"] is None:
                    return Outcome(
                        error=f"evaluator {version['name']!r} has no connection: give it one"
                    )
                access = model_access(self.rt, conn, version["connection_id"])
                project = online_store.project_name(conn, job["project_id"])
        if item is None:
            return Outcome(error="the trace (or span) is no longer in the project")
        if version["kind"] != "judge":
            return run_builtin(make_builtin(version["name"], version["definition"]), item)
        made = self._judge_for(version, access)
        return run_judge(made, item, access.api_key, self.rt.prices_for(project))

    def run(self, job: dict[str, Any]) -> None:
        """Run one claimed job and store its result at once (tests and `work_once`)."""
        self._settle([self.evaluate(job)])

    def evaluate(self, job: dict[str, Any]) -> _Result:
        """Call the job's evaluator; nothing is written yet."""
        with self.rt.read() as conn:
            version = online_store.version_row(conn, job["evaluator_version_id"])
            project = online_store.project_name(conn, job["project_id"])
        started = self.clock()
        try:
            outcome = self._outcome(job, version)
        except AssayError as refused:  # a connection that cannot be used, a refused address
            outcome = Outcome(error=str(refused))
        return _Result(job, version, project, outcome, started, self.clock())

    def _settle(self, results: list[_Result]) -> None:
        """Store a batch of results: the judge calls' spans in one write to the span writer,
        then every job closed (scored, failed or put back for a retry) in one transaction."""
        traced = self._trace_calls(results)
        closed: list[tuple[_Result, bool]] = []
        self._rules = {}
        try:
            with self._write() as conn:
                for result in results:
                    closed.append((result, self._close(conn, result, traced.get(id(result)))))
        except Exception:
            if len(results) == 1:
                raise
            # One result the store refuses must not lose the others: close each on its own
            # (one that still fails returns to the queue when its lease runs out).
            log.exception("storing %d online-scoring results failed; one by one", len(results))
            closed = []
            for result in results:
                try:
                    with self._write() as conn:
                        closed.append((result, self._close(conn, result, traced.get(id(result)))))
                except Exception:
                    log.exception("storing the result of job %s failed", result.job["id"])
        for result, done in closed:
            if not done:
                log.warning(
                    "job %s was taken over by another worker; its result is dropped",
                    result.job["id"],
                )

    def _close(self, conn: Any, result: _Result, judge_trace: str | None) -> bool:
        job, version, outcome, now = result.job, result.version, result.outcome, result.ended
        if result.retries:
            message = f"attempt {job['attempts']} of {MAX_ATTEMPTS}: {outcome.error}"
            at_ns = now + backoff_ns(job["attempts"])
            return online_store.retry_later(conn, job, self.name, error=message, at_ns=at_ns)
        score = None
        if outcome.score is not None and version is not None:
            score = {
                "trace_id": job["trace_id"],
                "span_id": job["span_id"] or None,
                "name": version["name"],
                "value": outcome.score.value,
                "label": outcome.score.label,
                "rationale": outcome.score.rationale,
                "source": SCORE_SOURCES.get(version["kind"], "code"),
                "author": f"evaluator {version['name']} v{version['version']}",
                "metadata": {
                    "evaluator": version["name"],
                    "evaluator_id": version["id"],
                    "evaluator_version": version["version"],
                    "version_hash": version["version_hash"],
                    "rule_id": job["rule_id"],
                    "model": outcome.responses[0].model if outcome.responses else None,
                    "cost": outcome.cost,
                    "judge_project": judges_project(result.project) if judge_trace else None,
                    "judge_trace_id": judge_trace,
                },
            }
        problem = None
        if score is None:
            problem = outcome.error or "no score"
            if outcome.retryable:
                problem = f"gave up after {job['attempts']} attempts: {problem}"
        done = online_store.finish(
            conn,
            job,
            self.name,
            score=score,
            cost=outcome.cost,
            error=problem,
            day=utc_day(now),
            now_ns=now,
        )
        if done and score is not None:
            self.scored += 1
        if done and job["rule_id"] is not None:
            rule_id = int(job["rule_id"])
            if rule_id not in self._rules:
                self._rules[rule_id] = online_store.get_rule(conn, rule_id)
            # The rule's actions: an undecided verdict, or the sample, to people.
            routing.after_job(conn, self._rules[rule_id], job, score, problem)
        return done

    # --- tracing the judge's call -------------------------------------------------------

    def _trace_calls(self, results: list[_Result]) -> dict[int, str]:
        """The judge calls of a batch, in one write; by result, the trace id each got. Tracing
        must not fail the jobs."""
        rows: dict[int, tuple[str, dict[str, Any]]] = {}
        for result in results:
            if result.retries or not result.outcome.responses or result.version is None:
                continue
            made = self._call_span(result)
            if made is not None:
                rows[id(result)] = made
        if not rows:
            return {}
        try:
            targets = [judges_project(r.project) for r in results if id(r) in rows]
            self.rt.writer.write_sync([row for _trace, row in rows.values()], targets)
        except Exception:
            log.exception("could not trace %d judge calls", len(rows))
            return {}
        return {key: trace_id for key, (trace_id, _row) in rows.items()}

    def _call_span(self, result: _Result) -> tuple[str, dict[str, Any]] | None:
        """The judge's call as an ``llm`` span in the project's judges project: tokens, cost,
        prompt and answer (never the key)."""
        project, job, outcome = result.project, result.job, result.outcome
        version, started, ended = result.version, result.started, result.ended
        assert version is not None
        try:
            response = outcome.responses[0]
            usage = response.usage
            answer: dict[str, Any] = {"role": "assistant", "content": response.text}
            if response.tool_calls:
                answer["tool_calls"] = [
                    {"name": c.name, "arguments": c.raw_arguments} for c in response.tool_calls
                ]
            trace_id = random_ids.token_hex(16)
            target = judges_project(project)
            attributes: dict[str, Any] = {
                "assay.span.type": "llm",
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": response.provider,
                "gen_ai.request.model": response.model,
                "gen_ai.response.model": response.model,
                "gen_ai.usage.input_tokens": usage.input_tokens,
                "gen_ai.usage.output_tokens": usage.output_tokens,
                "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens,
                "assay.cost": outcome.cost,
                "gen_ai.input.messages": orjson.dumps(outcome.prompt).decode(),
                "gen_ai.output.messages": orjson.dumps([answer]).decode(),
                "assay.metadata.evaluator": version["name"],
                "assay.metadata.evaluator_version": str(version["version"]),
                "assay.metadata.project": project,
                "assay.metadata.trace_id": job["trace_id"],
                "assay.metadata.span_id": job["span_id"],
                "assay.metadata.rule_id": str(job["rule_id"]),
            }
            raw = RawSpan(
                project=target,
                trace_id=trace_id,
                span_id=random_ids.token_hex(8),
                parent_span_id=None,
                name=f"judge {version['name']}",
                kind=3,
                start_ns=started,
                end_ns=max(ended, started),
                status_code=2 if outcome.error else 0,
                status_message=outcome.error,
                attributes=attributes,
                events=[],
                links=[],
                resource={"service.name": target},
                scope={"name": "assay.online"},
            )
            row = normalize(raw, self.rt.prices_for(target).cost, time.time_ns())
            return trace_id, row
        except Exception:
            log.exception("could not trace a judge call into %s", judges_project(project))
            return None
