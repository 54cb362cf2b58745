"""Server-rendered SVG charts (used by the run pages and the evaluation pages)."""

from __future__ import annotations

import re

from gcai.constitutions.charts import (
    Bar,
    StackedRow,
    bar_chart,
    percent_format,
    stacked_bar_chart,
)

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
        value_format=percent_format,
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
