"""Crawl health alerts: a platform learns its expected volume from its recent clean runs, and each rule
(login wall, error streak, layout change, no items, far below) says in Chinese what we miss, since when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from settings import AlertHealthSettings
from storage.models import AccessStatus, CrawlRun
from verify.alerts.health import HealthRule, assess, expected_volume, platform_problems, poisson_lower_tail

RULES = AlertHealthSettings(volume_runs=10, volume_min_runs=5, volume_p_value=0.001, failure_streak=3)
ZONE = ZoneInfo("Asia/Shanghai")
#: Run n starts n hours after this (08:00 in Shanghai).
T0 = datetime(2026, 11, 29, 0, 0, tzinfo=UTC)


def run(run_id: int, items: int, status: str = "ok", **fields: Any) -> CrawlRun:
    started = T0 + timedelta(hours=run_id)
    values = {"errors": 0, "layout_changed": False, "stats": {}, **fields}
    return CrawlRun(
        id=run_id, platform_id="heimao", started_at=started, finished_at=started + timedelta(minutes=5),
        status=status, items=items, **values,
    )  # fmt: skip


def newest_first(*runs: CrawlRun) -> list[CrawlRun]:
    return sorted(runs, key=lambda r: r.id, reverse=True)


USUAL = [run(i, n) for i, n in enumerate([20, 22, 18, 21, 19, 20], start=1)]  # median 20


def test_the_expected_volume_is_the_median_of_the_recent_clean_runs() -> None:
    history = newest_first(*USUAL, run(7, 0, layout_changed=True), run(8, 3, "partial"))
    assert expected_volume(history, RULES) is not None
    assert (expected_volume(history, RULES).median, expected_volume(history, RULES).runs) == (20.0, 6)


def test_the_poisson_lower_tail_matches_the_closed_form() -> None:
    assert poisson_lower_tail(0, 20) == pytest.approx(2.061153622438558e-09)
    assert poisson_lower_tail(5, 20) == pytest.approx(7.190884052842882e-05)


def test_a_run_far_below_the_expected_volume_says_how_much_we_miss() -> None:
    problem = assess("heimao", "黑猫投诉", newest_first(*USUAL, run(7, 5)), RULES, ZONE)
    assert problem is not None
    assert (problem.rule, problem.event_key) == (HealthRule.FAR_BELOW, "health:heimao:far_below:7")
    assert problem.text == (
        "黑猫投诉：最近一次抓取只有 5 条，远低于近 6 次正常抓取的中位数 20 条（泊松下尾概率 7.2e-05），"
        "自 2026-11-29 15:00 起每次约少看到 15 条帖子。"
    )


def test_a_second_quiet_run_continues_the_same_episode() -> None:
    problem = assess("heimao", "黑猫投诉", newest_first(*USUAL, run(7, 5), run(8, 4)), RULES, ZONE)
    assert problem is not None
    assert (problem.event_key, problem.since) == ("health:heimao:far_below:7", T0 + timedelta(hours=7))


def test_a_run_within_the_usual_spread_raises_nothing() -> None:
    assert assess("heimao", "黑猫投诉", newest_first(*USUAL, run(7, 15)), RULES, ZONE) is None


def test_no_far_below_alert_before_the_minimum_history() -> None:
    assert assess("heimao", "黑猫投诉", newest_first(*USUAL[:4], run(7, 2)), RULES, ZONE) is None


def test_a_run_that_stopped_at_stored_content_is_never_far_below() -> None:
    seen = run(7, 2, stats={"weisu/stopped_at_seen": 1})
    assert assess("heimao", "黑猫投诉", newest_first(*USUAL, seen), RULES, ZONE) is None


def test_a_run_with_no_items_names_the_usual_volume() -> None:
    problem = assess("heimao", "黑猫投诉", newest_first(*USUAL, run(7, 0), run(8, 0)), RULES, ZONE)
    assert problem is not None
    assert problem.event_key == "health:heimao:zero_items:7"
    assert problem.text == (
        "黑猫投诉：最近 2 次抓取没有任何条目（此前 6 次正常抓取中位数 20 条），"
        "自 2026-11-29 15:00 起看不到该平台的新帖。"
    )


def test_a_failed_run_with_no_items_says_it_failed() -> None:
    problem = assess("heimao", "黑猫投诉", newest_first(*USUAL, run(7, 0, "failed", errors=6)), RULES, ZONE)
    assert problem is not None
    assert problem.event_key == "health:heimao:zero_items:7"
    assert problem.text == (
        "黑猫投诉：最近 1 次抓取没有任何条目（最近一次抓取失败，6 个错误；此前 6 次正常抓取中位数 20 条），"
        "自 2026-11-29 15:00 起看不到该平台的新帖。"
    )


def test_a_failed_run_flagged_as_a_layout_change_is_reported_as_failed() -> None:
    failed = run(7, 0, "failed", errors=6, layout_changed=True, health_reason="本次未解析出任何条目")
    problem = assess("heimao", "黑猫投诉", newest_first(*USUAL, failed), RULES, ZONE)
    assert problem is not None and problem.event_key == "health:heimao:zero_items:7"


def test_a_platform_that_never_brought_anything_has_no_expectation_to_miss() -> None:
    assert assess("heimao", "黑猫投诉", [run(2, 0), run(1, 0)], RULES, ZONE) is None


def test_a_streak_of_failed_runs_raises_an_error_streak() -> None:
    history = newest_first(
        *USUAL, run(7, 3, "partial", errors=2), run(8, 0, "failed"), run(9, 0, "failed", errors=4)
    )
    problem = assess("heimao", "黑猫投诉", history, RULES, ZONE)
    assert problem is not None
    assert problem.event_key == "health:heimao:failure_streak:7"
    assert problem.text == (
        "黑猫投诉：连续 3 次抓取失败或不完整（最近一次失败，4 个错误），"
        "自 2026-11-29 15:00 起该平台的帖子可能漏抓。"
    )


def test_two_partial_runs_are_not_yet_a_streak() -> None:
    history = newest_first(*USUAL, run(7, 12, "partial"), run(8, 15, "partial"))
    assert assess("heimao", "黑猫投诉", history, RULES, ZONE) is None


def test_a_login_wall_names_the_wall_and_the_platforms_message() -> None:
    wall = {"access_status": AccessStatus.LOGIN_WALL, "access_reason": "入口 search 跳转到登录页\n请登录"}
    history = newest_first(*USUAL, run(7, 0, "failed", **wall), run(8, 0, "failed", **wall))
    problem = assess("jutousu", "聚投诉", history, RULES, ZONE)
    assert problem is not None
    assert problem.event_key == "health:jutousu:access:7"
    assert problem.text == (
        "聚投诉：需要登录，自 2026-11-29 15:00 起抓不到该平台的帖子（连续 2 次抓取受阻）。"
        "平台提示：入口 search 跳转到登录页 请登录"
    )


def test_a_layout_change_quotes_the_crawlers_reason() -> None:
    reason = "本次未解析出任何条目，此前5次运行最多 22 条"
    history = newest_first(*USUAL, run(7, 0, layout_changed=True, health_reason=reason))
    problem = assess("heimao", "黑猫投诉", history, RULES, ZONE)
    assert problem is not None
    assert problem.event_key == "health:heimao:layout:7"
    assert problem.text == (
        "黑猫投诉：疑似改版（本次未解析出任何条目，此前5次运行最多 22 条），"
        "自 2026-11-29 15:00 起该平台的帖子可能解析不出、漏抓。"
    )


def test_a_healthy_platform_raises_nothing() -> None:
    assert assess("heimao", "黑猫投诉", newest_first(*USUAL, run(7, 21)), RULES, ZONE) is None


def test_platforms_whose_newest_run_is_old_are_not_assessed() -> None:
    runs = {"heimao": newest_first(*USUAL, run(7, 0, "failed"), run(8, 0, "failed"), run(9, 0, "failed"))}
    names = {"heimao": "黑猫投诉"}
    recent = platform_problems(
        runs, names, RULES, ZONE, now=T0 + timedelta(hours=10), window=timedelta(hours=2)
    )
    stale = platform_problems(
        runs, names, RULES, ZONE, now=T0 + timedelta(hours=20), window=timedelta(hours=2)
    )
    assert ([p.rule for p in recent], stale) == ([HealthRule.FAILURE_STREAK], [])
