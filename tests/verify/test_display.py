"""How the review app words things: durations in 天/小时/分钟, SLA countdowns, audit lines, label maps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from storage.models import AuditEvent, Lead
from storage.vocabulary import (
    PRIORITY_LABELS,
    REJECT_REASON_LABELS,
    ROLE_LABELS,
    STATE_LABELS,
    TICKET_STATE_LABELS,
    Action,
    LeadState,
    Priority,
    RejectReason,
    Role,
    TicketState,
)
from verify.web.display import duration, history_line, sla_countdown, standing

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("span", "words"),
    [
        (timedelta(0), "不到1分钟"),
        (timedelta(seconds=59), "不到1分钟"),
        (timedelta(minutes=1), "1分钟"),
        (timedelta(minutes=59, seconds=59), "59分钟"),
        (timedelta(minutes=60), "1小时"),
        (timedelta(minutes=61), "1小时1分钟"),
        (timedelta(hours=23, minutes=59), "23小时59分钟"),
        (timedelta(days=1), "1天"),
        (timedelta(days=1, minutes=59), "1天"),
        (timedelta(days=1, hours=1), "1天1小时"),
        (timedelta(days=2, hours=3, minutes=40), "2天3小时"),
        (None, "—"),
    ],
)
def test_a_duration_reads_in_days_hours_and_minutes(span: timedelta | None, words: str) -> None:
    assert duration(span) == words


@pytest.mark.parametrize(
    ("due", "words"),
    [
        (NOW + timedelta(minutes=45), "剩余 45分钟"),
        (NOW + timedelta(minutes=45, seconds=30), "剩余 45分钟"),
        (NOW, "剩余 不到1分钟"),
        (NOW - timedelta(seconds=1), "已超时 不到1分钟"),
        (NOW - timedelta(minutes=59), "已超时 59分钟"),
        (NOW - timedelta(minutes=60), "已超时 1小时"),
        (NOW - timedelta(days=2, hours=3), "已超时 2天3小时"),
        (None, "—"),
    ],
)
def test_the_sla_countdown_says_what_is_left_or_how_late(due: datetime | None, words: str) -> None:
    assert sla_countdown(due, NOW) == words


@pytest.mark.parametrize(
    ("labels", "members"),
    [
        (STATE_LABELS, LeadState),
        (PRIORITY_LABELS, Priority),
        (ROLE_LABELS, Role),
        (TICKET_STATE_LABELS, TicketState),
        (REJECT_REASON_LABELS, RejectReason),
    ],
    ids=["lead state", "priority", "role", "ticket state", "reject reason"],
)
def test_every_enum_value_has_a_chinese_label(labels: dict, members: type) -> None:
    assert set(labels) == set(members)
    assert all(not any(c.isascii() and c.isalpha() for c in text) for text in labels.values())


def event(action: str, **values: object) -> AuditEvent:
    return AuditEvent(lead_id=1, actor="alice", action=action, details=values.pop("details", {}), **values)


@pytest.mark.parametrize(
    ("audit", "line"),
    [
        (event(Action.CLAIM, from_state="new", to_state="claimed"), "认领 · 待认领 → 核实中"),
        (
            event(Action.REJECT, from_state="claimed", to_state="rejected", reason="not_a_complaint"),
            "驳回 · 核实中 → 已驳回 · 不是诉求",
        ),
        (
            event(
                Action.VERIFY,
                from_state="claimed",
                to_state="verified",
                details={
                    "edits": {
                        "district": {"from": "南山区", "to": "福田区"},
                        "landmark": {"from": None, "to": "北门"},
                    }
                },
            ),
            "核实 · 核实中 → 已核实 · 修改 区：南山区 → 福田区，地点：— → 北门",
        ),
        (
            event(Action.MERGE, from_state="claimed", to_state="merged", details={"into": 7}),
            "合并 · 核实中 → 已合并 · 合并到 #7",
        ),
        (event(Action.NOTE, details={"note": "已电话联系"}), "备注 · 已电话联系"),
        (
            event("repush", from_state="failed", to_state="queued", reason="HTTP 400"),
            "重新推送 · 推送失败 → 待推送 · HTTP 400",
        ),
        (
            event("dispatch_status", from_state=None, to_state="closed", reason="路灯已修复"),
            "办理状态更新 · — → 已办结 · 路灯已修复",
        ),
        (
            event(
                Action.PROMOTE,
                from_state="verified",
                to_state="promoted",
                details={"request_type": "question"},
            ),
            "派单 · 已核实 → 已派单 · 咨询类线索，经分析员派单",
        ),
        (
            event(
                Action.PROMOTE,
                from_state="verified",
                to_state="promoted",
                details={"request_type": "problem"},
            ),
            "派单 · 已核实 → 已派单",
        ),
    ],
    ids=[
        "claim",
        "reject",
        "verify edits",
        "merge",
        "note",
        "repush",
        "dispatch status",
        "promote question",
        "promote problem",
    ],
)
def test_an_audit_event_reads_in_chinese(audit: AuditEvent, line: str) -> None:
    assert history_line(audit) == line


def test_a_status_no_label_map_knows_is_shown_as_the_dispatch_system_sent_it() -> None:
    assert (
        history_line(event("dispatch_status", from_state="open", to_state="转办"))
        == "办理状态更新 · 办理中 → 转办"
    )


def test_where_a_lead_stands_names_its_holder() -> None:
    held = Lead(id=5, state=LeadState.CLAIMED, claimed_by="bob")
    assert standing(held, "alice") == "线索 #5 当前为「核实中」，由 bob 认领"
    assert standing(held, "bob") == "线索 #5 当前为「核实中」，由您认领"
    assert standing(Lead(id=6, state=LeadState.MERGED, claimed_by=None), "bob") == "线索 #6 当前为「已合并」"
