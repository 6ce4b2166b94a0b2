"""Start, probe and stop the servers under test: Assay and Arize Phoenix.

Each server runs as a subprocess on a free loopback port with a throw-away store, logs to a
file next to that store, and is measured as a process tree (a server may fork workers).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg import sql

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
# ASSAY_BENCH_BIN runs another installation (a worktree's sources with a shared venv, say).
ASSAY_BIN = Path(os.environ.get("ASSAY_BENCH_BIN") or REPO_DIR / ".venv" / "bin" / "assay")
PHOENIX_VENV = BENCH_DIR / ".venvs" / "phoenix"
POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"
# One database per benchmark process, so two benchmarks on one machine never drop each other's.
POSTGRES_BENCH_DB = f"assay_bench_{os.getpid()}"


class ServerError(RuntimeError):
    """A server did not start or stopped answering."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- memory of a process tree ------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
    return kids


def _process_tree(pid: int) -> list[int]:
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending += _children(current)
    return tree


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Memory:
    rss_mib: float  # resident now, summed over the process tree
    peak_mib: float  # high-water mark (VmHWM), summed over the process tree


def tree_memory(pid: int) -> Memory:
    pids = _process_tree(pid)
    rss = sum(_status_kib(p, "VmRSS") for p in pids)
    peak = sum(_status_kib(p, "VmHWM") for p in pids)
    return Memory(rss_mib=rss / 1024, peak_mib=peak / 1024)


# --- a server subprocess -----------------------------------------------------------------------


