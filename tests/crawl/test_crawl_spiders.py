"""Spiders decode GBK/GB18030 and UTF-8 correctly and skip malformed or lost pages without stopping."""

from __future__ import annotations

import json
import logging

import pytest
import scrapy
from scrapy.exceptions import IgnoreRequest
from scrapy.http import HtmlResponse, Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from crawlers.items import PostItem
from crawlers.spiders import HtmlBoardSpider
from fixtures.samples.replay import first_request, make_spider
from settings import Settings, load_settings

THREAD = (
    '<html><head>{meta}</head><body><h3 class="core_title_txt" title="南山区停电">南山区停电</h3>'
    '<div class="l_post"><a class="p_author_name">深圳网友</a>'
    '<div class="d_post_content">小区停电两天了😡，电梯困人</div>'
    '<span class="tail-info">1楼</span><span class="tail-info">2026-11-28 10:12</span></div></body></html>'
)


@pytest.fixture
def settings() -> Settings:
    return load_settings(env={})


def _detail(settings: Settings, body: bytes, content_type: str) -> list[PostItem]:
    spider = make_spider(settings, "tieba")
    assert isinstance(spider, HtmlBoardSpider)
    url = "https://tieba.baidu.com/p/123"
    request = scrapy.Request(url, meta={"external_id": "123", "label": "tieba-shenzhen"})
    response = HtmlResponse(url=url, body=body, headers={"Content-Type": content_type}, request=request)
    return [item for item in spider.parse_detail(response) if isinstance(item, PostItem)]


@pytest.mark.parametrize("declared", ["GBK", "gb2312", "GB18030"])
def test_board_page_declared_gbk_decodes_including_characters_outside_gbk(
    settings: Settings, declared: str
) -> None:
    settings = settings.changed(
        platforms={**settings.platforms, "tieba": settings.platforms["tieba"].changed(encoding=None)}
    )
    body = THREAD.format(meta="").encode("gb18030")
    [item] = _detail(settings, body, f"text/html; charset={declared}")
    assert item.title == "南山区停电"
    assert "小区停电两天了😡，电梯困人" in item.text


def test_board_page_without_charset_uses_the_meta_tag(settings: Settings) -> None:
    settings = settings.changed(
        platforms={**settings.platforms, "tieba": settings.platforms["tieba"].changed(encoding=None)}
    )
    body = THREAD.format(meta='<meta http-equiv="Content-Type" content="text/html; charset=gbk">').encode(
        "gbk", "ignore"
    )
    [item] = _detail(settings, body, "text/html")
    assert "小区停电两天了，电梯困人" in item.text


def test_configured_encoding_overrides_a_wrong_label(settings: Settings) -> None:
    settings = settings.changed(
        platforms={**settings.platforms, "tieba": settings.platforms["tieba"].changed(encoding="gb18030")}
    )
    body = THREAD.format(meta="").encode("gb18030")
    [item] = _detail(settings, body, "text/html; charset=utf-8")
    assert item.author == "深圳网友"
    assert "电梯困人" in item.text


def test_utf8_feed_decodes(settings: Settings) -> None:
    spider = make_spider(settings, "heimao")
    request = first_request(spider)
    body = (
        '{"result":{"data":{"lists":[{"main":{"sn":"9","title":"退款难","summary":"商家拒绝退款",'
        '"timestamp":"1795209120"},"author":{"wbuid":"7"}}]}}}'
    )
    response = TextResponse(
        request.url, body=body.encode("utf-8"), headers={"Content-Type": "application/json"}, request=request
    )
    [item, follow] = spider.parse_page(response)
    assert isinstance(item, PostItem) and isinstance(follow, scrapy.Request)
    assert (item.external_id, item.title, item.text, item.author) == ("9", "退款难", "商家拒绝退款", "7")
    assert follow.url.endswith("page=2")


def test_malformed_json_page_is_fetched_once_more_then_kept_for_a_second_chance_and_skipped_past(
    settings: Settings,
) -> None:
    spider = make_spider(settings, "weibo")
    request = first_request(spider)
    body = b'{"ok":1,"data":{"cards":['
    [again] = spider.parse_page(TextResponse(request.url, body=body, request=request))
    assert isinstance(again, scrapy.Request)
    assert (again.url, again.dont_filter, again.meta["malformed_tries"]) == (request.url, True, 1)
    [onwards] = spider.parse_page(TextResponse(again.url, body=body, request=again))
    assert isinstance(onwards, scrapy.Request) and onwards.url.endswith("&page=2")  # the feed goes on
    [kept] = spider.second_chances.due()
    assert (kept.url, kept.dont_filter, kept.meta["second_chance"], "malformed_tries" in kept.meta) == (
        request.url,
        True,
        True,
        False,
    )
    stats = spider.crawler.stats
    assert (stats.get_value("weisu/malformed_retried"), stats.get_value("weisu/second_chances")) == (1, 1)
    assert stats.get_value("weisu/malformed_pages") is None  # not lost yet


