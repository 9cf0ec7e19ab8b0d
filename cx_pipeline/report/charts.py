"""Charts as inline SVG, drawn server-side with matplotlib.

Why SVG from matplotlib and not a JavaScript chart library: the report must open from a file with no network and
stay under 5 MB a brand. An inlined plotly.min.js alone is ~4.6 MB per page; a static SVG chart is 20–60 kB,
needs no script at all (so nothing can fail in the browser console) and prints. matplotlib is used through its
object API (``Figure``), not pyplot, so building reports in threads or next to other code shares no global state.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import matplotlib
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

BLUE, RED, GREEN, GREY, ORANGE, PURPLE = "#2563eb", "#dc2626", "#16a34a", "#6b7280", "#d97706", "#7c3aed"
QUADRANT_COLOURS = {"fix_first": RED, "keep_up": GREEN, "monitor": ORANGE, "maintain": BLUE}
_RC = {
    "svg.fonttype": "none",  # text stays text: smaller, selectable, readable by the browser test
    "svg.hashsalt": "cx-report",  # element ids do not change between builds of the same data
    "font.size": 9,
    "font.family": "sans-serif",
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _svg(fig: Figure, label: str) -> str:
    buf = io.StringIO()
    with matplotlib.rc_context(_RC):
        FigureCanvasSVG(fig).print_svg(buf, metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    # one accessible name per chart; the numbers are in the table next to it
    return text.replace("<svg ", f'<svg role="img" aria-label="{label}" class="chart" ', 1)


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1) -> tuple[Figure, list]:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width, height), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, [ax for row in axes for ax in row]


def message_chart(label: str, message: str) -> str:
    """A chart-sized box saying why there is nothing to draw, so an empty section still explains itself."""
    with matplotlib.rc_context(_RC):
        fig, (ax,) = _figure(7, 1.2)
        ax.axis("off")
        ax.text(0.5, 0.5, message, ha="center", va="center", color=GREY, wrap=True)
    return _svg(fig, label)


@dataclass
class Series:
    """One metric over months: value with its 95% interval, and whether each point is low-n."""

    title: str
    unit: str
    periods: list[str]
    values: list[float | None]
    lows: list[float | None]
    highs: list[float | None]
    low_n: list[bool]
    limits: tuple[float, float] | None = None
    extra: dict[str, list] = field(default_factory=dict)


def _plot_series(ax, s: Series, colour: str) -> None:  # type: ignore[no-untyped-def]
    xs = list(range(len(s.periods)))
    pts = [(x, v, lo, hi, ln) for x, v, lo, hi, ln in zip(xs, s.values, s.lows, s.highs, s.low_n, strict=True)
           if v is not None]
    if pts:
        px = [p[0] for p in pts]
        ax.fill_between(px, [p[2] if p[2] is not None else p[1] for p in pts],
                        [p[3] if p[3] is not None else p[1] for p in pts], color=colour, alpha=0.18, linewidth=0)
        ax.plot(px, [p[1] for p in pts], color=colour, linewidth=1.5)
        for x, v, lo, hi, ln in pts:
            ax.errorbar([x], [v], yerr=[[v - (lo if lo is not None else v)], [(hi if hi is not None else v) - v]],
                        fmt="o", color=colour, markerfacecolor="white" if ln else colour, markersize=6, capsize=3)
    ax.set_xticks(xs, s.periods, rotation=45 if len(xs) > 6 else 0, ha="right" if len(xs) > 6 else "center")
    ax.set_xlim(-0.5, max(len(xs) - 0.5, 0.5))
    if s.limits:
        lo_all = [p[2] for p in pts if p[2] is not None] or [s.limits[0]]
        hi_all = [p[3] for p in pts if p[3] is not None] or [s.limits[1]]
        pad = (max(hi_all) - min(lo_all)) * 0.1 or 1
        ax.set_ylim(max(s.limits[0], min(lo_all) - pad), min(s.limits[1], max(hi_all) + pad))
    ax.set_title(s.title, loc="left", fontsize=10, fontweight="bold")
    ax.set_ylabel(s.unit)
    ax.grid(axis="y", alpha=0.3)


def trend_chart(label: str, series: Sequence[Series], colours: Sequence[str] = (BLUE, GREEN, ORANGE, PURPLE)) -> str:
    """Small multiples, one per metric: a line with its 95% band; hollow markers are low-n periods."""
    if not series:
        return message_chart(label, "no data for this chart")
    ncols = min(2, len(series))
    nrows = (len(series) + ncols - 1) // ncols
    fig, axes = _figure(4.2 * ncols, 2.7 * nrows, ncols, nrows)
    with matplotlib.rc_context(_RC):
        for i, ax in enumerate(axes):
            if i < len(series):
                _plot_series(ax, series[i], colours[i % len(colours)])
            else:
                ax.axis("off")
    return _svg(fig, label)


@dataclass
class Bar:
    label: str
    value: float
    low: float | None = None
    high: float | None = None
    colour: str = BLUE
    note: str = ""


def _hbar(ax, bars: Sequence[Bar], title: str, xlabel: str, zero_line: bool = False) -> None:  # type: ignore[no-untyped-def]
    ys = list(range(len(bars)))[::-1]
    for y, b in zip(ys, bars, strict=True):
        ax.barh([y], [b.value], color=b.colour, alpha=0.85, height=0.6)
        if b.low is not None and b.high is not None:
            ax.errorbar([b.value], [y], xerr=[[max(b.value - b.low, 0)], [max(b.high - b.value, 0)]], fmt="none",
                        ecolor="#111827", capsize=3, linewidth=1)
    ax.set_yticks(ys, [b.label for b in bars])
    if zero_line:
        ax.axvline(0, color="#111827", linewidth=0.8)
    ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)


def bar_panels(label: str, panels: Sequence[tuple[str, str, Sequence[Bar]]], zero_line: bool = False,
               width: float = 4.2) -> str:
    """Horizontal bars with 95% intervals, one panel per (title, x label, bars)."""
    panels = [p for p in panels if p[2]]
    if not panels:
        return message_chart(label, "no data for this chart")
    height = max(2.0, 0.32 * max(len(p[2]) for p in panels) + 1.0)
    fig, axes = _figure(width * len(panels), height, len(panels), 1)
    with matplotlib.rc_context(_RC):
        for ax, (title, xlabel, bars) in zip(axes, panels, strict=True):
            _hbar(ax, bars, title, xlabel, zero_line)
    return _svg(fig, label)


@dataclass
class Point:
    label: str
    x: float
    y: float
    x_low: float | None
    x_high: float | None
    colour: str


def quadrant_chart(label: str, points: Sequence[Point], x_split: float | None, y_split: float | None,
                   title: str, xlabel: str, ylabel: str, side: tuple[str, str, Sequence[Bar]] | None = None) -> str:
    """Importance × performance with the importance interval as a horizontal whisker; the dashed lines are the
    splits the quadrant labels were made with. ``side`` adds a bar panel (text impact) beside it."""
    ncols = 2 if side and side[2] else 1
    fig, axes = _figure(4.6 * ncols, 3.4, ncols, 1)
    with matplotlib.rc_context(_RC):
        ax = axes[0]
        if not points:
            ax.axis("off")
            ax.text(0.5, 0.5, "no Shapley regression: it needs ratings per touchpoint",
                    ha="center", va="center", color=GREY)
        for p in points:
            xerr = None
            if p.x_low is not None and p.x_high is not None:
                xerr = [[max(p.x - p.x_low, 0)], [max(p.x_high - p.x, 0)]]
            ax.errorbar([p.x], [p.y], xerr=xerr, fmt="o", color=p.colour, capsize=3, markersize=7)
            ax.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=(6, 6), fontsize=8)
        if points:
            if x_split is not None:
                ax.axvline(x_split, color=GREY, linestyle="--", linewidth=0.8)
            if y_split is not None:
                ax.axhline(y_split, color=GREY, linestyle="--", linewidth=0.8)
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
            ax.set_ylim(0, 1.05)
            ax.set_xlim(left=0)
        ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
        if ncols == 2 and side:
            _hbar(axes[1], side[2], side[0], side[1], zero_line=True)
    return _svg(fig, label)


def clean_label(text: str) -> str:
    """Labels go into an SVG attribute: keep them to plain characters."""
    return re.sub(r"[<>&\"]", "", text)
