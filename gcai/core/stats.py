"""Statistics for evaluations, surveys and annotator agreement.

Pure functions over plain numbers; results are small dataclasses with
``to_dict``/``from_dict`` so they can be stored as JSON and rendered as tables.
Undefined quantities (e.g. a share of zero items) are ``None`` rather than
``NaN``: ``NaN`` is not valid JSON and PostgreSQL's ``jsonb`` refuses it.

Which library computes what, with references:

- Wilson score interval (Wilson 1927) for a proportion ``p = k/n``:
  ``statsmodels.stats.proportion.proportion_confint(method="wilson")``, which also
  takes the fractional counts used here (abstentions counted as half). It keeps good
  coverage for small ``n`` and shares near 0 or 1, where the normal (Wald) interval
  collapses.
- Exact two-sided binomial test (``scipy.stats.binomtest``): the probability,
  under ``p0``, of all outcomes no more likely than the one observed.
- Holm's step-down correction (Holm 1979):
  ``statsmodels.stats.multitest.multipletests(method="holm")``.
- Cohen's kappa for two raters, ``(p_o - p_e) / (1 - p_e)`` with ``p_e`` from the
  raters' marginal distributions: ``statsmodels.stats.inter_rater.cohens_kappa``.
  Against a fixed chance level ``c`` (a binary judge against coin-flipping,
  ``c = 0.5``) it is written out here: ``kappa = (acc - c) / (1 - c)``. That map is
  increasing, so the Wilson bounds of ``acc`` map to bounds of kappa.
- Fleiss' kappa (Fleiss 1971) for a fixed number of raters per item:
  ``statsmodels.stats.inter_rater.fleiss_kappa``.
- Krippendorff's alpha, nominal (Krippendorff 2011, "Computing Krippendorff's
  Alpha-Reliability"): ``1 - (n - 1) * sum_{c!=k} o_ck / sum_{c!=k} n_c n_k`` over
  the coincidence matrix ``o``; handles missing ratings and any number of raters.
  Written out here: SciPy, statsmodels and scikit-learn do not provide it, and the
  ``krippendorff`` package is GPL-3.0, a copyleft licence this Apache-2.0 project
  does not take on.
- Percentile bootstrap (Efron 1979) over items, with a seeded generator:
  ``scipy.stats.bootstrap(method="percentile")``.
- Student-t interval for a mean, ``mean ± t_{n-1} * sd / sqrt(n)``:
  ``scipy.stats.t.interval`` with ``scipy.stats.sem``.
- Interval for the mean of a bounded scale (Likert ratings): Bayesian bootstrap
  (Rubin 1981), i.e. the posterior of ``sum_i w_i x_i`` with Dirichlet weights ``w``,
  over the n ratings plus half a pseudo-observation at each end of the scale (a weak
  prior that the scale's range is possible). Every draw is a weighted mean of values in
  the scale, so the interval never leaves it; the prior keeps it from collapsing to a
  point when all ratings are equal; with many ratings it approaches the t-interval.
  Written out here (a few lines of NumPy): SciPy and statsmodels have no Bayesian
  bootstrap, and the small packages that do are unmaintained or lack the weighted
  pseudo-observations.
- Minimum sample sizes: below :data:`MIN_N_RATINGS` participants or
  :data:`MIN_N_PAIRS` pairs a number is shown with a warning that it cannot support a
  conclusion (:func:`small_sample_warning`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps
from statsmodels.stats.inter_rater import cohens_kappa as _sm_cohens_kappa
from statsmodels.stats.inter_rater import fleiss_kappa as _sm_fleiss_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint

from gcai.core.serial import Stored

__all__ = [
    "Estimate",
    "MeanEstimate",
    "ProportionTest",
    "binomial_test",
    "bootstrap",
    "bounded_mean_interval",
    "cohen_kappa",
    "cohen_kappa_from_table",
    "fleiss_kappa",
    "holm",
    "kappa_vs_chance",
    "krippendorff_alpha_nominal",
    "mean_t_interval",
    "proportion",
    "proportion_test",
    "side_bias_test",
    "small_sample_warning",
    "wilson_interval",
]


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Estimate(Stored):
    """A point estimate with a confidence interval.

    ``k``/``n`` are the count and the number of items behind it (``k`` may be
    fractional, e.g. abstentions counted as half). ``method`` names how the
    interval was obtained: ``"wilson"``, ``"bootstrap"``, ``"bootstrap-paired"``,
    ``"wilson-kappa"``.
    """

    value: float | None
    lo: float | None
    hi: float | None
    n: int
    k: int | float | None = None  # an int stays an int in the stored form
    method: str = "wilson"
    confidence: float = 0.95


@dataclass(frozen=True, slots=True)
class ProportionTest(Stored):
    """``k`` of ``n`` with its share, Wilson interval and exact binomial test vs ``p0``."""

    k: int
    n: int
    share: float | None
    lo: float
    hi: float
    p0: float
    p_value: float
    confidence: float = 0.95


@dataclass(frozen=True, slots=True)
class MeanEstimate(Stored):
    """Mean of ratings with sample standard deviation and an interval (``method``)."""

    mean: float | None
    sd: float | None
    n: int
    lo: float | None
    hi: float | None
    confidence: float = 0.95
    method: str = "t"


# --------------------------------------------------------------------------- proportions


def _check_counts(k: float, n: int) -> None:
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _defined(value: float) -> float | None:
    """``value`` as a float, or ``None`` where the library returned NaN (undefined)."""
    return float(value) if math.isfinite(value) else None


def wilson_interval(k: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n`` (statsmodels).

    ``n == 0`` gives ``(0.0, 1.0)``: with no data every share is plausible.
    ``k`` may be fractional (the interval only needs the observed share).
    """
    _check_counts(k, n)
    _check_confidence(confidence)
    if n == 0:
        return (0.0, 1.0)
    lo, hi = proportion_confint(k, n, alpha=1.0 - confidence, method="wilson")
    # At k == 0 (k == n) the bound is exactly 0 (1); the library's arithmetic can stop
    # an ulp short of it, and a share of 100% should show an upper bound of 100%.
    return (0.0 if k == 0 else float(lo), 1.0 if k == n else float(hi))


