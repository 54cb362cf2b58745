"""Statistics against published worked examples and hand-computed values."""

from __future__ import annotations

import json
import math

import pytest

from gcai.core import stats


@pytest.mark.parametrize(
    ("k", "share", "p_value", "lo", "hi"),
    [
        # GCAI's survey: 49 of 51 participants preferred one constitution (moral grounding).
        (49, 0.961, 1.2e-12, 0.87, 0.99),
        (38, 0.745, 6e-4, 0.61, 0.84),
    ],
)
def test_survey_share_binomial_test_and_wilson_interval_match_published_values(
    k, share, p_value, lo, hi
):
    result = stats.proportion_test(k, 51)

    assert result.share == pytest.approx(share, abs=5e-4)
    assert result.p_value == pytest.approx(p_value, rel=0.05)
    assert result.lo == pytest.approx(lo, abs=5e-3)
    assert result.hi == pytest.approx(hi, abs=5e-3)


def test_binomial_p_value_is_exact():
    # Two-sided: 2 * P(X >= 49) = 2 * (C(51,49) + C(51,50) + C(51,51)) / 2**51.
    exact = 2 * (math.comb(51, 49) + 51 + 1) / 2**51
    assert stats.binomial_test(49, 51) == pytest.approx(exact, rel=1e-9)
    assert stats.binomial_test(0, 0) == 1.0


def test_wilson_interval_hand_computed_and_edge_cases():
    # 5 of 10 at z = 1.95996: centre 0.5, half-width z/(1+z²/n) * sqrt(0.025 + z²/400).
    z = 1.959963984540054
    half = z / (1 + z * z / 10) * math.sqrt(0.25 / 10 + z * z / 400)
    lo, hi = stats.wilson_interval(5, 10)
    assert (lo, hi) == pytest.approx((0.5 - half, 0.5 + half))
    assert stats.wilson_interval(0, 0) == (0.0, 1.0)
    lo, hi = stats.wilson_interval(0, 20)
    assert lo == 0.0
    assert 0 < hi < 0.2
    lo, hi = stats.wilson_interval(20, 20)
    assert hi == 1.0
    assert 0.8 < lo < 1.0
    with pytest.raises(ValueError, match="0 <= k <= n"):
        stats.wilson_interval(3, 2)


def test_wider_confidence_gives_a_wider_interval():
    lo95, hi95 = stats.wilson_interval(30, 50, 0.95)
    lo99, hi99 = stats.wilson_interval(30, 50, 0.99)
    assert lo99 < lo95 < 0.6 < hi95 < hi99


def test_holm_adjusts_step_down_and_stays_monotone():
    raw = [0.01, 0.04, 0.03, 0.5]
    # Sorted: 0.01*4 = 0.04; 0.03*3 = 0.09; 0.04*2 = 0.08 -> raised to 0.09; 0.5*1 = 0.5.
    assert stats.holm(raw) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert stats.holm([0.9, 0.8]) == pytest.approx([1.0, 1.0])
    assert stats.holm([]) == []


def test_cohen_kappa_from_hand_computed_table():
    # 50 items: both yes 20, yes/no 5, no/yes 10, both no 15.
    # p_o = 35/50 = 0.7; p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = 0.2 / 0.5 = 0.4.
    assert stats.cohen_kappa_from_table([[20, 5], [10, 15]]) == pytest.approx(0.4)
    rater1 = ["y"] * 25 + ["n"] * 25
    rater2 = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert stats.cohen_kappa(rater1, rater2) == pytest.approx(0.4)


def test_cohen_kappa_is_undefined_without_variation():
    assert stats.cohen_kappa(["a", "a"], ["a", "a"]) is None
    assert stats.cohen_kappa([], []) is None


def test_kappa_against_chance_maps_accuracy_and_its_wilson_bounds():
    result = stats.kappa_vs_chance(49, 51)
    lo, hi = stats.wilson_interval(49, 51)
    assert result.value == pytest.approx((49 / 51 - 0.5) / 0.5)
    assert (result.lo, result.hi) == pytest.approx((2 * lo - 1, 2 * hi - 1))
    assert stats.kappa_vs_chance(25, 50).value == pytest.approx(0.0)
    assert stats.kappa_vs_chance(0, 50).value == pytest.approx(-1.0)


