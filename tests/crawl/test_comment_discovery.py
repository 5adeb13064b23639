"""Comment discovery: a sweep follows the posts it finds into their comment threads, on every seed.

The sweeps (seeds 42, 43, 44 and one random seed, printed and named in the test id) each run once
per module; the rule, the budget, the depth limit and the per-thread mark are tested on their own
with exact values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import scrapy
from scrapy.http import TextResponse
from scrapy.utils.test import get_crawler
from seeds import random_seed_of_this_run
from simulated import crawl_settings, migrated_sqlite, simulator, stored_posts

from crawlers.crawl_process import crawl_phases
from crawlers.discovery import ThreadPlan, discovered_threads, follows, watched_threads
from crawlers.items import PostItem
from crawlers.runner import CrawlResult, run_crawl
from crawlers.spiders.comments import CommentsSpider
from crawlers.text import normalise_text
from fixtures.samples.replay import first_request
from fixtures.simulator.discovered import PAIRINGS
from fixtures.simulator.listings import thread_id
from fixtures.simulator.world import build_world
from settings import ConfigError, FollowRule, Settings, load_settings
from storage.db import session_factory_for, session_scope
from storage.models import Post
from storage.queries import insert_posts, record_thread_read, sync_platforms

RANDOM_SEED = random_seed_of_this_run()
SEEDS = [42, 43, 44, RANDOM_SEED]
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class SeedSweeps:
    seed: int
    truth: list[dict[str, Any]]
    first: list[Post]
    second: list[Post]
    second_results: list[CrawlResult]


@pytest.fixture(scope="module", params=SEEDS, ids=[f"seed-{seed}" for seed in SEEDS])
def swept(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeedSweeps]:
    """One seed's world swept twice (a module fixture: each seed is swept once for all its tests)."""
    seed = request.param
    if seed == RANDOM_SEED:
        print(f"random seed: {seed}")  # shown with the test log; the test id names it too
    with simulator(seed) as sim:
        settings = crawl_settings(sim.base, migrated_sqlite(tmp_path_factory.mktemp(f"seed{seed}")))
        truth = sim.truth()
        run_crawl(settings, None)
        first = stored_posts(settings)
        results = run_crawl(settings, None)
        yield SeedSweeps(seed, truth, first, stored_posts(settings, max(p.id for p in first)), results)


# --- every seed ----------------------------------------------------------------------------------


def test_a_sweep_stores_exactly_the_truth_replies_included(swept: SeedSweeps) -> None:
    stored = {(p.platform_id, p.external_id, p.parent_external_id) for p in swept.first}
    expected = {(p["platform"], p["external_id"], p["parent_external_id"]) for p in swept.truth}
    assert stored == expected, f"seed {swept.seed}"
    assert len(swept.first) == len(swept.truth), f"seed {swept.seed}"


def test_comments_under_found_posts_are_stored_on_thirteen_platforms(swept: SeedSweeps) -> None:
    world = build_world(swept.seed)
    under_found = {
        (p.platform, p.external_id)
        for pairing in PAIRINGS
        for p in world.posts[pairing.platform]
        if p.extra.get("oid") in {thread_id(source) for source in world.posts[pairing.source]}
    }
    platforms = {platform for platform, _ in under_found}
    assert platforms == {p.platform for p in PAIRINGS} and len(platforms) == 13, f"seed {swept.seed}"
    assert under_found <= {(p.platform_id, p.external_id) for p in swept.first}, f"seed {swept.seed}"


def test_a_second_sweep_stores_nothing(swept: SeedSweeps) -> None:
    assert swept.second == [], f"seed {swept.seed}"
    assert {r.status for r in swept.second_results} == {"ok"}, f"seed {swept.seed}"


# --- the follow rule, the budget, re-reading -----------------------------------------------------


@pytest.fixture
def database(database_url: str) -> Iterator[Settings]:
    """Settings on a migrated database (SQLite, and PostgreSQL with WEISU_TEST_DATABASE_URL)."""
    settings = load_settings(env={"WEISU_DATABASE_URL": database_url})
    with session_scope(session_factory_for(settings.database_url)) as session:
        sync_platforms(session, {k: (p.name, p.kind, p.enabled) for k, p in settings.platforms.items()})
    yield settings


