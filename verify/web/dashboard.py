"""The supervisors' dashboard: daily counts, SLA, precision, throughput and crawl health as server SVG."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from verify.days import local_zone
from verify.web import dashboard_stats, svg
from verify.web.deps import DbSession, SupervisorPage, get_settings
from verify.web.pages import render

router = APIRouter(include_in_schema=False)
MAX_DAYS = 90


@router.get("/dashboard")
def dashboard_page(
    request: Request,
    session: DbSession,
    user: SupervisorPage,
    days: int = Query(default=14, ge=1, le=MAX_DAYS),
) -> Response:
    figures = dashboard_stats.build(session, local_zone(get_settings(request)), days=days)
    charts = {
        "found": svg.stacked_days(figures.days, figures.found, "每日发现线索（按类别）"),
        "verified": svg.stacked_days(figures.days, figures.verified, "每日核实线索（按类别）"),
        "by_category": svg.share_bars(
            [(p.label, p.share, f"{p.verified}/{p.reviewed}") for p in figures.by_category],
            "各类别实时准确率",
        ),
        "by_platform": svg.share_bars(
            [(p.label, p.share, f"{p.verified}/{p.reviewed}") for p in figures.by_platform],
            "各平台实时准确率",
        ),
    }
    return render(
        request, "dashboard.html", {"user": user, "figures": figures, "charts": charts, "days": days}
    )
