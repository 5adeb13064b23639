"""The simulated world is deterministic, relocated into Shenzhen, and served in the real shapes."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from protego import Protego
from starlette.applications import Starlette

from fixtures.samples.replay import first_request, make_spider
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from fixtures.simulator.corpus import DISTRICTS, relocate
from fixtures.simulator.robots import is_trapped
from fixtures.simulator.world import PLATFORMS, build_world
from settings import load_settings


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app(42)


@pytest.fixture(scope="module")
def client(app: Starlette) -> Iterator[httpx.Client]:
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        yield client


@pytest.fixture
def faulty_client(client: httpx.Client) -> Iterator[httpx.Client]:
    """The module's simulator; whatever faults a test sets are cleared after it."""
    yield client
    client.post("/_faults")


@pytest.fixture(scope="module")
def world_truth() -> dict[str, Any]:
    """The seed-42 world's truth, built once for the tests that only read it."""
    return build_world(42).truth()


def test_truth_is_identical_for_one_seed_and_differs_for_another(world_truth: dict[str, Any]) -> None:
    first = json.dumps(world_truth, ensure_ascii=False)
    assert first == json.dumps(build_world(42).truth(), ensure_ascii=False)
    assert first != json.dumps(build_world(7).truth(), ensure_ascii=False)


def test_seed_42_world_serves_634_posts_on_the_first_eleven_platforms(world_truth: dict[str, Any]) -> None:
    truth = world_truth
    assert truth["seed"] == 42
    first_eleven = [p for p in truth["posts"] if p["platform"] in PLATFORMS]
    assert Counter(p["platform"] for p in first_eleven) == {
        "weibo": 131,
        "bilibili": 113,  # 60 under the watched videos, 53 under found ones
        "sznews": 46,
        "tieba": 115,  # 45 threads and 70 reply floors past their first posts
        "heimao": 50,
        "weibo_comments": 50,  # 35 under the watched post, 15 under found ones
        "douban": 30,
        "douyin": 39,  # 27 under the watched video, 12 under found ones
        "bilibili_search": 24,
        "zhihu": 20,
        "szgov": 16,
    }
    complaints = [p for p in first_eleven if p["is_complaint"]]
    assert len(complaints) == 175
    assert sum(p["urgent"] for p in first_eleven) == 26
    assert all(not p["urgent"] for p in truth["posts"] if not p["is_complaint"])


def test_world_has_posts_on_every_configured_platform(world_truth: dict[str, Any]) -> None:
    served = Counter(p["platform"] for p in world_truth["posts"])
    assert [key for key in load_settings(env={}).platforms if served[key] == 0] == []


def test_truth_places_are_relocated_into_shenzhen(world_truth: dict[str, Any]) -> None:
    posts = world_truth["posts"]
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


def test_one_incident_surfaces_on_weibo_and_tieba(world_truth: dict[str, Any]) -> None:
    posts = world_truth["posts"]
    platforms_by_incident: dict[str, set[str]] = {}
    for post in posts:
        if post["incident_id"]:
            platforms_by_incident.setdefault(post["incident_id"], set()).add(post["platform"])
    shared = [i for i, found in platforms_by_incident.items() if {"weibo", "tieba"} <= found]
    assert len(shared) == 15


def test_broken_step_is_reported_under_a_video_and_again_on_weibo_with_a_witness(
    world_truth: dict[str, Any],
) -> None:
    posts = world_truth["posts"]
    step = [p for p in posts if p["incident_id"] == "V-step" and p["platform"] in PLATFORMS]
    assert [(p["platform"], p["district"], p["category"]) for p in step] == [
        ("weibo", "南山区", "城乡建设"),
        ("bilibili", "南山区", "城乡建设"),
        ("weibo_comments", None, "城乡建设"),  # a witness under the Weibo post: "桃园路天桥", no district
    ]
    assert "卷尺" in step[1]["text"] and step[1]["parent_external_id"] is None


def test_bilibili_comments_hold_replies_and_replies_to_replies(world_truth: dict[str, Any]) -> None:
    comments = [p for p in world_truth["posts"] if p["platform"] == "bilibili"]
    ids = {p["external_id"] for p in comments}
    replies = [p for p in comments if p["parent_external_id"] is not None]
    assert (len(comments), len(replies)) == (113, 53)
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


def test_truth_endpoint_lists_the_world_with_no_post_behind_robots_by_default(
    client: httpx.Client, world_truth: dict[str, Any]
) -> None:
    world = json.loads(json.dumps(world_truth))
    world["posts"] = [p | {"robots_disallowed": False} for p in world["posts"]]
    assert client.get("/_truth").json() == world


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


