"""The world's short posts and comments are real short requests of 佳木斯 and 福州, moved into Shenzhen."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from fixtures.simulator.corpus import _rows
from fixtures.simulator.places import CITY_DISTRICTS, CITY_NAMES, RIVERS, ROADS, relocate_request
from fixtures.simulator.short_requests import (
    COMMENT_CHARS,
    POST_CHARS,
    PUBLISHED_TYPES,
    REQUEST_FILES,
    ShortRequest,
    short_requests,
)
from fixtures.simulator.world import build_world
from storage.models import RequestType


def _request(source_id: str) -> ShortRequest:
    """The file's row as published (whether or not the world may draw it)."""
    prefix = "F" if source_id.startswith("fz") else "J"
    row = next(row for row in _rows(REQUEST_FILES[prefix]) if row["id"] == source_id)
    return ShortRequest(prefix, source_id, row["title"], row["text"], PUBLISHED_TYPES[row["label"]])


def _moved(source_id: str, seed: int = 1) -> tuple[str, str, str | None]:
    request = _request(source_id)
    moved = relocate_request(request.prefix, request.title, request.text, random.Random(seed))
    return moved.title, moved.text, moved.district


@pytest.fixture(scope="module")
def truth() -> list[dict[str, Any]]:
    posts: list[dict[str, Any]] = build_world(42).truth()["posts"]
    return posts


def test_a_fuzhou_river_becomes_a_shenzhen_river_and_names_no_district() -> None:
    assert _moved("fz12345_10") == ("福田河堵了，臭水到处流", "福田河堵了，臭水到处流，请有关部门处理", None)


def test_a_fuzhou_district_and_its_street_office_move_into_one_shenzhen_district() -> None:
    assert _moved("fz12345_203") == (
        "关于投诉布吉河改造施工问题",
        "我们是罗湖区黄贝街道下藤路342号龙津花园12幢的居民，因布吉河改造施工导致小区下水道堵塞，"
        "污水全部排放在小区地面上，特此投诉，望部门尽快介入处理。",
        "罗湖区",
    )


def test_a_river_named_after_a_district_is_a_river_not_the_district() -> None:
    # 晋安河 is a river: the request names no district, so neither does the truth.
    assert _moved("fz12345_1085")[1:] == (
        "深圳河旁边的皇岗河不知道是发动机的声音还是抽水机的声音，总是很大声，经常不定时的发出噪音，"
        "影响周边居民的正常生活。特此投诉，望处理。",
        None,
    )


def test_jiamusis_suburban_district_is_moved_where_the_letter_means_the_district() -> None:
    assert _moved("jms_1080") == (
        "举报黑诊所",
        "深圳市罗湖区糖厂社区9号楼东侧黑诊所有十年历史。非法行医祸害社会。大家多次举报。一直开下去。"
        "罗湖区卫生局是后台。",
        "罗湖区",
    )


def test_each_district_of_a_letter_keeps_one_shenzhen_district_throughout() -> None:
    title, text, district = _moved("jms_7910")
    assert text == (
        "单双号限行给我弄蒙了吗，深圳市罗湖区、福田区、龙岗区、南山区区域内道路是多大范围啊，谁能给圈一下，"
        "福田区、龙岗区还好，南山区和罗湖区呢，，哪儿到哪啊！！"
    )
    assert (title, district) == ("咨询限号范围", "罗湖区")


def test_roads_and_estates_take_their_fixed_shenzhen_names() -> None:
    assert _moved("fz12345_23")[1] == (
        "罗湖区新洲路益田村附近深圳河景观改造，牌子上写着观澜河边莲宅社区，景观灯24小时亮着，"
        "灯光扰民严重，特此投诉，望部门处理。"
    )


def test_the_seed_picks_the_shenzhen_district() -> None:
    districts = [_moved("fz12345_203", seed=seed)[2] for seed in range(1, 6)]
    assert districts == ["罗湖区", "南山区", "宝安区", "宝安区", "大鹏新区"]


def test_requests_naming_a_county_or_a_northern_winter_are_skipped() -> None:
    kept = {r.source_id for prefix in "JF" for r in short_requests(prefix)}
    # jms_2f0d5b48-…: heating (供热); fz12345_2 names no outside place and is kept.
    assert "jms_2f0d5b48-ccab-49f1-980e-62c71f82e6a7" not in kept
    assert "fz12345_2" in kept
    assert not any("闽侯" in r.title + r.text for r in short_requests("F"))
    assert not any("哈尔滨" in r.title + r.text for r in short_requests("J"))


def test_a_problem_reported_again_is_drawn_once() -> None:
    kept = {r.source_id for r in short_requests("F")}
    # Both open "晋安河旁边的琴亭河…": the later row is the same problem again.
    assert ("fz12345_1084" in kept, "fz12345_1085" in kept) == (True, False)


def test_published_types_map_to_problem_question_and_suggestion() -> None:
    assert {label: str(kind) for label, kind in PUBLISHED_TYPES.items()} == {
        "反映问题": "problem",
        "投诉": "problem",
        "举报": "problem",
        "求助": "problem",
        "咨询问题": "question",
        "咨询": "question",
        "建议": "suggestion",
    }
    assert _request("fz12345_2").request_type == RequestType.PROBLEM  # 求助


def test_short_posts_and_comments_are_real_short_requests(truth: list[dict[str, Any]]) -> None:
    comment_platforms = ("bilibili", "douyin", "kuaishou", "xigua", "netease_news", "qq_news", "nfplus")
    short = [p for p in truth if p["platform"] in ("weibo", *comment_platforms) and p["incident_id"]]
    sources = Counter(p["incident_id"].split("-")[0] for p in short)
    # Every one but the hand-written broken step (V) and the Sina echo of a Weibo post.
    assert set(sources) == {"J", "F", "V"}
    for post in short:
        request = _request(post["incident_id"].split("-", 1)[1]) if post["incident_id"][0] in "JF" else None
        if request is not None and post["platform"] in comment_platforms:
            assert len(request.text) <= COMMENT_CHARS
        if request is not None and post["platform"] == "weibo":
            assert len(request.text) <= POST_CHARS


def test_questions_are_civic_requests_but_not_complaints(truth: list[dict[str, Any]]) -> None:
    kinds = Counter((p["request_type"], p["is_complaint"]) for p in truth)
    assert kinds == {(None, False): 1019, ("problem", True): 376, ("question", False): 14}
    assert all(p["incident_id"] and not p["urgent"] for p in truth if p["request_type"] == "question")


def test_no_real_place_of_either_city_is_served(truth: list[dict[str, Any]]) -> None:
    districts = [d for names in CITY_DISTRICTS.values() for d in names if d != "郊区"]
    names = [*CITY_NAMES, *RIVERS, *ROADS, *districts]
    relocated = [f"{p['title'] or ''} {p['text']}" for p in truth if (p["incident_id"] or "-")[0] in "JF"]
    assert [(name, text) for text in relocated for name in names if name in text] == []