def test_fleiss_kappa_matches_wikipedia_worked_example():
    # https://en.wikipedia.org/wiki/Fleiss%27_kappa#Worked_example: 10 items, 14 raters.
    table = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert stats.fleiss_kappa(table) == pytest.approx(0.210, abs=5e-4)


def test_fleiss_kappa_refuses_unequal_rater_counts():
    with pytest.raises(ValueError, match="same number"):
        stats.fleiss_kappa([[2, 0], [1, 2]])


def test_krippendorff_alpha_matches_published_nominal_example_with_missing_data():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C:
    # 4 observers x 12 units, nominal, missing values; alpha = 0.743.
    observers = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    units = list(zip(*observers, strict=True))
    assert stats.krippendorff_alpha_nominal(units) == pytest.approx(0.743, abs=5e-4)


def test_krippendorff_alpha_is_one_when_all_agree_and_undefined_without_variation():
    assert stats.krippendorff_alpha_nominal([["a", "a"], ["b", "b"], ["a", "a", "a"]]) == 1.0
    # No variation at all, or nothing pairable: undefined.
    assert stats.krippendorff_alpha_nominal([["a", "a"], ["a", "a"]]) is None
    assert stats.krippendorff_alpha_nominal([["a"], [None, "b"]]) is None


def test_bootstrap_is_seeded_and_brackets_the_mean():
    scores = [1.0] * 30 + [0.5] * 10 + [0.0] * 10
    first = stats.bootstrap(scores, seed=7)
    again = stats.bootstrap(scores, seed=7)
    assert first == again
    assert first.value == pytest.approx(0.7)
    assert first.lo < 0.7 < first.hi
    # A custom statistic gives the same resamples.
    custom = stats.bootstrap(scores, lambda xs: sum(xs) / len(xs), seed=7)
    assert (custom.lo, custom.hi) == pytest.approx((first.lo, first.hi))
    assert stats.bootstrap([], seed=1).value is None


def test_mean_t_interval_hand_computed():
    result = stats.mean_t_interval([1, 2, 3, 4, 5])
    # sd = sqrt(2.5); t(0.975, df=4) = 2.776445.
    half = 2.7764451051977987 * math.sqrt(2.5) / math.sqrt(5)
    assert result.mean == 3.0
    assert result.sd == pytest.approx(math.sqrt(2.5))
    assert (result.lo, result.hi) == pytest.approx((3 - half, 3 + half))
    single = stats.mean_t_interval([4])
    assert (single.mean, single.lo, single.hi) == (4.0, None, None)


def test_bounded_mean_interval_stays_on_the_scale_where_t_does_not():
    t = stats.mean_t_interval([2, 5])  # the survey page once showed "3.50 [-2.85, 9.85]"
    assert t.lo < 1
    assert t.hi > 5
    bounded = stats.bounded_mean_interval([2, 5], 1, 5)
    assert bounded.mean == 3.5
    assert 1 <= bounded.lo < 3.5 < bounded.hi <= 5
    assert bounded.method == "bayes-bootstrap"


def test_bounded_mean_interval_of_equal_ratings_is_not_a_point():
    two = stats.bounded_mean_interval([4, 4], 1, 5)
    assert two.mean == 4.0
    assert two.lo < 3.5
    assert two.hi > 4.2
    many = stats.bounded_mean_interval([4] * 200, 1, 5)
    assert two.hi - two.lo > 4 * (many.hi - many.lo)  # more ratings, tighter interval


def test_bounded_mean_interval_approaches_t_with_many_ratings_and_is_seeded():
    values = [1, 2, 3, 4, 5, 4, 4, 3, 5, 2] * 20
    bounded = stats.bounded_mean_interval(values, 1, 5)
    t = stats.mean_t_interval(values)
    assert bounded.lo == pytest.approx(t.lo, abs=0.05)
    assert bounded.hi == pytest.approx(t.hi, abs=0.05)
    assert stats.bounded_mean_interval(values, 1, 5) == bounded


def test_bounded_mean_interval_refuses_values_off_the_scale():
    with pytest.raises(ValueError, match="ratings must lie in"):
        stats.bounded_mean_interval([0, 3], 1, 5)
    empty = stats.bounded_mean_interval([], 1, 5)
    assert (empty.mean, empty.lo, empty.hi, empty.n) == (None, None, None, 0)