def test_each_platform_serves_its_real_style_robots_txt(client: httpx.Client) -> None:
    robots = client.get("/p/douban/robots.txt").text
    assert robots.startswith("User-agent: *\nDisallow: /share/\n")
    assert "Disallow: /group/topic/*/add_comment\n" in robots and robots.endswith("Allow: /\n")


def test_host_robots_txt_holds_every_platforms_rules_under_its_prefix(client: httpx.Client) -> None:
    robots = client.get("/robots.txt").text
    assert robots.startswith("User-agent: *\nDisallow: /_truth\nDisallow: /_advance\nDisallow: /_faults\n")
    assert "Disallow: /p/tieba/share/\nDisallow: /p/tieba/login\n" in robots
    assert "Disallow: /p/tieba/*?*see_lz=\n" in robots


def test_robots_txt_allows_every_configured_entry_point(client: httpx.Client) -> None:
    settings = load_settings(env={"WEISU_SIMULATOR_URL": str(client.base_url)})
    robots = Protego.parse(client.get("/robots.txt").text)
    first_pages = {key: first_request(make_spider(settings, key)).url for key in settings.platforms}
    assert [url for url in first_pages.values() if not robots.can_fetch(url, settings.user_agent)] == []
    assert not robots.can_fetch(f"{client.base_url}/p/tieba/share/p/1", settings.user_agent)


def _tieba_first_page(client: httpx.Client) -> str:
    response = client.get("/p/tieba/f", params={"kw": "深圳", "ie": "utf-8", "pn": "0"})
    return response.content.decode("gb18030")


def test_robots_traps_link_a_fixed_share_of_threads_under_the_disallowed_path(
    app: Starlette, faulty_client: httpx.Client
) -> None:
    client = faulty_client
    plain = _tieba_first_page(client)
    client.post("/_faults", params={"robots_traps": "tieba"})
    trapped_page = _tieba_first_page(client)
    truth = client.get("/_truth").json()["posts"]
    trapped = [p["external_id"] for p in truth if p["platform"] == "tieba" and p["robots_disallowed"]]
    on_page = [tid for tid in re.findall(r'data-tid="(\d+)"', plain) if tid in trapped]
    assert re.findall(r'href="/share/p/(\d+)"', trapped_page) == on_page != []
    assert trapped_page.replace("/share/p/", "/p/") == plain
    # A reply floor is reached through its thread's page: trapped with its thread.
    assert len(trapped) == sum(
        is_trapped("tieba", p["parent_external_id"] or p["external_id"])
        for p in truth
        if p["platform"] == "tieba"
    )
    shared = client.get(f"/p/tieba/share/p/{on_page[0]}")
    assert shared.content == client.get(f"/p/tieba/p/{on_page[0]}").content
    assert {p["platform"] for p in truth if p["robots_disallowed"]} == {"tieba"}
    assert app.state.request_log[-2].endswith(f"/p/tieba/share/p/{on_page[0]}")  # logged as asked


def test_layout_variant_renames_classes_on_the_chosen_platform_only(faulty_client: httpx.Client) -> None:
    client = faulty_client
    client.post("/_faults", params={"layout_variant": "tieba"})
    page = _tieba_first_page(client)
    douban = client.get("/p/douban/group/shenzhen/discussions", params={"start": "0"}).text
    assert 'class="nx-j_thread_list nx-clearfix nx-thread_item_box"' in page and "<li" not in page
    assert "j_thread_list" not in page.replace("nx-j_thread_list", "")
    assert "深圳吧" in page  # same text, same encoding
    assert 'class="olt"' in douban


# --- weisu simulate's faults and walls -----------------------------------------------------------


def test_simulate_serves_the_walls_and_faults_it_was_started_with() -> None:
    from fixtures.simulator.server import simulator_app

    app = simulator_app(42, faults={"error_rate": "0.25", "seed": "3"}, walls={"weibo": "captcha"})
    with serve_in_thread(app) as base, httpx.Client(base_url=base, timeout=10) as client:
        assert client.get("/_walls").json()["walls"] == {"weibo": {"kind": "captcha", "only": None}}
        faults = client.get("/_faults").json()
        assert (faults["error_rate"], faults["seed"]) == (0.25, 3)


def test_simulate_refuses_an_unknown_wall_in_one_line_before_serving() -> None:
    from typer.testing import CliRunner

    from cli import app

    result = CliRunner().invoke(app, ["simulate", "--wall", "weibo=paywall"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith("weisu simulate: weibo: unknown wall 'paywall'")
