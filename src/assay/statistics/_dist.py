"""Distribution functions: normal, Student t, chi-square (1 df) and the exact binomial sign test.

Only the standard library. The Student t distribution goes through the regularized incomplete
beta function, evaluated with its continued fraction (modified Lentz, as in Numerical Recipes
``betacf``) to about 1e-14 relative error; the t quantile inverts it with a safeguarded Newton
iteration (bisection whenever a Newton step leaves the bracket), to about 1e-12 relative error.
For df above ``LARGE_DF`` (and |t| below sqrt(df) / 10), where the continued fraction converges
too slowly, the t distribution is related to the normal through the Cornish-Fisher expansion of
Abramowitz and Stegun 26.7.5 (four correction terms; the first omitted term is below 1e-20).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from assay.statistics._checks import finite_float

_STANDARD_NORMAL = NormalDist()
_CF_MAX_ITERATIONS = 100_000
_CF_EPS = 1e-15
_TINY = 1e-300
LARGE_DF = 1e6


def normal_cdf(x: float) -> float:
    """P(Z <= x) for a standard normal Z (via erfc, accurate far into both tails)."""
    x = finite_float(x, "x")
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def normal_quantile(p: float) -> float:
    """The x with P(Z <= x) = p, for 0 < p < 1.

    The standard library's ``NormalDist.inv_cdf``, which is Wichura's algorithm AS 241
    (about 1e-16 relative error).
    """
    p = _check_probability(p)
    return _STANDARD_NORMAL.inv_cdf(p)


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom."""
    df = _check_df(df)
    if math.isnan(t):
        raise ValueError("t must not be NaN")
    tail = _t_upper_tail(abs(t), df)
    return tail if t < 0 else 1.0 - tail


def t_two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|): the two-sided p-value of a t statistic (t may be infinite)."""
    df = _check_df(df)
    if math.isnan(t):
        raise ValueError("t must not be NaN")
    return min(1.0, 2.0 * _t_upper_tail(abs(t), df))


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p for Student's t with ``df`` degrees of freedom, 0 < p < 1."""
    p = _check_probability(p)
    df = _check_df(df)
    if p == 0.5:
        return 0.0
    upper = min(p, 1.0 - p)  # solve for the upper tail, then restore the sign
    t = _t_upper_quantile(upper, df)
    return t if p > 0.5 else -t


def chi2_sf_1df(x: float) -> float:
    """P(X >= x) for a chi-square variable with one degree of freedom (X = Z**2)."""
    if x <= 0.0:
        return 1.0
    return math.erfc(math.sqrt(x / 2.0))