def _store(settings: Settings, *posts: dict[str, Any]) -> None:
    rows = [
        {
            "platform_id": "weibo",
            "url": f"https://m.weibo.cn/detail/{p['external_id']}",
            "parent_external_id": None,
            "title": None,
            "text": "今天天气不错",
            "likes": 0,
            "replies": 0,
            "content_hash": p["external_id"],
            "fetched_at": NOW - timedelta(hours=1),
        }
        | p
        for p in posts
    ]
    with session_scope(session_factory_for(settings.database_url)) as session:
        insert_posts(session, rows)


def _plans(settings: Settings, **discover: Any) -> list[ThreadPlan]:
    platform = settings.platforms["weibo_comments"]
    platform = platform.model_copy(update={"discover": platform.discover.model_copy(update=discover)})  # type: ignore[union-attr]
    with session_scope(session_factory_for(settings.database_url)) as session:
        return discovered_threads(session, "weibo_comments", platform, settings.city, now=NOW)


def test_a_post_is_followed_when_it_passes_any_test_of_the_rule(database: Settings) -> None:
    _store(
        database,
        {"external_id": "1", "replies": 5},  # replies ≥ 5
        {"external_id": "2", "replies": 4},  # nothing passes
        {"external_id": "3", "likes": 500},  # likes ≥ 500
        {"external_id": "4", "text": "小区门口的路灯坏了，投诉无门"},  # a keyword
        {"external_id": "5", "text": "龙华区民治大道积水严重"},  # a district
        {"external_id": "6", "text": "转发微博", "parent_external_id": "1"},  # a reply, never a thread
    )
    rule = FollowRule(min_replies=5, min_likes=500, keywords=["投诉"], local_places=True)
    assert [p.key for p in _plans(database, follow=rule)] == ["3", "1", "5", "4"]
    assert [p.key for p in _plans(database, follow=FollowRule(min_replies=5))] == ["1"]
    assert _plans(database, follow=FollowRule()) == []


def test_follows_checks_title_and_text_for_keywords_and_places() -> None:
    post = Post(title="南山区某小区", text="电梯坏了", likes=0, replies=0)
    assert follows(post, FollowRule(local_places=True), ["南山区"]) is True
    assert follows(post, FollowRule(keywords=["电梯"]), []) is True
    assert follows(post, FollowRule(keywords=["停水"], local_places=False), ["南山区"]) is False


def test_a_run_follows_at_most_its_budget_most_engaged_first(database: Settings) -> None:
    _store(database, *({"external_id": str(n), "replies": 5 + n} for n in range(6)))
    plans = _plans(database, budget=2)
    assert [(p.key, p.source, p.replies, p.mark) for p in plans] == [
        ("5", ("weibo", "5"), 10, None),
        ("4", ("weibo", "4"), 9, None),
    ]


def test_a_followed_thread_is_read_again_only_when_its_reply_count_grew(database: Settings) -> None:
    _store(database, {"external_id": "7", "replies": 8}, {"external_id": "8", "replies": 6})
    with session_scope(session_factory_for(database.database_url)) as session:
        for key, replies in (("7", 8), ("8", 5)):
            mark = f"2026-11-28T03:00:00+00:00 {key}00"
            record_thread_read(
                session,
                "weibo_comments",
                key,
                source=("weibo", key),
                replies=replies,
                newest_mark=mark,
                now=NOW,
            )
    assert [(p.key, p.replies, p.mark, p.unseen, p.read_at) for p in _plans(database)] == [
        ("8", 6, ("2026-11-28T03:00:00+00:00", "800"), 1, NOW)
    ]


def test_a_followed_thread_is_read_again_once_its_last_read_is_reread_hours_old(database: Settings) -> None:
    _store(database, {"external_id": "7", "replies": 8}, {"external_id": "8", "replies": 8})
    with session_scope(session_factory_for(database.database_url)) as session:
        for key, hours in (("7", 25), ("8", 23)):
            record_thread_read(
                session,
                "weibo_comments",
                key,
                source=("weibo", key),
                replies=8,
                newest_mark=None,
                now=NOW - timedelta(hours=hours),
            )
    assert [p.key for p in _plans(database, reread_hours=24)] == ["7"]


