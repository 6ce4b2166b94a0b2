"""The demo's registry prompt: the support agent's system prompt in two versions, with
``production`` moved from the first to the second (the move is in the label's history)."""

from __future__ import annotations

from typing import Any

import httpx

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


def create_demo_prompt(base_url: str, project: str) -> int:
    """Save both versions and point ``production`` at the first, then move it to the second;
    the version ``production`` ends on."""
    base = f"{base_url}/api/v1/projects/{project}/prompts"
    with httpx.Client(timeout=30) as client:
        saved = [client.post(base, json=body).raise_for_status().json() for body in VERSIONS]
        for version in (saved[0]["version"], saved[-1]["version"]):
            client.put(
                f"{base}/{NAME}/labels/production", json={"version": version}
            ).raise_for_status()
    return int(saved[-1]["version"])
