"""Calibration figures against hand-computed values and scikit-learn / scipy, the coverage of
their bootstrap intervals, and Newcombe's interval for paired pass/fail differences."""

from __future__ import annotations

import random

import pytest
from scipy.stats import spearmanr  # type: ignore[import-untyped]
from sklearn.metrics import (  # type: ignore[import-untyped]
    accuracy_score,
    cohen_kappa_score,
    f1_score,
    mean_absolute_error,
    precision_score,
    recall_score,
)

from assay.evals.comparison import compare
from assay.statistics import calibration_figures, newcombe_paired_difference


def test_a_class_the_judge_never_predicts() -> None:
    truth = ["good", "good", "bad", "bad", "meh", "meh"]
    pred = ["good", "good", "bad", "good", "bad", "good"]
    found = calibration_figures(pred, truth, labels=["bad", "good", "meh"])
    assert found.n == 6
    assert found.confusion.matrix == ((1, 1, 0), (0, 2, 0), (1, 1, 0))
    assert found.accuracy.value == pytest.approx(3 / 6)
    assert found.precision["meh"].value is None  # never predicted
    assert found.recall["meh"].value == 0.0
    assert found.f1["meh"].value == 0.0
    assert found.precision["good"].value == pytest.approx(2 / 4)
    assert found.recall["good"].value == pytest.approx(1.0)
    assert found.f1["bad"].value == pytest.approx(2 * 1 / (2 + 1 + 1))
    # macro-F1 over bad (0.5), good (2*2/(4+2+0) = 2/3) and meh (0).
    assert found.macro_f1.value == pytest.approx((0.5 + 2 / 3 + 0.0) / 3)
    # p_o = 1/2; judge marginals bad 2, good 4, meh 0; truth 2, 2, 2: p_e = (4 + 8) / 36.
    assert found.kappa.value == pytest.approx((0.5 - 1 / 3) / (1 - 1 / 3))


def test_perfect_agreement() -> None:
    truth = ["yes", "no"] * 20
    found = calibration_figures(truth, truth)
    assert found.accuracy.value == 1.0 and found.kappa.value == 1.0
    assert found.macro_f1.value == 1.0
    assert (found.kappa.low, found.kappa.high) == (1.0, 1.0)


def test_agreement_below_chance() -> None:
    truth = ["yes", "no"] * 10
    pred = ["no", "yes"] * 10
    found = calibration_figures(pred, truth)
    assert found.accuracy.value == 0.0
    assert found.kappa.value == pytest.approx(-1.0)
    assert found.kappa.high is not None and found.kappa.high < 0


def test_numeric_figures_by_hand() -> None:
    truth = [1.0, 2.0, 3.0, 4.0, 5.0]
    pred = [1.0, 3.0, 3.0, 5.0, 4.0]
    found = calibration_figures(pred, truth, numeric=True, weights="quadratic")
    assert found.mae is not None and found.mae.value == pytest.approx(3 / 5)
    assert found.spearman is not None
    assert found.spearman.value == pytest.approx(spearmanr(truth, pred).statistic)


@pytest.mark.parametrize("seed", range(12))
def test_matches_scikit_learn_on_random_cases(seed: int) -> None:
    rng = random.Random(seed)
    classes = ["a", "b", "c", "d"][: rng.randint(2, 4)]
    n = rng.randint(5, 80)
    truth = [rng.choice(classes) for _ in range(n)]
    pred = [t if rng.random() < 0.6 else rng.choice(classes) for t in truth]
    found = calibration_figures(pred, truth, resamples=50)
    assert found.accuracy.value == pytest.approx(accuracy_score(truth, pred))
    assert found.kappa.value == pytest.approx(cohen_kappa_score(truth, pred))
    assert found.macro_f1.value == pytest.approx(
        f1_score(truth, pred, average="macro", zero_division=0.0)
    )
    for label in found.labels:
        if label in pred:
            assert found.precision[label].value == pytest.approx(
                precision_score(truth, pred, labels=[label], average="macro")
            )
        if label in truth:
            assert found.recall[label].value == pytest.approx(
                recall_score(truth, pred, labels=[label], average="macro")
            )
    scale = [1, 2, 3, 4, 5]
    numbers = [rng.choice(scale) for _ in range(n)]
    guesses = [min(5, max(1, x + rng.choice([-1, 0, 0, 1]))) for x in numbers]
    graded = calibration_figures(
        guesses, numbers, labels=scale, weights="linear", numeric=True, resamples=50
    )
    assert graded.kappa.value == pytest.approx(
        cohen_kappa_score(numbers, guesses, labels=scale, weights="linear")
    )
    assert graded.mae is not None and graded.mae.value == pytest.approx(
        mean_absolute_error(numbers, guesses)
    )
    rho = spearmanr(numbers, guesses).statistic
    if rho == rho:  # scipy gives NaN where a side is constant; ours is None
        assert graded.spearman is not None
        assert graded.spearman.value == pytest.approx(rho)


