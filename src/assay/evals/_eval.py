"""`assay.Eval`: run a task over cases, score every output, summarise with intervals."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.client import Client
from assay.errors import UserError
from assay.evals._datasets import Dataset
from assay.evals._experiment import ExperimentRecorder, case_key
from assay.evals._scorer import Score, Scorer, as_scorer, to_scores
from assay.evals._trace import TraceCollector, collecting
from assay.evals.rows import Row
from assay.evals.summary import ScoreSummary, summarise, summary_dict
from assay.sdk import _state as sdk_state
from assay.sdk import span as trace_span
from assay.sdk._exporter import ExporterConfig
from assay.settings import from_environment, setting

__all__ = ["REGISTRY", "Case", "Eval", "EvalResult", "Hooks"]

log = logging.getLogger("assay.evals")

ROWS_PER_SEND = 10

#: Evals defined while importing an eval file, for `assay eval` to find.
REGISTRY: list[Eval] = []


@dataclass(frozen=True)
class Case:
    """One input to run the task on, with what a good output looks like."""

    input: Any
    expected: Any = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None
    tags: Sequence[str] = ()


@dataclass
class Hooks:
    """Passed to a task that takes a second argument: the case's metadata and its span."""

    metadata: Mapping[str, Any]
    expected: Any
    span: Any


@dataclass
class EvalResult:
    name: str
    rows: list[Row]
    summary: dict[str, ScoreSummary]
    failed_thresholds: list[str]
    #: The stored experiment's id, when the run was sent to a server.
    experiment_id: int | None = None
    #: Against the baseline experiment: per-score deltas, per-case deltas (see comparison.py).
    comparison: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return not self.failed_thresholds

    @property
    def errored_rows(self) -> int:
        return sum(1 for row in self.rows if row.error)


def _cases(data: Any) -> list[Case]:
    if callable(data) and not isinstance(data, Iterable):
        data = data()
    cases = []
    for index, item in enumerate(data):
        if isinstance(item, Case):
            case = item
        elif isinstance(item, Mapping) and "input" in item:
            case = Case(
                input=item["input"],
                expected=item.get("expected"),
                metadata=item.get("metadata") or {},
                id=item.get("record_id") or item.get("id"),
                tags=item.get("tags") or (),
            )
        else:
            raise UserError(
                f"case {index}: need an assay.Case or a dict with 'input'; got {item!r:.80}"
            )
        cases.append(
            case
            if case.id
            else Case(case.input, case.expected, case.metadata, str(index), case.tags)
        )
    return cases


_TRANSIENT_NAMES = ("RateLimit", "Timeout", "Connection", "Unavailable", "Overloaded")


def is_transient(error: BaseException) -> bool:
    """Worth retrying: rate limits, time-outs, dropped connections, 429 and 5xx answers."""
    if isinstance(error, ConnectionError | TimeoutError):
        return True
    name = type(error).__name__
    if any(part in name for part in _TRANSIENT_NAMES):
        return True
    status = getattr(error, "status_code", None) or getattr(error, "status", None)
    return isinstance(status, int) and (status == 429 or status >= 500)


