"""assay.statistics against hand-computed values, published examples and invariants.

Every expected number is worked out in the comment next to it (or cited), so a reader can check
it without running anything; scipy and friends were used only to double-check while writing.
"""

from __future__ import annotations

import math
from typing import Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.statistics import (
    Confusion,
    clipped,
    clustered_mean_interval,
    cohens_kappa,
    confusion,
    krippendorff_alpha,
    mcnemar,
    mean_interval,
    mean_pass_at_k,
    mean_pass_hat_k,
    normal_cdf,
    normal_quantile,
    paired_difference,
    pass_at_k,
    pass_hat_k,
    per_case_variance,
    precision_recall_f1,
    proportion_interval,
    t_cdf,
    t_quantile,
    t_two_sided_p,
)

approx = pytest.approx

# --- distributions ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("df", "table"),
    [
        # two-sided 95% critical values from any t table
        (1, 12.7062),
        (2, 4.3027),
        (3, 3.1824),
        (4, 2.7764),
        (10, 2.2281),
        (30, 2.0423),
        (1000, 1.9623),
    ],
)
def test_t_quantile_matches_the_table(df: int, table: float) -> None:
    assert t_quantile(0.975, df) == approx(table, abs=5e-5)
    assert t_quantile(0.025, df) == approx(-table, abs=5e-5)


def test_t_quantile_closed_forms() -> None:
    # df = 1 (Cauchy): t_p = tan(pi (p - 1/2)); p = 0.975 -> cot(0.025 pi) = 12.706204736174...
    assert t_quantile(0.975, 1) == approx(1 / math.tan(0.025 * math.pi), rel=1e-12)
    # df = 2: t_p = (2p - 1) / sqrt(2 p (1 - p)); p = 0.975 -> 0.95 / sqrt(0.04875) = 4.30265273
    assert t_quantile(0.975, 2) == approx(0.95 / math.sqrt(0.04875), rel=1e-10)
    # df = 2, p = 0.9: 0.8 / sqrt(0.18) = 1.885618083
    assert t_quantile(0.9, 2) == approx(0.8 / math.sqrt(0.18), rel=1e-10)
    assert t_quantile(0.5, 7) == 0.0


@pytest.mark.parametrize(
    ("p", "df", "table"),
    [
        (0.95, 3, 2.353363),  # one-sided 95%, used by a 90% interval with n = 4
        (0.95, 4, 2.131847),
        (0.995, 5, 4.032143),
        (0.9, 20, 1.325341),
        (0.999, 1, 318.308839),
    ],
)
def test_t_quantile_other_levels(p: float, df: int, table: float) -> None:
    assert t_quantile(p, df) == approx(table, abs=2e-6)


def test_t_quantile_tends_to_the_normal() -> None:
    z = 1.959963984540054  # normal 97.5% point
    # Cornish-Fisher first term: t ~ z + (z^3 + z) / (4 df); df = 1e7 adds 2.37e-7
    assert t_quantile(0.975, 10_000_000) == approx(z + (z**3 + z) / 4e7, abs=1e-12)
    assert t_quantile(0.975, 1e12) == approx(z, abs=1e-11)
    # both sides of the switch to the series at df = 1e6 agree to 1e-10
    assert t_quantile(0.975, 999_999) == approx(t_quantile(0.975, 1_000_001), abs=1e-10)
    assert t_cdf(1.5, 999_999) == approx(t_cdf(1.5, 1_000_001), abs=1e-12)


def test_t_cdf_closed_forms() -> None:
    # df = 1: F(t) = 1/2 + atan(t) / pi -> F(1) = 0.75
    assert t_cdf(1.0, 1) == approx(0.75, rel=1e-13)
    # df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)) -> F(1) = 0.5 + 1 / (2 sqrt 3) = 0.788675134595
    assert t_cdf(1.0, 2) == approx(0.5 + 1 / (2 * math.sqrt(3)), rel=1e-13)
    # df = 4: F(t) = 1/2 + 3/8 u (1 - u^2/12) / ... ; with t = sqrt 2: x = t / sqrt(1 + t^2/4)
    # = 1.154701, F = 0.5 + 0.375 * 1.154701 * (1 - 2 / 18) = 0.884900 -> two-sided p 0.230200
    assert t_cdf(math.sqrt(2), 4) == approx(0.8849001794597506, rel=1e-12)
    assert t_two_sided_p(math.sqrt(2), 4) == approx(0.2301996410804988, rel=1e-11)
    assert t_cdf(0.0, 3) == 0.5
    assert t_cdf(-math.inf, 3) == 0.0
    assert t_cdf(math.inf, 3) == 1.0
    assert t_two_sided_p(math.inf, 5) == 0.0


