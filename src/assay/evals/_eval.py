"""`assay.Eval`: run a task over cases, score every output, summarise with intervals."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from assay.errors import UserError
from assay.evals._scorer import Score, Scorer, as_scorer, to_scores
from assay.sdk import span as trace_span
from assay.statistics import Estimate, clustered_mean_interval, mean_interval

log = logging.getLogger("assay.evals")

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
class Row:
    case_id: str
    trial: int
    input: Any
    expected: Any
    metadata: Mapping[str, Any]
    output: Any = None
    error: str | None = None
    scores: list[Score] = field(default_factory=list)
    latency_s: float = 0.0
    trace_id: str | None = None


@dataclass(frozen=True)
class ScoreSummary:
    name: str
    estimate: Estimate | None
    scored: int
    errors: int


@dataclass
class EvalResult:
    name: str
    rows: list[Row]
    summary: dict[str, ScoreSummary]
    failed_thresholds: list[str]

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
    ) -> None:
        if trials < 1:
            raise UserError("trials must be at least 1")
        if max_concurrency < 1:
            raise UserError("max_concurrency must be at least 1")
        if not callable(task):
            raise UserError(f"task must be callable; got {task!r}")
        self.name = name
        self.data = data
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
        unknown = set(self.thresholds) - {s.name for s in self.scorers}
        if unknown and self.scorers:
            log.info("thresholds name scores no scorer here produces by name: %s", unknown)
        REGISTRY.append(self)

    # --- running -------------------------------------------------------------------------

    def run(self, *, on_row: Callable[[Row], None] | None = None) -> EvalResult:
        return asyncio.run(self.run_async(on_row=on_row))

    async def run_async(self, *, on_row: Callable[[Row], None] | None = None) -> EvalResult:
        cases = _cases(self.data)
        limit = asyncio.Semaphore(self.max_concurrency)
        takes_hooks = _takes_hooks(self.task)

        async def one(case: Case, trial: int) -> Row:
            async with limit:
                row = await self._run_case(case, trial, takes_hooks)
            if on_row is not None:
                on_row(row)
            return row

        rows = await asyncio.gather(
            *(one(case, trial) for case in cases for trial in range(self.trials))
        )
        summary = summarise(rows)
        return EvalResult(self.name, list(rows), summary, self._check_thresholds(summary))

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
        row = Row(str(case.id), trial, case.input, case.expected, case.metadata)
        with trace_span(f"eval {self.name}", type="task") as root:
            root.log(input=case.input, metadata={"case_id": row.case_id, "trial": trial})
            row.trace_id = root.trace_id
            hooks = Hooks(case.metadata, case.expected, root) if takes_hooks else None
            started = time.perf_counter()
            try:
                row.output = await self._call_task(case, hooks)
            except TimeoutError:
                row.error = f"TimeoutError: the task took longer than {self.timeout}s"
            except Exception as exc:
                row.error = f"{type(exc).__name__}: {exc}"
                root.set_error(exc)
            row.latency_s = time.perf_counter() - started
            root.log(output=row.output)
            if row.error is None:
                context = {
                    "input": case.input,
                    "output": row.output,
                    "expected": case.expected,
                    "metadata": case.metadata,
                    "trace": None,
                }
                for scorer_ in self.scorers:
                    row.scores.extend(await _score(scorer_, context))
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


def summarise(rows: Sequence[Row]) -> dict[str, ScoreSummary]:
    """Per score: mean with a 95% interval, clustered by case when cases ran several times."""
    values: dict[str, dict[str, list[float]]] = {}
    errors: dict[str, int] = {}
    for row in rows:
        for score in row.scores:
            if score.error is not None:
                errors[score.name] = errors.get(score.name, 0) + 1
                values.setdefault(score.name, {})
            elif score.value is not None:
                values.setdefault(score.name, {}).setdefault(row.case_id, []).append(score.value)
    summary = {}
    for name, by_case in values.items():
        flat = [v for case_values in by_case.values() for v in case_values]
        if not flat:
            estimate = None
        elif any(len(v) > 1 for v in by_case.values()):
            estimate = clustered_mean_interval(by_case)
        else:
            estimate = mean_interval(flat)
        summary[name] = ScoreSummary(name, estimate, len(flat), errors.get(name, 0))
    return summary
