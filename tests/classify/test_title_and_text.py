"""One join of a post's title and text (storage.models.title_and_text) for every stage that reads a post."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from classify import detection
from classify.merging import shingles
from settings import load_settings
from storage.models import Lead, LeadPost, Post, title_and_text
from storage.queries import sync_platforms

NOW = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
TITLE = "龙珠花园门口井盖缺失"
TEXT = "南山区桃源街道龙珠花园小区门口井盖缺失，晚上很黑，老人差点掉下去，请尽快处理！"


def test_a_titled_post_reads_as_its_title_a_full_stop_and_its_text() -> None:
    assert title_and_text(f" {TITLE} ", f"{TEXT}\n") == f"{TITLE}。{TEXT}"


@pytest.mark.parametrize("title", [None, "", "  \n"])
def test_an_untitled_post_reads_as_its_text_alone(title: str | None) -> None:
    assert title_and_text(title, f"  {TEXT}") == TEXT


def test_a_title_the_text_repeats_is_kept_as_the_training_letters_keep_it() -> None:
    assert title_and_text("井盖缺失", "井盖缺失，请尽快处理") == "井盖缺失。井盖缺失，请尽快处理"


def test_an_open_leads_evidence_reloaded_by_a_later_run_is_shingled_from_the_same_join(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync_platforms(session, {"tieba": ("贴吧", "html_board", True)})
    post = Post(
        platform_id="tieba",
        external_id="1",
        url="https://x.invalid/1",
        title=TITLE,
        text=TEXT,
        content_hash="h" * 64,
    )
    lead = Lead(summary=TITLE, last_seen_at=NOW)
    session.add_all([post, lead])
    session.flush()
    session.add(LeadPost(lead_id=lead.id, post_id=post.id))
    session.flush()
    shingled: list[str] = []
    monkeypatch.setattr(detection, "shingles", lambda text: shingled.append(text) or shingles(text))
    detection._OpenLeads(session, NOW, load_settings().city)
    assert shingled == [f"{TITLE}。{TEXT}"]
