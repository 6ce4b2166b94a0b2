"""Human review in the demo: a rubric, a queue of support answers, and labels from two
reviewers who mostly agree, so a newcomer sees progress, agreement (the ceiling a judge must
reach) and a few disagreements waiting for adjudication. Everything goes through the review
services, as the reviewer view and the API do."""

from __future__ import annotations

import random
from dataclasses import dataclass

from assay.services import review, rubrics
from assay.services.filters import parse_filters
from assay.services.principal import Principal
from assay.store.database import Database

RUBRIC = {
    "name": "answer quality",
    "kind": "categorical",
    "choices": [
        {"name": "correct", "value": 1, "description": "answers what was asked, with the policy"},
        {"name": "partly", "value": 0.5, "description": "right direction, something missing"},
        {"name": "wrong", "value": 0, "description": "wrong, or no answer at all"},
    ],
    "ordered": True,
    "rationale": "required",
    "may_correct_expected": True,
    "instructions": (
        "Read the conversation as the customer saw it.\n\n"
        "- **correct**: the answer resolves the question and cites the right policy\n"
        "- **partly**: helpful, but the customer would have to ask again\n"
        "- **wrong**: a wrong policy, a made-up fact, or an apology instead of an answer\n\n"
        "Say *why* in one sentence: the team reads your reasons when fixing the agent."
    ),
}
#: The two reviewers of the demo: a support lead and an agent.
REVIEWERS = ("maria", "tom")
ITEMS = 12


@dataclass
class DemoReview:
    queue_id: int
    items: int
    labels: int


def _verdict(output: str, question: str, rng: random.Random) -> tuple[str, str]:
    if "cannot reach" in output or not output:
        return "wrong", "The agent apologised instead of answering."
    if "Norway" in question or "address" in question:
        return "partly", "The policy is right but the actual question is not answered."
    if rng.random() < 0.15:
        return "partly", "Correct, but it should give the order's status too."
    return "correct", "Cites the right policy and answers the question."


def seed_review(db: Database, project: str, *, seed: int = 7) -> DemoReview | None:
    """The demo's review queue with labels from two reviewers; None when the project has no
    support traces yet."""
    editor = Principal.local(name="maria")
    rubric = rubrics.create_rubric(db, editor, project, RUBRIC)
    queue = review.create_queue(
        db,
        editor,
        project,
        {
            "name": "support answers",
            "rubrics": [rubric["id"]],
            "reviews_per_item": 2,
            "description": "Two people judge each answer: their agreement is the bar for an "
            "LLM judge.",
        },
    )
    queue_id = int(queue["id"])
    filters, _ = parse_filters([("name", "support-agent")])
    added = review.add_by_filter(db, editor, queue_id, filters, sample=ITEMS + 4, seed=seed)
    if not added["added"]:
        return None
    labels = 0
    for reviewer in REVIEWERS:
        who = Principal.local(name=reviewer)
        rng = random.Random(f"{seed}-{reviewer}")
        item = review.next_item(db, who, queue_id)
        done = 0
        # Four items are left for whoever opens the reviewer view next.
        while item is not None and done < ITEMS:
            content = item.get("content") or {}
            choice, why = _verdict(
                str(content.get("output") or ""), str(content.get("input") or ""), rng
            )
            if reviewer == "tom" and choice == "partly" and rng.random() < 0.5:
                choice, why = "correct", "Good enough for the customer."
            label = {"rubric_id": rubric["id"], "choice": choice, "rationale": why}
            item = review.submit_labels(db, who, queue_id, int(item["item_id"]), [label])["next"]
            labels += 1
            done += 1
        # The item leased last stays theirs for the lease's 15 minutes; with two reviews per
        # item, whoever opens the reviewer view can still take it.
    return DemoReview(queue_id=queue_id, items=added["added"], labels=labels)
