"""Heuristic scorers against hand-checked cases, edge cases (None, empty, non-string values) and
properties; one Eval end to end."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import assay
from assay.errors import UserError
from assay.evals._scorer import Score, Scorer
from assay.scorers import (
    contains,
    edit_similarity,
    exact_match,
    json_diff,
    json_schema,
    json_valid,
    levenshtein,
    list_overlap,
    numeric_close,
    regex,
)


def run(scorer: Scorer, **context: Any) -> Score | None:
    """Call a scorer the way the runner does: with just the arguments it asks for."""
    result = scorer.fn(**scorer.arguments(context))
    assert result is None or isinstance(result, Score)
    return result


def value(scorer: Scorer, **context: Any) -> float | None:
    score = run(scorer, **context)
    return None if score is None else score.value


# --- exact_match -------------------------------------------------------------------------------


def test_exact_match_is_strict_by_default() -> None:
    assert value(exact_match(), output="Paris", expected="Paris") == 1.0
    score = run(exact_match(), output="Paris ", expected="Paris")
    assert score is not None and score.value == 0.0
    assert score.rationale is not None and "character 5" in score.rationale


@pytest.mark.parametrize(
    ("normalize", "output", "expected"),
    [
        (("case", "whitespace", "punctuation"), "  The  Eiffel-Tower!! ", "the eiffeltower"),
        (("articles", "case", "whitespace"), "The cat sat on a mat", "cat sat on mat"),
        ("unicode", "ｆｕｌｌ　width", "full width"),  # full-width letters and space, NFKC
        ("case", "STRASSE", "strasse"),
    ],
)
def test_exact_match_normalises(normalize: Any, output: str, expected: str) -> None:
    assert value(exact_match(normalize=normalize), output=output, expected=expected) == 1.0
    # Without the normalisation the same pair differs.
    assert value(exact_match(), output=output, expected=expected) == 0.0


def test_exact_match_edge_cases() -> None:
    scorer = exact_match()
    assert run(scorer, output="anything", expected=None) is None  # no reference: skipped
    assert run(scorer, output=None, expected="x") == Score(
        "exact_match", 0.0, rationale="output is empty; expected 'x'"
    )
    assert value(scorer, output="", expected="") == 1.0
    # Non-strings compare as canonical JSON: key order and 2.0 vs 2 do not matter.
    assert value(scorer, output={"b": 1, "a": 2.0}, expected={"a": 2, "b": 1}) == 1.0
    assert value(scorer, output=4, expected="4") == 1.0
    assert value(scorer, output=[1, 2], expected=[2, 1]) == 0.0


def test_bad_normalize_option_is_a_user_error_naming_it() -> None:
    with pytest.raises(UserError, match="lowercase"):
        exact_match(normalize=("lowercase",))


def test_versions_follow_parameters_and_names_are_stable() -> None:
    assert exact_match().version == exact_match().version
    assert exact_match().version != exact_match(normalize="case").version
    # The order the options are named in does not change what they do, nor the version.
    assert (
        exact_match(normalize=("case", "whitespace")).version
        == exact_match(normalize=("whitespace", "case")).version
    )
    assert regex(r"\d+").version != regex(r"\d+", mode="fullmatch").version
    assert numeric_close(abs_tol=0.1).version != numeric_close(abs_tol=0.2).version
    assert json_schema({"type": "object"}).version != json_schema({"type": "array"}).version
    assert exact_match().name == "exact_match"
    assert exact_match(name="answer").name == "answer"


# --- contains ----------------------------------------------------------------------------------


def test_contains_fixed_text() -> None:
    assert value(contains("refund"), output="We will refund you.") == 1.0
    scorer = contains(["refund", "5 business days"])
    score = run(scorer, output="We refund within 5 days.")
    assert score is not None and score.value == 0.0
    assert score.metadata["missing"] == ["5 business days"]
    assert score.rationale == "output lacks ['5 business days']"
    assert value(contains(["refund", "5 business days"], mode="any"), output="refund") == 1.0
    assert value(contains("REFUND"), output="refund") == 0.0
    assert value(contains("REFUND", normalize="case"), output="refund") == 1.0
    # A dict output is searched as its JSON text.
    assert value(contains('"status": "shipped"'), output={"status": "shipped"}) == 1.0


def test_contains_reads_expected_when_given_no_text() -> None:
    scorer = contains()
    assert value(scorer, output="The capital is Paris.", expected="Paris") == 1.0
    assert value(scorer, output="Paris and Lyon", expected=["Paris", "Lyon"]) == 1.0
    assert run(scorer, output="Paris", expected=None) is None
    empty = run(scorer, output=None, expected="Paris")
    assert empty is not None and empty.value == 0.0 and empty.rationale == "output is empty"
    with pytest.raises(ValueError, match="expected as a string"):
        run(scorer, output="x", expected={"a": 1})


def test_contains_bad_configuration() -> None:
    with pytest.raises(UserError, match="non-empty"):
        contains("")
    with pytest.raises(UserError, match="mode"):
        contains("x", mode="some")


# --- regex -------------------------------------------------------------------------------------


def test_regex() -> None:
    score = run(regex(r"\b\d{5}\b"), output="Order 12345 shipped")
    assert score is not None and score.value == 1.0 and score.metadata["match"] == "12345"
    assert score.metadata["span"] == [6, 11]
    assert value(regex(r"\d+", mode="fullmatch"), output="123 ") == 0.0
    assert value(regex(r"\d+", mode="fullmatch"), output="123") == 1.0
    assert value(regex(r"^\d+$"), output=42) == 1.0  # a number reads as its text
    assert value(regex("yes", flags=re.IGNORECASE), output="YES") == 1.0
    assert run(regex("yes"), output=None) == Score(
        "regex", 0.0, rationale="/yes/ does not match the empty output"
    )
    assert run(regex(r"\d+", mode="fullmatch"), output="12a") == Score(
        "regex", 0.0, rationale="/\\d+/ does not fully match output '12a'"
    )


def test_invalid_regex_is_a_user_error() -> None:
    with pytest.raises(UserError, match=r"invalid regex '\(unclosed'"):
        regex("(unclosed")
    with pytest.raises(UserError, match="mode"):
        regex("x", mode="match")


# --- edit_similarity ---------------------------------------------------------------------------


def test_edit_similarity_hand_checked() -> None:
    # kitten -> sitting: k->s, e->i, +g: 3 edits over 7 characters.
    score = run(edit_similarity(), output="kitten", expected="sitting")
    assert score is not None and score.value == pytest.approx(1 - 3 / 7)
    assert score.metadata == {"distance": 3, "length": 7}
    assert score.rationale == "3 character edit(s) from expected over 7 characters"
    assert value(edit_similarity(), output="", expected="") == 1.0
    empty = run(edit_similarity(), output=None, expected="abc")
    assert empty is not None and empty.value == 0.0 and empty.rationale == "output is empty"
    assert run(edit_similarity(), output="abc", expected=None) is None
    assert value(edit_similarity(normalize="case"), output="ABC", expected="abc") == 1.0
    # {"a": 1} vs {"a": 2}: canonical JSON texts differ in one character out of 8.
    assert value(edit_similarity(), output={"a": 1}, expected={"a": 2}) == pytest.approx(7 / 8)


def _reference_levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b))
            )
        previous = current
    return previous[-1]


small_text = st.text(alphabet="abcé ", max_size=70)


@given(small_text, small_text)
def test_levenshtein_equals_the_textbook_table(a: str, b: str) -> None:
    assert levenshtein(a, b) == _reference_levenshtein(a, b)


@given(st.text(max_size=40), st.text(max_size=40))
def test_edit_similarity_is_symmetric_bounded_and_one_on_equal(a: str, b: str) -> None:
    scorer = edit_similarity()
    forward = value(scorer, output=a, expected=b)
    assert forward == value(scorer, output=b, expected=a)
    assert forward is not None and 0.0 <= forward <= 1.0
    assert value(scorer, output=a, expected=a) == 1.0


def test_levenshtein_on_long_texts_is_fast_enough() -> None:
    a = "the quick brown fox jumps over the lazy dog " * 100
    b = a.replace("fox", "cat")
    assert levenshtein(a, b) == 300  # 100 occurrences, 3 substitutions each


# --- numeric_close -----------------------------------------------------------------------------


def test_numeric_close_tolerances() -> None:
    # |3.14159 - 3.14| = 0.00159 <= 0.01
    assert value(numeric_close(abs_tol=0.01), output=3.14159, expected=3.14) == 1.0
    # rel_tol 5%: |105 - 100| = 5 <= 0.05 * 105 = 5.25; |106 - 100| = 6 > 5.3.
    assert value(numeric_close(rel_tol=0.05), output=105, expected=100) == 1.0
    far = run(numeric_close(rel_tol=0.05), output=106, expected=100)
    assert far is not None and far.value == 0.0
    assert far.rationale == "106 differs from 100 by 6 (tolerance: rel 0.05, abs 0)"
    assert far.metadata == {"output": 106.0, "expected": 100.0, "difference": 6.0}


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("The answer is 42.", 42),
        ("Total: $1,234.50", "1234.5"),
        ("2024-05-06: we counted 7", 7),
        (" -3.5e2 ", -350),
        ("It fell by -2 points", -2),
    ],
)
def test_numeric_close_reads_numbers_in_text(output: str, expected: Any) -> None:
    assert value(numeric_close(), output=output, expected=expected) == 1.0


def test_numeric_close_edge_cases() -> None:
    scorer = numeric_close()
    assert run(scorer, output=1, expected=None) is None
    for bad_output in (None, True, "n/a", {"x": 1}):
        score = run(scorer, output=bad_output, expected=1)
        assert score is not None and score.value == 0.0
        assert score.rationale is not None and "holds no number" in score.rationale
    assert value(scorer, output=math.nan, expected=1) == 0.0
    with pytest.raises(ValueError, match="not a number"):
        run(scorer, output=1, expected="one")
    with pytest.raises(UserError, match="rel_tol must not be negative"):
        numeric_close(rel_tol=-0.1)


# --- list_overlap ------------------------------------------------------------------------------


def test_list_overlap_hand_checked() -> None:
    # Output {a, b, c}, expected {b, c, d, e}: 2 hits. Precision 2/3, recall 2/4;
    # F1 = 2 * (2/3 * 1/2) / (2/3 + 1/2) = (2/3) / (7/6) = 4/7.
    context = {"output": ["a", "b", "c"], "expected": ["b", "c", "d", "e"]}
    score = run(list_overlap(), **context)
    assert score is not None and score.value == pytest.approx(4 / 7)
    assert score.metadata["precision"] == pytest.approx(2 / 3)
    assert score.metadata["recall"] == pytest.approx(1 / 2)
    assert score.metadata["missing"] == ["d", "e"] and score.metadata["extra"] == ["a"]
    assert score.rationale == "missing ['d', 'e']; extra ['a']"
    assert value(list_overlap("precision"), **context) == pytest.approx(2 / 3)
    assert value(list_overlap("recall"), **context) == pytest.approx(1 / 2)


def test_list_overlap_by_key() -> None:
    # Hits: id 2 only. Precision 1/2, recall 1/2, F1 1/2.
    output = [{"id": 1, "title": "x"}, {"id": 2, "title": "y"}]
    expected = [{"id": 2}, {"id": 3}]
    assert value(list_overlap(key="id"), output=output, expected=expected) == 0.5
    by_url = list_overlap(key=lambda doc: doc["url"].lower())
    assert value(by_url, output=[{"url": "A"}], expected=[{"url": "a"}]) == 1.0
    assert value(list_overlap(normalize="case"), output=["Doc"], expected=["doc"]) == 1.0


def test_list_overlap_edge_cases() -> None:
    scorer = list_overlap()
    assert value(scorer, output=[], expected=[]) == 1.0
    assert value(scorer, output=[], expected=["a"]) == 0.0
    none = run(scorer, output=None, expected=["a"])
    assert none is not None and none.value == 0.0
    assert none.rationale == "output is empty; missing ['a']"
    text = run(scorer, output="a, b", expected=["a"])
    assert text is not None and text.value == 0.0
    assert text.rationale == "output is not a list: 'a, b'"
    # A JSON array in a string is read as a list: P 1/2, R 1, F1 2/3.
    assert value(scorer, output='["a", "b"]', expected=["a"]) == pytest.approx(2 / 3)
    # Duplicates count once: {a, b} against {a}.
    assert value(scorer, output=["a", "a", "b"], expected=["a"]) == pytest.approx(2 / 3)
    assert run(scorer, output=["a"], expected=None) is None
    with pytest.raises(ValueError, match="needs a list as expected"):
        run(scorer, output=["a"], expected="a")
    with pytest.raises(UserError, match="metric"):
        list_overlap("accuracy")


items = st.lists(st.sampled_from("abcdefg"), max_size=8)


@given(items, items)
def test_list_overlap_properties(a: list[str], b: list[str]) -> None:
    forward = run(list_overlap(), output=a, expected=b)
    backward = run(list_overlap(), output=b, expected=a)
    assert forward is not None and backward is not None
    assert forward.value is not None and 0.0 <= forward.value <= 1.0
    assert forward.value == pytest.approx(backward.value)  # F1 is symmetric
    assert forward.metadata["precision"] == pytest.approx(backward.metadata["recall"])


# --- JSON --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("output", "valid", "reason"),
    [
        ('{"a": [1, 2.5, null]}', True, None),
        ({"a": 1}, True, None),
        ([1, "x"], True, None),
        (3, True, None),
        ('{"a": 1', False, "output is not valid JSON: Expecting ',' delimiter"),
        ("NaN", False, "output is not valid JSON: NaN is not JSON"),
        ("", False, "output is empty"),
        (None, False, "output is None"),
        (math.nan, False, "output (float) is not JSON-serialisable"),
        ({"a": object()}, False, "output (dict) is not JSON-serialisable"),
        ('```json\n{"a": 1}\n```', False, "output is not valid JSON"),
    ],
)
def test_json_valid(output: Any, valid: bool, reason: str | None) -> None:
    score = run(json_valid(), output=output)
    assert score is not None and score.value == (1.0 if valid else 0.0)
    if reason is None:
        assert score.rationale is None
    else:
        assert score.rationale is not None and score.rationale.startswith(reason)


def test_json_valid_may_accept_a_code_fence() -> None:
    assert value(json_valid(allow_fences=True), output='```json\n{"a": 1}\n```') == 1.0
    assert value(json_valid(allow_fences=True), output="```\n[1]```") == 1.0


PERSON = {
    "type": "object",
    "required": ["name", "age"],
    "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
}


def test_json_schema() -> None:
    scorer = json_schema(PERSON)
    assert value(scorer, output='{"name": "Ada", "age": 36}') == 1.0
    assert value(scorer, output={"name": "Ada", "age": 36}) == 1.0
    young = run(scorer, output={"name": "Ada", "age": -1})
    assert young is not None and young.value == 0.0
    assert young.rationale == "$.age: -1 is less than the minimum of 0"
    both = run(scorer, output='{"age": "x"}')
    assert both is not None and both.value == 0.0
    assert [e["path"] for e in both.metadata["errors"]] == ["$", "$.age"]
    assert both.rationale == "$: 'name' is a required property; $.age: 'x' is not of type 'integer'"
    broken = run(scorer, output="{name: Ada}")
    assert broken is not None and broken.value == 0.0
    assert broken.rationale is not None and broken.rationale.startswith("output is not valid JSON")


def test_json_schema_formats_are_checked_on_request() -> None:
    email = {"type": "string", "format": "email"}
    assert value(json_schema(email), output='"not-an-email"') == 1.0
    assert value(json_schema(email, check_formats=True), output='"not-an-email"') == 0.0


def test_invalid_json_schema_is_a_user_error() -> None:
    with pytest.raises(UserError, match="invalid JSON schema at properties/age/type"):
        json_schema({"type": "object", "properties": {"age": {"type": "integr"}}})
    with pytest.raises(UserError, match="needs a schema dict"):
        json_schema("string")  # type: ignore[arg-type]


def test_json_diff_hand_checked() -> None:
    # Leaf paths: $.a (1 vs 1.0: same), $.b[0] (same), $.b[1] (2 vs 3), $.c.d (true vs 1: a
    # bool is not a number), $.e (missing from the output): 2 of 5 match.
    output = '{"a": 1, "b": [1, 2], "c": {"d": true}}'
    expected = {"a": 1.0, "b": [1, 3], "c": {"d": 1}, "e": None}
    score = run(json_diff(), output=output, expected=expected)
    assert score is not None and score.value == pytest.approx(2 / 5)
    assert score.metadata["changed"] == ["$.b[1]", "$.c.d"]
    assert score.metadata["missing"] == ["$.e"] and score.metadata["extra"] == []
    assert score.rationale == "2 of 5 leaf paths match; changed: $.b[1], $.c.d; missing: $.e"


def test_json_diff_edge_cases() -> None:
    scorer = json_diff()
    assert value(scorer, output={"x": {"y": [1, {"z": 2}]}}, expected={"x": {"y": [1, {"z": 2}]}})
    assert value(scorer, output={}, expected={}) == 1.0
    assert value(scorer, output=[], expected={}) == 0.0
    extra = run(scorer, output={"a": 1, "z": 2}, expected={"a": 1})
    assert extra is not None and extra.value == 0.5 and extra.metadata["extra"] == ["$.z"]
    dotted = run(scorer, output={"a.b": 1}, expected={"a.b": 2})
    assert dotted is not None and dotted.metadata["changed"] == ['$["a.b"]']
    broken = run(scorer, output="{oops", expected={"a": 1})
    assert broken is not None and broken.value == 0.0
    assert broken.rationale is not None and "output is not valid JSON" in broken.rationale
    none = run(scorer, output=None, expected={"a": 1})
    assert none is not None and none.value == 0.0
    assert none.rationale is not None and "output is None" in none.rationale
    assert run(scorer, output={"a": 1}, expected=None) is None
    assert value(scorer, output="42", expected=42) == 1.0  # both read as JSON


# --- end to end --------------------------------------------------------------------------------


def test_an_eval_runs_with_built_in_scorers() -> None:
    answers = {
        "capital of France?": "Paris.",
        "capital of Italy?": "rome",
        "capital of Spain?": "Madird",
    }
    result = assay.Eval(
        "capitals",
        [
            {"input": "capital of France?", "expected": "Paris"},
            {"input": "capital of Italy?", "expected": "Rome"},
            {"input": "capital of Spain?", "expected": "Madrid"},
        ],
        lambda question: answers[question],
        [
            exact_match(normalize=("case", "punctuation")),
            edit_similarity(normalize="case"),
            regex(r"^[A-Z]", name="capitalised"),
        ],
        thresholds={"exact_match": 0.9},
    ).run(send=False)
    by_input = {row.input: {s.name: s.value for s in row.scores} for row in result.rows}
    assert by_input["capital of France?"]["exact_match"] == 1.0
    assert by_input["capital of Italy?"] == {
        "exact_match": 1.0,
        "edit_similarity": 1.0,
        "capitalised": 0.0,
    }
    # madird -> madrid: substitute i->r and r->i, 2 edits over 6 characters.
    assert by_input["capital of Spain?"] == {
        "exact_match": 0.0,
        "edit_similarity": pytest.approx(1 - 2 / 6),
        "capitalised": 1.0,
    }
    assert result.summary["exact_match"].estimate is not None
    assert result.summary["exact_match"].estimate.mean == pytest.approx(2 / 3)
    assert result.failed_thresholds == ["exact_match: mean 0.667 < 0.9"]
