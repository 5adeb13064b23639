"""The supervisors' dashboard: daily counts, SLA, precision, throughput and crawl health as server SVG."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from verify.web.deps import DbSession, SupervisorPage
from verify.web.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/dashboard")
def dashboard_page(request: Request, session: DbSession, user: SupervisorPage) -> Response:
    return render(request, "dashboard.html", {"user": user})
