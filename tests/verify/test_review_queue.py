"""The queue: filters, sorting, counts per state, SLA clocks and breaches, pagination, API and exports."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from review_client import submit_login
from sqlalchemy import select

from storage.base import utcnow
from storage.models import Lead, LeadPost, LeadState, Platform, Post, Priority, RequestType
from verify import review, sla
from verify.review import LeadFilter, QueueSort
from verify.users import create_token, create_user
from verify.web.app import create_app
from verify.web.filters import read_filter

#: The zone the shipped settings show times in (schedules.timezone).
ZONE = ZoneInfo("Asia/Shanghai")

LEAD_LINK = re.compile(r'<a href="/leads/(\d+)">#')


pytestmark = pytest.mark.usefixtures("cheap_hashing")


@pytest.fixture
def client(settings, session) -> Iterator[TestClient]:
    create_user(session, "alice", "alice-pw", "analyst")
    session.commit()
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as test_client:
        assert submit_login(test_client, "alice", "alice-pw").status_code == 303
        yield test_client
    app.state.engine.dispose()


@pytest.fixture
def bearer(session) -> dict[str, str]:
    create_user(session, "robot", "robot-pw", "analyst")
    token = create_token(session, "robot")
    session.commit()
    return {"Authorization": f"Bearer {token}"}


def ids(session, criteria: LeadFilter) -> list[int]:
    return [lead.id for lead in review.queue(session=session, criteria=criteria, zone=ZONE)[0]]


def move_to_platform(session, lead: Lead, platform: str) -> None:
    """Put the lead's evidence on another platform (the factory writes weibo posts)."""
    if session.get(Platform, platform) is None:
        session.add(Platform(id=platform, name=platform, kind="html_board"))
        session.flush()
    for post in session.scalars(select(Post).join(LeadPost).where(LeadPost.lead_id == lead.id)):
        post.platform_id = platform
    session.commit()


def test_each_filter_narrows_the_queue_to_matching_leads(session, make_lead) -> None:
    nanshan = make_lead(summary="南山路灯", district="南山区", category="城乡建设", score=0.9)
    futian = make_lead(summary="福田噪音扰民", district="福田区", category="环境保护", score=0.55)
    urgent = make_lead(summary="燃气泄漏 50%", priority=Priority.URGENT, score=0.7)
    move_to_platform(session, futian, "tieba")
    assert ids(session, LeadFilter(district="福田区")) == [futian.id]
    assert ids(session, LeadFilter(category="环境保护")) == [futian.id]
    assert ids(session, LeadFilter(platform="tieba")) == [futian.id]
    assert ids(session, LeadFilter(priority=Priority.URGENT)) == [urgent.id]
    assert sorted(ids(session, LeadFilter(score_min=0.6, score_max=0.95))) == [nanshan.id, urgent.id]
    assert ids(session, LeadFilter(text="噪音")) == [futian.id]
    assert ids(session, LeadFilter(text="50%")) == [urgent.id]
    assert ids(session, LeadFilter(text="%")) == [urgent.id]  # a typed % is a character, not a wildcard


def test_found_date_range_uses_shanghai_calendar_days(session, make_lead) -> None:
    # 2026-11-28 16:30 UTC is already 2026-11-29 00:30 in Shanghai.
    late = make_lead(found_at=datetime(2026, 11, 28, 16, 30, tzinfo=UTC))
    early = make_lead(found_at=datetime(2026, 11, 28, 15, 30, tzinfo=UTC))
    assert ids(session, LeadFilter(found_from=date(2026, 11, 29))) == [late.id]
    assert ids(session, LeadFilter(found_to=date(2026, 11, 28))) == [early.id]


def test_sorting_by_score_and_by_model_uncertainty(session, make_lead) -> None:
    sure = make_lead(score=0.97)
    unsure = make_lead(score=0.52)
    middle = make_lead(score=0.30)
    assert ids(session, LeadFilter(sort=QueueSort.SCORE)) == [sure.id, unsure.id, middle.id]
    assert ids(session, LeadFilter(sort=QueueSort.UNCERTAINTY)) == [unsure.id, middle.id, sure.id]


def test_counts_per_state_ignore_the_state_filter_but_honour_the_others(session, make_lead) -> None:
    make_lead(district="南山区")
    make_lead(district="南山区", state=LeadState.REJECTED)
    make_lead(district="福田区")
    counts = review.state_counts(
        session=session, criteria=LeadFilter(district="南山区", state=LeadState.NEW), zone=ZONE
    )
    assert counts == {s: {LeadState.NEW: 1, LeadState.REJECTED: 1}.get(s, 0) for s in LeadState}


