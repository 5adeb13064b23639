"""Entry points send GET or POST with body and headers; feeds parse JSON, JSONP and JSON embedded in HTML."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest
import scrapy
from pydantic import ValidationError
from scrapy.http import HtmlResponse, TextResponse

from crawlers.items import PostItem
from crawlers.spiders.payload import load_payload, undefined_to_null, unwrap_jsonp
from fixtures.samples.replay import first_request, make_spider
from settings import PLATFORM, ResponseSettings, Settings

FEED_URL = "https://api.example.cn"


def _settings(entry: Mapping[str, object] | None = None, **platform: object) -> Settings:
    """A one-platform config: a JSON search feed keyed "feed", with ``entry`` and ``platform`` overrides."""
    raw: dict[str, object] = {
        "name": "测试平台",
        "kind": "json_feed",
        "base_url": FEED_URL,
        "entry_points": [{"url": "/search?page={page}", "keywords": ["深圳"]} | dict(entry or {})],
        "fields": {"items": "data.items[]", "external_id": "id", "text": "content"},
        "pagination": {"style": "page", "start": 1, "max_pages": 3},
    } | platform
    return Settings(platforms={"feed": PLATFORM.validate_python(raw)})


def _items(
    settings: Settings, body: str, content_type: str, cls: type[TextResponse] = TextResponse
) -> list[scrapy.Request | PostItem]:
    """What the feed spider makes of ``body`` served as the answer to its first request."""
    spider = make_spider(settings, "feed")
    request = first_request(spider)
    response = cls(
        url=request.url, body=body.encode("utf-8"), headers={"Content-Type": content_type}, request=request
    )
    return list(spider.parse_page(response))


# --- requests ----------------------------------------------------------------------------------


def test_entry_point_defaults_to_a_get_without_body() -> None:
    request = first_request(make_spider(_settings(), "feed"))
    assert request.method == "GET"
    assert request.body == b""
    assert request.url == f"{FEED_URL}/search?page=1"


def test_post_entry_point_sends_a_form_body_with_the_keyword_percent_encoded() -> None:
    entry = {"url": "/search", "method": "POST", "body": "kw={keyword}&pn={page}&rn=20"}
    request = first_request(make_spider(_settings(entry=entry), "feed"))
    assert request.method == "POST"
    assert request.url == f"{FEED_URL}/search"
    assert request.body == b"kw=%E6%B7%B1%E5%9C%B3&pn=1&rn=20"
    assert request.headers[b"Content-Type"] == b"application/x-www-form-urlencoded"


def test_post_entry_point_json_body_keeps_literal_braces_and_escapes_the_keyword() -> None:
    entry = {
        "url": "/api/search",
        "method": "POST",
        "body": '{"keyword": "{keyword}", "page": {page}, "filter": {"sort": 1}}',
        "keywords": ['深圳"福田'],
    }
    request = first_request(make_spider(_settings(entry=entry), "feed"))
    assert json.loads(request.body) == {"keyword": '深圳"福田', "page": 1, "filter": {"sort": 1}}
    assert request.headers[b"Content-Type"] == b"application/json"


def test_configured_headers_are_sent_and_a_given_content_type_is_kept() -> None:
    entry = {
        "url": "/search",
        "method": "POST",
        "body": "q={keyword}",
        "headers": {
            "content-type": "application/x-www-form-urlencoded; charset=UTF-8",
            "Referer": "https://x.cn/",
        },
    }
    # One page only: the body has no {page} (a paged style needs one, settings checks it).
    settings = _settings(entry=entry, pagination={"style": "none"})
    request = first_request(make_spider(settings, "feed"))
    assert request.headers[b"Content-Type"] == b"application/x-www-form-urlencoded; charset=UTF-8"
    assert request.headers[b"Referer"] == b"https://x.cn/"


def test_next_page_of_a_post_entry_point_is_a_post_with_the_next_page_in_its_body() -> None:
    entry = {"url": "/search", "method": "POST", "body": "kw={keyword}&pn={page}"}
    settings = _settings(entry=entry)
    out = _items(settings, '{"data": {"items": [{"id": 1, "content": "停水了"}]}}', "application/json")
    [follow] = [o for o in out if isinstance(o, scrapy.Request)]
    assert (follow.method, follow.body) == ("POST", b"kw=%E6%B7%B1%E5%9C%B3&pn=2")
    assert follow.meta["page"] == 2


def test_post_pages_of_one_url_are_not_filtered_as_duplicates() -> None:
    from scrapy.utils.request import RequestFingerprinter

    entry = {"url": "/search", "method": "POST", "body": "pn={page}"}
    spider = make_spider(_settings(entry=entry), "feed")
    first = spider.page_request(0, "深圳", 1, pages_seen=1)
    second = spider.page_request(0, "深圳", 2, pages_seen=2)
    fingerprint = RequestFingerprinter().fingerprint
    assert first.url == second.url
    assert fingerprint(first) != fingerprint(second)


def test_unknown_method_stops_the_config() -> None:
    with pytest.raises(ValidationError, match="method"):
        _settings(entry={"method": "PUT"})


# --- response formats --------------------------------------------------------------------------


def test_jsonp_body_is_unwrapped_with_or_without_trailing_semicolon() -> None:
    settings = _settings(response={"format": "jsonp"})
    for body in (
        'jQuery1124_1({"data": {"items": [{"id": 7, "content": "井盖缺失"}]}});',
        '/**/ cb({"data": {"items": [{"id": 7, "content": "井盖缺失"}]}})',
    ):
        [item] = [o for o in _items(settings, body, "application/javascript") if isinstance(o, PostItem)]
        assert (item.external_id, item.text) == ("7", "井盖缺失")


def test_jsonp_callback_may_contain_parentheses_in_strings() -> None:
    assert unwrap_jsonp('cb({"t": "停水(三天)"});') == '{"t": "停水(三天)"}'


def test_truncated_jsonp_is_a_malformed_page_fetched_again() -> None:
    settings = _settings(response={"format": "jsonp"})
    out = _items(settings, 'cb({"data": {"items": [{"id": 7, "con', "application/javascript")
    [retry] = out
    assert isinstance(retry, scrapy.Request)
    assert retry.meta["malformed_tries"] == 1


def test_embedded_initial_state_is_read_from_the_page_with_undefined_as_null() -> None:
    page = (
        "<html><head><script>var a = 1;</script></head><body><div id=app></div>"
        '<script>window.__INITIAL_STATE__={"data":{"items":[{"id":"n1","content":"电梯困人 undefined 了",'
        '"cover":undefined}]},"user":undefined};</script><script>later()</script></body></html>'
    )
    settings = _settings(response={"format": "embedded_json"})
    [item] = [
        o for o in _items(settings, page, "text/html; charset=utf-8", HtmlResponse) if isinstance(o, PostItem)
    ]
    assert item.external_id == "n1"
    assert item.text == "电梯困人 undefined 了"  # the word inside a string is text, not a value


def test_embedded_json_with_a_configured_pattern() -> None:
    page = (
        '<script id="RENDER_DATA" type="application/json">'
        '{"data": {"items": [{"id": 3, "content": "噪音扰民"}]}}</script>'
    )
    settings = _settings(
        response={"format": "embedded_json", "pattern": r'<script id="RENDER_DATA"[^>]*>(.+?)</script>'}
    )
    [item] = [o for o in _items(settings, page, "text/html", HtmlResponse) if isinstance(o, PostItem)]
    assert item.text == "噪音扰民"


def test_page_without_the_embedded_state_is_malformed() -> None:
    with pytest.raises(ValueError, match="embedded JSON not found"):
        load_payload("<html><body>验证码</body></html>", ResponseSettings(format="embedded_json"))


def test_undefined_inside_strings_and_escaped_quotes_is_kept() -> None:
    script = r'{"a": undefined, "b": "say \"undefined\"", "c": [undefined, 1]}'
    assert json.loads(undefined_to_null(script)) == {"a": None, "b": 'say "undefined"', "c": [None, 1]}


def test_response_format_defaults_to_plain_json() -> None:
    assert load_payload('{"x": 1}', ResponseSettings()) == {"x": 1}
    assert ResponseSettings().format == "json"


@pytest.mark.parametrize("pattern", [r"no group", r"(a)(b)", r"(unclosed"])
def test_embedded_pattern_must_have_exactly_one_group(pattern: str) -> None:
    with pytest.raises(ValidationError, match="pattern"):
        ResponseSettings(format="embedded_json", pattern=pattern)
