"""Raw bodies are kept masked like posts: personal data out, author handles replaced by their key."""

from __future__ import annotations

import hashlib
import json
import random
import re
from datetime import UTC, datetime

from scrapy.http import HtmlResponse, TextResponse

from crawlers.items import PostItem
from crawlers.middlewares.evidence import EvidenceMiddleware
from storage.body_masking import (
    _replace_handles,
    body_encoding,
    handle_replacements,
    handles_behind,
    mask_body,
)
from storage.personal_data import author_key

SECRET = "test-author-hash-key-of-32-bytes!"
JSON_TYPE = "application/json; charset=utf-8"
KEY = author_key(SECRET, "weibo", "1986399651")


def _masked(body: bytes, content_type: str | None, platform: str, *handles: str) -> bytes:
    return mask_body(body, content_type, handle_replacements(SECRET, platform, handles))


def test_a_json_body_loses_personal_data_and_its_author_handle_in_every_place_it_appears() -> None:
    body = json.dumps(
        {
            "user": {"id": 1986399651, "screen_name": "用户1986399651", "profile_url": "/u/1986399651"},
            "text": "物业座机075512345678没人接，QQ：12345678",
            "mid": "4980123456789012",
        },
        ensure_ascii=False,
    ).encode()
    expected = json.dumps(
        {
            "user": {"id": 0, "screen_name": f"用户{KEY}", "profile_url": f"/u/{KEY}"},
            "text": "物业座机[电话]没人接，QQ：[QQ号]",
            "mid": "4980123456789012",
        },
        ensure_ascii=False,
    ).replace('"id": 0', f'"id": {KEY}')
    assert _masked(body, JSON_TYPE, "weibo", "1986399651").decode() == expected


def test_a_handle_inside_a_longer_number_or_word_is_left_alone() -> None:
    body = b'{"uid":"29863996512","name":"x1986399651","author":"1986399651"}'
    assert _masked(body, JSON_TYPE, "weibo", "1986399651") == (
        f'{{"uid":"29863996512","name":"x1986399651","author":"{KEY}"}}'.encode()
    )


def test_a_gbk_page_is_masked_in_its_own_charset_and_bytes_that_do_not_decode_pass_unchanged() -> None:
    link = '<html><meta charset="gbk"><a href="/home/main?un=%E5%BC%A0">'
    page = f"{link}深圳网友&amp;张</a>电话02188886666</html>"
    # Cut at the size limit in the middle of a two-byte character: the stray lead byte stays.
    stray = "停".encode("gbk")[:1]
    key = author_key(SECRET, "tieba", "深圳网友&张")
    masked = _masked(page.encode("gbk") + stray, "text/html; charset=GBK", "tieba", "深圳网友&张")
    assert masked == f"{link}{key}</a>电话[电话]</html>".encode("gbk") + stray
    assert body_encoding("text/html; charset=GBK", page.encode("gbk")) == "gb18030"


def test_url_quoted_and_json_escaped_forms_of_a_handle_are_replaced_too() -> None:
    handle = "网友小张"
    key = author_key(SECRET, "tieba", handle)
    replacements = handle_replacements(SECRET, "tieba", [handle])
    assert set(replacements.values()) == {key}
    quoted, escaped = "%E7%BD%91%E5%8F%8B%E5%B0%8F%E5%BC%A0", "\\u7f51\\u53cb\\u5c0f\\u5f20"
    assert {handle, quoted, escaped} <= set(replacements)


def test_json_escapes_of_chinese_are_read_so_plates_and_wechat_ids_behind_them_are_masked() -> None:
    body = b'{"text":"\\u7ca4B12345\\u5360\\u9053\\uff0c\\u5fae\\u4fe1abc123456","q":"\\u0022"}'
    assert _masked(body, JSON_TYPE, "weibo").decode() == '{"text":"[车牌]占道，微信[微信号]","q":"\\u0022"}'


