"""The complaints group's ten platforms, crawled once from the simulator: each stores exactly what it serves.

人民投诉, 聚投诉, 12315, 大众点评, 美团, 携程, 高德 and the news comments of 网易, 腾讯 and 新浪 are
crawled in one child process (module scope); the tests then compare the stored posts with /_truth.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from simulated import pages_and_robots, robots_fetched_at_most_once, with_sources
from sqlalchemy import select

from crawlers.runner import CrawlResult, run_crawl
from crawlers.text import normalise_text
from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from fixtures.simulator.groups import complaints
from fixtures.simulator.later import LATER_EVERY_MINUTES, LATER_ROUNDS
from fixtures.simulator.world import all_platforms
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope, upgrade
from storage.models import Post
from storage.personal_data import mask_personal_data

GROUP = list(complaints.PLATFORMS)
#: Platforms whose every served post a crawl stores.
CRAWLABLE = GROUP
#: The group's platforms served as HTML pages (config.yaml kind html_board).
HTML_PAGES = ("people_tousu", "dianping")


@dataclass
class Crawl:
    """One full crawl, then an incremental crawl after /_advance."""

    truth: list[dict[str, Any]]
    results: dict[str, CrawlResult]
    stored: dict[str, list[Post]]
    appeared: list[dict[str, Any]]
    incremental: dict[str, CrawlResult]
    new_posts: set[tuple[str, str, str | None]]


def _posts(url: str, after_id: int = 0) -> list[Post]:
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        query = select(Post).where(Post.platform_id.in_(GROUP), Post.id > after_id).order_by(Post.id)
        posts = list(session.scalars(query))
        session.expunge_all()
    engine.dispose()
    return posts


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawl]:
    url = f"sqlite:///{tmp_path_factory.mktemp('complaints') / 'weisu.db'}"
    upgrade(url)
    with serve_in_thread(create_app(42)) as base:
        settings = load_settings(env={"WEISU_SIMULATOR_URL": base, "WEISU_DATABASE_URL": url})
        truth = httpx.get(f"{base}/_truth").json()["posts"]
        results = {r.platform_id: r for r in run_crawl(settings, with_sources(settings, GROUP))}
        first = _posts(url)
        stored: dict[str, list[Post]] = {key: [p for p in first if p.platform_id == key] for key in GROUP}
        # Long enough for every platform's three later posts (one every LATER_EVERY_MINUTES, in turn).
        minutes = LATER_EVERY_MINUTES * LATER_ROUNDS * len(all_platforms())
        appeared = httpx.post(f"{base}/_advance", params={"minutes": minutes}).json()["appeared"]
        incremental = {r.platform_id: r for r in run_crawl(settings, with_sources(settings, GROUP))}
        new_posts = {(p.platform_id, p.external_id, p.parent_external_id) for p in _posts(url, first[-1].id)}
        yield Crawl(truth, results, stored, appeared, incremental, new_posts)


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    """A simulator of its own, at the world's start, for the response-shape tests."""
    with serve_in_thread(create_app(42)) as base:
        yield base


def _served(crawl: Crawl, platform: str) -> set[tuple[str, str]]:
    """What /_truth says the platform serves: (external id, text after normalising and masking).

    An HTML page serves the truth's plain text escaped (a letter quoting 《关于印发<…>的通知》 keeps its
    angle brackets); a JSON API serves it as it is."""
    escape = (lambda text: html.escape(text, quote=False)) if platform in HTML_PAGES else str
    return {
        (p["external_id"], mask_personal_data(normalise_text(escape(p["text"])))[0])
        for p in crawl.truth
        if p["platform"] == platform
    }


def _stored(crawl: Crawl, platform: str) -> set[tuple[str, str]]:
    return {(p.external_id, p.text) for p in crawl.stored[platform]}


@pytest.mark.parametrize("platform", CRAWLABLE)
def test_crawl_stores_exactly_the_posts_the_platform_serves(crawl: Crawl, platform: str) -> None:
    result = crawl.results[platform]
    assert (result.status, result.errors) == ("ok", 0)
    assert _stored(crawl, platform) == _served(crawl, platform)


def test_every_platform_serves_at_least_two_pages_of_posts_with_complaints_among_them(crawl: Crawl) -> None:
    counts = {key: [p["is_complaint"] for p in crawl.truth if p["platform"] == key] for key in GROUP}
    assert {key: len(flags) for key, flags in counts.items()} == {
        "people_tousu": 20,
        "jutousu": 18,
        "cn12315": 16,
        "dianping": 20,
        "meituan": 18,
        "ctrip": 14,
        "amap": 13,
        "netease_news": 30,  # 20 under the watched article, 10 under found ones
        "qq_news": 31,  # 19 under the watched article, 12 under found ones
        "sina_news": 46,  # 24 under the watched article, 22 under found ones
    }
    assert all(any(flags) and not all(flags) for flags in counts.values())


def test_sina_replies_keep_the_comment_they_answer_even_a_reply(crawl: Crawl) -> None:
    truth = {p["external_id"]: p["parent_external_id"] for p in crawl.truth if p["platform"] == "sina_news"}
    stored = {p.external_id: p.parent_external_id for p in crawl.stored["sina_news"]}
    assert stored == truth
    replies = {child: parent for child, parent in truth.items() if parent is not None}
    assert len(replies) == 9
    assert any(parent in replies for parent in replies.values())  # a reply to a reply (盖楼)


