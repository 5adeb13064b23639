"""Small server-rendered SVG charts (stacked day bars, horizontal share bars); every label is escaped.

No chart library and no CDN: the machine is offline and the page's CSP allows no remote anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

PALETTE = ("#0f6cbd", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#8d6e63", "#546e7a", "#ad1457")
OTHER_COLOUR = "#b0bec5"
MAX_SERIES = len(PALETTE)


def _text(x: float, y: float, label: object, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">{escape(str(label))}</text>'
    )


def _svg_open(width: int, height: int) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" viewBox="0 0 {width} {height}">'


def stacked_days(days: Sequence[str], counts: Mapping[str, Mapping[str, int]], title: str) -> Markup:
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
    parts = [
        _svg_open(width, height + 18 * 2),
        f"<title>{escape(title)}</title>",
        _text(left, 14, title, "start", 13),
        _text(left - 4, top + 4, peak, "end"),
        _text(left - 4, top + plot_h, 0, "end"),
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
            label = escape(f"{day} {name}: {value}")
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 4, 1):.1f}" height="{bar:.1f}" '
                f'fill="{colour}"><title>{label}</title></rect>'
            )
        if len(days) <= 16 or index % 2 == 0:
            parts.append(_text(x + step / 2 - 2, top + plot_h + 14, day[5:], size=10))
    legend = [*named, *(["其他"] if len(ranked) > len(named) else [])]
    for i, series in enumerate(legend):
        lx, ly = left + (i % 5) * 120, height + (i // 5) * 18
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{colours.get(series, OTHER_COLOUR)}"/>'
        )
        parts.append(_text(lx + 14, ly, series, "start"))
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bars(rows: Sequence[tuple[str, float, str]], title: str) -> Markup:
    """Horizontal bars of shares in [0, 1]: (label, share, note shown at the bar's end)."""
    width, row_h, left, top = 640, 22, 150, 24
    height = top + row_h * max(len(rows), 1) + 8
    parts = [
        _svg_open(width, height),
        f"<title>{escape(title)}</title>",
        _text(8, 14, title, "start", 13),
    ]
    plot_w = width - left - 140
    for i, (label, share, note) in enumerate(rows):
        y = top + i * row_h
        bar = plot_w * min(max(share, 0.0), 1.0)
        parts.append(_text(left - 6, y + 14, label, "end"))
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{plot_w}" height="14" fill="#eceff1"/>')
        parts.append(f'<rect x="{left}" y="{y + 3}" width="{bar:.1f}" height="14" fill="#2e7d32"/>')
        parts.append(_text(left + plot_w + 6, y + 14, f"{share:.0%} {note}", "start"))
    parts.append("</svg>")
    return Markup("".join(parts))
