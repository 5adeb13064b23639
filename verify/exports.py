"""Exports of verified cases: one pandas frame with Chinese headers, written as CSV, XLSX or Parquet."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from storage.models import Lead, Ticket
from storage.vocabulary import (
    ACCEPTED_TICKET_STATES,
    CONFIRMED_STATES,
    PRIORITY_LABELS,
    REQUEST_TYPE_LABELS,
    RequestType,
    TicketState,
)
from verify.days import end_utc, local_wall_clock, start_utc
from verify.export_terms import CaseProgress, FileFormat

FORMATS = tuple(FileFormat)
PROGRESS_LABELS = {
    CaseProgress.QUEUED: "待推送",
    CaseProgress.FAILED: "推送失败",
    CaseProgress.OPEN: "办理中",
    CaseProgress.CLOSED: "已办结",
}
COLUMNS = (
    "线索编号",
    "核实时间",
    "优先级",
    "诉求类型",
    "类别",
    "区",
    "街道",
    "地点",
    "摘要",
    "责任单位",
    "证据数",
    "工单编号",
    "办理状态",
    "派单时间",
    "办结时间",
    "办理时长（小时）",
    "改派次数",
    "办理说明",
)
#: A cell starting with one of these is a formula to Excel / LibreOffice: crawled text must not run.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class ExportError(Exception):
    """An export that cannot be made: an unknown format or filter value."""


def _progress_condition(state: str) -> Any:
    closed = Ticket.dispatch_status == "closed"
    conditions = {
        CaseProgress.QUEUED: or_(Ticket.id.is_(None), Ticket.state == TicketState.QUEUED),
        CaseProgress.FAILED: Ticket.state == TicketState.FAILED,
        CaseProgress.OPEN: and_(Ticket.state.in_(ACCEPTED_TICKET_STATES), ~closed),
        CaseProgress.CLOSED: closed,
    }
    if state not in conditions:
        raise ExportError(f"unknown state {state!r}: choose from {', '.join(PROGRESS_LABELS)}")
    return conditions[CaseProgress(state)]


def _progress(ticket: Ticket | None) -> str:
    if ticket is None or ticket.state == TicketState.QUEUED:
        return PROGRESS_LABELS[CaseProgress.QUEUED]
    if ticket.state == TicketState.FAILED:
        return PROGRESS_LABELS[CaseProgress.FAILED]
    return PROGRESS_LABELS[CaseProgress.CLOSED if ticket.dispatch_status == "closed" else CaseProgress.OPEN]


def _row(lead: Lead, ticket: Ticket | None, zone: ZoneInfo) -> dict[str, Any]:
    verified_at = ticket.created_at if ticket else lead.updated_at
    closed_at = ticket.closed_at if ticket and ticket.dispatch_status == "closed" else None
    hours = None
    if closed_at is not None and ticket is not None:
        hours = round((closed_at - (ticket.sent_at or ticket.created_at)).total_seconds() / 3600, 2)
    return {
        "线索编号": lead.id,
        "核实时间": local_wall_clock(verified_at, zone),
        "优先级": PRIORITY_LABELS[lead.priority],
        "诉求类型": REQUEST_TYPE_LABELS[lead.request_type],
        "类别": lead.category,
        "区": lead.district,
        "街道": lead.street,
        "地点": lead.landmark,
        "摘要": lead.summary,
        "责任单位": lead.responsible_unit or (ticket.agency_responsible if ticket else None),
        "证据数": lead.evidence_count,
        "工单编号": ticket.service_request_id if ticket else None,
        "办理状态": _progress(ticket),
        "派单时间": local_wall_clock(ticket.sent_at if ticket else None, zone),
        "办结时间": local_wall_clock(closed_at, zone),
        "办理时长（小时）": hours,
        "改派次数": ticket.reassignments if ticket else 0,
        "办理说明": ticket.status_notes if ticket else None,
    }


def cases_frame(
    session: Session,
    *,
    since: date | None = None,
    until: date | None = None,
    category: str | None = None,
    district: str | None = None,
    state: str | None = None,
    request_type: RequestType | None = None,
    zone: ZoneInfo,
) -> pd.DataFrame:
    """Verified cases, oldest first; dates and times are in ``zone`` (days.local_zone), both ends
    included."""
    verified_at = func.coalesce(Ticket.created_at, Lead.updated_at)
    statement = (
        select(Lead, Ticket)
        .outerjoin(Ticket, Ticket.lead_id == Lead.id)
        # Verified cases: verified (ticket not written yet) or promoted.
        .where(Lead.state.in_(CONFIRMED_STATES))
        .order_by(verified_at, Lead.id)
    )
    if since is not None:
        statement = statement.where(verified_at >= start_utc(since, zone))
    if until is not None:
        statement = statement.where(verified_at < end_utc(until, zone))
    if category:
        statement = statement.where(Lead.category == category)
    if district:
        statement = statement.where(Lead.district == district)
    if request_type is not None:
        statement = statement.where(Lead.request_type == request_type)
    if state:
        statement = statement.where(_progress_condition(state))
    rows = [_row(lead, ticket, zone) for lead, ticket in session.execute(statement)]
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in ("核实时间", "派单时间", "办结时间"):
        frame[column] = pd.to_datetime(frame[column])
    frame["证据数"] = frame["证据数"].astype("int64")
    frame["改派次数"] = frame["改派次数"].astype("int64")
    frame["办理时长（小时）"] = frame["办理时长（小时）"].astype("float64")
    return frame


def _defuse(value: Any) -> Any:
    """Prefix a would-be spreadsheet formula with an apostrophe, so it shows as the text it is."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    safe = frame.copy()
    for column in safe.columns:
        if safe[column].dtype == object or pd.api.types.is_string_dtype(safe[column]):
            safe[column] = safe[column].map(_defuse)
    return safe


def write_frame(
    frame: pd.DataFrame, fmt: str, path_or_buffer: str | Path | IO[bytes], sheet: str = "核实案件"
) -> None:
    """Write ``frame`` as csv (UTF-8 with BOM, for Excel), xlsx (one sheet named ``sheet``) or parquet to
    a path or a binary buffer.

    CSV and XLSX are opened by people in spreadsheets, so text that would start a formula is
    defused there; Parquet is read by programs and keeps the text exactly.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}: choose from {', '.join(FORMATS)}")
    if fmt == FileFormat.PARQUET:
        frame.to_parquet(path_or_buffer, index=False)
        return
    safe = spreadsheet_safe(frame)
    if fmt == FileFormat.XLSX:
        safe.to_excel(path_or_buffer, index=False, sheet_name=sheet, engine="openpyxl")
        return
    data = safe.to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S").encode("utf-8-sig")
    if isinstance(path_or_buffer, str | Path):
        Path(path_or_buffer).write_bytes(data)
    else:
        path_or_buffer.write(data)