def test_gbk_complaint_pages_decode_to_the_truth_text(crawl: Crawl, live: str) -> None:
    first = next(p for p in crawl.truth if p["platform"] == "people_tousu")
    page = httpx.get(f"{live}/p/people_tousu/tousu/show/{first['external_id']}.html")
    assert page.headers["content-type"] == "text/html; charset=GBK"
    assert first["title"] in page.content.decode("gb18030")
    stored = {p.external_id: p for p in crawl.stored["people_tousu"]}
    assert stored[first["external_id"]].title == normalise_text(first["title"])


def test_personal_data_in_complaints_reviews_and_comments_is_masked_before_storage(crawl: Crawl) -> None:
    planted = {
        p["platform"]: mask_personal_data(p["text"])[1]
        for p in crawl.truth
        if p["platform"] in GROUP and mask_personal_data(p["text"])[1]
    }
    assert planted == {
        "people_tousu": {"mobile": 1, "qq": 1, "wechat": 1},
        "cn12315": {"landline": 1},
        "meituan": {"mobile": 1, "plate": 1},
    }
    stored = " ".join(p.text for key in planted for p in crawl.stored[key])
    marks = ("[手机号]", "[QQ号]", "[微信号]", "[电话]", "[车牌]")
    assert [stored.count(mark) for mark in marks] == [2, 1, 1, 1, 1]


def test_the_broken_step_is_also_reported_under_a_dianping_review_with_the_same_incident(
    crawl: Crawl,
) -> None:
    step = [
        (p["platform"], p["district"], p["category"]) for p in crawl.truth if p["incident_id"] == "V-step"
    ]
    assert ("dianping", "南山区", "城乡建设") in step
    assert {platform for platform, _, _ in step} >= {"bilibili", "weibo", "dianping"}


def test_a_weibo_complaint_is_echoed_in_a_sina_news_comment_with_the_same_truth(crawl: Crawl) -> None:
    sina = [p for p in crawl.truth if p["platform"] == "sina_news" and p["is_complaint"]]
    weibo = {p["incident_id"]: p for p in crawl.truth if p["platform"] == "weibo" and p["incident_id"]}
    echoed = [p for p in sina if p["incident_id"] in weibo]
    assert len(echoed) == 1
    original = weibo[echoed[0]["incident_id"]]
    assert (echoed[0]["category"], echoed[0]["district"]) == (original["category"], original["district"])


def test_ctrip_answers_its_json_post_api_by_page(live: str) -> None:
    arg = {"arg": {"poiId": 10558614, "pageIndex": 2, "pageSize": 10}, "head": {}}
    url = f"{live}/p/ctrip/restapi/soa2/13444/json/getCommentCollapseList"
    page = httpx.post(url, json=arg).json()
    assert page["ResponseStatus"]["Ack"] == "Success"
    assert page["result"]["totalCount"] == 14
    assert len(page["result"]["items"]) == 4


def test_news_comment_apis_answer_jsonp_only_when_asked_for_a_callback(live: str) -> None:
    plain = httpx.get(f"{live}/p/qq_news/article/8812345678/comment/v2?cursor=0")
    wrapped = httpx.get(f"{live}/p/qq_news/article/8812345678/comment/v2?cursor=0&callback=cb_1")
    assert plain.headers["content-type"].startswith("application/json")
    assert wrapped.text == f"cb_1({plain.text})"
    refused = httpx.get(f"{live}/p/sina_news/page/info?newsid=x&callback=alert(1)")
    assert "alert" not in refused.text


def test_netease_serves_comments_as_an_object_keyed_by_comment_id(live: str) -> None:
    url = f"{live}/p/netease_news/api/v1/products/{complaints.complaints_news.NETEASE_PRODUCT}"
    page = httpx.get(f"{url}/threads/JH1Q2K3L0514R9P4/comments/newList?offset=10&limit=10").json()
    assert page["newListSize"] == 20
    assert list(page["comments"]) == page["commentIds"] and len(page["commentIds"]) == 10


def test_after_advance_an_incremental_crawl_stores_exactly_the_new_posts(crawl: Crawl) -> None:
    appeared = {
        (p["platform"], p["external_id"], p["parent_external_id"])
        for p in crawl.appeared
        if p["platform"] in GROUP
    }
    assert Counter(platform for platform, _, _ in appeared) == {key: 3 for key in GROUP}
    assert crawl.new_posts == {post for post in appeared if post[0] in CRAWLABLE}
    assert all(r.status == "ok" for r in crawl.incremental.values())


def test_an_incremental_crawl_stops_at_the_first_page_holding_stored_posts(crawl: Crawl) -> None:
    # The first page, plus the three new detail pages of an HTML board; robots.txt once for the crawl.
    requests = {key: r.requests for key, r in crawl.incremental.items() if key in GROUP}
    pages = {key: 1 for key in GROUP} | {"people_tousu": 4, "dianping": 4}
    assert robots_fetched_at_most_once(requests, pages), pages_and_robots(requests, pages)


def test_netease_crawl_stores_the_comments_it_serves(crawl: Crawl) -> None:
    assert _stored(crawl, "netease_news") == _served(crawl, "netease_news")


def test_the_group_sample_files_are_recorded(crawl: Crawl) -> None:
    samples = Path(__file__).resolve().parents[2] / "fixtures" / "samples"
    missing = [key for key in GROUP if not (samples / key / "expected.json").exists()]
    assert missing == []
    expected = json.loads((samples / "people_tousu" / "expected.json").read_text(encoding="utf-8"))
    assert len(expected["items"]) == 1  # one detail page recorded for the GBK board
