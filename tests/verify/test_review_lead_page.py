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

from storage.models import (
    AuditEvent,
    Lead,
    LeadPost,
    LeadState,
    Post,
    RawResponse,
    RequestType,
    Ticket,
    TicketState,
)

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
    assert "alice · 备注 · 已电话联系&lt;b&gt;物业&lt;/b&gt;" in html
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
    assert "修改 区：南山区 → 福田区，地点：科技园 → 科技园北门" in alice.get(f"/leads/{lead.id}").text


def test_similar_open_leads_are_listed(alice, make_lead) -> None:
    lead = make_lead(category="城乡建设", district="南山区")
    similar = make_lead(category="城乡建设", district="南山区", summary="科技园又一盏路灯不亮")
    make_lead(category="城乡建设", district="福田区")
    html = alice.get(f"/leads/{lead.id}").text
    assert re.findall(r'<li><a href="/leads/(\d+)\?compare=1" target="_blank"', html) == [str(similar.id)]


def test_an_urgent_ticket_waits_for_a_second_analyst_when_configured(
    app, make_lead, session, settings
) -> None:
    app.state.settings = settings.changed(review={"urgent_second_confirmation": True})
    lead_id = make_lead(priority="urgent").id
    with signed_in(app, "alice") as alice, signed_in(app, "bob") as bob:
        token = csrf_of(alice.get(f"/leads/{lead_id}").text)
        alice.post(f"/leads/{lead_id}/verify", data={"csrf_token": token})
        mine = alice.get(f"/leads/{lead_id}").text
        assert "加急工单待第二位分析员确认（核实人：alice），确认前不会发送。" in mine
        assert "确认并发送" not in mine
        refused = alice.post(f"/leads/{lead_id}/confirm", data={"csrf_token": token})
        assert refused.headers["location"] == f"/leads/{lead_id}"
        assert "确认未完成：加急工单须由核实人以外的另一位分析员确认。" in alice.get(f"/leads/{lead_id}").text
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
    alice.app.state.settings = settings.changed(review={"urgent_second_confirmation": True})
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
    assert "<dt>办理状态</dt><dd>已办结</dd>" in section
    assert "深圳市南山区城市管理和综合执法局（改派/退单 1 次）" in section
    assert "&lt;b&gt;已更换路灯&lt;/b&gt;" in section


def test_the_evidence_comes_before_the_facts_and_every_form(alice, make_lead) -> None:
    lead = make_lead("小区门口路灯坏了一个月没人修")
    html = alice.get(f"/leads/{lead.id}").text
    main = html[html.index("<main>") :]
    evidence = main.index('id="evidence"')
    assert evidence < main.index('id="facts"')
    assert evidence < main.index("<form")
    assert main.index("小区门口路灯坏了一个月没人修") < main.index('id="verify-form"')


def test_opening_a_lead_to_compare_does_not_claim_it(alice, make_lead, session) -> None:
    lead = make_lead()
    html = alice.get(f"/leads/{lead.id}?compare=1").text
    assert "对比查看：打开此页不会认领这条线索。" in html
    assert f'<a href="/leads/{lead.id}">认领并核实</a>' in html
    assert 'id="verify-form"' not in html and "/static/lead.js" not in html
    session.expire_all()
    assert (session.get(Lead, lead.id).state, session.get(Lead, lead.id).claimed_by) == (LeadState.NEW, None)
    assert session.scalars(select(AuditEvent)).all() == []
    session.rollback()


def test_comparing_ones_own_claimed_lead_shows_it_read_only_and_keeps_the_claim(
    alice, make_lead, session
) -> None:
    lead = make_lead()
    alice.get(f"/leads/{lead.id}")
    html = alice.get(f"/leads/{lead.id}?compare=1").text
    assert 'id="verify-form"' not in html
    session.expire_all()
    assert (session.get(Lead, lead.id).state, session.get(Lead, lead.id).claimed_by) == (
        LeadState.CLAIMED,
        "alice",
    )
    session.rollback()


def flash_of(html: str) -> str:
    return re.search(r'<p class="flash" role="status">(.*?)</p>', html).group(1)


