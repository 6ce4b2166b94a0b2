"""The demo's eval part: a versioned dataset and two runs of an eval, the second compared
with the first."""

from __future__ import annotations

from typing import Any

import assay
from assay.client import Client

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


def _answer(question: str, *, thorough: bool) -> str:
    """The 'improved' agent knows every policy; the baseline only the first three."""
    lowered = question.lower()
    if thorough and lowered.startswith("when"):
        return "Orders ship within 2 business days."
    for word, answer in POLICY.items():
        if word in lowered and (thorough or word in BASELINE_KNOWS):
            return answer
    return "Let me check that for you."


@assay.scorer
def contains_expected(output: str, expected: str) -> bool:
    return expected.lower() in output.lower()


@assay.scorer
def concise(output: str) -> float:
    return 1.0 if len(output) <= 60 else 0.5


def run_demo_evals(base_url: str, project: str) -> tuple[Any, Any]:
    """Push the dataset, run a baseline and an improved agent; returns both results."""
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

    results = []
    for task in (baseline, improved):
        evaluation = assay.Eval(
            "support-answers",
            data=assay.dataset("support-questions", project, client=client),
            task=task,
            scores=[contains_expected, concise],
            project=project,
            experiment=f"support-answers ({task.__name__})",
            thresholds={"contains_expected": 0.5},
        )
        results.append(evaluation.run(send=True))
    return results[0], results[1]
