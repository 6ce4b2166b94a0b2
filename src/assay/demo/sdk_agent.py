"""The demo's SDK part: an agent instrumented with `assay.traced`, and end-user feedback."""

from __future__ import annotations

import random

from opentelemetry.sdk.trace import TracerProvider

import assay

RECIPES = {
    "pancakes": ["flour", "milk", "eggs"],
    "omelette": ["eggs", "butter", "chives"],
    "risotto": ["rice", "stock", "parmesan"],
}


@assay.traced(type="retrieval")
def find_recipe(dish: str) -> list[str]:
    return RECIPES.get(dish, [])


@assay.traced(type="tool")
def check_pantry(ingredients: list[str], pantry: set[str]) -> list[str]:
    return [item for item in ingredients if item not in pantry]


@assay.traced(type="agent", name="cooking-assistant")
def cooking_assistant(question: str, dish: str, pantry: set[str]) -> str:
    ingredients = find_recipe(dish)
    missing = check_pantry(ingredients, pantry)
    with assay.span(f"chat {dish}", type="llm") as llm:
        answer = (
            f"You can make {dish}."
            if not missing
            else f"For {dish} you still need " + ", ".join(missing) + "."
        )
        llm.log(
            input=[{"role": "user", "content": question}],
            output=[{"role": "assistant", "content": answer}],
            model="gpt-4o-mini",
            metrics={"input_tokens": 420 + 7 * len(question), "output_tokens": 30},
        )
    return answer


def send_sdk_runs(endpoint: str, *, runs: int = 12, seed: int = 11) -> int:
    """Run the SDK-instrumented agent and leave thumbs up/down feedback on its answers."""
    rng = random.Random(seed)
    provider = TracerProvider()
    assay.init("demo", url=endpoint, tracer_provider=provider)
    try:
        for _ in range(runs):
            dish = rng.choice(list(RECIPES))
            pantry = set(rng.sample(["flour", "milk", "eggs", "butter", "rice", "stock"], 3))
            question = f"Can I cook {dish} tonight?"
            with assay.span("user turn", type="agent") as turn:
                answer = cooking_assistant(question, dish, pantry)
                turn.log(input=question, output=answer, tags=["cooking"])
            assay.log_feedback(turn, "thumbs_up", value=rng.random() > 0.3, user="demo-user")
        assay.flush(30)
    finally:
        assay.shutdown()
        provider.shutdown()
    return runs