def test_normal() -> None:
    assert normal_quantile(0.975) == approx(1.959963984540054, rel=1e-14)
    assert normal_cdf(1.96) == approx(0.9750021048517795, rel=1e-14)
    # erfc keeps the far tail, where 1 - cdf(8) would be lost: Phi(-8) = 6.220961e-16
    assert normal_cdf(-8.0) == approx(6.220960574271785e-16, rel=1e-12)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_quantiles_refuse_bad_probabilities(bad: float) -> None:
    with pytest.raises(ValueError):
        t_quantile(bad, 5)
    with pytest.raises(ValueError):
        normal_quantile(bad)


@pytest.mark.parametrize("bad_df", [0, -1, math.nan, math.inf])
def test_t_refuses_bad_degrees_of_freedom(bad_df: float) -> None:
    with pytest.raises(ValueError):
        t_quantile(0.9, bad_df)
    with pytest.raises(ValueError):
        t_cdf(1.0, bad_df)


@given(
    p=st.floats(min_value=1e-9, max_value=1 - 1e-9),
    df=st.one_of(st.integers(1, 200), st.floats(min_value=0.5, max_value=1e8)),
)
@settings(max_examples=300, deadline=None)
def test_t_quantile_inverts_the_cdf(p: float, df: float) -> None:
    t = t_quantile(p, df)
    assert t_cdf(t, df) == approx(p, rel=1e-9, abs=1e-15)
    q = 1 - p  # rounded; 1 - q is then its exact complement
    assert t_quantile(q, df) == approx(-t_quantile(1 - q, df), rel=1e-12, abs=1e-14)


# --- means ----------------------------------------------------------------------------------


def test_mean_interval_by_hand() -> None:
    # [1, 2, 3, 4]: mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; s^2 = 5/3,
    # s = 1.290994; se = s / sqrt 4 = 0.645497; t(0.975, 3) = 3.182446; half width 2.054260
    est = mean_interval([1, 2, 3, 4])
    assert est.mean == 2.5
    assert est.se == approx(0.6454972, rel=1e-6)
    assert est.low == approx(0.4457397, rel=1e-6)
    assert est.high == approx(4.5542603, rel=1e-6)
    assert (est.n, est.clusters, est.df, est.confidence) == (4, 4, 3, 0.95)
    assert est.half_width == approx(2.0542603, rel=1e-6)
    # 90%: t(0.95, 3) = 2.353363; half width 2.353363 * 0.645497 = 1.519090
    est90 = mean_interval([1, 2, 3, 4], confidence=0.9)
    assert [est90.low, est90.high] == approx([0.980910, 4.019090], abs=1e-6)


def test_mean_interval_edge_cases() -> None:
    empty = mean_interval([])
    assert (empty.mean, empty.se, empty.low, empty.high, empty.n) == (None, None, None, None, 0)
    one = mean_interval([0.7])
    assert (one.mean, one.se, one.low, one.high, one.df) == (0.7, None, None, None, None)
    # no variation: a point interval, no division by zero
    flat = mean_interval([0.1, 0.1, 0.1])
    assert (flat.mean, flat.se, flat.low, flat.high) == (0.1, 0.0, 0.1, 0.1)
    booleans = mean_interval([True, False, True, True])  # 0/1 scores are fine
    assert booleans.mean == 0.75


def test_proportion_interval_by_hand() -> None:
    # Wilson, z = 1.959964 (z^2 = 3.841459). 7 of 8: p = 0.875, shrink = 1 + z^2/8 = 1.480182;
    # centre = (0.875 + z^2/16) / shrink = (0.875 + 0.240091) / 1.480182 = 0.753347;
    # half = z * sqrt(0.875 * 0.125 / 8 + z^2 / 256) / shrink
    #      = 1.959964 * sqrt(0.0136719 + 0.0150057) / 1.480182 = 0.224236
    #   -> [0.529112, 0.977583] (the published Wilson interval for 7/8: [0.529, 0.978])
    seven = proportion_interval([True] * 7 + [False])
    assert seven.mean == 0.875
    assert [seven.low, seven.high] == approx([0.529112, 0.977583], abs=1e-5)
    assert seven.se == approx(math.sqrt(0.875 * 0.125 / 8))
    # All pass: the lower end is n / (n + z^2) = 8 / 11.841459 = 0.675593, the upper exactly 1;
    # a t interval would collapse to [1, 1] and claim certainty from eight cases.
    eight = proportion_interval([1.0] * 8)
    assert eight.low == approx(0.675593, abs=1e-6) and eight.high == 1.0
    none = proportion_interval([0.0] * 8)
    assert none.low == 0.0 and none.high == approx(1 - 0.675593, abs=1e-6)
    assert proportion_interval([]).mean is None
    one = proportion_interval([True])
    assert one.low == approx(1 / (1 + 3.841459), abs=1e-6) and one.high == 1.0
    with pytest.raises(ValueError, match="pass/fail"):
        proportion_interval([0.5, 1.0])


def test_clipped_keeps_the_interval_inside_the_range() -> None:
    est = mean_interval([0.5, 1.0, 1.0, 1.0])  # mean 0.875, t interval past 1.0
    assert est.high is not None and est.high > 1.0
    cut = clipped(est, 0.0, 1.0)
    assert (cut.mean, cut.se, cut.low, cut.high) == (est.mean, est.se, est.low, 1.0)
    assert clipped(mean_interval([0.3]), 0.0, 1.0).low is None


