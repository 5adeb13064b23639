"""The Chinese UI shows no English state or enum value: every page, with data in every state, read as
an analyst reads it (visible text only; codes in <code> such as keys and IDs are allowed)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from review_client import csrf_of, review_app, submit_login
from sqlalchemy import select
from sqlalchemy.orm import Session

from settings import Settings
from storage.base import utcnow
from storage.models import (
    AuditEvent,
    CrawlRun,
    Lead,
    LeadState,
    Platform,
    Priority,
    ResponsibilityRule,
    Role,
    Ticket,
    TicketState,
)
from verify.workflow import EDITABLE_FIELDS, TRANSITIONS, Action, RejectReason

pytestmark = pytest.mark.usefixtures("cheap_hashing")

#: Every value of an enum or status string a page could show: these must reach the page as Chinese.
ENGLISH_VALUES = (
    {str(value) for enum in (LeadState, TicketState, Priority, Role, Action, RejectReason) for value in enum}
    | {"running", "ok", "partial", "failed", "interrupted"}  # crawl_runs.status
    | {"open", "closed"}  # the dispatch system's status of a ticket
    | {"repush", "dispatch_status", "dispatch_reassigned", "pause_platform", "resume_platform"}  # audit
    | {"system", "dispatch"}  # audit actors that are not people
    | set(EDITABLE_FIELDS)
)
ACCOUNTS = [("wang", "wang-pw", "admin"), ("zhao", "zhao-pw", "analyst")]


class VisibleText(HTMLParser):
    """The text a reader sees: no tags, attributes, scripts or styles, and no <code> (keys and IDs)."""

    HIDDEN = {"script", "style", "code"}

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.hidden += tag in self.HIDDEN

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in self.HIDDEN

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def english_values_in(html: str) -> set[str]:
    parser = VisibleText()
    parser.feed(html)
    words = set(re.findall(r"[A-Za-z_]+", " ".join(parser.parts)))
    return words & ENGLISH_VALUES


def _lead(session: Session, state: LeadState, **values: object) -> Lead:
    lead = Lead(state=state, summary="南山区科技园路灯不亮", category="城乡建设", district="南山区", **values)
    session.add(lead)
    session.flush()
    return lead


def _every_audit_event(session: Session, lead_id: int) -> None:
    """One event of every kind the trail records, with every from/to state and reject reason."""
    events = [
        AuditEvent(actor="zhao", action=act.value, from_state=a.value, to_state=b.value)
        for (a, act), b in TRANSITIONS.items()
    ]
    events += [
        AuditEvent(actor="zhao", action=Action.REJECT.value, reason=reason.value) for reason in RejectReason
    ]
    edits = {field: {"from": "旧", "to": "新"} for field in EDITABLE_FIELDS}
    events += [
        AuditEvent(actor="system", action=Action.EXPIRE.value, from_state="claimed", to_state="new"),
        AuditEvent(actor="zhao", action=Action.VERIFY.value, details={"edits": edits}),
        AuditEvent(actor="zhao", action=Action.NOTE.value, details={"note": "已电话联系"}),
        AuditEvent(actor="wang", action=Action.CONFIRM.value),
        AuditEvent(actor="wang", action="repush", from_state="failed", to_state="queued", reason="HTTP 500"),
        AuditEvent(actor="dispatch", action="dispatch_status", from_state="open", to_state="closed"),
        AuditEvent(actor="dispatch", action="dispatch_reassigned", reason="南山区城管局 → 福田区城管局"),
    ]
    for event in events:
        event.lead_id = lead_id
    session.add_all(events)


def _every_ticket_state(session: Session) -> None:
    now = utcnow()
    for state in TicketState:
        lead = _lead(session, LeadState.PROMOTED)
        ticket = Ticket(lead_id=lead.id, idempotency_key=f"weisu-lead-{lead.id}", payload={}, state=state)
        if state in (TicketState.SENT, TicketState.ACKNOWLEDGED):
            ticket.sent_at = now - timedelta(days=1)
            ticket.dispatch_status = "closed" if state == TicketState.ACKNOWLEDGED else "open"
            ticket.closed_at = now if state == TicketState.ACKNOWLEDGED else None
        session.add(ticket)


def _every_crawl_status(session: Session, settings: Settings) -> None:
    statuses = ["running", "ok", "partial", "failed", "interrupted"]
    for key, status in zip(settings.platforms, statuses, strict=False):
        platform = settings.platforms[key]
        session.merge(Platform(id=key, name=platform.name, kind=platform.kind))
        session.flush()
        session.add(CrawlRun(platform_id=key, status=status, started_at=utcnow()))


@pytest.fixture
def world(settings: Settings, session: Session) -> dict[str, int]:
    """A lead in every state (one with every audit event), a ticket in every state, crawl runs in every
    status and one responsibility rule."""
    now = utcnow()
    leads = {state: _lead(session, state, sla_due_at=now + timedelta(minutes=50)) for state in LeadState}
    claimed = leads[LeadState.CLAIMED]
    claimed.claimed_by, claimed.claim_expires_at = "zhao", now + timedelta(minutes=20)
    leads[LeadState.MERGED].merged_into_id = leads[LeadState.VERIFIED].id
    _every_audit_event(session, claimed.id)
    _every_ticket_state(session)
    _every_crawl_status(session, settings)
    session.add(ResponsibilityRule(category="城乡建设", unit="南山区城管局"))
    session.commit()
    return {state.value: lead.id for state, lead in leads.items()}


@pytest.fixture
def app_client(settings: Settings, session: Session, world: dict[str, int]) -> Iterator[TestClient]:
    with review_app(settings, session, ACCOUNTS) as app, TestClient(app, follow_redirects=False) as client:
        yield client


def signed_in(client: TestClient, name: str) -> None:
    client.cookies.clear()
    assert submit_login(client, name, f"{name}-pw").status_code == 303


def test_no_page_shows_an_english_state_or_enum_value(
    app_client: TestClient, world: dict[str, int], session
) -> None:
    pages: dict[str, str] = {"/login": app_client.get("/login").text}
    signed_in(app_client, "zhao")
    pages["/dashboard (forbidden)"] = app_client.get("/dashboard").text
    signed_in(app_client, "wang")
    paths = ["/leads", *(f"/leads?state={state.value}" for state in LeadState)]
    paths += [f"/leads/{lead_id}?compare=1" for lead_id in world.values()]
    paths += [f"/leads/{world['new']}", "/leads/999999"]  # the new lead is claimed: its forms show
    paths += [f"/tickets?view={view}" for view in ("failed", "unconfirmed", "queued", "open", "closed")]
    paths += ["/dashboard", "/admin/users", "/admin/platforms", "/admin/responsibility"]
    for path in paths:
        pages[path] = app_client.get(path).text
    # Flash messages of refused decisions name states too.
    token = csrf_of(pages["/leads"])
    app_client.post(f"/leads/{world['rejected']}/verify", data={"csrf_token": token})
    pages["flash: refused verify"] = app_client.get(f"/leads/{world['rejected']}").text
    app_client.post(f"/leads/{world['new']}/release", data={"csrf_token": token})
    pages["flash: released"] = app_client.get("/leads").text
    queued = session.scalar(select(Ticket.id).where(Ticket.state == TicketState.QUEUED))
    session.rollback()
    app_client.post(f"/tickets/{queued}/requeue", data={"csrf_token": token})
    pages["flash: refused repush"] = app_client.get("/tickets").text
    assert "当前为「已驳回」" in pages["flash: refused verify"]  # the flashes did render
    assert {path: english_values_in(html) for path, html in pages.items() if english_values_in(html)} == {}
