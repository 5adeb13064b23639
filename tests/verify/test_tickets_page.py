"""The tickets page: failed tickets with the server's message and a re-push button, open and closed ones."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from review_client import csrf_of, submit_login
from sqlalchemy import select

from storage.models import AuditEvent, LeadState, Ticket, TicketState
from verify.users import create_user
from verify.web.app import create_app

SENT_AT = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def client(settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client
    app.state.engine.dispose()


ROLES = {"ana": "analyst", "sup": "supervisor"}


def sign_in(client: TestClient, session, name: str) -> None:
    """Create the one account a test needs (argon2 hashing is slow on a busy machine), then sign in."""
    create_user(session, name, f"{name}-pw", ROLES[name])
    session.commit()
    assert submit_login(client, name, f"{name}-pw").status_code == 303


def ticket(session, lead_adder, **values) -> Ticket:
    lead = lead_adder(session, state=LeadState.PROMOTED, category="城乡建设")
    row = Ticket(lead_id=lead.id, idempotency_key=f"weisu-lead-{lead.id}", payload={}, **values)
    session.add(row)
    session.commit()
    return row


@pytest.fixture
def tickets(session, lead_adder) -> dict[str, Ticket]:
    return {
        "failed": ticket(
            session, lead_adder, state=TicketState.FAILED, attempts=1, last_error=f"HTTP 400: {HOSTILE}"
        ),
        "open": ticket(
            session,
            lead_adder,
            state=TicketState.SENT,
            service_request_id="sr-000007",
            sent_at=SENT_AT,
            dispatch_status="open",
            status_notes="已派至南山区城管局",
            agency_responsible="深圳市南山区城市管理和综合执法局",
        ),
        "closed": ticket(
            session,
            lead_adder,
            state=TicketState.SENT,
            service_request_id="sr-000008",
            sent_at=SENT_AT,
            dispatch_status="closed",
            status_notes="路灯已修复",
            closed_at=SENT_AT + timedelta(days=1, hours=3, minutes=20),
            reassignments=1,
        ),
    }


def row_of(html: str, ticket_id: int) -> str:
    return re.search(rf'<tr [^>]*id="ticket-{ticket_id}">(.*?)</tr>', html, re.S).group(1)


def test_a_failed_ticket_shows_the_servers_message_escaped_and_a_repush_button_to_supervisors(
    client, tickets, session
) -> None:
    sign_in(client, session, "sup")
    page = client.get("/tickets?view=failed")
    assert page.status_code == 200
    row = row_of(page.text, tickets["failed"].id)
    assert "HTTP 400: &lt;script&gt;alert(1)&lt;/script&gt;" in row
    assert HOSTILE not in page.text
    assert f'action="/tickets/{tickets["failed"].id}/requeue"' in row
    assert "推送失败（1）" in page.text and "办理中（1）" in page.text and "已办结（1）" in page.text


def test_an_analyst_sees_the_tickets_but_no_repush_button_and_cannot_post_one(
    client, tickets, session
) -> None:
    sign_in(client, session, "ana")
    page = client.get("/tickets?view=failed")
    assert page.status_code == 200
    assert "HTTP 400" in row_of(page.text, tickets["failed"].id)
    assert "/requeue" not in page.text
    refused = client.post(f"/tickets/{tickets['failed'].id}/requeue", data={"csrf_token": csrf_of(page.text)})
    assert refused.status_code == 403


def test_repush_puts_the_failed_ticket_back_in_the_outbox_and_says_so(client, tickets, session) -> None:
    sign_in(client, session, "sup")
    failed_id = tickets["failed"].id
    token = csrf_of(client.get("/tickets").text)
    response = client.post(f"/tickets/{failed_id}/requeue", data={"csrf_token": token})
    assert (response.status_code, response.headers["location"]) == (303, "/tickets?view=queued")
    queued_page = client.get("/tickets?view=queued").text
    assert f"工单 #{failed_id} 已重新排队，下一次推送时发送" in queued_page
    assert f'id="ticket-{failed_id}"' in queued_page
    session.expire_all()
    assert (session.get(Ticket, failed_id).state, session.get(Ticket, failed_id).last_error) == (
        TicketState.QUEUED,
        None,
    )
    [event] = session.scalars(select(AuditEvent).where(AuditEvent.action == "repush")).all()
    assert (event.actor, event.reason) == ("sup", f"HTTP 400: {HOSTILE}")


def test_repush_without_the_csrf_token_is_refused(client, tickets, session) -> None:
    sign_in(client, session, "sup")
    response = client.post(f"/tickets/{tickets['failed'].id}/requeue", data={})
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Ticket, tickets["failed"].id).state == TicketState.FAILED


def test_open_tickets_show_the_status_note_and_closed_ones_their_resolution_time(
    client, tickets, session
) -> None:
    sign_in(client, session, "ana")
    open_row = row_of(client.get("/tickets?view=open").text, tickets["open"].id)
    assert "sr-000007" in open_row and "已派至南山区城管局" in open_row
    assert "深圳市南山区城市管理和综合执法局" in open_row
    closed_page = client.get("/tickets?view=closed").text
    closed_row = row_of(closed_page, tickets["closed"].id)
    assert "路灯已修复" in closed_row
    assert "2026-11-29 13:20" in closed_row  # closed_at in Shanghai time
    assert "1天3小时" in closed_row
    accuracy = re.search(r'<table class="queue accuracy">(.*?)</table>', closed_page, re.S).group(1)
    assert re.search(r"<td>城乡建设</td><td>2</td><td>1</td><td>50.0%</td>", accuracy)


def test_the_tickets_page_asks_anonymous_visitors_to_sign_in(client) -> None:
    response = client.get("/tickets")
    assert (response.status_code, response.headers["location"]) == (303, "/login?next=/tickets")


def test_urgent_tickets_awaiting_a_second_analyst_have_their_own_view(
    client, tickets, session, lead_adder
) -> None:
    waiting = ticket(session, lead_adder, state=TicketState.UNCONFIRMED)
    sign_in(client, session, "sup")
    page = client.get("/tickets?view=unconfirmed")
    assert "待二次确认（1）" in page.text
    assert re.findall(r'id="ticket-(\d+)"', page.text) == [str(waiting.id)]


def current_tab(html: str) -> str:
    return re.search(r'<a href="/tickets\?view=(\w+)" aria-current="page">', html).group(1)


def test_the_tickets_page_opens_on_the_failed_tab_when_failed_tickets_wait(client, tickets, session) -> None:
    sign_in(client, session, "ana")
    assert current_tab(client.get("/tickets").text) == "failed"


def test_the_tickets_page_opens_on_the_first_tab_that_has_tickets(client, session, lead_adder) -> None:
    opened = ticket(session, lead_adder, state=TicketState.SENT, sent_at=SENT_AT, dispatch_status="open")
    sign_in(client, session, "ana")
    page = client.get("/tickets").text
    assert current_tab(page) == "open"
    assert re.findall(r'id="ticket-(\d+)"', page) == [str(opened.id)]


def test_queued_comes_before_open_and_closed_when_nothing_failed_or_waits(
    client, session, lead_adder
) -> None:
    ticket(session, lead_adder, state=TicketState.SENT, sent_at=SENT_AT, dispatch_status="closed")
    ticket(session, lead_adder, state=TicketState.QUEUED)
    sign_in(client, session, "ana")
    assert current_tab(client.get("/tickets").text) == "queued"


def test_a_tab_asked_for_by_name_opens_even_when_empty(client, tickets, session) -> None:
    sign_in(client, session, "ana")
    page = client.get("/tickets?view=queued").text
    assert current_tab(page) == "queued"
    assert "暂无工单" in page


def test_with_no_tickets_at_all_the_page_opens_on_the_failed_tab(client, session) -> None:
    sign_in(client, session, "ana")
    assert current_tab(client.get("/tickets?view=bogus").text) == "failed"


def test_repushing_a_ticket_that_is_not_failed_says_where_it_stands_in_chinese(
    client, tickets, session
) -> None:
    sign_in(client, session, "sup")
    token = csrf_of(client.get("/tickets").text)
    open_id = tickets["open"].id
    response = client.post(f"/tickets/{open_id}/requeue", data={"csrf_token": token})
    assert response.headers["location"] == "/tickets?view=failed"
    flash = re.search(r'<p class="flash" role="status">(.*?)</p>', client.get("/tickets").text).group(1)
    assert flash == f"无法重新推送：工单 #{open_id} 当前为「已发送」，只有推送失败的工单可以重新推送。"
