"""A login wall, a captcha page and an expired cookie are recognised per response and recorded as the
platform's access status with a reason in Chinese; the walled entry point stops, the others go on, and
a later clean run clears the status.

One simulator, three crawls of the same platforms: clean, walled (``/_walls``), clean again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from scrapy.http import HtmlResponse, TextResponse
from simulated import Simulator, crawl_runs, crawl_settings, keys_of, migrated_sqlite, simulator, stored_posts
from sqlalchemy import select

from crawlers.runner import run_crawl
from crawlers.walls import WallRules
from fixtures.simulator.walls import VALID_CREDENTIAL
from settings import ConfigError, Settings, WallPatterns, load_settings
from storage.db import session_factory_for, session_scope
from storage.models import AccessStatus, CrawlRun, CrawlRunStatus, Platform

EXPIRED = "SESSDATA=weisu-test-expired-0b9e"
#: platform → the wall the simulator puts up in the walled crawl.
WALLS = {
    "jutousu": "login_redirect",
    "meituan": "login_page",
    "dianping": "captcha",
    "bilibili_search": "expired_cookie",
    "toutiao": "expired_cookie",
    "weibo": "expired_cookie",
}
#: Only weibo's first keyword is walled: its second one is another entry point.
WALLED_KEYWORD = "深圳"
OPEN_KEYWORD = "停水"
CLEAN = "heimao"
PLATFORMS = [*WALLS, CLEAN]


@dataclass(frozen=True)
class Crawls:
    settings: Settings
    sim: Simulator
    clean: dict[str, CrawlRun]
    walled: dict[str, CrawlRun]
    again: dict[str, CrawlRun]
    #: Platform rows as the walled crawl left them, then as the clean crawl after it left them.
    after_walls: dict[str, tuple[str | None, str | None]]
    after_clean: dict[str, tuple[str | None, str | None]]
    #: weibo posts the walled crawl stored, and those a clean crawl of its open keyword alone stores.
    stored_behind_walls: set[str]
    open_keyword_posts: set[str]
    #: weibo's high-water mark after the walled crawl, and its posts stored after the clean one.
    mark_after_walls: str | None
    weibo_stored: set[tuple[str, str]]
    truth: list[dict[str, Any]]


def _runs(settings: Settings, after: int) -> dict[str, CrawlRun]:
    return {run.platform_id: run for run in crawl_runs(settings) if run.id > after}


def _platform_status(settings: Settings) -> dict[str, tuple[str | None, str | None]]:
    with session_scope(session_factory_for(settings.database_url)) as session:
        rows = session.execute(select(Platform.id, Platform.access_status, Platform.access_reason))
        return {key: (status, reason) for key, status, reason in rows}


def set_walls(sim: Simulator, **walls: str) -> None:
    httpx.post(f"{sim.base}/_walls", params=walls, timeout=10).raise_for_status()


def _open_keyword_posts(sim: Simulator, folder: Path) -> set[str]:
    """What weibo's open keyword alone stores, crawled clean into a database of its own."""
    settings = crawl_settings(sim.base, migrated_sqlite(folder))
    weibo = settings.platforms["weibo"]
    entry = weibo.entry_points[0].changed(keywords=[OPEN_KEYWORD])
    weibo = weibo.changed(entry_points=[entry, *weibo.entry_points[1:]])
    settings = settings.changed(platforms={**settings.platforms, "weibo": weibo})
    run_crawl(settings, ["weibo"])
    return {post.external_id for post in stored_posts(settings)}