def binomial_test(k: int, n: int, p0: float = 0.5, alternative: str = "two-sided") -> float:
    """Exact binomial test p-value of ``k`` successes in ``n`` trials against ``p0``.

    ``n == 0`` gives 1.0 (no evidence against anything).
    """
    _check_counts(k, n)
    if n == 0:
        return 1.0
    return float(sps.binomtest(int(k), int(n), p0, alternative=alternative).pvalue)


def proportion(k: float, n: int, confidence: float = 0.95) -> Estimate:
    """Share ``k/n`` with its Wilson interval, as an :class:`Estimate`."""
    lo, hi = wilson_interval(k, n, confidence)
    return Estimate(
        value=k / n if n else None,
        lo=lo,
        hi=hi,
        n=n,
        k=k,
        method="wilson",
        confidence=confidence,
    )


def proportion_test(k: int, n: int, p0: float = 0.5, confidence: float = 0.95) -> ProportionTest:
    """Share, Wilson interval and exact two-sided binomial p-value against ``p0``.

    This is the per-question summary of a pairwise survey: ``k`` participants of
    ``n`` (ties excluded by the caller) preferred one side.
    """
    lo, hi = wilson_interval(k, n, confidence)
    return ProportionTest(
        k=k,
        n=n,
        share=k / n if n else None,
        lo=lo,
        hi=hi,
        p0=p0,
        p_value=binomial_test(k, n, p0),
        confidence=confidence,
    )


