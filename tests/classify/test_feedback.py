"""Analysts' decisions as training data, and the rule that decides whether a retrained model is activated."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from classify.corpus import LEAD, NOISE
from classify.feedback import FEEDBACK_KIND, FEEDBACK_NOISE_KIND, load_feedback
from classify.retraining import key_figures, worse_figures
from fixtures.leads import decided_lead
from storage.models import AuditEvent, Lead, LeadState
from storage.queries import sync_platforms

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
STREETLIGHT = "龙岗区布吉街道大芬村的路灯坏了一个月没人修"
SMOKE = "福田区梅林一村楼下烧烤摊油烟太大，晚上吵到十二点"
AD = "加微信领红包，低价代购名牌包"
CHAT = "今天天气真好，出去玩"
ELSEWHERE = "北京市朝阳区望京小区停水三天了"
NEW_ONE = "南山区科技园地铁站出口电梯坏了好几天"


def _lead(session: Session, number: int, text: str, state: LeadState, category: str | None) -> Lead:
    return decided_lead(session, number, text, state, category, at=NOW, title="标题" if number == 1 else None)


def _reject(session: Session, lead: Lead, reason: str) -> None:
    event = AuditEvent(lead_id=lead.id, actor="analyst", action="reject", to_state="rejected", reason=reason)
    session.add(event)


def test_verified_leads_teach_their_category_and_rejected_texts_teach_noise(session: Session) -> None:
    sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
    _lead(session, 1, STREETLIGHT, LeadState.PROMOTED, "城乡建设")  # title "标题" + text
    _lead(session, 2, SMOKE, LeadState.VERIFIED, None)  # category left uncertain: relevance only
    _reject(session, _lead(session, 3, AD, LeadState.REJECTED, "商贸旅游"), "spam")
    _reject(session, _lead(session, 4, CHAT, LeadState.REJECTED, None), "not_a_complaint")
    _reject(session, _lead(session, 5, ELSEWHERE, LeadState.REJECTED, "城乡建设"), "outside_city")
    _lead(session, 6, NEW_ONE, LeadState.NEW, "交通运输")  # not decided yet
    feedback = load_feedback(session)
    got = [(e.text, e.relevance, e.category, e.kind) for e in feedback.examples]
    assert got == [
        (f"标题。{STREETLIGHT}", LEAD, "城乡建设", FEEDBACK_KIND),
        (SMOKE, LEAD, None, FEEDBACK_KIND),
        (AD, NOISE, None, FEEDBACK_NOISE_KIND),
        (CHAT, NOISE, None, FEEDBACK_NOISE_KIND),
    ]
    assert dict(feedback.counts) == {"lead": 2, "noise": 2, "not_used": 1}
    assert all(not e.validation for e in feedback.examples)


def test_feedback_is_grouped_like_the_corpus_so_held_out_duplicates_can_be_left_out(session: Session) -> None:
    sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
    _lead(session, 2, SMOKE, LeadState.VERIFIED, "环境保护")
    [example] = load_feedback(session).examples
    assert example.group == "m:福田区梅林村楼下烧烤摊油烟太晚吵十点"  # stop words cut, as in the corpus


METRICS: dict[str, Any] = {
    "relevance": {
        "titles vs noise": {"precision": 0.95, "recall": 0.93, "fpr": 0.01},
        "letters vs noise": {"precision": 0.97, "recall": 0.99, "fpr": 0.01},
        "fpr_chitchat": 0.004,
        "fpr_news_titles": 0.012,
    },
    "category": {
        "letters": {"accuracy": 0.92, "macro_f1": 0.91},
        "titles": {"accuracy": 0.86, "macro_f1": 0.85},
    },
}


def test_key_figures_are_recalls_one_minus_the_worst_noise_fpr_and_macro_f1s() -> None:
    assert key_figures(METRICS) == {
        "title_recall": 0.93,
        "letter_recall": 0.99,
        "1-worst_noise_fpr": 0.988,
        "letter_macro_f1": 0.91,
        "title_macro_f1": 0.85,
    }


def test_a_model_within_half_a_point_on_every_figure_is_not_worse() -> None:
    new = copy.deepcopy(METRICS)
    new["relevance"]["titles vs noise"]["recall"] = 0.926
    new["category"]["letters"]["macro_f1"] = 0.95
    assert worse_figures(new, METRICS) == []


def test_a_model_that_lets_more_noise_through_or_loses_title_f1_is_worse() -> None:
    new = copy.deepcopy(METRICS)
    new["relevance"]["fpr_chitchat"] = 0.02
    new["category"]["titles"]["macro_f1"] = 0.84
    assert worse_figures(new, METRICS) == ["1-worst_noise_fpr", "title_macro_f1"]