def test_a_refused_merge_says_in_chinese_where_both_leads_stand(alice, make_lead, session) -> None:
    survivor, gone, duplicate = make_lead().id, make_lead().id, make_lead().id
    token = csrf_of(alice.get(f"/leads/{gone}").text)
    alice.post(f"/leads/{gone}/merge", data={"csrf_token": token, "into": survivor})
    alice.get(f"/leads/{duplicate}")
    alice.post(f"/leads/{duplicate}/merge", data={"csrf_token": token, "into": 999_999})
    assert flash_of(alice.get(f"/leads/{duplicate}").text) == (
        f"合并未完成：不能把线索 #{duplicate} 合并到线索 #999999"
        f"（线索 #{duplicate} 当前为「核实中」，由您认领；线索 #999999 不存在）。"
    )


def test_a_decision_on_a_lead_someone_else_holds_is_refused_in_chinese(app, make_lead) -> None:
    lead_id = make_lead().id
    with signed_in(app, "alice") as alice, signed_in(app, "bob") as bob:
        alice.get(f"/leads/{lead_id}")
        token = csrf_of(bob.get(f"/leads/{lead_id}").text)
        bob.post(f"/leads/{lead_id}/verify", data={"csrf_token": token})
        assert flash_of(bob.get(f"/leads/{lead_id}").text) == (
            f"核实未完成：线索 #{lead_id} 当前为「核实中」，由 alice 认领。"
        )


def test_the_favicon_is_linked_and_served_at_the_default_path(alice, app) -> None:
    html = alice.get("/leads").text
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in html
    assert '<link rel="icon" href="/favicon.ico" sizes="32x32">' in html
    icon = alice.get("/favicon.ico")
    assert (icon.status_code, icon.headers["content-type"]) == (200, "image/x-icon")
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    with TestClient(app) as anonymous:  # browsers ask before anyone has signed in
        assert anonymous.get("/favicon.ico").content == icon.content
    svg = alice.get("/static/favicon.svg")
    assert (svg.status_code, svg.headers["content-type"]) == (200, "image/svg+xml")


def test_the_page_shows_the_request_type_in_chinese_with_its_probability(alice, make_lead) -> None:
    question = make_lead(request_type=RequestType.QUESTION, request_type_probability=0.834)
    untyped = make_lead(request_type=RequestType.PROBLEM, request_type_probability=None)
    assert (
        '<dd id="request-type" data-type="question">咨询（83%）</dd>'
        in alice.get(f"/leads/{question.id}").text
    )
    assert '<dd id="request-type" data-type="problem">问题</dd>' in alice.get(f"/leads/{untyped.id}").text


def test_an_analyst_promoting_a_question_from_its_page_makes_a_ticket_noted_in_its_history(
    alice, make_lead, session
) -> None:
    lead = make_lead(request_type=RequestType.QUESTION)
    page = alice.get(f"/leads/{lead.id}").text
    assert '<p class="hint" id="question-hint">这是一条咨询：只有确需职能部门办理时才派单' in page
    token = csrf_of(page)
    assert alice.post(f"/leads/{lead.id}/verify", data={"csrf_token": token}).status_code == 303
    assert "派单 · 已核实 → 已派单 · 咨询类线索，经分析员派单" in alice.get(f"/leads/{lead.id}").text
    assert [t.lead_id for t in session.scalars(select(Ticket))] == [lead.id]


def test_the_page_shows_the_unit_promotion_took_from_the_responsibility_list(
    alice, make_lead, session, settings
) -> None:
    from fixtures.leads import promote
    from verify import responsibility
    from verify.responsibility import RuleRow

    row = RuleRow("城乡建设", "深圳市南山区城市管理和综合执法局", district="南山区")
    responsibility.create(session=session, row=row, actor="admin")
    ticket = promote(session, make_lead, settings)
    html = alice.get(f"/leads/{ticket.lead_id}").text
    assert "<dt>责任单位</dt><dd>深圳市南山区城市管理和综合执法局</dd>" in html
