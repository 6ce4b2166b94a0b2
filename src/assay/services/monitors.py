"""Monitors: a metric of a project (any dashboard series, optionally filtered) over the last
``window_minutes``, compared with a threshold, evaluated by the server's background workers.

States: ``ok``, ``alerting`` (the value is below / above the threshold), ``no_data`` (nothing
in the window). A webhook (Slack-compatible JSON: a ``text`` plus structured fields) is sent on
entering the alert state, again every ``renotify_minutes`` while it lasts (0: never again), and
on recovery. ``no_data`` sends nothing: it is shown, and a later ``ok`` after an alert still
sends the recovery. The monitor remembers what the webhook was last *told*
(``notified_state``): a failed delivery is recorded with its reason (the evaluation's history,
the monitor's ``last_delivery``) and tried again at the next evaluation, if still true then.

Every enabled monitor is evaluated once a minute (:data:`EVERY_NS`). An evaluation is claimed
with a conditional UPDATE of the monitor's due time and lease that one process wins, so two
servers sharing a database never evaluate (or notify) the same minute twice.
"""

from __future__ import annotations

import logging
import math
import os
import secrets as random_ids
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

import orjson

from assay.errors import Conflict, NotFound, UserError
from assay.services import metrics as metric_service
from assay.services import webhooks
from assay.services.egress import EgressPolicy, EgressRefused
from assay.services.principal import Principal
from assay.services.projects import project_id
from assay.services.runtime import Runtime
from assay.store import monitors as monitor_store
from assay.store.database import Connection, Database
from assay.store.engine import now_ns as clock_ns

log = logging.getLogger("assay.monitors")

#: The metrics a monitor may watch: the dashboards' (services/metrics.py computes them).
METRICS = metric_service.METRICS
SCORE_SOURCES = metric_service.SOURCES
DIRECTIONS = ("below", "above")
STATES = ("ok", "alerting", "no_data")
MINUTE_NS = 60 * 1_000_000_000
#: How often an enabled monitor is evaluated.
EVERY_NS = MINUTE_NS
#: How long a claimed evaluation is one worker's before another may take it over.
LEASE_NS = 5 * MINUTE_NS
MAX_WINDOW_MINUTES = 90 * 24 * 60
MAX_RENOTIFY_MINUTES = 30 * 24 * 60
DEFAULT_RENOTIFY_MINUTES = 60
#: Monitors one worker pass evaluates at most (the rest are due at the next pass).
BATCH = 50
#: Tries (0.1 s apart) of an "evaluate now" to claim a monitor a worker is evaluating.
CLAIM_TRIES = 30
HISTORY_SHOWN = 100
MAX_PARAMS_BYTES = 10_000
FIELDS = (
    "name",
    "metric",
    "params",
    "window_minutes",
    "threshold",
    "direction",
    "webhook_url",
    "renotify_minutes",
    "enabled",
)


class Measured(Protocol):
    """A metric's value over a window (services/metrics.WindowValue, or a test's)."""

    @property
    def value(self) -> float | None: ...
    @property
    def n(self) -> int: ...
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...


#: (db, project id, metric, params, since ns, until ns) -> the window's value.
ValueOf = Callable[[Database, int, str, Mapping[str, Any], int, int], Measured]
#: The dashboards' own computation of a metric over a window.
metric_value: ValueOf = metric_service.window_value


# --- checking what a person asks for ------------------------------------------------------------


def _check_params(metric: str, params: Any) -> dict[str, Any]:
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise UserError('params must be an object, like {"score": "correctness"}')
    if len(orjson.dumps(params)) > MAX_PARAMS_BYTES:
        raise UserError(f"params: at most {MAX_PARAMS_BYTES:,} bytes of JSON")
    unknown = sorted(set(params) - {"score", "source", "filter"})
    if unknown:
        raise UserError(
            f"params: unknown key(s) {', '.join(map(repr, unknown))}; "
            "a monitor's params are score, source and filter"
        )
    out: dict[str, Any] = {}
    if metric == "score_mean":
        score = params.get("score")
        if not isinstance(score, str) or not score.strip() or len(score) > 200:
            raise UserError(
                'params.score: score_mean needs the score\'s name, like {"score": "correctness"}'
            )
        out["score"] = score
        source = params.get("source")
        if source is not None:
            if source not in SCORE_SOURCES:
                raise UserError(f"params.source must be one of {', '.join(SCORE_SOURCES)}")
            out["source"] = source
    elif "score" in params or "source" in params:
        raise UserError(f"params.score and params.source apply to score_mean, not to {metric}")
    given_filter = params.get("filter")
    if given_filter is not None:
        out_filter = _check_filter(metric, out, given_filter)
        if out_filter:
            out["filter"] = out_filter
    return out


