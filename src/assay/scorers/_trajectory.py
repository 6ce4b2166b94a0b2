"""Trajectory scorers: judge what the agent did, from its trace, not only what it answered.

Each asks for ``trace`` (the eval runner's span dicts, or spans as the REST API returns them:
see `_spans`). A tool call counts when the tool *ran*: a tool span (assay ``type="tool"``,
OpenInference ``TOOL``, GenAI ``execute_tool``); a call an LLM only asked for is not one. Spans
of scorers are left out. The tool-specific scorers are named ``<kind>:<tool>`` by default, so
several in one Eval keep apart; pass ``name=`` to choose.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from assay.errors import UserError
from assay.evals._scorer import Score, Scorer, as_scorer, to_scores
from assay.scorers._base import build, canonical, check_choice, shorten
from assay.scorers._heuristic import exact_match
from assay.scorers._spans import TraceSpan, read_span, read_trace, roots, tool_matches


def _tool_calls(spans: list[TraceSpan]) -> list[TraceSpan]:
    return [span for span in spans if span.type == "tool"]


def _called(spans: list[TraceSpan]) -> list[str]:
    return [span.tool or span.name for span in _tool_calls(spans)]


def _check_tool(tool: Any) -> str:
    if not isinstance(tool, str) or not tool:
        raise UserError(f"a tool name must be a non-empty string; got {tool!r}")
    return tool


def _check_count(what: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise UserError(f"{what} must be a whole number of at least 0; got {value!r}")


_DEFINITION = (read_trace, read_span, tool_matches)


def tool_called(tool: str, *, times: int | None = None, name: str | None = None) -> Scorer:
    """1.0 when ``tool`` ran (at least once, or exactly ``times`` times), else 0.0 with the
    tools that did run."""
    _check_tool(tool)
    _check_count("times", times)
    score_name = name or f"tool_called:{tool}"

    def score(trace: Any) -> Score:
        spans = read_trace(trace)
        called = _called(spans)
        count = sum(1 for called_name in called if tool_matches(called_name, tool))
        metadata = {"count": count, "tools_called": called}
        if (count >= 1) if times is None else (count == times):
            return Score(score_name, 1.0, metadata=metadata)
        if count == 0:
            reason = f"tool {tool!r} was not called; tools called: {called or 'none'}"
        else:
            reason = f"tool {tool!r} was called {count} time(s), expected {times}"
        return Score(score_name, 0.0, rationale=reason, metadata=metadata)

    return build(
        score,
        name=score_name,
        definition=(tool_called, *_DEFINITION),
        params={"tool": tool, "times": times},
    )


def tool_not_called(tool: str, *, name: str | None = None) -> Scorer:
    """1.0 when ``tool`` never ran, else 0.0 saying how often it did."""
    _check_tool(tool)
    score_name = name or f"tool_not_called:{tool}"

    def score(trace: Any) -> Score:
        calls = [s for s in _tool_calls(read_trace(trace)) if tool_matches(s.tool, tool)]
        if not calls:
            return Score(score_name, 1.0, metadata={"count": 0})
        reason = f"tool {tool!r} was called {len(calls)} time(s)"
        return Score(
            score_name,
            0.0,
            rationale=reason,
            metadata={"count": len(calls), "span_ids": [s.span_id for s in calls]},
        )

    return build(
        score,
        name=score_name,
        definition=(tool_not_called, *_DEFINITION),
        params={"tool": tool},
    )


def _order_problem(called: list[str], sequence: list[str], mode: str) -> str | None:
    """Why the tools called (in order of start) do not follow ``sequence``; None if they do."""
    if mode == "exact":
        for index, (got, want) in enumerate(zip(called, sequence, strict=False)):
            if not tool_matches(got, want):
                return f"call {index + 1} was {got!r}, expected {want!r}; called: {called}"
        if len(called) != len(sequence):
            return f"{len(called)} tool call(s), expected {len(sequence)}; called: {called}"
        return None
    position = 0
    for index, want in enumerate(sequence):
        while position < len(called) and not tool_matches(called[position], want):
            position += 1
        if position == len(called):
            after = f"after {sequence[:index]}, " if index else ""
            return f"{after}tool {want!r} was not called; called: {called or 'none'}"
        position += 1
    return None


def tool_order(
    sequence: Sequence[str], *, mode: str = "subsequence", name: str = "tool_order"
) -> Scorer:
    """1.0 when the tools ran in the order of ``sequence``, else 0.0 saying where it broke.
    ``mode="subsequence"``: each tool of ``sequence`` ran after the one before it (other calls
    may come between); ``"exact"``: the calls were exactly ``sequence``. Calls are ordered by
    the time they started."""
    check_choice("tool_order mode", mode, ("subsequence", "exact"))
    if isinstance(sequence, str) or not sequence:
        raise UserError(f"tool_order() needs a non-empty list of tool names; got {sequence!r}")
    expected = [_check_tool(tool) for tool in sequence]

    def score(trace: Any) -> Score:
        called = _called(read_trace(trace))
        metadata = {"tools_called": called, "expected": expected}
        problem = _order_problem(called, expected, mode)
        if problem is None:
            return Score(name, 1.0, metadata=metadata)
        return Score(name, 0.0, rationale=problem, metadata=metadata)

    return build(
        score,
        name=name,
        definition=(tool_order, _order_problem, *_DEFINITION),
        params={"sequence": expected, "mode": mode},
    )


# --- arguments -------------------------------------------------------------------------------


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, bool) or isinstance(want, bool):
        return type(got) is type(want) and got == want
    return bool(canonical(got) == canonical(want))


def argument_differences(
    got: Any, want: Mapping[str, Any], exact: bool, path: str = ""
) -> list[str]:
    """How ``got`` differs from ``want``: each key of ``want`` missing or different (nested
    objects compared key by key), and with ``exact`` each key ``want`` does not have."""
    if not isinstance(got, Mapping):
        return [f"{path or 'arguments'} is not an object: {shorten(got)}"]
    found = []
    for key, wanted in want.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in got:
            found.append(f"{where} is missing")
        elif isinstance(wanted, Mapping) and isinstance(got[key], Mapping):
            found.extend(argument_differences(got[key], wanted, exact, where))
        elif not _same(got[key], wanted):
            found.append(f"{where}: {shorten(got[key], 40)} != {shorten(wanted, 40)}")
    if exact:
        found.extend(
            f"{path}.{key} is not expected" if path else f"{key} is not expected"
            for key in got
            if key not in want
        )
    return found


def tool_args(
    tool: str,
    arguments: Mapping[str, Any],
    *,
    match: str = "subset",
    calls: str = "any",
    name: str | None = None,
) -> Scorer:
    """1.0 when ``tool`` ran with ``arguments``, else 0.0 with each call's differences.
    ``match="subset"``: every expected key has the expected value (nested objects likewise,
    numbers by value); ``"exact"``: and no other key. ``calls="any"``: one call is enough;
    ``"all"``: every call of the tool must match."""
    _check_tool(tool)
    check_choice("tool_args match", match, ("subset", "exact"))
    check_choice("tool_args calls", calls, ("any", "all"))
    if not isinstance(arguments, Mapping):
        raise UserError(f"tool_args() needs the expected arguments as a dict; got {arguments!r}")
    expected = dict(arguments)
    score_name = name or f"tool_args:{tool}"

    def score(trace: Any) -> Score:
        made = [s for s in _tool_calls(read_trace(trace)) if tool_matches(s.tool, tool)]
        if not made:
            reason = f"tool {tool!r} was not called"
            return Score(score_name, 0.0, rationale=reason, metadata={"calls": 0})
        differences = [argument_differences(s.arguments, expected, match == "exact") for s in made]
        matching = sum(1 for found in differences if not found)
        metadata = {
            "calls": len(made),
            "matching": matching,
            "arguments": [s.arguments for s in made],
            "differences": differences,
        }
        if matching == len(made) or (calls == "any" and matching):
            return Score(score_name, 1.0, metadata=metadata)
        shown = "; ".join(
            f"call {index + 1}: {', '.join(found)}"
            for index, found in enumerate(differences)
            if found
        )
        which = "no call" if calls == "any" else f"{len(made) - matching} of {len(made)} calls"
        reason = f"{which} of {tool!r} had the expected arguments; {shown}"
        return Score(score_name, 0.0, rationale=reason, metadata=metadata)

    return build(
        score,
        name=score_name,
        definition=(tool_args, argument_differences, _same, *_DEFINITION),
        params={"tool": tool, "arguments": expected, "match": match, "calls": calls},
    )


# --- budgets and errors ------------------------------------------------------------------------


def step_budget(
    *,
    max_steps: int | None = None,
    max_llm_calls: int | None = None,
    max_tool_calls: int | None = None,
    name: str = "step_budget",
) -> Scorer:
    """1.0 when the agent stayed within every budget given, else 0.0 naming the one it broke.
    A step is an LLM call or a tool call."""
    limits = {"steps": max_steps, "LLM calls": max_llm_calls, "tool calls": max_tool_calls}
    for what, limit in limits.items():
        _check_count(f"the budget of {what}", limit)
    if all(limit is None for limit in limits.values()):
        raise UserError("step_budget() needs max_steps, max_llm_calls or max_tool_calls")

    def score(trace: Any) -> Score:
        spans = read_trace(trace)
        llm = sum(1 for s in spans if s.type == "llm")
        tools = len(_tool_calls(spans))
        counts = {"steps": llm + tools, "LLM calls": llm, "tool calls": tools}
        metadata = {"steps": llm + tools, "llm_calls": llm, "tool_calls": tools}
        over = [
            f"{counts[what]} {what} > budget {limit}"
            for what, limit in limits.items()
            if limit is not None and counts[what] > limit
        ]
        if not over:
            return Score(name, 1.0, metadata=metadata)
        return Score(name, 0.0, rationale="; ".join(over), metadata=metadata)

    return build(
        score,
        name=name,
        definition=(step_budget, *_DEFINITION),
        params={
            "max_steps": max_steps,
            "max_llm_calls": max_llm_calls,
            "max_tools": max_tool_calls,
        },
    )


def no_errors(*, name: str = "no_errors") -> Scorer:
    """1.0 when no span of the trace failed, else 0.0 naming each failed span and its error."""

    def score(trace: Any) -> Score:
        failed = [s for s in read_trace(trace) if s.error]
        if not failed:
            return Score(name, 1.0)
        errors = [{"span": s.name, "type": s.type, "error": s.error} for s in failed]
        shown = "; ".join(f"{s.name}: {shorten(s.error, 120)}" for s in failed[:5])
        reason = f"{len(failed)} span(s) failed: {shown}"
        return Score(name, 0.0, rationale=reason, metadata={"errors": errors})

    return build(score, name=name, definition=(no_errors, *_DEFINITION), params={})


def _check_budget(what: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise UserError(f"{what} must be a number of at least 0; got {value!r}")
    return float(value)


def cost_budget(*, max_usd: float, name: str = "cost_budget") -> Scorer:
    """1.0 when the trace's total cost (USD) is within ``max_usd``, else 0.0. Costs come from
    the spans, or are priced from model and tokens; when LLM calls of unpriced models leave the
    total unknown and the priced part is within budget, the score has no value (skipped), with
    the reason."""
    budget = _check_budget("max_usd", max_usd)

    def score(trace: Any) -> Score:
        spans = read_trace(trace)
        total = sum(s.cost for s in spans if s.cost is not None)
        unpriced = sorted(
            {
                s.model or s.name
                for s in spans
                if s.cost is None and (s.input_tokens or s.output_tokens)
            }
        )
        metadata = {"cost_usd": total, "unpriced": unpriced}
        if total > budget:
            reason = f"cost ${total:.6f} > budget ${budget:.6f}"
            return Score(name, 0.0, rationale=reason, metadata=metadata)
        if unpriced:
            reason = f"cost unknown: no price for {unpriced}; priced part ${total:.6f}"
            return Score(name, None, rationale=reason, metadata=metadata)
        return Score(name, 1.0, metadata=metadata)

    return build(
        score, name=name, definition=(cost_budget, *_DEFINITION), params={"max_usd": budget}
    )


def latency_budget(*, max_seconds: float, name: str = "latency_budget") -> Scorer:
    """1.0 when the trace took at most ``max_seconds`` from its first span's start to its last
    span's end, else 0.0. A trace with no timed span has no value (skipped)."""
    budget = _check_budget("max_seconds", max_seconds)

    def score(trace: Any) -> Score:
        spans = [s for s in read_trace(trace) if s.start_ns is not None and s.end_ns is not None]
        if not spans:
            return Score(name, None, rationale="the trace has no timed spans")
        start = min(s.start_ns for s in spans if s.start_ns is not None)
        end = max(s.end_ns for s in spans if s.end_ns is not None)
        seconds = max(0, end - start) / 1e9
        metadata = {"seconds": seconds}
        if seconds <= budget:
            return Score(name, 1.0, metadata=metadata)
        slowest = max(spans, key=lambda s: s.duration_s or 0.0)
        reason = (
            f"took {seconds:.3f}s > budget {budget:g}s; "
            f"slowest span: {slowest.name} ({slowest.duration_s or 0.0:.3f}s)"
        )
        return Score(name, 0.0, rationale=reason, metadata=metadata)

    return build(
        score,
        name=name,
        definition=(latency_budget, *_DEFINITION),
        params={"max_seconds": budget},
    )


