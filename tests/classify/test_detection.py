"""Detection on a real database (SQLite and PostgreSQL): leads, urgency, places, merging, idempotence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from classify import detection
from classify.detection import detect_new_posts
from classify.urgency import Urgency, assess
from settings import Settings
from storage.db import session_scope
from storage.models import Classification, DetectionStatus, Lead, LeadPost, Post, Priority
from storage.queries import insert_posts, sync_platforms

Env = tuple[Settings, sessionmaker[Session]]
PUBLISHED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
MANHOLE = "南山区桃源街道龙珠花园小区门口井盖缺失，晚上很黑，老人差点掉下去，请尽快处理！"
WATER_A = "宝安区西乡街道碧海花园小区停水三天了，一直没人管，物业也不通知，住户生活很困难"
WATER_B = "碧海花园小区停水三天了一直没人管，物业也不通知！住户生活很困难，宝安区西乡街道"
TAKEAWAY = "这家外卖太难吃了，米饭是冷的，送餐还慢了一个小时，差评"
ELSEWHERE = "北京市朝阳区望京小区停水三天了，一直没人管，物业也不通知，住户生活很困难"


def _store(factory: sessionmaker[Session], *posts: tuple[str, str, str]) -> None:
    with session_scope(factory) as session:
        sync_platforms(session, {"weibo": ("微博", "json_feed", True), "tieba": ("贴吧", "html_board", True)})
        insert_posts(
            session,
            [
                {
                    "platform_id": platform,
                    "external_id": external_id,
                    "url": f"https://example.invalid/{platform}/{external_id}",
                    "text": text,
                    "published_at": PUBLISHED,
                    "content_hash": f"{external_id:0>64}",
                }
                for platform, external_id, text in posts
            ],
        )


def _leads(factory: sessionmaker[Session]) -> list[Lead]:
    with session_scope(factory) as session:
        return list(session.scalars(select(Lead).order_by(Lead.id)))


def test_urgent_complaint_becomes_an_urgent_lead_with_reason_place_and_30_minute_sla(detect_env: Env) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", MANHOLE))
    summary = detect_new_posts(settings, factory)
    assert (summary.posts_seen, summary.leads_created, summary.urgent) == (1, 1, 1)
    [lead] = _leads(factory)
    assert lead.priority == Priority.URGENT
    assert lead.urgency_reason == "井盖: 井盖缺失"
    assert (lead.district, lead.street, lead.landmark) == ("南山区", "桃源街道", "龙珠花园小区")
    assert lead.sla_due_at is not None and lead.sla_due_at - lead.found_at == timedelta(minutes=30)
    assert lead.category == "城乡建设"
    assert lead.summary == MANHOLE  # one sentence, under the 120-character bound
    assert lead.evidence_count == 1 and lead.first_seen_at == PUBLISHED
    assert lead.top_terms and all(weight > 0 for _, weight in lead.top_terms)


def test_food_delivery_gripe_is_classified_but_makes_no_lead(detect_env: Env) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", TAKEAWAY))
    summary = detect_new_posts(settings, factory)
    assert (summary.classified, summary.leads_created) == (1, 0)
    with session_scope(factory) as session:
        assert session.scalar(select(Classification.is_lead)) is False
        assert session.scalar(select(Post.detection_status)) == DetectionStatus.DETECTED
    assert _leads(factory) == []


def test_near_duplicate_posts_on_two_platforms_make_one_lead_with_two_evidence(detect_env: Env) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", WATER_A), ("tieba", "9", WATER_B))
    summary = detect_new_posts(settings, factory)
    assert (summary.leads_created, summary.leads_updated) == (1, 1)
    [lead] = _leads(factory)
    assert lead.evidence_count == 2
    assert lead.priority == Priority.URGENT and lead.urgency_reason == "停水: 停水"
    with session_scope(factory) as session:
        assert session.scalar(select(func.count()).select_from(LeadPost)) == 2


def test_rerunning_detection_creates_and_doubles_nothing(detect_env: Env) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", WATER_A), ("tieba", "9", WATER_B), ("weibo", "2", MANHOLE))
    detect_new_posts(settings, factory)
    assert detect_new_posts(settings, factory).as_dict() == dict.fromkeys(
        ("posts_seen", "classified", "leads_created", "leads_updated", "urgent", "dropped_elsewhere"), 0
    )
    # As if a crash had left the posts NEW after their page was written: still nothing doubles.
    with session_scope(factory) as session:
        session.execute(update(Post).values(detection_status=DetectionStatus.NEW))
    again = detect_new_posts(settings, factory)
    assert (again.posts_seen, again.classified, again.leads_created, again.leads_updated) == (3, 0, 0, 0)
    assert [lead.evidence_count for lead in _leads(factory)] == [2, 1]


def test_post_about_another_city_is_dropped_as_elsewhere(detect_env: Env) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", ELSEWHERE))
    summary = detect_new_posts(settings, factory)
    assert (summary.dropped_elsewhere, summary.leads_created) == (1, 0)
    with session_scope(factory) as session:
        assert session.scalar(select(Classification.is_lead)) is False


def test_found_time_is_utc_now(detect_env: Env) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", MANHOLE))
    before = datetime.now(UTC)
    detect_new_posts(settings, factory)
    [lead] = _leads(factory)
    assert before <= lead.found_at <= datetime.now(UTC)


def test_a_crash_mid_run_keeps_finished_pages_and_the_rerun_completes_the_rest(
    detect_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", MANHOLE), ("weibo", "2", WATER_A))
    calls = []

    def crash_on_second_post(text: str, rules: dict[str, list[str]]) -> Urgency:
        calls.append(text)
        if len(calls) == 2:
            raise RuntimeError("crash")
        return assess(text, rules)

    monkeypatch.setattr(detection, "assess", crash_on_second_post)
    with pytest.raises(RuntimeError, match="crash"):
        detect_new_posts(settings, factory, page_size=1)
    assert len(_leads(factory)) == 1
    monkeypatch.undo()
    summary = detect_new_posts(settings, factory, page_size=1)
    assert (summary.posts_seen, summary.leads_created) == (1, 1)
    assert [lead.evidence_count for lead in _leads(factory)] == [1, 1]


def test_an_urgent_rule_lowers_the_bar_for_a_colloquial_one_liner(detect_env: Env) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", "楼下有很重的煤气味"))
    summary = detect_new_posts(settings, factory)
    with session_scope(factory) as session:
        relevance = session.scalar(select(Classification.relevance))
    assert relevance is not None and 0.1 <= relevance < settings.classify.relevance_threshold
    assert (summary.leads_created, summary.urgent) == (1, 1)
    [lead] = _leads(factory)
    assert lead.urgency_reason == "燃气安全: 煤气味"
    assert lead.top_terms != []


def test_a_category_below_the_minimum_probability_is_left_uncertain(detect_env: Env) -> None:
    settings, factory = detect_env
    settings.classify.category_min_probability = 0.999
    _store(factory, ("weibo", "1", MANHOLE))
    detect_new_posts(settings, factory)
    [lead] = _leads(factory)
    assert lead.category is None
    assert lead.category_probability is not None and 0.4 < lead.category_probability < 0.999


def test_a_one_line_post_joins_the_lead_of_the_whole_letter_it_repeats(detect_env: Env) -> None:
    settings, factory = detect_env
    follow_up = "我们多次打电话给物业和自来水公司，都说在抢修，但一直没有结果，希望有关部门尽快解决。"
    one_line = "宝安区西乡街道碧海花园小区停水三天了，一直没人管"
    _store(factory, ("tieba", "9", f"{WATER_A}。{follow_up}"), ("weibo", "1", one_line))
    summary = detect_new_posts(settings, factory)
    assert (summary.leads_created, summary.leads_updated) == (1, 1)
    [lead] = _leads(factory)
    assert lead.evidence_count == 2
