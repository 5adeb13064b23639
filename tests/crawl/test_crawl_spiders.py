"""Spiders decode GBK/GB18030 and UTF-8 correctly and skip malformed pages without stopping."""

from __future__ import annotations

import logging

import pytest
import scrapy
from scrapy.http import HtmlResponse, TextResponse

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
    settings.platforms["tieba"].encoding = None
    body = THREAD.format(meta="").encode("gb18030")
    [item] = _detail(settings, body, f"text/html; charset={declared}")
    assert item.title == "南山区停电"
    assert "小区停电两天了😡，电梯困人" in item.text


def test_board_page_without_charset_uses_the_meta_tag(settings: Settings) -> None:
    settings.platforms["tieba"].encoding = None
    body = THREAD.format(meta='<meta http-equiv="Content-Type" content="text/html; charset=gbk">').encode(
        "gbk", "ignore"
    )
    [item] = _detail(settings, body, "text/html")
    assert "小区停电两天了，电梯困人" in item.text


def test_configured_encoding_overrides_a_wrong_label(settings: Settings) -> None:
    settings.platforms["tieba"].encoding = "gb18030"
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


def test_malformed_json_page_is_logged_counted_and_skipped(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    spider = make_spider(settings, "weibo")
    request = first_request(spider)
    response = TextResponse(request.url, body=b'{"ok":1,"data":{"cards":[', request=request)
    with caplog.at_level(logging.WARNING):
        assert spider.parse_page(response) == []
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