@pytest.mark.parametrize("bad", [[1.0, math.nan], [math.inf, 1.0], [1.0, -math.inf]])
def test_mean_interval_refuses_non_finite_values(bad: list[float]) -> None:
    with pytest.raises(ValueError, match=r"values\[\d\] must be finite"):
        mean_interval(bad)
    with pytest.raises(ValueError, match="must be finite"):
        clustered_mean_interval({"case": bad})
    with pytest.raises(ValueError, match="must be finite"):
        per_case_variance({"case": bad})


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="real number"):
        mean_interval(["1"])  # type: ignore[list-item]
    for level in (0.0, 1.0, 95, math.nan):
        with pytest.raises(ValueError, match="confidence"):
            mean_interval([1.0, 2.0], confidence=level)


def test_clustered_interval_by_hand() -> None:
    # Cases A [1, 1], B [0, 1], C [0, 0]: N = 6, G = 3, mean 3/6 = 0.5.
    # Residual sums per case: A +1, B 0, C -1 -> sum of squares 2.
    # se^2 = G/(G-1) * 2 / N^2 = 1.5 * 2 / 36 = 1/12, se = 0.288675; t(0.975, 2) = 4.302653
    # half width 1.242069 -> [-0.742069, 1.742069]
    est = clustered_mean_interval({"A": [1, 1], "B": [0, 1], "C": [0, 0]})
    assert est.mean == 0.5
    assert est.se == approx(math.sqrt(1 / 12), rel=1e-12)
    assert [est.low, est.high] == approx([-0.742069, 1.742069], abs=1e-6)
    assert (est.n, est.clusters, est.df) == (6, 3, 2)
    # The same six values as independent rows: s^2 = 6 * 0.25 / 5 = 0.3, se = sqrt(0.05) = 0.2236
    assert mean_interval([1, 1, 0, 1, 0, 0]).se == approx(math.sqrt(0.05), rel=1e-12)


def test_clustered_interval_unequal_cases() -> None:
    # A [1, 0, 1], B [1], C [0, 0]: N = 6, mean 0.5; residual sums A 0.5, B 0.5, C -1;
    # squares 0.25 + 0.25 + 1 = 1.5; se^2 = 1.5 * 1.5 / 36 = 0.0625, se = 0.25 (statsmodels OLS
    # with cluster-robust errors agrees); half width 4.302653 * 0.25 = 1.075663
    est = clustered_mean_interval({"A": [1, 0, 1], "B": [1], "C": [0, 0]})
    assert est.mean == 0.5
    assert est.se == approx(0.25, rel=1e-12)
    assert est.high == approx(0.5 + 1.075663, abs=1e-6)


def test_clustered_interval_edge_cases() -> None:
    assert clustered_mean_interval({}).mean is None
    assert clustered_mean_interval({"a": [], "b": []}).mean is None
    single = clustered_mean_interval({"a": [1.0, 2.0, 3.0], "empty": []})
    assert (single.mean, single.se, single.low, single.clusters) == (2.0, None, None, 1)
    # empty clusters are ignored rather than counted
    assert clustered_mean_interval({"a": [1.0], "b": [3.0], "c": []}) == mean_interval([1, 3])
    flat = clustered_mean_interval({"a": [0.3, 0.3], "b": [0.3]})
    assert (flat.se, flat.low, flat.high) == (0.0, 0.3, 0.3)


def test_clustered_with_one_trial_per_case_is_the_plain_interval() -> None:
    values = [0.2, 0.9, 0.4, 0.4, 1.0, 0.0, 0.65]
    plain = mean_interval(values)
    clustered = clustered_mean_interval({i: [v] for i, v in enumerate(values)})
    assert clustered == plain
    # mean 3.55 / 7 = 0.507143; squared deviations sum to 0.792143; s^2 = 0.792143 / 6 =
    # 0.132024, s = 0.363351; se = s / sqrt 7 = 0.137334
    assert plain.se == approx(0.137334, abs=1e-6)


def test_per_case_variance() -> None:
    spread = per_case_variance({"a": [1, 2, 3], "b": [5], "c": [], "d": [0, 0, 1, 1]})
    # a: mean 2, squared deviations 1 + 0 + 1 = 2, / (3 - 1) = 1
    assert (spread["a"].n, spread["a"].mean, spread["a"].variance, spread["a"].sd) == (3, 2, 1, 1)
    assert (spread["b"].n, spread["b"].mean, spread["b"].variance, spread["b"].sd) == (
        1,
        5,
        None,
        None,
    )
    assert (spread["c"].n, spread["c"].mean, spread["c"].variance) == (0, None, None)
    # d: mean 0.5, squares 4 * 0.25 = 1, / 3 = 0.333333
    assert spread["d"].variance == approx(1 / 3)
    assert list(spread) == ["a", "b", "c", "d"]


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)


