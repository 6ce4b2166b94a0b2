"""The demo's tour of Assay, room by room (traces, evals, prompts and agents, review, online
scoring, export), then the links to open.

Each step runs on its own: a step that fails prints why, the steps that need it say they are
skipped, the others go on, and `assay demo` exits with 1 (:attr:`Tour.failed`). A second run on
the same database works too: the steps reuse what the first made, or number what must be new.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.markup import escape

from assay.demo.agent import DemoAgent, run_demo_agent
from assay.demo.automations import seed_automation
from assay.demo.calibration import seed_calibration
from assay.demo.evals import run_demo_evals
from assay.demo.export import export_demo_dataset
from assay.demo.monitors import THRESHOLD, DemoChannel, set_up_monitor
from assay.demo.online import (
    RULE_NAME,
    OnlineRule,
    StandInModel,
    set_up_online_scoring,
    wait_for_scores,
)
from assay.demo.prompts import DATASET as PROMPT_DATASET
from assay.demo.prompts import NAME as PROMPT_NAME
from assay.demo.prompts import create_demo_prompt, run_playground_comparison
from assay.demo.review import QUEUE as REVIEW_QUEUE
from assay.demo.review import seed_review
from assay.demo.sdk_agent import send_sdk_runs
from assay.demo.traces import PROJECT, send_demo_traces, support_runs
from assay.services.runtime import Runtime
from assay.settings import Settings

T = TypeVar("T")


def reason(error: BaseException) -> str:
    """What went wrong, in one line: the server's own message for a refused request."""
    if isinstance(error, httpx.HTTPStatusError):
        try:
            message = str(error.response.json()["error"]["message"])
        except Exception:
            message = error.response.text[:300]
        request = error.request
        return (
            f"{request.method} {request.url.path} answered {error.response.status_code}: {message}"
        )
    text = str(error).strip() or "(no message)"
    return f"{type(error).__name__}: {text}"


def _kappa(value: float | None) -> str:
    return "none" if value is None else f"{value:.2f}"


