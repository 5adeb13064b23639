"""How things look to an analyst: Shanghai times, durations in 天/小时/分钟, Chinese labels for every enum
value a page shows, and bounded views of hostile crawled text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from storage.base import utcnow
from storage.models import AuditEvent, Lead
from storage.vocabulary import (
    ACCESS_STATUS_LABELS,
    ACTION_LABELS,
    CRAWL_STATUS_LABELS,
    PRIORITY_LABELS,
    REJECT_REASON_LABELS,
    REQUEST_TYPE_LABELS,
    ROLE_LABELS,
    STATE_LABELS,
    TICKET_STATE_LABELS,
    Action,
    LeadState,
    RequestType,
)
from verify.workflow import SYSTEM_ACTOR

#: Crawled text is shown, never trusted: at most this many characters of a post, and this many posts.
MAX_POST_CHARS = 2000
MAX_EVIDENCE_SHOWN = 50

#: What the dispatch system says of a sent ticket (Open311 ``status``): its words, not weisu's vocabulary.
DISPATCH_STATUS_LABELS = {"open": "办理中", "closed": "已办结"}
#: Accounts that are not people: the workflow's own sweeps and the dispatch status sync (verify.sync).
ACTOR_LABELS = {SYSTEM_ACTOR: "系统", "dispatch": "派单系统"}
#: The lead fields an analyst may correct when verifying (workflow.EDITABLE_FIELDS).
FIELD_LABELS = {
    "category": "类别",
    "district": "区",
    "street": "街道",
    "landmark": "地点",
    "summary": "摘要",
    "responsible_unit": "责任单位",
}
#: Which label map an audit event's from/to states come from, by action; lead states otherwise.
_TRANSITION_LABELS: dict[str, Mapping[Any, str]] = {
    Action.REPUSH: TICKET_STATE_LABELS,
    Action.DISPATCH_STATUS: DISPATCH_STATUS_LABELS,
}


def label(labels: Mapping[Any, str], value: object) -> str:
    """The Chinese label of an enum value; a value no map knows (e.g. a new status a dispatch system
    invents) is shown as it is rather than hidden."""
    if value is None:
        return "—"
    return labels.get(value, str(value))


def local_time(value: datetime | None, zone: ZoneInfo) -> str:
    """ "2026-11-29 13:20" in the display zone (verify.web.app binds it: days.local_zone)."""
    if value is None:
        return "—"
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def duration(value: timedelta | None) -> str:
    """A span as an analyst reads it: "45分钟", "3小时5分钟", "2天3小时" (minutes dropped once it is days)."""
    if value is None:
        return "—"
    minutes = int(value.total_seconds() // 60)
    if minutes < 1:
        return "不到1分钟"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days}天{hours}小时" if hours else f"{days}天"
    if hours:
        return f"{hours}小时{minutes}分钟" if minutes else f"{hours}小时"
    return f"{minutes}分钟"


def sla_countdown(due: datetime | None, now: datetime | None = None) -> str:
    """ "剩余 45分钟" before the SLA is due, "已超时 2天3小时" after it."""
    if due is None:
        return "—"
    left = due - (now or utcnow())
    return f"剩余 {duration(left)}" if left >= timedelta(0) else f"已超时 {duration(-left)}"


def history_line(event: AuditEvent) -> str:
    """One audit event after its time and actor: "核实 · 核实中 → 已核实 · 修改 区：南山区 → 福田区"."""
    parts = [label(ACTION_LABELS, event.action)]
    if event.from_state or event.to_state:
        states = _TRANSITION_LABELS.get(event.action, STATE_LABELS)
        parts.append(f"{label(states, event.from_state)} → {label(states, event.to_state)}")
    if event.reason:
        reasons = REJECT_REASON_LABELS if event.action == Action.REJECT else {}
        parts.append(bounded(label(reasons, event.reason), 500))
    details = event.details or {}
    if details.get("note"):
        parts.append(bounded(str(details["note"]), 500))
    if details.get("edits"):
        changes = [
            f"{label(FIELD_LABELS, name)}：{change.get('from') or '—'} → {change.get('to')}"
            for name, change in details["edits"].items()
        ]
        parts.append("修改 " + "，".join(changes))
    if details.get("into"):
        parts.append(f"合并到 #{details['into']}")
    if event.action == Action.PROMOTE and details.get("request_type") == RequestType.QUESTION:
        parts.append(f"{REQUEST_TYPE_LABELS[RequestType.QUESTION]}类线索，经分析员派单")
    return " · ".join(parts)


def standing(lead: Lead, viewer: str) -> str:
    """Where a lead stands, for a refused decision: "线索 #5 当前为「核实中」，由 bob 认领"."""
    text = f"线索 #{lead.id} 当前为「{STATE_LABELS[lead.state]}」"
    if lead.state == LeadState.CLAIMED and lead.claimed_by:
        text += "，由您认领" if lead.claimed_by == viewer else f"，由 {lead.claimed_by} 认领"
    return text


def bounded(text: str | None, limit: int = MAX_POST_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[:limit] + "…（已截断）"


def safe_link(url: str | None) -> str | None:
    """Only http(s) URLs become links: a crawled ``javascript:`` URL must never be clickable."""
    if not url:
        return None
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    return url if scheme in ("http", "https") else None


#: What every template may use (verify.web.app registers them): filters, and the label maps as globals.
#: ``local_time`` is bound to the settings' zone when the app is made.
FILTERS: dict[str, Callable[..., Any]] = {
    "sla": sla_countdown,
    "duration": duration,
    "bounded": bounded,
    "safe_link": safe_link,
    "history_line": history_line,
}
GLOBALS: dict[str, Any] = {
    "state_labels": STATE_LABELS,
    "priority_labels": PRIORITY_LABELS,
    "request_type_labels": REQUEST_TYPE_LABELS,
    "role_labels": ROLE_LABELS,
    "ticket_state_labels": TICKET_STATE_LABELS,
    "dispatch_status_labels": DISPATCH_STATUS_LABELS,
    "crawl_status_labels": CRAWL_STATUS_LABELS,
    "access_status_labels": ACCESS_STATUS_LABELS,
    "actor_labels": ACTOR_LABELS,
    "label": label,
}
