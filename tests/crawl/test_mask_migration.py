"""Migration 0009 masks what was stored unmasked: raw bodies, posts' title and text, lead summaries."""

from __future__ import annotations

import gzip
import hashlib
import logging
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

from storage.db import alembic_config, make_engine, upgrade
from storage.personal_data import author_key, content_hash

SECRET = "migration-test-author-key-32-bytes"
NOW = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)
POSTS = 250  # more than the migration's batch of 200, so a second batch is read
USER = '"user":{"id":1986399651,"screen_name":"用户1986399651"}'
BODY = f'{{{USER},"text":"座机075512345678 QQ：12345678"}}'.encode()

platforms = sa.table(
    "platforms",
    *(sa.column(name) for name in ("id", "name", "kind", "enabled", "updated_at")),
)
raw_responses = sa.table(
    "raw_responses",
    *(
        sa.column(name)
        for name in ("id", "platform_id", "url", "status", "content_type", "fetched_at", "sha256", "size")
    ),
    sa.column("body_gz", sa.LargeBinary),
)
POST_COLUMNS = (
    "id",
    "platform_id",
    "external_id",
    "url",
    "author_key",
    "title",
    "text",
    "fetched_at",
    "likes",
    "replies",
    "reposts",
    "content_hash",
    "detection_status",
    "raw_response_id",
)
posts = sa.table("posts", *(sa.column(name) for name in POST_COLUMNS))
LEAD_COLUMNS = (
    "id",
    "state",
    "priority",
    "summary",
    "score",
    "first_seen_at",
    "last_seen_at",
    "found_at",
    "evidence_count",
    "created_at",
    "updated_at",
)
leads = sa.table("leads", *(sa.column(name) for name in LEAD_COLUMNS), sa.column("top_terms", sa.JSON))


def _revision_before_masking(url: str) -> str:
    down = ScriptDirectory.from_config(alembic_config(url)).get_revision("0009").down_revision
    assert isinstance(down, str)
    return down


def _text(number: int) -> str:
    if number % 2:
        return f"第{number}号帖：南山区停水，2024年12月1日起"
    return f"教练车粤B1234学占道，车主电话02188886666，身份证440301 19900101 123X（{number}）"


def _fill_unmasked(url: str) -> None:
    """Rows as a crawl before 0009 stored them: a body as served, posts with the new kinds unmasked."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(
            platforms.insert().values(id="weibo", name="微博", kind="json_feed", enabled=True, updated_at=NOW)
        )
        connection.execute(
            raw_responses.insert().values(
                id=1,
                platform_id="weibo",
                url="https://m.weibo.cn/api?page=1",
                status=200,
                content_type="application/json; charset=utf-8",
                fetched_at=NOW,
                sha256=hashlib.sha256(BODY).hexdigest(),
                size=len(BODY),
                body_gz=gzip.compress(BODY),
            )
        )
        rows = [
            {
                "id": number,
                "platform_id": "weibo",
                "external_id": str(number),
                "url": f"https://m.weibo.cn/detail/{number}",
                "author_key": author_key(SECRET, "weibo", "1986399651"),
                "title": "QQ：12345678" if number == 2 else None,
                "text": _text(number),
                "fetched_at": NOW,
                "likes": 0,
                "replies": 0,
                "reposts": 0,
                "content_hash": content_hash(_text(number)),
                "detection_status": "new",
                "raw_response_id": 1,
            }
            for number in range(1, POSTS + 1)
        ]
        connection.execute(posts.insert(), rows)
        connection.execute(
            leads.insert().values(
                id=1,
                state="new",
                priority="ordinary",
                summary="挂车粤B1234挂占道，卡号6222 0212 3456 7890 123",
                score=0.9,
                top_terms=[],
                first_seen_at=NOW,
                last_seen_at=NOW,
                found_at=NOW,
                evidence_count=1,
                created_at=NOW,
                updated_at=NOW,
            )
        )
    engine.dispose()


@pytest.fixture
def unmasked_url(database_url: str) -> str:
    """A database at the revision before 0009, holding rows stored unmasked."""
    command.downgrade(alembic_config(database_url), _revision_before_masking(database_url))
    _fill_unmasked(database_url)
    return database_url


def _stored(url: str) -> tuple[bytes, str, list[sa.Row[tuple[str | None, str, str]]], str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        body_gz, sha256 = connection.execute(sa.select(raw_responses.c.body_gz, raw_responses.c.sha256)).one()
        rows = list(
            connection.execute(
                sa.select(posts.c.title, posts.c.text, posts.c.content_hash).order_by(posts.c.id)
            )
        )
        summary = connection.scalar(sa.select(leads.c.summary))
    engine.dispose()
    return gzip.decompress(body_gz), sha256, rows, summary


def test_stored_posts_and_lead_summaries_get_the_new_masks_and_their_content_hash_follows(
    unmasked_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WEISU_AUTHOR_HASH_KEY", raising=False)
    upgrade(unmasked_url)
    _, _, rows, summary = _stored(unmasked_url)
    masked = "教练车[车牌]占道，车主电话[电话]，身份证[身份证号]"
    assert len(rows) == POSTS
    assert rows[0] == (None, _text(1), content_hash(_text(1)))
    assert rows[1] == ("QQ：[QQ号]", f"{masked}（2）", content_hash(f"{masked}（2）"))
    assert rows[-1] == (None, f"{masked}（{POSTS}）", content_hash(f"{masked}（{POSTS}）"))
    assert summary == "挂车[车牌]占道，卡号[银行卡号]"


def test_with_the_author_key_set_a_stored_body_loses_personal_data_and_handles_and_keeps_its_sha256(
    unmasked_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEISU_AUTHOR_HASH_KEY", SECRET)
    upgrade(unmasked_url)
    body, sha256, _, _ = _stored(unmasked_url)
    key = author_key(SECRET, "weibo", "1986399651")
    user = f'"user":{{"id":{key},"screen_name":"用户{key}"}}'
    assert body.decode() == f'{{{user},"text":"座机[电话] QQ：[QQ号]"}}'
    assert sha256 == hashlib.sha256(BODY).hexdigest()


def test_without_the_author_key_a_stored_body_loses_personal_data_and_the_log_says_handles_remain(
    unmasked_url: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("WEISU_AUTHOR_HASH_KEY", raising=False)
    with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
        upgrade(unmasked_url)
    body, _, _, _ = _stored(unmasked_url)
    assert body.decode() == f'{{{USER},"text":"座机[电话] QQ：[QQ号]"}}'
    assert "WEISU_AUTHOR_HASH_KEY is not set: author handles in raw bodies" in caplog.text