@given(values=st.lists(finite, min_size=1, max_size=40))
def test_interval_contains_the_mean(values: list[float]) -> None:
    est = mean_interval(values)
    assert est.mean is not None
    assert min(values) <= est.mean <= max(values)
    if len(values) >= 2:
        assert est.low is not None and est.high is not None and est.se is not None
        assert est.low <= est.mean <= est.high
        assert est.se >= 0


@given(values=st.lists(finite, min_size=2, max_size=40), shift=finite)
def test_shifting_the_values_shifts_the_interval(values: list[float], shift: float) -> None:
    before = mean_interval(values)
    after = mean_interval([v + shift for v in values])
    assert before.mean is not None and after.mean is not None
    assert before.se is not None and after.se is not None
    assert before.low is not None and after.low is not None
    scale = 1e-9 * (1 + max(abs(v) for v in values) + abs(shift))
    assert after.mean == approx(before.mean + shift, abs=scale)
    assert after.se == approx(before.se, abs=scale)
    assert after.low == approx(before.low + shift, abs=20 * scale)


@given(values=st.lists(finite, min_size=0, max_size=30))
def test_singleton_clusters_equal_the_plain_interval(values: list[float]) -> None:
    assert clustered_mean_interval({i: [v] for i, v in enumerate(values)}) == mean_interval(values)


# --- paired comparison ----------------------------------------------------------------------


def test_paired_difference_by_hand() -> None:
    # (a, b): differences b - a = [1, 0, 2, -1, 3]; mean 1; squared deviations 0+1+1+4+4 = 10;
    # s^2 = 10/4 = 2.5; se = sqrt(2.5 / 5) = 0.707107; t = 1 / 0.707107 = 1.414214 on 4 df;
    # two-sided p = 0.230200 (see the df = 4 closed form above); t(0.975, 4) = 2.776445,
    # half width 1.963243 -> [-0.963243, 2.963243]: not significant.
    result = paired_difference([(1, 2), (2, 2), (3, 5), (4, 3), (0, 3)])
    assert (result.n, result.mean_a, result.mean_b, result.delta) == (5, 2.0, 3.0, 1.0)
    assert result.se == approx(math.sqrt(0.5), rel=1e-12)
    assert [result.low, result.high] == approx([-0.963243, 2.963243], abs=1e-6)
    assert result.p_value == approx(0.230200, abs=1e-6)
    assert result.significant is False
    assert (result.improved, result.regressed, result.unchanged) == (3, 1, 1)


def test_paired_difference_significant() -> None:
    # differences [1, 2, 3, 2, 2]: mean 2; squares 1+0+1+0+0 = 2; s^2 = 0.5; se = sqrt(0.1) =
    # 0.316228; t = 6.324555 on 4 df; F(t) = 0.5 + 0.375 * x * (1 - t^2 / (12 (1 + t^2 / 4)))
    # with x = t / sqrt(11) = 1.906925 -> 0.5 + 0.375 * 1.906925 * 0.696970 = 0.998401,
    # p = 2 * (1 - F) = 0.003198; interval 2 +- 2.776445 * 0.316228 = [1.122011, 2.877989]
    result = paired_difference([(0, 1), (0, 2), (0, 3), (0, 2), (0, 2)])
    assert result.delta == 2.0
    assert result.p_value == approx(0.003198, abs=1e-6)
    assert result.significant is True
    assert [result.low, result.high] == approx([1.122011, 2.877989], abs=1e-6)
    assert (result.improved, result.regressed, result.unchanged) == (5, 0, 0)
    # A stricter level: at 99.9% the interval (t(0.9995, 4) = 8.610302) contains 0
    strict = paired_difference([(0, 1), (0, 2), (0, 3), (0, 2), (0, 2)], confidence=0.999)
    assert strict.significant is False
    assert strict.low is not None and strict.low < 0


def test_paired_difference_tolerance() -> None:
    pairs = [(0.3, 0.1 + 0.2), (0.5, 0.5 + 1e-12), (0.5, 0.6), (0.5, 0.4)]
    default = paired_difference(pairs)  # tolerance 1e-9 absorbs float noise
    assert (default.improved, default.regressed, default.unchanged) == (1, 1, 2)
    exact = paired_difference(pairs, tolerance=0.0)
    assert (exact.improved, exact.regressed, exact.unchanged) == (3, 1, 0)
    coarse = paired_difference(pairs, tolerance=0.2)
    assert (coarse.improved, coarse.regressed, coarse.unchanged) == (0, 0, 4)
    with pytest.raises(ValueError, match="tolerance"):
        paired_difference(pairs, tolerance=-1.0)


