"""Every ASSAY_* setting in one typed table, resolved argument > environment > default.

This is the only module that reads ASSAY_* variables (tests/test_docs.py checks it); it imports
nothing beyond the standard library, so the SDK and `assay eval` read it on the base install.
"""

from __future__ import annotations

import os
from dataclasses import MISSING, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from assay.errors import ConfigError

DEFAULT_PORT = 8600
DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_JUDGE_MODEL = "openai/gpt-4.1-mini"
PREFIX = "ASSAY_"


def _home() -> Path:
    return Path(os.environ.get(f"{PREFIX}HOME") or Path.home() / ".assay")


@dataclass(frozen=True)
class Settings:
    """Every setting, server side and client side. Each field documents the environment
    variable that sets it."""

    # --- the client side: the SDK, `assay eval`, datasets, judges and the model layer ---------
    #: ASSAY_URL — the server the SDK sends traces to and evals store experiments on; setting
    #: it also makes `Eval.run()` store its run by default.
    url: str = DEFAULT_URL
    #: ASSAY_API_KEY — the API key the SDK and the client send (none: open mode).
    api_key: str = ""
    #: ASSAY_PROJECT — the project traces, experiments and datasets go to.
    project: str = "default"
    #: ASSAY_JUDGE_MODEL — the model of judges that name none.
    judge_model: str = DEFAULT_JUDGE_MODEL
    #: ASSAY_MODEL_CACHE — cache model answers on disk: auto (calls at temperature 0), on, off.
    model_cache: str = "auto"
    #: ASSAY_CACHE_DIR — where cached model answers live (under models/); default
    #: $XDG_CACHE_HOME/assay, else ~/.cache/assay.
    cache_dir: str = ""
    #: ASSAY_PROMPT_TTL_SECONDS — how long `assay.prompt()` serves a fetched prompt before it
    #: asks the server again (in the background; the app keeps the cached one meanwhile).
    prompt_ttl_seconds: int = 60

    # --- the server side ----------------------------------------------------------------------

    #: ASSAY_DATABASE_URL — SQLAlchemy URL; default: a SQLite file under ASSAY_HOME.
    database_url: str = ""
    #: ASSAY_HOST — address the server binds to.
    host: str = "127.0.0.1"
    #: ASSAY_PORT — port the server listens on.
    port: int = DEFAULT_PORT
    #: ASSAY_GRPC_PORT — port of the OTLP/gRPC receiver (`assay server`), on the same address
    #: as the HTTP one; 0 turns it off.
    grpc_port: int = 4317
    #: ASSAY_MAX_BODY_BYTES — largest OTLP request body accepted, after decompression.
    max_body_bytes: int = 32 * 1024 * 1024
    #: ASSAY_MAX_VALUE_CHARS — longest string kept per attribute value; longer ones are cut
    #: and marked, so one runaway attribute never costs a span.
    max_value_chars: int = 1_000_000
    #: ASSAY_WRITER_BATCH_SPANS — most spans the writer commits in one transaction.
    writer_batch_spans: int = 5_000
    #: ASSAY_WRITER_MAX_PENDING_SPANS — spans waiting for the writer before ingest answers 503.
    writer_max_pending_spans: int = 200_000
    #: ASSAY_SEARCH_INDEX — build the text-search index in the background (on by default).
    search_index: bool = True
    #: ASSAY_MAX_PROJECTS — ingest creates no project past this many (a request that would
    #: is refused with 400): a misconfigured exporter, or a hostile one, cannot fill the server
    #: with projects.
    max_projects: int = 1_000
    #: ASSAY_MAX_NEW_PROJECTS_PER_REQUEST — most projects one ingest request may create.
    max_new_projects_per_request: int = 100
    #: ASSAY_DEFAULT_PROJECT — project for spans that name none.
    default_project: str = "default"
    #: ASSAY_SESSION_IDLE_HOURS — a web UI session unused this long ends (sign in again).
    session_idle_hours: int = 72
    #: ASSAY_SESSION_MAX_DAYS — a web UI session ends this long after sign-in, used or not.
    session_max_days: int = 30
    #: ASSAY_SECURE_COOKIES — mark the UI's cookies Secure even on plain-HTTP requests: set it
    #: behind a TLS proxy that does not send X-Forwarded-Proto (https requests always get it).
    secure_cookies: bool = False
    #: ASSAY_ALLOWED_HOSTS — comma-separated host names the open mode also answers to, beside
    #: localhost, 127.0.0.1 and [::1]: a page on another site that rebinds its own name to
    #: 127.0.0.1 (DNS rebinding) is refused, since no sign-in protects the open mode.
    allowed_hosts: tuple[str, ...] = ()
    #: ASSAY_TRUSTED_PROXIES — comma-separated addresses or CIDR networks of reverse proxies
    #: whose X-Forwarded-For and X-Forwarded-Proto are believed; from anyone else, and by
    #: default, those headers are ignored (a client could name any address in them).
    trusted_proxies: tuple[str, ...] = ()
    #: ASSAY_HEADER_TIMEOUT_SECONDS — a connection that has not sent a request's headers this
    #: long after connecting (or after its first byte) is closed.
    header_timeout_seconds: int = 10
    #: ASSAY_BODY_TIMEOUT_SECONDS — a request body not fully received this long after its
    #: headers is answered 408 and the connection closed.
    body_timeout_seconds: int = 60
    #: ASSAY_KEEP_ALIVE_SECONDS — an idle keep-alive connection is closed after this long.
    keep_alive_seconds: int = 15
    #: ASSAY_MAX_CONNECTIONS — open connections per server process; past it new connections
    #: are closed at once and requests answered 503, so the process never runs out of files.
    max_connections: int = 500
    #: ASSAY_MAX_PAGE_BYTES — about the most bytes of items one list page carries; a page that
    #: would be larger ends early with a next_cursor.
    max_page_bytes: int = 4 * 1024 * 1024
    #: ASSAY_SECRET_KEY — the Fernet key that encrypts provider connections' API keys; default:
    #: one generated into $ASSAY_HOME/secret.key (mode 0600) on first use. Set the same key on
    #: every server and worker of one database.
    secret_key: str = ""
    #: ASSAY_EGRESS_ALLOW — hosts and CIDR ranges the server's model calls may reach besides the
    #: known provider hosts, comma-separated (e.g. ``ollama.internal,10.0.0.0/8``); loopback,
    #: private and link-local addresses are refused unless listed here.
    egress_allow: str = ""
    #: ASSAY_AGENT_LOOPBACK — let the server call registered agent endpoints on loopback
    #: (`assay agent serve` beside the server, the default); turn it off on a shared server
    #: whose loopback holds other services. Other addresses follow ASSAY_EGRESS_ALLOW.
    agent_loopback: bool = True
    #: ASSAY_SERVER_WORKER — run the online-scoring worker inside `assay server` (on by
    #: default); turn off when separate `assay worker` processes do the scoring.
    server_worker: bool = True
    #: ASSAY_WORKER_THREADS — judge calls one worker process makes at once.
    worker_threads: int = 4
    #: ASSAY_WORKER_LEASE_SECONDS — how long a claimed job is a worker's before another may
    #: take it over (a worker killed mid-call loses its jobs for this long, never for good).
    worker_lease_seconds: int = 120
    #: ASSAY_WORKER_POLL_MS — how often an idle worker looks for new traces and jobs.
    worker_poll_ms: int = 1000
    #: ASSAY_PUBLIC_URL — the address people open Assay at (``https://assay.example.com``):
    #: the links in webhook notifications (monitors, judge drift) start with it, so a chat
    #: message links to the page; unset, they are paths.
    public_url: str = ""
    #: ASSAY_HOME — where the default SQLite database lives.
    home: Path = field(default_factory=_home)

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home / 'assay.db'}"

    @classmethod
    def from_env(cls, **overrides: Any) -> Settings:
        """Build settings from ASSAY_* variables, then apply non-None keyword overrides."""
        found = {f.name: from_environment(f.name) for f in fields(cls)}
        base = cls(**{name: value for name, value in found.items() if value is not None})
        given = {k: v for k, v in overrides.items() if v is not None}
        return replace(base, **given)

    def environment(self, *names: str) -> dict[str, str]:
        """These settings as ASSAY_* variables: for processes started from this one."""
        return {_variable(name): str(getattr(self, name)) for name in names}


