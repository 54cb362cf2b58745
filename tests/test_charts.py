"""Server-rendered SVG charts: run, evaluation and survey results pages (gcai/charts.py)."""

from __future__ import annotations

import re

from gcai.charts import (
    Bar,
    RowLayout,
    Scale,
    StackedRow,
    bar_chart,
    percent,
    rating_chart,
    share_chart,
    stacked_bar_chart,
)
from surveys.results import QuestionResult, RatingResult, ShareResult

EVIL = '<script>alert("x")</script>'


def test_stacked_chart_draws_one_segment_per_nonzero_series_with_a_legend():
    svg = stacked_bar_chart(
        [
            StackedRow("c0: honest", {"for": 3, "against": 1, "abstain": 0, "invalid": 0}),
            StackedRow("c1: brief", {"for": 0, "against": 2, "abstain": 2, "invalid": 1}),
        ],
        title="Votes",
        chart_id="votes",
    )
    assert svg.startswith("<svg")
    assert 'role="img"' in svg
    assert 'aria-labelledby="votes-title votes-desc"' in svg
    assert '<desc id="votes-desc">c0: honest: for 3, against 1, abstain 0, invalid 0;' in svg
    # legend (4 swatches) + 2 + 3 segments
    assert len(re.findall(r"<rect ", svg)) == 4 + 2 + 3
    assert "<title>Against: 2</title>" in svg


def test_chart_text_is_escaped():
    svg = stacked_bar_chart([StackedRow(EVIL, {"for": 1})], title=EVIL)
    svg += bar_chart([Bar(EVIL, 0.5, note=EVIL)], title=EVIL, references=[(0.5, EVIL)])
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg


def test_long_labels_are_shortened_but_kept_whole_in_the_tooltip():
    label = "Select the response that " + "is very careful " * 10
    svg = stacked_bar_chart([StackedRow(label, {"for": 1})], title="t")
    assert f"<title>{label}</title>" in svg
    assert "…</text>" in svg


def test_bar_chart_draws_interval_whiskers_and_reference_lines():
    svg = bar_chart(
        [Bar("GCAI", 0.76, low=0.70, high=0.82), Bar("ICAI", 0.61)],
        title="Accuracy",
        domain=(0.0, 1.0),
        value_format=percent,
        references=[(0.5, "chance")],
    )
    assert "76.0%" in svg
    assert "interval 70.0% to 82.0%" in svg
    # one whisker (line + two caps), one dashed reference line
    assert svg.count('stroke-width="1.5"') == 3
    assert 'stroke-dasharray="4 3"' in svg
    assert ">chance</text>" in svg


def test_missing_value_is_not_drawn_as_zero():
    svg = bar_chart([Bar("No data", None), Bar("Some", 2)], title="t")
    assert ">n/a</text>" in svg
    assert "No data: n/a" in svg


def test_empty_charts_still_render():
    assert "No data." in stacked_bar_chart([], title="Nothing")
    assert "No data." in bar_chart([], title="Nothing")


def test_percent_and_scale_are_shared_by_every_chart():
    assert (percent(0.756), percent(0.756, 0), percent(None)) == ("75.6%", "76%", "\u2013")
    scale = Scale(1.0, 5.0, 100, 400)
    assert (scale(1), scale(3), scale(5)) == (100.0, 300.0, 500.0)
    assert (scale(-2), scale(9)) == (100.0, 500.0)  # clamped to the axis
    assert scale.length(3) == 200.0
    rows = RowLayout(top=10, row_height=30, bar_height=16)
    assert (rows.bar_top(1), rows.middle(1), rows.bottom(0), rows.bottom(3)) == (
        47.0,
        55.0,
        40,
        100,
    )


def _question(n_a: int, n_b: int) -> QuestionResult:
    return QuestionResult(
        1, "moral", "Which is grounded?", n_a, n_b, 1, 0,
        ShareResult.of(n_a, n_a + n_b), ShareResult.of(n_b, n_a + n_b), 0.05,
    )  # fmt: skip


def test_share_chart_grows_a_from_the_left_and_b_from_the_right():
    chart = share_chart([_question(8, 2), _question(0, 0)])
    decided, empty = chart.rows
    assert (chart.x0, chart.plot_w, chart.mid_x) == (190, 460, 420.0)
    assert (decided.a_w, decided.b_x, decided.b_w) == (368.0, 558.0, 92.0)
    assert chart.x0 < decided.whisker_lo < chart.x0 + decided.a_w < decided.whisker_hi
    assert decided.value_text == "A 80% \u00b7 B 20% (n=10)"
    assert "tie 1, both bad 0; share A 80% (95% CI" in decided.title
    # Without decisive answers there is nothing to draw and no interval to show.
    assert (empty.a_w, empty.b_w, empty.has_interval) == (0.0, 0.0, False)
    assert empty.value_text == "A \u2013 \u00b7 B \u2013 (n=0)"


def test_rating_chart_draws_bars_from_one_and_keeps_whiskers_on_the_scale():
    chart = rating_chart(
        [
            RatingResult("a", 1, "Be kind", 10, 3.0, 1.0, 0.4, 5.6),
            RatingResult("b", 0, "All of B", 0, None, None, None, None),
        ]
    )
    kind, missing = chart.rows
    assert [x for x, _ in chart.ticks] == [190.0, 305.0, 420.0, 535.0, 650.0]
    assert (kind.label, kind.bar_w, kind.whisker, kind.value_text) == (
        "A1",
        230.0,
        (190.0, 650.0),
        "3.00",
    )
    assert (missing.label, missing.bar_w, missing.whisker, missing.value_text) == (
        "All of B",
        0.0,
        None,
        "\u2013",
    )
