"""What a sweep does once for all platforms before its crawlers start, and what its crawlers share."""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import Any

from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from crawlers.config import OwnedSettings, SharedSettings, crawler_settings
from crawlers.extensions.crawl_runs import OPENED_RUN_SETTING, CrawlRunRecorder, OpenedRun, open_runs
from crawlers.fields import json_path
from crawlers.incremental import seen_content
from crawlers.robots import SharedProtegoRobotParser
from crawlers.spiders import HtmlBoardSpider, JsonFeedSpider
from settings import PROJECT_ROOT, load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import CrawlRun, Platform
from storage.personal_data import content_hash
from storage.queries import insert_posts, sync_platforms

ROBOTS = b"User-agent: *\nDisallow: /p/tieba/share/\nAllow: /\n"


def _post(platform_id: str, external_id: str) -> dict[str, Any]:
    text = "停水"
    return {"platform_id": platform_id, "external_id": external_id, "url": "u", "text": text,
            "content_hash": content_hash(text)}  # fmt: skip


def test_a_crawler_takes_its_owned_settings_without_copying_them() -> None:
    settings = SharedSettings.of(load_settings(env={}))
    owned = OwnedSettings(crawler_settings(settings, "weibo"))
    crawler = Crawler(JsonFeedSpider, owned)
    assert crawler.settings is owned
    assert crawler.settings["WEISU_PLATFORM"] == "weibo"


def test_owned_settings_are_copied_as_usual_after_the_crawler_took_them() -> None:
    owned = OwnedSettings({"WEISU_PLATFORM": "weibo"})
    assert owned.copy() is owned
    copy = owned.copy()
    copy.set("WEISU_PLATFORM", "tieba")
    assert (copy is not owned, owned["WEISU_PLATFORM"]) == (True, "weibo")


def test_open_runs_opens_one_running_run_per_platform_in_one_go(database_url: str) -> None:
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    factory = make_session_factory(make_engine(database_url))
    with session_scope(factory) as session:
        sync_platforms(session, {"weibo": ("微博", "json_feed", True)})
        session.get(Platform, "weibo").high_water_mark = "2026-11-28T02:09:00+00:00 2"  # type: ignore[union-attr]
        insert_posts(session, [_post("weibo", "2")])

    opened = open_runs(settings, ["weibo", "tieba"])

    with session_scope(factory) as session:
        runs = {run.platform_id: run for run in session.scalars(select(CrawlRun))}
        assert {key: run.status for key, run in runs.items()} == {"weibo": "running", "tieba": "running"}
        assert session.scalars(select(Platform.id).order_by(Platform.id)).all() == ["tieba", "weibo"]
    assert opened == {
        "weibo": OpenedRun(runs["weibo"].id, "2026-11-28T02:09:00+00:00 2", has_posts=True),
        "tieba": OpenedRun(runs["tieba"].id, None, has_posts=False),
    }


def test_the_recorder_uses_the_run_the_sweep_opened(database_url: str) -> None:
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    opened = open_runs(settings, ["tieba"])["tieba"]
    crawler = get_crawler(
        HtmlBoardSpider,
        {"WEISU_SETTINGS": settings, "WEISU_PLATFORM": "tieba", OPENED_RUN_SETTING: opened},
    )
    spider = HtmlBoardSpider.from_crawler(crawler, platform_id="tieba")
    recorder = CrawlRunRecorder.from_crawler(crawler)

    recorder.spider_opened(spider)
    recorder.spider_closed(spider, "finished")

    with session_scope(make_session_factory(make_engine(database_url))) as session:
        run = session.scalars(select(CrawlRun)).one()
        assert (run.id, run.status, run.finished_at is not None) == (opened.run_id, "ok", True)


def test_a_platform_without_stored_posts_knows_no_thread_without_asking() -> None:
    unbound = sessionmaker()  # any lookup through it raises: the first crawl must not make one
    assert seen_content(unbound, "tieba", None, stored_before=False).threads(["7", "8"]) == (set(), set())


def test_a_platform_with_stored_posts_asks_which_threads_are_known(database_url: str) -> None:
    factory = make_session_factory(make_engine(database_url))
    with session_scope(factory) as session:
        sync_platforms(session, {"tieba": ("贴吧", "html_board", True)})
        insert_posts(session, [_post("tieba", "7")])
    assert seen_content(factory, "tieba", None, stored_before=True).threads(["7", "8"]) == ({"7"}, {"7"})


def test_a_settled_thread_listing_more_replies_than_stored_is_not_settled(database_url: str) -> None:
    factory = make_session_factory(make_engine(database_url))
    with session_scope(factory) as session:
        sync_platforms(session, {"tieba": ("贴吧", "html_board", True)})
        insert_posts(session, [_post("tieba", "7") | {"replies": 3}, _post("tieba", "8") | {"replies": 3}])
    seen = seen_content(factory, "tieba", None, stored_before=True)
    assert seen.threads(["7", "8"], {"7": 3, "8": 4}) == ({"7", "8"}, {"7"})


