"""The supervisors' dashboard: figures from decisions and crawl runs, drawn as escaped server-side SVG."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from review_client import submit_login

from storage.base import utcnow
from storage.models import CrawlRun, LeadState, Platform, RequestType
from verify import workflow
from verify.users import create_user
from verify.web import dashboard_stats, svg
from verify.web.app import create_app, make_templates

#: The zone the shipped settings show times in (schedules.timezone).
ZONE = ZoneInfo("Asia/Shanghai")

pytestmark = pytest.mark.usefixtures("cheap_hashing")


def drawn(chart: svg.Chart) -> str:
    """The chart as the dashboard's template draws it."""
    return str(make_templates(ZONE).env.get_template("_chart.html").module.chart(chart))


def test_a_chart_title_and_labels_from_crawled_text_are_escaped_in_the_svg() -> None:
    chart = drawn(svg.share_bars([("<b>环境</b>", 0.5, "1/2")], "各类别<i>准确率</i>"))
    assert "<b>" not in chart and "<i>" not in chart
    assert "<title>各类别&lt;i&gt;准确率&lt;/i&gt;</title>" in chart
    assert '<text x="144.0" y="38.0" font-size="11" text-anchor="end">&lt;b&gt;环境&lt;/b&gt;</text>' in chart


def decide(session, settings, lead_id: int, actor: str, verdict: str) -> None:
    workflow.claim(session=session, lead_id=lead_id, actor=actor, settings=settings)
    if verdict == "verify":
        workflow.verify_and_promote(session=session, lead_id=lead_id, actor=actor, settings=settings)
    else:
        workflow.reject(session=session, lead_id=lead_id, actor=actor, reason="spam")
    session.commit()


@pytest.fixture
def decided(session, settings, make_lead) -> None:
    """Four decided leads in two categories, one open urgent lead past its SLA, and one crawl run."""
    now = utcnow()
    road = [make_lead(category="城乡建设", score=s, found_at=now).id for s in (0.9, 0.8, 0.3)]
    noise = make_lead(category="<b>环境</b>", score=0.7, found_at=now).id
    make_lead(priority="urgent", found_at=now, sla_due_at=now - timedelta(minutes=1))
    decide(session, settings, road[0], "alice", "verify")
    decide(session, settings, road[1], "alice", "reject")
    decide(session, settings, road[2], "bob", "reject")
    decide(session, settings, noise, "bob", "verify")
    session.add(Platform(id="tieba", name="贴吧", kind="html_board"))
    session.flush()
    session.add(
        CrawlRun(platform_id="tieba", status="ok", layout_changed=True, health_reason="列表为空 <i>x</i>")
    )
    session.commit()


def test_figures_count_precision_throughput_and_model_agreement(session, decided) -> None:
    figures = dashboard_stats.build(session, ZONE, days=7)
    today = figures.days[-1]
    assert figures.found[today] == {"城乡建设": 4, "<b>环境</b>": 1}  # the urgent lead is 城乡建设 too
    assert figures.verified[today] == {"城乡建设": 1, "<b>环境</b>": 1}
    assert (figures.urgent_found, figures.open_breaches) == (1, 1)
    assert [(p.label, p.verified, p.reviewed) for p in figures.by_category] == [
        ("城乡建设", 1, 3),
        ("<b>环境</b>", 1, 1),
    ]
    assert [(p.label, p.verified, p.reviewed) for p in figures.by_platform] == [("weibo", 2, 4)]
    by_name = {a.analyst: a for a in figures.analysts}
    assert (by_name["alice"].decisions, by_name["alice"].verified, by_name["alice"].rejected) == (2, 1, 1)
    # alice: verify@0.9 agrees, reject@0.8 does not; bob: reject@0.3 and verify@0.7 both agree.
    assert (by_name["alice"].agrees_with_model, by_name["bob"].agrees_with_model) == (0.5, 1.0)
    assert [(run.platform_id, run.layout_changed) for run in figures.crawl] == [("tieba", True)]


