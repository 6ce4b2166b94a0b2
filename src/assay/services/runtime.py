"""What a running server holds: settings, the store's engines, the writer, and small caches.

The services take the runtime (or, for the CLI, only its :class:`Database`) and open their
transactions on it.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from assay.semconv.prices import DEFAULT_PRICES, PriceTable, parse_overrides
from assay.services.egress import EgressPolicy
from assay.services.secrets import SecretBox
from assay.settings import Settings
from assay.store import keys as key_store
from assay.store import migrate, search
from assay.store import projects as project_store
from assay.store import users as user_store
from assay.store.database import Connection, Database
from assay.store.engine import make_engine
from assay.store.indexer import SearchIndexer
from assay.store.indexer import catch_up as catch_up_index
from assay.store.writer import SpanWriter

KEY_CACHE_SECONDS = 5.0
#: How often a "no users yet" is asked again (a yes is kept: users are never deleted).
NO_USERS_RECHECK_SECONDS = 2.0
PRICE_CACHE_SECONDS = 30.0


@dataclass
class _Cached:
    value: Any
    expires: float


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable only from this machine (the open mode's condition)."""
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _catch_up(sqlite: bool) -> Callable[[Connection], int]:
    return search.index_if_behind if sqlite else catch_up_index


@dataclass(kw_only=True)
class Runtime(Database):
    settings: Settings
    writer: SpanWriter
    #: PostgreSQL's search indexer thread (SQLite's writer indexes by itself).
    indexer: SearchIndexer | None = None
    #: Whether a request without a key may pass when no key exists (loopback binds only).
    allow_open: bool = True
    _keys: dict[str, _Cached] = field(default_factory=dict)
    _key_count: _Cached | None = None
    _users_exist: _Cached | None = None
    _prices: dict[str, _Cached] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _secrets: SecretBox | None = None
    _egress: EgressPolicy | None = None

    @classmethod
    def open(cls, settings: Settings) -> Runtime:
        url = settings.resolved_database_url()
        engine = make_engine(url)
        migrate.upgrade(engine)
        sqlite = engine.dialect.name == "sqlite"
        writer = SpanWriter(
            make_engine(url, role="writer"),
            batch_spans=settings.writer_batch_spans,
            max_pending=settings.writer_max_pending_spans,
            max_projects=settings.max_projects,
            max_new_projects_per_request=settings.max_new_projects_per_request,
            # SQLite: one writer per database, so the writer indexes between commits.
            indexer=search.index_batch if settings.search_index and sqlite else None,
            # Both: past search.MAX_LAG unindexed spans, the writer indexes after each commit.
            catch_up=_catch_up(sqlite) if settings.search_index else None,
        )
        indexer = SearchIndexer(engine) if settings.search_index and not sqlite else None
        return cls(
            settings=settings,
            engine=engine,
            writer=writer,
            updates=make_engine(url, role="updates") if sqlite else engine,
            indexer=indexer,
            allow_open=is_loopback(settings.host),
        )

    def start(self) -> None:
        self.writer.start()
        if self.indexer is not None:
            self.indexer.start()

    def close(self) -> None:
        if self.indexer is not None:
            self.indexer.stop()
        self.writer.stop()
        self.writer.engine.dispose()
        self.dispose()

    # --- online scoring ------------------------------------------------------------------

    @property
    def secrets(self) -> SecretBox:
        """What seals and opens connections' API keys (made on first use: the key file)."""
        if self._secrets is None:
            self._secrets = SecretBox(self.settings)
        return self._secrets

    @property
    def egress(self) -> EgressPolicy:
        """Where the server's model calls may go (ASSAY_EGRESS_ALLOW)."""
        if self._egress is None:
            self._egress = EgressPolicy.from_setting(self.settings.egress_allow)
        return self._egress

    # --- auth --------------------------------------------------------------------------

    def keys_exist(self) -> bool:
        now = time.monotonic()
        cached = self._key_count
        if cached is None or cached.expires < now:
            with self.read() as conn:
                count = key_store.active_count(conn)
            cached = _Cached(count, now + KEY_CACHE_SECONDS)
            self._key_count = cached
        return bool(cached.value)

    def users_exist(self) -> bool:
        cached = self._users_exist
        if cached is not None and (cached.value or cached.expires > time.monotonic()):
            return bool(cached.value)
        with self.read() as conn:
            found = user_store.users_exist(conn)
        self._users_exist = _Cached(found, time.monotonic() + NO_USERS_RECHECK_SECONDS)
        return found

    def forget_users(self) -> None:
        """Ask the store again at the next request (after this process created a user)."""
        self._users_exist = None

    def open_mode(self) -> bool:
        """Whether requests pass without a key or a sign-in: a loopback bind while no API key
        and no user exists yet; the first of either ends it, for the API and the web UI alike."""
        return self.allow_open and not self.keys_exist() and not self.users_exist()

    def find_key(self, secret: str) -> key_store.ApiKey | None:
        now = time.monotonic()
        digest = key_store.hash_key(secret)
        cached = self._keys.get(digest)
        if cached is None or cached.expires < now:
            with self.read() as conn:
                found = key_store.lookup(conn, secret)
            cached = _Cached(found, now + KEY_CACHE_SECONDS)
            with self._lock:
                if len(self._keys) > 10_000:
                    self._keys.clear()
                self._keys[digest] = cached
        result: key_store.ApiKey | None = cached.value
        return result

    # --- prices ------------------------------------------------------------------------

    def prices_for(self, project: str) -> PriceTable:
        now = time.monotonic()
        cached = self._prices.get(project)
        if cached is None or cached.expires < now:
            with self.read() as conn:
                settings = project_store.settings_of(conn, project)
            table = DEFAULT_PRICES
            overrides = (settings or {}).get("prices")
            if overrides:
                try:
                    table = DEFAULT_PRICES.with_overrides(parse_overrides(overrides))
                except ValueError:
                    table = DEFAULT_PRICES
            cached = _Cached(table, now + PRICE_CACHE_SECONDS)
            self._prices[project] = cached
        result: PriceTable = cached.value
        return result

    def forget_prices(self, project: str) -> None:
        self._prices.pop(project, None)