_FIELDS = {f.name: f for f in fields(Settings)}


def _variable(name: str) -> str:
    return f"{PREFIX}{name.upper()}"


def variable_of(name: str) -> str:
    """The environment variable of setting ``name``, for messages that name it."""
    return _variable(name)


def from_environment(name: str) -> Any:
    """Setting ``name`` as its ASSAY_* variable sets it, parsed; None when unset or empty."""
    found = _FIELDS.get(name)
    if found is None:
        raise KeyError(f"no setting {name!r}")
    raw = os.environ.get(_variable(name))
    if raw is None or raw == "":
        return None
    return _parse(name, found.type, raw)


def cache_root() -> Path:
    """$ASSAY_CACHE_DIR; by default $XDG_CACHE_HOME/assay, else ~/.cache/assay."""
    root = setting("cache_dir")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "assay"


def setting(name: str, given: Any = None) -> Any:
    """One setting: ``given`` when not None or empty, else its variable, else its default. For
    code that needs one setting, not the whole table (and not an error in an unrelated one)."""
    if given is not None and given != "":
        return given
    found = from_environment(name)
    if found is not None:
        return found
    default = _FIELDS[name]
    return default.default_factory() if default.default_factory is not MISSING else default.default


def _parse(name: str, type_name: Any, raw: str) -> Any:
    type_text = str(type_name)
    try:
        if type_text == "int":
            return int(raw)
        if type_text == "bool":
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError(raw)
        if type_text == "Path":
            return Path(raw)
        if type_text == "tuple[str, ...]":
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"ASSAY_{name.upper()}={raw!r} is not a valid {type_text}; fix or unset it."
        ) from None
    return raw
