"""Server-rendered SVG charts for every page: one home for their scales, formats and colours.

Charts are drawn on the server so pages need no chart library, print well and work
without JavaScript. Every chart is an ``<svg role="img">`` with a title; pages should
still show the same numbers in a table next to it, because a picture alone is not
accessible.

Two ways to draw:

- whole SVG strings, all text escaped here (user input is safe as labels):
  :func:`bar_chart` (one bar per row, optional interval whiskers and reference lines,
  e.g. chance at 0.5) and :func:`stacked_bar_chart` (one bar per row split into series,
  e.g. for / against / abstain / invalid votes, with a legend); used by the run and
  evaluation pages;
- geometry for templates that draw the SVG themselves (Django escapes their text):
  :func:`share_chart` and :func:`rating_chart` for the survey results page
  (templates/surveys/_share_chart.html, _rating_chart.html).

Both use the same :class:`Scale` (value to x, clamped to the axis), :class:`RowLayout`
(where row ``i`` and its bar sit) and :func:`percent`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Colours chosen for contrast against white (WCAG AA for the text colours) and to stay
# distinguishable for the common colour-vision deficiencies; the table beside every
# chart carries the same numbers anyway.
PALETTE: dict[str, str] = {
    "for": "#1b7a3a",
    "against": "#b3261e",
    "abstain": "#8a939d",
    "invalid": "#a86f00",
    "accent": "#1f5fbf",
    "muted": "#555d66",
    "line": "#d5d9de",
    "text": "#1a1d21",
}

DASH = "\u2013"  # en dash: shown for undefined numbers

# Whole-SVG charts (bar_chart, stacked_bar_chart).
WIDTH = 720
LABEL_WIDTH = 260
RIGHT_PAD = 64
ROW_HEIGHT = 30
BAR_HEIGHT = 16
TOP_PAD = 8
AXIS_HEIGHT = 26
LEGEND_HEIGHT = 24


# --------------------------------------------------------------------------- shared pieces


def percent(value: float | None, digits: int = 1) -> str:
    """``0.756`` as ``"75.6%"`` (``digits`` decimals); ``None`` as an en dash."""
    return DASH if value is None else f"{100 * value:.{digits}f}%"


def default_format(value: float) -> str:
    """Integers as integers, other numbers with up to three significant decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}"


@dataclass(frozen=True, slots=True)
class Scale:
    """Values in [``lo``, ``hi``] onto x in [``x0``, ``x0 + width``]; values outside
    are clamped to the ends, so no bar or whisker leaves the plot."""

    lo: float
    hi: float
    x0: float
    width: float

    def length(self, value: float) -> float:
        """How far ``value`` lies from the start of the axis."""
        return self.width * (min(max(value, self.lo), self.hi) - self.lo) / (self.hi - self.lo)

    def __call__(self, value: float) -> float:
        return self.x0 + self.length(value)


@dataclass(frozen=True, slots=True)
class RowLayout:
    """Rows of bars from ``top`` down: each row ``row_height`` high, its bar centred."""

    top: int
    row_height: int
    bar_height: int

    def row_top(self, i: int) -> int:
        return self.top + self.row_height * i

    def bar_top(self, i: int) -> float:
        return self.row_top(i) + (self.row_height - self.bar_height) / 2

    def middle(self, i: int) -> float:
        return self.row_top(i) + self.row_height / 2

    def bottom(self, n_rows: int) -> int:
        """Below the last row; an empty chart keeps the height of one row."""
        return self.top + self.row_height * max(1, n_rows)


# --------------------------------------------------------------------------- whole SVG charts


@dataclass(frozen=True, slots=True)
class Bar:
    """One row of :func:`bar_chart`. ``low``/``high`` draw an interval whisker."""

    label: str
    value: float | None
    low: float | None = None
    high: float | None = None
    color: str = PALETTE["accent"]
    note: str = ""  # shown in the tooltip, e.g. "n = 120"


@dataclass(frozen=True, slots=True)
class Series:
    """One segment kind of :func:`stacked_bar_chart`."""

    key: str
    label: str
    color: str


@dataclass(frozen=True, slots=True)
class StackedRow:
    """One row of :func:`stacked_bar_chart`: a label and a value per series key."""

    label: str
    values: dict[str, float]


VOTE_SERIES: tuple[Series, ...] = (
    Series("for", "For", PALETTE["for"]),
    Series("against", "Against", PALETTE["against"]),
    Series("abstain", "Abstain", PALETTE["abstain"]),
    Series("invalid", "Invalid", PALETTE["invalid"]),
)


def _fmt(value: float) -> str:
    """Numbers for SVG attributes: short and locale-independent."""
    return f"{value:.2f}".rstrip("0").rstrip(".") or "0"


