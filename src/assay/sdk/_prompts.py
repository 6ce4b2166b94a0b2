"""`assay.prompt()`: a prompt from the registry, ready for the OpenAI and Anthropic SDKs.

A prompt is fetched once and cached in the process for ASSAY_PROMPT_TTL_SECONDS; past that,
the next call still returns the cached version at once and refreshes it in the background, so
moving a label reaches a running application without a restart and no call waits on the
server. Every fetched version is also kept on disk (under ASSAY_CACHE_DIR), so a process that
starts while the server is away serves the last version it knew, and says so once in the log.
A pinned ``version=`` never changes, so it is never fetched again.

During a run of the agent that Assay started (`assay agent serve`), `prompt_overrides` holds the
versions the run asked for, by prompt name: ``assay.prompt("support-system")`` then returns the
asked-for version (or label, or an unsaved edit sent inline) instead of ``production``, for that
run only. The overrides live in a context variable, so concurrent runs (threads, asyncio tasks)
each see their own; a thread the agent starts by hand does not inherit them (contextvars'
rule: pass ``contextvars.copy_context().run`` to it, as ``asyncio`` does by itself).

`Prompt.render` fills the variables in the judges' sandboxed template language. The rendered
messages remember the prompt's name and version, and a wrapped client (`assay.wrap_openai`,
`assay.wrap_anthropic`) records them on the call's span as ``assay.prompt.name`` and
``assay.prompt.version``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from assay.errors import PromptUnavailable, UserError
from assay.sdk._state import STATE
from assay.semconv.attributes import PROMPT_NAME, PROMPT_VERSION
from assay.settings import cache_root, setting

__all__ = [
    "PROMPT_NAME",
    "PROMPT_VERSION",
    "Prompt",
    "RenderedPrompt",
    "current_overrides",
    "prompt",
    "prompt_of",
    "prompt_overrides",
]

if TYPE_CHECKING:
    from assay.scorers._template import PromptTemplate

log = logging.getLogger("assay.sdk")

DEFAULT_LABEL = "production"
FETCH_TIMEOUT_SECONDS = 5.0
#: What Anthropic requires and OpenAI does not: a prompt without max_tokens gets this.
ANTHROPIC_DEFAULT_MAX_TOKENS = 1024
CACHE_FORMAT = 1
#: Parameters every Anthropic SDK takes as keyword arguments; the others (temperature, top_p,
#: top_k, ...) go in ``extra_body``, which every SDK version sends as they are.
ANTHROPIC_ARGUMENTS = frozenset(
    {"max_tokens", "stop_sequences", "metadata", "thinking", "tool_choice", "service_tier"}
)
#: OpenAI parameters Anthropic's API does not know: left out of `RenderedPrompt.anthropic`.
OPENAI_ONLY = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "seed",
        "n",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "parallel_tool_calls",
        "store",
        "user",
        "reasoning_effort",
    }
)


# --- rendered messages that remember their prompt ----------------------------------------------


class PromptMessage(dict[str, Any]):
    """A rendered chat message (a plain dict to the provider SDKs) that remembers the prompt
    version it came from."""

    prompt_ref: tuple[str, int] | None = None


class PromptText(str):
    """A rendered system prompt (Anthropic's ``system=``) that remembers its prompt version."""

    prompt_ref: tuple[str, int] | None = None


def prompt_of(kwargs: Mapping[str, Any]) -> tuple[str, int] | None:
    """The (name, version) of the registry prompt a model call's arguments were rendered from."""
    for key in ("system", "instructions"):
        ref = getattr(kwargs.get(key), "prompt_ref", None)
        if ref is not None:
            return ref  # type: ignore[no-any-return]
    for key in ("messages", "input"):
        items = kwargs.get(key)
        if isinstance(items, list | tuple):
            for item in items:
                ref = getattr(item, "prompt_ref", None)
                if ref is not None:
                    return ref  # type: ignore[no-any-return]
    return None


def _message(role: str, content: str, ref: tuple[str, int]) -> PromptMessage:
    message = PromptMessage(role=role, content=content)
    message.prompt_ref = ref
    return message


def _openai_tool_to_anthropic(tool: Any) -> Any:
    """OpenAI's ``{"type": "function", "function": {...}}`` as Anthropic's tool; other tools
    are passed as written."""
    if isinstance(tool, dict) and tool.get("type") == "function" and "function" in tool:
        function = tool["function"]
        converted = {"name": function.get("name"), "input_schema": function.get("parameters")}
        if function.get("description"):
            converted["description"] = function["description"]
        if converted["input_schema"] is None:
            converted["input_schema"] = {"type": "object", "properties": {}}
        return converted
    return tool


@dataclass(frozen=True)
class RenderedPrompt:
    """A prompt version with its variables filled: ``openai()`` and ``anthropic()`` are the
    keyword arguments of ``chat.completions.create`` and ``messages.create``."""

    name: str
    version: int
    model: str | None
    params: dict[str, Any]
    messages: list[PromptMessage]
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None

    @property
    def system(self) -> PromptText | None:
        """The system messages joined: Anthropic takes them apart from the others."""
        parts = [m["content"] for m in self.messages if m["role"] == "system"]
        if not parts:
            return None
        text = PromptText("\n\n".join(parts))
        text.prompt_ref = (self.name, self.version)
        return text

    def openai(self, **overrides: Any) -> dict[str, Any]:
        """``client.chat.completions.create(**rendered.openai())``."""
        kwargs: dict[str, Any] = {"messages": list(self.messages)}
        if self.model:
            kwargs["model"] = self.model
        if self.tools:
            kwargs["tools"] = list(self.tools)
        if self.response_format:
            kwargs["response_format"] = dict(self.response_format)
        kwargs.update(self.params)
        kwargs.update(overrides)
        return kwargs

    def anthropic(self, **overrides: Any) -> dict[str, Any]:
        """``client.messages.create(**rendered.anthropic())``: the system prompt apart,
        max_tokens (which Anthropic requires) set when the prompt has none, sampling parameters
        in ``extra_body`` and OpenAI-only ones left out."""
        kwargs: dict[str, Any] = {
            "messages": [m for m in self.messages if m["role"] != "system"],
            "max_tokens": ANTHROPIC_DEFAULT_MAX_TOKENS,
        }
        system = self.system
        if system is not None:
            kwargs["system"] = system
        if self.model:
            kwargs["model"] = self.model
        if self.tools:
            kwargs["tools"] = [_openai_tool_to_anthropic(tool) for tool in self.tools]
        params = {k: v for k, v in self.params.items() if k not in OPENAI_ONLY}
        if "max_completion_tokens" in params:
            params.setdefault("max_tokens", params.pop("max_completion_tokens"))
        if "stop" in params:
            stop = params.pop("stop")
            params.setdefault("stop_sequences", [stop] if isinstance(stop, str) else stop)
        body = {k: v for k, v in params.items() if k not in ANTHROPIC_ARGUMENTS}
        kwargs.update((k, v) for k, v in params.items() if k in ANTHROPIC_ARGUMENTS)
        if body:
            kwargs["extra_body"] = body
        kwargs.update(overrides)
        return kwargs


# --- a prompt version --------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """One version of a registry prompt, as `assay.prompt()` returns it."""

    name: str
    version: int
    messages: list[dict[str, str]]
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    tools: list[Any] | None = None
    response_format: dict[str, Any] | None = None
    labels: list[str] = field(default_factory=list)
    project: str | None = None
    commit_message: str | None = None
    #: "server" when this process fetched it; "disk" when it is the last known version.
    source: str = "server"
    _templates: dict[int, PromptTemplate] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_document(cls, data: Mapping[str, Any], source: str = "server") -> Prompt:
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            messages=[
                {"role": str(m["role"]), "content": str(m["content"])} for m in data["messages"]
            ],
            model=data.get("model"),
            params=dict(data.get("params") or {}),
            tools=data.get("tools"),
            response_format=data.get("response_format"),
            labels=list(data.get("labels") or []),
            project=data.get("project"),
            commit_message=data.get("message"),
            source=source,
        )

    def _template(self, index: int) -> PromptTemplate:
        found = self._templates.get(index)
        if found is None:
            from assay.scorers._template import PromptTemplate

            message = self.messages[index]
            found = PromptTemplate(
                message["content"],
                allowed=None,
                what=f"prompt {self.name!r} v{self.version} messages[{index}]",
                allow_empty=True,
            )
            self._templates[index] = found
        return found

    @property
    def variables(self) -> list[str]:
        """The names the messages use, to pass to `render`."""
        names: set[str] = set()
        for index in range(len(self.messages)):
            names |= self._template(index).names
        return sorted(names)

    def render(self, **variables: Any) -> RenderedPrompt:
        """The messages with ``variables`` filled in, plus model, parameters, tools and response
        format. Raises `UserError` for a missing variable or a template that breaks the
        sandbox's rules (attribute access to Python internals, huge numbers or texts)."""
        missing = [name for name in self.variables if name not in variables]
        if missing:
            raise UserError(
                f"prompt {self.name!r} v{self.version} needs {', '.join(missing)}: "
                f"pass {', '.join(f'{name}=...' for name in missing)} to render()"
            )
        ref = (self.name, self.version)
        messages = [
            _message(message["role"], self._template(i).render(variables), ref)
            for i, message in enumerate(self.messages)
        ]
        return RenderedPrompt(
            name=self.name,
            version=self.version,
            model=self.model,
            params=dict(self.params),
            messages=messages,
            tools=list(self.tools) if self.tools else None,
            response_format=dict(self.response_format) if self.response_format else None,
        )