@dataclass
class Tour:
    console: Console
    runtime: Runtime
    settings: Settings
    base: str
    stand_in: StandInModel
    channel: DemoChannel
    #: (step, why it failed), in order.
    failed: list[tuple[str, str]] = field(default_factory=list)
    #: (name, URL and a note), printed last.
    links: list[tuple[str, str]] = field(default_factory=list)
    agent: DemoAgent | None = None

    @property
    def page(self) -> str:
        return f"{self.base}/p/{PROJECT}"

    def step(self, what: str, run: Callable[[], T]) -> T | None:
        """Run one step under a spinner: its result, or None once its failure is printed."""
        with self.console.status(f"{what}..."):
            try:
                return run()
            except Exception as error:
                why = reason(error)
                self.failed.append((what, why))
                self.console.print(f"[red]failed[/]: {escape(what)}: {escape(why)}")
                return None

    def skip(self, what: str, because: str) -> None:
        self.console.print(f"[yellow]skipped[/]: {escape(what)} ({escape(because)})")

    def room(self, title: str) -> None:
        self.console.print(f"\n[bold underline]{title}[/]")

    def say(self, text: str) -> None:
        self.console.print(text)

    # --- the tour ---------------------------------------------------------------------------

    def run(self, runs: int) -> None:
        """Every room in turn, then the links."""
        self.links.append(("projects", f"{self.base}/"))
        # The rule must exist before the traces arrive: it judges what is stored after it.
        rule = self.step(
            "setting up online scoring",
            lambda: set_up_online_scoring(self.base, PROJECT, self.stand_in),
        )
        sent = self.traces(runs)
        self.evals()
        self.prompts_and_agents()
        self.review()
        self.room("Online scoring, calibration and monitors")
        if rule is not None and sent:
            self.online(rule, support_runs(runs))
        else:
            self.skip("the online judge's scores", "the rule or the traces are missing")
        self.calibration()
        self.monitor()
        self.export()
        self.dashboards()
        self.print_links()

    def traces(self, runs: int) -> bool:
        self.room("Traces")

        def send() -> int:
            sent = send_demo_traces(self.base, runs=runs)
            return sent + send_sdk_runs(self.base, runs=max(1, runs // 5))

        sent = self.step(f"sending {runs} agent runs through OpenTelemetry", send)
        if sent is None:
            return False
        projects = httpx.get(f"{self.base}/api/v1/projects", timeout=30).raise_for_status()
        found = next((x for x in projects.json()["items"] if x["name"] == PROJECT), None)
        spans = found["span_count"] if found else 0
        self.say(f"sent {sent} agent runs; project [bold]{PROJECT}[/] now holds {spans} spans.")
        p = self.page
        self.links += [
            ("traces", f"{p}/traces"),
            ("failed runs", f"{p}/traces?status=error"),
            ("text search", f"{p}/traces?q=damaged"),
            ("sessions", f"{p}/sessions"),
        ]
        return True

    def evals(self) -> None:
        self.room("Evals")
        # The evals store their runs on this server, as `assay eval` would with ASSAY_URL.
        os.environ.update(replace(self.settings, url=self.base).environment("url"))
        ran = self.step(
            "running an eval twice (baseline, then an improved agent)",
            lambda: run_demo_evals(self.base, PROJECT),
        )
        if ran is None:
            return
        baseline, improved, judge_model = ran
        judged_by = escape(judge_model)  # it names an install extra in brackets, not markup
        self.say(f"eval [bold]support-answers[/], baseline -> improved (judge: {judged_by}):")
        for name, change in ((improved.comparison or {}).get("scores") or {}).items():
            self.say(
                f"  {name:<18} {change['baseline_mean']:.2f} -> {change['candidate_mean']:.2f}  "
                f"({change['improved']} improved, {change['regressed']} regressed)"
            )
        p = self.page
        self.links += [
            ("experiments", f"{p}/experiments"),
            (
                "comparison",
                f"{p}/experiments/{baseline.experiment_id}/compare/{improved.experiment_id}",
            ),
            ("dataset", f"{p}/datasets/support-questions"),
        ]

    def prompts_and_agents(self) -> None:
        self.room("Prompts, playground and agents")
        p = self.page
        prompt = self.step(
            f"saving the prompt {PROMPT_NAME}", lambda: create_demo_prompt(self.base, PROJECT)
        )
        production = prompt[0] if prompt else "?"
        if prompt is not None:
            self.say(
                f"prompt [bold]{PROMPT_NAME}[/]: two versions, production moved to v{production}"
                if prompt[1]
                else f"prompt [bold]{PROMPT_NAME}[/] (made by an earlier demo run): production "
                f"is on v{production}"
            )
            self.links.append(("prompt diff", f"{p}/prompts/{PROMPT_NAME}?from=1&to=2"))
        compared = self.step(
            "running both prompt versions over a dataset from the playground",
            lambda: run_playground_comparison(self.runtime, self.base, PROJECT),
        )
        if compared is not None:
            means = " -> ".join(
                f"{m:.2f}" if m is not None else "?"
                for m in (compared.first_mean, compared.second_mean)
            )
            self.say(f"playground: v1 -> v2 over the dataset {PROMPT_DATASET}: contains {means}")
            self.links += [
                ("playground", f"{p}/playground?prompt={PROMPT_NAME}&version=2"),
                (
                    "v1 vs v2",
                    f"{p}/experiments/{compared.first}/compare/{compared.second}   "
                    "(both versions run over the same dataset from the playground)",
                ),
            ]
        self.agent = self.step(
            "running the real agent with the prompt's first version",
            lambda: run_demo_agent(self.base, PROJECT),
        )
        if self.agent is not None:
            trace_id = self.agent.run.get("trace_id")
            version = (self.agent.run.get("output") or {}).get("prompt_version")
            self.say(
                f"agent [bold]support-bot[/] (served in-process, as `assay agent serve` does) "
                f"ran with {PROMPT_NAME} v{version} while production is v{production}: its run "
                f"is trace {trace_id}"
            )
            self.links += [("agents", f"{p}/agents"), ("agent's run", f"{p}/traces/{trace_id}")]

    def review(self) -> None:
        self.room("Review and automations")
        p = self.page
        reviewed = self.step(
            "two reviewers label a review queue", lambda: seed_review(self.runtime, PROJECT)
        )
        if reviewed is None:
            self.skip("the daily automation", "it takes the review queue's rubric")
            return
        self.say(
            f"queue [bold]{REVIEW_QUEUE}[/]: {reviewed.items} traces added, {reviewed.labels} "
            "labels from two reviewers (maria and tom)"
        )
        self.links += [
            ("review room", f"{p}/review   ({reviewed.labels} labels from two reviewers)"),
            ("review items", f"{p}/review/{reviewed.queue_id}   (keyboard: press ?)"),
            ("agreement", f"{p}/review/{reviewed.queue_id}/adjudicate"),
        ]
        sampled = self.step(
            "a daily automation samples traces into a review queue",
            lambda: seed_automation(self.runtime, PROJECT, reviewed.queue_id),
        )
        if sampled is None:
            return
        ran = "ran again" if sampled.reused else "first run"
        self.say(
            f"automation [bold]daily review sample[/] ({ran}): added {sampled.added} of the "
            f"{sampled.matched} traces of the last 24 hours to a review queue"
        )
        self.links.append(
            (
                "automation",
                f"{p}/automations/{sampled.automation_id}   (daily: 20 random traces into a "
                f"review queue; {ran} added {sampled.added} of {sampled.matched})",
            )
        )

    def online(self, rule: OnlineRule, support: int) -> None:
        scored = self.step(
            "waiting for the online judge's scores",
            lambda: wait_for_scores(self.base, rule, support),
        )
        if scored is not None:
            self.say(
                f"online scoring: rule [bold]{RULE_NAME}[/] judges half of the support agent's "
                f"new traces 3 s after their last span (offline stand-in model): "
                f"{scored['done']} scored, {scored['failed']} failed, "
                f"{scored['pending'] + scored['running']} waiting."
            )
        self.links += [
            ("online rule", f"{self.page}/rules/{rule.id}"),
            ("judges", f"{self.page}/evaluators"),
        ]

    def calibration(self) -> None:
        judged = self.step(
            "a judge is checked against people over four weeks",
            lambda: seed_calibration(self.runtime, self.base, PROJECT),
        )
        if judged is None:
            return
        self.say(
            f"judge [bold]{judged.names.judge}[/] calibrated against people: kappa "
            f"{_kappa(judged.kappa.get('value'))} on three weeks of labels, "
            f"{judged.disagreements} disagreements; by week: "
            + ", ".join(
                f"{w['start'][:10]} kappa {_kappa(w['kappa']['value'])}"
                f"{' DRIFT' if w['drift'] else ''}"
                for w in judged.series
            )
        )
        if judged.paused:
            self.say(f"rule [bold]{judged.names.rule}[/] {escape(judged.paused)}")
        judge_page = f"{self.page}/evaluators/{judged.evaluator_id}"
        calibration_page = f"{judge_page}/calibrations/{judged.calibration_id}"
        self.links += [
            ("calibration", calibration_page),
            ("disagreements", f"{calibration_page}/disagreements"),
            ("over time", f"{judge_page}#agreement   (the last week drifted)"),
            ("routing", f"{self.page}/rules/{judged.rule_id}#routing"),
        ]

    def monitor(self) -> None:
        monitor = self.step(
            "a monitor watches the judge's scores",
            lambda: set_up_monitor(self.base, PROJECT, self.channel.url),
        )
        if monitor is None:
            return
        value = (monitor.get("history") or [{}])[0].get("value")
        told = ""
        if self.channel.received:
            told = f"; the demo channel received: {escape(self.channel.received[-1]['text'])}"
        elif monitor["state"] == "alerting":
            told = (
                "; it was alerting already (an earlier demo run), so the channel is told again "
                f"only {monitor.get('renotify_minutes')} min after the last alert"
            )
        self.say(
            f"monitor [bold]{monitor['name']}[/]: mean 'helpful' score over the last day "
            f"{'(no data)' if value is None else f'{value:.2f}'} against {THRESHOLD:g} -> "
            f"[bold]{monitor['state']}[/]{told}"
        )
        self.links.append(("monitor", f"{self.page}/monitors/{monitor['id']}"))

    def export(self) -> None:
        self.room("Export")
        exported = self.step(
            "exporting the dataset for fine-tuning",
            lambda: export_demo_dataset(self.base, PROJECT, "support-questions"),
        )
        if exported is None:
            return
        report: dict[str, Any] = exported.report
        self.say(
            f"fine-tuning export (OpenAI chat JSONL): {report['exported']} examples, "
            f"{report['skipped']} records skipped {dict(report['reasons']) or ''} -> "
            f"{exported.path}"
        )
        self.links.append(
            ("export", f"{self.page}/datasets/support-questions/export?format=openai-chat")
        )

    def dashboards(self) -> None:
        # Nothing to seed: they chart the traces, scores and reviews the rooms above stored.
        self.links += [
            ("dashboard", f"{self.page}/dashboard?group_by=model   (latency, errors, cost)"),
            ("quality", f"{self.page}/quality   (this week against last, reviews, agreement)"),
        ]

    def print_links(self) -> None:
        self.room("Open in a browser (no sign-in on this local demo)")
        for name, url in self.links:
            self.say(f"  {name:<13} {url}")
        self.say("The same data through the API:")
        self.say(f"  traces        {self.base}/api/v1/projects/{PROJECT}/traces?limit=5")
        self.say(f"  API schema    {self.base}/openapi.json")
        self.say(f"  send your own: point any OTLP/HTTP exporter at {self.base}/v1/traces")
        if self.failed:
            self.say(
                f"\n[red]{len(self.failed)} demo step(s) failed[/]: "
                + "; ".join(escape(f"{what}: {why}") for what, why in self.failed)
            )
