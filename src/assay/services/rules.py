"""Online rules: which traces (or spans) a project's evaluators score, how many, how soon, and
at what cost — and the status that says what each rule is doing, so nothing waits in silence.

A trace is sampled by a hash of its id (:func:`sampled`), so every server, every worker and
every retry decides the same. A rule looks only at traces stored after it was made; a backfill
covers a time range of older ones, after a preview of how many and what they would cost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from assay.errors import NotFound, UserError
from assay.services.calibration import check_gate
from assay.services.filters import FILTER_FIELDS, InvalidFilters, parse_filters
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.services.runtime import Runtime
from assay.store import online as online_store
from assay.store import review as review_store
from assay.store import routing as routing_store
from assay.store.database import Connection, Database
from assay.store.engine import now_ns
from assay.store.listing import Filters

TARGETS = ("trace", "span")
#: Filter fields a rule may not use: a relative window and text search mean nothing online.
ONLINE_UNFILTERABLE = ("range", "q", "sort", "order", "cursor", "limit")
BACKFILL_PAGE = 5_000
#: What one judge call is guessed to read and write before any call of the rule was made.
GUESS_INPUT_CHARS = 2_000
GUESS_OUTPUT_TOKENS = 200
DAILY_BUDGET = "paused: daily budget"
TURNED_OFF = "paused: turned off"
#: When a rule's action routes an item to a review queue (see services/routing.py).
TRIGGERS = ("disagrees_with_feedback", "undecided", "sample")
MAX_ACTIONS = 10
DEFAULT_ROUTE_RATE = 0.1


def sampled(trace_id: str, rate: float) -> bool:
    """Whether a trace is in a rule's sample: the first 64 bits of SHA-256 of the lowercase
    trace id, as a fraction of 2^64, below ``rate``."""
    if rate >= 1.0:
        return True
    if rate <= 0.0:
        return False
    digest = hashlib.sha256(trace_id.lower().encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


def utc_day(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d")


def filter_pairs(given: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A rule's filter object as the traces list's query pairs: lists repeat their key, and
    ``metadata`` may be an object of key: value."""
    pairs: list[tuple[str, str]] = []
    for key, value in given.items():
        if value is None:
            continue
        if key in ONLINE_UNFILTERABLE:
            raise UserError(f"filter: {key!r} cannot be used by a rule (it has no meaning online)")
        if isinstance(value, Mapping):
            pairs.extend((key, f"{k}={v}") for k, v in value.items())
        elif isinstance(value, list | tuple):
            pairs.extend((key, str(item)) for item in value)
        else:
            pairs.append((key, str(value)))
    return pairs


def check_filter_keys(given: Mapping[str, Any]) -> None:
    """Refuse a filter key the traces list does not know: ignored, it would leave the filter
    matching every trace (``tags`` for ``tag`` made a rule judge the whole project)."""
    for key in given:
        if key in ONLINE_UNFILTERABLE:
            continue  # filter_pairs says why this one cannot be used
        if key not in FILTER_FIELDS:
            hint = " (did you mean 'tag'?)" if key == "tags" else ""
            raise UserError(
                f"filter: {str(key)[:40]!r} is not a filter field{hint}; use "
                + ", ".join(k for k in FILTER_FIELDS if k not in ONLINE_UNFILTERABLE)
            )


def rule_filters(given: Mapping[str, Any]) -> Filters:
    """The rule's filter read by the one filter parser (the traces list's)."""
    found, problems = parse_filters(filter_pairs(given))
    if problems:
        raise InvalidFilters(problems)
    return found


def _check(values: dict[str, Any]) -> None:
    if values.get("target", "trace") not in TARGETS:
        raise UserError(f"target must be trace or span; got {values.get('target')!r}")
    rate = values.get("sample_rate")
    if rate is not None and not 0.0 <= float(rate) <= 1.0:
        raise UserError(f"sample_rate is a fraction in [0, 1]; got {rate!r}")
    if values.get("delay_seconds") is not None and int(values["delay_seconds"]) < 0:
        raise UserError("delay_seconds cannot be negative")
    budget = values.get("daily_budget_usd")
    if budget is not None and float(budget) < 0:
        raise UserError("daily_budget_usd cannot be negative")
    cap = values.get("calls_per_minute")
    if cap is not None and int(cap) < 1:
        raise UserError("calls_per_minute is at least 1 (leave it out for no cap)")
    check_filter_keys(values.get("filter") or {})
    rule_filters(values.get("filter") or {})