def test_small_sample_warning_below_the_minimum_only():
    assert stats.small_sample_warning(4, stats.MIN_N_PAIRS, "pairs") == (
        "Only 4 pairs (fewer than 30): too few to draw a conclusion."
    )
    assert "No participants yet" in stats.small_sample_warning(0, 10, "participants")
    assert stats.small_sample_warning(30, stats.MIN_N_PAIRS, "pairs") == ""
    assert stats.small_sample_warning(None, 10, "pairs") == ""


def test_side_bias_test_flags_a_left_leaning_panel():
    biased = stats.side_bias_test(left=40, right=11)
    fair = stats.side_bias_test(left=26, right=25)
    assert biased.n == 51
    assert biased.p_value < 0.001
    assert fair.p_value > 0.5


def test_results_round_trip_through_json():
    for result in (
        stats.proportion(3, 7),
        stats.proportion_test(3, 7),
        stats.mean_t_interval([1, 5, 4]),
        stats.bounded_mean_interval([1, 5, 4], 1, 5),
        stats.proportion(0, 0),
    ):
        data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert type(result).from_dict(data) == result


def test_wilson_interval_takes_fractional_counts():
    # Abstentions count as half: 2.5 of 7 by the closed form (Wilson 1927).
    z = 1.959963984540054
    p, n = 2.5 / 7, 7
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert stats.wilson_interval(2.5, 7) == pytest.approx((centre - half, centre + half))
    result = stats.proportion(0.5, 1)
    assert result.k == 0.5
    assert 0 < result.lo < 0.5 < result.hi < 1


@pytest.mark.filterwarnings("error")
def test_undefined_agreement_is_none_without_nan_or_warnings():
    # Empty, or both raters in one category (p_e == 1): the libraries give NaN; we give None.
    assert stats.cohen_kappa_from_table([[0, 0], [0, 0]]) is None
    assert stats.cohen_kappa_from_table([[5, 0], [0, 0]]) is None
    assert stats.cohen_kappa_from_table([[3]]) is None
    assert stats.fleiss_kappa([]) is None
    assert stats.fleiss_kappa([[3, 0], [3, 0], [3, 0]]) is None
    # Each rater used a different single label: p_o = p_e = 0, so kappa is defined: 0.
    assert stats.cohen_kappa(["a", "a"], ["b", "b"]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="square"):
        stats.cohen_kappa_from_table([[1, 2, 3]])


@pytest.mark.filterwarnings("error")
def test_degenerate_samples_give_finite_json_safe_estimates():
    equal = stats.mean_t_interval([4, 4, 4])
    assert (equal.mean, equal.sd, equal.lo, equal.hi) == (4.0, 0.0, 4.0, 4.0)
    one = stats.bootstrap([0.25], seed=3)
    assert (one.value, one.lo, one.hi, one.n) == (0.25, 0.25, 0.25, 1)
    flat = stats.bootstrap([1.0] * 12, seed=3)
    assert (flat.value, flat.lo, flat.hi) == (1.0, 1.0, 1.0)
    for result in (
        equal,
        one,
        flat,
        stats.bootstrap([], seed=3),
        stats.mean_t_interval([]),
        stats.proportion(0, 0),
        stats.kappa_vs_chance(0, 0),
    ):
        json.dumps(result.to_dict(), allow_nan=False)


def test_bootstrap_of_items_that_are_not_numbers():
    pairs = [("a", 1.0), ("b", 0.0), ("c", 1.0), ("d", 1.0)] * 5
    est = stats.bootstrap(pairs, lambda xs: sum(x[1] for x in xs) / len(xs), seed=2)
    plain = stats.bootstrap([x[1] for x in pairs], seed=2)
    assert est.value == pytest.approx(0.75)
    assert (est.lo, est.hi) == pytest.approx((plain.lo, plain.hi))


def test_holm_matches_a_hand_computed_family_with_ties_and_clipping():
    # Sorted 0.02, 0.02, 0.3: 3*0.02 = 0.06; 2*0.02 = 0.04 -> 0.06; 1*0.3 = 0.3.
    assert stats.holm([0.3, 0.02, 0.02]) == pytest.approx([0.3, 0.06, 0.06])
    assert stats.holm([0.6, 0.7, 0.01]) == pytest.approx([1.0, 1.0, 0.03])