# --- fetching and caching ----------------------------------------------------------------------

_Key = tuple[str, str, str, str]


@dataclass
class _Entry:
    prompt: Prompt
    checked: float  # time.monotonic() of the last attempt to refresh


class _Unreachable(Exception):
    """The server could not give the prompt; the message says why."""


_LOCK = threading.Lock()
_CACHE: dict[_Key, _Entry] = {}
_REFRESHING: set[_Key] = set()
#: Keys whose fallback to the last known version was logged (once, until the server is back).
_WARNED: set[_Key] = set()


_HTTP: httpx.Client | None = None


def _http() -> httpx.Client:
    """One client for every fetch: a new one per request would build a TLS context each time
    (most of a first fetch's ~0.2 s)."""
    global _HTTP
    with _LOCK:
        if _HTTP is None:
            _HTTP = httpx.Client(timeout=FETCH_TIMEOUT_SECONDS)
        return _HTTP


def _forget_http_after_fork() -> None:
    # A forked worker (gunicorn, multiprocessing) must not share the parent's connections.
    global _HTTP
    _HTTP = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_http_after_fork)


def _fetch(url: str, api_key: str | None, key: _Key) -> dict[str, Any]:
    _url, project, name, selector = key
    kind, _, value = selector.partition(":")
    path = f"/api/v1/projects/{quote(project, safe='')}/prompts/{quote(name, safe='')}"
    headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = _http().get(url + path, params={kind: value}, headers=headers)
    except httpx.HTTPError as error:
        raise _Unreachable(f"the server at {url} cannot be reached ({error})") from None
    if response.status_code != 200:
        try:
            detail = response.json()["error"]["message"]
        except Exception:
            detail = response.text[:200]
        raise _Unreachable(f"the server answered {response.status_code}: {detail}")
    try:
        data = response.json()
        Prompt.from_document(data)
    except Exception as error:
        raise _Unreachable(f"the server's answer is not a prompt ({error})") from None
    return data  # type: ignore[no-any-return]


