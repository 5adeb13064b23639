"""Evidence bodies: every stored post links to the raw response it came from, kept once, as served."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
import scrapy
from scrapy.http import HtmlResponse, TextResponse
from scrapy.utils.test import get_crawler
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crawlers.items import PostItem, RawBody
from crawlers.middlewares.evidence import EvidenceMiddleware
from crawlers.pipelines.store import StorePipeline
from crawlers.runner import run_crawl
from crawlers.spiders import JsonFeedSpider
from crawlers.text import normalise_text
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Post, RawResponse
from storage.personal_data import author_key
from storage.queries import decompressed, raw_response_for_post, sync_platforms

LISTING = TextResponse(
    "https://m.weibo.cn/api/container/getIndex?page=1",
    body=b'{"cards": [{"id": "1"}, {"id": "2"}]}',
    headers={"Content-Type": "application/json; charset=utf-8"},
)
DETAIL_GBK = HtmlResponse(
    "https://tieba.baidu.com/p/9",
    body="<html><body><div class='d_post_content'>龙华区民治街道停水三天了</div></body></html>".encode(
        "gb18030"
    ),
    headers={"Content-Type": "text/html; charset=GBK"},
)


def _item(external_id: str, text: str = "停水") -> PostItem:
    return PostItem(
        platform_id="weibo",
        external_id=external_id,
        url=f"https://m.weibo.cn/detail/{external_id}",
        text=text,
        published_at=datetime(2026, 11, 28, 2, 0, tzinfo=UTC),
    )


def _stamped(response: TextResponse, *items: PostItem, limit: int = 2 * 1024 * 1024) -> list[PostItem]:
    return list(EvidenceMiddleware(limit).process_spider_output(response, list(items)))


def _store(database_url: str, items: list[PostItem]) -> None:
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    crawler = get_crawler(JsonFeedSpider, {"WEISU_SETTINGS": settings, "WEISU_PLATFORM": "weibo"})
    store = StorePipeline(crawler, database_url, settings.author_hash_key, batch_size=100)
    for item in items:
        store.process_item(item)
    store.close_spider()


@pytest.fixture
def db(database_url: str) -> Iterator[Session]:
    factory = make_session_factory(make_engine(database_url))
    with session_scope(factory) as session:
        sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
    with session_scope(factory) as session:
        yield session


def test_items_parsed_from_one_response_share_one_raw_body_and_requests_pass_untouched() -> None:
    request = scrapy.Request("https://m.weibo.cn/api/container/getIndex?page=2")
    out = list(EvidenceMiddleware().process_spider_output(LISTING, [_item("1"), request, _item("2")]))
    assert out[1] is request
    assert out[0].evidence is out[2].evidence
    assert out[0].evidence == RawBody(
        url="https://m.weibo.cn/api/container/getIndex?page=1",
        status=200,
        content_type="application/json; charset=utf-8",
        fetched_at=out[0].evidence.fetched_at,
        body=LISTING.body,
        size=len(LISTING.body),
        sha256=hashlib.sha256(LISTING.body).hexdigest(),
    )


def test_a_body_over_the_limit_is_cut_there_and_its_served_size_is_kept() -> None:
    (item,) = _stamped(LISTING, _item("1"), limit=10)
    assert item.evidence is not None
    assert (item.evidence.body, item.evidence.size) == (LISTING.body[:10], len(LISTING.body))
    assert item.evidence.sha256 == hashlib.sha256(LISTING.body[:10]).hexdigest()


def test_stored_posts_link_to_their_body_stored_once_whose_sha256_matches(
    database_url: str, db: Session
) -> None:
    _store(database_url, [*_stamped(LISTING, _item("1"), _item("2")), *_stamped(DETAIL_GBK, _item("9"))])

    raws = {raw.url: raw for raw in db.scalars(select(RawResponse))}
    assert sorted(raws) == ["https://m.weibo.cn/api/container/getIndex?page=1", "https://tieba.baidu.com/p/9"]
    posts = {post.external_id: post for post in db.scalars(select(Post))}
    listing, detail = (
        raws["https://m.weibo.cn/api/container/getIndex?page=1"],
        raws["https://tieba.baidu.com/p/9"],
    )
    assert {k: p.raw_response_id for k, p in posts.items()} == {
        "1": listing.id,
        "2": listing.id,
        "9": detail.id,
    }
    for raw in raws.values():
        assert hashlib.sha256(decompressed(raw)).hexdigest() == raw.sha256
    assert (listing.status, listing.content_type, listing.size) == (
        200,
        "application/json; charset=utf-8",
        37,
    )
    assert raw_response_for_post(db, posts["9"].id) == detail


def test_a_stored_body_is_masked_with_its_authors_keyed_and_keeps_the_sha256_and_size_as_served(
    database_url: str, db: Session
) -> None:
    served = '{"cards":[{"id":"1","user":{"id":1986399651},"text":"电话02188886666"}]}'.encode()
    listing = LISTING.replace(body=served)
    item = _item("1")
    item.author = "1986399651"
    _store(database_url, _stamped(listing, item))
    raw = db.scalars(select(RawResponse)).one()
    key = author_key(load_settings(env={}).author_hash_key, "weibo", "1986399651")
    kept = f'{{"cards":[{{"id":"1","user":{{"id":{key}}},"text":"电话[电话]"}}]}}'
    assert decompressed(raw).decode() == kept
    assert (raw.sha256, raw.size) == (hashlib.sha256(served).hexdigest(), len(served))


def test_a_gbk_page_is_kept_as_the_bytes_served_not_re_encoded(database_url: str, db: Session) -> None:
    _store(database_url, _stamped(DETAIL_GBK, _item("9")))
    post = db.scalars(select(Post)).one()
    raw = raw_response_for_post(db, post.id)
    assert raw is not None
    assert decompressed(raw) == DETAIL_GBK.body
    assert "龙华区民治街道停水三天了" in decompressed(raw).decode("gb18030")


def test_storing_the_same_posts_again_stores_no_new_body(database_url: str, db: Session) -> None:
    _store(database_url, _stamped(LISTING, _item("1"), _item("2")))
    # The page changed (an ad rotated) but its posts are stored already: nothing new is kept.
    changed = LISTING.replace(body=LISTING.body + b" ")
    _store(database_url, [*_stamped(LISTING, _item("1")), *_stamped(changed, _item("2"))])
    assert db.scalar(select(func.count()).select_from(RawResponse)) == 1
    assert db.scalar(select(func.count()).select_from(Post)) == 2


def test_a_post_stored_without_evidence_has_no_raw_response(database_url: str, db: Session) -> None:
    _store(database_url, [_item("1")])
    post = db.scalars(select(Post)).one()
    assert post.raw_response_id is None
    assert raw_response_for_post(db, post.id) is None
    assert raw_response_for_post(db, post.id + 1000) is None


def test_a_crawl_of_a_gb18030_board_keeps_each_detail_page_masked_and_a_re_crawl_keeps_nothing_new(
    sqlite_url: str,
) -> None:
    app = create_app(42)
    authors = {post.external_id: post.author_name for post in app.state.world.posts["tieba"]}
    with serve_in_thread(app) as simulator:
        settings = load_settings(env={"WEISU_SIMULATOR_URL": simulator, "WEISU_DATABASE_URL": sqlite_url})
        (first,) = run_crawl(settings, ["tieba"])
        factory = make_session_factory(make_engine(sqlite_url))
        with session_scope(factory) as session:
            bodies = session.scalar(select(func.count()).select_from(RawResponse))
            posts = list(session.scalars(select(Post)))
            raws = {raw.id: raw for raw in session.scalars(select(RawResponse))}
            for post in posts:
                raw = raws[post.raw_response_id]  # type: ignore[index]
                assert raw.url == post.url  # a board's post comes from its detail page
                # The SHA-256 kept is of the page as served; the copy kept has the author's key
                # where the page had the author's name.
                assert hashlib.sha256(httpx.get(raw.url).content).hexdigest() == raw.sha256
                kept = decompressed(raw).decode("gb18030")
                assert (authors[post.external_id] in kept, post.author_key in kept) == (False, True)
                assert post.text[:10] in normalise_text(kept)
        (second,) = run_crawl(settings, ["tieba"])
        with session_scope(factory) as session:
            assert session.scalar(select(func.count()).select_from(RawResponse)) == bodies
    # One body per thread page: a thread's reply floors share the page they are on.
    assert (first.posts_stored, bodies, second.posts_stored) == (len(posts), len({p.url for p in posts}), 0)