def test_accuracy_intervals_cover_the_true_value_near_the_nominal_rate() -> None:
    rng = random.Random(7)
    true_accuracy = 0.8
    covered = 0
    runs = 200
    for run in range(runs):
        truth = [rng.choice(["y", "n"]) for _ in range(60)]
        pred = [t if rng.random() < true_accuracy else ("n" if t == "y" else "y") for t in truth]
        found = calibration_figures(pred, truth, resamples=300, seed=run)
        assert found.accuracy.low is not None and found.accuracy.high is not None
        covered += found.accuracy.low <= true_accuracy <= found.accuracy.high
    # 95% nominal; percentile bootstrap at n = 60 runs a little under. 200 runs: sd ~1.5%.
    assert 0.89 <= covered / runs <= 0.99


def test_kappa_intervals_cover_the_true_kappa_near_the_nominal_rate() -> None:
    # Truth yes/no at 1/2, the judge right 85% of the time either way: its answers are yes
    # at 1/2 too, so p_o = 0.85, p_e = 0.5 and the population's kappa is 0.7.
    rng = random.Random(11)
    covered = 0
    runs = 200
    for run in range(runs):
        truth = [rng.choice(["y", "n"]) for _ in range(80)]
        pred = [t if rng.random() < 0.85 else ("n" if t == "y" else "y") for t in truth]
        found = calibration_figures(pred, truth, resamples=300, seed=run)
        assert found.kappa.low is not None and found.kappa.high is not None
        covered += found.kappa.low <= 0.7 <= found.kappa.high
    assert 0.88 <= covered / runs <= 0.99


def test_newcombe_is_never_a_point_when_every_case_moved_one_way() -> None:
    every_one_improved = [(False, True)] * 10
    found = newcombe_paired_difference(every_one_improved)
    assert found.delta == 1.0
    assert found.low is not None and found.high is not None
    assert found.low < 1.0 and found.high == 1.0 and found.low > 0
    unchanged = [(True, True)] * 5 + [(False, False)] * 5
    same = newcombe_paired_difference(unchanged)
    assert same.delta == 0.0 and same.low is not None and same.high is not None
    assert same.low < 0 < same.high


def test_newcombe_covers_the_true_difference_near_the_nominal_rate() -> None:
    rng = random.Random(3)
    # Baseline passes 60%; the candidate flips 15% of passes to fails and 30% of fails to
    # passes: p_b = 0.6 * 0.85 + 0.4 * 0.3 = 0.63, a true difference of 0.03.
    covered = 0
    runs = 400
    for _ in range(runs):
        pairs = []
        for _case in range(40):
            a = rng.random() < 0.6
            b = (rng.random() >= 0.15) if a else (rng.random() < 0.3)
            pairs.append((a, b))
        found = newcombe_paired_difference(pairs)
        assert found.low is not None and found.high is not None
        covered += found.low <= 0.03 <= found.high
    assert 0.92 <= covered / runs <= 0.99


def _rows(values: list[float]) -> list[dict[str, object]]:
    return [
        {"case_key": f"case-{i}", "scores": [{"name": "exact", "value": v}]}
        for i, v in enumerate(values)
    ]


def test_a_comparison_of_pass_fail_scores_where_every_case_regressed() -> None:
    found = compare(_rows([1.0] * 8), _rows([0.0] * 8))["scores"]["exact"]
    assert found["delta"] == -1.0 and found["regressed"] == 8
    # Not the point [-1, -1] of a t interval over equal differences.
    assert found["low"] == -1.0 and -1.0 < found["high"] < 0.0
    assert found["interval"].startswith("Newcombe")
    assert found["test"] == "mcnemar"
    assert found["test_method"] == "McNemar exact binomial, 8 discordant pairs"
    assert found["p_value"] == pytest.approx(2 * 0.5**8)


def test_a_comparison_of_graded_scores_names_the_paired_t_test() -> None:
    found = compare(_rows([0.5, 0.7, 0.2]), _rows([0.6, 0.9, 0.3]))["scores"]["exact"]
    assert found["test"] == "paired t" and found["interval"] == "paired t"
    assert found["test_method"] == "paired t test, 2 degrees of freedom"
