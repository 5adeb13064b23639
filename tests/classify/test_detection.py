"""Detection on a real database (SQLite and PostgreSQL): leads, urgency, places, merging, idempotence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from classify import detection
from classify.detection import detect_new_posts
from classify.leads import new_lead
from classify.merging import COMMON_MIN_LEADS, LeadIndex, containment, merge_text, shingles
from classify.model import Detector, Prediction
from classify.places import Place
from classify.urgency import Urgency, assess
from settings import Settings
from storage.db import session_scope
from storage.models import Classification, DetectionStatus, Lead, LeadPost, Post, Priority, RequestType
from storage.queries import insert_leads, insert_posts, sync_platforms

Env = tuple[Settings, sessionmaker[Session]]
PUBLISHED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
MANHOLE = "南山区桃源街道龙珠花园小区门口井盖缺失，晚上很黑，老人差点掉下去，请尽快处理！"
WATER_A = "宝安区西乡街道碧海花园小区停水三天了，一直没人管，物业也不通知，住户生活很困难"
WATER_B = "碧海花园小区停水三天了一直没人管，物业也不通知！住户生活很困难，宝安区西乡街道"
TAKEAWAY = "这家外卖太难吃了，米饭是冷的，送餐还慢了一个小时，差评"
ELSEWHERE = "北京市朝阳区望京小区停水三天了，一直没人管，物业也不通知，住户生活很困难"


def _store(
    factory: sessionmaker[Session], *posts: tuple[str, str, str], published: datetime = PUBLISHED
) -> None:
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
                    "published_at": published,
                    "content_hash": f"{external_id:0>64}",
                }
                for platform, external_id, text in posts
            ],
        )


def _leads(factory: sessionmaker[Session]) -> list[Lead]:
    with session_scope(factory) as session:
        return list(session.scalars(select(Lead).order_by(Lead.id)))


def test_a_pages_new_leads_get_their_ids_in_row_order_however_many_statements_they_take(
    detect_env: Env,
) -> None:
    _, factory = detect_env
    judged = Prediction(
        relevance=0.9, is_lead=True, category=None, category_probability=None, best_category=None
    )
    # SQLAlchemy sends at most 1,000 rows in one multi-row INSERT: these take three.
    rows = [
        new_lead(
            SimpleNamespace(title=f"第{i}条", text="", published_at=PUBLISHED, fetched_at=PUBLISHED),
            judged,
            Place(),
            Urgency(False, None),
            "v",
        ).row()
        for i in range(2500)
    ]
    with session_scope(factory) as session:
        ids = insert_leads(session, rows)
        summaries = {lead_id: summary for lead_id, summary in session.execute(select(Lead.id, Lead.summary))}

    assert [summaries[lead_id] for lead_id in ids] == [f"第{i}条" for i in range(2500)]


def test_urgent_complaint_becomes_an_urgent_lead_with_reason_place_and_urgent_since_found(
    detect_env: Env,
) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", MANHOLE))
    summary = detect_new_posts(settings, factory)
    assert (summary.posts_seen, summary.leads_created, summary.urgent) == (1, 1, 1)
    [lead] = _leads(factory)
    assert lead.priority == Priority.URGENT
    assert lead.urgency_reason == "井盖: 井盖缺失"
    assert (lead.district, lead.street, lead.landmark) == ("南山区", "桃源街道", "龙珠花园小区")
    # Detection stores the fact; the deadline is verify's (verify.sla), stamped after detection.
    assert (lead.urgent_since, lead.sla_due_at) == (lead.found_at, None)
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


def test_detection_tells_how_many_posts_are_done_after_each_page(detect_env: Env) -> None:
    settings, factory = detect_env
    _store(factory, ("weibo", "1", MANHOLE), ("weibo", "2", WATER_A), ("weibo", "3", "楼下有很重的煤气味"))
    told: list[tuple[int, int]] = []
    detect_new_posts(settings, factory, page_size=2, on_progress=lambda *p: told.append(p))
    assert told == [(2, 3), (3, 3)]


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
    # Below the threshold the model types nothing: a hazard made a lead by its rule is a problem.
    assert (lead.request_type, lead.request_type_probability) == ("problem", None)


def test_a_category_below_the_minimum_probability_is_left_uncertain(detect_env: Env) -> None:
    settings, factory = detect_env
    settings = settings.changed(classify={"category_min_probability": 0.999})
    _store(factory, ("weibo", "1", MANHOLE))
    detect_new_posts(settings, factory)
    [lead] = _leads(factory)
    assert lead.category is None
    assert lead.category_probability is not None and 0.4 < lead.category_probability < 0.999


WATER_FOLLOW_UP = "我们多次打电话给物业和自来水公司，都说在抢修，但一直没有结果，希望有关部门尽快解决。"


def _letter_then_weibo_post(detect_env: Env, weibo_text: str) -> tuple[tuple[int, int], int]:
    """(leads created, leads updated) and the evidence count of the one lead, after detecting the
    whole letter on a board and ``weibo_text`` on Weibo."""
    settings, factory = detect_env
    _store(factory, ("tieba", "9", f"{WATER_A}。{WATER_FOLLOW_UP}"), ("weibo", "1", weibo_text))
    summary = detect_new_posts(settings, factory)
    [lead] = _leads(factory)
    return (summary.leads_created, summary.leads_updated), lead.evidence_count


def test_a_one_line_post_joins_the_lead_of_the_whole_letter_it_repeats(detect_env: Env) -> None:
    one_line = "宝安区西乡街道碧海花园小区停水三天了，一直没人管"
    assert _letter_then_weibo_post(detect_env, one_line) == ((1, 1), 2)


def test_a_weibo_repost_with_topics_emoji_and_a_masked_phone_joins_the_letters_lead(detect_env: Env) -> None:
    repost = "#深圳# #宝安区# 碧海花园小区停水三天了，一直没人管 [抓狂] 联系电话[手机号]"
    assert _letter_then_weibo_post(detect_env, repost) == ((1, 1), 2)


def test_merge_text_drops_weibo_topics_emoji_codes_and_personal_data_placeholders() -> None:
    assert merge_text("#深圳# 楼道漏水 [允悲] 联系电话[手机号] @深圳发布") == "楼道漏水联系电话"


LETTER = frozenset(shingles("宝安区西乡街道碧海花园小区停水三天了一直没人管物业也不通知住户生活很困难"))
REPOST = frozenset(shingles("碧海花园小区停水三天了一直没人管物业也不通知"))


def test_a_shingle_in_the_evidence_of_many_leads_is_boilerplate_and_does_not_count() -> None:
    index = LeadIndex()
    letter = index.add(None, LETTER, frozenset(), None)
    contact = "物业座机一直没人接"
    repost = frozenset(shingles(f"碧海花园小区停水三天了{contact}"))
    assert index.match(repost, frozenset(), None, 0.7) is None  # 11 of its 18 shingles are in the letter
    for i, other in enumerate(
        [
            "龙岗区路灯坏了一个月",
            "福田区噪音扰民严重",
            "南山区垃圾没人清运",
            "罗湖区井盖松动",
            "盐田区公交改线",
        ]
    ):
        index.add(None, frozenset(shingles(f"{other}{contact}{i}")), frozenset(), None)
    assert COMMON_MIN_LEADS == 5 and set(shingles(contact)) <= index.common
    assert index.match(repost, frozenset(), None, 0.7) == letter


def test_texts_merge_when_they_name_a_district_in_common_or_one_names_none() -> None:
    index = LeadIndex()
    lead = index.add(None, LETTER, frozenset({"龙华区", "罗湖区"}), None)
    assert index.match(REPOST, frozenset({"罗湖区"}), None, 0.7) == lead
    assert index.match(REPOST, frozenset(), None, 0.7) == lead
    assert index.match(REPOST, frozenset({"福田区"}), None, 0.7) is None


def test_predicted_categories_must_agree_unless_one_text_repeats_the_other() -> None:
    index = LeadIndex()
    lead = index.add(None, LETTER, frozenset(), "城乡建设")
    assert index.match(REPOST, frozenset(), "商贸旅游", 0.7) == lead  # containment 1.0
    partly = frozenset(shingles("碧海花园小区停水三天了一直没人管，燃气也停了好几天"))
    assert index.match(partly, frozenset(), "城乡建设", 0.5) == lead
    assert index.match(partly, frozenset(), "商贸旅游", 0.5) is None


def test_a_later_post_joins_the_stored_open_lead_and_raises_its_score(detect_env: Env) -> None:
    settings, factory = detect_env
    yesterday = datetime.now(UTC) - timedelta(days=1)  # inside the merge window
    _store(factory, ("tieba", "9", WATER_A), published=yesterday)
    detect_new_posts(settings, factory)
    [before] = _leads(factory)
    _store(factory, ("weibo", "1", WATER_B), published=yesterday)
    summary = detect_new_posts(settings, factory)
    assert (summary.leads_created, summary.leads_updated) == (0, 1)
    [after] = _leads(factory)
    with session_scope(factory) as session:
        relevance = session.scalar(select(Classification.relevance).join(Post).where(Post.external_id == "1"))
    assert relevance is not None
    assert (after.id, after.evidence_count) == (before.id, 2)
    assert after.score == round(1 - (1 - before.score) * (1 - relevance), 4) > before.score


def test_anchors_pair_the_named_place_with_each_urgency_rule_that_fired() -> None:
    reason = "台阶破损: 台阶断了; 老人残障受困: 老人差点踩空"
    assert detection.anchors("南山区", "桃园路", reason) == {
        "南山区|桃园路|台阶破损",
        "南山区|桃园路|老人残障受困",
    }
    assert detection.anchors(None, "桃园路", reason) == frozenset()
    assert detection.anchors("南山区", "桃园路", None) == frozenset()


def test_the_same_hazard_at_the_same_named_place_merges_though_told_in_other_words() -> None:
    index = LeadIndex()
    step = frozenset({"南山区|桃园路|台阶破损"})
    video = frozenset(shingles("南山区桃园路天桥东侧的台阶断了一截，我拿卷尺量了，缺口很深，晚上看不清"))
    lead = index.add(None, video, frozenset({"南山区"}), "城乡建设", step)
    review = frozenset(shingles("味道一般。店门口就是南山区桃园路天桥，东侧台阶断了一截，带老人来差点踩空"))
    assert 0.2 <= containment(review, video) < 0.7
    assert index.match(review, frozenset({"南山区"}), "商贸旅游", 0.7, step) == lead
    assert index.match(review, frozenset({"南山区"}), "城乡建设", 0.7) is None  # no shared hazard
    elsewhere = frozenset({"南山区|深南大道|台阶破损"})
    assert index.match(review, frozenset({"南山区"}), "城乡建设", 0.7, elsewhere) is None


def _typed(monkeypatch: pytest.MonkeyPatch, types: dict[str, tuple[str | None, float | None]]) -> None:
    """Give the predictions of these texts a request type and its probability (the type model's part of
    Detector.predict, whichever model is trained); other texts keep what the model said."""
    predict = Detector.predict

    def typed(self: Detector, texts: list[str], *args: Any, **kwargs: Any) -> list[Prediction]:
        predictions = predict(self, texts, *args, **kwargs)
        return [
            replace(p, request_type=types[t][0], request_type_probability=types[t][1]) if t in types else p
            for t, p in zip(texts, predictions, strict=True)
        ]

    monkeypatch.setattr(Detector, "predict", typed)


def test_a_new_lead_keeps_the_request_type_and_probability_of_its_post(
    detect_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, factory = detect_env
    _typed(monkeypatch, {MANHOLE: ("question", 0.81)})
    _store(factory, ("weibo", "1", MANHOLE))
    detect_new_posts(settings, factory)
    [lead] = _leads(factory)
    assert (lead.request_type, lead.request_type_probability) == (RequestType.QUESTION, 0.81)


def test_a_post_no_type_model_judged_makes_a_problem_lead_without_a_probability(
    detect_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, factory = detect_env
    _typed(monkeypatch, {MANHOLE: (None, None)})
    _store(factory, ("weibo", "1", MANHOLE))
    detect_new_posts(settings, factory)
    [lead] = _leads(factory)
    assert (lead.request_type, lead.request_type_probability) == (RequestType.PROBLEM, None)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (("question", 0.9), ("problem", 0.6), (RequestType.PROBLEM, 0.6)),
        (("problem", 0.6), ("question", 0.9), (RequestType.PROBLEM, 0.6)),
        (("question", 0.9), ("suggestion", 0.7), (RequestType.SUGGESTION, 0.7)),
        (("suggestion", 0.7), ("problem", 0.55), (RequestType.PROBLEM, 0.55)),
        (("suggestion", 0.7), ("question", 0.95), (RequestType.SUGGESTION, 0.7)),
        (("question", 0.9), ("question", 0.6), (RequestType.QUESTION, 0.9)),
    ],
)
@pytest.mark.parametrize("same_run", [True, False], ids=["same-page", "stored-lead"])
def test_a_merged_lead_takes_the_most_pressing_type_among_its_posts(
    detect_env: Env,
    monkeypatch: pytest.MonkeyPatch,
    first: tuple[str, float],
    second: tuple[str, float],
    expected: tuple[RequestType, float],
    same_run: bool,
) -> None:
    settings, factory = detect_env
    _typed(monkeypatch, {WATER_A: first, WATER_B: second})
    yesterday = datetime.now(UTC) - timedelta(days=1)  # inside the merge window
    _store(factory, ("tieba", "9", WATER_A), published=yesterday)
    if not same_run:
        detect_new_posts(settings, factory)
    _store(factory, ("weibo", "1", WATER_B), published=yesterday)
    detect_new_posts(settings, factory)
    [lead] = _leads(factory)
    assert (lead.evidence_count, lead.request_type, lead.request_type_probability) == (2, *expected)