def _fraction(raw: Any, what: str, default: float) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0.0 <= raw <= 1.0:
        raise UserError(f"{what} is a fraction in [0, 1]; got {raw!r}")
    return float(raw)


def check_actions(conn: Connection, project_id_: int, given: Any) -> list[dict[str, Any]]:
    """A rule's actions, each ``{"when", "queue", ...}`` with the queue (an id or a name) one
    of the project's; UserError naming what is wrong.

    - ``undecided``: the judge gave no verdict (an error, after its retries) or a tie;
    - ``sample``: a ``rate`` (default 0.1) of everything the judges scored, by a hash of the
      item (the same item is always in or out);
    - ``disagrees_with_feedback``: the judge's verdict and the latest end-user feedback on the
      trace (``log_feedback``; only the one named ``feedback`` if given) point different ways:
      a value at or above ``pass_at`` (judge, default 0.5) or ``feedback_pass_at`` (feedback,
      default 0.5) is a pass, a thumbs-up; below, a fail. Labels read as pass or fail too
      (``up``/``down``, ``good``/``bad``, ...); a tie, or a label read neither way, is left out.
    """
    if given is None:
        return []
    if not isinstance(given, list) or len(given) > MAX_ACTIONS:
        raise UserError(f"actions is a list of at most {MAX_ACTIONS} actions")
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(given):
        if not isinstance(raw, Mapping):
            raise UserError(f'actions[{i}] is an object like {{"when": "sample", "queue": 1}}')
        when = raw.get("when")
        if when not in TRIGGERS:
            raise UserError(f"actions[{i}].when must be one of {', '.join(TRIGGERS)}")
        queue = _queue_of(conn, project_id_, raw.get("queue"), f"actions[{i}].queue")
        action: dict[str, Any] = {"when": when, "queue": int(queue["id"])}
        if when == "sample":
            action["rate"] = _fraction(raw.get("rate"), f"actions[{i}].rate", DEFAULT_ROUTE_RATE)
        if when == "disagrees_with_feedback":
            action.update(_feedback_options(raw, f"actions[{i}]"))
        if action in out:
            raise UserError(f"actions[{i}] repeats an earlier action")
        out.append(action)
    return out


def _queue_of(conn: Connection, project_id_: int, ref: Any, what: str) -> dict[str, Any]:
    """A review queue of the project named by id or name."""
    queue = None
    if isinstance(ref, int) and not isinstance(ref, bool):
        queue = review_store.get_queue(conn, ref)
    elif isinstance(ref, str) and ref.isdigit():
        queue = review_store.get_queue(conn, int(ref))
    if queue is None and isinstance(ref, str):
        queue = review_store.find_queue(conn, project_id_, ref)
    if queue is None or int(queue["project_id"]) != project_id_:
        raise UserError(f"{what}: {ref!r} is not a review queue of this project")
    return queue


def _feedback_options(raw: Mapping[str, Any], what: str) -> dict[str, Any]:
    """A ``disagrees_with_feedback`` action's options: the feedback's name, the thresholds."""
    options: dict[str, Any] = {}
    name = raw.get("feedback")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 200):
        raise UserError(f"{what}.feedback is the name of a feedback score")
    if name:
        options["feedback"] = name
    for key in ("pass_at", "feedback_pass_at"):
        value = raw.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UserError(f"{what}.{key} is a number")
            options[key] = float(value)
    return options


def _evaluator_ids(conn: Connection, project_id_: int, given: list[Any]) -> list[int]:
    if not given:
        raise UserError("a rule needs at least one evaluator (ids or names)")
    ids = []
    for item in given:
        found = None
        if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
            found = online_store.get_evaluator(conn, int(item))
            if found is not None and found["project_id"] != project_id_:
                found = None
        if found is None and isinstance(item, str):
            found = online_store.evaluator_by_name(conn, project_id_, item)
        if found is None:
            raise UserError(f"evaluator {item!r} is not an evaluator of this project")
        ids.append(int(found["id"]))
    return ids


def _rule_of(conn: Connection, who: Principal, rule_id: int, role: str) -> dict[str, Any]:
    found = online_store.get_rule(conn, rule_id)
    if found is None or not who.may_see(found["project"]):
        raise NotFound(f"rule {rule_id} does not exist")
    who.require(found["project"], role)
    return found


