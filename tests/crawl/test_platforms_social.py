"""The social group (快手, 小红书, 头条, 西瓜, 视频号, 百家号, 公众号, 留言板, 澎湃, 懂车帝) crawled.

One crawl of the ten platforms per module; each test checks one thing the crawl stored against /_truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from pathlib import Path
from typing import Any

import httpx
import pytest
from simulated import pages_and_robots, robots_fetched_at_most_once, with_sources
from sqlalchemy import select
from starlette.applications import Starlette

from crawlers.runner import CrawlResult, run_crawl
from crawlers.text import normalise_text
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from fixtures.simulator.groups import social
from settings import Settings, load_settings
from storage.db import make_engine, make_session_factory, session_scope, upgrade
from storage.models import Post
from storage.personal_data import mask_personal_data

SOCIAL = social.PLATFORMS


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app(42)


@pytest.fixture(scope="module")
def simulator(app: Starlette) -> Iterator[str]:
    with serve_in_thread(app) as base:
        yield base


@pytest.fixture(scope="module")
def every_truth(simulator: str) -> list[dict[str, Any]]:
    return httpx.get(f"{simulator}/_truth", timeout=30).json()["posts"]


@pytest.fixture(scope="module")
def truth(every_truth: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in every_truth if p["platform"] in SOCIAL]


@pytest.fixture(scope="module")
def settings(simulator: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    url = f"sqlite:///{tmp_path_factory.mktemp('social') / 'weisu.db'}"
    upgrade(url)
    return load_settings(env={"WEISU_SIMULATOR_URL": simulator, "WEISU_DATABASE_URL": url})


@pytest.fixture(scope="module")
def crawl(settings: Settings) -> list[CrawlResult]:
    return run_crawl(settings, with_sources(settings, SOCIAL))


@pytest.fixture(scope="module")
def stored(settings: Settings, crawl: list[CrawlResult]) -> list[Post]:
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        posts = list(session.scalars(select(Post).where(Post.platform_id.in_(SOCIAL))))
        session.expunge_all()
    return posts


def _as_stored(text: str) -> str:
    """What the pipelines make of a served text: normalised, personal data masked."""
    return mask_personal_data(normalise_text(text))[0]


def test_every_social_platform_is_configured_and_crawls_without_errors(crawl: list[CrawlResult]) -> None:
    # The group's platforms, then the thread listings its comment platforms discover from.
    ours = [(r.platform_id, r.status, r.errors) for r in crawl if r.platform_id in SOCIAL]
    assert ours == [(key, "ok", 0) for key in SOCIAL]
    assert {(r.status, r.errors) for r in crawl} == {("ok", 0)}


@pytest.mark.parametrize("platform", SOCIAL)
def test_a_crawl_stores_exactly_the_posts_the_truth_lists(
    platform: str, truth: list[dict[str, Any]], stored: list[Post]
) -> None:
    expected = {(p["external_id"], _as_stored(p["text"])) for p in truth if p["platform"] == platform}
    got = {(p.external_id, p.text) for p in stored if p.platform_id == platform}
    assert got == expected


def test_each_platform_starts_with_two_pages_or_more_of_posts(truth: list[dict[str, Any]]) -> None:
    counts = {key: sum(1 for p in truth if p["platform"] == key) for key in SOCIAL}
    assert counts == {
        "kuaishou": 38,  # 20 under the watched video, the rest under found ones
        "xiaohongshu": 36,
        "toutiao": 16,
        "xigua": 33,  # 15 under the watched video, 18 under found Toutiao posts
        "weixin_channels": 36,
        "baijiahao": 14,
        "weixin_mp": 14,
        "people_liuyan": 14,
        "thepaper": 13,
        "dongchedi": 25,
    }


@pytest.mark.parametrize("platform", SOCIAL)
def test_every_post_keeps_the_parent_it_answers(
    platform: str, truth: list[dict[str, Any]], stored: list[Post]
) -> None:
    expected = {(p["external_id"], p["parent_external_id"]) for p in truth if p["platform"] == platform}
    got = {(p.external_id, p.parent_external_id) for p in stored if p.platform_id == platform}
    assert got == expected


def test_comment_threads_have_replies_and_xiaohongshu_replies_to_replies(truth: list[dict[str, Any]]) -> None:
    replies = {key: [p for p in truth if p["platform"] == key and p["parent_external_id"]] for key in SOCIAL}
    counts = {key: len(replies[key]) for key in SOCIAL if replies[key]}
    assert counts == {"kuaishou": 10, "xiaohongshu": 10, "weixin_channels": 11}
    roots = {
        p["external_id"] for p in truth if p["platform"] == "xiaohongshu" and not p["parent_external_id"]
    }
    assert any(p["parent_external_id"] not in roots for p in replies["xiaohongshu"])


def test_titles_of_articles_and_letters_are_stored(truth: list[dict[str, Any]], stored: list[Post]) -> None:
    titled = ("toutiao", "baijiahao", "weixin_mp", "people_liuyan", "thepaper")
    expected = {(p["external_id"], _as_stored(p["title"])) for p in truth if p["platform"] in titled}
    got = {(p.external_id, p.title) for p in stored if p.platform_id in titled}
    assert got == expected


def test_the_group_plants_urgent_complaints_and_personal_data(truth: list[dict[str, Any]]) -> None:
    assert sum(p["urgent"] for p in truth) == 9
    assert sum(p["is_complaint"] for p in truth) == 57
    # Questions among the real short requests: civic requests, but no complaint.
    assert sum(p["request_type"] == "question" for p in truth) == 3
    assert sum(1 for p in truth if mask_personal_data(p["text"])[1]) == 9


def test_no_planted_phone_number_reaches_the_database(stored: list[Post]) -> None:
    every_text = "\n".join(f"{p.title or ''} {p.text}" for p in stored)
    assert "[手机号]" in every_text
    assert mask_personal_data(every_text)[1] == {}


def test_the_broken_step_and_weibo_incidents_are_reported_again_here(
    every_truth: list[dict[str, Any]],
) -> None:
    on_kuaishou = [p for p in every_truth if p["platform"] == "kuaishou" and p["incident_id"] == "V-step"]
    assert [(p["category"], p["district"]) for p in on_kuaishou] == [("城乡建设", "南山区")]
    on_weibo = {p["incident_id"]: p["category"] for p in every_truth if p["platform"] == "weibo"}
    for platform in ("toutiao", "baijiahao"):
        again = [p for p in every_truth if p["platform"] == platform and p["incident_id"] in on_weibo]
        assert [p["category"] for p in again] == [on_weibo[p["incident_id"]] for p in again] != []


def test_each_platforms_time_format_is_read_as_the_moment_of_publication(
    app: Starlette, stored: list[Post]
) -> None:
    # Epoch milliseconds (快手, 小红书, 澎湃), seconds as numbers or strings (视频号),
    # a script variable (公众号).
    world = app.state.world
    published = {
        (key, p.external_id): p.published.astimezone(UTC) for key in SOCIAL for p in world.posts[key]
    }
    got = {(p.platform_id, p.external_id): p.published_at for p in stored}
    assert got == {key: published[key] for key in got}
    assert all(when is not None and when.tzinfo == UTC for when in got.values())


def test_adding_the_group_leaves_weibo_search_byte_identical(simulator: str) -> None:
    path = Path(__file__).resolve().parents[2] / "fixtures" / "samples" / "weibo" / "page-1.json"
    served = httpx.get(
        f"{simulator}/p/weibo/api/container/getIndex",
        params={"containerid": "100103type=1&q=深圳", "page_type": "searchall", "page": "1"},
        timeout=10,
    )
    assert served.content == path.read_bytes()


def test_a_repeat_crawl_stores_nothing_and_reads_one_page_per_keyword(
    settings: Settings, stored: list[Post]
) -> None:
    results = [r for r in run_crawl(settings, with_sources(settings, SOCIAL)) if r.platform_id in SOCIAL]
    assert [r.posts_stored for r in results] == [0] * len(SOCIAL)
    # The first page of each keyword (toutiao and 公众号 search two); robots.txt once for the crawl.
    pages = {key: 1 for key in SOCIAL} | {"toutiao": 2, "weixin_mp": 2}
    requests = {r.platform_id: r.requests for r in results}
    assert robots_fetched_at_most_once(requests, pages), pages_and_robots(requests, pages)


def test_after_time_passes_an_incremental_crawl_stores_exactly_the_new_posts(
    simulator: str, settings: Settings, stored: list[Post]
) -> None:
    # Runs last: it moves the module's simulator clock (every earlier test saw the world at its start).
    appeared = httpx.post(f"{simulator}/_advance", params={"minutes": 24 * 60}, timeout=30).json()["appeared"]
    new = {
        (p["platform"], p["external_id"], p["parent_external_id"])
        for p in appeared
        if p["platform"] in SOCIAL
    }
    results = [r for r in run_crawl(settings, with_sources(settings, SOCIAL)) if r.platform_id in SOCIAL]
    assert {r.platform_id: r.posts_stored for r in results} == {key: 3 for key in SOCIAL}
    factory = make_session_factory(make_engine(settings.database_url))
    before = {(p.platform_id, p.external_id) for p in stored}
    with session_scope(factory) as session:
        rows = session.scalars(select(Post).where(Post.platform_id.in_(SOCIAL)))
        added = {(p.platform_id, p.external_id, p.parent_external_id) for p in rows} - {
            (p.platform_id, p.external_id, p.parent_external_id) for p in stored
        }
    assert added == new
    assert not {(platform, external_id) for platform, external_id, _ in new} & before