@dataclass
class Server:
    """A running server: where to send spans and how to count what it stored."""

    system: str  # "assay" | "phoenix"
    engine: str  # "sqlite" | "postgres"
    base_url: str
    project: str
    process: subprocess.Popen[bytes]
    log_path: Path
    count_spans: Callable[[httpx.Client], int]
    cleanup: Callable[[], None]
    search_backlog: Callable[[], int | None] = lambda: None  # spans not yet in the text index

    @property
    def ingest_url(self) -> str:
        return f"{self.base_url}/v1/traces"

    def memory(self) -> Memory:
        return tree_memory(self.process.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server and any worker processes it forked (its own process group)."""
        if self.process.poll() is None:
            _signal_group(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _signal_group(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self.cleanup()


def _signal_group(leader: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(leader, signum)


_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the benchmark dies, so no server outlives it."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _launch(command: list[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    try:
        return subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a process group of its own, stopped as a whole
            preexec_fn=_die_with_parent,
        )
    finally:
        log.close()  # the child holds its own descriptor


def wait_until_healthy(server: Server, path: str, timeout_s: float) -> float:
    """Seconds until ``GET path`` answered 200; raises if the process dies or time runs out."""
    started = time.monotonic()
    with httpx.Client(timeout=5) as client:
        while time.monotonic() - started < timeout_s:
            if server.process.poll() is not None:
                raise ServerError(f"{server.system} exited early:\n{server.log_tail()}")
            try:
                if client.get(server.base_url + path).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    server.stop()
    raise ServerError(f"{server.system} not healthy after {timeout_s:.0f}s:\n{server.log_tail()}")


# --- Assay -------------------------------------------------------------------------------------


def assay_available() -> bool:
    if not ASSAY_BIN.exists():
        return False
    probe = subprocess.run(
        [str(ASSAY_BIN), "server", "--help"], capture_output=True, timeout=60, check=False
    )
    return probe.returncode == 0


def _reset_postgres_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def _drop_postgres_database(name: str) -> None:
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _assay_span_count(base_url: str, project: str) -> Callable[[httpx.Client], int]:
    def count(client: httpx.Client) -> int:
        response = client.get(f"{base_url}/api/v1/projects", params={"limit": 1000})
        response.raise_for_status()
        for item in response.json()["items"]:
            if item["name"] == project:
                return int(item["span_count"])
        return 0

    return count


# The API does not say how far the background text indexer has got, so the benchmark reads the
# indexer's watermark (the last indexed span row id) from the store itself. Internal to Assay's
# schema; if it changes, the backlog reads as unknown (None) and the report shows "-".
_BACKLOG_SQL = (
    "SELECT (SELECT coalesce(max(id), 0) FROM spans) - coalesce("
    "(SELECT CAST(value AS BIGINT) FROM store_state WHERE key = 'search_indexed_span_id'), 0)"
)


def _sqlite_backlog(path: Path) -> Callable[[], int | None]:
    def backlog() -> int | None:
        try:
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
                return int(conn.execute(_BACKLOG_SQL).fetchone()[0])
        except sqlite3.Error:
            return None

    return backlog


def _postgres_backlog(url: str) -> Callable[[], int | None]:
    def backlog() -> int | None:
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                row = conn.execute(_BACKLOG_SQL).fetchone()
                return int(row[0]) if row else None
        except psycopg.Error:
            return None

    return backlog


def start_assay(engine: str, workdir: Path, project: str, workers: int | None = None) -> Server:
    """Assay on a fresh store: a SQLite file under ``workdir`` or a new ``assay_bench_<pid>``
    database; ``workers`` server processes if given, else the server's default."""
    port = free_port()
    if engine == "sqlite":
        db_url = f"sqlite:///{workdir / 'assay.db'}"
        backlog = _sqlite_backlog(workdir / "assay.db")

        def cleanup() -> None:
            return None

    else:
        _reset_postgres_database(POSTGRES_BENCH_DB)
        db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{POSTGRES_BENCH_DB}"
        backlog = _postgres_backlog(f"postgresql://postgres@127.0.0.1:5432/{POSTGRES_BENCH_DB}")

        def cleanup() -> None:
            _drop_postgres_database(POSTGRES_BENCH_DB)

    command = [str(ASSAY_BIN), "server", "--host", "127.0.0.1", "--port", str(port)]
    if workers is not None:
        command += ["--workers", str(workers)]
    env = {**os.environ, "ASSAY_HOME": str(workdir / "home")}
    log_path = workdir / "assay.log"
    base_url = f"http://127.0.0.1:{port}"
    server = Server(
        system="assay",
        engine=engine,
        base_url=base_url,
        project=project,
        process=_launch([*command, "--db", db_url], env, log_path),
        log_path=log_path,
        count_spans=_assay_span_count(base_url, project),
        cleanup=cleanup,
        search_backlog=backlog,
    )
    wait_until_healthy(server, "/healthz", timeout_s=120)
    return server


# --- Phoenix -----------------------------------------------------------------------------------


def _phoenix_executable(venv: Path) -> Path:
    return venv / "bin" / "phoenix"


def ensure_phoenix(venv: Path = PHOENIX_VENV) -> Path:
    """Create the Phoenix virtualenv once; later calls only check the marker file."""
    marker = venv / ".bench-installed"
    if marker.exists() and _phoenix_executable(venv).exists():
        return _phoenix_executable(venv)
    python = shutil.which("python3") or sys.executable
    print(f"setting up Phoenix in {venv} (pip install arize-phoenix, a few minutes)...")
    subprocess.run([python, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "arize-phoenix"], check=True)
    marker.write_text("arize-phoenix\n")
    return _phoenix_executable(venv)


def phoenix_version(venv: Path = PHOENIX_VENV) -> str:
    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import phoenix; print(phoenix.__version__)"],
        capture_output=True,
        text=True,
        check=False,
    )
    return probe.stdout.strip() or "unknown"


_PHOENIX_COUNT_QUERY = "{ projects { edges { node { name recordCount } } } }"


def _phoenix_span_count(base_url: str, project: str) -> Callable[[httpx.Client], int]:
    def count(client: httpx.Client) -> int:
        response = client.post(f"{base_url}/graphql", json={"query": _PHOENIX_COUNT_QUERY})
        response.raise_for_status()
        for edge in response.json()["data"]["projects"]["edges"]:
            if edge["node"]["name"] == project:
                return int(edge["node"]["recordCount"])
        return 0

    return count


def start_phoenix(workdir: Path, project: str, venv: Path = PHOENIX_VENV) -> Server:
    """``phoenix serve`` on SQLite in ``workdir``, loopback only, no telemetry."""
    executable = ensure_phoenix(venv)
    port = free_port()
    env = {
        **os.environ,
        "PHOENIX_WORKING_DIR": str(workdir / "phoenix"),
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_TELEMETRY_ENABLED": "false",
        "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
    }
    log_path = workdir / "phoenix.log"
    base_url = f"http://127.0.0.1:{port}"
    server = Server(
        system="phoenix",
        engine="sqlite",
        base_url=base_url,
        project=project,
        process=_launch([str(executable), "serve"], env, log_path),
        log_path=log_path,
        count_spans=_phoenix_span_count(base_url, project),
        cleanup=lambda: None,
    )
    wait_until_healthy(server, "/healthz", timeout_s=300)
    return server
