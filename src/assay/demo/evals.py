"""The demo's eval part: a versioned dataset and two runs of an eval, the second compared
with the first. The agents are traced, so trajectory scorers read what they did; an LLM judge
grades the answers (a real model when a key is set, else an offline stand-in that says so)."""

from __future__ import annotations

import importlib.util
import os
import re
from typing import Any

import assay
from assay import scorers
from assay.client import Client
from assay.models import Model, Request, get_model
from assay.settings import from_environment

QUESTIONS = [
    ("How long do returns take?", "30 days"),
    ("Do you ship to Norway?", "Norway"),
    ("What if my item arrives damaged?", "replaced"),
    ("I was charged twice", "refunded"),
    ("When will my order ship?", "2 business days"),
    ("Can I return opened headphones?", "30 days"),
    ("How long does delivery to the EU take?", "3-7 business days"),
    ("The blender is cracked", "replaced"),
]
POLICY = {
    "return": "Items can be returned within 30 days of delivery.",
    "ship": "We ship to the EU and Norway; delivery takes 3-7 business days.",
    "damaged": "Damaged items are replaced free of charge.",
    "charged": "Duplicate charges are refunded automatically.",
    "cracked": "Damaged items are replaced free of charge.",
}
BASELINE_KNOWS = ("return", "ship", "damaged")
FALLBACK = "Let me check that for you."

JUDGE_PROMPT = """You grade a customer-support answer.
Question: {{input}}
The answer must convey: {{expected}}
Answer: {{output}}
Does the answer give the customer what they need?"""
JUDGE_CHOICES = {"resolves": 1.0, "partly": 0.5, "does not resolve": 0.0}


def _lookup_policy(question: str, *, thorough: bool) -> str | None:
    """The 'improved' agent knows every policy; the baseline only the first three."""
    with assay.span("lookup_policy", type="tool") as span:
        lowered = question.lower()
        found = None
        if thorough and lowered.startswith("when"):
            found = "Orders ship within 2 business days."
        for word, answer in POLICY.items():
            if found is None and word in lowered and (thorough or word in BASELINE_KNOWS):
                found = answer
        span.log(input={"question": question}, output=found)
        return found


def _answer(question: str, *, thorough: bool) -> str:
    # The baseline looks the policy up twice (a habit the trajectory scorers catch).
    lookups = 1 if thorough else 2
    found = None
    for _ in range(lookups):
        found = _lookup_policy(question, thorough=thorough)
    return found or FALLBACK


@assay.scorer
def concise(output: str) -> float:
    """A scorer of your own: any function returning a number, a bool or a Score."""
    return 1.0 if len(output) <= 60 else 0.5


def _offline_verdict(request: Request) -> dict[str, str]:
    """Stands in for a judge model without a key: reads the rendered prompt and checks the
    answer for the expected words. A real model reasons about meaning instead."""
    prompt = request.messages[-1].content
    expected = re.search(r"must convey: (.*)", prompt)
    answer = re.search(r"Answer: (.*)", prompt)
    wanted = expected.group(1).strip().lower() if expected else ""
    given = answer.group(1).strip().lower() if answer else ""
    if wanted and wanted in given:
        return {"reasoning": "(offline demo judge) The answer states it.", "choice": "resolves"}
    if given == FALLBACK.lower():
        return {
            "reasoning": "(offline demo judge) The answer defers without helping.",
            "choice": "does not resolve",
        }
    return {"reasoning": "(offline demo judge) Related, not what was asked.", "choice": "partly"}


def judge_model() -> tuple[str | Model, str]:
    """A real judge model when the user has configured one; else the offline stand-in."""
    configured = from_environment("judge_model")
    if configured:
        return configured, configured
    for key, sdk, model in (
        ("OPENAI_API_KEY", "openai", "openai/gpt-4.1-mini"),
        ("ANTHROPIC_API_KEY", "anthropic", "anthropic/claude-haiku-4-5"),
    ):
        if os.environ.get(key) and importlib.util.find_spec(sdk) is not None:
            return model, model
    offline = (
        "mock/demo-judge, offline; with OPENAI_API_KEY set and `pip install 'assay[openai]'`, "
        "or ASSAY_JUDGE_MODEL, a real model judges"
    )
    return get_model("mock/demo-judge", respond=_offline_verdict), offline


def run_demo_evals(base_url: str, project: str) -> tuple[Any, Any, str]:
    """Push the dataset, run a baseline and an improved agent; returns both results and the
    judge model used."""
    client = Client(base_url)
    dataset = assay.dataset("support-questions", project, client=client)
    if dataset.version == 0:
        dataset.insert_many(
            [
                {"record_id": f"q{i}", "input": q, "expected": e}
                for i, (q, e) in enumerate(QUESTIONS)
            ],
            message="first questions",
        )

    def baseline(question: str) -> str:
        return _answer(question, thorough=False)

    def improved(question: str) -> str:
        return _answer(question, thorough=True)

    model, model_name = judge_model()
    resolves = assay.judge("resolves", prompt=JUDGE_PROMPT, choices=JUDGE_CHOICES, model=model)
    results = []
    for task in (baseline, improved):
        evaluation = assay.Eval(
            "support-answers",
            data=assay.dataset("support-questions", project, client=client),
            task=task,
            scores=[
                scorers.contains(name="contains_expected", normalize="case"),
                scorers.tool_called("lookup_policy", times=1, name="one_lookup"),
                scorers.no_errors(),
                concise,
                resolves,
            ],
            project=project,
            experiment=f"support-answers ({task.__name__})",
            thresholds={"contains_expected": 0.5},
        )
        results.append(evaluation.run(send=True))
    return results[0], results[1], model_name
