"""The demo's registry prompt: the support agent's system prompt in two versions, with
``production`` moved from the first to the second (the move is in the label's history); and a
playground comparison: each version run over the same dataset, as two experiments to compare.

The playground's model is the demo's offline stand-in (demo/online.py) through the
``demo-judge`` connection: `stand_in_reply` answers like the prompt asks, so the version that
says to look the policy up answers more questions than the first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from assay.demo.evals import BASELINE_KNOWS, FALLBACK, POLICY, QUESTIONS

NAME = "support-agent"
VERSIONS: list[dict[str, Any]] = [
    {
        "name": NAME,
        "model": "gpt-4.1-mini",
        "params": {"temperature": 0.2},
        "messages": [
            {"role": "system", "content": "You answer {{ company }}'s customers about orders."},
            {"role": "user", "content": "{{ question }}"},
        ],
        "message": "first version",
    },
    {
        "name": NAME,
        "model": "gpt-4.1-mini",
        "params": {"temperature": 0.0, "max_tokens": 400},
        "messages": [
            {
                "role": "system",
                "content": (
                    "You answer {{ company }}'s customers about orders. Look the policy up "
                    "before you answer, quote it, and say when you are not sure."
                ),
            },
            {"role": "user", "content": "{{ question }}"},
        ],
        "message": "cite the policy; deterministic answers",
    },
]


def create_demo_prompt(base_url: str, project: str) -> tuple[int, bool]:
    """Save both versions and point ``production`` at the first, then move it to the second:
    the version ``production`` is on, and whether the prompt was made now. A prompt of that
    name made by an earlier demo run is left as it is (its versions and label history)."""
    base = f"{base_url}/api/v1/projects/{project}/prompts"
    with httpx.Client(timeout=30) as client:
        existing = client.get(f"{base}/{NAME}", params={"label": "production"})
        if existing.status_code == 200:
            return int(existing.json()["version"]), False
        saved = [client.post(base, json=body).raise_for_status().json() for body in VERSIONS]
        for version in (saved[0]["version"], saved[-1]["version"]):
            client.put(
                f"{base}/{NAME}/labels/production", json={"version": version}
            ).raise_for_status()
    return int(saved[-1]["version"]), True


DATASET = "support-prompt-cases"
COMPANY = "Acme Outdoor"


def stand_in_reply(messages: Sequence[Mapping[str, Any]]) -> str:
    """The stand-in model's answer to the demo prompt: a system prompt that asks to look the
    policy up gets the policy quoted; otherwise only the three best-known policies are."""
    system = " ".join(str(m.get("content") or "") for m in messages if m.get("role") == "system")
    users = [str(m.get("content") or "") for m in messages if m.get("role") == "user"]
    question = (users[-1] if users else "").lower()
    thorough = "policy" in system.lower()
    if thorough and question.startswith("when"):
        return 'Our policy says: "Orders ship within 2 business days."'
    for word, answer in POLICY.items():
        if word in question and (thorough or word in BASELINE_KNOWS):
            return f'Our policy says: "{answer}"' if thorough else answer
    return FALLBACK


@dataclass(frozen=True)
class PlaygroundComparison:
    first: int
    second: int
    #: ``contains`` over the dataset, for each version.
    first_mean: float | None
    second_mean: float | None


def run_playground_comparison(runtime: Any, base_url: str, project: str) -> PlaygroundComparison:
    """A dataset of the demo's questions (with the company as a variable), and each version of
    the demo prompt run over it from the playground (scored by ``contains``): two experiments,
    the second compared with the first. Needs the ``demo-judge`` connection
    (demo/online.set_up_online_scoring)."""
    from assay.services import playground
    from assay.services.principal import Principal

    base = f"{base_url}/api/v1/projects/{project}/datasets"
    with httpx.Client(timeout=30) as client:
        client.post(base, json={"name": DATASET}).raise_for_status()
        current = client.get(f"{base}/{DATASET}").raise_for_status().json()
        if not current.get("record_count"):
            records = [
                {"id": f"p{i}", "input": {"company": COMPANY, "question": q}, "expected": e}
                for i, (q, e) in enumerate(QUESTIONS)
            ]
            client.post(
                f"{base}/{DATASET}/changes", json={"insert": records, "message": "demo cases"}
            ).raise_for_status()
    runs: list[dict[str, Any]] = []
    for version in (1, 2):
        ask = playground.RunRequest(
            draft=None, prompt=NAME, version=version, connection="demo-judge", model=None
        )
        run = playground.start_dataset_run(
            runtime,
            Principal.operator(),
            project,
            ask,
            dataset=DATASET,
            dataset_version=None,
            scorers=["contains"],
            wait=True,
        )
        runs.append(run)

    def mean(run: Mapping[str, Any]) -> float | None:
        found = (run.get("summary") or {}).get("contains") or {}
        value = found.get("mean")
        return float(value) if value is not None else None

    return PlaygroundComparison(
        first=int(runs[0]["experiment_id"]),
        second=int(runs[1]["experiment_id"]),
        first_mean=mean(runs[0]),
        second_mean=mean(runs[1]),
    )
