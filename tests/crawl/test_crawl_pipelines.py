"""The pipelines and the run recorder, unit by unit, on every database backend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from keys_for_tests import TEST_AUTHOR_HASH_KEY, TEST_SECRET_ENV
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler
from sqlalchemy import select

from crawlers.extensions.crawl_runs import CrawlRunRecorder, run_status
from crawlers.items import PostItem
from crawlers.pipelines.mask import MaskPipeline
from crawlers.pipelines.normalise import NormalisePipeline
from crawlers.pipelines.pseudonymise import PseudonymisePipeline
from crawlers.pipelines.store import StorePipeline
from crawlers.spiders import JsonFeedSpider
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import CrawlRun, Platform, Post
from storage.personal_data import author_key


def _item(external_id: str, text: str, minute: int = 0) -> PostItem:
    return PostItem(
        platform_id="weibo",
        external_id=external_id,
        url=f"https://m.weibo.cn/detail/{external_id}",
        text=text,
        author="1986399651",
        published_at=datetime(2026, 11, 28, 2, minute, tzinfo=UTC),
    )


def test_text_pipelines_normalise_mask_and_pseudonymise_in_order() -> None:
    crawler = get_crawler(JsonFeedSpider, {"WEISU_SETTINGS": load_settings(env=TEST_SECRET_ENV)})
    item = _item("1", "<p>停水了，电话&nbsp;13812345678</p>")
    for pipeline in (NormalisePipeline, MaskPipeline, PseudonymisePipeline):
        item = pipeline.from_crawler(crawler).process_item(item)
    assert item.text == "停水了,电话 [手机号]"
    assert item.author is None and item.author_key == author_key(TEST_AUTHOR_HASH_KEY, "weibo", "1986399651")
    assert crawler.stats.get_value("weisu/masked/mobile") == 1


def test_post_that_is_empty_after_normalising_is_dropped() -> None:
    with pytest.raises(DropItem):
        NormalisePipeline().process_item(_item("1", "<p> </p>"))


def test_run_recorder_and_store_write_posts_runs_and_high_water_mark(database_url: str) -> None:
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    crawler = get_crawler(JsonFeedSpider, {"WEISU_SETTINGS": settings, "WEISU_PLATFORM": "weibo"})
    spider = JsonFeedSpider.from_crawler(crawler, platform_id="weibo")
    recorder = CrawlRunRecorder.from_crawler(crawler)
    store = StorePipeline(crawler, settings.database_url, settings.author_hash_key, batch_size=2)

    recorder.spider_opened(spider)
    for item in (_item("1", "停水", 5), _item("2", "停电", 9), _item("1", "停水", 5), _item("3", "井盖", 1)):
        crawler.stats.inc_value("item_scraped_count")
        store.process_item(item)
    store.close_spider()
    recorder.spider_closed(spider, "finished")

    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        posts = list(session.scalars(select(Post).order_by(Post.external_id)))
        assert [p.external_id for p in posts] == ["1", "2", "3"]
        run = session.scalars(select(CrawlRun)).one()
        assert {p.crawl_run_id for p in posts} == {run.id}
        assert (run.status, run.items, run.posts_stored, run.errors) == ("ok", 4, 3, 0)
        assert run.finished_at is not None
        assert run.cursor == "2026-11-28T02:09:00+00:00 2"
        platform = session.get(Platform, "weibo")
        assert platform is not None and platform.high_water_mark == "2026-11-28T02:09:00+00:00 2"


def _open_store(database_url: str) -> StorePipeline:
    """A weibo run opened on the database, and the store pipeline of its crawler."""
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    crawler = get_crawler(JsonFeedSpider, {"WEISU_SETTINGS": settings, "WEISU_PLATFORM": "weibo"})
    CrawlRunRecorder.from_crawler(crawler).spider_opened(
        JsonFeedSpider.from_crawler(crawler, platform_id="weibo")
    )
    return StorePipeline(crawler, settings.database_url, settings.author_hash_key, batch_size=10)


def test_a_stored_post_seen_again_gets_its_larger_counts_and_nothing_else(database_url: str) -> None:
    store = _open_store(database_url)
    crawler = store.crawler
    first = _item("1", "停水", 5)
    first.likes, first.replies, first.reposts = 4, 2, 1
    store.process_item(first)
    store.close_spider()
    again = _item("1", "停水三天了", 5)  # the same post, read again later: only its counts may change
    again.likes, again.replies, again.reposts = 3, 9, 1  # a like withdrawn, seven new replies
    store.process_item(again)
    store.close_spider()

    factory = make_session_factory(make_engine(database_url))
    with session_scope(factory) as session:
        post = session.scalars(select(Post)).one()
        assert (post.text, post.likes, post.replies, post.reposts) == ("停水", 4, 9, 1)
    assert crawler.stats.get_value("weisu/posts_stored") == 1
    assert crawler.stats.get_value("weisu/posts_refreshed") == 1


def test_a_post_a_run_that_did_not_close_clean_stored_is_taken_over_by_the_run_that_sees_it_again(
    database_url: str,
) -> None:
    killed = _open_store(database_url)
    killed.process_item(_item("1", "停水", 5))
    killed.close_spider()  # its run is never closed: it stays "running", as after a SIGKILL
    store = _open_store(database_url)
    store.process_item(_item("1", "停水", 5))
    store.close_spider()

    runs = (killed.stats.get_value("weisu/crawl_run_id"), store.stats.get_value("weisu/crawl_run_id"))
    factory = make_session_factory(make_engine(database_url))
    with session_scope(factory) as session:
        assert session.scalars(select(Post.crawl_run_id)).one() == runs[1] != runs[0]
    assert store.stats.get_value("weisu/posts_refreshed") == 1


def test_a_stored_post_seen_again_with_the_same_counts_is_not_written(database_url: str) -> None:
    store = _open_store(database_url)
    crawler = store.crawler
    for _ in range(2):
        store.process_item(_item("1", "停水", 5))
        store.close_spider()
    assert crawler.stats.get_value("weisu/posts_refreshed") == 0
    assert crawler.stats.get_value("weisu/posts_seen_before") == 1


@pytest.mark.parametrize(
    ("reason", "items", "errors", "status"),
    [
        ("finished", 5, 0, "ok"),
        ("finished", 5, 2, "partial"),
        ("finished", 0, 2, "failed"),
        ("shutdown", 5, 0, "failed"),
    ],
)
def test_run_status_table(reason: str, items: int, errors: int, status: str) -> None:
    assert run_status(reason, items, errors) == status


def test_platform_crawlers_share_one_settings_object_and_open_no_control_port() -> None:
    from scrapy.settings import Settings as ScrapySettings

    from crawlers.config import SharedSettings, crawler_settings

    settings = load_settings(env={})
    shared = SharedSettings.of(settings)  # as crawl_process builds every platform's crawler
    weibo, tieba = (ScrapySettings(crawler_settings(shared, key)).copy() for key in ("weibo", "tieba"))
    assert weibo["WEISU_SETTINGS"] is tieba["WEISU_SETTINGS"] is shared  # Scrapy's deep copy passes it
    assert shared.platforms is settings.platforms and shared.author_hash_key == settings.author_hash_key
    extensions = weibo.getwithbase("EXTENSIONS")
    assert "scrapy.extensions.remote_control.RemoteControl" not in extensions
    assert not weibo.getbool("TELNETCONSOLE_ENABLED") and not weibo.getbool("REMOTE_CONTROL_ENABLED")
    assert weibo.getwithbase("SPIDER_MIDDLEWARES")["crawlers.middlewares.evidence.EvidenceMiddleware"] == 950


def test_components_left_out_of_the_base_lists_are_ones_the_crawler_settings_switch_off() -> None:
    from scrapy import Spider
    from scrapy.exceptions import NotConfigured
    from scrapy.utils.misc import build_from_crawler, load_object
    from scrapy.utils.test import get_crawler

    from crawlers.config import SWITCHED_OFF, SharedSettings, crawler_settings

    values = crawler_settings(SharedSettings.of(load_settings(env={})), "weibo")
    crawler = get_crawler(Spider, values)
    for path in SWITCHED_OFF:
        with pytest.raises(NotConfigured):
            build_from_crawler(load_object(path), crawler)
    in_use = set(crawler.settings.getwithbase("EXTENSIONS")) | set(
        crawler.settings.getwithbase("DOWNLOADER_MIDDLEWARES")
    )
    assert not in_use & SWITCHED_OFF
    assert "scrapy.downloadermiddlewares.retry.RetryMiddleware" in in_use


def test_the_offsite_middleware_left_out_would_let_every_platforms_requests_through() -> None:
    # Left out of the base list (crawlers.config.DOES_NOTHING_HERE) because it allows everything:
    # no platform spider names allowed_domains. Built here as Scrapy would, it filters nothing.
    from scrapy.downloadermiddlewares.offsite import OffsiteMiddleware
    from scrapy.http import Request
    from scrapy.utils.test import get_crawler

    from crawlers.config import DOES_NOTHING_HERE, SharedSettings, crawler_settings
    from crawlers.spiders import SPIDERS

    settings = SharedSettings.of(load_settings(env={}))
    assert "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware" in DOES_NOTHING_HERE
    for key, platform in settings.platforms.items():
        crawler = get_crawler(SPIDERS[platform.kind], crawler_settings(settings, key))
        spider = crawler._create_spider(platform_id=key)
        crawler.spider = spider
        assert getattr(spider, "allowed_domains", None) is None
        assert "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware" not in crawler.settings.getwithbase(
            "DOWNLOADER_MIDDLEWARES"
        )
        offsite = OffsiteMiddleware.from_crawler(crawler)
        offsite.spider_opened(spider)
        for url in (platform.base_url + "/x", "https://elsewhere.example/y", "http://127.0.0.1:8000/z"):
            offsite.process_request(Request(url))  # raises IgnoreRequest for a request it filters


def test_a_crawlers_stats_are_kept_as_scrapys_memory_collector_keeps_them() -> None:
    from scrapy import Spider
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.test import get_crawler

    from crawlers.config import SharedSettings, crawler_settings

    values = crawler_settings(SharedSettings.of(load_settings(env={})), "weibo")
    crawler = get_crawler(Spider, values)
    reference = MemoryStatsCollector(crawler)
    for stats in (crawler.stats, reference):
        assert stats is not None
        stats.inc_value("weisu/posts_stored", 3)
        stats.inc_value("weisu/posts_stored")
        stats.inc_value("weisu/started", start=10)
        stats.set_value("weisu/high_water_mark", "2026-11-28 1")
        stats.max_value("weisu/max", 4)
        stats.max_value("weisu/max", 2)
        stats.min_value("weisu/min", 4)
        stats.min_value("weisu/min", 2)
    assert crawler.stats is not None and crawler.stats is not reference
    assert (
        crawler.stats.get_stats()
        == reference.get_stats()
        == {
            "weisu/posts_stored": 4,
            "weisu/started": 11,
            "weisu/high_water_mark": "2026-11-28 1",
            "weisu/max": 4,
            "weisu/min": 2,
        }
    )
    assert crawler.stats.get_value("weisu/missing", 0) == 0
