"""Statistics for evals and judge calibration, on the standard library alone.

Estimates: ``mean_interval`` (Student t; ``mean_interval_from_sums`` from SQL sums),
``proportion_interval`` (Wilson, for pass/fail),
``clipped`` (an interval cut to the range a score can take), ``clustered_mean_interval``
(cluster-robust, for several trials per case), ``per_case_variance``.
Comparisons against a baseline:
``paired_difference`` (paired t, counts of improved / regressed / unchanged rows) and ``mcnemar``
(pass/fail; exact binomial below 25 discordant pairs, else chi-square with continuity
correction). Repeated trials: ``pass_at_k``, ``pass_hat_k`` and their means over cases.
Agreement: ``confusion``, ``precision_recall_f1``, ``cohens_kappa``, ``krippendorff_alpha``,
``percent_agreement``; between several people, each figure with a bootstrap interval and per pair
of raters: ``rater_agreement`` (and ``bootstrap_interval`` for a figure of one's own).
Calibration of a judge against people: ``calibration_figures`` (confusion, accuracy, per-class
precision / recall / F1, macro-F1, kappa, MAE and Spearman, each with a bootstrap interval).
Paired pass/fail differences: ``newcombe_paired_difference`` (Newcombe's hybrid score interval).
Percentiles: ``percentile_interval`` (nearest rank, with a distribution-free order-statistic
interval), ``order_statistic_ranks``, ``nearest_rank``.
Distributions: ``t_quantile``, ``t_cdf``, ``normal_quantile``, ``normal_cdf``.

Conventions: NaN or infinite input raises ValueError; a statistic that the data cannot support
(no values, a single value, no variation to measure agreement on) is None, never NaN.
"""

from assay.statistics._agreement import (
    Confusion,
    PrecisionRecallF1,
    cohens_kappa,
    confusion,
    krippendorff_alpha,
    precision_recall_f1,
)
from assay.statistics._calibration import (
    CalibrationFigures,
    PairedProportionDifference,
    calibration_figures,
    newcombe_paired_difference,
)
from assay.statistics._dist import normal_cdf, normal_quantile, t_cdf, t_quantile, t_two_sided_p
from assay.statistics._means import (
    CaseSpread,
    Estimate,
    clipped,
    clustered_mean_interval,
    mean_interval,
    mean_interval_from_sums,
    per_case_variance,
    proportion_interval,
)
from assay.statistics._paired import Comparison, McNemarResult, mcnemar, paired_difference
from assay.statistics._passk import mean_pass_at_k, mean_pass_hat_k, pass_at_k, pass_hat_k
from assay.statistics._quantiles import (
    Quantile,
    nearest_rank,
    order_statistic_ranks,
    percentile_interval,
)
from assay.statistics._reliability import (
    Interval,
    PairAgreement,
    RaterAgreement,
    bootstrap_interval,
    percent_agreement,
    rater_agreement,
)

__all__ = [
    "CalibrationFigures",
    "PairedProportionDifference",
    "calibration_figures",
    "newcombe_paired_difference",
    "CaseSpread",
    "Comparison",
    "Confusion",
    "Estimate",
    "Interval",
    "McNemarResult",
    "PairAgreement",
    "PrecisionRecallF1",
    "Quantile",
    "RaterAgreement",
    "bootstrap_interval",
    "clipped",
    "clustered_mean_interval",
    "cohens_kappa",
    "confusion",
    "krippendorff_alpha",
    "mcnemar",
    "mean_interval",
    "mean_interval_from_sums",
    "mean_pass_at_k",
    "mean_pass_hat_k",
    "normal_cdf",
    "normal_quantile",
    "paired_difference",
    "pass_at_k",
    "pass_hat_k",
    "nearest_rank",
    "order_statistic_ranks",
    "per_case_variance",
    "percentile_interval",
    "percent_agreement",
    "precision_recall_f1",
    "proportion_interval",
    "rater_agreement",
    "t_cdf",
    "t_quantile",
    "t_two_sided_p",
]