# --- the final answer ----------------------------------------------------------------------------


def final_span(trace: Any) -> TraceSpan | None:
    """The span holding the final answer: the trace's root (of several top-level spans, the
    one that ended last); None for an empty trace."""
    top = roots(read_trace(trace))
    if not top:
        return None
    return max(top, key=lambda span: (span.end_ns or 0, span.start_ns or 0))


def final_answer(
    scorer: Scorer | Callable[..., Any] | None = None, *, name: str = "final_answer"
) -> Scorer:
    """Score the final answer in the trace, the root span's output, with ``scorer`` (default:
    `exact_match` against ``expected``) given it as ``output``. For traces where the answer is
    not the task's return value, such as production traces scored later."""
    inner = as_scorer(scorer) if scorer is not None else exact_match()
    context_names = ("input", "expected", "metadata")

    def answer_context(
        trace: Any, given: Mapping[str, Any]
    ) -> tuple[TraceSpan | None, dict[str, Any]]:
        span = final_span(trace)
        context = {**given, "trace": trace, "output": span.output if span else None}
        return span, context

    def rename(span: TraceSpan | None, result: Any) -> list[Score]:
        if span is None:
            return [Score(name, 0.0, rationale="the trace has no spans, so no final answer")]
        found = to_scores(inner, result)
        where = {"final_span": span.name}
        return [
            dataclasses.replace(
                item,
                name=name if item.name == inner.name else f"{name}.{item.name}",
                metadata={**item.metadata, **where},
            )
            for item in found
        ]

    if inner.is_async:

        async def score_async(input: Any, expected: Any, metadata: Any, trace: Any) -> list[Score]:
            given = dict(zip(context_names, (input, expected, metadata), strict=True))
            span, context = answer_context(trace, given)
            return rename(span, await inner.fn(**inner.arguments(context)))

        fn: Callable[..., Any] = score_async
    else:

        def score(input: Any, expected: Any, metadata: Any, trace: Any) -> list[Score]:
            given = dict(zip(context_names, (input, expected, metadata), strict=True))
            span, context = answer_context(trace, given)
            return rename(span, inner.fn(**inner.arguments(context)))

        fn = score

    return build(
        fn,
        name=name,
        definition=(final_answer, final_span, roots, *_DEFINITION),
        params={"scorer": inner},
    )
