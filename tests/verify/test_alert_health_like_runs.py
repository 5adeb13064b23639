"""Crawl health compares like with like: a run that read its entry points to the end is measured against
earlier runs that did, never against the incremental passes (which stop at content already stored and so
bring only what appeared since the pass before, a handful every 15 minutes, fewer at night)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from settings import AlertHealthSettings
from storage.models import CrawlRun
from verify.alerts.health import HealthRule, assess, expected_volume

RULES = AlertHealthSettings(volume_runs=10, volume_min_runs=5, volume_p_value=0.001, failure_streak=3)
ZONE = ZoneInfo("Asia/Shanghai")
#: The nightly sweep of 2026-11-23 02:00 in Shanghai; run n starts n × 15 minutes later.
T0 = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
SEEN = {"weisu/stopped_at_seen": True}


def run(run_id: int, items: int, **fields: Any) -> CrawlRun:
    started = T0 + timedelta(minutes=15 * run_id)
    values = {"errors": 0, "layout_changed": False, "stats": {}, "status": "ok", **fields}
    return CrawlRun(
        id=run_id, platform_id="weibo", started_at=started, finished_at=started + timedelta(minutes=2),
        items=items, **values,
    )  # fmt: skip


def newest_first(runs: list[CrawlRun]) -> list[CrawlRun]:
    return sorted(runs, key=lambda r: r.id, reverse=True)


#: Six runs that read to the end (20 items each, median 20), each followed by two incremental passes
#: that stopped at stored content with 2 or 3 new items: the ten newest clean runs have median 3.
HISTORY = [
    r
    for k in range(6)
    for r in (
        run(3 * k + 1, [20, 22, 18, 21, 19, 20][k]),
        run(3 * k + 2, 2, stats=SEEN),
        run(3 * k + 3, 3, stats=SEEN),
    )
]


def test_the_yardstick_of_a_run_that_read_to_the_end_is_the_runs_that_did() -> None:
    expected = expected_volume(newest_first(HISTORY), RULES, like=run(19, 5))
    assert expected is not None
    assert (expected.median, expected.runs) == (20.0, 6)


def test_the_yardstick_of_an_incremental_pass_is_the_incremental_passes() -> None:
    expected = expected_volume(newest_first(HISTORY), RULES, like=run(19, 1, stats=SEEN))
    assert expected is not None
    assert (expected.median, expected.runs) == (2.5, 10)


def test_without_a_kind_every_clean_run_counts() -> None:
    expected = expected_volume(newest_first(HISTORY), RULES)
    assert expected is not None
    assert (expected.median, expected.runs) == (3.0, 10)


def test_a_run_that_lost_most_of_its_depth_is_far_below_though_incremental_passes_are_smaller() -> None:
    problem = assess("weibo", "微博", newest_first([*HISTORY, run(19, 5)]), RULES, ZONE)
    assert problem is not None
    assert (problem.rule, problem.event_key) == (HealthRule.FAR_BELOW, "health:weibo:far_below:19")
    assert problem.text == (
        "微博：最近一次抓取只有 5 条，远低于近 6 次正常抓取的中位数 20 条（泊松下尾概率 7.2e-05），"
        "自 2026-11-23 06:45 起每次约少看到 15 条帖子。"
    )


def test_a_quiet_incremental_pass_after_full_runs_raises_nothing() -> None:
    assert assess("weibo", "微博", newest_first([*HISTORY, run(19, 1, stats=SEEN)]), RULES, ZONE) is None


def test_a_full_run_is_not_judged_before_five_full_runs_however_many_passes() -> None:
    short = [r for r in HISTORY if r.id > 6]  # four full runs, eight passes
    assert assess("weibo", "微博", newest_first([*short, run(19, 5)]), RULES, ZONE) is None
