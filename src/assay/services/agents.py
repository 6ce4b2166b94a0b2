"""Agent endpoints: the team's real agent, served by `assay agent serve`, run from Assay with
overrides (prompt versions by name, parameters) on one input or over a dataset.

Registering an endpoint (editors) issues a token, shown once to the registering process and
kept sealed with the server's secret key (like a connection's API key: the server must send it
back on every call). Registering the same name again moves the endpoint and issues a new token.
The serving process says it is up every few seconds (``last_seen``); Ctrl-C marks it offline.

Annotators and editors run it. The server's call goes through the egress policy's variant for
agents (`EgressPolicy.for_agents`): the registered URL, with loopback allowed unless
ASSAY_AGENT_LOOPBACK is off, private and link-local addresses only if ASSAY_EGRESS_ALLOW lists
them, and no redirects. The server shows what the agent answered only in the agent protocol's
shape (output, trace id, error): an answer in another shape is an error that quotes none of it,
so an endpoint URL cannot be used to read other services.

A dataset run is an experiment like any other (eval name ``agent:NAME``): one row per record,
with the output, the run's trace and the scores of chosen built-in scorers and stored
evaluators. It is the playground's dataset run with the agent as its target
(services/playground.py: `AgentTarget`, `run_agent_on_dataset`). Labels in the overrides are
resolved to versions when the run starts, so every record sees the same prompt even if the
label moves meanwhile.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from assay.errors import NotFound, UserError
from assay.sdk._serve import HEARTBEAT_SECONDS, RUN_PATH
from assay.services.egress import EgressRefused, EgressTransport
from assay.services.principal import Principal
from assay.services.projects import ensure_project, project_id
from assay.services.prompts import check_definition, check_name
from assay.services.runtime import Runtime
from assay.store import agents as agent_store
from assay.store import prompts as prompt_store
from assay.store.database import Connection
from assay.store.engine import now_ns

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$"
MAX_URL_CHARS = 2000
MAX_AGENT_ID = 2**31 - 1
#: An agent not heard from for this long shows as "not seen" (three missed heartbeats).
STALE_SECONDS = 3 * HEARTBEAT_SECONDS
#: How long one run may take before the server gives up on it.
RUN_TIMEOUT_SECONDS = 300.0
#: Largest answer read from an agent.
MAX_ANSWER_BYTES = 10 * 1024 * 1024
MAX_OVERRIDES_CHARS = 200_000
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


# --- views --------------------------------------------------------------------------------------


def status_of(agent: Mapping[str, Any], now: int | None = None) -> str:
    """online (heard from lately), offline (stopped with Ctrl-C) or "not seen" (no heartbeat
    for `STALE_SECONDS`: killed, or its machine is away)."""
    if not agent["online"]:
        return "offline"
    seen = agent.get("last_seen_ns")
    now = now_ns() if now is None else now
    if seen is None or now - int(seen) > STALE_SECONDS * 1e9:
        return "not seen"
    return "online"


def _view(agent: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": agent["id"],
        "project": agent["project"],
        "name": agent["name"],
        "url": agent["url"],
        "target": agent["target"],
        "registered_by": agent["registered_by"],
        "status": status_of(agent),
        "last_seen_ns": agent["last_seen_ns"],
        "created_ns": agent["created_ns"],
        "updated_ns": agent["updated_ns"],
    }


def _agent_of(
    conn: Connection, who: Principal, agent_id: int, role: str, project: str | None = None
) -> dict[str, Any]:
    found = agent_store.get(conn, agent_id)
    if found is None or not who.may_see(found["project"]):
        raise NotFound(f"agent {agent_id} does not exist")
    if project is not None and found["project"] != project:
        who.require(project)
        raise NotFound(f"agent {agent_id} is not in project {project!r}")
    who.require(found["project"], role)
    return found


def _check_url(rt: Runtime, url: str) -> str:
    url = url.strip().rstrip("/")
    if not url or len(url) > MAX_URL_CHARS:
        raise UserError(f"an agent's url is an http:// or https:// URL of at most {MAX_URL_CHARS}")
    _agent_policy(rt).check_url(url)
    return url


def _agent_policy(rt: Runtime) -> Any:
    return rt.egress.for_agents(loopback=rt.settings.agent_loopback)


# --- use cases: the endpoints -------------------------------------------------------------------


def register_agent(
    rt: Runtime, who: Principal, project: str, *, name: str, url: str, target: str | None = None
) -> dict[str, Any]:
    """Register an agent endpoint (editors), or register its name again (a new URL and a new
    token): the agent's view with ``token``, the only time the token is shown."""
    if not isinstance(name, str) or not re.match(NAME_PATTERN, name):
        raise UserError(
            f"agent name {name!r} must start with a letter or digit and hold only letters, "
            "digits, '.', '_' and '-' (at most 200 characters)"
        )
    who.require(project, "editor")
    url = _check_url(rt, url)
    token = "agt_" + secrets.token_urlsafe(32)
    stamp = now_ns()
    values = {
        "url": url,
        "target": (target or None) and str(target)[:500],
        "token_sealed": rt.secrets.seal(token),
        "registered_by": who.author,
        "online": True,
        "updated_ns": stamp,
        "last_seen_ns": stamp,
    }
    with rt.write() as conn:
        pid = ensure_project(conn, who, project, "editor")
        existing = agent_store.by_name(conn, pid, name)
        if existing is None:
            agent_id = agent_store.insert(conn, pid, {**values, "name": name, "created_ns": stamp})
        else:
            agent_id = int(existing["id"])
            agent_store.change(conn, pid, agent_id, values)
        found = agent_store.get(conn, agent_id)
    assert found is not None
    return {**_view(found), "token": token}