def test_paired_difference_edge_cases() -> None:
    empty = paired_difference([])
    assert (empty.n, empty.delta, empty.p_value, empty.significant) == (0, None, None, False)
    one = paired_difference([(0.25, 0.75)])
    assert (one.delta, one.se, one.p_value, one.significant, one.improved) == (
        0.5,
        None,
        None,
        False,
        1,
    )
    same = paired_difference([(1, 1), (0, 0), (0.5, 0.5)])
    assert (same.delta, same.se, same.p_value, same.significant) == (0.0, 0.0, 1.0, False)
    # a constant non-zero difference: se 0, the limit of the t test is p = 0
    shifted = paired_difference([(0, 1), (1, 2), (2, 3)])
    assert (shifted.delta, shifted.low, shifted.high, shifted.p_value) == (1.0, 1.0, 1.0, 0.0)
    assert shifted.significant is True
    with pytest.raises(ValueError, match=r"pairs\[1\]\[0\] must be finite"):
        paired_difference([(1, 2), (math.nan, 2)])
    with pytest.raises(ValueError, match="overflows"):
        paired_difference([(-1e308, 1e308), (0, 0)])


@given(values=st.lists(finite, min_size=0, max_size=30))
def test_paired_difference_of_identical_lists_is_zero(values: list[float]) -> None:
    result = paired_difference([(v, v) for v in values])
    assert (result.improved, result.regressed, result.unchanged) == (0, 0, len(values))
    assert result.significant is False
    if values:
        assert result.delta == 0.0
    if len(values) >= 2:
        assert (result.se, result.low, result.high, result.p_value) == (0.0, 0.0, 0.0, 1.0)


@given(pairs=st.lists(st.tuples(finite, finite), min_size=2, max_size=30))
def test_swapping_sides_negates_the_comparison(pairs: list[tuple[float, float]]) -> None:
    forward = paired_difference(pairs)
    backward = paired_difference([(b, a) for a, b in pairs])
    assert forward.delta is not None and backward.delta is not None
    assert backward.delta == approx(-forward.delta, abs=1e-6)
    assert (backward.improved, backward.regressed) == (forward.regressed, forward.improved)
    assert forward.p_value is not None and backward.p_value is not None
    assert backward.p_value == approx(forward.p_value, abs=1e-9)


# --- McNemar ---------------------------------------------------------------------------------


def _pairs(b: int, c: int, concordant: int = 5) -> list[tuple[bool, bool]]:
    """b pairs pass -> fail, c pairs fail -> pass, and some concordant pairs of each kind."""
    return (
        [(True, False)] * b
        + [(False, True)] * c
        + [(True, True)] * concordant
        + [(False, False)] * concordant
    )


def test_mcnemar_exact_on_a_small_table() -> None:
    # b = 2, c = 8: 10 discordant pairs < 25 -> exact binomial test with p = 1/2:
    # P(X <= 2) = (C(10,0) + C(10,1) + C(10,2)) / 2^10 = (1 + 10 + 45) / 1024 = 56/1024;
    # two-sided p = 2 * 56 / 1024 = 0.109375
    result = mcnemar(_pairs(2, 8))
    assert (result.n, result.b, result.c, result.method) == (20, 2, 8, "exact")
    assert (result.regressed, result.improved) == (2, 8)
    assert result.statistic == 2.0
    assert result.p_value == approx(0.109375, rel=1e-12)
    assert result.significant is False
    # b = 0, c = 9: p = 2 * 1 / 2^9 = 0.00390625
    assert mcnemar(_pairs(0, 9)).p_value == approx(0.00390625, rel=1e-12)
    assert mcnemar(_pairs(0, 9)).significant is True


def test_mcnemar_chi_square_on_a_larger_table() -> None:
    # b = 25, c = 10: 35 discordant pairs -> chi-square with continuity correction:
    # (|25 - 10| - 1)^2 / 35 = 196 / 35 = 5.6; P(chi2_1 >= 5.6) = erfc(sqrt(2.8)) = 0.0179605
    result = mcnemar(_pairs(25, 10))
    assert (result.b, result.c, result.method) == (25, 10, "chi2")
    assert result.statistic == approx(5.6, rel=1e-12)
    assert result.p_value == approx(0.0179605, abs=1e-7)
    assert result.significant is True
    # forced exact: 2 * sum_{i<=10} C(35, i) / 2^35 = 0.0166738
    assert mcnemar(_pairs(25, 10), method="exact").p_value == approx(0.0166738, abs=1e-7)
    # forced chi-square on the small table: (|2 - 8| - 1)^2 / 10 = 2.5 -> p = 0.1138463
    forced = mcnemar(_pairs(2, 8), method="chi2")
    assert (forced.statistic, forced.method) == (2.5, "chi2")
    assert forced.p_value == approx(0.1138463, abs=1e-7)


def test_mcnemar_edge_cases() -> None:
    balanced = mcnemar(_pairs(15, 15))  # the continuity correction is floored at 0
    assert (balanced.statistic, balanced.p_value, balanced.method) == (0.0, 1.0, "chi2")
    nothing = mcnemar(_pairs(0, 0))
    assert (nothing.b, nothing.c, nothing.p_value, nothing.significant) == (0, 0, 1.0, False)
    assert mcnemar([]).p_value == 1.0
    assert mcnemar([(1, 0), (1, 0), (0, 0)]).b == 2  # 0/1 integers count as outcomes
    with pytest.raises(ValueError, match="bool"):
        mcnemar([(0.5, 1)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="finite"):
        mcnemar([(math.nan, 1)])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="method"):
        mcnemar([], method="fisher")  # type: ignore[arg-type]