RULE_FIELDS = (
    "name",
    "target",
    "span_type",
    "span_name",
    "filter",
    "sample_rate",
    "delay_seconds",
    "daily_budget_usd",
    "calls_per_minute",
    "enabled",
    "actions",
)


def create_rule(
    rt: Runtime, who: Principal, project: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    values = {k: fields.get(k) for k in RULE_FIELDS}
    values["target"] = values["target"] or "trace"
    values["filter"] = dict(values["filter"] or {})
    values["sample_rate"] = 1.0 if values["sample_rate"] is None else float(values["sample_rate"])
    values["delay_seconds"] = 60 if values["delay_seconds"] is None else values["delay_seconds"]
    values["enabled"] = True if values["enabled"] is None else bool(values["enabled"])
    _check(values)
    stamp = now_ns()
    with rt.write() as conn:
        found = project_id(conn, who, project, "editor")
        evaluator_ids = _evaluator_ids(conn, found, list(fields.get("evaluators") or []))
        values["actions"] = check_actions(conn, found, values["actions"])
        if values["enabled"]:
            check_gate(conn, evaluator_ids)
        if any(rule["name"] == values["name"] for rule in online_store.list_rules(conn, found)):
            raise UserError(f"project {project!r} already has a rule named {values['name']!r}")
        values.update(
            # New traces only: the spans stored so far are a backfill's to score.
            cursor_span_id=online_store.max_span_id(conn),
            # Feedback and scores from now on are compared (see services/routing.py).
            route_cursor=routing_store.max_score_id(conn),
            created_ns=stamp,
            updated_ns=stamp,
        )
        rule_id = online_store.insert_rule(conn, found, values, evaluator_ids)
        rule = _rule_of(conn, who, rule_id, "editor")
        return _with_status(conn, rule, stamp)


def update_rule(
    rt: Runtime, who: Principal, rule_id: int, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Change a rule (``enabled: false`` pauses it); only the fields given change."""
    values = {k: v for k, v in fields.items() if k in RULE_FIELDS and v is not None}
    for key in ("daily_budget_usd", "calls_per_minute", "span_type", "span_name"):
        if key in fields and fields[key] is None and fields.get(f"clear_{key}"):
            values[key] = None
    _check(values)
    stamp = now_ns()
    with rt.write() as conn:
        rule = _rule_of(conn, who, rule_id, "editor")
        chosen = list(rule["evaluators"])
        if fields.get("evaluators"):
            chosen = _evaluator_ids(conn, rule["project_id"], list(fields["evaluators"]))
            online_store.set_rule_evaluators(conn, rule_id, chosen)
        if values.get("enabled", rule["enabled"]) and (
            fields.get("evaluators") or values.get("enabled")
        ):
            # Attaching a judge, or turning the rule back on: it must meet the gate now.
            check_gate(conn, chosen)
        if values.get("enabled"):
            values["paused_reason"] = None  # turned back on by a person
        if "actions" in values:
            values["actions"] = check_actions(conn, rule["project_id"], values["actions"])
            if rule.get("route_cursor") is None:
                values["route_cursor"] = routing_store.max_score_id(conn)
        online_store.update_rule(conn, rule_id, {**values, "updated_ns": stamp})
        return _with_status(conn, _rule_of(conn, who, rule_id, "editor"), stamp)


def pause_reason(conn: Connection, rule: Mapping[str, Any], at_ns: int) -> str | None:
    if not rule["enabled"]:
        return str(rule.get("paused_reason") or TURNED_OFF)
    budget = rule["daily_budget_usd"]
    if budget is not None:
        today, _calls, _month = online_store.spend(conn, rule["id"], utc_day(at_ns))
        if today >= budget:
            return DAILY_BUDGET
    return None


def _with_status(conn: Connection, rule: dict[str, Any], at_ns: int) -> dict[str, Any]:
    rule.pop("cursor_span_id", None)
    rule.pop("route_cursor", None)
    rule.pop("project_id", None)
    rule["actions"] = list(rule.get("actions") or [])
    today, calls, month = online_store.spend(conn, rule["id"], utc_day(at_ns))
    reason = pause_reason(conn, rule, at_ns)
    rule.pop("paused_reason", None)
    rule["status"] = {
        **online_store.job_counts(conn, rule["id"]),
        "matched": rule.pop("matched"),
        "sampled": rule.pop("sampled"),
        "spend_today_usd": today,
        "spend_month_usd": month,
        "calls_today": calls,
        "paused": reason is not None,
        "paused_reason": reason,
        "last_errors": online_store.last_errors(conn, rule["id"]),
        # Items the rule's actions added to review queues, per trigger.
        "routed": routing_store.counts(conn, rule["id"]),
    }
    return rule


def get_rule(
    db: Database, who: Principal, rule_id: int, *, at_ns: int | None = None
) -> dict[str, Any]:
    """A rule with its status: matched, sampled, pending, running, done, failed (and retrying),
    the last error messages, spend today and this month, and whether it is paused and why."""
    with db.read() as conn:
        return _with_status(conn, _rule_of(conn, who, rule_id, "viewer"), at_ns or now_ns())


def list_rules(db: Database, who: Principal, project: str) -> list[dict[str, Any]]:
    stamp = now_ns()
    with db.read() as conn:
        found = project_id(conn, who, project)
        return [_with_status(conn, rule, stamp) for rule in online_store.list_rules(conn, found)]


# --- backfill ---------------------------------------------------------------------------------


def _cost_per_call(rt: Runtime, conn: Connection, rule: dict[str, Any]) -> float | None:
    """What one call of the rule costs: its average so far, else a guess from the prices."""
    _today, calls, month = online_store.spend(conn, rule["id"], utc_day(now_ns()))
    if calls and month:
        return month / max(calls, 1)
    total = 0.0
    for version in online_store.current_versions(conn, rule["evaluators"]):
        if version["kind"] != "judge":
            continue
        definition = version["definition"]
        model = str(definition.get("model") or "").rpartition("/")[2]
        input_tokens = (len(str(definition.get("prompt") or "")) + GUESS_INPUT_CHARS) // 4
        cost = rt.prices_for(rule["project"]).cost(model, None, input_tokens, GUESS_OUTPUT_TOKENS)
        if cost is None:
            return None
        total += cost
    return total


def backfill(
    rt: Runtime,
    who: Principal,
    rule_id: int,
    *,
    since_ns: int | None,
    until_ns: int | None,
    preview: bool,
) -> dict[str, Any]:
    """Score what the rule matches among traces that started in [since, until): with
    ``preview`` only count them and estimate the cost; else queue their jobs (idempotent: an
    item already scored by that evaluator version is not scored again)."""
    with rt.read() as conn:
        rule = _rule_of(conn, who, rule_id, "editor")
        filters = rule_filters(rule["filter"])
        per_call = _cost_per_call(rt, conn, rule)
        versions = online_store.current_versions(conn, rule["evaluators"])
    matched = chosen = 0
    after: tuple[int, str] | None = None
    stamp = now_ns()
    while True:
        with rt.read() as conn:
            page = online_store.items_in_range(
                conn,
                rule,
                filters,
                since_ns=since_ns,
                until_ns=until_ns,
                after=after,
                limit=BACKFILL_PAGE,
            )
        if not page:
            break
        last = page[-1]
        after = (last[0], last[2] or last[1])
        matched += len(page)
        picked = [(t, s) for _start, t, s in page if sampled(t, rule["sample_rate"])]
        chosen += len(picked)
        if not preview and picked:
            jobs = [
                new_job(rule["project_id"], rule["id"], version["version_id"], t, s, stamp)
                for t, s in picked
                for version in versions
            ]
            with rt.write() as conn:
                online_store.enqueue(conn, jobs)
                online_store.add_counts(conn, rule["id"], len(page), len(picked))
        if len(page) < BACKFILL_PAGE:
            break
    calls = chosen * len(versions)
    return {
        "matched": matched,
        "sampled": chosen,
        "calls": calls,
        "estimated_cost_usd": None if per_call is None else round(per_call * calls, 6),
        "started": not preview,
    }


def new_job(
    project_id_: int, rule_id: int, version_id: int, trace_id: str, span_id: str, stamp: int
) -> dict[str, Any]:
    return {
        "project_id": project_id_,
        "rule_id": rule_id,
        "evaluator_version_id": version_id,
        "trace_id": trace_id,
        "span_id": span_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_ns": stamp,
        "created_ns": stamp,
    }
