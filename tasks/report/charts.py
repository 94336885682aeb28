"""Two chart kinds, drawn as small SVG files by hand: horizontal grouped bars and line panels.

SVG because charts are mostly text and lines: a few KB, sharp at any zoom, no plotting library
to install. Every text drawn comes from the data (class names, sizes) and is XML-escaped; an
`<img>` never runs what an SVG holds, and these hold nothing but shapes and text anyway.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from tasks.report.picture import Picture, short

#: Okabe-Ito: tells series apart for colour-blind readers too.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
GREY = "#9a9a9a"
FONT = "font-family:DejaVu Sans,Helvetica,Arial,sans-serif"
#: An average glyph is about this wide relative to the font size (for layout only).
GLYPH = 0.6


@dataclass
class Series:
    """One named row of values (None: no value), drawn in one colour."""

    name: str
    values: list[float | None]
    color: str | None = None


@dataclass
class Line:
    """A line of (x, y) points in a panel."""

    name: str
    points: list[tuple[float, float]]
    color: str | None = None
    width: float = 2.0


@dataclass
class Panel:
    """One plot area of a line chart: its lines share the y axis."""

    title: str
    lines: list[Line] = field(default_factory=list)
    y_min: float | None = None
    y_max: float | None = None


class _Svg:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height, self.parts = width, height, []

    def text(self, x: float, y: float, text: str, *, size: int = 12, anchor: str = "start",
             color: str = "#222", weight: str = "normal") -> None:
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                          f'fill="{color}" font-weight="{weight}">{escape(text)}</text>')

    def rect(self, x: float, y: float, w: float, h: float, color: str, title: str | None = None) -> None:
        tip = f"<title>{escape(title)}</title>" if title else ""
        self.parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{h:.1f}" '
                          f'fill="{color}">{tip}</rect>')

    def line(self, x1: float, y1: float, x2: float, y2: float, color: str = "#ccc", width: float = 1) -> None:
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                          f'stroke="{color}" stroke-width="{width}"/>')

    def polyline(self, points: list[tuple[float, float]], color: str, width: float) -> None:
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        self.parts.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="{width}"/>')
        for x, y in points if len(points) <= 60 else ():
            self.parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>')

    def value_axis(self, left: float, plot_w: float, ticks: list[float], scale_max: float, top: float,
                   bottom: float) -> None:
        """Grid lines at `ticks` across a plot of bars growing from `left`, their values under it."""
        for tick in ticks:
            if tick <= scale_max:
                x = left + plot_w * tick / scale_max
                self.line(x, top - 4, x, bottom + 4)
                self.text(x, bottom + 18, _fmt(tick), size=10, anchor="middle", color="#555")

    def bar(self, left: float, y: float, h: float, plot_w: float, scale_max: float, value: float | None,
            color: str, tip: str) -> None:
        """A bar from `left` with its value written after its end; a dash for no value."""
        if value is None:
            self.text(left + 4, y + h - 3, "–", size=10, color="#777")
            return
        w = plot_w * min(max(value, 0.0), scale_max) / scale_max
        self.rect(left, y, w, h, color, f"{tip}: {_fmt(value)}")
        self.text(left + w + 4, y + h - 3, _fmt(value), size=10, color="#333")

    def picture(self, title: str, alt: str) -> Picture:
        body = "".join(self.parts)
        svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
               f'viewBox="0 0 {self.width} {self.height}" style={quoteattr(FONT)}>'
               f'<rect width="100%" height="100%" fill="#ffffff"/>{body}</svg>')
        return Picture(title=title, mime="image/svg+xml", data=svg.encode("utf-8"), width=self.width,
                       height=self.height, alt=alt)


def nice_ticks(low: float, high: float, count: int = 5, *, whole: bool = False) -> list[float]:
    """Round tick values covering [low, high].

    >>> nice_ticks(0, 70)
    [0.0, 20.0, 40.0, 60.0, 80.0]
    """
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        high = low + 1
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if whole:  # counts (epochs) get whole-number ticks
        step = max(1, math.ceil(step))
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value < high + step * 0.999 and len(ticks) < 20:
        ticks.append(float(round(value, 10)))
        value += step
    return ticks


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.3g}"


def bar_chart(title: str, categories: list[str], series: list[Series], *, unit: str = "",
              x_max: float | None = None, width: int = 720, alt: str | None = None) -> Picture:
    """Horizontal grouped bars: one group per category, one bar per series, value at the bar's end.

    >>> bar_chart("AP", ["car"], [Series("AP", [70.0])]).mime
    'image/svg+xml'
    """
    bars = max(len(series), 1)
    bar_h = 14 if bars > 1 else 18
    group_h = bars * bar_h + 10
    label_w = min(max((len(short(c)) for c in categories), default=4) * 12 * GLYPH + 16, 230)
    legend_h = 22 if bars > 1 else 0
    top, bottom, right = 34 + legend_h, 30, 60
    height = int(top + bottom + max(len(categories), 1) * group_h)
    values = [v for s in series for v in s.values if v is not None]
    peak = x_max if x_max is not None else max(values, default=1.0)
    ticks = nice_ticks(0, peak if peak > 0 else 1.0)
    scale_max = x_max if x_max is not None else ticks[-1]
    plot_w = width - label_w - right
    svg = _Svg(width, height)
    svg.text(10, 20, title, size=14, weight="bold")
    for i, s in enumerate(series if bars > 1 else ()):
        x = label_w + i * 150
        svg.rect(x, 30, 12, 12, s.color or PALETTE[i % len(PALETTE)])
        svg.text(x + 16, 40, short(s.name, 20), size=11)
    svg.value_axis(label_w, plot_w, ticks, scale_max, top, height - bottom)
    if unit:
        svg.text(label_w + plot_w, height - 2, unit, size=10, anchor="end", color="#555")
    for g, category in enumerate(categories):
        y0 = top + g * group_h + 5
        svg.text(label_w - 8, y0 + bars * bar_h / 2 + 4, short(category), size=12, anchor="end")
        for i, s in enumerate(series):
            value = s.values[g] if g < len(s.values) else None
            svg.bar(label_w, y0 + i * bar_h + 1, bar_h - 2, plot_w, scale_max, value,
                    s.color or PALETTE[i % len(PALETTE)], f"{category} · {s.name}")
    return svg.picture(title, alt or title)


def line_chart(title: str, panels: list[Panel], *, x_label: str = "epoch", x_range: tuple[float, float] | None = None,
               width: int = 720, panel_height: int = 190, alt: str | None = None) -> Picture:
    """Panels stacked over one shared x axis, each with its own y axis and legend.

    >>> line_chart("loss", [Panel("loss", [Line("loss", [(1, 0.5), (2, 0.25)])])]).height
    280
    """
    left, right, top, gap, bottom = 64, 150, 52, 36, 38
    height = top + len(panels) * panel_height + (len(panels) - 1) * gap + bottom
    xs = [x for p in panels for line in p.lines for x, _ in line.points]
    low, high = x_range or (min(xs, default=0), max(xs, default=1))
    x_ticks = nice_ticks(min([low, *xs]), max([high, *xs]), 8, whole=True)
    x_lo, x_hi = x_ticks[0], x_ticks[-1]
    plot_w = width - left - right
    svg = _Svg(width, height)
    svg.text(10, 20, title, size=14, weight="bold")

    def sx(x: float) -> float:
        return left + plot_w * (x - x_lo) / ((x_hi - x_lo) or 1)

    for n, panel in enumerate(panels):
        y_top = top + n * (panel_height + gap)
        ys = [y for line in panel.lines for _, y in line.points]
        low = panel.y_min if panel.y_min is not None else min(ys, default=0.0)
        high = panel.y_max if panel.y_max is not None else max(ys, default=1.0)
        y_ticks = nice_ticks(low, high, 5)
        y_lo, y_hi = (panel.y_min, panel.y_max) if panel.y_min is not None and panel.y_max is not None \
            else (y_ticks[0], y_ticks[-1])

        def sy(y: float, y_top=y_top, y_lo=y_lo, y_hi=y_hi) -> float:
            return y_top + panel_height * (1 - (y - y_lo) / ((y_hi - y_lo) or 1))

        svg.text(left, y_top - 6, panel.title, size=12, weight="bold")
        for tick in y_ticks:
            if y_lo <= tick <= y_hi:
                svg.line(left, sy(tick), left + plot_w, sy(tick))
                svg.text(left - 6, sy(tick) + 4, _fmt(tick), size=10, anchor="end", color="#555")
        for tick in x_ticks:
            svg.line(sx(tick), y_top, sx(tick), y_top + panel_height, "#eee")
        svg.line(left, y_top + panel_height, left + plot_w, y_top + panel_height, "#888")
        if not panel.lines or not ys:
            svg.text(left + plot_w / 2, y_top + panel_height / 2, "no values recorded", anchor="middle",
                     color="#777")
        for i, line in enumerate(panel.lines):
            color = line.color or PALETTE[i % len(PALETTE)]
            svg.polyline([(sx(x), sy(min(max(y, y_lo), y_hi))) for x, y in line.points], color, line.width)
            svg.rect(left + plot_w + 12, y_top + 4 + i * 18, 12, 3, color)
            svg.text(left + plot_w + 28, y_top + 9 + i * 18, short(line.name, 17), size=11)
    for tick in x_ticks:
        svg.text(sx(tick), height - bottom + 16, _fmt(tick), size=10, anchor="middle", color="#555")
    svg.text(left + plot_w / 2, height - 2, x_label, size=11, anchor="middle", color="#555")
    return svg.picture(title, alt or title)


@dataclass
class Column:
    """One panel of `bar_columns`: a value per category (None: none), on its own scale."""

    title: str
    values: list[float | None]
    color: str | None = None
    x_max: float | None = None


def bar_columns(title: str, categories: list[str], columns: list[Column], *, width: int = 720,
                alt: str | None = None) -> Picture:
    """Panels of horizontal bars side by side, one row per category across all of them, each panel
    on its own scale: quantities of different units (mAP %, MB) read along one row.

    >>> picture = bar_columns("chain", ["train", "prune"], [Column("mAP %", [80.0, None]), Column("MB", [85.0, 21.0])])
    >>> picture.mime, picture.height
    ('image/svg+xml', 140)
    """
    row_h, gap = 24, 28
    label_w = min(max((len(short(c)) for c in categories), default=4) * 12 * GLYPH + 16, 230)
    top, bottom = 56, 36
    height = int(top + bottom + max(len(categories), 1) * row_h)
    panel_w = (width - label_w - 10 - gap * (len(columns) - 1)) / max(len(columns), 1)
    svg = _Svg(width, height)
    svg.text(10, 20, title, size=14, weight="bold")
    for g, category in enumerate(categories):
        svg.text(label_w - 8, top + g * row_h + row_h / 2 + 4, short(category), size=12, anchor="end")
    for n, column in enumerate(columns):
        left = label_w + n * (panel_w + gap)
        plot_w = panel_w - 44  # room for the value written after the longest bar
        color = column.color or PALETTE[n % len(PALETTE)]
        known = [v for v in column.values if v is not None]
        ticks = nice_ticks(0, column.x_max or max(known, default=1.0) or 1.0, 4)
        scale_max = column.x_max or ticks[-1]
        svg.text(left, top - 12, column.title, size=12, weight="bold")
        svg.value_axis(left, plot_w, ticks, scale_max, top, height - bottom)
        for g, category in enumerate(categories):
            svg.bar(left, top + g * row_h + 3, row_h - 6, plot_w, scale_max,
                    column.values[g] if g < len(column.values) else None, color, f"{category} · {column.title}")
    return svg.picture(title, alt or title)