def _disk_path(key: _Key) -> Path:
    digest = hashlib.sha256(json.dumps(key).encode()).hexdigest()[:40]
    return cache_root() / "prompts" / f"{digest}.json"


def _write_disk(key: _Key, data: Mapping[str, Any]) -> None:
    path = _disk_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"format": CACHE_FORMAT, "key": list(key), "prompt": data})
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(body)
        os.replace(temporary, path)
    except Exception:
        log.debug("Assay: could not keep prompt %r on disk at %s", key[2], path, exc_info=True)


def _read_disk(key: _Key) -> dict[str, Any] | None:
    path = _disk_path(key)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        if stored.get("format") != CACHE_FORMAT or stored.get("key") != list(key):
            return None
        data = stored["prompt"]
        Prompt.from_document(data)
        return data  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None
    except Exception:
        log.debug("Assay: ignoring an unreadable cached prompt at %s", path, exc_info=True)
        return None


def _warn_once(key: _Key, prompt: Prompt, reason: str) -> None:
    with _LOCK:
        if key in _WARNED:
            return
        _WARNED.add(key)
    log.warning(
        "Assay: serving prompt %r version %d, the last known for %s, because %s",
        prompt.name,
        prompt.version,
        key[3].replace(":", " "),
        reason,
    )


def _refresh(url: str, api_key: str | None, key: _Key) -> None:
    try:
        try:
            data = _fetch(url, api_key, key)
        except _Unreachable as error:
            with _LOCK:
                entry = _CACHE.get(key)
            if entry is not None:
                _warn_once(key, entry.prompt, str(error))
            return
        fresh = Prompt.from_document(data)
        with _LOCK:
            old = _CACHE.get(key)
            if old is not None and old.prompt.version == fresh.version and old.prompt == fresh:
                fresh = old.prompt  # keep compiled templates
            _CACHE[key] = _Entry(fresh, time.monotonic())
            back = key in _WARNED
            _WARNED.discard(key)
        if back:
            log.warning("Assay: the server is back; prompt %r is fetched again", fresh.name)
        _write_disk(key, data)
    except Exception:
        log.debug("Assay: refreshing prompt %r failed", key[2], exc_info=True)
    finally:
        with _LOCK:
            _REFRESHING.discard(key)