def list_agents(rt: Runtime, who: Principal, project: str) -> list[dict[str, Any]]:
    with rt.read() as conn:
        return [_view(a) for a in agent_store.list_agents(conn, project_id(conn, who, project))]


def get_agent(
    rt: Runtime, who: Principal, agent_id: int, project: str | None = None
) -> dict[str, Any]:
    with rt.read() as conn:
        return _view(_agent_of(conn, who, agent_id, "viewer", project))


def delete_agent(rt: Runtime, who: Principal, agent_id: int) -> None:
    """Forget an endpoint (editors); its token stops working at once, since the server no
    longer sends it."""
    with rt.write() as conn:
        found = _agent_of(conn, who, agent_id, "editor")
        agent_store.remove(conn, int(found["project_id"]), agent_id)


def heartbeat(rt: Runtime, who: Principal, agent_id: int, online: bool) -> dict[str, Any]:
    """The serving process is up (``online``) or stopping (editors: whoever registered it)."""
    with rt.write() as conn:
        found = _agent_of(conn, who, agent_id, "editor")
        stamp = now_ns()
        agent_store.change(
            conn, int(found["project_id"]), agent_id, {"online": online, "last_seen_ns": stamp}
        )
        found = {**found, "online": online, "last_seen_ns": stamp}
    return _view(found)


# --- overrides ----------------------------------------------------------------------------------


def check_overrides(conn: Connection, pid: int, raw: Any) -> dict[str, Any]:
    """The overrides a run sends, checked against the project's prompts: ``{"prompts": {name:
    {"version": N} | {"label": L} | {"messages": [...], ...}, ...}, "params": {...}}``; labels
    resolved to the versions they point at now (kept as ``label`` beside ``version``)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise UserError('overrides must be an object: {"prompts": {...}, "params": {...}}')
    unknown = set(raw) - {"prompts", "params"}
    if unknown:
        raise UserError(
            f"overrides hold only 'prompts' and 'params' (not {', '.join(sorted(unknown))})"
        )
    if len(json.dumps(raw, default=str)) > MAX_OVERRIDES_CHARS:
        raise UserError(f"overrides are larger than {MAX_OVERRIDES_CHARS:,} characters of JSON")
    params = raw.get("params")
    if params is not None and not isinstance(params, Mapping):
        raise UserError("overrides.params must be an object")
    prompts = raw.get("prompts") or {}
    if not isinstance(prompts, Mapping):
        raise UserError('overrides.prompts must be an object: {"NAME": {"version": N}}')
    checked: dict[str, Any] = {}
    for name, entry in prompts.items():
        check_name(name)
        checked[name] = _check_prompt_override(conn, pid, name, entry)
    out: dict[str, Any] = {}
    if checked:
        out["prompts"] = checked
    if params:
        out["params"] = dict(params)
    return out


def _check_prompt_override(conn: Connection, pid: int, name: str, entry: Any) -> dict[str, Any]:
    if not isinstance(entry, Mapping):
        raise UserError(f'overrides.prompts.{name} must be an object like {{"version": 2}}')
    params = entry.get("params")
    if params is not None and not isinstance(params, Mapping):
        raise UserError(f"overrides.prompts.{name}.params must be an object")
    extra = {"params": dict(params)} if params else {}
    if entry.get("messages") is not None:
        definition, _variables = check_definition(dict(entry))
        return {**definition, **extra, "params": {**definition["params"], **(params or {})}}
    version, label = entry.get("version"), entry.get("label")
    if (version is None) == (label is None):
        raise UserError(
            f"overrides.prompts.{name} names a version or a label (one of them), or holds messages"
        )
    found = prompt_store.find(conn, pid, name)
    if found is None:
        raise UserError(f"overrides name prompt {name!r}, which this project does not have")
    if label is not None:
        check_name(str(label), "label")
        pointed = prompt_store.label_version(conn, int(found["id"]), str(label))
        if pointed is None:
            raise UserError(f"prompt {name!r} has no label {label!r}")
        return {"version": pointed, "label": str(label), **extra}
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise UserError(f"overrides.prompts.{name}.version must be a version number")
    if prompt_store.get_version(conn, int(found["id"]), version) is None:
        raise UserError(f"prompt {name!r} has no version {version}")
    return {"version": version, **extra}


# --- calling the agent --------------------------------------------------------------------------


def _read_limited(response: httpx.Response) -> bytes | None:
    body = bytearray()
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            return None
    return bytes(body)


def call_agent(
    rt: Runtime, url: str, token: str, value: Any, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """One run on the endpoint: ``output``, ``trace_id``, ``error`` (None when it went well)
    and ``duration`` (seconds, as the server measured it). Never raises for the agent's
    failures: they are the run's error."""
    started = time.monotonic()
    result: dict[str, Any] = {"output": None, "trace_id": None, "error": None}
    try:
        transport = EgressTransport(_agent_policy(rt))
        with (
            httpx.Client(transport=transport, timeout=RUN_TIMEOUT_SECONDS) as http,
            http.stream(
                "POST",
                url + RUN_PATH,
                json={"input": value, "overrides": dict(overrides)},
                headers={"authorization": f"Bearer {token}"},
            ) as response,
        ):
            status = response.status_code
            body = _read_limited(response)
        result.update(_answer(status, body))
    except EgressRefused as refused:
        result["error"] = f"the egress policy refuses the agent's URL: {refused}"
    except httpx.TimeoutException:
        result["error"] = f"the agent did not answer within {RUN_TIMEOUT_SECONDS:.0f} s"
    except httpx.HTTPError as error:
        result["error"] = (
            f"cannot reach the agent at {url} ({type(error).__name__}): is `assay agent serve` "
            "still running there?"
        )
    result["duration"] = round(time.monotonic() - started, 6)
    return result


