"""The report's PNG charts (matplotlib, Agg), with Chinese labels drawn in a font that has the glyphs.

The font: Noto Sans SC from the pylopdf-fonts-zh-cn wheel (a pyproject dependency, so `make install`
brings it and nothing is fetched at run time); failing that, any installed font that draws Chinese
(classify.evaluation.cjk_font, e.g. Debian's fonts-wqy-microhei). With neither, no chart is drawn
rather than one of boxes (NO_FONT says what to install).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from classify.evaluation import cjk_font, draws_chinese
from verify.reports.build import WeeklyReport

NO_FONT = "未生成图表：没有能显示中文的字体（pip 包 pylopdf-fonts-zh-cn，或 Debian 的 fonts-wqy-microhei）"
#: Categories drawn in their own colour in the trend chart; the rest are stacked as 其他.
TREND_SERIES = 8
#: Cells drawn in the heat chart.
HEAT_ROWS = 15
DPI = 110


class NoChineseFont(RuntimeError):
    """No font that draws Chinese is installed."""


@lru_cache(maxsize=1)
def chinese_font() -> str | None:
    """The family name of the font the charts use (see the module's docstring), or None."""
    from matplotlib import font_manager

    try:
        from pylopdf_fonts_zh_cn import sans_path
    except ImportError:  # pragma: no cover - the dependency is installed with the project
        return cjk_font()
    path = str(sans_path())
    if not draws_chinese(path):  # pragma: no cover - a damaged install
        return cjk_font()
    font_manager.fontManager.addfont(path)
    return str(font_manager.FontProperties(fname=path).get_name())


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _style(font: str) -> dict[str, Any]:
    # DejaVu Sans after the Chinese font: glyphs the first lacks fall back, never to boxes. Mathtext off:
    # a "$" in a name is a dollar sign, not a formula.
    return {"font.family": [font, "DejaVu Sans"], "axes.unicode_minus": False, "text.parse_math": False}


def _trend(report: WeeklyReport, axes: Any) -> None:
    weeks = report.weeks
    totals: dict[str, int] = {}
    for counts in report.weekly.values():
        for category, n in counts.items():
            totals[category] = totals.get(category, 0) + n
    ranked = sorted(totals, key=lambda c: (-totals[c], c))
    named = ranked[:TREND_SERIES]
    bottoms = [0] * len(weeks)
    series = [(c, [report.weekly[w].get(c, 0) for w in weeks]) for c in named]
    rest = [sum(n for c, n in report.weekly[w].items() if c not in named) for w in weeks]
    if any(rest):
        series.append(("其他", rest))
    for name, values in series:
        axes.bar(range(len(weeks)), values, bottom=bottoms, label=name)
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    axes.set_xticks(range(len(weeks)), [w[5:] for w in weeks])
    axes.set_ylabel("线索数")
    axes.set_title(f"各类别每周线索数（{report.week} 及前 {len(report.trailing)} 周）")
    if series:
        axes.legend(fontsize=8, loc="upper left", ncol=2)


def _spikes(report: WeeklyReport, axes: Any) -> None:
    axes.set_title(f"{report.week} 异常上升（q ≤ {report.options.fdr_level:g}）")
    if not report.spikes:
        axes.text(0.5, 0.5, "本周未发现异常上升", ha="center", va="center", fontsize=14)
        axes.set_axis_off()
        return
    rows = list(reversed(report.spikes))
    labels = [f"{s.category}·{s.district}" for s in rows]
    positions = range(len(rows))
    axes.barh([p + 0.2 for p in positions], [s.count for s in rows], height=0.4, label="本周")
    axes.barh([p - 0.2 for p in positions], [s.expected for s in rows], height=0.4, label="期望")
    axes.set_yticks(list(positions), labels)
    axes.set_xlabel("线索数")
    axes.legend(fontsize=8)


def _heat(report: WeeklyReport, axes: Any) -> None:
    rows = list(reversed(report.heat[:HEAT_ROWS]))
    axes.set_title(f"{report.week} 热度：互动量最高的类别·区（点赞 + 回复 + 转发）")
    if not rows:
        axes.text(0.5, 0.5, "本周没有线索", ha="center", va="center", fontsize=14)
        axes.set_axis_off()
        return
    axes.barh(range(len(rows)), [r.engagement for r in rows], color="#ef6c00")
    axes.set_yticks(range(len(rows)), [f"{r.category}·{r.district}" for r in rows])
    for i, row in enumerate(rows):
        axes.text(row.engagement, i, f" {row.leads} 条线索", va="center", fontsize=8)
    axes.set_xlabel("互动量")


def _tickets(report: WeeklyReport, axes: Any) -> None:
    rows = [t for t in report.tickets if t.sent]
    axes.set_title(f"{report.week} 各类别首次派单准确率")
    if not rows:
        axes.text(0.5, 0.5, "本周没有派出的工单", ha="center", va="center", fontsize=14)
        axes.set_axis_off()
        return
    rows.reverse()
    shares = [t.first_dispatch_accuracy or 0.0 for t in rows]
    axes.barh(range(len(rows)), shares, color="#2e7d32")
    axes.set_yticks(range(len(rows)), [t.category for t in rows])
    axes.set_xlim(0, 1.25)
    for i, (row, share) in enumerate(zip(rows, shares, strict=True)):
        axes.text(share, i, f" {share:.0%}（{row.sent - row.returned}/{row.sent}）", va="center", fontsize=8)
    axes.set_xlabel("未被退单的工单占比")


def _height(rows: int) -> float:
    """Inches for a bar chart of ``rows`` bars: one bar is not drawn a hand wide."""
    return min(max(2.4, 1.6 + 0.45 * rows), 9.0)


Size = Callable[[WeeklyReport], tuple[float, float]]
#: File name → (drawing function, figure size in inches for the report).
CHARTS: dict[str, tuple[Callable[[WeeklyReport, Any], None], Size]] = {
    "trend.png": (_trend, lambda report: (9, 4.5)),
    "spikes.png": (_spikes, lambda report: (8, _height(len(report.spikes)))),
    "heat.png": (_heat, lambda report: (8, _height(len(report.heat[:HEAT_ROWS])))),
    "tickets.png": (_tickets, lambda report: (8, _height(len(report.tickets)))),
}


def write_charts(report: WeeklyReport, folder: Path) -> list[Path]:
    """Draw every chart into ``folder``; NoChineseFont when no installed font draws Chinese."""
    font = chinese_font()
    if font is None:
        raise NoChineseFont(NO_FONT)
    plt = _pyplot()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with plt.rc_context(_style(font)):
        for name, (draw, size) in CHARTS.items():
            figure, axes = plt.subplots(figsize=size(report))
            try:
                draw(report, axes)
                path = folder / name
                figure.savefig(path, dpi=DPI, bbox_inches="tight")
            finally:
                plt.close(figure)
            written.append(path)
    return written
