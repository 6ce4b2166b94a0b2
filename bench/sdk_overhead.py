"""SDK overhead: what one traced call costs the application, Assay against its peers.

    .venv/bin/python bench/sdk_overhead.py [--rounds 20] [--calls 2000] [--warmup 2000]
                                           [--only NAME,...] [--no-peers] [--profile]

The function under test takes two arguments and returns a small dict. Each contender runs in
its own process (``bench/peers_sdk/*.py``), so no SDK shares globals, threads or a collector
with another:

  baseline     the undecorated function
  otel         a hand-written OpenTelemetry span with the attributes Assay records (input and
               output JSON-encoded with ``json``), exported by the standard BatchSpanProcessor
               + OTLPSpanExporter
  otel-orjson  the same, encoded with orjson (the encoder Assay uses)
  assay        ``@assay.traced`` after ``assay.init(..., tracer_provider=TracerProvider())``
  langfuse     Langfuse's ``@observe`` (its own venv, ``bench/.venvs/langfuse``)
  braintrust   Braintrust's ``@traced`` (its own venv, ``bench/.venvs/braintrust``)

All runners start first and warm up; then the benchmark asks each in turn for one round
(``--calls`` calls, timed with the collector off, then a flush), ``--rounds`` times, rotating
the order. A change in the machine's load therefore falls on every contender alike, and the
ratio to raw OpenTelemetry is taken round by round (paired) before its median.

Every contender's exporter sends in the background to its own sink started here: a real HTTP
server on 127.0.0.1 that answers 200 to any POST (OTLP ``/v1/traces``, Langfuse's OTLP path,
Braintrust's ``/logs3``) and ``{}`` to any GET. Each runner refuses to connect to, or even look
up, anything but a loopback address, and reports any attempt. At the end each sink counts the
spans it received, so an SDK that drops spans cannot look cheap unnoticed.

Figures are printed and written to ``bench/results/sdk-<timestamp>.json``; ``--profile`` also
runs the Assay loop under cProfile into ``bench/results/sdk-profile-<timestamp>.pstats[.txt]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gzip
import json
import os
import platform
import queue
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from rich.console import Console
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RUNNERS_DIR = BENCH_DIR / "peers_sdk"
VENVS_DIR = BENCH_DIR / ".venvs"
RESULTS_DIR = BENCH_DIR / "results"
MAIN_PYTHON = REPO_DIR / ".venv" / "bin" / "python"
PREFIX = "@@sdk-bench "  # protocol lines from the runners (see peers_sdk/_harness.py)
TARGET_RATIO = 1.2
READY_TIMEOUT_S = 300
ROUND_TIMEOUT_S = 300
INSTALL_TIMEOUT_S = 900

console = Console(width=None if sys.stdout.isatty() else 160)


@dataclass(frozen=True)
class Contender:
    name: str
    label: str
    script: str
    variant: str = ""  # passed to the runner as --variant
    venv: str | None = None  # None: the project's own venv
    package: str | None = None  # what pip installs into the venv
    module: str | None = None  # what must import for the venv to count as ready


CONTENDERS = (
    Contender("baseline", "no tracing (baseline)", "baseline.py"),
    Contender("otel", "raw OpenTelemetry span (json)", "otel_raw.py"),
    Contender("otel-orjson", "raw OpenTelemetry span (orjson)", "otel_raw.py", variant="orjson"),
    Contender("assay", "Assay @assay.traced", "assay_sdk.py"),
    Contender(
        "langfuse",
        "Langfuse @observe",
        "langfuse_sdk.py",
        venv="langfuse",
        package="langfuse",
        module="langfuse",
    ),
    Contender(
        "braintrust",
        "Braintrust @traced",
        "braintrust_sdk.py",
        venv="braintrust",
        package="braintrust",
        module="braintrust",
    ),
)


# --- the sink ----------------------------------------------------------------------------------


@dataclass
class Received:
    path: str
    content_type: str
    content_encoding: str
    body: bytes


@dataclass
class Sink:
    """A loopback HTTP server that takes whatever the exporters send and answers 200."""

    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    def start(self) -> int:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the exporters' clients expect

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with sink.lock:
                    sink.received.append(
                        Received(
                            self.path,
                            self.headers.get("content-type", ""),
                            self.headers.get("content-encoding", ""),
                            body,
                        )
                    )
                if self.path.endswith("/v1/traces"):
                    # An empty ExportTraceServiceResponse: everything accepted.
                    self._answer(b"", "application/x-protobuf")
                else:
                    self._answer(b"{}", "application/json")

            def do_GET(self) -> None:
                self._answer(b"{}", "application/json")

            def _answer(self, body: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, name="sink", daemon=True).start()
        port: int = self.server.server_address[1]
        return port

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def take(self) -> list[Received]:
        with self.lock:
            taken, self.received = self.received, []
        return taken


def _decompress(item: Received) -> bytes:
    encoding = item.content_encoding.lower()
    if encoding == "gzip":
        return gzip.decompress(item.body)
    if encoding == "deflate":
        return zlib.decompress(item.body)
    return item.body


def count_delivered(items: list[Received]) -> dict[str, Any]:
    """Spans (or Braintrust rows) the sink received, by request path; decoded after the run."""
    by_path: dict[str, dict[str, int]] = {}
    for item in items:
        path = item.path.split("?")[0]
        entry = by_path.setdefault(path, {"requests": 0, "bytes": 0, "records": 0})
        entry["requests"] += 1
        entry["bytes"] += len(item.body)
        try:
            body = _decompress(item)
            if path.endswith("/v1/traces"):
                if "json" in item.content_type:
                    request = json.loads(body)
                    entry["records"] += sum(
                        len(scope.get("spans", []))
                        for resource in request.get("resourceSpans", [])
                        for scope in resource.get("scopeSpans", [])
                    )
                else:
                    message = ExportTraceServiceRequest.FromString(body)
                    entry["records"] += sum(
                        len(scope.spans)
                        for resource in message.resource_spans
                        for scope in resource.scope_spans
                    )
            elif path.endswith("/logs3"):
                rows = json.loads(body).get("rows", [])
                entry["records"] += len(rows)
        except Exception as error:  # a body we cannot read is reported, not fatal
            entry["undecodable"] = entry.get("undecodable", 0) + 1
            console.print(f"[yellow]sink: cannot decode a {path} body: {error!r}[/]")
    return {
        "records": sum(entry["records"] for entry in by_path.values()),
        "by_path": by_path,
    }


# --- peer virtual environments -----------------------------------------------------------------


def ensure_venv(contender: Contender) -> Path:
    """The venv's python, creating the venv and installing the peer SDK the first time."""
    if contender.venv is None:
        return MAIN_PYTHON
    venv = VENVS_DIR / contender.venv
    python = venv / "bin" / "python"
    probe = [str(python), "-c", f"import {contender.module}"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    console.print(f"setting up {contender.name} in {venv} (pip install {contender.package})...")
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(venv)], check=True, timeout=INSTALL_TIMEOUT_S)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*pip, str(contender.package)], capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip install {contender.package} failed: {done.stderr[-800:]}")
    subprocess.run(probe, check=True, capture_output=True)
    return python