def _answer(status: int, body: bytes | None) -> dict[str, Any]:
    if status == 401:
        return {
            "error": "the agent refused the server's token: it was registered again since, or "
            "serves with another token; restart `assay agent serve`"
        }
    if status != 200:
        return {"error": f"the agent answered HTTP {status}"}
    if body is None:
        return {"error": f"the agent's answer is larger than {MAX_ANSWER_BYTES:,} bytes"}
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict) or not {"output", "trace_id", "error"} <= set(data):
        return {"error": "the answer is not one of `assay agent serve` (no output, trace_id)"}
    trace_id = data.get("trace_id")
    error = data.get("error")
    return {
        "output": data.get("output"),
        "trace_id": trace_id if isinstance(trace_id, str) and TRACE_ID.match(trace_id) else None,
        "error": str(error)[:10_000] if error is not None else None,
    }


@dataclass(frozen=True)
class Endpoint:
    """An agent endpoint ready to be called: where, and with the token it expects."""

    id: int
    name: str
    project: str
    project_id: int
    url: str
    token: str = field(repr=False)


def endpoint(
    rt: Runtime, conn: Connection, who: Principal, project: str | None, agent: int | str
) -> Endpoint:
    """The agent to run (annotators and editors): by id (a number, or its digits), or by name
    in ``project``."""
    if isinstance(agent, str) and agent.isascii() and agent.isdigit():
        if len(agent) > 10 or int(agent) > MAX_AGENT_ID:
            raise NotFound(f"agent {agent} does not exist")
        agent = int(agent)
    if isinstance(agent, str):
        if project is None:
            raise UserError(f"name the project of agent {agent!r}")
        found = agent_store.by_name(conn, project_id(conn, who, project), agent)
        if found is None:
            raise NotFound(
                f"project {project!r} has no agent {agent!r}: start it with `assay agent serve "
                f"FILE:FUNCTION --project {project}`"
            )
        agent = int(found["id"])
    row = _agent_of(conn, who, int(agent), "annotator", project)
    pid = int(row["project_id"])
    sealed = agent_store.token_of(conn, pid, int(row["id"]))
    assert sealed is not None
    return Endpoint(
        id=int(row["id"]),
        name=str(row["name"]),
        project=str(row["project"]),
        project_id=pid,
        url=str(row["url"]),
        token=rt.secrets.open(sealed),
    )


def run_agent(
    rt: Runtime,
    who: Principal,
    project: str | None,
    agent_id: int,
    inputs: Any,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the agent once on ``inputs`` with ``overrides`` (annotators and editors):
    ``output``, ``trace_id`` (the run's trace, in the agent's project), ``error`` and
    ``duration`` in seconds, plus the ``overrides`` as sent (labels resolved)."""
    with rt.read() as conn:
        found = endpoint(rt, conn, who, project, agent_id)
        checked = check_overrides(conn, found.project_id, overrides)
    result = call_agent(rt, found.url, found.token, inputs, checked)
    if result["trace_id"]:  # the agent answered: it is up
        seen(rt, found)
    return {**result, "overrides": checked}


def seen(rt: Runtime, agent: Endpoint) -> None:
    """The agent answered a run: it is up (its status shows "online")."""
    with rt.write() as conn:
        agent_store.change(conn, agent.project_id, agent.id, {"last_seen_ns": now_ns()})


def describe_overrides(overrides: Mapping[str, Any]) -> str:
    """The prompts a run overrides, for an experiment's name: "support-system v2"."""
    parts = []
    for name, entry in (overrides.get("prompts") or {}).items():
        parts.append(f"{name} v{entry['version']}" if "version" in entry else f"{name} (edited)")
    return ", ".join(parts)