def _check_filter(metric: str, params: Mapping[str, Any], given: Any) -> dict[str, Any]:
    """The filter as the metrics read it (the trace list's fields; a list repeats a field),
    checked by the metrics' own query parser."""
    if not isinstance(given, Mapping):
        raise UserError("params.filter must be an object of the traces list's filters")
    pairs: list[tuple[str, str]] = [("metric", metric), ("bucket", "day")]
    pairs += [(key, str(params[key])) for key in ("score", "source") if key in params]
    for key, value in given.items():
        for one in value if isinstance(value, list | tuple) else [value]:
            if isinstance(one, Mapping | list | tuple):
                raise UserError(
                    f"params.filter.{key}: give a value or a list of values "
                    '(metadata as "key=value")'
                )
            if one is not None:
                pairs.append((str(key), str(one)))
    try:
        metric_service.parse_query(pairs)
    except UserError as refused:
        raise UserError(f"params.filter: {refused}") from None
    return dict(given)


def _whole(values: Mapping[str, Any], key: str, low: int, high: int, meaning: str) -> None:
    if key not in values:
        return
    given = values[key]
    if not isinstance(given, int) or isinstance(given, bool) or given < low:
        raise UserError(f"{key} must be {meaning}")
    if given > high:
        raise UserError(f"{key} is at most {high}")


def _check_webhook(url: Any, egress: EgressPolicy) -> None:
    if url is None:
        return
    if not isinstance(url, str) or len(url) > 2000:
        raise UserError("webhook_url must be an http(s) URL of at most 2000 characters")
    try:
        egress.check_url(url)
    except ValueError:  # urlsplit: a bracketed host or a port that is not a number
        raise UserError(f"webhook_url: {url[:100]!r} is not a URL") from None
    except EgressRefused as refused:
        raise UserError(
            f"webhook_url: {refused} (webhooks follow the same egress policy)"
        ) from None


def _check(values: dict[str, Any], egress: EgressPolicy) -> None:
    """UserError naming the field for anything a monitor cannot use."""
    if "name" in values:
        name = values["name"]
        if not isinstance(name, str) or not name.strip() or len(name) > 200:
            raise UserError("name: a monitor needs a name of 1 to 200 characters")
    if "metric" in values and values["metric"] not in METRICS:
        raise UserError(
            f"metric: unknown metric {str(values['metric'])[:60]!r}; one of {', '.join(METRICS)}"
        )
    _whole(values, "window_minutes", 1, MAX_WINDOW_MINUTES, "a positive whole number of minutes")
    _whole(values, "renotify_minutes", 0, MAX_RENOTIFY_MINUTES, "0 (never) or a whole number")
    if "threshold" in values:
        threshold = values["threshold"]
        if (
            isinstance(threshold, bool)
            or not isinstance(threshold, int | float)
            or not math.isfinite(threshold)
        ):
            raise UserError("threshold must be a finite number")
    if "direction" in values and values["direction"] not in DIRECTIONS:
        raise UserError("direction must be below or above (when the monitor alerts)")
    _check_webhook(values.get("webhook_url"), egress)


def mask_url(url: str | None) -> str | None:
    """A webhook URL as shown: its scheme and host (Slack's path is the secret)."""
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"


# --- views --------------------------------------------------------------------------------------


def _evaluation_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "at_ns": row["at_ns"],
        "since_ns": row["since_ns"],
        "value": row["value"],
        "n": row["n"],
        "low": row["low"],
        "high": row["high"],
        "state": row["state"],
        "error": row["error"],
        "notification": row["notification"],
        "delivered": row["delivered"],
        "delivery": row["delivery"],
    }