@given(b=st.integers(0, 60), c=st.integers(0, 60))
def test_mcnemar_is_symmetric_and_a_probability(b: int, c: int) -> None:
    forward = mcnemar(_pairs(b, c, 1))
    backward = mcnemar(_pairs(c, b, 1))
    assert 0.0 <= forward.p_value <= 1.0
    assert forward.p_value == backward.p_value
    assert forward.method == ("exact" if b + c < 25 else "chi2")


# --- pass@k / pass^k --------------------------------------------------------------------------


def test_pass_at_k_by_hand() -> None:
    assert pass_at_k(5, 2, 1) == approx(0.4)  # 1 - C(3,1)/C(5,1) = 1 - 3/5
    assert pass_at_k(5, 2, 2) == approx(0.7)  # 1 - C(3,2)/C(5,2) = 1 - 3/10
    assert pass_at_k(5, 2, 4) == 1.0  # C(3,4) = 0: four draws must include a pass
    assert pass_at_k(10, 3, 5) == approx(1 - 21 / 252)  # 1 - C(7,5)/C(10,5) = 0.916667
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_hat_k(5, 2, 2) == approx(0.1)  # C(2,2)/C(5,2) = 1/10
    assert pass_hat_k(5, 2, 3) == 0.0  # C(2,3) = 0
    assert pass_hat_k(10, 7, 3) == approx(35 / 120)  # C(7,3)/C(10,3)
    assert pass_hat_k(4, 4, 4) == 1.0


def test_pass_at_k_means_over_cases() -> None:
    outcomes: dict[str, list[bool | int]] = {
        "a": [True, True, False, False, False],  # n 5, c 2: pass@2 0.7, pass^2 0.1
        "b": [True] * 5,  # 1, 1
        "c": [0, 0, 0, 0, 0],  # 0, 0
    }
    at = mean_pass_at_k(outcomes, 2)
    assert at.mean == approx(1.7 / 3)  # 0.566667
    assert at.n == 3
    hat = mean_pass_hat_k(outcomes, 2)
    assert hat.mean == approx(1.1 / 3)  # 0.366667
    # per-case pass^2 values [0.1, 1, 0]: s^2 = ((0.1 - 0.3667)^2 + 0.6333^2 + 0.3667^2) / 2
    # = 0.303333, se = sqrt(0.303333 / 3) = 0.317980
    assert hat.se == approx(0.317980, abs=1e-6)
    assert mean_pass_at_k({}, 3).mean is None


