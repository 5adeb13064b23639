"""Jurisdiction: our city, elsewhere or unknown, from place names, the entry point and the IP label."""

from __future__ import annotations

import pytest

from classify.jurisdiction import Jurisdiction, decide, ip_region
from classify.places import extract_place
from settings import load_settings

CITY = load_settings(env={}).city


def judge(text: str, ip: str | None = None, entry: str | None = None) -> tuple[str, str]:
    decision = decide(text, extract_place(text, CITY), CITY, ip_location=ip, local_entry=entry)
    return decision.jurisdiction.value, decision.reason


def test_a_district_in_the_text_makes_the_post_ours_whatever_the_ip() -> None:
    assert judge("南山区科技园路灯坏了一个月", ip="IP属地：北京") == ("ours", "正文提到「南山区」")


def test_the_city_name_alone_makes_the_post_ours() -> None:
    assert judge("深圳的地铁太挤了") == ("ours", "正文提到「深圳」")


def test_another_city_and_nothing_of_ours_is_elsewhere() -> None:
    assert judge("广州天河区小区停水三天了") == ("elsewhere", "正文提到「广州」，未提到本市")


def test_a_local_entry_point_makes_a_placeless_post_ours() -> None:
    assert judge("楼下的路灯又坏了", ip="IP属地：湖南", entry="tieba-shenzhen") == (
        "ours",
        "来自本市入口「tieba-shenzhen」",
    )


def test_another_provinces_ip_with_no_place_is_elsewhere() -> None:
    assert judge("小区停水三天了没人管", ip="发布于 湖南") == (
        "elsewhere",
        "IP属地「湖南」在外省，正文未提到本市",
    )


def test_our_provinces_ip_with_no_place_is_unknown_and_kept() -> None:
    decision = decide(
        "小区停水三天了",
        extract_place("小区停水三天了", CITY),
        CITY,
        ip_location="广东广州",
        local_entry=None,
    )
    assert decision.jurisdiction is Jurisdiction.UNKNOWN
    assert not decision.elsewhere
    assert decision.reason == "IP属地「广东广州」，正文未提到具体地点"


def test_no_place_and_no_ip_is_unknown() -> None:
    assert judge("电梯坏了一周") == ("unknown", "正文未提到地点，无IP属地")


@pytest.mark.parametrize(
    ("label", "region"),
    [
        ("发布于 广东", "广东"),
        ("IP属地：广东", "广东"),
        ("IP属地:湖南", "湖南"),
        ("来自广东", "广东"),
        (None, ""),
    ],
)
def test_ip_labels_lose_their_platform_prefix(label: str | None, region: str) -> None:
    assert ip_region(label) == region