def test_breaches_count_only_open_leads_past_their_sla(session, make_lead) -> None:
    now = utcnow()
    make_lead(sla_due_at=now - timedelta(minutes=5))
    make_lead(sla_due_at=now - timedelta(minutes=5), state=LeadState.PROMOTED)
    make_lead(sla_due_at=now + timedelta(minutes=5))
    assert review.sla_breaches(session=session, criteria=LeadFilter(), zone=ZONE, now=now) == 1


def test_sla_clocks_run_from_the_first_post_and_from_when_it_was_found(session, make_lead, settings) -> None:
    first = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
    found = datetime(2026, 11, 29, 5, 20, tzinfo=UTC)
    lead = make_lead(priority=Priority.URGENT, first_seen_at=first, found_at=found, sla_due_at=None)
    clocks = sla.sla_clocks(lead, settings.review)
    assert (clocks.from_first_post, clocks.from_found) == (
        first + timedelta(minutes=30),
        found + timedelta(minutes=30),
    )
    assert clocks.breached(first + timedelta(minutes=31)) is True
    assert clocks.breached(first + timedelta(minutes=29)) is False


def test_a_malformed_query_string_falls_back_to_no_filter_and_names_each_field() -> None:
    params = {"state": "bogus", "score_min": "2", "found_from": "yesterday", "page": "-3", "sort": "x"}
    criteria, problems = read_filter(params, 20)
    assert criteria == LeadFilter(page=1, page_size=20)
    named = [problem.split("（")[0] for problem in problems]
    assert named == ["状态", "发现自", "置信度下限", "排序", "页码"]


def test_the_queue_page_shows_counts_breaches_and_highlights_late_leads(client, make_lead) -> None:
    now = utcnow()
    late = make_lead(summary="超时线索", sla_due_at=now - timedelta(minutes=10), first_seen_at=now)
    make_lead(summary="按时线索", sla_due_at=now + timedelta(minutes=50), first_seen_at=now)
    html = client.get("/leads").text
    assert re.search(r'data-state="new" >待认领 <b>2</b>', html)
    assert '<b id="breach-count">1</b>' in html
    assert f'<tr class="ordinary breach" data-lead="{late.id}">' in html
    assert '<td class="sla" title="时限' in html
    assert re.search(r'<td class="sla" [^>]*>已超时 1[01]分钟</td>', html)  # 10 or 11, by the second


def test_the_queue_page_filters_and_keeps_the_filter_in_page_links(client, make_lead) -> None:
    wanted = [make_lead(district="南山区", sla_due_at=utcnow() + timedelta(minutes=n)).id for n in range(21)]
    make_lead(district="福田区")
    html = client.get("/leads?district=南山区&sort=urgent").text
    assert [int(n) for n in LEAD_LINK.findall(html)] == wanted[:20]
    assert "共 21 条" in html
    assert 'href="/leads?district=%E5%8D%97%E5%B1%B1%E5%8C%BA&amp;sort=urgent&amp;page=2" rel="next"' in html
    assert 'href="/exports/leads.csv?district=%E5%8D%97%E5%B1%B1%E5%8C%BA&amp;sort=urgent"' in html


def test_the_api_lists_with_the_same_filters_and_rejects_bad_values(client, make_lead, bearer) -> None:
    make_lead(district="南山区", score=0.9)
    futian = make_lead(district="福田区", score=0.6)
    listed = client.get("/api/v1/leads", params={"district": "福田区"}, headers=bearer).json()
    assert ([item["id"] for item in listed["items"]], listed["total"]) == ([futian.id], 1)
    assert listed["counts"]["new"] == 1 and listed["counts"]["promoted"] == 0
    by_score = client.get("/api/v1/leads", params={"score_min": 0.7}, headers=bearer).json()
    assert by_score["total"] == 1
    assert client.get("/api/v1/leads", params={"score_min": 3}, headers=bearer).status_code == 422


def test_leads_export_as_csv_honours_the_filter_and_defuses_formulas(client, make_lead) -> None:
    hostile = make_lead(summary='=HYPERLINK("http://evil")', district="南山区")
    make_lead(district="福田区")
    response = client.get("/exports/leads.csv?district=南山区")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith('attachment; filename="weisu-leads-')
    frame = pd.read_csv(io.BytesIO(response.content), encoding="utf-8-sig")
    assert frame["线索编号"].tolist() == [hostile.id]
    assert frame["摘要"].tolist() == ['\'=HYPERLINK("http://evil")']
    assert frame["类别"].tolist() == ["城乡建设"]