@pytest.fixture(scope="module")
def crawls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawls]:
    with simulator() as sim, pytest.MonkeyPatch.context() as env:
        env.setenv("WEISU_TOUTIAO_COOKIE", EXPIRED)
        for name in ("WEISU_JUTOUSU_COOKIE", "WEISU_MEITUAN_COOKIE", "WEISU_DIANPING_COOKIE"):
            env.delenv(name, raising=False)
        open_posts = _open_keyword_posts(sim, tmp_path_factory.mktemp("open-keyword"))
        settings = crawl_settings(sim.base, migrated_sqlite(tmp_path_factory.mktemp("walls")))
        # weibo is first crawled behind its wall, so what that crawl stores is new.
        run_crawl(settings, [key for key in PLATFORMS if key != "weibo"])
        clean = _runs(settings, 0)
        set_walls(sim, **WALLS, **{"weibo.only": f"q={WALLED_KEYWORD}"})
        run_crawl(settings, PLATFORMS)
        walled = _runs(settings, max(run.id for run in clean.values()))
        after_walls = _platform_status(settings)
        behind = {p.external_id for p in stored_posts(settings) if p.platform_id == "weibo"}
        with session_scope(session_factory_for(settings.database_url)) as session:
            mark = session.scalar(select(Platform.high_water_mark).where(Platform.id == "weibo"))
        set_walls(sim)
        run_crawl(settings, PLATFORMS)
        again = _runs(settings, max(run.id for run in walled.values()))
        weibo = {(p.platform_id, p.external_id) for p in stored_posts(settings) if p.platform_id == "weibo"}
        yield Crawls(
            settings,
            sim,
            clean,
            walled,
            again,
            after_walls,
            _platform_status(settings),
            behind,
            open_posts,
            mark,
            weibo,
            sim.truth(),
        )


def test_a_redirect_to_a_login_page_is_a_login_wall_with_its_reason(crawls: Crawls) -> None:
    assert crawls.after_walls["jutousu"] == (
        AccessStatus.LOGIN_WALL,
        "需要登录：入口 jutousu-search 跳转到登录页，请在环境变量 WEISU_JUTOUSU_COOKIE 中配置有效的 Cookie",
    )


def test_a_login_page_in_place_of_the_answer_is_a_login_wall(crawls: Crawls) -> None:
    assert crawls.after_walls["meituan"] == (
        AccessStatus.LOGIN_WALL,
        "需要登录：入口 meituan-comments 返回登录页面，请在环境变量 WEISU_MEITUAN_COOKIE 中配置有效的 Cookie",
    )


def test_a_captcha_page_is_recorded_as_a_captcha(crawls: Crawls) -> None:
    assert crawls.after_walls["dianping"] == (
        AccessStatus.CAPTCHA,
        "遇到验证码：入口 dianping-reviews 返回验证码页面，该入口本次已停止；请稍后再试或调低抓取频率",
    )


def test_a_not_signed_in_json_code_without_credentials_is_a_login_wall(crawls: Crawls) -> None:
    assert crawls.after_walls["bilibili_search"] == (
        AccessStatus.LOGIN_WALL,
        "需要登录：入口 bilibili-search 接口返回未登录（code = -101），"
        "请为该平台设置 credentials_env，并在该环境变量中配置有效的 Cookie",
    )


def test_a_not_signed_in_json_code_on_one_keyword_is_a_login_wall(crawls: Crawls) -> None:
    assert crawls.after_walls["weibo"] == (
        AccessStatus.LOGIN_WALL,
        "需要登录：入口 weibo-search 接口返回未登录（ok = -100），"
        "请为该平台设置 credentials_env，并在该环境变量中配置有效的 Cookie",
    )


def test_a_refused_cookie_is_recorded_as_expired(crawls: Crawls) -> None:
    assert crawls.after_walls["toutiao"] == (
        AccessStatus.COOKIE_EXPIRED,
        "Cookie 已失效：入口 toutiao-search 接口返回未登录（message：用户未登录），"
        "请更新环境变量 WEISU_TOUTIAO_COOKIE 中的 Cookie",
    )


def test_the_run_records_the_same_status_as_the_platform(crawls: Crawls) -> None:
    on_runs = {key: (run.access_status, run.access_reason) for key, run in crawls.walled.items()}
    assert on_runs == {key: crawls.after_walls[key] for key in PLATFORMS}


def test_a_platform_without_a_wall_is_ok(crawls: Crawls) -> None:
    assert crawls.after_walls[CLEAN] == (AccessStatus.OK, None)
    assert crawls.walled[CLEAN].posts_stored == 0  # nothing new: the first crawl stored it all


def test_a_wall_is_neither_a_malformed_page_nor_a_layout_change_nor_an_error(crawls: Crawls) -> None:
    walled = [crawls.walled[key] for key in WALLS]
    assert [(run.layout_changed, run.health_reason, run.errors) for run in walled] == [
        (False, None, 0)
    ] * len(WALLS)
    assert [run.stats.get("weisu/malformed_pages", 0) for run in walled] == [0] * len(WALLS)
    assert [run.stats.get("weisu/malformed_retried", 0) for run in walled] == [0] * len(WALLS)


