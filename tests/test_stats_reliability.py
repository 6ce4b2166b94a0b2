"""Agreement between several reviewers: hand-computed small cases, degenerate ones, and a
cross-check against scikit-learn's kappa and the `krippendorff` package on random data."""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import Literal

import pytest
from pytest import approx

from assay.statistics import (
    cohens_kappa,
    krippendorff_alpha,
    percent_agreement,
    rater_agreement,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics")
krippendorff = pytest.importorskip("krippendorff")
np = pytest.importorskip("numpy")


def _units(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[dict[Hashable, Hashable]]:
    return [{"a": x, "b": y} for x, y in zip(a, b, strict=True)]


def test_two_reviewers_by_hand() -> None:
    # 4 items: yes/yes, yes/no, no/no, no/no. p_o = 3/4; marginals a: yes 2, no 2; b: yes 1,
    # no 3; p_e = (2*1 + 2*3) / 16 = 1/2; kappa = (3/4 - 1/2) / (1/2) = 0.5.
    # alpha (nominal): coincidences yes-yes 2, no-no 4, yes-no 1, no-yes 1; n = 8, n_yes = 3,
    # n_no = 5; alpha = 1 - (n - 1) * 2 / (2 * 3 * 5) = 1 - 14/30 = 0.533333.
    found = rater_agreement(_units(["y", "y", "n", "n"], ["y", "n", "n", "n"]), seed=1)
    assert found.n == 4 and found.raters == 2
    assert found.percent.value == approx(0.75)
    assert found.kappa.value == approx(0.5)
    assert found.alpha.value == approx(1 - 14 / 30)
    assert found.kappa.low is not None and found.kappa.high is not None
    assert found.kappa.value is not None
    assert found.kappa.low <= found.kappa.value <= found.kappa.high
    assert [(p.a, p.b, p.n) for p in found.pairs] == [("a", "b", 4)]
    assert found.pairs[0].kappa.value == approx(0.5)


def test_weighted_kappa_and_interval_alpha_by_hand() -> None:
    # Scale 1..3; pairs (1,1), (2,3), (3,3), (1,2). Linear weights w = |i-j|/2:
    # observed = (0 + .5 + 0 + .5) / 4 = .25; a marginals 1:2, 2:1, 3:1; b 1:1, 2:1, 3:2;
    # expected = sum w_ij a_i b_j / 16 = (1*1*.5 + 1*2*1 + 1*1*.5 + 1*2*.5 + 1*1*1 + 1*1*.5
    # ... ) computed by the existing cohens_kappa: the report must agree with it.
    a, b = [1, 2, 3, 1], [1, 3, 3, 2]
    ordinal = rater_agreement(_units(a, b), "ordinal", order=[1, 2, 3])
    assert ordinal.kappa.value == approx(cohens_kappa(a, b, weights="linear", labels=[1, 2, 3]))
    interval = rater_agreement(_units(a, b), "interval")
    assert interval.kappa.value == approx(cohens_kappa(a, b, weights="quadratic"))
    # interval alpha by hand: values 1,1,2,3,3,3,1,2 -> n = 8, mean = 2; D_e numerator
    # 2 n sum n_c (c - mean)^2 = 16 * (3*1 + 2*0 + 3*1) = 96; observed: pairs (2,3) and (1,2)
    # each give 2 * 1 (both orders) -> 4; alpha = 1 - 7 * 4 / 96 = 0.708333.
    assert interval.alpha.value == approx(1 - 7 * 4 / 96)
    assert interval.alpha.value == approx(krippendorff_alpha([a, b], "interval"))


def test_degenerate_cases() -> None:
    one_category = rater_agreement(_units(["y"] * 5, ["y"] * 5))
    assert one_category.percent.value == 1.0
    assert one_category.kappa.value is None and one_category.alpha.value is None
    single = rater_agreement(_units(["y"], ["n"]))
    assert single.n == 1 and single.percent.value == 0.0
    assert single.percent.low is None and single.percent.high is None  # no interval on 1 item
    nothing = rater_agreement([{"a": "y"}, {"b": "n"}])
    assert nothing.n == 0 and nothing.percent.value is None and nothing.pairs == ()
    assert percent_agreement([["y", None], [None, "n"]]) is None
    assert percent_agreement([["y", "n", "y"], ["y", "y", None], ["y", "n", None]]) == approx(
        (1 + 1 / 3) / 2
    )


def test_more_than_two_reviewers_use_the_first_two_ratings_for_kappa() -> None:
    units: list[dict[Hashable, Hashable]] = [
        {"a": "y", "b": "y", "c": "n"},
        {"b": "n", "c": "n"},
        {"c": "y", "a": "n"},
    ]
    found = rater_agreement(units)
    first_two = [("y", "y"), ("n", "n"), ("y", "n")]
    assert found.kappa.value == approx(
        cohens_kappa([x for x, _ in first_two], [y for _, y in first_two])
    )
    assert found.alpha.value == approx(
        krippendorff_alpha([["y", None, "n"], ["y", "n", None], ["n", "n", "y"]])
    )
    assert {(p.a, p.b): p.n for p in found.pairs} == {("a", "b"): 1, ("a", "c"): 2, ("b", "c"): 2}


@pytest.mark.parametrize("seed", range(8))
def test_matches_reference_implementations_on_random_data(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(5, 60)
    categories = rng.randint(2, 5)
    a = [rng.randrange(categories) for _ in range(n)]
    b = [x if rng.random() < 0.6 else rng.randrange(categories) for x in a]
    labels = list(range(categories))
    nominal = rater_agreement(_units(a, b), "nominal", resamples=50)
    reference = sklearn_metrics.cohen_kappa_score(a, b, labels=labels)
    if nominal.kappa.value is None:
        assert np.isnan(reference) or reference == approx(0.0)
    else:
        assert nominal.kappa.value == approx(reference)
    ordinal = rater_agreement(_units(a, b), "ordinal", order=labels, resamples=50)
    assert ordinal.kappa.value == approx(
        sklearn_metrics.cohen_kappa_score(a, b, labels=labels, weights="linear")
    )
    raters = rng.randint(2, 4)
    matrix = [
        [rng.randrange(categories) if rng.random() < 0.8 else None for _ in range(n)]
        for _ in range(raters)
    ]
    units: list[dict[Hashable, Hashable]] = [
        {r: matrix[r][u] for r in range(raters) if matrix[r][u] is not None} for u in range(n)
    ]
    data = np.array([[np.nan if v is None else v for v in row] for row in matrix], dtype=float)
    levels: tuple[Literal["nominal", "ordinal", "interval"], ...] = (
        "nominal",
        "ordinal",
        "interval",
    )
    for level in levels:
        found = rater_agreement(units, level, resamples=20, order=labels, pairs=False)
        try:
            expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        except (ValueError, ZeroDivisionError):
            expected = None
        if found.alpha.value is None:
            assert expected is None or np.isnan(expected)
        else:
            assert found.alpha.value == approx(expected, abs=1e-9)


def test_the_bootstrap_is_repeatable_and_covers_the_estimate() -> None:
    rng = random.Random(3)
    a = [rng.choice("xyz") for _ in range(200)]
    b = [x if rng.random() < 0.7 else rng.choice("xyz") for x in a]
    one = rater_agreement(_units(a, b), seed=7)
    two = rater_agreement(_units(a, b), seed=7)
    assert one == two
    assert one.resamples == 1000
    for figure in (one.percent, one.kappa, one.alpha):
        assert figure.low is not None and figure.high is not None and figure.value is not None
        assert figure.low < figure.value < figure.high
        assert figure.high - figure.low < 0.3
