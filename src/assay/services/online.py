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
import secrets as random_ids
import socket
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from assay.errors import AssayError
from assay.ingest.normalize import normalize
from assay.ingest.otlp import RawSpan
from assay.scorers.judges import Judge
from assay.services import calibration
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

log = logging.getLogger("assay.online")

MAX_ATTEMPTS = 5
FIRST_BACKOFF_S = 2.0
MAX_BACKOFF_S = 300.0
CLAIM_CANDIDATES = 16
JUDGES_SUFFIX = ".judges"
SCORE_SOURCES = {"judge": "llm", "builtin": "code"}
#: How often the scheduler checks the judges' calibration and drift (see calibration.watch).
WATCH_SECONDS = 300.0

Clock = Callable[[], int]


def judges_project(project: str) -> str:
    """The project a project's judge calls are traced into, apart from its agent's traces."""
    return project + JUDGES_SUFFIX


def backoff_ns(attempts: int) -> int:
    return int(min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** max(attempts - 1, 0)) * 1e9)


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

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> OnlineWorker:
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._schedule_loop, name="assay-scheduler", daemon=True)
        ] + [
            threading.Thread(target=self._work_loop, name=f"assay-judge-{i}", daemon=True)
            for i in range(self.threads)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _schedule_loop(self) -> None:
        watched = 0.0
        while not self._stop.is_set():
            try:
                self.schedule_once()
            except Exception:
                log.exception("scheduling online scoring failed; will try again")
            if time.monotonic() - watched >= WATCH_SECONDS:
                watched = time.monotonic()
                try:
                    # Judges that lost their calibration (a new version) or drifted: pause.
                    calibration.watch(self.rt)
                except Exception:
                    log.exception("checking the judges' calibration failed; will try again")
            self._stop.wait(self.poll_seconds)

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            try:
                worked = self.work_once()
            except Exception:
                log.exception("an online-scoring job failed in the worker; will try again")
                worked = False
            if not worked:
                self._stop.wait(self.poll_seconds)

    # --- scheduling ---------------------------------------------------------------------

    def schedule_once(self) -> int:
        """Queue jobs for every enabled rule's quiet new traces; the number of jobs offered."""
        with self.rt.read() as conn:
            found = [rule for rule in online_store.list_rules(conn) if rule["enabled"]]
        return sum(self.schedule_rule(rule) for rule in found)

    def schedule_rule(self, rule: dict[str, Any]) -> int:
        now = self.clock()
        horizon = now - int(rule["delay_seconds"]) * 1_000_000_000
        cursor = int(rule["cursor_span_id"])
        filters = rule_filters(rule["filter"])
        with self.rt.read() as conn:
            upper = online_store.ready_window(conn, cursor, horizon)
            if upper <= cursor:
                return 0
            quiet = online_store.quiet_traces(conn, rule["project_id"], cursor, upper, horizon)
            items = online_store.matching_items(conn, rule, filters, quiet) if quiet else []
            versions = online_store.current_versions(conn, rule["evaluators"])
        chosen = [(t, s) for t, s in items if sampled(t, rule["sample_rate"])]
        jobs = [
            new_job(rule["project_id"], rule["id"], version["version_id"], t, s, now)
            for t, s in chosen
            for version in versions
        ]
        with self.rt.write() as conn:
            moved = online_store.advance_cursor(
                conn, rule["id"], cursor, upper, len(items), len(chosen), now
            )
            if moved:
                online_store.enqueue(conn, jobs)
        return len(jobs) if moved else 0

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
        calls in flight at the rule's cost per call so far (one at a time before the first)?"""
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

    def claim(self) -> dict[str, Any] | None:
        now = self.clock()
        with self.rt.write() as conn:
            blocked, capped = self._blocked(conn, now)
            for job in online_store.claim_candidates(conn, now, blocked, CLAIM_CANDIDATES):
                budget = capped.get(job["rule_id"])
                if budget is not None and not self._may_start(conn, budget, now):
                    continue
                online_store.take(conn, job["id"], self.name, now, self.lease_ns)
                job["attempts"] += 1
                return job
        return None

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
        with self.rt.read() as conn:
            version = online_store.version_row(conn, job["evaluator_version_id"])
            project = online_store.project_name(conn, job["project_id"])
        started = self.clock()
        try:
            outcome = self._outcome(job, version)
        except AssayError as refused:  # a connection that cannot be used, a refused address
            outcome = Outcome(error=str(refused))
        now = self.clock()
        if outcome.retryable and job["attempts"] < MAX_ATTEMPTS:
            message = f"attempt {job['attempts']} of {MAX_ATTEMPTS}: {outcome.error}"
            with self.rt.write() as conn:
                online_store.retry_later(
                    conn, job, self.name, error=message, at_ns=now + backoff_ns(job["attempts"])
                )
            return
        judge_trace = None
        if outcome.responses and version is not None:
            judge_trace = self._trace_call(project, job, version, outcome, started, now)
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
                    "judge_project": judges_project(project) if judge_trace else None,
                    "judge_trace_id": judge_trace,
                },
            }
        problem = None
        if score is None:
            problem = outcome.error or "no score"
            if outcome.retryable:
                problem = f"gave up after {job['attempts']} attempts: {problem}"
        with self.rt.write() as conn:
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
        if not done:
            log.warning("job %s was taken over by another worker; its result is dropped", job["id"])

    # --- tracing the judge's call -------------------------------------------------------

    def _trace_call(
        self,
        project: str,
        job: dict[str, Any],
        version: dict[str, Any],
        outcome: Outcome,
        started: int,
        ended: int,
    ) -> str | None:
        """The judge's call as an ``llm`` span in the project's judges project: tokens, cost,
        prompt and answer (never the key). Tracing must not fail the job."""
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
            self.rt.writer.write_sync([row], [target])
            return trace_id
        except Exception:
            log.exception("could not trace a judge call into %s", judges_project(project))
            return None
