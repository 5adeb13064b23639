"""The simulated world is deterministic, relocated into Shenzhen, and served in the real shapes."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from fixtures.simulator.corpus import DISTRICTS, relocate
from fixtures.simulator.world import build_world


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with serve_in_thread(create_app(42)) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


def test_truth_is_identical_for_one_seed_and_differs_for_another() -> None:
    first = json.dumps(build_world(42).truth(), ensure_ascii=False)
    assert first == json.dumps(build_world(42).truth(), ensure_ascii=False)
    assert first != json.dumps(build_world(7).truth(), ensure_ascii=False)


def test_seed_42_world_serves_479_posts_on_eleven_platforms() -> None:
    truth = build_world(42).truth()
    assert truth["seed"] == 42
    assert Counter(p["platform"] for p in truth["posts"]) == {
        "weibo": 131,
        "bilibili": 60,
        "sznews": 46,
        "tieba": 45,
        "heimao": 44,
        "weibo_comments": 35,
        "douban": 30,
        "douyin": 28,
        "bilibili_search": 24,
        "zhihu": 20,
        "szgov": 16,
    }
    complaints = [p for p in truth["posts"] if p["is_complaint"]]
    assert len(complaints) == 173
    assert sum(p["urgent"] for p in truth["posts"]) == 21
    assert all(not p["urgent"] for p in truth["posts"] if not p["is_complaint"])


def test_truth_places_are_relocated_into_shenzhen() -> None:
    posts = build_world(42).truth()["posts"]
    texts = " ".join(f"{p['title'] or ''} {p['text']}" for p in posts)
    assert re.search(r"A\d*[市区县]|西地省", texts) is None
    districts = {p["district"] for p in posts} - {None}
    assert districts <= set(DISTRICTS) and len(districts) >= 5
    for post in posts:
        if post["district"]:
            assert post["district"] in f"{post['title'] or ''}{post['text']}"


def test_relocation_maps_each_anonymised_district_consistently() -> None:
    import random

    title, text, district = relocate("A3区停水", "A市A3区某小区停水，A5区也是，A3区最严重", random.Random(1))
    assert district is not None and title.startswith(district)
    assert text.startswith("深圳市" + district)
    assert text.count(district) == 2 and "A" not in text


def test_one_incident_surfaces_on_weibo_and_tieba() -> None:
    posts = build_world(42).truth()["posts"]
    platforms_by_incident: dict[str, set[str]] = {}
    for post in posts:
        if post["incident_id"]:
            platforms_by_incident.setdefault(post["incident_id"], set()).add(post["platform"])
    shared = [i for i, found in platforms_by_incident.items() if found == {"weibo", "tieba"}]
    assert len(shared) == 15


def test_broken_step_is_reported_under_a_video_and_again_on_weibo_with_a_witness() -> None:
    step = [p for p in build_world(42).truth()["posts"] if p["incident_id"] == "V-step"]
    assert [(p["platform"], p["district"], p["category"]) for p in step] == [
        ("weibo", "南山区", "城乡建设"),
        ("bilibili", "南山区", "城乡建设"),
        ("weibo_comments", None, "城乡建设"),  # a witness under the Weibo post: "桃园路天桥", no district
    ]
    assert "卷尺" in step[1]["text"] and step[1]["parent_external_id"] is None


def test_bilibili_comments_hold_replies_and_replies_to_replies() -> None:
    comments = [p for p in build_world(42).truth()["posts"] if p["platform"] == "bilibili"]
    ids = {p["external_id"] for p in comments}
    replies = [p for p in comments if p["parent_external_id"] is not None]
    assert (len(comments), len(replies)) == (60, 22)
    assert all(p["parent_external_id"] in ids for p in replies)
    answering_replies = [p for p in replies if p["text"].startswith("回复 @")]
    assert len(answering_replies) >= 1


def test_bilibili_reply_api_pages_by_pn_and_counts_top_level_comments(client: httpx.Client) -> None:
    params = {"type": "1", "oid": "113520947610231", "sort": "0", "ps": "20"}
    first = client.get("/p/bilibili/x/v2/reply", params=params | {"pn": "1"}).json()
    assert (first["code"], first["data"]["page"]["count"], len(first["data"]["replies"])) == (0, 24, 20)
    reply = first["data"]["replies"][0]
    assert reply["rpid_str"] == str(reply["rpid"]) and reply["parent_str"] == "0"
    assert set(reply) >= {"ctime", "like", "rcount", "member", "content", "replies"}
    second = client.get("/p/bilibili/x/v2/reply", params=params | {"pn": "2"}).json()
    assert len(second["data"]["replies"]) == 4
    missing = client.get("/p/bilibili/x/v2/reply", params=params | {"oid": "1", "pn": "1"}).json()
    assert missing == {"code": -404, "message": "啥都木有", "ttl": 1}


def test_truth_endpoint_lists_the_world(client: httpx.Client) -> None:
    assert client.get("/_truth").json() == json.loads(json.dumps(build_world(42).truth()))


def test_weibo_search_pages_like_m_weibo_cn(client: httpx.Client) -> None:
    params = {"containerid": "100103type=1&q=深圳", "page_type": "searchall"}
    first = client.get("/p/weibo/api/container/getIndex", params=params | {"page": "1"}).json()
    assert first["ok"] == 1 and first["data"]["cardlistInfo"]["page"] == 2
    assert [c["card_type"] for c in first["data"]["cards"]][:2] == [11, 9]
    last = client.get("/p/weibo/api/container/getIndex", params=params | {"page": "14"}).json()
    assert last["data"]["cardlistInfo"]["page"] is None
    beyond = client.get("/p/weibo/api/container/getIndex", params=params | {"page": "15"}).json()
    assert beyond == {"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}}


def test_tieba_is_served_as_gbk(client: httpx.Client) -> None:
    response = client.get("/p/tieba/f", params={"kw": "深圳", "ie": "utf-8", "pn": "0"})
    assert response.headers["content-type"] == "text/html; charset=GBK"
    assert "深圳吧" in response.content.decode("gb18030")


def test_robots_txt_allows_the_platform_paths(client: httpx.Client) -> None:
    expected = "User-agent: *\nDisallow: /_truth\nDisallow: /_advance\nDisallow: /_faults\nAllow: /\n"
    assert client.get("/robots.txt").text == expected
    assert client.get("/p/weibo/robots.txt").status_code == 200
