"""Downloads of the queue as the analyst filtered it (leads) and of verified cases, as CSV, XLSX or Parquet.

The cases frame is verify.exports' (the same one `weisu export` writes); this module adds the leads
frame and serves both, from the queue page (/exports/…) and the API (/api/v1/exports/…).
"""

from __future__ import annotations

import enum
import io
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from storage.models import Lead, User
from storage.vocabulary import PRIORITY_LABELS, REQUEST_TYPE_LABELS, STATE_LABELS
from verify import exports as case_exports
from verify.days import local_wall_clock, local_zone
from verify.export_terms import FileFormat
from verify.review import MAX_PAGE_SIZE, LeadFilter, filtered
from verify.web.deps import AnalystPage, DbSession, get_settings
from verify.web.filters import problems_message, read_filter
from verify.web.pages import render

router = APIRouter(include_in_schema=False)
#: An export is a working list, not a database dump: the newest this many matching leads at most.
MAX_EXPORT_ROWS = 100_000
LEAD_COLUMNS = (
    "线索编号", "状态", "优先级", "诉求类型", "类别", "区", "街道", "地点", "摘要", "评分", "证据数",
    "首帖时间", "发现时间", "办理时限", "认领人", "责任单位",
)  # fmt: skip


class ExportWhat(enum.StrEnum):
    LEADS = "leads"
    CASES = "cases"


MEDIA_TYPES = {
    FileFormat.CSV: "text/csv; charset=utf-8",
    FileFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    FileFormat.PARQUET: "application/vnd.apache.parquet",
}


def leads_frame(session: Session, criteria: LeadFilter, zone: ZoneInfo) -> pd.DataFrame:
    """The leads matching the queue filter (every page of it), newest first, with Chinese headers;
    days and times in ``zone``."""
    statement = filtered(criteria, zone=zone).order_by(Lead.id.desc())
    rows = [
        {
            "线索编号": lead.id,
            "状态": STATE_LABELS[lead.state],
            "优先级": PRIORITY_LABELS[lead.priority],
            "诉求类型": REQUEST_TYPE_LABELS[lead.request_type],
            "类别": lead.category or "不确定",
            "区": lead.district,
            "街道": lead.street,
            "地点": lead.landmark,
            "摘要": lead.summary,
            "评分": round(lead.score, 4),
            "证据数": lead.evidence_count,
            "首帖时间": local_wall_clock(lead.first_seen_at, zone),
            "发现时间": local_wall_clock(lead.found_at, zone),
            "办理时限": local_wall_clock(lead.sla_due_at, zone),
            "认领人": lead.claimed_by,
            "责任单位": lead.responsible_unit,
        }
        for lead in session.scalars(statement.limit(MAX_EXPORT_ROWS))
    ]
    return pd.DataFrame(rows, columns=list(LEAD_COLUMNS))


def cases_frame(session: Session, criteria: LeadFilter, zone: ZoneInfo) -> pd.DataFrame:
    """Verified cases under the same filter's category, district, request type and date range
    (verification days)."""
    return case_exports.cases_frame(
        session,
        since=criteria.found_from,
        until=criteria.found_to,
        category=criteria.category,
        district=criteria.district,
        request_type=criteria.type,
        zone=zone,
    )


def download(session: Session, what: str, fmt: FileFormat, criteria: LeadFilter, zone: ZoneInfo) -> Response:
    """The file for ``what`` ("leads" or "cases") in ``fmt`` as an attachment, times in ``zone``."""
    if what == "cases":
        frame, sheet = cases_frame(session, criteria, zone), "核实案件"
    else:
        frame, sheet = leads_frame(session, criteria, zone), "线索"
    stamp = datetime.now(zone).strftime("%Y%m%d-%H%M")
    headers = {"Content-Disposition": f'attachment; filename="weisu-{what}-{stamp}.{fmt.value}"'}
    buffer = io.BytesIO()
    case_exports.write_frame(frame, fmt, buffer, sheet=sheet)
    return Response(buffer.getvalue(), media_type=MEDIA_TYPES[fmt], headers=headers)


def _download_page(request: Request, session: Session, user: User, what: str, fmt: FileFormat) -> Response:
    criteria, problems = read_filter(request.query_params, page_size=MAX_PAGE_SIZE)
    if problems:
        # A file filtered differently from what was asked would mislead: say what is wrong instead.
        context = {"user": user, "message": problems_message(problems), "back": request.url.query}
        return render(request, "bad_query.html", context, status_code=400)
    return download(session, what, fmt, criteria, local_zone(get_settings(request)))


@router.get("/exports/leads.{fmt}")
def export_leads_page(request: Request, session: DbSession, user: AnalystPage, fmt: FileFormat) -> Response:
    return _download_page(request, session, user, "leads", fmt)


@router.get("/exports/cases.{fmt}")
def export_cases_page(request: Request, session: DbSession, user: AnalystPage, fmt: FileFormat) -> Response:
    return _download_page(request, session, user, "cases", fmt)