def test_watched_ids_keep_their_own_marks(database: Settings) -> None:
    with session_scope(session_factory_for(database.database_url)) as session:
        record_thread_read(
            session,
            "weibo_comments",
            "1447076442698299",
            source=None,
            replies=0,
            newest_mark="2026-11-28T01:00:00+00:00 9",
            now=NOW,
        )
        plans = watched_threads(session, "weibo_comments", ["1447076442698299", "42"])
    assert [(p.key, p.source, p.mark) for p in plans] == [
        ("1447076442698299", None, ("2026-11-28T01:00:00+00:00", "9")),
        ("42", None, None),
    ]


# --- the spider: watched ids, depth, per-thread marks --------------------------------------------


def _spider(settings: Settings, platform_id: str, **discover: Any) -> CommentsSpider:
    platform = settings.platforms[platform_id]
    if discover:
        platform = platform.model_copy(
            update={"discover": platform.discover.model_copy(update=discover)}  # type: ignore[union-attr]
        )
    crawler = get_crawler(
        CommentsSpider,
        {"WEISU_SETTINGS": settings, "WEISU_PLATFORM": platform_id, "WEISU_THREAD_STATE": True},
    )
    spider = CommentsSpider.from_crawler(crawler, platform_id=platform_id, platform=platform)
    assert isinstance(spider, CommentsSpider)
    return spider


async def _start_urls(spider: CommentsSpider) -> list[str]:
    return [request.url async for request in spider.start()]


def test_watched_ids_are_read_first_then_the_found_threads(database: Settings) -> None:
    import asyncio

    _store(database, {"external_id": "5100000000000001", "replies": 12})
    urls = asyncio.run(_start_urls(_spider(database, "weibo_comments")))
    assert [u.split("&id=")[1].split("&")[0] for u in urls] == ["1447076442698299", "5100000000000001"]


def _bilibili_page(spider: CommentsSpider, oid: str, roots: list[dict[str, Any]], count: int) -> list[Any]:
    request = spider.page_request(0, oid, 1, pages_seen=1)
    body = json.dumps({"code": 0, "data": {"page": {"count": count}, "replies": roots}}).encode()
    return spider.parse_page(TextResponse(request.url, body=body, request=request))


def test_replies_are_read_down_to_the_depth_limit(database: Settings) -> None:
    grandchild = {"rpid_str": "3", "content": {"message": "三楼"}, "ctime": 1795209300}
    child = {"rpid_str": "2", "content": {"message": "二楼"}, "ctime": 1795209200, "replies": [grandchild]}
    root = {"rpid_str": "1", "content": {"message": "台阶断了"}, "ctime": 1795209100, "replies": [child]}
    for depth, expected in ((0, ["1"]), (1, ["1", "2"]), (2, ["1", "2", "3"])):
        spider = _spider(database, "bilibili", max_depth=depth)
        items = [o for o in _bilibili_page(spider, "9", [root], 1) if isinstance(o, PostItem)]
        assert [i.external_id for i in items] == expected


def _roots(first: int, last: int) -> list[dict[str, Any]]:
    """Top-level comments newest first: rpid n was written at 1795200000 + n seconds."""
    return [
        {"rpid_str": str(n), "content": {"message": f"评论{n}"}, "ctime": 1795200000 + n}
        for n in range(last, first - 1, -1)
    ]


def test_a_thread_read_before_stops_paging_at_its_own_mark(database: Settings) -> None:
    spider = _spider(database, "bilibili")
    mark = (datetime.fromtimestamp(1795200000 + 15, UTC).isoformat(), "15")
    spider.threads["9"] = ThreadPlan("9", ("bilibili_search", "9"), 30, mark)
    old = _bilibili_page(spider, "9", _roots(11, 30), count=40)  # reaches comment 15: stop
    assert [o for o in old if isinstance(o, scrapy.Request)] == []
    spider.threads["8"] = ThreadPlan("8", ("bilibili_search", "8"), 30, None)
    new = _bilibili_page(spider, "8", _roots(11, 30), count=40)  # never read: page 2 follows
    assert [o.url.rsplit("&", 1)[1] for o in new if isinstance(o, scrapy.Request)] == ["pn=2"]


