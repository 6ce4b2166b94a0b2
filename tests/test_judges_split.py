"""The built-in judges are data now (scorers/judges/_prompts.py); their versions are the ones
they had as seven hand-written factories, so stored scores keep their version."""

from __future__ import annotations

from typing import Any

import pytest

from assay.scorers import judges
from assay.scorers.judges import BUILTIN_JUDGES, BUILTIN_PROMPTS

# Computed from the hand-written factories before the split (model "mock/a"; tone's rubric
# "Be formal."; the options as given).
VERSIONS: dict[tuple[str, str], str] = {
    ("factuality", ""): "20bc3c155bf5",
    ("answer_relevance", ""): "79c94e4d48da",
    ("faithfulness", ""): "c16c8d3c8661",
    ("context_relevance", ""): "26f82de73617",
    ("helpfulness", ""): "3b597bafa624",
    ("harmlessness", ""): "c0844f691df7",
    ("tone", ""): "38734b22f549",
    ("pairwise", ""): "7c465b0284a4",
    ("factuality", "json"): "6be3b1cb9709",
    ("factuality", "no reasoning"): "67ac1630fc49",
}
OPTIONS: dict[str, dict[str, Any]] = {
    "": {},
    "json": {"mode": "json"},
    "no reasoning": {"use_reasoning": False, "temperature": 0.3},
}


@pytest.mark.parametrize(("name", "options"), sorted(VERSIONS))
def test_builtin_versions_are_unchanged_by_the_split(name: str, options: str) -> None:
    make = BUILTIN_JUDGES[name]
    arguments = ("Be formal.",) if name == "tone" else ()
    built = make(*arguments, model="mock/a", **OPTIONS[options])
    assert built.version == VERSIONS[name, options]


def test_every_builtin_is_a_row_of_the_table_with_a_documented_factory() -> None:
    assert list(BUILTIN_JUDGES) == list(BUILTIN_PROMPTS)
    for name, row in BUILTIN_PROMPTS.items():
        doc = BUILTIN_JUDGES[name].__doc__ or ""
        assert BUILTIN_JUDGES[name].__name__ == name
        assert row.prompt.splitlines()[0] in doc
        for choice, value in row.choices.items():
            assert f"``{choice}``: {value}" in doc


def test_positional_arguments_still_work() -> None:
    assert judges.factuality("facts", "mock/a").name == "facts"
    assert judges.tone("Be formal.", "voice", "mock/a").name == "voice"
    with pytest.raises(Exception, match="rubric"):
        judges.tone("  ")
    with pytest.raises(Exception, match="unknown judge options"):
        judges.helpfulness(model="mock/a", colour="red")