def test_handles_too_short_to_be_told_from_markup_are_not_replaced() -> None:
    assert handle_replacements(SECRET, "weibo", ["a", "123", "张"]) == {}
    forms = set(handle_replacements(SECRET, "weibo", ["张三"]))
    assert forms == {"张三", "%E5%BC%A0%E4%B8%89", "\\u5f20\\u4e09"}


def test_a_body_without_personal_data_or_handles_is_kept_byte_for_byte() -> None:
    body = '{"cards":[{"id":"1","text":"南山区停水三天了，2024年12月1日起"}]}'.encode()
    assert _masked(body, JSON_TYPE, "weibo") == body


def test_the_handles_behind_known_author_keys_are_found_again_in_an_old_body() -> None:
    body = (
        '<div class="from"><a href="https://www.douban.com/people/12345/">豆友&amp;12345</a></div>'.encode()
    )
    keys = {author_key(SECRET, "douban", "https://www.douban.com/people/12345/"), "f" * 64}
    found = handles_behind(body, "text/html; charset=utf-8", SECRET, "douban", keys)
    assert found == {"https://www.douban.com/people/12345/"}


def _item(external_id: str, author: str | None) -> PostItem:
    return PostItem(
        platform_id="weibo",
        external_id=external_id,
        url=f"https://m.weibo.cn/detail/{external_id}",
        text="停水",
        author=author,
        published_at=datetime(2026, 11, 28, 2, 0, tzinfo=UTC),
    )


def test_the_evidence_body_knows_every_author_of_its_response_and_hashes_the_body_as_served() -> None:
    headers = {"Content-Type": JSON_TYPE}
    response = TextResponse("https://m.weibo.cn/api?page=1", body=b'{"a":1}', headers=headers)
    items = list(
        EvidenceMiddleware().process_spider_output(
            response, [_item("1", "1986399651"), _item("2", None), _item("3", "用户2")]
        )
    )
    evidence = items[0].evidence
    assert evidence is not None and all(item.evidence is evidence for item in items)
    assert evidence.handles == frozenset({"1986399651", "用户2"})
    assert evidence.sha256 == hashlib.sha256(b'{"a":1}').hexdigest()


def test_a_page_without_items_gets_no_body_built() -> None:
    response = HtmlResponse("https://tieba.baidu.com/f?kw=1", body=b"<html></html>")
    assert list(EvidenceMiddleware().process_spider_output(response, [])) == []


def _replaced_by_regex(text: str, replacements: dict[str, str]) -> str:
    """The rule as a regex: the forms longest first, never inside a longer word or number."""
    forms = sorted(replacements, key=len, reverse=True)
    pattern = re.compile(r"(?<![0-9A-Za-z_])(?:" + "|".join(map(re.escape, forms)) + r")(?![0-9A-Za-z_])")
    return pattern.sub(lambda match: replacements[match.group()], text)


def test_overlapping_handle_forms_are_replaced_as_the_longest_first_alternation_would() -> None:
    replacements = {"ab": "<1>", "abab": "<2>", "ba": "<3>", "b张": "<4>", "张三": "<5>", "a_": "<6>"}
    text = "ababab abab_ x张三 b张三 ba-ab 张三张三 a_b"
    # "abab" is followed by a word character, "x" and "_" touch their handles: those stay.
    assert _replace_handles(text, replacements) == "ababab abab_ x张三 <4>三 <3>-<1> <5><5> a_b"
    assert _replace_handles(text, replacements) == _replaced_by_regex(text, replacements)


def test_handle_replacement_agrees_with_the_regex_alternation_on_random_texts() -> None:
    rng = random.Random(15)
    alphabet = 'ab1_张三 -"<'
    for _ in range(3000):
        forms = {"".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(rng.randint(1, 5))}
        replacements = {form: f"<{n}>" for n, form in enumerate(sorted(forms))}
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 40)))
        assert _replace_handles(text, replacements) == _replaced_by_regex(text, replacements), (text, forms)