def _reread(unseen: int) -> ThreadPlan:
    """Thread 9, last read in full when comment 15 was its newest; ``unseen`` more comments since."""
    mark = (datetime.fromtimestamp(1795200000 + 15, UTC).isoformat(), "15")
    read_at = datetime.fromtimestamp(1795200000 + 15, UTC) + timedelta(milliseconds=500)
    return ThreadPlan("9", ("bilibili_search", "9"), 30, mark, unseen, read_at)


def test_a_thread_pages_past_its_mark_while_its_post_counts_comments_not_yet_met(database: Settings) -> None:
    spider = _spider(database, "bilibili")
    spider.threads["9"] = _reread(unseen=7)  # comments 16–20 are new: 5 of the 7, two more further down
    out = _bilibili_page(spider, "9", _roots(11, 20), count=40)
    assert [o.url.rsplit("&", 1)[1] for o in out if isinstance(o, scrapy.Request)] == ["pn=2"]
    assert spider.crawler.stats.get_value("weisu/read_past_mark") == 1


def test_a_thread_stops_at_its_mark_once_the_new_comments_account_for_its_post_count(
    database: Settings,
) -> None:
    spider = _spider(database, "bilibili")
    spider.threads["9"] = _reread(unseen=5)  # comments 16–20: all of them
    out = _bilibili_page(spider, "9", _roots(11, 20), count=40)
    assert [o for o in out if isinstance(o, scrapy.Request)] == []


def test_a_new_reply_under_an_older_comment_counts_as_met(database: Settings) -> None:
    spider = _spider(database, "bilibili")
    spider.threads["9"] = _reread(unseen=1)
    roots = _roots(11, 15)
    new_reply = {"rpid_str": "99", "content": {"message": "还没修"}, "ctime": 1795200000 + 99}
    roots[2]["replies"] = [new_reply]  # under comment 13, written after the last read
    out = _bilibili_page(spider, "9", roots, count=40)
    assert [o for o in out if isinstance(o, scrapy.Request)] == []
    assert [o.external_id for o in out if isinstance(o, PostItem) and o.parent_external_id == "13"] == ["99"]


def test_a_found_thread_reads_at_most_max_pages(database: Settings) -> None:
    spider = _spider(database, "bilibili", max_pages=1)
    spider.threads["9"] = ThreadPlan("9", ("bilibili_search", "9"), 30, None)
    out = _bilibili_page(spider, "9", _roots(11, 30), count=40)
    assert [o for o in out if isinstance(o, scrapy.Request)] == []


def test_a_thread_read_in_full_is_recorded_with_its_newest_comment(database: Settings) -> None:
    spider = _spider(database, "bilibili")
    spider.threads["9"] = ThreadPlan("9", ("bilibili_search", "9"), 7, None)
    _bilibili_page(spider, "9", _roots(1, 7), count=7)
    with session_scope(session_factory_for(database.database_url)) as session:
        [plan] = watched_threads(session, "bilibili", ["9"])
    assert plan.mark == (datetime.fromtimestamp(1795200007, UTC).isoformat(), "7")


def test_watched_id_is_the_first_request_without_a_database() -> None:
    from fixtures.samples.replay import make_spider

    settings = load_settings(env={})
    assert "oid=113520947610231" in first_request(make_spider(settings, "bilibili")).url


# --- the sweep's order and the configuration -----------------------------------------------------


def test_comment_platforms_start_after_the_platforms_they_discover_from() -> None:
    settings = load_settings(env={})
    keys = ["bilibili", "weibo", "weibo_comments", "bilibili_search", "douyin", "xigua"]
    assert crawl_phases(settings, keys) == (
        ["weibo", "bilibili_search", "douyin", "xigua"],
        ["bilibili", "weibo_comments"],
    )


def test_discover_on_a_platform_that_is_not_comments_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    raw = (Path(__file__).resolve().parents[2] / "config.yaml").read_text(encoding="utf-8")
    config.write_text(
        raw.replace(
            "        label: zhihu-search\n", "        label: zhihu-search\n    discover: {from: [weibo]}\n"
        ),
        encoding="utf-8",
    )
    # A json_feed platform's model has no discover key: it is refused as unknown to the kind.
    with pytest.raises(ConfigError, match=r"platforms\.zhihu\.discover: Extra inputs are not permitted"):
        load_settings(env={"WEISU_CONFIG": str(config)})