def test_a_wall_yields_no_posts(crawls: Crawls) -> None:
    fully_walled = [key for key in WALLS if key != "weibo"]
    assert {key: crawls.walled[key].items for key in fully_walled} == dict.fromkeys(fully_walled, 0)


def test_the_walled_entry_point_stops_at_its_first_page(crawls: Crawls) -> None:
    walls = {key: crawls.walled[key].stats.get(f"weisu/walls/{crawls.after_walls[key][0]}") for key in WALLS}
    # The first page of each walled keyword: toutiao has two, weibo one walled and one open.
    expected = {"jutousu": 1, "meituan": 1, "dianping": 1, "bilibili_search": 1, "toutiao": 2, "weibo": 1}
    assert walls == expected


def test_the_platforms_other_entry_points_still_store_their_posts(crawls: Crawls) -> None:
    assert crawls.open_keyword_posts  # the open keyword has posts of its own
    assert crawls.stored_behind_walls == crawls.open_keyword_posts
    assert crawls.walled["weibo"].posts_stored == len(crawls.open_keyword_posts)


def test_a_walled_run_does_not_move_the_high_water_mark(crawls: Crawls) -> None:
    assert crawls.walled["weibo"].cursor is not None  # the open keyword reached new posts...
    assert crawls.mark_after_walls is None  # ...but the platform's mark stays where it was


def test_a_walled_run_is_never_clean_so_nothing_it_stored_counts_as_settled(crawls: Crawls) -> None:
    # weibo's open keyword stored posts behind a walled one: partial; the others stopped at once.
    statuses = {key: crawls.walled[key].status for key in WALLS}
    assert statuses == dict.fromkeys(WALLS, CrawlRunStatus.FAILED) | {"weibo": CrawlRunStatus.PARTIAL}
    assert crawls.walled[CLEAN].status == CrawlRunStatus.OK


def test_a_walled_request_is_counted_as_walled_not_as_ignored(crawls: Crawls) -> None:
    counted = {
        key: (run.stats.get("weisu/walled_requests"), run.stats.get("weisu/ignored_requests"))
        for key, run in crawls.walled.items()
        if key in ("weibo", "toutiao")
    }
    assert counted == {"weibo": (1, None), "toutiao": (2, None)}


def test_the_next_clean_run_stores_what_the_wall_kept_out(crawls: Crawls) -> None:
    expected = keys_of([p for p in crawls.truth if p["platform"] == "weibo" and not p["robots_disallowed"]])
    assert crawls.weibo_stored == expected
    assert crawls.again["weibo"].posts_stored == len(expected) - len(crawls.open_keyword_posts)


def test_the_login_page_is_never_fetched(crawls: Crawls) -> None:
    assert [url for url in crawls.sim.request_log if "/passport/" in url] == []


def test_a_clean_run_clears_the_status(crawls: Crawls) -> None:
    assert {key: crawls.after_clean[key] for key in PLATFORMS} == dict.fromkeys(
        PLATFORMS, (AccessStatus.OK, None)
    )
    assert {key: run.access_status for key, run in crawls.again.items()} == dict.fromkeys(
        PLATFORMS, AccessStatus.OK
    )


# --- recognition, one response at a time ----------------------------------------------------------


def _rules(key: str) -> WallRules:
    return WallRules(load_settings(env={}).platforms[key])


def test_a_board_page_whose_posts_mention_captcha_words_is_not_a_wall() -> None:
    page = (
        "<html><head><title>收到冒充银行的验证码短信 - 深圳吧</title></head><body>"
        '<ul id="thread_list"><li class="j_thread_list" data-tid="1"><a class="j_th_tit" href="/p/1">'
        "收到冒充银行的验证码短信，请先登录核实？</a></li></ul></body></html>"
    )
    response = HtmlResponse("https://tieba.baidu.com/f?kw=深圳", body=page, encoding="utf-8")
    assert _rules("tieba").recognise(response, credential_sent=False) is None