# --- driving one runner ------------------------------------------------------------------------


def runner_env(sink_url: str) -> dict[str, str]:
    """The runners' environment: no proxies, nothing pointing at a hosted service."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy")
        and not key.startswith(("LANGFUSE_", "BRAINTRUST_", "OTEL_", "ASSAY_"))
    }
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONHASHSEED"] = "0"
    env["SDK_BENCH_SINK"] = sink_url
    return env


class RunnerError(RuntimeError):
    """A runner stopped, hung or said something unexpected."""


class Runner:
    """One contender's process: started with its own sink, then driven round by round."""

    def __init__(
        self,
        contender: Contender,
        python: Path,
        args: argparse.Namespace,
        profile: str | None = None,
    ) -> None:
        self.contender = contender
        self.sink = Sink()
        port = self.sink.start()
        command = [
            str(python),
            str(RUNNERS_DIR / contender.script),
            f"--port={port}",
            f"--calls={args.calls}",
            f"--warmup={args.warmup}",
        ]
        if contender.variant:
            command.append(f"--variant={contender.variant}")
        if profile:
            command += [f"--profile={profile}", f"--profile-calls={args.rounds * args.calls}"]
        # Lives as long as the runner; close() reads what is needed and closes it.
        self._stderr: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._stderr_text: str | None = None
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=runner_env(f"http://127.0.0.1:{port}"),
            cwd=RUNNERS_DIR,
        )
        self._messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"read-{contender.name}", daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(PREFIX):
                try:
                    self._messages.put(json.loads(line[len(PREFIX) :]))
                except json.JSONDecodeError:
                    continue
        self._messages.put(None)

    def stderr_tail(self, chars: int = 1_500) -> str:
        if self._stderr_text is None:
            self._stderr.seek(0)
            return self._stderr.read().strip()[-chars:]
        return self._stderr_text[-chars:]

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        try:
            message = self._messages.get(timeout=timeout)
        except queue.Empty:
            raise RunnerError(f"no {event!r} within {timeout:.0f} s") from None
        if message is None:
            self.process.wait(10)
            raise RunnerError(f"exited {self.process.returncode}: {self.stderr_tail()}")
        if message.get("event") != event:
            raise RunnerError(f"expected {event!r}, got {message!r}")
        return message

    def send(self, command: str) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(command + "\n")
            self.process.stdin.flush()
        except OSError as error:
            raise RunnerError(f"cannot send {command!r}: {error}") from error

    def round(self) -> dict[str, Any]:
        self.send("round")
        return self.expect("round", ROUND_TIMEOUT_S)

    def stop(self) -> dict[str, Any]:
        self.send("stop")
        done = self.expect("done", 60)
        self.close()
        return done

    def close(self) -> None:
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.sink.stop()
        if self._stderr_text is None:
            self._stderr_text = self.stderr_tail(5_000)
            self._stderr.close()