def _view(conn: Connection, found: Mapping[str, Any], *, history: int = 0) -> dict[str, Any]:
    out = {
        "id": found["id"],
        "project": found["project"],
        "name": found["name"],
        "metric": found["metric"],
        "params": found["params"],
        "window_minutes": found["window_minutes"],
        "threshold": found["threshold"],
        "direction": found["direction"],
        "webhook_url": mask_url(found["webhook_url"]),
        "renotify_minutes": found["renotify_minutes"],
        "enabled": found["enabled"],
        "state": found["state"],
        "state_since_ns": found["state_since_ns"],
        "evaluated": found["last_evaluated_ns"] is not None,
        "last_evaluated_ns": found["last_evaluated_ns"],
        "last_notified_ns": found["last_notified_ns"],
        "last_delivery": None
        if found["last_delivery"] is None
        else {"ok": bool(found["last_delivery_ok"]), "detail": found["last_delivery"]},
        "failed_deliveries": monitor_store.failed_deliveries(
            conn, int(found["project_id"]), int(found["id"])
        ),
        "created_ns": found["created_ns"],
        "updated_ns": found["updated_ns"],
        "link": link(found),
    }
    if history:
        rows = monitor_store.evaluations(conn, int(found["project_id"]), int(found["id"]), history)
        out["history"] = [_evaluation_view(row) for row in rows]
    return out


def link(found: Mapping[str, Any]) -> str:
    return f"/p/{quote(str(found['project']), safe='')}/monitors/{found['id']}"


# --- use cases ----------------------------------------------------------------------------------


def _monitor_of(conn: Connection, who: Principal, monitor_id: int, role: str) -> dict[str, Any]:
    found = monitor_store.get(conn, monitor_id)
    if found is None or not who.may_see(str(found["project"])):
        raise NotFound(f"monitor {monitor_id} does not exist")
    who.require(str(found["project"]), role)
    return found


def create_monitor(
    rt: Runtime, who: Principal, project: str, fields: Mapping[str, Any]
) -> dict[str, Any]:
    values = {k: fields.get(k) for k in FIELDS}
    for required in ("name", "metric", "window_minutes", "threshold", "direction"):
        if values[required] is None:
            raise UserError(f"{required} is required")
    if values["renotify_minutes"] is None:
        values["renotify_minutes"] = DEFAULT_RENOTIFY_MINUTES
    values["enabled"] = True if values["enabled"] is None else bool(values["enabled"])
    if isinstance(values["threshold"], int) and not isinstance(values["threshold"], bool):
        values["threshold"] = float(values["threshold"])
    _check(values, rt.egress)
    values["params"] = _check_params(str(values["metric"]), values["params"])
    stamp = clock_ns()
    with rt.write() as conn:
        found_project = project_id(conn, who, project, "editor")
        if monitor_store.name_taken(conn, found_project, str(values["name"]), None):
            raise UserError(
                f"name: project {project!r} already has a monitor named {values['name']!r}"
            )
        monitor_id = monitor_store.insert_monitor(
            conn,
            found_project,
            {
                **values,
                "state": "no_data",
                "state_since_ns": stamp,
                "notified_state": "ok",
                "next_due_ns": stamp,  # evaluated at the workers' next pass
                "created_ns": stamp,
                "updated_ns": stamp,
            },
        )
        return _view(conn, _monitor_of(conn, who, monitor_id, "editor"))