def _truncate(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _ticks(maximum: float, minimum: float = 0.0, count: int = 4) -> list[float]:
    span = maximum - minimum
    if span <= 0:
        return [minimum]
    return [minimum + span * i / count for i in range(count + 1)]


def _open(height: float, title: str, desc: str, chart_id: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {_fmt(height)}" width="100%" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
        f'style="max-width:{WIDTH}px;font:12px system-ui,sans-serif">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>',
    ]


def _axis(
    parts: list[str],
    *,
    y: float,
    scale: Callable[[float], float],
    ticks: Sequence[float],
    fmt: Callable[[float], str],
    grid_top: float,
) -> None:
    parts.append(
        f'<line x1="{LABEL_WIDTH}" x2="{WIDTH - RIGHT_PAD}" y1="{_fmt(y)}" y2="{_fmt(y)}" '
        f'stroke="{PALETTE["muted"]}" stroke-width="1"/>'
    )
    for t in ticks:
        x = scale(t)
        parts.append(
            f'<line x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{_fmt(grid_top)}" y2="{_fmt(y)}" '
            f'stroke="{PALETTE["line"]}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{_fmt(x)}" y="{_fmt(y + 16)}" text-anchor="middle" '
            f'fill="{PALETTE["muted"]}">{escape(fmt(t))}</text>'
        )


def bar_chart(
    bars: Sequence[Bar],
    *,
    title: str,
    chart_id: str = "chart",
    domain: tuple[float, float] | None = None,
    value_format: Callable[[float], str] = default_format,
    references: Sequence[tuple[float, str]] = (),
    label_chars: int = 42,
) -> SafeString:
    """Horizontal bars with optional interval whiskers and reference lines.

    ``domain`` fixes the axis (e.g. ``(0, 1)`` for accuracies); by default it runs from
    0 to the largest value or interval end. A bar whose value is ``None`` is drawn as
    "n/a" so a missing number is not mistaken for zero. ``chart_id`` must be unique on
    the page (it ties the accessible title and description to the SVG).
    """
    highs = [x for b in bars for x in (b.value, b.high) if x is not None]
    lows = [x for b in bars for x in (b.value, b.low) if x is not None]
    lo, hi = domain if domain is not None else (min([0.0, *lows]), max([0.0, *highs]))
    if hi <= lo:
        hi = lo + 1.0
    scale = Scale(lo, hi, LABEL_WIDTH, WIDTH - LABEL_WIDTH - RIGHT_PAD)
    rows = RowLayout(TOP_PAD, ROW_HEIGHT, BAR_HEIGHT)
    axis_y = rows.bottom(len(bars))
    height = axis_y + AXIS_HEIGHT
    summary = "; ".join(
        f"{b.label}: {'n/a' if b.value is None else value_format(b.value)}"
        + (
            f" (interval {value_format(b.low)} to {value_format(b.high)})"
            if b.low is not None and b.high is not None
            else ""
        )
        for b in bars
    )
    parts = _open(height, title, summary or "No data.", chart_id)
    _axis(
        parts,
        y=axis_y,
        scale=scale,
        ticks=_ticks(hi, lo),
        fmt=value_format,
        grid_top=TOP_PAD,
    )
    for i, b in enumerate(bars):
        y, mid = rows.bar_top(i), rows.middle(i)
        parts.append("<g>")
        tooltip = b.label + (f" ({b.note})" if b.note else "")
        parts.append(f"<title>{escape(tooltip)}</title>")
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{_fmt(mid + 4)}" text-anchor="end" '
            f'fill="{PALETTE["text"]}">{escape(_truncate(b.label, label_chars))}</text>'
        )
        if b.value is None:
            parts.append(
                f'<text x="{LABEL_WIDTH + 4}" y="{_fmt(mid + 4)}" '
                f'fill="{PALETTE["muted"]}">n/a</text>'
            )
        else:
            x0, x1 = scale(max(lo, 0.0) if lo <= 0 <= hi else lo), scale(b.value)
            left, right = min(x0, x1), max(x0, x1)
            parts.append(
                f'<rect x="{_fmt(left)}" y="{_fmt(y)}" width="{_fmt(max(right - left, 1))}" '
                f'height="{BAR_HEIGHT}" fill="{escape(b.color)}"/>'
            )
            end = right
            if b.low is not None and b.high is not None:
                wl, wh = scale(b.low), scale(b.high)
                end = max(end, wh)
                stroke = f'stroke="{PALETTE["text"]}" stroke-width="1.5"'
                parts.append(
                    f'<line x1="{_fmt(wl)}" x2="{_fmt(wh)}" y1="{_fmt(mid)}" y2="{_fmt(mid)}" '
                    f"{stroke}/>"
                )
                for wx in (wl, wh):
                    parts.append(
                        f'<line x1="{_fmt(wx)}" x2="{_fmt(wx)}" y1="{_fmt(mid - 6)}" '
                        f'y2="{_fmt(mid + 6)}" {stroke}/>'
                    )
            parts.append(
                f'<text x="{_fmt(end + 6)}" y="{_fmt(mid + 4)}" '
                f'fill="{PALETTE["text"]}">{escape(value_format(b.value))}</text>'
            )
        parts.append("</g>")
    for value, label in references:
        x = scale(value)
        parts.append(
            f'<line x1="{_fmt(x)}" x2="{_fmt(x)}" y1="{TOP_PAD - 4}" y2="{_fmt(axis_y)}" '
            f'stroke="{PALETTE["text"]}" stroke-width="1" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{_fmt(x + 3)}" y="{TOP_PAD + 2}" fill="{PALETTE["text"]}">'
            f"{escape(label)}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text is escaped above


def stacked_bar_chart(
    rows: Sequence[StackedRow],
    *,
    series: Sequence[Series] = VOTE_SERIES,
    title: str,
    chart_id: str = "chart",
    value_format: Callable[[float], str] = default_format,
    label_chars: int = 42,
    normalise: bool = False,
) -> SafeString:
    """One horizontal bar per row, split into ``series`` segments, with a legend.

    With ``normalise`` every bar fills the width (shares); otherwise bars share one
    scale up to the largest row total, so longer bars mean more observations.
    """
    totals = [sum(max(0.0, float(r.values.get(s.key, 0))) for s in series) for r in rows]
    top = 1.0 if normalise else max([1.0, *totals])
    scale = Scale(0.0, top, LABEL_WIDTH, WIDTH - LABEL_WIDTH - RIGHT_PAD)
    layout = RowLayout(LEGEND_HEIGHT + TOP_PAD, ROW_HEIGHT, BAR_HEIGHT)
    axis_y = layout.bottom(len(rows))
    height = axis_y + AXIS_HEIGHT
    summary = "; ".join(
        f"{r.label}: "
        + ", ".join(f"{s.label.lower()} {value_format(r.values.get(s.key, 0))}" for s in series)
        for r in rows
    )
    parts = _open(height, title, summary or "No data.", chart_id)
    # Legend first, so the colours are explained before the bars.
    x = LABEL_WIDTH
    for s in series:
        parts.append(
            f'<rect x="{x}" y="4" width="12" height="12" fill="{escape(s.color)}"/>'
            f'<text x="{x + 16}" y="14" fill="{PALETTE["text"]}">{escape(s.label)}</text>'
        )
        x += 24 + 7 * len(s.label) + 12

    _axis(
        parts,
        y=axis_y,
        scale=scale,
        ticks=_ticks(top),
        fmt=percent if normalise else value_format,
        grid_top=layout.top,
    )
    for i, (row, total) in enumerate(zip(rows, totals, strict=True)):
        y, mid = layout.bar_top(i), layout.middle(i)
        parts.append("<g>")
        parts.append(f"<title>{escape(row.label)}</title>")
        parts.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{_fmt(mid + 4)}" text-anchor="end" '
            f'fill="{PALETTE["text"]}">{escape(_truncate(row.label, label_chars))}</text>'
        )
        cursor = 0.0
        for s in series:
            v = max(0.0, float(row.values.get(s.key, 0)))
            if normalise:
                v = v / total if total else 0.0
            if v <= 0:
                continue
            x0, x1 = scale(cursor), scale(cursor + v)
            parts.append(
                f'<rect x="{_fmt(x0)}" y="{_fmt(y)}" width="{_fmt(max(x1 - x0, 0.5))}" '
                f'height="{BAR_HEIGHT}" fill="{escape(s.color)}">'
                f"<title>{escape(s.label)}: {escape(value_format(row.values.get(s.key, 0)))}"
                f"</title></rect>"
            )
            cursor += v
        parts.append(
            f'<text x="{_fmt(scale(cursor) + 6)}" y="{_fmt(mid + 4)}" '
            f'fill="{PALETTE["text"]}">{escape(value_format(total))}</text>'
        )
        parts.append("</g>")
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every interpolated text is escaped above