@dataclass
class Outcome:
    """What one contender produced over the whole benchmark."""

    contender: Contender
    ready: dict[str, Any] = field(default_factory=dict)
    rounds: dict[int, dict[str, Any]] = field(default_factory=dict)  # by cycle
    done: dict[str, Any] = field(default_factory=dict)
    delivered: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _finish(outcome: Outcome, runner: Runner, error: RunnerError | None = None) -> None:
    """Stop a runner (asking it politely unless it failed) and count what its sink received."""
    if error is None:
        try:
            outcome.done = runner.stop()
        except RunnerError as failure:
            error = failure
    if error is not None:
        outcome.error = str(error)
        if runner.process.poll() is None:
            runner.process.kill()
        runner.close()
    outcome.done["stderr_tail"] = runner.stderr_tail(600)
    outcome.delivered = count_delivered(runner.sink.take())


def measure(
    contenders: list[Contender], pythons: dict[str, Path], args: argparse.Namespace
) -> list[Outcome]:
    """Start every runner, then take ``rounds`` rounds from each in turn (rotating the order)."""
    outcomes = {c.name: Outcome(c) for c in contenders}
    runners: dict[str, Runner] = {}
    try:
        for contender in contenders:
            console.print(f"starting {contender.name} and warming it up...")
            runner = Runner(contender, pythons[contender.name], args)
            runners[contender.name] = runner
            try:
                outcomes[contender.name].ready = runner.expect("ready", READY_TIMEOUT_S)
            except RunnerError as error:
                _finish(outcomes[contender.name], runners.pop(contender.name), error)
        order = list(runners)
        for cycle in range(args.rounds):
            shift = cycle % len(order) if order else 0
            for name in order[shift:] + order[:shift]:
                if name not in runners:
                    continue
                try:
                    outcomes[name].rounds[cycle] = runners[name].round()
                except RunnerError as error:
                    _finish(outcomes[name], runners.pop(name), error)
            console.print(f"round {cycle + 1}/{args.rounds}")
        for name in list(runners):
            _finish(outcomes[name], runners.pop(name))
    finally:
        for name in list(runners):
            _finish(outcomes[name], runners.pop(name), RunnerError("interrupted"))
    return list(outcomes.values())