def test_leads_export_as_xlsx_over_the_api(client, make_lead, bearer) -> None:
    lead = make_lead(category=None)
    response = client.get("/api/v1/exports/leads.xlsx", headers=bearer)
    frame = pd.read_excel(io.BytesIO(response.content), sheet_name="线索")
    assert (frame["线索编号"].tolist(), frame["类别"].tolist()) == ([lead.id], ["不确定"])


def test_leads_export_as_parquet_keeps_the_text_exactly(client, make_lead) -> None:
    lead = make_lead(summary='=HYPERLINK("http://evil")')
    response = client.get("/exports/leads.parquet")
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    frame = pd.read_parquet(io.BytesIO(response.content))
    assert (frame["线索编号"].tolist(), frame["摘要"].tolist()) == ([lead.id], ['=HYPERLINK("http://evil")'])


def test_an_export_in_a_format_weisu_does_not_write_is_refused(client, make_lead) -> None:
    assert client.get("/exports/leads.json").status_code == 422


def test_verified_cases_export_lists_only_promoted_leads(client, make_lead, bearer) -> None:
    promoted = make_lead(state=LeadState.PROMOTED, summary="已派单")
    make_lead(summary="待认领")
    response = client.get("/api/v1/exports/cases.csv", headers=bearer)
    frame = pd.read_csv(io.BytesIO(response.content), encoding="utf-8-sig")
    assert (frame["线索编号"].tolist(), frame["摘要"].tolist()) == ([promoted.id], ["已派单"])


def test_urgent_first_paging_crosses_from_urgent_to_ordinary_leads(session, make_lead) -> None:
    base = utcnow()
    ordinary = [make_lead(sla_due_at=base + timedelta(minutes=n)).id for n in range(20)]
    no_sla = make_lead(sla_due_at=None).id
    urgent = [
        make_lead(priority=Priority.URGENT, sla_due_at=base + timedelta(hours=5 - n)).id for n in range(3)
    ]
    first = ids(session, LeadFilter(page=1, page_size=10))
    second = ids(session, LeadFilter(page=2, page_size=10))
    third = ids(session, LeadFilter(page=3, page_size=10))
    assert first == [*reversed(urgent), *ordinary[:7]]
    assert second == ordinary[7:17]
    assert third == [*ordinary[17:], no_sla]  # a lead without an SLA comes last


def test_uncertainty_paging_walks_outward_from_one_half(session, make_lead) -> None:
    scores = [0.51, 0.45, 0.62, 0.30, 0.95, 0.02, 0.5]
    by_score = {score: make_lead(score=score).id for score in scores}
    expected = [by_score[s] for s in (0.5, 0.51, 0.45, 0.62, 0.30, 0.95, 0.02)]
    first = ids(session, LeadFilter(sort=QueueSort.UNCERTAINTY, page_size=3))
    second = ids(session, LeadFilter(sort=QueueSort.UNCERTAINTY, page=2, page_size=3))
    third = ids(session, LeadFilter(sort=QueueSort.UNCERTAINTY, page=3, page_size=3))
    assert [*first, *second, *third] == expected


PROBLEM, QUESTION, SUGGESTION = RequestType.PROBLEM, RequestType.QUESTION, RequestType.SUGGESTION


def test_the_type_filter_narrows_the_queue_to_leads_of_that_type(session, make_lead) -> None:
    make_lead(request_type=PROBLEM)
    question = make_lead(request_type=QUESTION)
    suggestion = make_lead(request_type=SUGGESTION)
    assert ids(session, LeadFilter(type=QUESTION)) == [question.id]
    assert ids(session, LeadFilter(type=SUGGESTION)) == [suggestion.id]
    assert review.summarise(session=session, criteria=LeadFilter(type=QUESTION), zone=ZONE).total == 1


def test_within_a_priority_problems_come_before_suggestions_and_questions(session, make_lead) -> None:
    soon = utcnow()
    # Created so that SLA order alone would put every question first.
    ordinary_question = make_lead(request_type=QUESTION, sla_due_at=soon).id
    ordinary_suggestion = make_lead(request_type=SUGGESTION, sla_due_at=soon + timedelta(minutes=1)).id
    ordinary_problem = make_lead(request_type=PROBLEM, sla_due_at=soon + timedelta(minutes=2)).id
    later_problem = make_lead(request_type=PROBLEM, sla_due_at=soon + timedelta(minutes=3)).id
    urgent = {"priority": Priority.URGENT}
    urgent_question = make_lead(request_type=QUESTION, sla_due_at=soon, **urgent).id
    urgent_problem = make_lead(request_type=PROBLEM, sla_due_at=soon + timedelta(minutes=30), **urgent).id
    assert ids(session, LeadFilter()) == [
        urgent_problem,
        urgent_question,
        ordinary_problem,
        later_problem,
        ordinary_suggestion,
        ordinary_question,
    ]