def test_pass_at_k_refuses_impossible_counts() -> None:
    for n, c, k in [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6), (0, 0, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(n, c, k)
        with pytest.raises(ValueError):
            pass_hat_k(n, c, k)
    with pytest.raises(TypeError):
        pass_at_k(5.0, 2, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fewer than k=3"):
        mean_pass_at_k({"short": [True, False]}, 3)
    with pytest.raises(ValueError, match="bool"):
        mean_pass_hat_k({"x": [0.5, 1.0]}, 1)  # type: ignore[list-item]


@given(data=st.data(), n=st.integers(1, 60))
def test_pass_at_k_invariants(data: st.DataObject, n: int) -> None:
    c = data.draw(st.integers(0, n))
    k = data.draw(st.integers(1, n))
    assert pass_at_k(n, c, 1) == approx(c / n)
    assert pass_hat_k(n, c, 1) == approx(c / n)
    assert 0.0 <= pass_hat_k(n, c, k) <= c / n + 1e-12 <= pass_at_k(n, c, k) + 2e-12
    # pass^k of passes is 1 - pass@k of failures
    assert pass_hat_k(n, c, k) == approx(1 - pass_at_k(n, n - c, k), abs=1e-12)
    if k < n:
        assert pass_at_k(n, c, k + 1) >= pass_at_k(n, c, k)
        assert pass_hat_k(n, c, k + 1) <= pass_hat_k(n, c, k)


# --- agreement -------------------------------------------------------------------------------


def test_confusion() -> None:
    table = confusion(pred=["a", "b", "a", "c"], truth=["a", "a", "b", "c"])
    assert table == Confusion(labels=("a", "b", "c"), matrix=((1, 1, 0), (1, 0, 0), (0, 0, 1)))
    assert table.count(truth="a", pred="b") == 1
    assert table.count(truth="b", pred="a") == 1
    assert table.count(truth="z", pred="a") == 0
    assert (table.n, table.accuracy) == (4, 0.5)
    fixed = confusion(["yes"], ["yes"], labels=["no", "yes"])
    assert fixed.matrix == ((0, 0), (0, 1))
    assert confusion([], []).accuracy is None
    with pytest.raises(ValueError, match="not in labels"):
        confusion(["maybe"], ["yes"], labels=["no", "yes"])
    with pytest.raises(ValueError, match="same length"):
        confusion(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="None"):
        confusion([None], ["a"])
    with pytest.raises(ValueError, match="NaN"):
        confusion([math.nan], [1.0])


def test_precision_recall_f1_by_hand() -> None:
    pred = [True, True, False, False, True, False]
    truth = [True, False, True, False, True, False]
    # tp: items 0 and 4; fp: item 1; fn: item 2; tn: items 3 and 5
    scores = precision_recall_f1(pred, truth)
    assert (scores.tp, scores.fp, scores.fn, scores.tn, scores.support) == (2, 1, 1, 2, 3)
    assert scores.precision == approx(2 / 3)
    assert scores.recall == approx(2 / 3)
    assert scores.f1 == approx(2 / 3)  # 2 * 2 / (2 * 2 + 1 + 1)
    # one-vs-rest on a multi-class label: positive "bad"; pred bad x3, of which 1 truly bad;
    # truth has 2 bad -> precision 1/3, recall 1/2, f1 = 2 * 1 / (2 + 2 + 1) = 0.4
    multi = precision_recall_f1(
        pred=["bad", "bad", "ok", "bad", "meh"],
        truth=["bad", "ok", "bad", "meh", "meh"],
        positive="bad",
    )
    assert [multi.precision, multi.recall, multi.f1] == approx([1 / 3, 0.5, 0.4])


def test_precision_recall_f1_edge_cases() -> None:
    nothing_predicted = precision_recall_f1([False, False], [True, False])
    assert (nothing_predicted.precision, nothing_predicted.recall) == (None, 0.0)
    assert nothing_predicted.f1 == 0.0
    no_positives = precision_recall_f1([False, False], [False, False])
    assert (no_positives.precision, no_positives.recall, no_positives.f1) == (None, None, None)
    assert precision_recall_f1([], []).f1 is None
    with pytest.raises(ValueError, match="same length"):
        precision_recall_f1([True], [])


def test_cohens_kappa_textbook_example() -> None:
    # 50 grant proposals, two readers (Wikipedia, "Cohen's kappa"): both yes 20, A yes B no 5,
    # A no B yes 10, both no 15. p_o = 35/50 = 0.7; A says yes 25/50, B 30/50;
    # p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5; kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohens_kappa(a, b) == approx(0.4, rel=1e-12)
    assert cohens_kappa(b, a) == approx(0.4, rel=1e-12)


def test_weighted_kappa_by_hand() -> None:
    # a = [1,1,2,2,3,3], b = [1,2,2,3,3,2]; rows of a each total 2, columns of b total 1, 3, 2,
    # so expected cell (i, j) = 2 * col_j / 36. Unweighted: p_o = 3/6, p_e = (2+6+4)/36 = 1/3,
    # kappa = (1/2 - 1/3) / (2/3) = 0.25.
    # Linear weights |i-j|/2: observed 3 * 0.5 / 6 = 0.25; expected = (1/18)(0+.5+1) +
    # (3/18)(.5+0+.5) + (2/18)(1+.5+0) = 7.5/18; kappa = 1 - 0.25 / (7.5/18) = 0.4.
    # Quadratic weights: observed 3 * 0.25 / 6 = 0.125; expected (1.25 + 1.5 + 2.5) / 18 =
    # 5.25/18; kappa = 1 - 0.125 * 18 / 5.25 = 4/7 = 0.571429.
    a, b = [1, 1, 2, 2, 3, 3], [1, 2, 2, 3, 3, 2]
    assert cohens_kappa(a, b) == approx(0.25, rel=1e-12)
    assert cohens_kappa(a, b, weights="linear") == approx(0.4, rel=1e-12)
    assert cohens_kappa(a, b, weights="quadratic") == approx(4 / 7, rel=1e-12)
    # an unused label on the scale changes the distances: with labels 1..4, |i-j|/3
    assert cohens_kappa(a, b, weights="linear", labels=[1, 2, 3, 4]) == approx(0.4, rel=1e-12)
    with pytest.raises(ValueError, match="weights"):
        cohens_kappa(a, b, weights="cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ordered labels"):
        cohens_kappa(["x", 1], [1, "x"], weights="linear")


def test_cohens_kappa_edge_cases() -> None:
    assert cohens_kappa([], []) is None
    assert cohens_kappa(["a", "a"], ["a", "a"]) is None  # p_e = 1: kappa is 0/0
    assert cohens_kappa(["a", "b", "a"], ["a", "b", "a"]) == 1.0
    # always disagreeing on a balanced 2x2: p_o = 0, p_e = 0.5 -> -1
    assert cohens_kappa(["a", "b"], ["b", "a"]) == approx(-1.0)
    with pytest.raises(ValueError, match="same length"):
        cohens_kappa(["a"], [])


@given(
    pairs=st.lists(
        st.tuples(st.sampled_from("abc"), st.sampled_from("abc")), min_size=1, max_size=40
    )
)
def test_kappa_is_symmetric_and_bounded(pairs: list[tuple[str, str]]) -> None:
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    forward, backward = cohens_kappa(a, b), cohens_kappa(b, a)
    if forward is None:
        assert backward is None
        return
    assert backward == approx(forward, abs=1e-12)
    assert -1.0 - 1e-12 <= forward <= 1.0 + 1e-12
    if a == b:
        assert forward == approx(1.0)


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, missing data (None). Rows are observers, columns units.
_: None = None
RELIABILITY_DATA: list[list[int | None]] = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, _, _, _],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, _, 3],
    [_, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, _],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, _],
]