def _refresh_in_background(url: str, api_key: str | None, key: _Key) -> None:
    with _LOCK:
        if key in _REFRESHING:
            return
        _REFRESHING.add(key)
        entry = _CACHE.get(key)
        if entry is not None:
            entry.checked = time.monotonic()  # one attempt per TTL, even when it fails
    try:
        threading.Thread(
            target=_refresh, args=(url, api_key, key), name="assay-prompt-refresh", daemon=True
        ).start()
    except Exception:
        with _LOCK:
            _REFRESHING.discard(key)


def _ttl() -> float:
    try:
        return max(float(setting("prompt_ttl_seconds")), 0.0)
    except Exception:
        return 60.0


# --- overrides for one run -------------------------------------------------------------------

#: The overrides of the run in progress in this context: ``{"prompts": {name: {...}}, "params":
#: {...}}`` as the server sent them (see `prompt_overrides`).
_OVERRIDES: ContextVar[Mapping[str, Any] | None] = ContextVar("assay_overrides", default=None)


@contextmanager
def prompt_overrides(overrides: Mapping[str, Any] | None) -> Iterator[None]:
    """Within the block, `prompt` returns the versions ``overrides["prompts"]`` names::

        {"prompts": {"support-system": {"version": 3}},        # a saved version
                     "triage": {"label": "staging"},             # where a label points
                     "tone": {"messages": [...], "model": "..."}},  # an unsaved edit
         "params": {"temperature": 0.2}}                         # for the agent to read

    A prompt's entry may also carry ``"params"``, merged over that version's parameters.
    `assay agent serve` wraps every run in this; tests and in-process agents may use it too.
    """
    token = _OVERRIDES.set(overrides or None)
    try:
        yield
    finally:
        _OVERRIDES.reset(token)


