"""Normalising, masking, pseudonymising and time parsing give exact, stable outputs."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from crawlers.fields import fill_template, is_xpath, json_path, parse_time, to_int
from crawlers.text import normalise_text
from storage.personal_data import author_key, content_hash, mask_personal_data

WEIBO_HTML = (
    '<a  href="https://m.weibo.cn/search?containerid=231522" data-hide="">'
    '<span class="surl-text">#深圳#</span></a> 南山区停水三天了！！&amp;没人管 '
    "<a href='/n/深圳发布'>@深圳发布</a> "
    '<span class="url-icon"><img alt=[怒] src="https://h5.sinaimg.cn/d_nu.png" style="width:1em;" /></span>'
)


def test_weibo_html_becomes_plain_text_keeping_hashtags_mentions_and_emoticon_names() -> None:
    assert normalise_text(WEIBO_HTML) == "#深圳# 南山区停水三天了!!&没人管 @深圳发布 [怒]"


def test_normalise_applies_nfkc_collapses_whitespace_keeps_line_breaks_and_bounds_size() -> None:
    assert normalise_text("ＡＢＣ１２３　\t 井盖<br/>  <br>丢了") == "ABC123 井盖\n丢了"
    assert normalise_text("<script>x()</script>停电") == "停电"
    assert normalise_text("长" * 30_000) == "长" * 20_000
    assert normalise_text(None) == ""


@pytest.mark.parametrize(
    ("raw", "masked"),
    [
        ("联系电话13812345678，谢谢", "联系电话[手机号]，谢谢"),
        ("手机 138 1234 5678 或 +86 139-1234-5678", "手机 [手机号] 或 [手机号]"),
        ("邮箱szuser1234@163.com。", "邮箱[邮箱]。"),
        ("物业座机0755-83456789一直没人接", "物业座机[电话]一直没人接"),
        ("身份证号44030119900307123X已登记", "身份证号[身份证号]已登记"),
        ("占道车辆车牌粤B12345，粤B·D1234F也在", "占道车辆车牌[车牌]，[车牌]也在"),
        ("拨打12345热线，工单20190301123456", "拨打12345热线，工单20190301123456"),
        ("座机075512345678和02188886666都打不通", "座机[电话]和[电话]都打不通"),
        ("电话0755 83456789或(0755)83456789", "电话[电话]或[电话]"),
        ("身份证440301 19900101 123X", "身份证[身份证号]"),
        ("身份证4403 0119 9001 0112 3X", "身份证[身份证号]"),
        ("老身份证440301900101123还能用", "老身份证[身份证号]还能用"),
        ("退款到6222 0212 3456 7890 123", "退款到[银行卡号]"),
        ("卡号：6222-0212-3456-7890", "卡号：[银行卡号]"),
        ("银行卡6222021234567890120没收到", "银行卡[银行卡号]没收到"),
        ("信用卡4111111111111111被扣款", "信用卡[银行卡号]被扣款"),
        ("Visa卡号：4111111111111111", "Visa卡号：[银行卡号]"),
        ("转账到6222021234567890128", "转账到[银行卡号]"),
        ("QQ：12345678", "QQ：[QQ号]"),
        ("加qq 87654321 或扣扣号123456", "加qq [QQ号] 或扣扣号[QQ号]"),
        ("QQ号码1234567890", "QQ号码[QQ号]"),
        ("微信号：abc_123456", "微信号：[微信号]"),
        ("加VX：zhang-san88，V信 wang12345，wx: li_si2024", "加VX：[微信号]，V信 [微信号]，wx: [微信号]"),
        ("加微信13812345678", "加微信[手机号]"),
        ("教练车粤B1234学天天占道，挂车粤B1234挂", "教练车[车牌]天天占道，挂车[车牌]"),
    ],
)
def test_personal_data_is_masked_exactly(raw: str, masked: str) -> None:
    assert mask_personal_data(raw)[0] == masked


@pytest.mark.parametrize(
    "kept",
    [
        "2024年12月1日 2024-12-01 13:45 第12345号 ¥12999 1299.00元 每月300元",
        "订单号1234567890123456789，物流单号SF1234567890123",
        "微博 mid 4980123456789012，时间戳1795209120000，12345热线，95598",
        "微博 mid 4843945532697397，头条 4817273020095978178，腾讯新闻 2640437277133186575",
        "拨打12345后电话13812345678 12345热线",
        '<div class="wxshare12" id="qq_login"><a href="https://mp.weixin.qq.com/s/AbCdEf123">',
        "微信群里说的，QQ音乐，微信支付",
        "京ICP备12345678号 粤ICP备2020123456号",
    ],
)
def test_dates_prices_order_numbers_ids_and_markup_are_not_masked(kept: str) -> None:
    expected = kept.replace("13812345678", "[手机号]")
    assert mask_personal_data(kept)[0] == expected


def test_new_kinds_are_counted_by_name() -> None:
    text = "QQ 12345678 微信 abc123456 6222 0212 3456 7890 123 02188886666 粤B1234学"
    assert mask_personal_data(text) == (
        "QQ [QQ号] 微信 [微信号] [银行卡号] [电话] [车牌]",
        {"bank_card": 1, "landline": 1, "qq": 1, "wechat": 1, "plate": 1},
    )


def test_mask_reports_what_it_replaced() -> None:
    text, counts = mask_personal_data("13812345678 13912345678 a@b.cn 粤B12345")
    assert text == "[手机号] [手机号] [邮箱] [车牌]"
    assert counts == {"email": 1, "mobile": 2, "plate": 1}


def test_author_key_is_a_keyed_hash_scoped_to_the_platform() -> None:
    key = author_key("secret", "weibo", "用户1986399651")
    assert key == author_key("secret", "weibo", "用户1986399651")
    assert len(key) == 64 and "1986399651" not in key
    assert key != author_key("secret", "tieba", "用户1986399651")
    assert key != author_key("other-secret", "weibo", "用户1986399651")


def test_content_hash_is_sha256_of_the_text() -> None:
    assert content_hash("停水") == hashlib.sha256("停水".encode()).hexdigest()


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        (
            "Sat Nov 28 10:12:00 +0800 2026",
            "%a %b %d %H:%M:%S %z %Y",
            datetime(2026, 11, 28, 2, 12, tzinfo=UTC),
        ),
        ("1795209120", None, datetime(2026, 11, 20, 21, 12, tzinfo=UTC)),
        (1795209120000, None, datetime(2026, 11, 20, 21, 12, tzinfo=UTC)),
        ("2026-11-24 00:44", "%Y-%m-%d %H:%M", datetime(2026, 11, 23, 16, 44, tzinfo=UTC)),
        ("Sat, 21 Nov 2026 02:41:00 +0800", None, datetime(2026, 11, 20, 18, 41, tzinfo=UTC)),
        ("2026-11-28T10:00:00+08:00", None, datetime(2026, 11, 28, 2, 0, tzinfo=UTC)),
        ("昨天", None, None),
    ],
)
def test_times_become_timezone_aware_utc(value: object, fmt: str | None, expected: datetime | None) -> None:
    parsed = parse_time(value, fmt)
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is UTC


def test_json_path_fans_out_and_skips_cards_without_the_key() -> None:
    data = {"data": {"cards": [{"card_type": 11}, {"mblog": {"id": "1"}}, {"mblog": {"id": "2"}}]}}
    assert json_path(data, "data.cards[].mblog") == [{"id": "1"}, {"id": "2"}]
    assert json_path(data, "data.cards[2].mblog.id") == ["2"]
    assert json_path(data, "data.missing[].x") == []


def test_counts_accept_numbers_strings_and_wan() -> None:
    assert [to_int(v) for v in (12, "34", "1.2万", None, "n/a", True)] == [12, 34, 12000, 0, 0, 0]


def test_url_templates_fill_nested_json_paths() -> None:
    record = {"id": "7", "question": {"id": "42"}}
    assert fill_template("https://www.zhihu.com/question/{question.id}/answer/{id}", record, "") == (
        "https://www.zhihu.com/question/42/answer/7"
    )
    assert fill_template("{base_url}/detail/{mid}", {}, "https://m.weibo.cn") == "https://m.weibo.cn/detail/"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("substring-before(substring-after(td/a/@href, '/topic/'), '/')", True),
        ("(//div)[1]//a/text()", True),
        ("./guid/text()", True),
        ("td.title a::attr(href)", False),
        ("table.olt tr:not(.th)", False),
    ],
)
def test_xpath_is_told_from_css_including_xpath_function_calls(expression: str, expected: bool) -> None:
    assert is_xpath(expression) is expected