def list_monitors(db: Database, who: Principal, project: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        found = project_id(conn, who, project)
        return [_view(conn, row) for row in monitor_store.list_for(conn, found)]


def get_monitor(
    db: Database, who: Principal, monitor_id: int, *, history: int = HISTORY_SHOWN
) -> dict[str, Any]:
    """A monitor with its state, its last delivery and its latest evaluations."""
    with db.read() as conn:
        return _view(conn, _monitor_of(conn, who, monitor_id, "viewer"), history=history)


def update_monitor(
    rt: Runtime, who: Principal, monitor_id: int, fields: Mapping[str, Any]
) -> dict[str, Any]:
    """Change the fields given (``webhook_url: null`` removes the webhook)."""
    values = {k: v for k, v in fields.items() if k in FIELDS}
    for key in ("name", "metric", "window_minutes", "threshold", "direction", "enabled"):
        if key in values and values[key] is None:
            raise UserError(f"{key} cannot be empty")
    if values.get("renotify_minutes", 0) is None:
        values["renotify_minutes"] = 0
    _check(values, rt.egress)
    stamp = clock_ns()
    with rt.write() as conn:
        found = _monitor_of(conn, who, monitor_id, "editor")
        metric = str(values.get("metric", found["metric"]))
        if "params" in values or "metric" in values:
            values["params"] = _check_params(metric, values.get("params", found["params"]))
        if "name" in values and monitor_store.name_taken(
            conn, int(found["project_id"]), values["name"], monitor_id
        ):
            raise UserError(f"name: there is already a monitor named {values['name']!r}")
        if values.get("enabled") and not found["enabled"]:
            values["next_due_ns"] = stamp  # turned back on: evaluated at the next pass
        monitor_store.update_monitor(
            conn, int(found["project_id"]), monitor_id, {**values, "updated_ns": stamp}
        )
        return _view(conn, _monitor_of(conn, who, monitor_id, "editor"))


def delete_monitor(rt: Runtime, who: Principal, monitor_id: int) -> None:
    with rt.write() as conn:
        found = _monitor_of(conn, who, monitor_id, "editor")
        monitor_store.delete_monitor(conn, int(found["project_id"]), monitor_id)


# --- evaluating ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    state: str
    #: What to tell the webhook now: alert | reminder | recovery, or None.
    notify: str | None


def breaches(direction: str, value: float, threshold: float) -> bool:
    return value < threshold if direction == "below" else value > threshold


def decide(monitor: Mapping[str, Any], value: float | None, now_ns: int) -> Decision:
    """The state a value puts the monitor in, and the notification it owes its webhook given
    what the webhook was last told (``notified_state``) and when (``last_notified_ns``)."""
    if value is None:
        state = "no_data"
    elif breaches(str(monitor["direction"]), value, float(monitor["threshold"])):
        state = "alerting"
    else:
        state = "ok"
    if not monitor.get("webhook_url"):
        return Decision(state, None)
    told = monitor["notified_state"]
    if state == "alerting":
        if told != "alerting":
            return Decision(state, "alert")
        again = int(monitor["renotify_minutes"]) * MINUTE_NS
        last = monitor["last_notified_ns"]
        if again > 0 and (last is None or now_ns - int(last) >= again):
            return Decision(state, "reminder")
    elif state == "ok" and told == "alerting":
        return Decision(state, "recovery")
    return Decision(state, None)


def _number(value: float | None) -> str:
    return "no data" if value is None else f"{value:.4g}"


def _what(monitor: Mapping[str, Any]) -> str:
    params = monitor["params"] or {}
    if monitor["metric"] == "score_mean":
        source = f", {params['source']}" if params.get("source") else ""
        return f"mean of score {params.get('score')!r}{source}"
    return str(monitor["metric"])


def notification(
    monitor: Mapping[str, Any],
    kind: str,
    measured: Measured,
    since_ns: int,
    until_ns: int,
    public_url: str = "",
) -> dict[str, Any]:
    """The webhook's body: Slack reads ``text``; other receivers read the fields."""
    headline = {
        "alert": "ALERT",
        "reminder": "STILL ALERTING",
        "recovery": "RECOVERED",
    }[kind]
    compared = "below" if monitor["direction"] == "below" else "above"
    relation = (
        f"{compared} the threshold {monitor['threshold']:g}"
        if kind != "recovery"
        else f"no longer {compared} {monitor['threshold']:g}"
    )
    text = (
        f"[{headline}] {monitor['project']} / monitor {monitor['name']!r}: {_what(monitor)} is "
        f"{_number(measured.value)}, {relation}, over the last {monitor['window_minutes']} min "
        f"({measured.n} in the window). {webhooks.absolute(public_url, link(monitor))}"
    )
    return {
        "text": text,
        "event": f"monitor.{kind}",
        "project": monitor["project"],
        "monitor": monitor["name"],
        "monitor_id": monitor["id"],
        "metric": monitor["metric"],
        "params": monitor["params"],
        "value": measured.value,
        "n": measured.n,
        "low": measured.low,
        "high": measured.high,
        "threshold": monitor["threshold"],
        "direction": monitor["direction"],
        "window": {
            "minutes": monitor["window_minutes"],
            "since_ns": since_ns,
            "until_ns": until_ns,
        },
        "state": "alerting" if kind != "recovery" else "ok",
        "link": webhooks.absolute(public_url, link(monitor)),
    }


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{random_ids.token_hex(3)}"


def _run(
    rt: Runtime, monitor: dict[str, Any], owner: str, now_ns: int, value_of: ValueOf
) -> dict[str, Any] | None:
    """Evaluate a claimed monitor: measure, decide, notify, record; the evaluation stored."""
    since = now_ns - int(monitor["window_minutes"]) * MINUTE_NS
    error = None
    measured: Measured | None = None
    try:
        measured = value_of(
            rt, int(monitor["project_id"]), str(monitor["metric"]), monitor["params"], since, now_ns
        )
    except Exception as failed:  # recorded on the evaluation; the state stays as it was
        log.exception("monitor %s could not measure its metric", monitor["id"])
        error = f"the metric could not be computed: {failed}"[:500]
    decision = (
        decide(monitor, measured.value, now_ns)
        if measured is not None
        else Decision(str(monitor["state"]), None)
    )
    delivery: webhooks.Delivery | None = None
    if decision.notify is not None and measured is not None:
        body = notification(
            monitor, decision.notify, measured, since, now_ns, rt.settings.public_url
        )
        delivery = webhooks.post_json(rt.egress, str(monitor["webhook_url"]), body)
    settled: dict[str, Any] = {"state": decision.state, "last_evaluated_ns": now_ns}
    if decision.state != monitor["state"]:
        settled["state_since_ns"] = now_ns
    if delivery is not None:
        settled["last_delivery"] = delivery.detail
        settled["last_delivery_ok"] = delivery.ok
        if delivery.ok:
            settled["notified_state"] = "ok" if decision.notify == "recovery" else "alerting"
            settled["last_notified_ns"] = now_ns
    evaluation = {
        "monitor_id": monitor["id"],
        "project_id": monitor["project_id"],
        "at_ns": now_ns,
        "since_ns": since,
        "value": None if measured is None else measured.value,
        "n": 0 if measured is None else int(measured.n),
        "low": None if measured is None else measured.low,
        "high": None if measured is None else measured.high,
        "state": decision.state,
        "error": error,
        "notification": decision.notify,
        "delivered": None if delivery is None else delivery.ok,
        "delivery": None if delivery is None else delivery.detail,
    }
    with rt.write() as conn:
        if not monitor_store.settle(conn, int(monitor["id"]), owner, settled):
            log.warning("monitor %s: the evaluation's lease ran out; not recorded", monitor["id"])
            return None
        evaluation["id"] = monitor_store.add_evaluation(conn, evaluation)
    return _evaluation_view(evaluation)


def evaluate_due(
    rt: Runtime,
    now_ns: int,
    *,
    value_of: ValueOf = metric_value,
    owner: str | None = None,
    limit: int = BATCH,
) -> list[dict[str, Any]]:
    """Evaluate the enabled monitors that are due at ``now_ns`` (what the workers run); the
    evaluations this process made. A monitor another process claimed first is left to it."""
    owner = owner or worker_name()
    with rt.read() as conn:
        due = monitor_store.due_ids(conn, now_ns, limit)
    done: list[dict[str, Any]] = []
    for monitor_id in due:
        with rt.write() as conn:
            if not monitor_store.claim(
                conn, monitor_id, owner, now_ns, LEASE_NS, now_ns + EVERY_NS, due_only=True
            ):
                continue
            monitor = monitor_store.get(conn, monitor_id)
        if monitor is None:
            continue
        try:
            found = _run(rt, monitor, owner, now_ns, value_of)
        except Exception:
            log.exception("monitor %s could not be evaluated; its lease will run out", monitor_id)
            continue
        if found is not None:
            done.append({"monitor_id": monitor_id, **found})
    return done


def evaluate_now(
    rt: Runtime,
    who: Principal,
    monitor_id: int,
    *,
    now_ns: int | None = None,
    value_of: ValueOf = metric_value,
) -> dict[str, Any]:
    """Evaluate a monitor at once (an editor's "evaluate now", the demo): the monitor with
    its history; a monitor another process is evaluating right now is a Conflict."""
    owner = worker_name()
    # A worker evaluating it this very moment holds it for well under a second or two.
    for attempt in range(CLAIM_TRIES):
        now = clock_ns() if now_ns is None else now_ns
        with rt.write() as conn:
            _monitor_of(conn, who, monitor_id, "editor")
            if monitor_store.claim(
                conn, monitor_id, owner, now, LEASE_NS, now + EVERY_NS, due_only=False
            ):
                monitor = monitor_store.get(conn, monitor_id)
                break
        if attempt + 1 < CLAIM_TRIES:
            time.sleep(0.1)
    else:
        raise Conflict(f"monitor {monitor_id} is being evaluated right now; try again")
    assert monitor is not None
    _run(rt, monitor, owner, now, value_of)
    return get_monitor(rt, who, monitor_id)
