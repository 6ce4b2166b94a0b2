"""Routing to people: a rule's actions add what its judges scored to a review queue, so people
look where a judge is likely wrong and keep measuring it (the agreement over time of
services/calibration.py is computed on what they label).

Three triggers (validated by :func:`assay.services.rules.check_actions`):

- ``undecided``: the job ended without a verdict (an error after its retries) or with a tie;
  decided when the worker closes the job, in the same transaction.
- ``sample``: a share of everything the judges scored, by a hash of the item
  (:func:`assay.services.rules.sampled` of ``trace/span#review``, apart from the rule's own
  sample, so it is a share of what was scored), decided when the job closes.
- ``disagrees_with_feedback``: the judge's verdict and the latest end-user feedback on the same
  trace point different ways. Feedback may come before or after the judge's score, so a sweep
  (:func:`route_feedback`, run by the worker) reads the project's scores stored after the
  rule's cursor and compares the traces they touch.

Each item is routed at most once per rule, trigger and queue (``rule_routes``); the queue
itself never holds an item twice.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from assay.errors import NotFound
from assay.services.review import ItemsToAdd, items_to_add
from assay.services.rules import sampled
from assay.services.runtime import Runtime
from assay.store import online as online_store
from assay.store import review as review_store
from assay.store import routing as routing_store
from assay.store.database import Connection
from assay.store.engine import now_ns

log = logging.getLogger("assay.routing")

#: Most scores one sweep reads for one rule.
SWEEP_PAGE = 2_000
DEFAULT_PASS_AT = 0.5
POSITIVE = frozenset(
    {"up", "thumbs_up", "thumbs up", "+1", "good", "positive", "pass", "yes", "correct", "true"}
)
NEGATIVE = frozenset(
    {"down", "thumbs_down", "thumbs down", "-1", "bad", "negative", "fail", "no", "incorrect"}
    | {"false", "wrong"}
)
TIE = "tie"


def polarity(value: float | None, label: str | None, pass_at: float) -> bool | None:
    """A verdict read as pass (True) or fail (False): its value against ``pass_at``, else its
    label; None for a tie or what reads neither way."""
    if label is not None and label.strip().lower() == TIE:
        return None
    if value is not None:
        return float(value) >= pass_at
    if label is None:
        return None
    said = label.strip().lower()
    return True if said in POSITIVE else False if said in NEGATIVE else None


def in_review_sample(trace_id: str, span_id: str, rate: float) -> bool:
    """Whether a scored item is in a ``sample`` action's share: a hash of the item, apart from
    the rule's own sample (which decided it was scored at all)."""
    return sampled(f"{trace_id}/{span_id}#review", rate)


def _said(row: Mapping[str, Any]) -> str:
    if row.get("label") is not None:
        return str(row["label"])[:60]
    return "none" if row.get("value") is None else f"{float(row['value']):g}"


def _route(
    conn: Connection,
    rule: Mapping[str, Any],
    action: Mapping[str, Any],
    trace_id: str,
    span_id: str,
    detail: str,
) -> bool:
    """Add the item to the action's queue once; False when it was routed before or is gone."""
    queue = review_store.get_queue(conn, int(action["queue"]))
    if queue is None or int(queue["project_id"]) != int(rule["project_id"]):
        log.warning("rule %s routes to queue %s, which is gone", rule["id"], action["queue"])
        return False
    wanted = (
        ItemsToAdd(spans=[(trace_id, span_id)])
        if span_id and rule["target"] == "span"
        else ItemsToAdd(trace_ids=[trace_id])
    )
    try:
        # Checked before anything is written: a trace deleted meanwhile is skipped.
        items = items_to_add(conn, int(rule["project_id"]), wanted)
    except NotFound:
        return False
    fresh = routing_store.record(
        conn,
        {
            "project_id": rule["project_id"],
            "rule_id": rule["id"],
            "queue_id": queue["id"],
            "trigger": action["when"],
            "trace_id": trace_id,
            "span_id": span_id if rule["target"] == "span" else "",
            "detail": detail[:2000],
            "created_ns": now_ns(),
        },
    )
    if fresh:
        review_store.add_items(conn, int(queue["id"]), items, f"rule {rule['name']}")
    return fresh


# --- when a job closes ----------------------------------------------------------------------