def profile_assay(args: argparse.Namespace, stats_path: Path) -> str | None:
    """The Assay loop under cProfile (a separate run): the path of the text report."""
    assay = next(c for c in CONTENDERS if c.name == "assay")
    console.print("profiling the Assay loop under cProfile...")
    runner = Runner(assay, MAIN_PYTHON, args, profile=str(stats_path))
    try:
        runner.expect("profiled", READY_TIMEOUT_S + ROUND_TIMEOUT_S)
    except RunnerError as error:
        console.print(f"[yellow]profile failed: {error}[/]")
        return None
    finally:
        runner.close()
    return f"{stats_path}.txt"


# --- report ------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = q / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "p90": percentile(values, 90)}


def _paired_ratios(
    mine: dict[int, dict[str, Any]], theirs: dict[int, dict[str, Any]], key: str
) -> list[float]:
    return [mine[c][key] / theirs[c][key] for c in sorted(mine.keys() & theirs.keys())]


def summarise(outcomes: list[Outcome], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Per contender: medians and p90s over rounds, paired ratios to raw OpenTelemetry."""
    by_name = {o.contender.name: o for o in outcomes}
    otel = by_name.get("otel")
    results: list[dict[str, Any]] = []
    for outcome in outcomes:
        rounds = [outcome.rounds[c] for c in sorted(outcome.rounds)]
        result: dict[str, Any] = {
            "name": outcome.contender.name,
            "label": outcome.contender.label,
            "sdk": outcome.ready.get("sdk"),
            "sdk_version": outcome.ready.get("sdk_version"),
            "python": outcome.ready.get("python"),
            "error": outcome.error,
            "rounds_completed": len(rounds),
            "calls_per_round": args.calls,
            "expected_records": outcome.ready.get("warmup_calls", 0) + len(rounds) * args.calls,
            "delivered": outcome.delivered,
            "all_flushed": all(r["flushed"] for r in rounds),
            "notes": outcome.done.get("notes", []),
            "blocked_connections": sorted(set(outcome.done.get("blocked_connections", []))),
            "sdk_stats": outcome.done.get("sdk_stats", {}),
            "stderr_tail": outcome.done.get("stderr_tail", ""),
            "rounds": rounds,
        }
        if rounds:
            for key in ("thread_cpu_us", "wall_us", "process_cpu_us"):
                result[key] = _spread([r[key] for r in rounds])
            if otel is not None and otel.rounds:
                for key in ("thread_cpu_us", "wall_us", "process_cpu_us"):
                    ratios = _paired_ratios(outcome.rounds, otel.rounds, key)
                    if ratios:
                        result[f"{key}_ratio_to_otel"] = _spread(ratios)
        results.append(result)
    return results


def _fmt(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _delivered(result: dict[str, Any]) -> str:
    if result["name"] == "baseline":
        return "—"
    delivered = result["delivered"].get("records", 0)
    expected = result["expected_records"]
    text = f"{delivered:,}/{expected:,}"
    return f"[yellow]{text}[/]" if delivered < expected else text


def print_table(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    table = Table(
        title=(
            f"µs per traced call: {args.rounds} rounds × {args.calls:,} calls, collector off, "
            "median (p90) over rounds; × OTel: median of per-round ratios to raw OpenTelemetry"
        ),
        title_justify="left",
    )
    for column in ("contender", "version"):
        table.add_column(column)
    for column in ("CPU", "× OTel", "wall", "× OTel ", "all threads", "× OTel  ", "delivered"):
        table.add_column(column, justify="right")
    for result in results:
        if "thread_cpu_us" not in result:
            table.add_row(result["label"], result.get("sdk_version") or "", "[red]n/a[/]")
            continue
        cells = [result["label"], result.get("sdk_version") or ""]
        for key in ("thread_cpu_us", "wall_us", "process_cpu_us"):
            spread = result[key]
            cells.append(f"{_fmt(spread['median'])} ({_fmt(spread['p90'])})")
            ratio = result.get(f"{key}_ratio_to_otel")
            cells.append(_fmt(ratio["median"]) if ratio else "—")
        cells.append(_delivered(result))
        table.add_row(*cells)
    console.print(table)
    console.print(
        "CPU: the calling thread's CPU time (thread_time_ns). wall: perf_counter_ns of the same "
        "calls. all threads: the process's CPU time (process_time_ns) for the calls plus the "
        "flush after them, i.e. with the background encoding and sending. delivered: spans "
        "(Braintrust: rows) the contender's loopback sink received, warm-up included."
    )
    for result in results:
        label = result["label"]
        if result.get("error"):
            console.print(f"[yellow]{label}: {result['error']}[/]")
        for note in result.get("notes", []):
            console.print(f"{label}: {note}")
        if result.get("blocked_connections"):
            console.print(
                f"[yellow]{label} tried to reach non-loopback hosts (refused): "
                f"{result['blocked_connections']}[/]"
            )
    assay = next((r for r in results if r["name"] == "assay"), None)
    ratio = assay.get("thread_cpu_us_ratio_to_otel") if assay else None
    if ratio:
        verdict = "[green]meets[/]" if ratio["median"] <= TARGET_RATIO else "[red]misses[/]"
        console.print(
            f"Assay / raw OpenTelemetry, calling-thread CPU: {ratio['median']:.2f} "
            f"(p90 {ratio['p90']:.2f}); {verdict} the target ≤ {TARGET_RATIO}"
        )


# --- main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=2_000, help="calls per round")
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed calls first")
    parser.add_argument("--only", help="comma-separated contenders (default: all)")
    parser.add_argument("--no-peers", action="store_true", help="skip Langfuse and Braintrust")
    parser.add_argument("--profile", action="store_true", help="also cProfile the Assay loop")
    args = parser.parse_args()
    if args.rounds < 1 or args.calls < 1 or args.warmup < 0:
        parser.error("--rounds and --calls must be >= 1, --warmup >= 0")
    return args


def selected(args: argparse.Namespace) -> list[Contender]:
    chosen = list(CONTENDERS)
    if args.only:
        names = {name.strip() for name in args.only.split(",") if name.strip()}
        unknown = names - {c.name for c in CONTENDERS}
        if unknown:
            raise SystemExit(f"unknown contenders: {sorted(unknown)}")
        chosen = [c for c in chosen if c.name in names]
    if args.no_peers:
        chosen = [c for c in chosen if c.venv is None]
    return chosen


def main() -> int:
    args = parse_args()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    contenders = selected(args)
    pythons: dict[str, Path] = {}
    unavailable: list[Outcome] = []
    for contender in contenders:
        try:
            pythons[contender.name] = ensure_venv(contender)
        except Exception as error:
            unavailable.append(Outcome(contender, error=f"could not set up: {error}"))
    runnable = [c for c in contenders if c.name in pythons]
    outcomes = {o.contender.name: o for o in [*measure(runnable, pythons, args), *unavailable]}
    results = summarise([outcomes[c.name] for c in contenders], args)
    profile_text = None
    if args.profile:
        profile_text = profile_assay(args, RESULTS_DIR / f"sdk-profile-{stamp}.pstats")
    print_table(results, args)
    if profile_text:
        console.print(f"cProfile of the Assay loop: {Path(profile_text).relative_to(REPO_DIR)}")
    report = {
        "benchmark": "sdk_overhead",
        "timestamp": stamp,
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
        },
        "parameters": {"rounds": args.rounds, "calls": args.calls, "warmup": args.warmup},
        "target_ratio_to_otel": TARGET_RATIO,
        "profile": profile_text,
        "results": results,
    }
    out = RESULTS_DIR / f"sdk-{stamp}.json"
    out.write_text(json.dumps(report, indent=2))
    console.print(f"wrote {out.relative_to(REPO_DIR)}")
    essential = [r for r in results if r["name"] in ("assay", "otel")]
    return 0 if all("thread_cpu_us" in r for r in essential) else 1


if __name__ == "__main__":
    sys.exit(main())
