"""Human review in the demo: a rubric, a queue of support answers, and labels from two
reviewers who mostly agree, so a newcomer sees progress, agreement (the ceiling a judge must
reach) and a few disagreements waiting for adjudication. Everything goes through the review
services, as the reviewer view and the API do."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

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
QUEUE = "support answers"
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


def rubric_named(db: Database, who: Principal, project: str, raw: dict[str, Any]) -> int:
    """The id of the project's rubric named ``raw["name"]``: an earlier demo run's, or a new
    one made from ``raw``."""
    for found in rubrics.list_rubrics(db, who, project):
        if found["name"] == raw["name"]:
            return int(found["id"])
    return int(rubrics.create_rubric(db, who, project, raw)["id"])


def queue_named(db: Database, who: Principal, project: str, raw: dict[str, Any]) -> int:
    """The id of the project's review queue named ``raw["name"]``: an earlier demo run's, or
    a new one made from ``raw``."""
    for found in review.list_queues(db, who, project):
        if found["name"] == raw["name"]:
            return int(found["id"])
    return int(review.create_queue(db, who, project, raw)["id"])


def seed_review(db: Database, project: str, *, seed: int = 7) -> DemoReview:
    """The demo's review queue with labels from two reviewers (a second demo run adds new
    traces to the same queue and labels those)."""
    editor = Principal.local(name="maria")
    rubric_id = rubric_named(db, editor, project, RUBRIC)
    queue_id = queue_named(
        db,
        editor,
        project,
        {
            "name": QUEUE,
            "rubrics": [rubric_id],
            "reviews_per_item": 2,
            "description": "Two people judge each answer: their agreement is the bar for an "
            "LLM judge.",
        },
    )
    before = int(review.progress(db, editor, queue_id)["items"])
    filters, _ = parse_filters([("name", "support-agent")])
    # Another seed on a later run, so that its sample takes the traces it sent too.
    added = review.add_by_filter(
        db, editor, queue_id, filters, sample=ITEMS + 4, seed=seed + before
    )
    if not added["matched"]:
        raise RuntimeError("the project has no support-agent traces to review")
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
            label = {"rubric_id": rubric_id, "choice": choice, "rationale": why}
            item = review.submit_labels(db, who, queue_id, int(item["item_id"]), [label])["next"]
            labels += 1
            done += 1
        # The item leased last stays theirs for the lease's 15 minutes; with two reviews per
        # item, whoever opens the reviewer view can still take it.
    return DemoReview(queue_id=queue_id, items=added["added"], labels=labels)
