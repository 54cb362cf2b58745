"""Number formatting for survey results pages."""

from __future__ import annotations

from django import template

register = template.Library()

DASH = "\u2013"  # en dash: shown for undefined numbers


@register.filter
def pct(value, digits: int = 1) -> str:
    """0.9608 -> "96.1%"; None -> an en dash."""
    if value is None or value == "":
        return DASH
    return f"{100 * float(value):.{int(digits)}f}%"


@register.filter
def pvalue(value) -> str:
    """p-values as researchers report them: 3 significant digits, scientific below 0.001."""
    if value is None or value == "":
        return DASH
    value = float(value)
    if value < 1e-3:
        return f"{value:.1e}"
    return f"{value:.3f}"


@register.filter
def num(value, digits: int = 2) -> str:
    if value is None or value == "":
        return DASH
    return f"{float(value):.{int(digits)}f}"
