"""How things look to an analyst: Shanghai times, SLA countdowns, bounded views of hostile crawled text."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from storage.base import utcnow
from storage.models import LeadState, Priority

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: Crawled text is shown, never trusted: at most this many characters of a post, and this many posts.
MAX_POST_CHARS = 2000
MAX_EVIDENCE_SHOWN = 50

STATE_LABELS = {
    LeadState.NEW: "待认领",
    LeadState.CLAIMED: "核实中",
    LeadState.VERIFIED: "已核实",
    LeadState.PROMOTED: "已派单",
    LeadState.REJECTED: "已驳回",
    LeadState.MERGED: "已合并",
}
PRIORITY_LABELS = {Priority.URGENT: "加急", Priority.ORDINARY: "普通"}


def local_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M")


def sla_countdown(due: datetime | None, now: datetime | None = None) -> str:
    """ "剩余 23 分钟" before the SLA is due, "超时 5 分钟" after it."""
    if due is None:
        return "—"
    minutes = int((due - (now or utcnow())).total_seconds() // 60)
    return f"剩余 {minutes} 分钟" if minutes >= 0 else f"超时 {-minutes} 分钟"


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
