"""Server-rendered SVG charts: horizontal bars, stacked bars, optional interval whiskers.

Charts are drawn on the server so pages need no chart library, print well and work
without JavaScript. Every chart is an ``<svg role="img">`` with a ``<title>`` and a
``<desc>`` summarising the numbers; pages should still show the same numbers in a table
next to it, because a picture alone is not accessible. All text is escaped here, so
principle texts and other user input are safe to pass as labels.

Two entry points:

- :func:`bar_chart`: one bar per row, with an optional interval (e.g. a 95% confidence
  interval) drawn as a whisker, and optional reference lines (e.g. chance at 0.5).
- :func:`stacked_bar_chart`: one bar per row split into series (e.g. for / against /
  abstain / invalid votes), with a legend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

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

WIDTH = 720
LABEL_WIDTH = 260
RIGHT_PAD = 64
ROW_HEIGHT = 30
BAR_HEIGHT = 16
TOP_PAD = 8
AXIS_HEIGHT = 26
LEGEND_HEIGHT = 24


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


def default_format(value: float) -> str:
    """Integers as integers, other numbers with up to three significant decimals."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}"


def percent_format(value: float) -> str:
    return f"{100 * value:.1f}%"


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
    inner = WIDTH - LABEL_WIDTH - RIGHT_PAD

    def scale(v: float) -> float:
        return LABEL_WIDTH + inner * (min(max(v, lo), hi) - lo) / (hi - lo)

    height = TOP_PAD + ROW_HEIGHT * max(1, len(bars)) + AXIS_HEIGHT
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
    axis_y = TOP_PAD + ROW_HEIGHT * max(1, len(bars))
    _axis(
        parts,
        y=axis_y,
        scale=scale,
        ticks=_ticks(hi, lo),
        fmt=value_format,
        grid_top=TOP_PAD,
    )
    for i, b in enumerate(bars):
        y = TOP_PAD + ROW_HEIGHT * i + (ROW_HEIGHT - BAR_HEIGHT) / 2
        mid = y + BAR_HEIGHT / 2
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
    inner = WIDTH - LABEL_WIDTH - RIGHT_PAD
    height = LEGEND_HEIGHT + TOP_PAD + ROW_HEIGHT * max(1, len(rows)) + AXIS_HEIGHT
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

    def scale(v: float) -> float:
        return LABEL_WIDTH + inner * v / top

    base = LEGEND_HEIGHT + TOP_PAD
    axis_y = base + ROW_HEIGHT * max(1, len(rows))
    _axis(
        parts,
        y=axis_y,
        scale=scale,
        ticks=_ticks(top),
        fmt=percent_format if normalise else value_format,
        grid_top=base,
    )
    for i, (row, total) in enumerate(zip(rows, totals, strict=True)):
        y = base + ROW_HEIGHT * i + (ROW_HEIGHT - BAR_HEIGHT) / 2
        mid = y + BAR_HEIGHT / 2
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
