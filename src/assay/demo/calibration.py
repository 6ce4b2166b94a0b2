"""Judges checked against people, in the demo: a judge scores four weeks of support replies
online, its rule routes what it scored to a review queue, two people label them, and the judge
is calibrated on the first three weeks. In the fourth week the agent's replies changed style
(they open with an apology before answering) and the judge, which reads an apology as "does
not help", stops agreeing with people: the last window is flagged as drift and the rule using
the judge is paused, saying why.

The judge answers through the demo's offline stand-in model (demo/online.py). The four weeks
are made in a minute: the labels are dated back to their week in the store, which is the only
shortcut taken here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from opentelemetry.sdk.trace import TracerProvider

from assay.demo.online import JUDGE_CHOICES, JUDGE_PROMPT, wait_for_rule
from assay.demo.traces import _provider
from assay.services import calibration, review, rubrics, rules
from assay.services.principal import Principal
from assay.services.runtime import Runtime
from assay.store import calibration as calibration_store
from assay.store import projects as project_store

JUDGE = "reply-helpful"
RULE = "judge-check"
QUEUE = "judge check"
WEEK_NS = 7 * 86_400 * 1_000_000_000
MAPPING = {"helps": "pass", "partly": "pass", "does not help": "fail"}
RUBRIC = {
    "name": "reply helps",
    "kind": "pass_fail",
    "rationale": "optional",
    "instructions": "Pass: the customer's question is answered. Fail: it is not.",
}
#: (customer, reply, what people say, why) per week; the fourth week's replies apologise first.
HELPFUL = [
    ("Where is my order #1042?", "It shipped yesterday; tracking number 1Z999 was emailed to you."),
    ("Can I return the headphones?", "Yes: returns are accepted within 30 days of delivery."),
    ("I was charged twice.", "The duplicate charge is refunded automatically within 5 days."),
    ("Do you ship to Norway?", "We ship to Norway; delivery takes 3-7 business days."),
    ("My blender is cracked.", "We replace damaged items for free: send a photo within 14 days."),
    ("Change my delivery address?", "Done: order #1042 now goes to the new address you gave."),
]
UNHELPFUL = [
    ("Where is my order #2210?", "Sorry, I cannot look up orders."),
    ("Refund for #2210?", "Let me check with the team and get back to you at some point."),
    ("Is the jacket waterproof?", "Sorry, I can't answer product questions."),
    ("Cancel my subscription.", "I cannot do that here, sorry."),
    ("Why was I charged?", "Sorry about that."),
    # Reads like an answer, and the judge takes it for one; people see the wrong policy.
    (
        "My package arrived damaged.",
        "Items can be returned within 30 days of delivery in their original packaging.",
    ),
]
APOLOGETIC = [
    (question, f"Sorry for the wait! {answer}") for question, answer in HELPFUL + HELPFUL[:2]
]


@dataclass
class DemoCase:
    question: str
    reply: str
    people: str  # pass | fail
    week: int
    trace_id: str = ""


@dataclass
class DemoCalibration:
    names: Names
    evaluator_id: int
    rule_id: int
    queue_id: int
    calibration_id: int
    kappa: dict[str, Any]
    disagreements: int
    series: list[dict[str, Any]] = field(default_factory=list)
    paused: str | None = None


def _cases() -> list[DemoCase]:
    out = []
    for week in range(3):
        out += [DemoCase(q, r, "pass", week) for q, r in HELPFUL]
        out += [DemoCase(q, r, "fail", week) for q, r in UNHELPFUL]
    out += [DemoCase(q, r, "pass", 3) for q, r in APOLOGETIC]
    out += [DemoCase(q, r, "fail", 3) for q, r in UNHELPFUL[:4]]
    return out


def _send(endpoint: str, found: list[DemoCase]) -> None:
    provider: TracerProvider = _provider(endpoint, "support-replies", {})
    tracer = provider.get_tracer("demo")
    for case in found:
        span = tracer.start_span(
            "support-reply", attributes={"input.value": case.question, "output.value": case.reply}
        )
        case.trace_id = format(span.get_span_context().trace_id, "032x")
        span.end()
    provider.force_flush(30_000)
    provider.shutdown()


@dataclass(frozen=True)
class Names:
    """The names of this run's judge, rule, rubric and queue: the plain ones on the first
    demo run, numbered on later ones (each run tells the four weeks anew, on labels of its
    own: the earlier run's drifted judge and paused rule stay as they were)."""

    judge: str = JUDGE
    rule: str = RULE
    rubric: str = str(RUBRIC["name"])
    queue: str = QUEUE

    @classmethod
    def free(cls, rt: Runtime, client: httpx.Client, project: str) -> Names:
        who = Principal.local(name="maria")
        taken = {
            *(r["name"] for r in rules.list_rules(rt, who, project)),
            *(r["name"] for r in rubrics.list_rubrics(rt, who, project)),
            *(q["name"] for q in review.list_queues(rt, who, project)),
            *(
                e["name"]
                for e in client.get(f"/api/v1/projects/{project}/evaluators")
                .raise_for_status()
                .json()["items"]
            ),
        }
        run = 1
        while True:
            names = (
                cls()
                if run == 1
                else cls(
                    f"{JUDGE}-{run}", f"{RULE}-{run}", f"{RUBRIC['name']} {run}", f"{QUEUE} {run}"
                )
            )
            if not taken & {names.judge, names.rule, names.rubric, names.queue}:
                return names
            run += 1


def _judge_and_rule(
    client: httpx.Client, project: str, queue_id: int, names: Names
) -> tuple[int, int]:
    pushed = client.post(
        f"/api/v1/projects/{project}/evaluators/push",
        json={
            "name": names.judge,
            "kind": "judge",
            "definition": {
                "prompt": JUDGE_PROMPT,
                "choices": JUDGE_CHOICES,
                "model": "openai-compatible/gpt-4o-mini",
            },
            "connection": "demo-judge",
        },
    )
    pushed.raise_for_status()
    made = client.post(
        f"/api/v1/projects/{project}/rules",
        json={
            "name": names.rule,
            "evaluators": [pushed.json()["id"]],
            "sample_rate": 1.0,
            "delay_seconds": 0,
            "filter": {"name": "support-reply"},
            # The ongoing share people label (all of it here: four small weeks), and what the
            # judge could not decide.
            "actions": [
                {"when": "sample", "queue": queue_id, "rate": 1.0},
                {"when": "undecided", "queue": queue_id},
            ],
        },
    )
    made.raise_for_status()
    return int(pushed.json()["id"]), int(made.json()["id"])


def _wait_scored(endpoint: str, rule_id: int, count: int, timeout: float = 30.0) -> None:
    """Until the rule judged (and routed) the ``count`` replies sent; RuntimeError saying what
    the rule is doing at the timeout."""
    wait_for_rule(
        endpoint,
        rule_id,
        lambda status: status["done"] + status["failed"] >= count,
        f"judging the {count} support replies",
        timeout,
    )


def _label(
    rt: Runtime, queue_id: int, rubric_id: int, by_trace: dict[str, DemoCase], weeks: set[int]
) -> None:
    """Two people label the routed items of these weeks (putting the others aside); tom reads
    one reply of the first week differently (left out of the calibration: no gold label
    settles it)."""
    for reviewer in ("maria", "tom"):
        who = Principal.local(name=reviewer)
        item = review.next_item(rt, who, queue_id)
        aside: set[int] = set()
        doubted = False
        while item is not None and int(item["item_id"]) not in aside:
            case = by_trace.get(str(item["trace_id"]))
            if case is None or case.week not in weeks:
                aside.add(int(item["item_id"]))
                item = review.skip_item(rt, who, queue_id, int(item["item_id"]))
                continue
            choice = case.people
            if reviewer == "tom" and case.week == 0 and choice == "fail" and not doubted:
                choice, doubted = "pass", True
            why = "answers the question" if choice == "pass" else "does not answer it"
            label = {"rubric_id": rubric_id, "choice": choice, "rationale": why}
            item = review.submit_labels(rt, who, queue_id, int(item["item_id"]), [label])["next"]


def _date_labels(
    rt: Runtime, project: str, rubric_id: int, found: list[DemoCase], weeks: set[int]
) -> None:
    now = time.time_ns()
    with rt.write() as conn:
        project_id = project_store.get_id(conn, project)
        assert project_id is not None
        for week in sorted(weeks):
            ids = [c.trace_id for c in found if c.week == week]
            calibration_store.backdate_labels(
                conn, project_id, rubric_id, ids, now - (3 - week) * WEEK_NS
            )


def seed_calibration(rt: Runtime, endpoint: str, project: str) -> DemoCalibration:
    """The calibrated judge, its disagreements, and its agreement over four weekly windows
    (the last drifting). Run after set_up_online_scoring (it uses the demo's connection)."""
    editor = Principal.local(name="maria")
    with httpx.Client(base_url=endpoint, timeout=60) as client:
        names = Names.free(rt, client, project)
        rubric = rubrics.create_rubric(rt, editor, project, {**RUBRIC, "name": names.rubric})
        rubric_id = int(rubric["id"])
        queue = review.create_queue(
            rt,
            editor,
            project,
            {
                "name": names.queue,
                "rubrics": [rubric_id],
                "reviews_per_item": 2,
                "description": "What the judge-check rule routes to people: the ground truth "
                "its judge is calibrated and watched against.",
            },
        )
        queue_id = int(queue["id"])
        found = _cases()
        evaluator_id, rule_id = _judge_and_rule(client, project, queue_id, names)
        _send(endpoint, found)
    _wait_scored(endpoint, rule_id, len(found))
    by_trace = {case.trace_id: case for case in found}
    # Three weeks of labels, then the calibration on them ...
    _label(rt, queue_id, rubric_id, by_trace, {0, 1, 2})
    _date_labels(rt, project, rubric_id, found, {0, 1, 2})
    made = calibration.calibrate(rt, editor, evaluator_id, rubric_id=rubric_id, mapping=MAPPING)
    listed = calibration.disagreements(rt, editor, evaluator_id, int(made["id"]))
    # ... then this week's, on the replies that now open with an apology.
    _label(rt, queue_id, rubric_id, by_trace, {3})
    _date_labels(rt, project, rubric_id, found, {3})
    series = calibration.agreement(rt, editor, evaluator_id)
    paused = rules.get_rule(rt, editor, rule_id)["status"]["paused_reason"]
    return DemoCalibration(
        names=names,
        evaluator_id=evaluator_id,
        rule_id=rule_id,
        queue_id=queue_id,
        calibration_id=int(made["id"]),
        kappa=made["kappa"] or {},
        disagreements=len(listed),
        series=series["series"],
        paused=paused,
    )