# --------------------------------------------------------------------------- survey results geometry

# The survey results page draws these in its templates, with its own CSS classes.
SURVEY_LABEL_WIDTH = 190  # room for the question label at the left
SURVEY_PLOT_WIDTH = 460
SURVEY_VALUE_WIDTH = 190  # room for the numbers at the right
SURVEY_ROWS = RowLayout(top=26, row_height=34, bar_height=18)  # top: room for the axis labels


class ShareLike(Protocol):
    """A share with its interval (``surveys.results.ShareResult``)."""

    @property
    def share(self) -> float | None: ...
    @property
    def lo(self) -> float: ...
    @property
    def hi(self) -> float: ...
    @property
    def n(self) -> int: ...


class QuestionLike(Protocol):
    """One pairwise question's answers (``surveys.results.QuestionResult``)."""

    @property
    def label(self) -> str: ...
    @property
    def text(self) -> str: ...
    @property
    def n_a(self) -> int: ...
    @property
    def n_b(self) -> int: ...
    @property
    def n_tie(self) -> int: ...
    @property
    def n_both_bad(self) -> int: ...
    @property
    def a(self) -> ShareLike: ...
    @property
    def b(self) -> ShareLike: ...


class RatingLike(Protocol):
    """Mean rating of a principle or a constitution (``surveys.results.RatingResult``)."""

    @property
    def side(self) -> str: ...
    @property
    def position(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def n(self) -> int: ...
    @property
    def mean(self) -> float | None: ...
    @property
    def lo(self) -> float | None: ...
    @property
    def hi(self) -> float | None: ...


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


def share_chart(questions: Sequence[QuestionLike]) -> ShareChart:
    """One row per question: A's share from the left, B's from the right, the gap
    between them no-preference answers (when they count), a whisker for A's 95%
    Wilson interval and a dashed line at 50%."""
    scale = Scale(0.0, 1.0, SURVEY_LABEL_WIDTH, SURVEY_PLOT_WIDTH)
    rows = []
    for i, q in enumerate(questions):
        a_share, b_share = q.a.share or 0.0, q.b.share or 0.0
        rows.append(
            ShareRow(
                label=q.label,
                y=SURVEY_ROWS.middle(i) + 4,
                bar_y=SURVEY_ROWS.bar_top(i),
                a_w=round(scale.length(a_share), 1),
                b_x=round(scale(1 - b_share), 1),
                b_w=round(scale.length(b_share), 1),
                whisker_lo=round(scale(q.a.lo), 1),
                whisker_hi=round(scale(q.a.hi), 1),
                whisker_y=SURVEY_ROWS.middle(i),
                has_interval=q.a.n > 0,
                value_text=(
                    f"A {percent(q.a.share, 0)} \u00b7 B {percent(q.b.share, 0)} (n={q.a.n})"
                ),
                title=(
                    f"{q.text} A {q.n_a}, B {q.n_b}, tie {q.n_tie}, both bad {q.n_both_bad}; "
                    f"share A {percent(q.a.share, 0)} "
                    f"(95% CI {percent(q.a.lo, 0)}\u2013{percent(q.a.hi, 0)})"
                ),
            )
        )
    bottom = SURVEY_ROWS.bottom(len(rows))
    return ShareChart(
        width=SURVEY_LABEL_WIDTH + SURVEY_PLOT_WIDTH + SURVEY_VALUE_WIDTH,
        height=int(bottom + 8),
        x0=SURVEY_LABEL_WIDTH,
        plot_w=SURVEY_PLOT_WIDTH,
        mid_x=scale(0.5),
        value_x=SURVEY_LABEL_WIDTH + SURVEY_PLOT_WIDTH + 10,
        axis_y=SURVEY_ROWS.top - 8,
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


def rating_chart(ratings: Sequence[RatingLike]) -> RatingChart:
    """Mean rating per principle (bars from 1) with its 95% interval (inside the scale)."""
    scale = Scale(1.0, 5.0, SURVEY_LABEL_WIDTH, SURVEY_PLOT_WIDTH)  # Likert 1..5
    rows = []
    for i, r in enumerate(ratings):
        whisker = None
        if r.lo is not None and r.hi is not None:
            whisker = (round(scale(r.lo), 1), round(scale(r.hi), 1))
        label = f"{r.side.upper()}{r.position}" if r.position else f"All of {r.side.upper()}"
        rows.append(
            RatingRow(
                label=label,
                y=SURVEY_ROWS.middle(i) + 4,
                bar_y=SURVEY_ROWS.bar_top(i),
                bar_w=round(scale.length(r.mean), 1) if r.mean is not None else 0.0,
                whisker=whisker,
                whisker_y=SURVEY_ROWS.middle(i),
                value_text=DASH if r.mean is None else f"{r.mean:.2f}",
                title=f"{r.text} (n={r.n})",
                side=r.side,
            )
        )
    bottom = SURVEY_ROWS.bottom(len(rows))
    return RatingChart(
        width=SURVEY_LABEL_WIDTH + SURVEY_PLOT_WIDTH + 60,
        height=int(bottom + 8),
        x0=SURVEY_LABEL_WIDTH,
        plot_w=SURVEY_PLOT_WIDTH,
        ticks=[(scale(v), v) for v in (1, 2, 3, 4, 5)],
        axis_y=SURVEY_ROWS.top - 8,
        bottom=bottom,
        rows=rows,
    )
