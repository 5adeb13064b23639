"""A lead's page: what it shows, raw evidence download, merge, notes, audit of edits, second confirmation."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from review_client import csrf_of, submit_login
from sqlalchemy import select

from storage.models import AuditEvent, Lead, LeadPost, LeadState, Post, RawResponse, Ticket, TicketState

RAW_BODY = '{"data": {"cards": [{"mblog": {"text": "<script>alert(1)</script>路灯坏了"}}]}}'.encode()


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Rendering and forms do not depend on the database (the workflow tests run on both)."""
    return sqlite_url


pytestmark = pytest.mark.usefixtures("cheap_hashing")


def signed_in(app, name: str) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    assert submit_login(client, name, f"{name}-pw").is_redirect
    return client


@pytest.fixture
def alice(app) -> Iterator[TestClient]:
    with signed_in(app, "alice") as client:
        yield client


def keep_raw(session, lead: Lead, served: bytes = RAW_BODY) -> Post:
    """Attach a stored raw response (RAW_BODY, kept for a body ``served`` so) to the lead's first post."""
    post = session.scalars(select(Post).join(LeadPost).where(LeadPost.lead_id == lead.id)).first()
    raw = RawResponse(
        platform_id=post.platform_id,
        url=post.url,
        content_type="application/json",
        sha256=hashlib.sha256(served).hexdigest(),
        size=len(served),
        body_gz=gzip.compress(RAW_BODY),
    )
    session.add(raw)
    session.flush()
    post.raw_response_id = raw.id
    session.commit()
    return post


def test_the_page_shows_facts_engagement_and_uncertain_category(alice, make_lead) -> None:
    lead = make_lead(category=None, priority="urgent", urgency_reason="燃气泄漏：危及安全", score=0.734)
    html = alice.get(f"/leads/{lead.id}").text
    assert "<dt>类别</dt><dd>不确定</dd>" in html
    assert "<dt>紧急程度</dt><dd>加急：燃气泄漏：危及安全</dd>" in html
    assert "<dt>置信度</dt><dd>0.73</dd>" in html
    assert "赞 0 · 评 0 · 转 0" in html
    assert "author0" in html and "原文链接" in html


def test_raw_evidence_downloads_as_an_attachment_with_its_hash(alice, make_lead, session) -> None:
    lead = make_lead()
    post = keep_raw(session, lead)
    page = alice.get(f"/leads/{lead.id}").text
    link = f"/leads/{lead.id}/posts/{post.id}/raw"
    assert f'href="{link}" download' in page
    response = alice.get(link)
    assert response.content == RAW_BODY
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["x-weisu-sha256"] == hashlib.sha256(RAW_BODY).hexdigest()
    assert response.headers["content-disposition"].startswith(f'attachment; filename="weisu-post-{post.id}-')
    assert response.headers["x-content-type-options"] == "nosniff"


def test_raw_evidence_names_the_sha256_of_the_masked_bytes_sent_and_of_the_body_as_served(
    alice, make_lead, session
) -> None:
    served = RAW_BODY.replace(b"}", b',"tel":"075512345678"}')
    lead = make_lead()
    post = keep_raw(session, lead, served=served)
    response = alice.get(f"/leads/{lead.id}/posts/{post.id}/raw")
    assert response.content == RAW_BODY
    assert response.headers["x-weisu-sha256"] == hashlib.sha256(RAW_BODY).hexdigest()
    assert response.headers["x-weisu-original-sha256"] == hashlib.sha256(served).hexdigest()


def test_raw_evidence_of_another_leads_post_is_not_found(alice, make_lead, session) -> None:
    post = keep_raw(session, make_lead())
    other = make_lead()
    assert alice.get(f"/leads/{other.id}/posts/{post.id}/raw").status_code == 404


def test_merging_points_the_lead_at_the_survivor_and_lands_there(alice, make_lead, session) -> None:
    survivor, duplicate = make_lead().id, make_lead().id
    token = csrf_of(alice.get(f"/leads/{duplicate}").text)
    response = alice.post(f"/leads/{duplicate}/merge", data={"csrf_token": token, "into": survivor})
    assert response.headers["location"] == f"/leads/{survivor}"
    session.expire_all()
    merged = session.get(Lead, duplicate)
    assert (merged.state, merged.merged_into_id) == (LeadState.MERGED, survivor)
    session.rollback()  # SQLite has one writer: end the test's read before the app answers again
    assert f'已合并到</dt><dd><a href="/leads/{survivor}">' in alice.get(f"/leads/{duplicate}").text


def test_a_note_is_kept_in_the_audit_trail_and_shown_as_text(alice, make_lead, session) -> None:
    lead = make_lead()
    token = csrf_of(alice.get(f"/leads/{lead.id}").text)
    alice.post(f"/leads/{lead.id}/note", data={"csrf_token": token, "text": "已电话联系<b>物业</b>"})
    html = alice.get(f"/leads/{lead.id}").text
    assert "alice · note · 已电话联系&lt;b&gt;物业&lt;/b&gt;" in html
    session.expire_all()
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "note")).one()
    assert (event.actor, event.details) == ("alice", {"note": "已电话联系<b>物业</b>"})
    session.rollback()


