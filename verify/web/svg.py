"""The dashboard's charts as geometry (stacked day bars, horizontal share bars); the template
`_chart.html` draws them as SVG, and Jinja's autoescaping escapes every label (crawled text included).

No chart library and no CDN: the machine is offline and the page's CSP allows no remote anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

PALETTE = ("#0f6cbd", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#8d6e63", "#546e7a", "#ad1457")
OTHER_COLOUR = "#b0bec5"
TRACK_COLOUR = "#eceff1"
SHARE_COLOUR = "#2e7d32"
MAX_SERIES = len(PALETTE)


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str = "middle"
    size: int = 11


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    title: str | None = None  # the hover text, when the bar stands for a count


@dataclass
class Chart:
    """One SVG: its view box, its title, the bars (drawn first) and the labels (drawn over them)."""

    width: int
    height: int
    title: str
    bars: list[Bar] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


def stacked_days(days: Sequence[str], counts: Mapping[str, Mapping[str, int]], title: str) -> Chart:
    """One bar per day, stacked by series (e.g. category); ``counts[day][series]``. Legend below."""
    totals = {series: 0 for day in days for series in counts.get(day, {})}
    for day in days:
        for series, count in counts.get(day, {}).items():
            totals[series] += count
    # The biggest series get their own colour; the rest are drawn together as 其他.
    ranked = sorted(totals, key=lambda s: (-totals[s], s))
    named = ranked[: MAX_SERIES - 1] if len(ranked) > MAX_SERIES else ranked
    colours = {series: PALETTE[i] for i, series in enumerate(named)}
    width, height, left, top, bottom = 640, 220, 36, 24, 40
    plot_h = height - top - bottom
    peak = max([sum(counts.get(day, {}).values()) for day in days] + [1])
    step = (width - left - 8) / max(len(days), 1)
    chart = Chart(width, height + 18 * 2, title)
    chart.labels += [
        Label(left, 14, title, "start", 13),
        Label(left - 4, top + 4, str(peak), "end"),
        Label(left - 4, top + plot_h, "0", "end"),
    ]
    for index, day in enumerate(days):
        x = left + index * step + 2
        y = float(top + plot_h)
        day_counts = counts.get(day, {})
        others = sum(v for s, v in day_counts.items() if s not in colours)
        stack = [(series, day_counts.get(series, 0), colours[series]) for series in named]
        for name, value, colour in [*stack, ("其他", others, OTHER_COLOUR)]:
            if not value:
                continue
            bar = plot_h * value / peak
            y -= bar
            chart.bars.append(Bar(x, y, max(step - 4, 1), bar, colour, f"{day} {name}: {value}"))
        if len(days) <= 16 or index % 2 == 0:
            chart.labels.append(Label(x + step / 2 - 2, top + plot_h + 14, day[5:], size=10))
    legend = [*named, *(["其他"] if len(ranked) > len(named) else [])]
    for i, series in enumerate(legend):
        lx, ly = left + (i % 5) * 120, height + (i // 5) * 18
        chart.bars.append(Bar(lx, ly - 9, 10, 10, colours.get(series, OTHER_COLOUR)))
        chart.labels.append(Label(lx + 14, ly, series, "start"))
    return chart


def share_bars(rows: Sequence[tuple[str, float, str]], title: str) -> Chart:
    """Horizontal bars of shares in [0, 1]: (label, share, note shown at the bar's end)."""
    width, row_h, left, top = 640, 22, 150, 24
    chart = Chart(width, top + row_h * max(len(rows), 1) + 8, title)
    chart.labels.append(Label(8, 14, title, "start", 13))
    plot_w = width - left - 140
    for i, (label, share, note) in enumerate(rows):
        y = top + i * row_h
        chart.bars.append(Bar(left, y + 3, plot_w, 14, TRACK_COLOUR))
        chart.bars.append(Bar(left, y + 3, plot_w * min(max(share, 0.0), 1.0), 14, SHARE_COLOUR))
        chart.labels.append(Label(left - 6, y + 14, label, "end"))
        chart.labels.append(Label(left + plot_w + 6, y + 14, f"{share:.0%} {note}", "start"))
    return chart
