"""Crawl health reaches people: after real crawls of the platform simulator, a platform that answers 500
to everything and one that suddenly shows a login wall each raise one health alert, in Chinese, saying
what we miss since when; the platform crawled clean raises none."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from alert_receivers import deliver_after_runs
from simulated import Simulator, crawl_runs, crawl_settings, migrated_sqlite

from crawlers.runner import run_crawl
from settings import Settings
from storage.models import CrawlRun
from verify.web.display import local_time

FAILING, WALLED, CLEAN = "heimao", "jutousu", "people_tousu"


def set_walls(sim: Simulator, **walls: str) -> None:
    httpx.post(f"{sim.base}/_walls", params=walls, timeout=10).raise_for_status()


@pytest.fixture(scope="module")
def outcome(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as env:
        env.delenv("WEISU_JUTOUSU_COOKIE", raising=False)
        settings: Settings = crawl_settings(sim.base, migrated_sqlite(tmp_path_factory.mktemp("alerts")))
        run_crawl(settings, [FAILING, WALLED, CLEAN])
        sim.set_faults(error_rate=1)
        run_crawl(settings, [FAILING])
        sim.set_faults()
        set_walls(sim, **{WALLED: "login_redirect"})
        run_crawl(settings, [WALLED, CLEAN])
        set_walls(sim)
        runs = crawl_runs(settings)
        settings, counts, received = deliver_after_runs(settings, runs)
        yield {"settings": settings, "runs": runs, "counts": counts, "bodies": received.bodies}


def _runs_of(outcome: dict[str, Any], platform: str) -> list[CrawlRun]:
    return [run for run in outcome["runs"] if run.platform_id == platform]


def test_each_broken_platform_alerts_once_and_the_clean_one_not(outcome: dict[str, Any]) -> None:
    assert outcome["counts"] == {"new": 2, "sent": 2, "retrying": 0, "failed": 0}
    assert sorted(body["event"] for body in outcome["bodies"]) == sorted(
        [
            f"health:{FAILING}:zero_items:{_runs_of(outcome, FAILING)[1].id}",
            f"health:{WALLED}:access:{_runs_of(outcome, WALLED)[1].id}",
        ]
    )


def test_the_platform_answering_500_says_it_failed_and_what_it_usually_brings(
    outcome: dict[str, Any],
) -> None:
    clean, failed = _runs_of(outcome, FAILING)
    assert (failed.status, failed.items, clean.status) == ("failed", 0, "ok")
    zone = ZoneInfo(outcome["settings"].schedules.timezone)
    text = next(body["text"] for body in outcome["bodies"] if body["event"].startswith(f"health:{FAILING}:"))
    assert text == (
        f"黑猫投诉：最近 1 次抓取没有任何条目（最近一次抓取失败，{failed.errors} 个错误；"
        f"此前 1 次正常抓取中位数 {clean.items} 条），"
        f"自 {local_time(failed.started_at, zone)} 起看不到该平台的新帖。"
    )


def test_the_walled_platform_quotes_the_wall(outcome: dict[str, Any]) -> None:
    walled = _runs_of(outcome, WALLED)[1]
    zone = ZoneInfo(outcome["settings"].schedules.timezone)
    body = next(body for body in outcome["bodies"] if body["event"].startswith(f"health:{WALLED}:"))
    assert body["title"] == "【抓取健康】聚投诉"
    assert body["text"] == (
        f"聚投诉：需要登录，自 {local_time(walled.started_at, zone)} 起抓不到该平台的帖子"
        "（连续 1 次抓取受阻）。平台提示：需要登录：入口 jutousu-search 跳转到登录页，"
        "请在环境变量 WEISU_JUTOUSU_COOKIE 中配置有效的 Cookie"
    )