def _takes_hooks(task: Callable[..., Any]) -> bool:
    try:
        parameters = [
            p
            for p in inspect.signature(task).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return False
    return len(parameters) >= 2


class Eval:
    """An evaluation: ``task`` run on every case of ``data`` (``trials`` times), each output
    scored by ``scores``. Defining one registers it for ``assay eval``; ``.run()`` runs it."""

    def __init__(
        self,
        name: str,
        data: Any,
        task: Callable[..., Any],
        scores: Sequence[Callable[..., Any] | Scorer] = (),
        *,
        project: str | None = None,
        experiment: str | None = None,
        trials: int = 1,
        max_concurrency: int = 8,
        timeout: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        baseline: str | None = None,
        thresholds: Mapping[str, float] | None = None,
        retries: int = 2,
    ) -> None:
        if trials < 1:
            raise UserError("trials must be at least 1")
        if max_concurrency < 1:
            raise UserError("max_concurrency must be at least 1")
        if not callable(task):
            raise UserError(f"task must be callable; got {task!r}")
        self.name = name
        # An iterator can be read once: keep its cases, so counting and running see them all.
        self.data = list(data) if isinstance(data, Iterator) else data
        self.task = task
        self.scorers = [as_scorer(s) for s in scores]
        self.project = project
        self.experiment = experiment
        self.trials = trials
        self.max_concurrency = max_concurrency
        self.timeout = timeout
        self.metadata = dict(metadata or {})
        self.baseline = baseline
        self.thresholds = dict(thresholds or {})
        #: Re-runs of a case whose task failed with a transient error (rate limit, time-out,
        #: connection), with back-off; other errors are recorded at once.
        self.retries = max(0, retries)
        self._collector: TraceCollector | None = None
        unknown = set(self.thresholds) - {s.name for s in self.scorers}
        if unknown and self.scorers:
            log.info("thresholds name scores no scorer here produces by name: %s", unknown)
        REGISTRY.append(self)

    # --- running -------------------------------------------------------------------------

    def run(
        self,
        *,
        send: bool | None = None,
        resume: bool = False,
        on_row: Callable[[Row], None] | None = None,
    ) -> EvalResult:
        """Run every case. ``send`` stores the run as an experiment on the Assay server
        (default: when ``assay.init()`` was called or ASSAY_URL is set); ``resume`` continues
        the latest unfinished experiment of this eval, re-running only missing or errored
        rows. Inside a running event loop (a Jupyter notebook, an async framework's thread)
        the run goes on a thread of its own; async code can ``await run_async(...)`` instead."""
        work = functools.partial(self.run_async, send=send, resume=resume, on_row=on_row)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(work())
        # asyncio.run refuses to nest: run it beside the caller's loop, with its context
        # (the active span, assay.init's state) carried over.
        context = contextvars.copy_context()
        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="assay-eval") as pool:
            return pool.submit(context.run, lambda: asyncio.run(work())).result()

    def _project(self) -> str:
        if self.project:
            return self.project
        if sdk_state.STATE.exporter is not None:
            return sdk_state.STATE.project
        return str(setting("project"))

    def _export_config(self, recorder: ExperimentRecorder | None) -> ExporterConfig | None:
        """Where the cases' traces go when `assay.init()` was not called but the run is stored:
        the same server and project as the experiment, so its rows link to their traces."""
        if recorder is None or sdk_state.STATE.exporter is not None:
            return None
        client = recorder.client
        return ExporterConfig(url=client.url, project=recorder.project, api_key=client.api_key)

    def _recorder(self, resume: bool) -> tuple[ExperimentRecorder, set[tuple[str, int]]]:
        # The server `assay.init()` points at, else ASSAY_URL / ASSAY_API_KEY.
        state = sdk_state.STATE
        client = Client(state.url or None, state.api_key) if state.exporter else Client()
        project = self._project()
        if resume:
            found = ExperimentRecorder.resume(client, project, self.name)
            if found is not None:
                return found, found.done_rows()
        dataset = self.data if isinstance(self.data, Dataset) else None
        recorder = ExperimentRecorder.start(
            client,
            project,
            self.name,
            name=self.experiment,
            dataset=dataset.name if dataset else None,
            dataset_version=dataset.pin().version if dataset else None,
            metadata={
                **self.metadata,
                "task": getattr(self.task, "__qualname__", repr(self.task)),
                "scorers": [{"name": s.name, "version": s.version} for s in self.scorers],
                "trials": self.trials,
                "max_concurrency": self.max_concurrency,
                "timeout": self.timeout,
            },
        )
        return recorder, set()

    async def run_async(
        self,
        *,
        send: bool | None = None,
        resume: bool = False,
        on_row: Callable[[Row], None] | None = None,
    ) -> EvalResult:
        if send is None:
            send = from_environment("url") is not None or sdk_state.STATE.exporter is not None
        recorder, done = self._recorder(resume) if send else (None, set())
        cases = _cases(self.data)
        limit = asyncio.Semaphore(self.max_concurrency)
        takes_hooks = _takes_hooks(self.task)
        finished: list[Row] = []
        unsent: list[Row] = []
        sending = asyncio.Lock()

        async def send_unsent() -> None:
            # Rows go to the server as they finish, so a run killed outright loses at most the
            # last few and a resumed run re-runs only what is missing.
            if recorder is None:
                return
            async with sending:
                batch = [row.to_record() for row in unsent]
                unsent.clear()
                if batch:
                    await asyncio.to_thread(recorder.add_rows, batch)

        async def one(case: Case, trial: int) -> Row:
            async with limit:
                row = await self._run_case(case, trial, takes_hooks)
            finished.append(row)
            unsent.append(row)
            if on_row is not None:
                on_row(row)
            if len(unsent) >= ROWS_PER_SEND:
                await send_unsent()
            return row

        work = [
            one(case, trial)
            for case in cases
            for trial in range(self.trials)
            if (case_key(case.id, case.input), trial) not in done
        ]
        try:
            with collecting(self._export_config(recorder)) as collector:
                self._collector = collector
                rows = list(await asyncio.gather(*work))
        except (asyncio.CancelledError, KeyboardInterrupt):
            # Ctrl-C: keep what finished; the experiment is marked incomplete, resumable.
            if recorder is not None:
                recorder.add_rows([row.to_record() for row in unsent])
                recorder.finish("incomplete", summary_dict(summarise(finished)))
            raise
        if recorder is None:
            summary = summarise(rows)
            return EvalResult(self.name, rows, summary, self._check_thresholds(summary))
        await send_unsent()
        if done:
            rows = [Row.from_record(item) for item in recorder.all_rows()]
        summary = summarise(rows)
        recorder.finish("complete", summary_dict(summary))
        baseline_id = recorder.baseline_id(self.baseline, self.name)
        comparison = recorder.compare(baseline_id) if baseline_id is not None else None
        return EvalResult(
            self.name, rows, summary, self._check_thresholds(summary), recorder.id, comparison
        )

    async def _call_task(self, case: Case, hooks: Hooks | None) -> Any:
        args = (case.input, hooks) if hooks is not None else (case.input,)
        if inspect.iscoroutinefunction(self.task):
            call = self.task(*args)
        else:
            call = asyncio.to_thread(self.task, *args)
        if self.timeout is None:
            return await call
        return await asyncio.wait_for(call, self.timeout)

    async def _run_case(self, case: Case, trial: int, takes_hooks: bool) -> Row:
        row = Row(case_key(case.id, case.input), trial, case.input, case.expected, case.metadata)
        with trace_span(f"eval {self.name}", type="task") as root:
            root.log(input=case.input, metadata={"case_id": row.case_id, "trial": trial})
            row.trace_id = root.trace_id
            otel = root.otel_span
            trace_key = otel.get_span_context().trace_id if otel is not None else None
            collector = self._collector
            if collector is not None and trace_key is not None:
                collector.watch(trace_key)
            hooks = Hooks(case.metadata, case.expected, root) if takes_hooks else None
            started = time.perf_counter()
            for attempt in range(self.retries + 1):
                try:
                    row.output = await self._call_task(case, hooks)
                    row.error = None
                    break
                except TimeoutError:
                    row.error = f"TimeoutError: the task took longer than {self.timeout}s"
                    break
                except Exception as exc:
                    row.error = f"{type(exc).__name__}: {exc}"
                    if attempt == self.retries or not is_transient(exc):
                        root.set_error(exc)
                        break
                    await asyncio.sleep(min(8.0, 0.5 * 2**attempt))
            row.latency_s = time.perf_counter() - started
            root.log(output=row.output)
            if row.error is None:
                trace = (
                    collector.take(trace_key)
                    if collector is not None and trace_key is not None
                    else None
                )
                context = {
                    "input": case.input,
                    "output": row.output,
                    "expected": case.expected,
                    "metadata": case.metadata,
                    "trace": trace,
                }
                for scorer_ in self.scorers:
                    row.scores.extend(await _score(scorer_, context))
            if collector is not None and trace_key is not None:
                collector.forget(trace_key)
        return row

    def _check_thresholds(self, summary: Mapping[str, ScoreSummary]) -> list[str]:
        failed = []
        for name, minimum in self.thresholds.items():
            found = summary.get(name)
            mean = found.estimate.mean if found and found.estimate else None
            if mean is None or mean < minimum:
                shown = "no scores" if mean is None else f"{mean:.3f}"
                failed.append(f"{name}: mean {shown} < {minimum}")
        return failed


async def _score(scorer_: Scorer, context: Mapping[str, Any]) -> list[Score]:
    """A scorer's scores; one that raises gives an error score and never fails the row."""
    with trace_span(scorer_.name, type="scorer") as scoring:
        try:
            arguments = scorer_.arguments(context)
            if scorer_.is_async:
                result = await scorer_.fn(**arguments)
            else:
                result = scorer_.fn(**arguments)
            scores = to_scores(scorer_, result)
            scoring.log(output=[s.value for s in scores])
            return scores
        except Exception as exc:
            scoring.set_error(exc)
            return [Score(scorer_.name, None, error=f"{type(exc).__name__}: {exc}")]
