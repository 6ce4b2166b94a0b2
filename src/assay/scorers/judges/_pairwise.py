"""The pairwise judge: is the output better than a baseline answer? Asked twice, the answers
swapped, so a judge that prefers a position ends at a tie."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from assay.errors import UserError
from assay.evals._scorer import Score
from assay.models import Model, Response
from assay.scorers._template import PromptTemplate
from assay.scorers.judges._judge import Classifier, Judge, _as_judge, _options, default_model
from assay.scorers.judges._prompts import BUILTIN_PROMPTS
from assay.scorers.judges._verdict import read_verdict

PAIRWISE_NAMES = ("input", "expected", "metadata", "context", "answer_a", "answer_b")
#: The pairwise verdict, valued for the answer shown first.
PAIRWISE_CHOICES = dict(BUILTIN_PROMPTS["pairwise"].choices)
PAIRWISE_PROMPT = BUILTIN_PROMPTS["pairwise"].prompt


class PairwiseClassifier(Classifier):
    """Asks twice, the two answers swapped, and averages: a judge that always prefers the
    first position ends at a tie rather than at a win."""

    kind = "pairwise"

    def __init__(self, *args: Any, baseline: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if baseline != "expected" and not baseline.startswith("metadata."):
            raise UserError('baseline must be "expected" or "metadata.<key>"')
        self.baseline = baseline

    def definition(self) -> dict[str, Any]:
        return {**super().definition(), "baseline": self.baseline}

    def values(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        values = super().values(arguments)
        if self.baseline == "expected":
            values["baseline"] = arguments.get("expected")
        else:
            key = self.baseline.removeprefix("metadata.")
            values["baseline"] = (arguments.get("metadata") or {}).get(key)
        return values

    def missing(self, values: Mapping[str, Any]) -> str | None:
        if values.get("baseline") in (None, ""):
            return (
                f"pairwise judge {self.name!r} needs an answer to compare with in {self.baseline}"
            )
        return super().missing(values)

    def asks(self, values: Mapping[str, Any]) -> list[dict[str, Any]]:
        output, baseline = values.get("output"), values.get("baseline")
        return [
            self.ask({**values, "answer_a": output, "answer_b": baseline}),
            self.ask({**values, "answer_a": baseline, "answer_b": output}),
        ]

    def score(self, values: Mapping[str, Any], responses: Sequence[Response]) -> Score:
        keys = list(self.choices)
        verdicts = [read_verdict(response, keys) for response in responses]
        for verdict, response in zip(verdicts, responses, strict=True):
            if verdict.choice is None:
                return self.unusable(verdict, response)
        first, second = (self.choices[v.choice or ""] for v in verdicts)
        # The output is answer A in the first order and answer B in the second.
        value = (first + (1.0 - second)) / 2
        label = "win" if value > 0.5 else "loss" if value < 0.5 else "tie"
        rationale = "\n\n".join(
            f"[{order}] {v.reasoning}"
            for order, v in zip(("output first", "output second"), verdicts, strict=True)
            if v.reasoning
        )
        metadata = {
            **self.about(responses),
            "verdicts": [v.choice for v in verdicts],
            "consistent": first == 1.0 - second,
        }
        return Score(self.name, value, label=label, rationale=rationale or None, metadata=metadata)


def pairwise(
    name: str = "pairwise",
    model: str | Model | None = None,
    *,
    baseline: str = "expected",
    prompt: str | None = None,
    **options: Any,
) -> Judge:
    """Is the output better than a baseline answer (``expected``, or ``metadata.<key>``)?

    The judge sees the two answers as A and B, twice, with their positions swapped, and the
    score is the output's mean result: 1.0 when it wins both times, 0.0 when it loses both,
    0.5 for a tie or when the verdict follows the position (label ``win``, ``loss``, ``tie``;
    metadata ``verdicts`` and ``consistent``). Its prompt may use ``{{input}}``,
    ``{{answer_a}}``, ``{{answer_b}}``, ``{{expected}}``, ``{{metadata.key}}`` and
    ``{{context}}``; the choices are fixed: ``A``, ``B``, ``tie``. ``options`` are those of
    `judge`.
    """
    template = PromptTemplate(prompt or PAIRWISE_PROMPT, PAIRWISE_NAMES)
    classifier = PairwiseClassifier(
        name,
        template,
        dict(PAIRWISE_CHOICES),
        model or default_model(),
        baseline=baseline,
        **_options(options),
    )
    return _as_judge(classifier)


pairwise.__doc__ = BUILTIN_PROMPTS["pairwise"].document(pairwise.__doc__)
