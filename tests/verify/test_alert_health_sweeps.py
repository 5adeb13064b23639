"""Crawl health over distributed sweeps: each worker's share of a platform's sweep is one crawl_runs row;
the rules read a settled sweep's shares as one run, so a share that fetched a third of the platform (or
nothing of it) raises no alert, while a sweep that really lost its posts still does."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from test_alert_health import RULES, USUAL, newest_first, run

from storage.models import CrawlRun
from verify.alerts.health import HealthRule, platform_problems, whole_runs

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


def share(run_id: int, items: int, sweep: str = "s1", shares: int | None = 3, **fields: Any) -> CrawlRun:
    stats = {"weisu/sweep": sweep} | ({"weisu/sweep_shares": shares} if shares is not None else {})
    return run(run_id, items, stats=stats, **fields)


def _problems(history: list[CrawlRun]) -> list[tuple[HealthRule, str]]:
    found = platform_problems(
        {"heimao": history}, {"heimao": "黑猫投诉"}, RULES, ZONE, now=NOW, window=NOW - NOW.replace(year=2025)
    )
    return [(p.rule, p.event_key) for p in found]


def test_a_settled_sweeps_shares_read_as_one_run_with_their_items_summed() -> None:
    history = newest_first(*USUAL, share(7, 7), share(8, 0), share(9, 13))
    [whole] = whole_runs(history)[:1]
    assert (whole.id, whole.items, whole.status, _problems(history)) == (7, 20, "ok", [])


def test_a_sweep_whose_shares_together_fall_far_below_still_raises_the_alert() -> None:
    history = newest_first(*USUAL, share(7, 2), share(8, 0), share(9, 1))
    assert _problems(history) == [(HealthRule.FAR_BELOW, "health:heimao:far_below:7")]


def test_a_sweep_not_yet_settled_is_not_read() -> None:
    history = newest_first(*USUAL, share(7, 2, shares=None), share(8, 0, shares=None))
    assert [r.id for r in whole_runs(history)] == [r.id for r in newest_first(*USUAL)]
    assert _problems(history) == []
