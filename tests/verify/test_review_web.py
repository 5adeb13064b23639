"""The review app through FastAPI's TestClient: sign-in, CSRF, escaping of hostile text, the JSON API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from review_client import csrf_of, submit_login
from sqlalchemy import select

from storage.models import Lead, LeadState, Ticket, TicketState
from verify.users import create_token

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
HOSTILE = '<script>alert(1)</script> 路灯坏了 <img src=x onerror="alert(2)">'


@pytest.fixture
def tokens(session) -> dict[str, dict[str, str]]:
    """Bearer headers for alice and bob (API tokens are made after the accounts exist)."""
    made = {name: create_token(session, name, "test") for name in ("alice", "bob")}
    session.commit()
    return {name: {"Authorization": f"Bearer {token}"} for name, token in made.items()}


@pytest.fixture
def client(app) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def login(client: TestClient, username: str = "alice", password: str = "alice-pw") -> str:
    response = submit_login(client, username, password)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def test_anonymous_pages_redirect_to_login_and_api_says_401(client) -> None:
    page = client.get("/leads?state=new")
    assert (page.status_code, page.headers["location"]) == (303, "/login?next=/leads%3Fstate%3Dnew")
    api = client.get("/api/v1/leads")
    assert (api.status_code, api.headers["www-authenticate"]) == (401, 'Bearer realm="weisu"')


def test_login_with_a_wrong_password_is_refused(client) -> None:
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"username": "alice", "password": "nope", "csrf_token": token})
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text


def test_login_sets_an_httponly_samesite_cookie_and_lands_on_the_queue(client) -> None:
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"username": "alice", "password": "alice-pw", "csrf_token": token})
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert response.headers["location"] == "/leads"
    assert client.get("/leads").status_code == 200


def test_login_never_redirects_off_site(client) -> None:
    token = csrf_of(client.get("/login").text)
    form = {"username": "alice", "password": "alice-pw", "csrf_token": token, "next": "//evil.example/x"}
    assert client.post("/login", data=form).headers["location"] == "/leads"


def test_a_form_post_without_the_csrf_token_is_refused(client, make_lead) -> None:
    lead = make_lead()
    login(client)
    client.get(f"/leads/{lead.id}")
    assert client.post(f"/leads/{lead.id}/verify", data={"summary": "x"}).status_code == 403
    wrong = client.post(f"/leads/{lead.id}/verify", data={"summary": "x", "csrf_token": "forged"})
    assert wrong.status_code == 403
    assert client.post("/login", data={"username": "alice", "password": "alice-pw"}).status_code == 403


def test_the_queue_lists_urgent_leads_first_then_by_sla(client, make_lead) -> None:
    late = make_lead(summary="普通-晚", sla_due_at=NOW + timedelta(hours=2))
    early = make_lead(summary="普通-早", sla_due_at=NOW + timedelta(minutes=40))
    urgent = make_lead(summary="加急-井盖", priority="urgent", sla_due_at=NOW + timedelta(hours=3))
    login(client)
    html = client.get("/leads").text
    order = [int(n) for n in re.findall(r'<a href="/leads/(\d+)">#', html)]
    assert order == [urgent.id, early.id, late.id]
    assert "加急" in html and "2026-11-29 14:40" in html  # SLA shown in Asia/Shanghai


def test_hostile_post_text_is_escaped_and_hostile_links_are_not_clickable(client, make_lead) -> None:
    lead = make_lead(HOSTILE, summary="<b>摘要</b>", top_terms=["<i>t</i>"], post_url="javascript:alert(3)")
    login(client)
    html = client.get(f"/leads/{lead.id}").text
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=&#34;alert(2)&#34;&gt;" in html
    assert "<b>摘要</b>" not in html and "&lt;b&gt;摘要&lt;/b&gt;" in html
    assert 'href="javascript:' not in html
    assert "script-src" not in html  # no inline policy games: the header forbids every script
    assert "default-src 'none'" in client.get(f"/leads/{lead.id}").headers["content-security-policy"]


def test_top_terms_show_each_term_with_its_weight(client, make_lead) -> None:
    lead = make_lead(top_terms=[["停水", 0.1914], ["<b>x</b>", 0.05]])
    login(client)
    html = client.get(f"/leads/{lead.id}").text
    assert '<span class="term">停水 <small>0.19</small></span>' in html
    assert '<span class="term">&lt;b&gt;x&lt;/b&gt; <small>0.05</small></span>' in html


def test_opening_a_lead_claims_it_and_the_form_promotes_it(client, make_lead, session) -> None:
    lead = make_lead()
    login(client)
    page = client.get(f"/leads/{lead.id}")
    assert "核实并派单" in page.text and "驳回" in page.text
    form = {
        "csrf_token": csrf_of(page.text),
        "district": "福田区",
        "summary": "福田区路灯不亮",
        "category": "",
    }
    response = client.post(f"/leads/{lead.id}/verify", data=form)
    assert (response.status_code, response.headers["location"]) == (303, f"/leads/{lead.id}")
    assert f"工单 weisu-lead-{lead.id} 已进入发送队列" in client.get(f"/leads/{lead.id}").text
    session.expire_all()
    stored = session.get(Lead, lead.id)
    assert (stored.state, stored.district, stored.summary) == (LeadState.PROMOTED, "福田区", "福田区路灯不亮")
    tickets = session.scalars(select(Ticket)).all()
    assert [(t.lead_id, t.state) for t in tickets] == [(lead.id, TicketState.QUEUED)]
    session.rollback()


def test_a_lead_held_by_another_analyst_opens_read_only(client, app, make_lead) -> None:
    lead = make_lead()
    login(client, "bob", "bob-pw")
    client.get(f"/leads/{lead.id}")
    with TestClient(app, follow_redirects=False) as other:
        login(other, "alice", "alice-pw")
        page = other.get(f"/leads/{lead.id}")
    assert "此线索正由 bob 核实，只读显示。" in page.text
    assert f'action="/leads/{lead.id}/verify"' not in page.text


def test_reject_form_needs_a_reason_and_records_it(client, make_lead, session) -> None:
    lead = make_lead()
    login(client)
    token = csrf_of(client.get(f"/leads/{lead.id}").text)
    response = client.post(f"/leads/{lead.id}/reject", data={"csrf_token": token, "reason": "spam"})
    assert response.headers["location"] == "/leads"
    session.expire_all()
    assert session.get(Lead, lead.id).state == LeadState.REJECTED
    session.rollback()


def test_api_with_a_bearer_token_claims_verifies_and_lists_the_ticket(client, make_lead, tokens) -> None:
    lead = make_lead()
    alice = tokens["alice"]
    listed = client.get("/api/v1/leads", headers=alice).json()
    assert (listed["total"], listed["items"][0]["id"]) == (1, lead.id)
    detail = client.get(f"/api/v1/leads/{lead.id}", headers=alice).json()
    assert detail["evidence"][0]["text"] == "小区门口路灯坏了一个月没人修"
    assert client.post(f"/api/v1/leads/{lead.id}/claim", headers=alice).json()["claimed_by"] == "alice"
    assert client.post(f"/api/v1/leads/{lead.id}/claim", headers=tokens["bob"]).status_code == 409
    verified = client.post(
        f"/api/v1/leads/{lead.id}/verify", headers=alice, json={"responsible_unit": "南山区城管局"}
    )
    assert verified.status_code == 201
    assert verified.json()["idempotency_key"] == f"weisu-lead-{lead.id}"
    tickets = client.get("/api/v1/tickets", headers=alice).json()
    assert [(t["lead_id"], t["state"]) for t in tickets] == [(lead.id, "queued")]
    assert client.get("/api/v1/leads/999999", headers=alice).status_code == 404
    forged = client.get("/api/v1/leads", headers={"Authorization": "Bearer wsu_forged"})
    assert forged.status_code == 401


def test_api_with_the_browser_session_needs_the_csrf_header_to_write(client, make_lead) -> None:
    lead = make_lead()
    login(client)
    assert client.get("/api/v1/leads").status_code == 200
    assert client.post(f"/api/v1/leads/{lead.id}/claim").status_code == 403
    token = csrf_of(client.get("/leads").text)
    claimed = client.post(f"/api/v1/leads/{lead.id}/claim", headers={"X-CSRF-Token": token})
    assert claimed.status_code == 200


def test_openapi_describes_the_review_api(client, tokens) -> None:
    assert client.get("/openapi.json").status_code == 401
    paths = client.get("/openapi.json", headers=tokens["alice"]).json()["paths"]
    assert {"/api/v1/leads", "/api/v1/leads/{lead_id}/verify", "/api/v1/tickets"} <= set(paths)
    assert "/leads" not in paths


def test_the_queue_pages_by_twenty_and_filters_by_state(client, make_lead, session) -> None:
    ids = [make_lead(sla_due_at=NOW + timedelta(minutes=n)).id for n in range(23)]
    login(client)
    second = client.get("/leads?page=2").text
    assert [int(n) for n in re.findall(r'<a href="/leads/(\d+)">#', second)] == ids[20:]
    assert "第 2 / 2 页" in second
    client.get(f"/leads/{ids[0]}")  # opening claims it
    claimed = client.get("/leads?state=claimed").text
    assert [int(n) for n in re.findall(r'<a href="/leads/(\d+)">#', claimed)] == [ids[0]]
    assert "共 1 条" in claimed


def test_api_merges_adds_notes_and_gives_the_second_confirmation(client, make_lead, tokens, settings) -> None:
    client.app.state.settings = settings.changed(review={"urgent_second_confirmation": True})
    alice, bob = tokens["alice"], tokens["bob"]
    survivor, duplicate = make_lead().id, make_lead().id
    urgent = make_lead(priority="urgent").id
    client.post(f"/api/v1/leads/{duplicate}/claim", headers=alice)
    merged = client.post(f"/api/v1/leads/{duplicate}/merge", headers=alice, json={"into": survivor})
    assert (merged.status_code, merged.json()["state"]) == (200, "merged")
    note = client.post(f"/api/v1/leads/{survivor}/notes", headers=bob, json={"text": "同一盏路灯"})
    assert (note.status_code, note.json()["actor"]) == (201, "bob")
    client.post(f"/api/v1/leads/{urgent}/claim", headers=alice)
    waiting = client.post(f"/api/v1/leads/{urgent}/verify", headers=alice)
    assert waiting.json()["state"] == "unconfirmed"
    assert client.post(f"/api/v1/leads/{urgent}/confirm", headers=alice).status_code == 409
    confirmed = client.post(f"/api/v1/leads/{urgent}/confirm", headers=bob)
    assert (confirmed.status_code, confirmed.json()["state"]) == (200, "queued")