def test_the_audit_trail_shows_what_verifying_changed(alice, make_lead) -> None:
    lead = make_lead(district="南山区")
    token = csrf_of(alice.get(f"/leads/{lead.id}").text)
    form = {
        "csrf_token": token,
        "district": "福田区",
        "landmark": "科技园北门",
        "summary": "南山区科技园路灯不亮",
        "category": "城乡建设",
    }
    alice.post(f"/leads/{lead.id}/verify", data=form)
    assert (
        "修改 district：南山区 → 福田区，landmark：科技园 → 科技园北门" in alice.get(f"/leads/{lead.id}").text
    )


def test_similar_open_leads_are_listed(alice, make_lead) -> None:
    lead = make_lead(category="城乡建设", district="南山区")
    similar = make_lead(category="城乡建设", district="南山区", summary="科技园又一盏路灯不亮")
    make_lead(category="城乡建设", district="福田区")
    html = alice.get(f"/leads/{lead.id}").text
    assert re.findall(r'<li><a href="/leads/(\d+)">#', html) == [str(similar.id)]


def test_an_urgent_ticket_waits_for_a_second_analyst_when_configured(
    app, make_lead, session, settings
) -> None:
    settings.review.urgent_second_confirmation = True
    lead_id = make_lead(priority="urgent").id
    with signed_in(app, "alice") as alice, signed_in(app, "bob") as bob:
        token = csrf_of(alice.get(f"/leads/{lead_id}").text)
        alice.post(f"/leads/{lead_id}/verify", data={"csrf_token": token})
        mine = alice.get(f"/leads/{lead_id}").text
        assert "加急工单待第二位分析员确认（核实人：alice），确认前不会发送。" in mine
        assert "确认并发送" not in mine
        refused = alice.post(f"/leads/{lead_id}/confirm", data={"csrf_token": token})
        assert refused.headers["location"] == f"/leads/{lead_id}"
        assert "the second confirmation must come from another analyst" in alice.get(f"/leads/{lead_id}").text
        assert session.scalars(select(Ticket.state)).all() == [TicketState.UNCONFIRMED]
        session.rollback()
        page = bob.get(f"/leads/{lead_id}").text
        assert "确认并发送" in page
        bob.post(f"/leads/{lead_id}/confirm", data={"csrf_token": csrf_of(page)})
    session.expire_all()
    assert session.scalars(select(Ticket.state)).all() == [TicketState.QUEUED]
    actions = session.scalars(
        select(AuditEvent.actor + ":" + AuditEvent.action).order_by(AuditEvent.id)
    ).all()
    assert actions == ["alice:claim", "alice:verify", "alice:promote", "bob:confirm"]
    session.rollback()


def test_an_ordinary_ticket_is_queued_at_once_even_when_confirmation_is_on(
    alice, make_lead, session, settings
):
    settings.review.urgent_second_confirmation = True
    lead = make_lead()
    token = csrf_of(alice.get(f"/leads/{lead.id}").text)
    alice.post(f"/leads/{lead.id}/verify", data={"csrf_token": token})
    assert session.scalars(select(Ticket.state)).all() == [TicketState.QUEUED]
    session.rollback()


def test_the_lead_page_loads_its_script_from_static_only(alice, make_lead) -> None:
    lead = make_lead()
    response = alice.get(f"/leads/{lead.id}")
    assert '<script src="/static/lead.js" defer></script>' in response.text
    assert re.findall(r"<script[^>]*>", response.text) == ['<script src="/static/lead.js" defer>']
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in response.headers["content-security-policy"]
    script = alice.get("/static/lead.js")
    assert script.status_code == 200 and "/renew" in script.text


def test_the_dispatch_systems_status_shows_on_the_lead_after_a_sync(alice, make_lead, session) -> None:
    lead = make_lead()
    token = csrf_of(alice.get(f"/leads/{lead.id}").text)
    alice.post(f"/leads/{lead.id}/verify", data={"csrf_token": token})
    ticket = session.scalars(select(Ticket)).one()
    # What verify.sync writes when the dispatch system closes a returned (退单) and reassigned case.
    ticket.dispatch_status = "closed"
    ticket.agency_responsible = "深圳市南山区城市管理和综合执法局"
    ticket.reassignments = 1
    ticket.status_notes = "<b>已更换路灯</b>"
    session.commit()
    html = alice.get(f"/leads/{lead.id}").text
    section = html[html.index('id="dispatch-status"') :]
    assert "已办结（closed）" in section
    assert "深圳市南山区城市管理和综合执法局（改派/退单 1 次）" in section
    assert "&lt;b&gt;已更换路灯&lt;/b&gt;" in section