def current_overrides() -> Mapping[str, Any]:
    """The overrides of the run in progress (empty outside one): its ``params`` are for the
    agent's own use."""
    return _OVERRIDES.get() or {}


def _override_of(name: str) -> Mapping[str, Any] | None:
    found = _OVERRIDES.get()
    if not found:
        return None
    prompts = found.get("prompts")
    entry = prompts.get(name) if isinstance(prompts, Mapping) else None
    return entry if isinstance(entry, Mapping) else None


def _with_params(found: Prompt, override: Mapping[str, Any]) -> Prompt:
    params = override.get("params")
    if not isinstance(params, Mapping) or not params:
        return found
    return replace(found, params={**found.params, **params}, _templates={})


def prompt(
    name: str,
    *,
    label: str | None = None,
    version: int | None = None,
    project: str | None = None,
    url: str | None = None,
    api_key: str | None = None,
) -> Prompt:
    """A version of registry prompt ``name``: the one ``label`` points at (default
    ``production``), or ``version`` pinned.

    ``project``, ``url`` and ``api_key`` default to those `assay.init` was given, else
    ASSAY_PROJECT, ASSAY_URL and ASSAY_API_KEY. Cached in the process and on disk (see the
    module); once a version is known it never raises. With nothing cached and the server
    unreachable (or refusing), raises `PromptUnavailable` saying why. Inside a run with
    overrides (`prompt_overrides`), an override for ``name`` wins over ``label``/``version``.
    """
    if label is not None and version is not None:
        raise UserError("assay.prompt(): pass label= or version=, not both")
    override = _override_of(name)
    if override is not None:
        if override.get("messages"):
            document = {**override, "name": name, "version": int(override.get("version") or 0)}
            return Prompt.from_document(document, source="override")
        if override.get("version") is not None:
            label, version = None, int(override["version"])
        elif override.get("label"):
            label, version = str(override["label"]), None
        return _with_params(_prompt(name, label, version, project, url, api_key), override)
    return _prompt(name, label, version, project, url, api_key)


def _prompt(
    name: str,
    label: str | None,
    version: int | None,
    project: str | None,
    url: str | None,
    api_key: str | None,
) -> Prompt:
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise UserError(f"assay.prompt(): version must be an int (got {version!r})")
    initialised = STATE.tracer is not None
    project = str(project or (STATE.project if initialised else setting("project")))
    url = str(url or (STATE.url if initialised and STATE.url else setting("url"))).rstrip("/")
    api_key = api_key or (STATE.api_key if initialised else setting("api_key")) or None
    selector = f"version:{version}" if version is not None else f"label:{label or DEFAULT_LABEL}"
    key: _Key = (url, project, name, selector)

    with _LOCK:
        entry = _CACHE.get(key)
    if entry is not None:
        if version is None and time.monotonic() - entry.checked >= _ttl():
            _refresh_in_background(url, api_key, key)
        return entry.prompt

    try:
        data = _fetch(url, api_key, key)
    except _Unreachable as error:
        kept = _read_disk(key)
        if kept is None:
            raise PromptUnavailable(
                f"prompt {name!r} ({selector.replace(':', ' ')}, project {project!r}) is not "
                f"available: {error}, and no earlier version is cached on this machine. Start "
                f"the server or set ASSAY_URL / ASSAY_API_KEY, and check the name and label."
            ) from None
        found = Prompt.from_document(kept, source="disk")
        _warn_once(key, found, str(error))
    else:
        found = Prompt.from_document(data)
        _write_disk(key, data)
    with _LOCK:
        _CACHE[key] = _Entry(found, time.monotonic())
    return found


def clear_prompt_cache() -> None:
    """Forget prompts cached in this process (the disk cache stays)."""
    with _LOCK:
        _CACHE.clear()
        _WARNED.clear()