def test_a_malformed_page_on_its_second_chance_is_logged_counted_and_skipped_past(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    spider = make_spider(settings, "weibo")
    request = first_request(spider)
    request = request.replace(meta=request.meta | {"second_chance": True})
    body = b'{"ok":1,"data":{"cards":['
    [again] = spider.parse_page(TextResponse(request.url, body=body, request=request))
    with caplog.at_level(logging.WARNING):
        [onwards] = spider.parse_page(TextResponse(again.url, body=body, request=again))
    assert isinstance(onwards, scrapy.Request) and onwards.url.endswith("&page=2")
    assert spider.second_chances.due() == []
    assert spider.crawler.stats.get_value("weisu/malformed_pages") == 1
    assert f"platform=weibo url={request.url}" in caplog.text


def test_post_without_text_is_counted_and_dropped(settings: Settings) -> None:
    spider = make_spider(settings, "weibo")
    request = first_request(spider)
    body = '{"ok":1,"data":{"cards":[{"card_type":9,"mblog":{"id":"1","created_at":"x"}}]}}'
    response = TextResponse(request.url, body=body.encode(), request=request)
    assert [r for r in spider.parse_page(response) if not isinstance(r, scrapy.Request)] == []
    assert spider.crawler.stats.get_value("weisu/missing_field/text") == 1


def test_weibo_stops_paging_when_has_more_is_null(settings: Settings) -> None:
    spider = make_spider(settings, "weibo")
    request = first_request(spider)
    body = (
        '{"ok":1,"data":{"cardlistInfo":{"page":null},"cards":[{"card_type":9,"mblog":{"id":"1","mid":"1",'
        '"text":"停水","created_at":"Sat Nov 28 10:12:00 +0800 2026","user":{"id":5}}}]}}'
    )
    response = TextResponse(request.url, body=body.encode(), request=request)
    outputs = spider.parse_page(response)
    assert [type(o).__name__ for o in outputs] == ["PostItem"]


def test_nested_comments_become_posts_with_the_comment_they_answer(settings: Settings) -> None:
    spider = make_spider(settings, "bilibili")
    request = first_request(spider)
    reply = {"rpid_str": "2", "parent_str": "1", "content": {"message": "同感"}, "ctime": 1795209120}
    reply_to_reply = {"rpid_str": "3", "parent_str": "2", "content": {"message": "回复 @a :对"}}
    root = {
        "rpid_str": "1",
        "parent_str": "0",
        "content": {"message": "台阶断了"},
        "replies": [reply, reply_to_reply, {"rpid_str": "4", "content": {"message": "无父字段"}}],
    }
    body = json.dumps({"code": 0, "data": {"page": {"count": 1}, "replies": [root]}}).encode()
    outputs = spider.parse_page(TextResponse(request.url, body=body, request=request))
    assert [(o.external_id, o.parent_external_id, o.text) for o in outputs if isinstance(o, PostItem)] == [
        ("1", None, "台阶断了"),
        ("2", "1", "同感"),
        ("3", "2", "回复 @a :对"),
        ("4", "1", "无父字段"),
    ]
    assert not any(isinstance(o, scrapy.Request) for o in outputs)  # 1 comment counted: no page 2


def test_comment_paging_stops_when_pages_cover_the_total_count(settings: Settings) -> None:
    spider = make_spider(settings, "bilibili")
    request = first_request(spider)
    roots = [{"rpid_str": str(n), "content": {"message": "x"}} for n in range(1, 21)]
    body = json.dumps({"code": 0, "data": {"page": {"count": 21}, "replies": roots}}).encode()
    [follow] = [
        o
        for o in spider.parse_page(TextResponse(request.url, body=body, request=request))
        if isinstance(o, scrapy.Request)
    ]
    assert follow.url.endswith("&pn=2")
    second = TextResponse(follow.url, body=body.replace(b'"count": 21', b'"count": 40'), request=follow)
    assert [o for o in spider.parse_page(second) if isinstance(o, scrapy.Request)] == []


def _failure(error: Exception, request: scrapy.Request) -> Failure:
    failure = Failure(error)
    failure.request = request  # type: ignore[attr-defined]  # as Scrapy hands it to an errback
    return failure


def test_page_lost_after_its_retries_is_logged_with_platform_url_and_reason_and_skipped_past(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    spider = make_spider(settings, "heimao")
    request = first_request(spider)
    assert request.errback == spider.failed
    gave_up = Response(request.url, status=503, request=request)
    with caplog.at_level(logging.WARNING):
        [onwards] = spider.failed(_failure(HttpError(gave_up, "Ignoring non-200 response"), request))
    assert isinstance(onwards, scrapy.Request) and onwards.url.endswith("page=2")  # the feed goes on
    assert f"request failed: platform=heimao url={request.url} reason=HTTP 503" in caplog.text
    assert spider.crawler.stats.get_value("weisu/failed_requests") == 1


def test_a_thread_that_timed_out_is_logged_and_nothing_follows(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    spider = make_spider(settings, "tieba")
    detail = scrapy.Request("https://tieba.baidu.com/p/123", meta={"external_id": "123"})
    with caplog.at_level(logging.WARNING):
        assert spider.failed(_failure(TimeoutError("took longer than 30.0 seconds"), detail)) == []
    assert (
        "request failed: platform=tieba url=https://tieba.baidu.com/p/123 reason=TimeoutError" in caplog.text
    )


def test_a_request_robots_txt_forbids_is_counted_not_logged_as_a_failure(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    spider = make_spider(settings, "tieba")
    trapped = scrapy.Request("https://tieba.baidu.com/share/p/123", meta={"external_id": "123"})
    with caplog.at_level(logging.WARNING):
        assert spider.failed(_failure(IgnoreRequest("Forbidden by robots.txt"), trapped)) == []
    assert "request failed" not in caplog.text
    assert spider.crawler.stats.get_value("weisu/ignored_requests") == 1