def after_job(
    conn: Connection,
    rule: Mapping[str, Any] | None,
    job: Mapping[str, Any],
    score: Mapping[str, Any] | None,
    error: str | None,
) -> int:
    """Inside the worker's transaction that closed the job: the ``undecided`` and ``sample``
    actions of its rule. How many items were routed."""
    if rule is None or not rule.get("actions"):
        return 0
    trace_id, span_id = str(job["trace_id"]), str(job["span_id"] or "")
    routed = 0
    for action in rule["actions"]:
        when = action["when"]
        if when == "undecided":
            if score is None:
                detail = f"no verdict: {error or 'no score'}"
            elif str(score.get("label") or "").strip().lower() == TIE:
                detail = f"{score['name']} answered a tie"
            else:
                continue
        elif when == "sample" and score is not None:
            rate = float(action.get("rate", 0.1))
            if not in_review_sample(trace_id, span_id, rate):
                continue
            detail = f"in the {rate:.0%} sample of what {score['name']} scored"
        else:
            continue
        routed += _route(conn, rule, action, trace_id, span_id, detail)
    return routed


# --- the feedback sweep -----------------------------------------------------------------------


def _is_feedback(row: Mapping[str, Any]) -> bool:
    return row["source"] == "human" and row["review_id"] is None


def _latest_feedback(
    feedback: Sequence[Mapping[str, Any]], span_id: str, name: str | None
) -> Mapping[str, Any] | None:
    """The latest feedback on the trace itself or on the judged span (named ``name`` if set)."""
    for row in reversed(feedback):
        if name is not None and row["name"] != name:
            continue
        if row["span_id"] and span_id and row["span_id"] != span_id:
            continue
        found: Mapping[str, Any] = row
        return found
    return None


def _disagreements(
    rule: Mapping[str, Any],
    action: Mapping[str, Any],
    on_trace: Sequence[Mapping[str, Any]],
    names: set[str],
) -> list[tuple[str, str]]:
    """(span id or '', why) of each judged item of the trace whose verdict the latest feedback
    contradicts."""
    feedback = [row for row in on_trace if _is_feedback(row)]
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for row in on_trace:
        meta = row["metadata"] or {}
        if row["source"] != "human" and row["name"] in names and meta.get("rule_id") == rule["id"]:
            latest[str(row["name"]), str(row["span_id"] or "")] = row
    out = []
    for (name, span_id), judged in latest.items():
        said = _latest_feedback(feedback, span_id, action.get("feedback"))
        if said is None:
            continue
        judge_pass = polarity(
            judged["value"], judged["label"], float(action.get("pass_at", DEFAULT_PASS_AT))
        )
        user_pass = polarity(
            said["value"], said["label"], float(action.get("feedback_pass_at", DEFAULT_PASS_AT))
        )
        if judge_pass is None or user_pass is None or judge_pass == user_pass:
            continue
        out.append(
            (
                span_id,
                f"{name} said {_said(judged)} ({'pass' if judge_pass else 'fail'}); feedback "
                f"{said['name']} = {_said(said)} ({'thumbs-up' if user_pass else 'thumbs-down'})",
            )
        )
    return out


def _sweep_rule(rt: Runtime, rule: Mapping[str, Any]) -> int:
    actions = [a for a in rule["actions"] or [] if a["when"] == "disagrees_with_feedback"]
    cursor = rule["route_cursor"]
    if not actions or cursor is None:
        return 0
    with rt.read() as conn:
        page = routing_store.scores_after(conn, int(rule["project_id"]), int(cursor), SWEEP_PAGE)
        names = {
            str(v["name"]) for v in online_store.current_versions(conn, list(rule["evaluators"]))
        }
    if not page:
        return 0
    touched = sorted(
        {
            str(row["trace_id"])
            for row in page
            if row["trace_id"]
            and (
                _is_feedback(row)
                or (row["name"] in names and (row["metadata"] or {}).get("rule_id") == rule["id"])
            )
        }
    )
    routed = 0
    with rt.write() as conn:
        if not routing_store.move_cursor(conn, int(rule["id"]), int(cursor), int(page[-1]["id"])):
            return 0  # another worker swept this page
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for row in routing_store.scores_on(conn, int(rule["project_id"]), touched, sorted(names)):
            by_trace.setdefault(str(row["trace_id"]), []).append(row)
        for trace_id, on_trace in by_trace.items():
            for action in actions:
                for span_id, why in _disagreements(rule, action, on_trace, names):
                    routed += _route(conn, rule, action, trace_id, span_id, why)
    return routed


def route_feedback(rt: Runtime) -> int:
    """Compare the judges' verdicts with the end-user feedback stored since each rule last
    looked; route the disagreements. How many items were routed."""
    with rt.read() as conn:
        found = [
            rule
            for rule in online_store.list_rules(conn)
            if any(a["when"] == "disagrees_with_feedback" for a in rule["actions"] or [])
        ]
    routed = 0
    for rule in found:
        while True:
            step = _sweep_rule(rt, rule)
            routed += step
            with rt.read() as conn:
                fresh = online_store.get_rule(conn, int(rule["id"]))
            if fresh is None or fresh["route_cursor"] == rule["route_cursor"]:
                break
            rule = fresh  # more may be waiting past this page
    return routed