def side_bias_test(left: int, right: int, confidence: float = 0.95) -> ProportionTest:
    """Test for a left-side (position) bias among decisive answers.

    ``left``/``right`` count decisive answers that chose whatever was shown on
    the left/right. Without a bias the left share is 0.5; the exact binomial
    test says whether the observed share departs from it. Ties and "both bad"
    answers carry no side and must be left out by the caller.
    """
    return proportion_test(left, left + right, p0=0.5, confidence=confidence)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, returned in the input order (statsmodels).

    Controls the family-wise error rate across the ``m`` tests without
    assuming independence; adjusted values are monotone in the raw ones.
    """
    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), method="holm")[1]]


# --------------------------------------------------------------------------- agreement


def kappa_vs_chance(k: float, n: int, chance: float = 0.5, confidence: float = 0.95) -> Estimate:
    """Cohen's kappa of a judge against a fixed chance level.

    ``kappa = (acc - chance) / (1 - chance)`` with ``acc = k/n``. 0 means no
    better than chance, 1 perfect agreement, negative worse than chance. The
    interval is the Wilson interval of ``acc`` pushed through the same
    (increasing, linear) map. ``k`` may be fractional (half-credit scores).
    """
    if not 0.0 <= chance < 1.0:
        raise ValueError(f"chance must be in [0, 1), got {chance}")
    lo, hi = wilson_interval(k, n, confidence)

    def to_kappa(acc: float) -> float:
        return (acc - chance) / (1.0 - chance)

    return Estimate(
        value=to_kappa(k / n) if n else None,
        lo=to_kappa(lo),
        hi=to_kappa(hi),
        n=n,
        k=k,
        method="wilson-kappa",
        confidence=confidence,
    )


def cohen_kappa_from_table(table: Sequence[Sequence[float]] | np.ndarray) -> float | None:
    """Cohen's kappa from a square contingency table (rows rater 1, columns rater 2).

    Computed by statsmodels. ``None`` when undefined: an empty table, or both
    raters always used the same single category (``p_e == 1``).
    """
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError("the contingency table must be square")
    if t.sum() == 0:
        return None
    # p_e == 1 makes the library divide 0 by 0: NaN, mapped to None, without a warning.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _defined(_sm_cohens_kappa(t, return_results=False))


def cohen_kappa(
    rater1: Sequence[Hashable],
    rater2: Sequence[Hashable],
    categories: Sequence[Hashable] | None = None,
) -> float | None:
    """Cohen's kappa for two raters who labelled the same items (aligned sequences).

    ``None`` when undefined (no items, or both raters used one same category).
    """
    if len(rater1) != len(rater2):
        raise ValueError("both raters must label the same items")
    cats = (
        list(categories) if categories is not None else sorted(set(rater1) | set(rater2), key=str)
    )
    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)))
    for a, b in zip(rater1, rater2, strict=True):
        table[index[a], index[b]] += 1
    return cohen_kappa_from_table(table)


def fleiss_kappa(counts: Sequence[Sequence[int]]) -> float | None:
    """Fleiss' kappa from an items x categories table of rating counts (statsmodels).

    Every item must be rated by the same number of raters ``r >= 2`` (use
    :func:`krippendorff_alpha_nominal` when that does not hold).
    ``None`` when undefined (no items, or every rating in one category).
    """
    t = np.asarray(counts, dtype=float)
    if t.size == 0:
        return None
    if t.ndim != 2:
        raise ValueError("counts must be a 2-D items x categories table")
    raters = t.sum(axis=1)
    r = raters[0]
    # Checked here: the library only asserts it (and asserts vanish under ``python -O``).
    if r < 2 or not np.allclose(raters, r):
        raise ValueError("Fleiss' kappa needs the same number (>= 2) of raters per item")
    # Every rating in one category makes P_e == 1: NaN from the library, mapped to None.
    with np.errstate(divide="ignore", invalid="ignore"):
        return _defined(_sm_fleiss_kappa(t, method="fleiss"))


def krippendorff_alpha_nominal(units: Iterable[Iterable[Hashable | None]]) -> float | None:
    """Krippendorff's alpha for nominal data, tolerant of missing ratings.

    ``units`` holds, per item, the values the raters gave it; ``None`` marks a
    missing rating, and items may have different numbers of raters. (For a
    raters x items matrix, pass its transpose.) Items with fewer than two
    values cannot be paired and are ignored, as the method prescribes.

    Coincidences: each item with ``m >= 2`` values adds ``1/(m-1)`` to
    ``o[c][k]`` for every ordered pair of values (c, k) from different raters.
    With ``n_c = sum_k o[c][k]`` and ``n = sum_c n_c``::

        alpha = 1 - (n - 1) * sum_{c != k} o[c][k] / sum_{c != k} n_c n_k

    ``None`` when undefined (fewer than two pairable values, or no variation).
    """
    coincidence: dict[tuple[Hashable, Hashable], float] = {}
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        counts = Counter(values)
        for c, n_c in counts.items():
            for k, n_k in counts.items():
                pairs = n_c * (n_c - 1) if c == k else n_c * n_k
                if pairs:
                    coincidence[(c, k)] = coincidence.get((c, k), 0.0) + pairs / (m - 1)
    if not coincidence:
        return None
    marginals: dict[Hashable, float] = {}
    for (c, _), v in coincidence.items():
        marginals[c] = marginals.get(c, 0.0) + v
    n = sum(marginals.values())
    observed = sum(v for (c, k), v in coincidence.items() if c != k)
    expected = sum(marginals[c] * marginals[k] for c in marginals for k in marginals if c != k)
    if expected == 0:
        return None
    return float(1.0 - (n - 1) * observed / expected)


# --------------------------------------------------------------------------- resampling, means


def _at_positions(
    items: Sequence[Any], statistic: Callable[[Sequence[Any]], float]
) -> Callable[[np.ndarray], float]:
    """``statistic`` of the items at the given positions: SciPy resamples positions, so
    the items themselves need not be numbers."""
    return lambda positions: float(statistic([items[j] for j in positions]))


def bootstrap(
    items: Sequence[Any],
    statistic: Callable[[Sequence[Any]], float] | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Percentile bootstrap interval of ``statistic`` over ``items`` (SciPy).

    Items are resampled with replacement ``n_resamples`` times with a seeded
    generator, so the same inputs always give the same interval. The interval
    is the ``(1-confidence)/2`` and ``(1+confidence)/2`` quantiles of the
    resampled statistic. ``statistic=None`` means the mean of numeric items,
    computed vectorised; any other statistic may take items of any type.
    Empty input gives an undefined estimate; one item, a zero-width interval.
    """
    _check_confidence(confidence)
    n = len(items)
    if n == 0:
        return Estimate(None, None, None, 0, method="bootstrap", confidence=confidence)
    point = float(np.mean(items)) if statistic is None else float(statistic(items))
    if n == 1:
        # Every resample is the one item (SciPy refuses samples of one).
        return Estimate(point, point, point, 1, method="bootstrap", confidence=confidence)
    stat: Callable[..., Any]
    if statistic is None:
        data, stat, vectorized = np.asarray(items, dtype=float), np.mean, True
    else:
        data, stat, vectorized = np.arange(n), _at_positions(items, statistic), False
    result = sps.bootstrap(
        (data,),
        stat,
        vectorized=vectorized,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    lo, hi = result.confidence_interval
    return Estimate(
        value=point,
        lo=float(lo),
        hi=float(hi),
        n=n,
        method="bootstrap",
        confidence=confidence,
    )


def mean_t_interval(values: Sequence[float], confidence: float = 0.95) -> MeanEstimate:
    """Mean with a Student-t interval (SciPy), e.g. Likert ratings of one principle.

    With one value the spread is unknown, so ``sd`` and the interval are ``None``.
    """
    _check_confidence(confidence)
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return MeanEstimate(None, None, 0, None, None, confidence)
    mean = float(x.mean())
    if n == 1:
        return MeanEstimate(mean, None, 1, None, None, confidence)
    sd = float(x.std(ddof=1))
    if sd == 0:
        # Equal values: a zero-width interval (SciPy's t refuses a zero scale with NaN).
        return MeanEstimate(mean, sd, n, mean, mean, confidence)
    lo, hi = sps.t.interval(confidence, n - 1, loc=mean, scale=sps.sem(x))
    return MeanEstimate(mean, sd, n, float(lo), float(hi), confidence)


def bounded_mean_interval(
    values: Sequence[float],
    low: float,
    high: float,
    confidence: float = 0.95,
    *,
    draws: int = 4000,
    seed: int = 0,
) -> MeanEstimate:
    """Mean of ratings on the scale ``[low, high]`` with a credible interval inside it.

    Bayesian bootstrap (see the module docstring) with half a pseudo-observation at each
    end of the scale: "3.50 [-2.85, 9.85]" on a 1-5 scale (a t-interval at n = 2) and
    the zero-width "4.00 [4.00, 4.00]" (two equal ratings) cannot happen. Seeded, so a
    page shows the same numbers on every load. Values outside the scale raise
    ``ValueError``.
    """
    if not high > low:
        raise ValueError("high must be greater than low")
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return MeanEstimate(None, None, 0, None, None, confidence, "bayes-bootstrap")
    if float(x.min()) < low or float(x.max()) > high:
        raise ValueError(f"ratings must lie in [{low}, {high}]")
    mean = float(x.mean())
    sd = float(x.std(ddof=1)) if n > 1 else None
    points = np.concatenate([x, [low, high]])
    concentration = np.concatenate([np.ones(n), [0.5, 0.5]])
    weights = np.random.default_rng(seed).dirichlet(concentration, size=draws)
    alpha = 1.0 - confidence
    lo, hi = np.quantile(weights @ points, [alpha / 2.0, 1.0 - alpha / 2.0])
    return MeanEstimate(mean, sd, n, float(lo), float(hi), confidence, "bayes-bootstrap")


MIN_N_RATINGS = 10  # participants behind a survey statistic
MIN_N_PAIRS = 30  # held-out pairs behind an evaluation statistic


def small_sample_warning(n: int | None, min_n: int, unit: str) -> str:
    """A warning to show next to a statistic computed from only ``n`` ``unit``, or ``""``.

    ``unit`` is plural ("participants", "pairs"). Nothing is hidden: the number stays,
    with a plain statement that it cannot support a conclusion yet.
    """
    if n is None or n >= min_n:
        return ""
    if n == 0:
        return f"No {unit} yet: nothing to conclude."
    return f"Only {n} {unit} (fewer than {min_n}): too few to draw a conclusion."
