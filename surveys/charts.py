"""Geometry for the results page's bar charts, drawn as inline SVG by templates.

Server-rendered SVG needs no JavaScript library, prints well and shows the same
numbers as the tables beside it. This module only computes coordinates; the
templates (templates/surveys/_share_chart.html, _rating_chart.html) draw them.
"""

from __future__ import annotations

from dataclasses import dataclass

from surveys.results import QuestionResult, RatingResult

LABEL_W = 190  # room for the question label at the left
PLOT_W = 460
ROW_H = 34
BAR_H = 18
TOP = 26  # room for the axis labels
VALUE_W = 190  # room for the numbers at the right

DASH = "\u2013"  # en dash: shown for undefined numbers


def _pct(value: float | None) -> str:
    return DASH if value is None else f"{100 * value:.0f}%"


@dataclass(frozen=True, slots=True)
class ShareRow:
    label: str
    y: float
    bar_y: float
    a_w: float  # width of the A bar, from the left edge of the plot
    b_x: float  # start of the B bar (it runs to the right edge)
    b_w: float
    whisker_lo: float
    whisker_hi: float
    whisker_y: float
    has_interval: bool  # no whisker without decisive answers (the interval is 0-100%)
    value_text: str
    title: str


@dataclass(frozen=True, slots=True)
class ShareChart:
    width: int
    height: int
    x0: int
    plot_w: int
    mid_x: float
    value_x: int
    axis_y: int
    bottom: float
    rows: list[ShareRow]


def share_chart(questions: list[QuestionResult]) -> ShareChart:
    """One row per question: A's share from the left, B's from the right, the gap
    between them no-preference answers (when they count), a whisker for A's 95%
    Wilson interval and a dashed line at 50%."""
    rows = []
    for i, q in enumerate(questions):
        y = TOP + i * ROW_H
        a_share, b_share = q.a.share or 0.0, q.b.share or 0.0
        rows.append(
            ShareRow(
                label=q.label,
                y=y + ROW_H / 2 + 4,
                bar_y=y + (ROW_H - BAR_H) / 2,
                a_w=round(PLOT_W * a_share, 1),
                b_x=round(LABEL_W + PLOT_W * (1 - b_share), 1),
                b_w=round(PLOT_W * b_share, 1),
                whisker_lo=round(LABEL_W + PLOT_W * q.a.lo, 1),
                whisker_hi=round(LABEL_W + PLOT_W * q.a.hi, 1),
                whisker_y=y + ROW_H / 2,
                has_interval=q.a.n > 0,
                value_text=f"A {_pct(q.a.share)} \u00b7 B {_pct(q.b.share)} (n={q.a.n})",
                title=(
                    f"{q.text} A {q.n_a}, B {q.n_b}, tie {q.n_tie}, both bad {q.n_both_bad}; "
                    f"share A {_pct(q.a.share)} (95% CI {_pct(q.a.lo)}\u2013{_pct(q.a.hi)})"
                ),
            )
        )
    bottom = TOP + max(1, len(rows)) * ROW_H
    return ShareChart(
        width=LABEL_W + PLOT_W + VALUE_W,
        height=int(bottom + 8),
        x0=LABEL_W,
        plot_w=PLOT_W,
        mid_x=LABEL_W + PLOT_W / 2,
        value_x=LABEL_W + PLOT_W + 10,
        axis_y=TOP - 8,
        bottom=bottom,
        rows=rows,
    )


@dataclass(frozen=True, slots=True)
class RatingRow:
    label: str
    y: float
    bar_y: float
    bar_w: float
    whisker: tuple[float, float] | None
    whisker_y: float
    value_text: str
    title: str
    side: str


@dataclass(frozen=True, slots=True)
class RatingChart:
    width: int
    height: int
    x0: int
    plot_w: int
    ticks: list[tuple[float, int]]
    axis_y: int
    bottom: float
    rows: list[RatingRow]


def _scale(value: float) -> float:
    """Likert 1..5 to a plot x offset."""
    return PLOT_W * (min(5.0, max(1.0, value)) - 1) / 4


def rating_chart(ratings: list[RatingResult]) -> RatingChart:
    """Mean rating per principle (bars from 1) with its 95% interval (inside the scale)."""
    rows = []
    for i, r in enumerate(ratings):
        y = TOP + i * ROW_H
        whisker = None
        if r.lo is not None and r.hi is not None:
            whisker = (round(LABEL_W + _scale(r.lo), 1), round(LABEL_W + _scale(r.hi), 1))
        label = f"{r.side.upper()}{r.position}" if r.position else f"All of {r.side.upper()}"
        rows.append(
            RatingRow(
                label=label,
                y=y + ROW_H / 2 + 4,
                bar_y=y + (ROW_H - BAR_H) / 2,
                bar_w=round(_scale(r.mean), 1) if r.mean is not None else 0.0,
                whisker=whisker,
                whisker_y=y + ROW_H / 2,
                value_text=DASH if r.mean is None else f"{r.mean:.2f}",
                title=f"{r.text} (n={r.n})",
                side=r.side,
            )
        )
    bottom = TOP + max(1, len(rows)) * ROW_H
    return RatingChart(
        width=LABEL_W + PLOT_W + 60,
        height=int(bottom + 8),
        x0=LABEL_W,
        plot_w=PLOT_W,
        ticks=[(LABEL_W + _scale(v), v) for v in (1, 2, 3, 4, 5)],
        axis_y=TOP - 8,
        bottom=bottom,
        rows=rows,
    )