def test_krippendorff_alpha_nominal_published_example() -> None:
    # Unit 12 has one value: not pairable. Pairable values n = 40; by value n_1 = 9, n_2 = 13,
    # n_3 = 10, n_4 = 5, n_5 = 3. Disagreeing coincidences: unit 2 (2,2,3,2) gives 6 ordered
    # pairs / (4-1) = 2, unit 6 (1,2,3,4) 12 / 3 = 4, unit 8 (1,1,2,1) 6 / 3 = 2 -> total 8.
    # Expected: sum_{c != k} n_c n_k = 40^2 - (81 + 169 + 100 + 25 + 9) = 1216.
    # alpha = 1 - (n - 1) * 8 / 1216 = 1 - 312 / 1216 = 0.743421 (published: 0.743)
    assert krippendorff_alpha(RELIABILITY_DATA) == approx(1 - 312 / 1216, rel=1e-12)


@pytest.mark.parametrize(
    ("level", "published"),
    # the values in Krippendorff (2011); the `krippendorff` package gives the same to 1e-15
    [("ordinal", 0.8153875), ("interval", 0.8491071), ("ratio", 0.7974028)],
)
def test_krippendorff_alpha_other_levels(
    level: Literal["ordinal", "interval", "ratio"], published: float
) -> None:
    assert krippendorff_alpha(RELIABILITY_DATA, level) == approx(published, abs=1e-7)


def test_krippendorff_alpha_binary_two_observers() -> None:
    # Krippendorff (2011), section A: 10 units, two observers, no missing data.
    # Disagreements in units 1, 3, 6, 9 -> o_01 = o_10 = 4; n_0 = 14, n_1 = 6, n = 20;
    # alpha = 1 - (n - 1) o_01 / (n_0 n_1) = 1 - 19 * 4 / 84 = 0.095238 (published: 0.095)
    ratings = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
    assert krippendorff_alpha(ratings) == approx(1 - 76 / 84, rel=1e-12)
    # with two raters, no missing data and binary values, interval alpha equals nominal alpha
    assert krippendorff_alpha(ratings, "interval") == approx(1 - 76 / 84, rel=1e-12)


def test_krippendorff_alpha_edge_cases() -> None:
    assert krippendorff_alpha([]) is None
    assert krippendorff_alpha([[1, _], [_, 2]]) is None  # nothing pairable
    assert krippendorff_alpha([[1, 1, 1], [1, 1, 1]]) is None  # no variation: D_e = 0
    assert krippendorff_alpha([["a", "b", "c"], ["a", "b", "c"], [_, "b", _]]) == 1.0
    with pytest.raises(ValueError, match="rated 2 units"):
        krippendorff_alpha([[1, 2, 3], [1, 2]])
    with pytest.raises(ValueError, match="NaN"):
        krippendorff_alpha([[1.0, math.nan], [1.0, 2.0]])
    with pytest.raises(ValueError, match="finite"):
        krippendorff_alpha([[1.0, math.nan], [1.0, 2.0]], "interval")
    with pytest.raises(TypeError, match="real number"):
        krippendorff_alpha([["a", "b"], ["a", "b"]], "interval")
    with pytest.raises(ValueError, match=">= 0"):
        krippendorff_alpha([[1, -2], [1, 2]], "ratio")
    with pytest.raises(ValueError, match="sorted"):
        krippendorff_alpha([["a", 1], ["a", 2]], "ordinal")
    with pytest.raises(ValueError, match="level"):
        krippendorff_alpha([[1]], "cardinal")  # type: ignore[arg-type]


@given(
    data=st.lists(
        st.lists(st.one_of(st.none(), st.integers(1, 4)), min_size=6, max_size=6),
        min_size=2,
        max_size=4,
    )
)
def test_krippendorff_alpha_ignores_rater_and_unit_order(data: list[list[int | None]]) -> None:
    alpha = krippendorff_alpha(data)
    assert krippendorff_alpha(data[::-1]) == (None if alpha is None else approx(alpha))
    assert krippendorff_alpha([row[::-1] for row in data]) == (
        None if alpha is None else approx(alpha)
    )
    if alpha is not None:
        assert alpha <= 1.0 + 1e-12


# --- the package does not shadow the SDK's `assay.stats()` ------------------------------------


def test_sdk_stats_function_is_not_shadowed() -> None:
    import assay
    import assay.statistics as package

    assert callable(assay.stats) and isinstance(assay.stats(), dict)
    assert package.mean_interval is mean_interval
