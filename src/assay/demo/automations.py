"""Automations in the demo: the AI Training Lead's cadence, "every day, 20 random traces of the
last day into the daily review queue", as one automation, run once over the last 24 hours so
a newcomer sees a run in its history (matched, added, skipped) and the queue it filled."""

from __future__ import annotations

from dataclasses import dataclass

from assay.demo.review import queue_named
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
    #: Whether an earlier demo run made it (this run only ran it again).
    reused: bool


def seed_automation(db: Database, project: str, rubric_queue_id: int) -> DemoAutomation:
    """The daily sampling automation into its queue (with the rubric of the demo's review
    queue ``rubric_queue_id``), run once now; an earlier demo run's is run again."""
    lead = Principal.local(name="maria")
    rubric_ids = review.get_queue(db, lead, rubric_queue_id)["rubric_ids"]
    queue_id = queue_named(
        db,
        lead,
        project,
        {
            "name": QUEUE,
            "rubrics": rubric_ids,
            "description": f"{SAMPLE} random traces of the previous day, every day",
        },
    )
    existing = [a for a in automations.list_automations(db, lead, project) if a["name"] == NAME]
    if existing:
        automation_id = int(existing[0]["id"])
    else:
        automation_id = int(
            automations.create_automation(
                db,
                lead,
                project,
                {
                    "name": NAME,
                    "filter": {},
                    "sample": SAMPLE,
                    "schedule": "daily",
                    "target": {"queue": queue_id},
                },
            )["id"]
        )
    now = now_ns()
    # The scheduled runs take the previous UTC day; the demo's traces are from today, so this
    # run looks at the last 24 hours instead.
    run = automations.run_now(
        db, lead, automation_id, since_ns=now - automations.DAY_NS, until_ns=now
    )
    return DemoAutomation(automation_id, queue_id, run["matched"], run["added"], bool(existing))