def test_crawlers_that_fetched_the_same_robots_txt_share_one_parse() -> None:
    first = SharedProtegoRobotParser(ROBOTS, None)
    second = SharedProtegoRobotParser(ROBOTS, None)
    other = SharedProtegoRobotParser(b"User-agent: *\nDisallow: /\n", None)
    assert first.rp is second.rp and other.rp is not first.rp
    agent = "weisu-bot"
    assert first.allowed("http://127.0.0.1/p/tieba/share/1", agent) is False
    assert second.allowed("http://127.0.0.1/p/tieba/p/1", agent) is True
    assert other.allowed("http://127.0.0.1/p/tieba/p/1", agent) is False


def test_a_json_path_reads_the_same_on_every_lookup() -> None:
    data = {"data": {"cards": [{"mblog": {"id": 1}}, {"mblog": {"id": 2}}]}}
    assert json_path(data, "data.cards[].mblog.id") == [1, 2]
    assert json_path(data, "data.cards[].mblog.id") == [1, 2]
    assert json_path(data, "data.cards[1].mblog.id") == [2]


def test_frames_without_source_are_the_frames_inspect_stack_lists() -> None:
    from crawlers.scrapy_imports import frames_without_source

    listed, expected = frames_without_source(), inspect.stack(0)
    assert [(f.frame, f.function, f.lineno) for f in listed][1:] == [
        (f.frame, f.function, f.lineno) for f in expected
    ][1:]
    assert (
        listed[0].function
        == expected[0].function
        == "test_frames_without_source_are_the_frames_inspect_stack_lists"
    )
    assert listed[0].code_context is None


def test_inspect_stack_is_itself_again_after_the_block() -> None:
    from crawlers.scrapy_imports import frames_without_source, stack_without_source

    real = inspect.stack
    with stack_without_source():
        assert inspect.stack is frames_without_source
    assert inspect.stack is real


def test_the_http_handler_imported_without_source_lines_keeps_its_deprecated_classes_modules() -> None:
    code = (
        "import inspect; real = inspect.stack\n"
        "from crawlers.scrapy_imports import import_http_handler; import_http_handler()\n"
        "from scrapy.core.downloader import contextfactory, tls\n"
        "print(contextfactory.ScrapyClientContextFactory.__module__, tls.ScrapyClientTLSOptions.__module__,"
        " inspect.stack is real)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == [
        "scrapy.core.downloader.contextfactory",
        "scrapy.core.downloader.tls",
        "True",
    ]


class _RobotsHost:
    """A crawler's engine that answers robots.txt with ``status`` and counts what it was asked."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.asked: list[str] = []

    async def download_async(self, request: Any) -> Any:
        from scrapy.http import TextResponse

        self.asked.append(request.url)
        return TextResponse(request.url, status=self.status, body=ROBOTS, request=request)


def _robots_middleware(platform_id: str, host: _RobotsHost) -> Any:
    from scrapy import Spider

    from crawlers.robots import SharedRobotsTxtMiddleware

    values = crawler_settings(SharedSettings.of(load_settings(env={})), platform_id)
    crawler = get_crawler(Spider, values)
    crawler.engine = host  # type: ignore[assignment]
    return SharedRobotsTxtMiddleware(crawler)


def _allowed(middleware: Any, url: str) -> bool:
    import asyncio

    from scrapy import Request

    parser = asyncio.run(middleware.robot_parser(Request(url)))
    return bool(parser.allowed(url, "weisu"))


def test_a_robots_txt_answered_200_is_fetched_once_for_every_crawler_of_the_process() -> None:
    first, second = _RobotsHost(200), _RobotsHost(200)
    host = "http://robots-shared.test"
    assert _allowed(_robots_middleware("tieba", first), f"{host}/p/tieba/share/1") is False
    assert _allowed(_robots_middleware("weibo", second), f"{host}/p/weibo/1") is True
    assert (first.asked, second.asked) == ([f"{host}/robots.txt"], [])


def test_a_robots_txt_not_answered_200_is_fetched_again_by_the_next_crawler() -> None:
    first, second = _RobotsHost(503), _RobotsHost(200)
    host = "http://robots-failed.test"
    _allowed(_robots_middleware("tieba", first), f"{host}/p/tieba/1")
    assert _allowed(_robots_middleware("weibo", second), f"{host}/p/tieba/share/1") is False
    assert (first.asked, second.asked) == ([f"{host}/robots.txt"], [f"{host}/robots.txt"])
