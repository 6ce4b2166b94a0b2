"""LLM judges against the local OpenAI- and Anthropic-compatible fake servers (through the real
SDKs) and the mock provider: forced choices, error scores, retries, the cache, the pairwise
swap, versions, the sandboxed prompt, and judges inside an Eval."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import assay
from assay.errors import UserError
from assay.evals._eval import Eval
from assay.models import Request, get_model
from assay.models._mock import MockProvider
from assay.scorers import judges
from assay.scorers.judges import (
    BUILTIN_JUDGES,
    VERDICT_TOOL,
    Judge,
    factuality,
    faithfulness,
    judge,
    pairwise,
    tone,
)
from assay.settings import DEFAULT_JUDGE_MODEL
from tests.fake_llm import Answer, FakeLLM

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PROMPT = """\
Question: {{input}}
Reference: {{expected}}
Answer: {{output}}
Audience: {{metadata.audience}}
Is the answer right? A: right, B: partly, C: wrong."""
CHOICES = {"A": 1.0, "B": 0.4, "C": 0.0}
CASE: dict[str, Any] = {
    "input": "Capital of France?",
    "output": "Paris",
    "expected": "Paris",
    "metadata": {"audience": "pupils"},
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture(autouse=True)
def isolated(fake: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.reset()
    monkeypatch.setenv("ASSAY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ASSAY_MODEL_CACHE", raising=False)
    monkeypatch.delenv("ASSAY_JUDGE_MODEL", raising=False)


def _model_options(fake: FakeLLM, provider: str) -> dict[str, Any]:
    url = fake.openai_url if provider == "openai" else fake.anthropic_url
    return {"base_url": url, "api_key": "test", "backoff": 0.001}


def _judge(fake: FakeLLM, provider: str, **options: Any) -> Judge:
    model = "openai/gpt-4o-mini" if provider == "openai" else "anthropic/claude-sonnet-4-5"
    return judge(
        "correct", PROMPT, CHOICES, model, model_options=_model_options(fake, provider), **options
    )


def _prompt_sent(body: dict[str, Any]) -> str:
    content = body["messages"][-1]["content"]
    return content if isinstance(content, str) else content[0]["text"]


def _verdict_schema(body: dict[str, Any]) -> dict[str, Any]:
    tool = body["tools"][0]
    return dict(tool["function"]["parameters"] if "function" in tool else tool["input_schema"])


PROVIDERS = pytest.mark.parametrize("provider", ["openai", "anthropic"])


# --- forced choices --------------------------------------------------------------------------


@PROVIDERS
def test_forced_choice_is_parsed(fake: FakeLLM, provider: str) -> None:
    fake.script(Answer(arguments={"reasoning": "Mostly right.", "choice": "B"}))
    score = _judge(fake, provider)(**CASE)

    assert score.error is None
    assert (score.name, score.value, score.label) == ("correct", 0.4, "B")
    assert score.rationale == "Mostly right."
    [(_, body)] = fake.requests
    sent = _prompt_sent(body)
    assert "Question: Capital of France?" in sent and "Audience: pupils" in sent
    assert "Reference: Paris" in sent
    # The answer must be a call of the verdict tool: reasoning first, then a listed choice.
    forced = body["tool_choice"]
    assert forced in (
        {"type": "function", "function": {"name": VERDICT_TOOL}},
        {"type": "tool", "name": VERDICT_TOOL},
    )
    schema = _verdict_schema(body)
    assert list(schema["properties"]) == ["reasoning", "choice"]
    assert schema["properties"]["choice"]["enum"] == ["A", "B", "C"]
    assert body.get("temperature", 0) == 0  # Anthropic's Messages API takes none


@PROVIDERS
def test_off_list_choice_is_an_error_score_with_the_raw_answer(
    fake: FakeLLM, provider: str
) -> None:
    fake.script(Answer(arguments={"reasoning": "Hmm.", "choice": "E"}))
    score = _judge(fake, provider)(**CASE)
    assert score.value is None and score.label is None
    assert score.error is not None and "'E'" in score.error and "A, B, C" in score.error
    assert json.loads(score.metadata["raw"]) == {"reasoning": "Hmm.", "choice": "E"}


@PROVIDERS
def test_unparseable_answer_is_an_error_score_with_the_raw_text(
    fake: FakeLLM, provider: str
) -> None:
    fake.script(Answer(arguments="B, because it is mostly right"))
    score = _judge(fake, provider)(**CASE)
    assert score.value is None
    assert score.error is not None and "not the JSON object" in score.error
    assert score.metadata["raw"] == "B, because it is mostly right"


def test_an_answer_without_a_choice_is_an_error(fake: FakeLLM) -> None:
    # The fake's canned tool call has other arguments altogether.
    score = _judge(fake, "openai")(**CASE)
    assert score.value is None and score.error == "the judge gave no choice"
    assert "celsius" in score.metadata["raw"]


def test_choice_spelling_is_forgiven_only_when_unambiguous() -> None:
    model = get_model(
        "mock/j",
        outputs=[{"reasoning": "r", "choice": ' "b" '}, {"reasoning": "r", "choice": "a or b"}],
    )
    scorer = judge("j", PROMPT, CHOICES, model)
    assert scorer(**CASE).label == "B"
    assert scorer(**CASE).error is not None


def test_json_mode_reads_the_object_from_the_text() -> None:
    seen: list[Request] = []

    def answer(request: Request) -> str:
        seen.append(request)
        return 'Here you go:\n```json\n{"reasoning": "Exact match.", "choice": "A"}\n```'

    scorer = judge("j", PROMPT, CHOICES, get_model("mock/j", respond=answer), mode="json")
    score = scorer(**CASE)
    assert (score.value, score.rationale) == (1.0, "Exact match.")
    [request] = seen
    assert request.tools == () and request.response_format is not None
    assert request.response_format["properties"]["choice"]["enum"] == ["A", "B", "C"]


def test_without_reasoning_only_the_choice_is_asked() -> None:
    seen: list[Request] = []

    def answer(request: Request) -> dict[str, Any]:
        seen.append(request)
        return {"choice": "C"}

    scorer = judge("j", PROMPT, CHOICES, get_model("mock/j", respond=answer), False)
    score = scorer(**CASE)
    assert (score.value, score.rationale) == (0.0, None)
    assert list(seen[0].tools[0].parameters["properties"]) == ["choice"]


# --- retries and the cache -------------------------------------------------------------------


@PROVIDERS
def test_judge_retries_a_rate_limit_after_retry_after(fake: FakeLLM, provider: str) -> None:
    fake.script(
        Answer(status=429, headers={"retry-after": "0.2"}),
        Answer(arguments={"reasoning": "Fine.", "choice": "A"}),
    )
    score = _judge(fake, provider)(**CASE)
    assert score.value == 1.0
    assert len(fake.requests) == 2 and fake.arrivals[1] - fake.arrivals[0] >= 0.2


def test_a_failing_provider_gives_an_error_score(fake: FakeLLM) -> None:
    fake.always(Answer(status=500))
    scorer = judge(
        "correct",
        PROMPT,
        CHOICES,
        "openai/gpt-4o-mini",
        model_options={**_model_options(fake, "openai"), "retries": 1},
    )
    score = scorer(**CASE)
    assert score.value is None and score.error is not None and "HTTP 500" in score.error
    assert len(fake.requests) == 2


@PROVIDERS
def test_the_cache_makes_a_rerun_call_the_provider_zero_times(fake: FakeLLM, provider: str) -> None:
    fake.always(Answer(arguments={"reasoning": "Fine.", "choice": "A"}))
    first = _judge(fake, provider)(**CASE)
    assert len(fake.requests) == 1 and first.metadata["cache_hit"] is False
    fake.reset()
    # A new judge of the same definition, as in the next run.
    again = _judge(fake, provider)
    second = again(**CASE)
    third = asyncio.run(again.ascore(**CASE))
    assert fake.requests == []
    assert second.value == third.value == first.value == 1.0
    assert second.rationale == first.rationale
    assert second.metadata["cache_hit"] is True and second.metadata["cost"] == 0
    # Another case is another request.
    _judge(fake, provider)(**{**CASE, "output": "Lyon"})
    assert len(fake.requests) == 1


# --- pairwise --------------------------------------------------------------------------------


@PROVIDERS
def test_pairwise_swap_cancels_a_first_position_bias(fake: FakeLLM, provider: str) -> None:
    fake.always(Answer(arguments={"reasoning": "The first one is better.", "choice": "A"}))
    model = "openai/gpt-4o-mini" if provider == "openai" else "anthropic/claude-sonnet-4-5"
    scorer = pairwise(model=model, model_options=_model_options(fake, provider))
    score = scorer(input="Capital of France?", output="Paris.", expected="It is Lyon.")

    assert (score.value, score.label) == (0.5, "tie")
    assert score.metadata["verdicts"] == ["A", "A"] and score.metadata["consistent"] is False
    first, second = (_prompt_sent(body) for _, body in fake.requests)
    assert first.index("Paris.") < first.index("It is Lyon.")
    assert second.index("It is Lyon.") < second.index("Paris.")


def test_pairwise_consistent_preference_wins_or_loses() -> None:
    def prefer_paris(request: Request) -> dict[str, Any]:
        text = request.messages[-1].content
        a = text.split("[Answer A]")[1].split("[Answer B]")[0]
        return {"reasoning": "Paris is right.", "choice": "A" if "Paris" in a else "B"}

    scorer = pairwise(model=get_model("mock/p", respond=prefer_paris), baseline="metadata.other")
    win = scorer(input="Capital?", output="Paris", metadata={"other": "Lyon"})
    loss = scorer(input="Capital?", output="Lyon", metadata={"other": "Paris"})
    assert (win.value, win.label, win.metadata["consistent"]) == (1.0, "win", True)
    assert (loss.value, loss.label) == (0.0, "loss")
    assert win.rationale is not None and "[output first]" in win.rationale
    missing = scorer(input="Capital?", output="Paris")
    assert missing.value is None and missing.error is not None and "metadata.other" in missing.error


def test_pairwise_with_an_unusable_verdict_is_an_error() -> None:
    model = get_model("mock/p", outputs=[{"reasoning": "A", "choice": "A"}, "no idea"])
    score = pairwise(model=model)(input="q", output="x", expected="y")
    assert score.value is None and score.metadata["raw"] == "no idea"


# --- versions --------------------------------------------------------------------------------


def test_version_is_a_hash_of_the_definition() -> None:
    base = judge("j", PROMPT, CHOICES, "mock/a")
    assert judge("j", PROMPT, CHOICES, "mock/a").version == base.version
    changed = [
        judge("j", PROMPT + " Be strict.", CHOICES, "mock/a"),
        judge("j", PROMPT, {**CHOICES, "B": 0.5}, "mock/a"),
        judge("j", PROMPT, CHOICES, "mock/b"),
        judge("j", PROMPT, CHOICES, "mock/a", use_reasoning=False),
        judge("j", PROMPT, CHOICES, "mock/a", temperature=0.5),
        judge("j", PROMPT, CHOICES, "mock/a", mode="json"),
    ]
    versions = {base.version} | {j.version for j in changed}
    assert len(versions) == 1 + len(changed)
    assert tone("Formal.", model="mock/a").version != tone("Casual.", model="mock/a").version
    assert base.definition["prompt"] == PROMPT


def test_judge_versions_are_recorded_by_an_eval() -> None:
    model = get_model("mock/e", respond=lambda request: {"reasoning": "ok", "choice": "A"})
    scorer = judge("correct", PROMPT, CHOICES, model)
    result = Eval(
        "judged",
        data=[CASE, {**CASE, "input": "Capital of Spain?"}],
        task=lambda question: "Paris",
        scores=[scorer],
    ).run(send=False)
    assert [row.scores[0].value for row in result.rows] == [1.0, 1.0]
    assert result.rows[0].scores[0].rationale == "ok"
    summary = result.summary["correct"]
    assert summary.estimate is not None and summary.estimate.mean == 1.0


# --- the prompt ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "problem"),
    [
        ("{{ secret }}", "uses secret"),
        ("{{ output", "line 1"),
        ("{% include '/etc/passwd' %}", "cannot include"),
        ("", "non-empty"),
    ],
)
def test_bad_prompts_fail_when_the_judge_is_made(prompt: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem):
        judge("j", prompt, CHOICES, "mock/a")


def test_prompt_renders_in_a_sandbox() -> None:
    seen: list[str] = []

    def answer(request: Request) -> dict[str, Any]:
        seen.append(request.messages[-1].content)
        return {"reasoning": "r", "choice": "A"}

    model = get_model("mock/s", respond=answer)
    safe = judge("j", "{{ metadata.gone }}|{{ metadata.n }}|{{ output }}", CHOICES, model)
    safe(output={"answer": 42}, metadata={"n": 3})
    # Values arrive as plain JSON data; a missing key renders as nothing.
    assert seen[0].startswith('|3|{\n  "answer": 42\n}')
    # Python internals are out of reach: even a lone reach fails the render with the reason
    # (it does not quietly render as nothing).
    internals = judge("j", "{{ output.__class__ }}", CHOICES, model)
    with pytest.raises(UserError, match="unsafe: access to attribute '__class__'"):
        internals(output={"a": 1})
    escape = judge("j", "{{ output.__class__.__mro__ }}", CHOICES, model)
    with pytest.raises(UserError, match="unsafe"):
        escape(output={"a": 1})
    mutate = judge("j", "{{ metadata.update({'x': 1}) }}", CHOICES, model)
    with pytest.raises(UserError, match="unsafe"):
        mutate(metadata={"a": 1})
    assert len(seen) == 1


def test_choices_and_names_are_checked() -> None:
    with pytest.raises(UserError, match="at least two"):
        judge("j", PROMPT, {"A": 1.0}, "mock/a")
    with pytest.raises(UserError, match=r"in \[0, 1\]"):
        judge("j", PROMPT, {"A": 1.0, "B": 2.0}, "mock/a")
    with pytest.raises(UserError, match="reuse"):
        judge("j", PROMPT, CHOICES, "mock/a", variables={"output": "x"})
    with pytest.raises(UserError, match="mode"):
        judge("j", PROMPT, CHOICES, "mock/a", mode="text")  # type: ignore[arg-type]


# --- context ---------------------------------------------------------------------------------


def test_context_comes_from_metadata_or_retrieval_spans() -> None:
    seen: list[str] = []

    def answer(request: Request) -> dict[str, Any]:
        seen.append(request.messages[-1].content)
        return {"reasoning": "Supported.", "choice": "faithful"}

    scorer = faithfulness(model=get_model("mock/f", respond=answer))
    assert scorer(input="q", output="a", metadata={"context": "The sky is blue."}).value == 1.0
    assert "The sky is blue." in seen[-1]

    def task(question: str) -> str:
        with assay.span("search", type="retrieval") as span:
            span.log(output=[{"content": "Paris is in France."}, "It has 2M people."])
        return "Paris"

    result = Eval("rag", data=[{"input": "Where is Paris?"}], task=task, scores=[scorer]).run(
        send=False
    )
    assert result.rows[0].scores[0].value == 1.0
    assert "Paris is in France.\n\nIt has 2M people." in seen[-1]

    empty = scorer(input="q", output="a")
    assert empty.value is None and empty.error is not None and "context" in empty.error
    assert len(seen) == 2  # no call without context


def test_factuality_needs_expected() -> None:
    model = get_model("mock/f")
    score = factuality(model=model)(input="q", output="a")
    assert score.value is None and score.error is not None and "expected" in score.error
    assert isinstance(model.provider, MockProvider)
    assert model.provider.requests == []


# --- built-in judges -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BUILTIN_JUDGES))
def test_builtin_judges_document_their_prompt_and_choices(name: str) -> None:
    make = BUILTIN_JUDGES[name]
    arguments: dict[str, Any] = {"model": "mock/b"}
    if name == "tone":
        arguments["rubric"] = "Plain and friendly."
    built = make(**arguments)
    assert built.name == name and len(built.version) == 12
    classifier = built.classifier
    doc = make.__doc__ or ""
    for choice in classifier.choices:
        assert f"``{choice}``" in doc
    first_line = classifier.prompt.source.splitlines()[0]
    assert first_line in doc
    # With nothing scripted the mock picks the first choice, which must score.
    case: dict[str, Any] = {
        "input": "q",
        "output": "a",
        "expected": "e",
        "metadata": {"context": "c"},
    }
    score = asyncio.run(built.ascore(**case))
    assert score.error is None and score.value is not None


def test_default_model_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert judges.factuality().definition["model"] == DEFAULT_JUDGE_MODEL
    monkeypatch.setenv("ASSAY_JUDGE_MODEL", "mock/from-env")
    assert judges.factuality().definition["model"] == "mock/from-env"
