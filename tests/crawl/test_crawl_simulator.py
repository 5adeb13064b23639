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


def test_seed_42_world_serves_265_posts_on_four_platforms() -> None:
    truth = build_world(42).truth()
    assert truth["seed"] == 42
    assert Counter(p["platform"] for p in truth["posts"]) == {
        "weibo": 130,
        "sznews": 46,
        "tieba": 45,
        "heimao": 44,
    }
    complaints = [p for p in truth["posts"] if p["is_complaint"]]
    assert len(complaints) == 135
    assert sum(p["urgent"] for p in truth["posts"]) == 15
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


def test_truth_endpoint_lists_the_world(client: httpx.Client) -> None:
    assert client.get("/_truth").json() == json.loads(json.dumps(build_world(42).truth()))


def test_weibo_search_pages_like_m_weibo_cn(client: httpx.Client) -> None:
    params = {"containerid": "100103type=1&q=深圳", "page_type": "searchall"}
    first = client.get("/p/weibo/api/container/getIndex", params=params | {"page": "1"}).json()
    assert first["ok"] == 1 and first["data"]["cardlistInfo"]["page"] == 2
    assert [c["card_type"] for c in first["data"]["cards"]][:2] == [11, 9]
    last = client.get("/p/weibo/api/container/getIndex", params=params | {"page": "13"}).json()
    assert last["data"]["cardlistInfo"]["page"] is None
    beyond = client.get("/p/weibo/api/container/getIndex", params=params | {"page": "14"}).json()
    assert beyond == {"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}}


def test_tieba_is_served_as_gbk(client: httpx.Client) -> None:
    response = client.get("/p/tieba/f", params={"kw": "深圳", "ie": "utf-8", "pn": "0"})
    assert response.headers["content-type"] == "text/html; charset=GBK"
    assert "深圳吧" in response.content.decode("gb18030")


def test_robots_txt_allows_the_platform_paths(client: httpx.Client) -> None:
    assert client.get("/robots.txt").text == "User-agent: *\nDisallow: /_truth\nAllow: /\n"
    assert client.get("/p/weibo/robots.txt").status_code == 200