@pytest.fixture
def typed(session, settings, make_lead) -> None:
    """Leads of each request type: two questions (one promoted), a suggestion, a problem found long ago."""
    now = utcnow()
    make_lead(request_type=RequestType.QUESTION, found_at=now)
    promoted = make_lead(request_type=RequestType.QUESTION, found_at=now).id
    make_lead(request_type=RequestType.SUGGESTION, found_at=now, state=LeadState.REJECTED)
    make_lead(request_type=RequestType.PROBLEM, found_at=now - timedelta(days=30))
    decide(session, settings, promoted, "alice", "verify")


def test_leads_are_counted_per_request_type_found_open_and_promoted(session, typed) -> None:
    figures = dashboard_stats.build(session, ZONE, days=7)
    assert [(t.label, t.found, t.open, t.promoted) for t in figures.by_request_type] == [
        ("问题", 0, 1, 0),
        ("建议", 1, 0, 0),
        ("咨询", 2, 1, 1),
    ]


def test_the_dashboard_page_shows_the_counts_per_request_type(settings, session, typed) -> None:
    create_user(session, "sue", "sue-pw", "supervisor")
    session.commit()
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as client:
        submit_login(client, "sue", "sue-pw")
        html = client.get("/dashboard?days=7").text
    app.state.engine.dispose()
    assert '<tr data-type="problem"><td>问题</td><td>0</td><td>1</td><td>0</td></tr>' in html
    assert '<tr data-type="suggestion"><td>建议</td><td>1</td><td>0</td><td>0</td></tr>' in html
    assert '<tr data-type="question"><td>咨询</td><td>2</td><td>1</td><td>1</td></tr>' in html


def test_the_dashboard_page_draws_escaped_svg_charts(settings, session, decided) -> None:
    create_user(session, "sue", "sue-pw", "supervisor")
    session.commit()
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as client:
        submit_login(client, "sue", "sue-pw")
        html = client.get("/dashboard").text
    app.state.engine.dispose()
    assert html.count("<svg ") == 4
    assert "<b>环境</b>" not in html and "&lt;b&gt;环境&lt;/b&gt;" in html
    assert "33% 1/3" in html and "100% 1/1" in html and "50% 2/4" in html
    assert '<dd id="open-breaches" class="breach">1</dd>' in html
    assert "<td>alice</td><td>2</td><td>1</td><td>1</td><td>0</td><td>50%</td><td>0</td>" in html
    assert '<span class="flag">版面可能已改变</span>：列表为空 &lt;i&gt;x&lt;/i&gt;' in html


def test_stacked_days_scales_bars_to_the_busiest_day_and_groups_small_series() -> None:
    counts = {"2026-11-28": {f"c{i}": 1 for i in range(12)}, "2026-11-29": {"c0": 4}}
    chart = drawn(svg.stacked_days(["2026-11-28", "2026-11-29"], counts, "t"))
    assert chart.count("<rect ") == 9 + 1 + svg.MAX_SERIES  # day 1: 8 named + 其他; day 2: one; legend
    assert "2026-11-28 其他: 4" in chart
    assert 'height="52.0" fill="#0f6cbd"><title>2026-11-29 c0: 4</title>' in chart  # 4/12 of 156 px


def test_the_dashboard_shows_the_crawl_gaps_a_run_gave_up(settings, session) -> None:
    from crawlers.extensions.health import gaps_reason

    create_user(session, "sue", "sue-pw", "supervisor")
    session.add(Platform(id="heimao", name="黑猫投诉", kind="json_feed"))
    session.flush()
    stats = {"weisu/gaps_aged_out": 2}
    session.add(CrawlRun(platform_id="heimao", status="partial", stats=stats, health_reason=gaps_reason(2)))
    session.commit()
    app = create_app(settings)
    with TestClient(app, follow_redirects=False) as client:
        submit_login(client, "sue", "sue-pw")
        html = client.get("/dashboard").text
    app.state.engine.dispose()
    assert f'<span class="flag">抓取缺口已放弃</span>：{gaps_reason(2)}' in html
