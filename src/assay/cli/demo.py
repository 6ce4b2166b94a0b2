"""`assay demo`: start the server on the embedded default and fill it with realistic traces."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import replace

import typer
from rich.console import Console
from rich.markup import escape

from assay.cli.options import DbOption
from assay.settings import DEFAULT_PORT, Settings

console = Console(soft_wrap=True)  # long URLs stay on one line, copyable


def demo(
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port for the demo server."),
    db: str | None = DbOption,
    runs: int = typer.Option(60, "--runs", help="How many agent runs to send."),
    serve: bool = typer.Option(
        True, "--serve/--no-serve", help="Keep the server running afterwards (Ctrl-C stops)."
    ),
) -> None:
    """Start Assay, send agent traces through OpenTelemetry, and show where to look."""
    import uvicorn

    from assay.cli.server import open_runtime
    from assay.demo.evals import run_demo_evals
    from assay.demo.export import export_demo_dataset
    from assay.demo.online import StandInModel, set_up_online_scoring, wait_for_scores
    from assay.demo.prompts import NAME as PROMPT_NAME
    from assay.demo.prompts import create_demo_prompt
    from assay.demo.sdk_agent import send_sdk_runs
    from assay.demo.traces import PROJECT, send_demo_traces
    from assay.server.app import create_app

    settings = Settings.from_env(database_url=db, host="127.0.0.1", port=port)
    # The online judge calls a stand-in model on loopback: the egress policy allows that one
    # address (and keeps refusing the rest of loopback and the private ranges).
    stand_in = StandInModel().start()
    allowed = ",".join(x for x in (settings.egress_allow, "127.0.0.1/32") if x)
    settings = replace(settings, egress_allow=allowed, worker_poll_ms=500)
    runtime = open_runtime(settings)
    base = f"http://127.0.0.1:{port}"
    config = uvicorn.Config(
        create_app(settings, runtime=runtime), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit(f"the demo server could not start on port {port}; try --port")
        time.sleep(0.05)
    console.print(
        f"Assay is running at [bold]{base}[/] (database: "
        f"{runtime.engine.url.render_as_string(hide_password=True)})"
    )
    rule_id = set_up_online_scoring(base, PROJECT, stand_in)
    with console.status(f"sending {runs} agent runs through OpenTelemetry..."):
        sent = send_demo_traces(base, runs=runs)
        sent += send_sdk_runs(base, runs=max(1, runs // 5))
    # The evals below store their runs on this server, as `assay eval` would with ASSAY_URL.
    os.environ.update(replace(settings, url=base).environment("url"))
    with console.status("running an eval twice (baseline, then an improved agent)..."):
        baseline, improved, judge_model = run_demo_evals(base, PROJECT)
    production = create_demo_prompt(base, PROJECT)
    from assay.demo.agent import run_demo_agent

    with console.status("running the real agent with the prompt's first version..."):
        agent_run = run_demo_agent(base, PROJECT)
    from assay.demo.review import seed_review

    with console.status("two reviewers label a review queue..."):
        reviewed = seed_review(runtime, PROJECT)
    from assay.demo.automations import seed_automation

    sampled = None
    if reviewed is not None:
        with console.status("a daily automation samples traces into a review queue..."):
            sampled = seed_automation(runtime, PROJECT, reviewed.queue_id)
    import httpx

    summary = httpx.get(f"{base}/api/v1/projects").json()["items"]
    demo_project = next((p for p in summary if p["name"] == PROJECT), None)
    spans = demo_project["span_count"] if demo_project else 0
    console.print(f"sent {sent} agent runs; project [bold]{PROJECT}[/] now holds {spans} spans.\n")
    judged_by = escape(judge_model)  # it names an install extra in brackets, not markup
    console.print(f"eval [bold]support-answers[/], baseline -> improved (judge: {judged_by}):")
    for name, change in ((improved.comparison or {}).get("scores") or {}).items():
        console.print(
            f"  {name:<18} {change['baseline_mean']:.2f} -> {change['candidate_mean']:.2f}  "
            f"({change['improved']} improved, {change['regressed']} regressed)"
        )
    with console.status("waiting for the online judge's first scores..."):
        online = wait_for_scores(base, rule_id)
    console.print(
        f"\nonline scoring: rule [bold]helpfulness-sample[/] judges half of the new traces "
        f"3 s after their last span (offline stand-in model): {online['done']} scored, "
        f"{online['failed']} failed, {online['pending'] + online['running']} waiting."
    )
    p = f"{base}/p/{PROJECT}"
    console.print("\nOpen in a browser (no sign-in on this local demo):")
    console.print(f"  projects      {base}/")
    console.print(f"  traces        {p}/traces")
    console.print(f"  failed runs   {p}/traces?status=error")
    console.print(f"  text search   {p}/traces?q=damaged")
    console.print(f"  sessions      {p}/sessions")
    console.print(f"  experiments   {p}/experiments")
    console.print(
        f"  comparison    {p}/experiments/{baseline.experiment_id}/compare/{improved.experiment_id}"
    )
    console.print(f"  dataset       {p}/datasets/support-questions")
    console.print(f"  export        {p}/datasets/support-questions/export?format=openai-chat")
    if reviewed is not None:
        console.print(f"  review room   {p}/review   ({reviewed.labels} labels from two reviewers)")
        console.print(f"  review items  {p}/review/{reviewed.queue_id}   (keyboard: press ?)")
        console.print(f"  agreement     {p}/review/{reviewed.queue_id}/adjudicate")
    console.print(f"  online rule   {p}/rules/{rule_id}")
    if sampled is not None:
        console.print(
            f"  automation    {p}/automations/{sampled.automation_id}   (daily: 20 random "
            f"traces into a review queue; first run added {sampled.added} of {sampled.matched})"
        )
    console.print(f"  judges        {p}/evaluators")
    console.print(f"  dashboard     {p}/dashboard?group_by=model   (volume, errors, latency, cost)")
    console.print(f"  quality       {p}/quality   (this week against last, reviews, agreement)")
    console.print(
        f"prompt [bold]{PROMPT_NAME}[/]: two versions, production moved to v{production} "
        f"(diff: {base}/api/v1/projects/{PROJECT}/prompts/{PROMPT_NAME}/diff?from=1&to=2)"
    )
    exported = export_demo_dataset(base, PROJECT, "support-questions")
    console.print(
        f"fine-tuning export (OpenAI chat JSONL): {exported.report['exported']} examples, "
        f"{exported.report['skipped']} records skipped "
        f"{dict(exported.report['reasons']) or ''} -> {exported.path}"
    )
    output = agent_run.get("output") or {}
    console.print(
        f"agent [bold]support-bot[/] (served in-process, as `assay agent serve` does) ran with "
        f"{PROMPT_NAME} v{output.get('prompt_version')} while production is v{production}: "
        f"{p}/agents, its trace {p}/traces/{agent_run.get('trace_id')}"
        + (f" (error: {escape(str(agent_run['error']))})" if agent_run.get("error") else "")
    )
    console.print("The same data through the API:")
    console.print(f"  traces        {base}/api/v1/projects/{PROJECT}/traces?limit=5")
    console.print(f"  API schema    {base}/openapi.json")
    console.print(f"  send your own: point any OTLP/HTTP exporter at {base}/v1/traces")
    if serve:
        console.print("\nPress Ctrl-C to stop.")
        try:
            while thread.is_alive():
                thread.join(0.5)
        except KeyboardInterrupt:
            pass
    server.should_exit = True
    thread.join(15)
    stand_in.stop()