def test_discover_from_an_unknown_platform_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    raw = (Path(__file__).resolve().parents[2] / "config.yaml").read_text(encoding="utf-8")
    config.write_text(raw.replace("from: [bilibili_search]", "from: [bilibili_serch]"), encoding="utf-8")
    with pytest.raises(ConfigError, match="bilibili_serch"):
        load_settings(env={"WEISU_CONFIG": str(config)})


def test_a_comment_with_more_replies_than_inlined_is_read_through_the_reply_api(database: Settings) -> None:
    spider = _spider(database, "bilibili")
    inlined = [
        {"rpid_str": str(n), "parent_str": "1", "content": {"message": f"回复{n}"}, "ctime": 1795209200 + n}
        for n in (2, 3, 4)
    ]
    root = {
        "rpid": 1,
        "oid": 9,
        "rpid_str": "1",
        "rcount": 5,
        "content": {"message": "台阶断了"},
        "replies": inlined,
    }
    [more] = [o for o in _bilibili_page(spider, "9", [root], 1) if isinstance(o, scrapy.Request)]
    assert more.url == "https://api.bilibili.com/x/v2/reply/reply?type=1&oid=9&root=1&ps=20&pn=1"
    listed = inlined + [
        {"rpid_str": str(n), "parent_str": "1", "content": {"message": f"回复{n}"}, "ctime": 1795209200 + n}
        for n in (5, 6)
    ]
    body = json.dumps({"code": 0, "data": {"page": {"count": 5}, "replies": listed}}).encode()
    out = spider.parse_replies(TextResponse(more.url, body=body, request=more))
    assert [(o.external_id, o.parent_external_id) for o in out] == [("5", "1"), ("6", "1")]


def test_the_reply_api_is_not_read_when_the_depth_limit_is_top_level_only(database: Settings) -> None:
    spider = _spider(database, "bilibili", max_depth=0)
    root = {
        "rpid": 1,
        "oid": 9,
        "rpid_str": "1",
        "rcount": 5,
        "content": {"message": "台阶断了"},
        "replies": [],
    }
    assert [o for o in _bilibili_page(spider, "9", [root], 1) if isinstance(o, scrapy.Request)] == []


# --- board threads past their first post ---------------------------------------------------------


def _tieba_floor(floor: int, pid: str, text: str) -> str:
    return (
        f'<div class="l_post"><a class="p_author_name">吧友{floor}</a>'
        f'<div id="post_content_{pid}" class="d_post_content">{text}</div>'
        f'<span class="tail-info">{floor}楼</span><span class="tail-info">2026-11-28 10:0{floor}</span></div>'
    )


def test_a_board_thread_is_read_past_its_first_post_across_its_pages() -> None:
    from fixtures.samples.replay import make_spider

    spider = make_spider(load_settings(env={}), "tieba")
    first = scrapy.Request("https://tieba.baidu.com/p/77", meta={"external_id": "77", "label": "tieba"})
    pager = '<li class="l_pager pb_list_pager"><a href="/p/77?pn=2">下一页</a></li>'
    page = f'<h3 class="core_title_txt" title="台阶断了">台阶断了</h3>{_tieba_floor(1, "77", "台阶断了")}'
    page += _tieba_floor(2, "501", "顶") + _tieba_floor(3, "502", "同问") + pager
    out = spider.parse_detail(TextResponse(first.url, body=page.encode("gb18030"), request=first))
    items = [
        (o.external_id, o.parent_external_id, normalise_text(o.text)) for o in out if isinstance(o, PostItem)
    ]
    assert items == [("77", None, "台阶断了"), ("501", "77", "顶"), ("502", "77", "同问")]
    [second] = [o for o in out if isinstance(o, scrapy.Request)]
    assert (second.url, second.meta["thread_page"]) == ("https://tieba.baidu.com/p/77?pn=2", 2)
    page2 = _tieba_floor(4, "503", "已反映")
    out2 = spider.parse_detail(TextResponse(second.url, body=page2.encode("gb18030"), request=second))
    assert [(o.external_id, o.parent_external_id) for o in out2 if isinstance(o, PostItem)] == [("503", "77")]
    assert [o for o in out2 if isinstance(o, scrapy.Request)] == []