def test_a_json_answer_whose_posts_mention_login_words_is_not_a_wall() -> None:
    body = (
        '{"ok": 1, "data": {"cards": [{"mblog": {"id": "1", "text": "账号未登录就扣费，验证码也没收到"}}]}}'
    )
    response = TextResponse("https://m.weibo.cn/api/container/getIndex", body=body, encoding="utf-8")
    assert _rules("weibo").recognise(response, credential_sent=False) is None


def test_a_403_with_a_login_form_is_a_login_wall() -> None:
    page = '<html><head><title>知乎</title></head><body><form><input type="password"></form></body></html>'
    response = HtmlResponse("https://www.zhihu.com/api/v4/search_v3", status=403, body=page, encoding="utf-8")
    wall = _rules("zhihu").recognise(response, credential_sent=False)
    assert wall is not None and (wall.status, wall.how) == (
        AccessStatus.LOGIN_WALL,
        "返回 HTTP 403 和登录页面",
    )


def test_a_plain_403_is_not_a_wall() -> None:
    response = HtmlResponse("https://www.zhihu.com/x", status=403, body=b"<html>Forbidden</html>")
    assert _rules("zhihu").recognise(response, credential_sent=False) is None


def test_a_platform_pattern_from_config_is_recognised() -> None:
    settings = load_settings(env={})
    walls = WallPatterns.model_validate({"captcha_json": [{"path": "data.risk", "values": [1]}]})
    platform = settings.platforms["heimao"].changed(walls=walls)
    body = '{"code": 0, "data": {"risk": 1, "list": []}}'
    response = TextResponse("https://tousu.sina.com.cn/api/index/feed", body=body, encoding="utf-8")
    wall = WallRules(platform).recognise(response, credential_sent=True)
    assert wall is not None and (wall.status, wall.how) == (
        AccessStatus.CAPTCHA,
        "接口要求验证（data.risk = 1）",
    )


def test_a_bad_wall_pattern_stops_the_config_naming_its_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(
        "platforms:\n  x:\n    name: X\n    kind: rss\n    base_url: https://x.example\n"
        "    entry_points: [{url: /feed}]\n    walls: {captcha_markers: ['(']}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as error:
        load_settings(path, env={})
    assert str(error.value).startswith(f"{path}: platforms.x.walls.captcha_markers: Value error, '(' is not")


# --- the simulator's walls --------------------------------------------------------------------------


def test_the_simulator_refuses_an_unknown_wall_naming_it(crawls: Crawls) -> None:
    answer = httpx.post(f"{crawls.sim.base}/_walls", params={"jutousu": "paywall"}, timeout=10)
    kinds = "login_redirect, login_page, captcha, expired_cookie"
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": f"jutousu: unknown wall 'paywall' (one of {kinds})"},
    )


def test_the_simulator_lets_the_valid_session_through_a_login_wall(crawls: Crawls) -> None:
    set_walls(crawls.sim, heimao="login_redirect")
    url = f"{crawls.sim.base}/p/heimao/api/index/feed?type=1&page_size=10&page=1"
    try:
        walled = httpx.get(url, timeout=10)
        signed_in = httpx.get(url, headers={"Cookie": VALID_CREDENTIAL}, timeout=10)
    finally:
        set_walls(crawls.sim)
    assert (walled.status_code, walled.headers["location"].split("?")[0]) == (302, "/passport/heimao/login")
    assert signed_in.status_code == 200 and signed_in.json()["result"]["data"]["lists"]


def test_a_platforms_own_marker_from_config_yaml_is_added_to_the_generic_ones() -> None:
    page = "<html><body><h1>登录聚投诉</h1><p>手机号快捷登录</p></body></html>"
    api = "/front/api/search/searchPostList.do?pageNo=1&title=深圳"
    jutousu = HtmlResponse("https://ts.21cn.com" + api, body=page, encoding="utf-8")
    wall = _rules("jutousu").recognise(jutousu, credential_sent=False)
    assert wall is not None and (wall.status, wall.how) == (AccessStatus.LOGIN_WALL, "返回登录页面")
    heimao = HtmlResponse("https://tousu.sina.com.cn/api/index/feed", body=page, encoding="utf-8")
    assert _rules("heimao").recognise(heimao, credential_sent=False) is None