def binomial_two_sided_half(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n trials with success probability 1/2.

    Doubles the smaller tail (the binomial with p = 1/2 is symmetric, so this equals the
    "sum of all outcomes no more likely than the observed one" definition). Integer arithmetic,
    so it is exact up to the final rounding to a float.
    """
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1))
    return min(1.0, (2 * tail) / (1 << n))


def regularized_beta(a: float, b: float, x: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1."""
    if not (a > 0 and b > 0):
        raise ValueError(f"a and b must be positive, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"x must be in [0, 1], got {x}")
    return _betainc(a, b, x, 1.0 - x)


# --- internals -------------------------------------------------------------------------------


def _check_probability(p: float) -> float:
    p = finite_float(p, "p")
    if not 0.0 < p < 1.0:
        raise ValueError(f"p must be strictly between 0 and 1, got {p!r}")
    return p


def _check_df(df: float) -> float:
    value = finite_float(df, "df")
    if value <= 0.0:
        raise ValueError(f"degrees of freedom must be positive, got {df!r}")
    return value


def _betainc(
    a: float, b: float, x: float, y: float, log_x: float | None = None, log_y: float | None = None
) -> float:
    """I_x(a, b) given x and y = 1 - x separately (so neither loses precision to cancellation),
    and optionally their logarithms when the caller knows them more precisely than log(x)."""
    lx = log_x if log_x is not None else (math.log(x) if x > 0.0 else -math.inf)
    ly = log_y if log_y is not None else (math.log(y) if y > 0.0 else -math.inf)
    if lx == -math.inf:
        return 0.0
    if ly == -math.inf:
        return 1.0
    front = math.exp(a * lx + b * ly - _log_beta(a, b))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_continued_fraction(a, b, x) / a
    return 1.0 - front * _beta_continued_fraction(b, a, y) / b


def _log_beta(a: float, b: float) -> float:
    """log B(a, b), without the cancellation of lgamma differences when one argument is large."""
    big, small = max(a, b), min(a, b)
    if big < 1e4:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    # log Gamma(big + small) - log Gamma(big) from Stirling's series; the leading terms combine
    # through log1p so nothing large is subtracted.
    total = big + small
    ratio = (
        (big - 0.5) * math.log1p(small / big)
        + small * math.log(total)
        - small
        + (1.0 / total - 1.0 / big) / 12.0
        - (1.0 / total**3 - 1.0 / big**3) / 360.0
    )
    return math.lgamma(small) - ratio


def _beta_continued_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction for I_x(a, b), by the modified Lentz method."""
    qab = a + b
    qap = a + 1.0
    qam = a - 1.0
    c = 1.0
    d = 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    h = d
    for m in range(1, _CF_MAX_ITERATIONS + 1):
        m2 = 2 * m
        # even step
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        h *= d * c
        # odd step
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + aa / c
        c = c if abs(c) > _TINY else _TINY
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _CF_EPS:
            return h
    raise ArithmeticError(f"incomplete beta continued fraction did not converge (a={a}, b={b})")


def _t_upper_tail(t: float, df: float) -> float:
    """P(T >= t) for t >= 0 (t may be +inf): I_x(df/2, 1/2) / 2 with x = df / (df + t**2)."""
    if math.isinf(t):
        return 0.0
    if t == 0.0:
        return 0.5
    if df > LARGE_DF and t * t < df / 100.0:
        # The continued fraction converges too slowly here; the Cornish-Fisher series is exact
        # to double precision instead. Solve cornish_fisher(z) = t for z, then use the normal.
        z = t
        for _ in range(20):
            step = (_cornish_fisher(z, df) - t) / (1.0 + (3.0 * z * z + 1.0) / (4.0 * df))
            z -= step
            if abs(step) <= 1e-16 * max(1.0, z):
                break
        return 0.5 * math.erfc(z / math.sqrt(2.0))
    # Work with s = t**2 / df in logarithms: x = 1 / (1 + s), y = 1 - x = s / (1 + s).
    log_s = 2.0 * math.log(t) - math.log(df)
    log1p_s = max(log_s, 0.0) + math.log1p(math.exp(-abs(log_s)))  # log(1 + s), no overflow
    log_x = -log1p_s
    log_y = log_s - log1p_s
    return 0.5 * _betainc(df / 2.0, 0.5, math.exp(log_x), math.exp(log_y), log_x, log_y)


def _t_pdf(t: float, df: float) -> float:
    log_norm = math.lgamma((df + 1.0) / 2.0) - math.lgamma(df / 2.0) - 0.5 * math.log(df * math.pi)
    return math.exp(log_norm - (df + 1.0) / 2.0 * math.log1p(t * t / df))


def _cornish_fisher(z: float, df: float) -> float:
    """Abramowitz & Stegun 26.7.5: the t quantile from the normal one, as a series in 1/df."""
    z2 = z * z
    g1 = (z2 + 1.0) * z / 4.0
    g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0
    g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0
    g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0
    return z + (g1 + (g2 + (g3 + g4 / df) / df) / df) / df


def _t_upper_quantile(q: float, df: float) -> float:
    """The t > 0 with P(T >= t) = q, for 0 < q < 1/2."""
    z = -_STANDARD_NORMAL.inv_cdf(q)
    if df > LARGE_DF:
        return _cornish_fisher(z, df)
    if df == 1.0:  # Cauchy: exact closed form
        return 1.0 / math.tan(math.pi * q)
    # Safeguarded Newton on f(t) = tail(t) - q, which decreases in t, from the Cornish-Fisher
    # guess; [low, high] always brackets the root (high starts unbounded and doubles).
    t = _cornish_fisher(z, df) if df >= 3 else z
    low, high = 0.0, math.inf
    for _ in range(2000):
        f = _t_upper_tail(t, df) - q
        if f > 0.0:
            low = t
        elif f < 0.0:
            high = t
        else:
            return t
        density = _t_pdf(t, df)
        step = f / density if density > 0.0 else math.nan  # d tail / dt = -pdf
        candidate = t + step
        if low < candidate < high:
            if abs(step) <= 1e-13 * candidate:  # Newton converges quadratically: done
                return candidate
        elif math.isinf(high):
            candidate = 2.0 * t
            if math.isinf(candidate):  # the quantile is beyond the largest float
                return math.inf
        elif low > 0.0 and high > 4.0 * low:  # bisect, geometrically over wide brackets
            candidate = math.sqrt(low) * math.sqrt(high)
        else:
            candidate = (low + high) / 2.0
        if high - low <= 1e-15 * high < math.inf:  # the bracket has closed
            return candidate
        t = candidate
    return t
