"""The report as an XLSX workbook: one sheet per section, Chinese sheet names and headers."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import pandas as pd

from verify.exports import spreadsheet_safe
from verify.reports.build import WeeklyReport
from verify.reports.spikes import COUNT_MODEL_LABELS, CellTest

CELL_HEADERS = ["类别", "区", "本周线索数", "期望线索数", "倍数", "检验分布", "p 值", "q 值"]
SHEETS = ("概览", "异常上升", "分类分区检验", "反复发生", "高频词", "热度", "工单办理", "每周趋势")


def _cells(tests: tuple[CellTest, ...]) -> pd.DataFrame:
    rows = [
        [
            t.category,
            t.district,
            t.count,
            round(t.expected, 3),
            round(t.ratio, 2),
            COUNT_MODEL_LABELS[t.model],
            t.p_value,
            t.q_value,
        ]
        for t in tests
    ]
    return pd.DataFrame(rows, columns=CELL_HEADERS)


def _overview(report: WeeklyReport) -> pd.DataFrame:
    options = report.options
    rows = [
        ("报告周", report.week.label),
        ("对比基线", f"前 {len(report.trailing)} 周（{report.trailing[0]} 至 {report.trailing[-1]}）"),
        ("本周线索数", report.leads),
        ("前几周平均线索数", round(report.trailing_mean, 2)),
        ("异常上升", len(report.spikes)),
        ("反复发生的地点", len(report.recurring)),
        ("检验方法", "泊松检验；前几周方差大于均值时用负二项检验；Benjamini–Hochberg 控制错误发现率"),
        ("判定条件", f"q ≤ {options.fdr_level:g} 且本周至少 {options.min_count} 条线索"),
        ("反复发生条件", f"本周有线索，且前几周中至少 {options.recurring_min_weeks} 周有线索"),
        ("生成时间（UTC）", report.generated_at.strftime("%Y-%m-%d %H:%M")),
    ]
    return pd.DataFrame(rows, columns=["项目", "内容"])


def frames(report: WeeklyReport) -> dict[str, pd.DataFrame]:
    """Sheet name → its table, in SHEETS order."""
    recurring = pd.DataFrame(
        [
            [r.category, r.district, r.kind, r.place, len(r.weeks), "、".join(r.weeks), r.leads, r.this_week]
            for r in report.recurring
        ],
        columns=["类别", "区", "地点类型", "地点", "出现周数", "出现的周", "窗口内线索数", "本周线索数"],
    )
    terms = pd.DataFrame(
        [
            [category, rank, t.term, t.leads, t.other_leads, round(t.z, 3)]
            for category, listed in report.terms.items()
            for rank, t in enumerate(listed, start=1)
        ],
        columns=["类别", "排名", "词", "本类线索数", "其他类线索数", "z 值"],
    )
    heat = pd.DataFrame(
        [[h.category, h.district, h.leads, h.posts, h.engagement] for h in report.heat],
        columns=["类别", "区", "线索数", "帖子数", "互动量"],
    )
    tickets = pd.DataFrame(
        [
            [
                t.category,
                t.sent,
                t.returned,
                t.returns,
                t.first_dispatch_accuracy,
                t.closed,
                t.median_hours,
                t.p90_hours,
            ]
            for t in report.tickets
        ],
        columns=[
            "类别",
            "本周派单",
            "退单工单",
            "退单次数",
            "首次派单准确率",
            "本周办结",
            "办结时长中位数（小时）",
            "办结时长 P90（小时）",
        ],
    )
    categories = sorted({c for counts in report.weekly.values() for c in counts})
    trend = pd.DataFrame(
        [[week, *[report.weekly[week].get(c, 0) for c in categories]] for week in report.weeks],
        columns=["周", *categories],
    )
    tables = [
        _overview(report),
        _cells(report.spikes),
        _cells(report.cells),
        recurring,
        terms,
        heat,
        tickets,
        trend,
    ]
    return dict(zip(SHEETS, tables, strict=True))


def write_workbook(report: WeeklyReport, target: Path | IO[bytes]) -> None:
    """Write the workbook to a path or a binary stream; crawled text that would start a spreadsheet
    formula (a place name "=…") is prefixed with an apostrophe, as in every export (verify.exports)."""
    with pd.ExcelWriter(target, engine="openpyxl") as writer:
        for name, frame in frames(report).items():
            spreadsheet_safe(frame).to_excel(writer, sheet_name=name, index=False)
