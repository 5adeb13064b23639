"""The weekly class-case report in the app (/reports/weekly?week=2026-W48) for supervisors and admins:
the page, with its charts as inline SVG, and the same week's workbook to download."""

from __future__ import annotations

import io
from collections.abc import Sequence

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from storage.base import utcnow
from verify.days import local_zone
from verify.reports.build import WeeklyReport, build_weekly_report
from verify.reports.outcomes import ALL_CATEGORIES
from verify.reports.spikes import COUNT_MODEL_LABELS
from verify.reports.weeks import IsoWeek, WeekError
from verify.reports.workbook import write_workbook
from verify.web import svg
from verify.web.deps import DbSession, SupervisorPage, get_settings
from verify.web.pages import render

router = APIRouter(include_in_schema=False)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HEAT_ROWS = 12
#: A week's report is built once and kept this long: on a city-sized database it takes seconds, and a
#: past week changes little (late posts, ticket closings) between two views.
CACHE_SECONDS = 600
CACHE_WEEKS = 8


def count_bars(rows: Sequence[tuple[str, float, str]], title: str) -> svg.Chart:
    """Horizontal bars of counts scaled to the largest: (label, value, note shown at the bar's end)."""
    width, row_h, left, top = 640, 22, 170, 24
    chart = svg.Chart(width, top + row_h * max(len(rows), 1) + 8, title)
    chart.labels.append(svg.Label(8, 14, title, "start", 13))
    plot_w = width - left - 150
    peak = max([value for _, value, _ in rows] + [1])
    for i, (label, value, note) in enumerate(rows):
        y = top + i * row_h
        chart.bars.append(svg.Bar(left, y + 3, plot_w * max(value, 0) / peak, 14, svg.PALETTE[3], note))
        chart.labels.append(svg.Label(left - 6, y + 14, label, "end"))
        chart.labels.append(svg.Label(left + plot_w + 6, y + 14, note, "start"))
    return chart


def page_charts(report: WeeklyReport) -> dict[str, svg.Chart]:
    """The page's charts, named as the PNG files of the written report."""
    spikes = [
        (f"{s.category}·{s.district}", s.count, f"{s.count}（期望 {s.expected:.1f}）") for s in report.spikes
    ]
    heat = [
        (f"{h.category}·{h.district}", h.engagement, f"互动 {h.engagement}") for h in report.heat[:HEAT_ROWS]
    ]
    sent = [t for t in report.tickets if t.sent and t.category != ALL_CATEGORIES]
    accuracy = [
        (t.category, t.first_dispatch_accuracy or 0.0, f"{t.sent - t.returned}/{t.sent}") for t in sent
    ]
    charts = {"trend.png": svg.stacked_days(report.weeks, report.weekly, "各类别每周线索数")}
    if spikes:
        charts["spikes.png"] = count_bars(spikes, "异常上升：本周线索数")
    if heat:
        charts["heat.png"] = count_bars(heat, "热度：互动量最高的类别·区")
    if accuracy:
        charts["tickets.png"] = svg.share_bars(accuracy, "各类别首次派单准确率")
    return charts


def _week(request: Request, text: str | None) -> IsoWeek:
    if text:
        return IsoWeek.parse(text)
    return IsoWeek.last_complete(utcnow(), local_zone(get_settings(request)))


def _report(request: Request, session: DbSession, week: IsoWeek) -> WeeklyReport:
    """The week's report, from the app's small cache when built less than CACHE_SECONDS ago."""
    cache: dict[IsoWeek, WeeklyReport] | None = getattr(request.app.state, "weekly_reports", None)
    if cache is None:
        cache = request.app.state.weekly_reports = {}
    now = utcnow()
    cached = cache.get(week)
    if cached is not None and (now - cached.generated_at).total_seconds() < CACHE_SECONDS:
        return cached
    settings = get_settings(request)
    report = build_weekly_report(session, settings.report, week, local_zone(settings), now)
    cache[week] = report
    for stale in sorted(cache.items(), key=lambda item: item[1].generated_at)[:-CACHE_WEEKS]:
        cache.pop(stale[0], None)  # pop: two requests may drop the same week
    return report


@router.get("/reports/weekly")
def weekly_page(
    request: Request,
    session: DbSession,
    user: SupervisorPage,
    week: str | None = Query(default=None, max_length=20),
) -> Response:
    try:
        chosen = _week(request, week)
    except WeekError as error:
        context = {"user": user, "message": f"无法显示周报：{error}"}
        return render(request, "report_bad_week.html", context, status_code=400)
    report = _report(request, session, chosen)
    context = {
        "user": user,
        "report": report,
        "charts": page_charts(report),
        "model_labels": COUNT_MODEL_LABELS,
        "previous_url": f"/reports/weekly?week={chosen.shifted(-1)}",
        "workbook_url": f"/reports/weekly.xlsx?week={chosen}",
    }
    return render(request, "report_weekly.html", context)


@router.get("/reports/weekly.xlsx")
def weekly_workbook(
    request: Request,
    session: DbSession,
    user: SupervisorPage,
    week: str | None = Query(default=None, max_length=20),
) -> Response:
    try:
        chosen = _week(request, week)
    except WeekError as error:
        return Response(str(error), status_code=400, media_type="text/plain; charset=utf-8")
    buffer = io.BytesIO()
    write_workbook(_report(request, session, chosen), buffer)
    disposition = f'attachment; filename="weekly-{chosen}.xlsx"'
    return Response(buffer.getvalue(), media_type=XLSX, headers={"Content-Disposition": disposition})
