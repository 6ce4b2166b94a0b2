"""Automations in the demo: the AI Training Lead's cadence, "every day, 20 random traces of the
last day into the daily review queue", as one automation, run once over the last 24 hours so
a newcomer sees a run in its history (matched, added, skipped) and the queue it filled."""

from __future__ import annotations

from dataclasses import dataclass

from assay.errors import Conflict
from assay.services import automations, review
from assay.services.principal import Principal
from assay.store.database import Database
from assay.store.engine import now_ns

NAME = "daily review sample"
QUEUE = "daily review"
SAMPLE = 20


@dataclass
class DemoAutomation:
    automation_id: int
    queue_id: int
    matched: int
    added: int


def seed_automation(db: Database, project: str, rubric_queue_id: int) -> DemoAutomation | None:
    """The daily sampling automation into a new queue (with the rubric of the demo's review
    queue ``rubric_queue_id``), run once; None if it exists already (a second demo run)."""
    lead = Principal.local(name="maria")
    rubric_ids = review.get_queue(db, lead, rubric_queue_id)["rubric_ids"]
    try:
        queue = review.create_queue(
            db,
            lead,
            project,
            {
                "name": QUEUE,
                "rubrics": rubric_ids,
                "description": f"{SAMPLE} random traces of the previous day, every day",
            },
        )
        made = automations.create_automation(
            db,
            lead,
            project,
            {
                "name": NAME,
                "filter": {},
                "sample": SAMPLE,
                "schedule": "daily",
                "target": {"queue": queue["id"]},
            },
        )
    except Conflict:
        return None
    now = now_ns()
    # The scheduled runs take the previous UTC day; the demo's traces are from today, so the
    # first run looks at the last 24 hours instead.
    run = automations.run_now(db, lead, made["id"], since_ns=now - automations.DAY_NS, until_ns=now)
    return DemoAutomation(made["id"], int(queue["id"]), run["matched"], run["added"])