def test_type_ordered_paging_crosses_from_one_type_to_the_next(session, make_lead) -> None:
    base = utcnow()
    questions = [
        make_lead(request_type=QUESTION, sla_due_at=base + timedelta(minutes=n)).id for n in range(4)
    ]
    problems = [make_lead(request_type=PROBLEM, sla_due_at=base + timedelta(minutes=n)).id for n in range(3)]
    suggestions = [
        make_lead(request_type=SUGGESTION, sla_due_at=base + timedelta(minutes=n)).id for n in range(2)
    ]
    pages = [ids(session, LeadFilter(page=n, page_size=4)) for n in (1, 2, 3)]
    assert pages == [
        [*problems, suggestions[0]],
        [suggestions[1], *questions[:3]],
        [questions[3]],
    ]


def test_the_queue_summary_counts_each_priority_and_type(session, make_lead) -> None:
    make_lead(request_type=QUESTION)
    make_lead(request_type=QUESTION, priority=Priority.URGENT)
    make_lead(request_type=QUESTION, state=LeadState.REJECTED)
    make_lead(request_type=PROBLEM)
    summary = review.summarise(session=session, criteria=LeadFilter(state=LeadState.NEW), zone=ZONE)
    assert summary.slices == {
        (Priority.ORDINARY, QUESTION): 1,
        (Priority.URGENT, QUESTION): 1,
        (Priority.ORDINARY, PROBLEM): 1,
    }


def test_the_queue_page_shows_each_leads_type_and_filters_by_it(client, make_lead) -> None:
    question = make_lead(request_type=QUESTION, summary="咨询垃圾分类时间")
    make_lead(request_type=PROBLEM, summary="路灯不亮")
    every = client.get("/leads").text
    assert '<td class="request-type" data-type="question">咨询</td>' in every
    assert '<td class="request-type" data-type="problem">问题</td>' in every
    filtered = client.get("/leads?type=question").text
    assert [int(n) for n in LEAD_LINK.findall(filtered)] == [question.id]
    assert '<option value="question" selected>咨询</option>' in filtered
    assert 'href="/exports/leads.csv?type=question&amp;sort=urgent"' in filtered


def test_a_bad_type_on_the_queue_page_is_named_and_ignored(client, make_lead) -> None:
    make_lead()
    response = client.get("/leads?type=complaint")
    assert response.status_code == 400
    assert "以下筛选条件无效，已忽略：诉求类型（须为列表中的一项）。" in response.text
    assert len(LEAD_LINK.findall(response.text)) == 1


def test_the_api_lists_and_filters_leads_with_their_type(client, make_lead, bearer) -> None:
    make_lead(request_type=PROBLEM)
    question = make_lead(request_type=QUESTION, request_type_probability=0.83)
    listed = client.get("/api/v1/leads", params={"type": "question"}, headers=bearer).json()
    assert [(i["id"], i["request_type"], i["request_type_probability"]) for i in listed["items"]] == [
        (question.id, "question", 0.83)
    ]
    assert client.get("/api/v1/leads", params={"type": "咨询"}, headers=bearer).status_code == 422
    detail = client.get(f"/api/v1/leads/{question.id}", headers=bearer).json()
    assert (detail["request_type"], detail["request_type_probability"]) == ("question", 0.83)


def test_the_leads_export_has_the_request_type_in_chinese(client, make_lead) -> None:
    problem = make_lead(request_type=PROBLEM)
    question = make_lead(request_type=QUESTION)
    suggestion = make_lead(request_type=SUGGESTION)
    frame = pd.read_csv(io.BytesIO(client.get("/exports/leads.csv").content), encoding="utf-8-sig")
    assert dict(zip(frame["线索编号"], frame["诉求类型"], strict=True)) == {
        problem.id: "问题",
        question.id: "咨询",
        suggestion.id: "建议",
    }
    only = pd.read_csv(
        io.BytesIO(client.get("/exports/leads.csv?type=suggestion").content), encoding="utf-8-sig"
    )
    assert only["线索编号"].tolist() == [suggestion.id]
