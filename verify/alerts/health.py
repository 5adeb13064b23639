"""Crawl health that knows what it is not seeing: each platform's expected volume, learned from its
recent clean runs, and the rules that turn its newest runs into one alert saying what we miss.

The rules look at the newest finished run and, in this order, take the first that holds: a login wall
(captcha, expired cookie), a streak of failed or partial runs, a layout change, a run with no items (clean
or failed outright) where the platform usually has some, a run far below the expected volume (Poisson
lower tail against the median of the last clean runs of its kind). A
problem that lasts several runs is one *episode*: its alert is keyed by the episode's first run, so it
goes out once, saying since when.
"""

from __future__ import annotations

import enum
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from settings import AlertHealthSettings
from storage.models import CrawlRun
from storage.vocabulary import ACCESS_STATUS_LABELS, SHARES_STAT, SWEEP_STAT, AccessStatus, CrawlRunStatus
from verify.alerts.text import one_line
from verify.web.display import CRAWL_STATUS_LABELS, local_time

#: Runs that found posts but lost requests, or found nothing at all: the error streak counts them.
BAD_STATUSES = (CrawlRunStatus.FAILED, CrawlRunStatus.PARTIAL)
WALLS = (AccessStatus.LOGIN_WALL, AccessStatus.CAPTCHA, AccessStatus.COOKIE_EXPIRED)
#: Crawled or platform-quoted text inside an alert (a wall's message, a health reason) is cut here.
MAX_REASON_CHARS = 200


class HealthRule(enum.StrEnum):
    """Why a platform's newest runs raise an alert (the event key names it)."""

    ACCESS = "access"
    FAILURE_STREAK = "failure_streak"
    LAYOUT = "layout"
    ZERO_ITEMS = "zero_items"
    FAR_BELOW = "far_below"


@dataclass(frozen=True)
class Expectation:
    """A platform's usual items per run: the median of ``runs`` clean runs."""

    median: float
    runs: int


@dataclass(frozen=True)
class HealthProblem:
    """One platform's current problem: the rule, the episode's first run, and the sentence to send."""

    platform_id: str
    rule: HealthRule
    first_run_id: int
    since: datetime
    text: str

    @property
    def event_key(self) -> str:
        return f"health:{self.platform_id}:{self.rule}:{self.first_run_id}"


def reached_seen(run: CrawlRun) -> bool:
    """The run stopped at content earlier runs stored: it read everything new, so few items is no loss."""
    return bool((run.stats or {}).get("weisu/stopped_at_seen"))


def clean(run: CrawlRun) -> bool:
    """A run whose count says what the platform offered: ok, and not flagged as a layout change."""
    return run.status == CrawlRunStatus.OK and not run.layout_changed


def same_kind(run: CrawlRun, like: CrawlRun | None) -> bool:
    """Whether ``run`` counts what ``like`` counts (None: any run does).

    A run that stopped at content earlier runs stored brings only what appeared since the run before
    (an incremental sweep every 15 minutes brings a handful, the 2 a.m. nightly sweep of an
    incremental platform fewer still, a quiet hour nothing); a run that read its entry points to the
    end brings their full depth, at any hour. Measuring one against the other's median would make
    the full-depth yardstick of an often-swept platform a few items, and hide a run that lost most
    of its pages."""
    return like is None or reached_seen(run) == reached_seen(like)


def expected_volume(
    history: Sequence[CrawlRun], rules: AlertHealthSettings, like: CrawlRun | None = None
) -> Expectation | None:
    """The median items of the newest ``volume_runs`` clean runs of ``history`` (newest first) of the
    same kind as ``like`` (see same_kind), or None when there is none."""
    counts = [run.items for run in history if clean(run) and same_kind(run, like)][: rules.volume_runs]
    if not counts:
        return None
    return Expectation(float(statistics.median(counts)), len(counts))


def learned_volume(history: Sequence[CrawlRun], rules: AlertHealthSettings) -> float | None:
    """The expected items per run once learned (at least ``volume_min_runs`` clean runs), else None."""
    expected = expected_volume(history, rules)
    return expected.median if expected is not None and expected.runs >= rules.volume_min_runs else None


def poisson_lower_tail(observed: int, mean: float) -> float:
    """P(X <= observed) for X ~ Poisson(mean), summed in log space (no underflow for large means)."""
    if mean <= 0:
        return 1.0
    logs = [-mean + k * math.log(mean) - math.lgamma(k + 1) for k in range(observed + 1)]
    top = max(logs)
    return min(1.0, math.exp(top) * sum(math.exp(value - top) for value in logs))


def _episode(runs: Sequence[CrawlRun], holds: Callable[[CrawlRun], bool]) -> list[CrawlRun]:
    """The newest runs in a row for which ``holds`` is true (newest first)."""
    episode = []
    for run in runs:
        if not holds(run):
            break
        episode.append(run)
    return episode


def _empty(run: CrawlRun) -> bool:
    """A run that brought nothing: clean or failed outright, with no items, and not because it had
    already read everything new (a layout change or a wall is its own rule)."""
    usable = run.status == CrawlRunStatus.FAILED or (
        run.status == CrawlRunStatus.OK and not run.layout_changed
    )
    return usable and run.items == 0 and not reached_seen(run)


def _figure(value: float) -> str:
    return f"{value:g}"


def assess(
    platform_id: str, name: str, runs: Sequence[CrawlRun], rules: AlertHealthSettings, zone: ZoneInfo
) -> HealthProblem | None:
    """The problem the platform's newest finished runs (newest first) show, or None when it is healthy."""
    if not runs:
        return None
    newest = runs[0]

    def problem(rule: HealthRule, episode: list[CrawlRun], text: str) -> HealthProblem:
        first = episode[-1]
        return HealthProblem(platform_id, rule, first.id, first.started_at, text)

    def since(episode: list[CrawlRun]) -> str:
        return local_time(episode[-1].started_at, zone)

    if newest.access_status in WALLS:
        episode = _episode(runs, lambda r: r.access_status == newest.access_status)
        wall = ACCESS_STATUS_LABELS[AccessStatus(newest.access_status)]
        reason = one_line(newest.access_reason, MAX_REASON_CHARS) or "未说明"
        text = (
            f"{name}：{wall}，自 {since(episode)} 起抓不到该平台的帖子"
            f"（连续 {len(episode)} 次抓取受阻）。平台提示：{reason}"
        )
        return problem(HealthRule.ACCESS, episode, text)
    streak = _episode(runs, lambda r: r.status in BAD_STATUSES)
    if len(streak) >= rules.failure_streak:
        status = CRAWL_STATUS_LABELS.get(newest.status, newest.status)
        text = (
            f"{name}：连续 {len(streak)} 次抓取失败或不完整（最近一次{status}，{newest.errors} 个错误），"
            f"自 {since(streak)} 起该平台的帖子可能漏抓。"
        )
        return problem(HealthRule.FAILURE_STREAK, streak, text)
    # A failed run found nothing because it failed: the no-items rule says so, not "layout changed".
    if newest.layout_changed and newest.status != CrawlRunStatus.FAILED:
        episode = _episode(runs, lambda r: r.layout_changed and r.status != CrawlRunStatus.FAILED)
        reason = one_line(newest.health_reason, MAX_REASON_CHARS) or "未说明"
        text = f"{name}：疑似改版（{reason}），自 {since(episode)} 起该平台的帖子可能解析不出、漏抓。"
        return problem(HealthRule.LAYOUT, episode, text)
    if _empty(newest):
        episode = _episode(runs, _empty)
        expected = expected_volume(runs[len(episode) :], rules)
        if expected is None or expected.median < 1:
            return None
        cause = (
            f"最近一次抓取失败，{newest.errors} 个错误；" if newest.status == CrawlRunStatus.FAILED else ""
        )
        text = (
            f"{name}：最近 {len(episode)} 次抓取没有任何条目（{cause}此前 {expected.runs} 次正常抓取中位数 "
            f"{_figure(expected.median)} 条），自 {since(episode)} 起看不到该平台的新帖。"
        )
        return problem(HealthRule.ZERO_ITEMS, episode, text)
    if newest.status != CrawlRunStatus.OK or reached_seen(newest):
        return None
    return _far_below(platform_id, name, runs, rules, zone)


def _far_below(
    platform_id: str, name: str, runs: Sequence[CrawlRun], rules: AlertHealthSettings, zone: ZoneInfo
) -> HealthProblem | None:
    """The far-below rule: the newest run's count is improbably low for the median of the clean runs of
    its kind before it (at least ``volume_min_runs`` of those); the episode is the runs in a row that
    are. The newest run read to the end here (one that stopped at seen content is no loss)."""
    newest = runs[0]
    expected = expected_volume(runs[1:], rules, like=newest)
    if expected is None or expected.runs < rules.volume_min_runs or not _improbable(newest, expected, rules):
        return None
    episode = _episode(runs, lambda r: _improbable(r, expected, rules))
    p_value = poisson_lower_tail(newest.items, expected.median)
    missing = _figure(expected.median - newest.items)
    text = (
        f"{name}：最近一次抓取只有 {newest.items} 条，远低于近 {expected.runs} 次正常抓取的中位数 "
        f"{_figure(expected.median)} 条（泊松下尾概率 {p_value:.1e}），"
        f"自 {local_time(episode[-1].started_at, zone)} 起每次约少看到 {missing} 条帖子。"
    )
    first = episode[-1]
    return HealthProblem(platform_id, HealthRule.FAR_BELOW, first.id, first.started_at, text)


def _improbable(run: CrawlRun, expected: Expectation, rules: AlertHealthSettings) -> bool:
    if run.status != CrawlRunStatus.OK or run.layout_changed or reached_seen(run) or run.items == 0:
        return False
    return poisson_lower_tail(run.items, expected.median) < rules.volume_p_value


def sweep_of(run: CrawlRun) -> str | None:
    """The distributed sweep ``run`` is one worker's share of, or None (a whole crawl)."""
    sweep = (run.stats or {}).get(SWEEP_STAT)
    return sweep if isinstance(sweep, str) else None


def whole_runs(history: Sequence[CrawlRun]) -> list[CrawlRun]:
    """``history`` (newest first) with each distributed sweep's shares read as one run of the platform.

    A worker's share of a sweep counts what that worker happened to fetch: one share of three would
    read as far below the platform's volume, a worker that fetched nothing of it as a run with no
    items. So the shares of one sweep become one run (crawlers/sweep_runs.py): items, requests and
    errors summed, clean only when every share is, a layout change only when every share saw one, the
    first wall any share met. A sweep not yet settled (a share still running), or cut by the history's
    limit, is left out: it is read whole or not at all."""
    groups: dict[str, list[CrawlRun]] = {}
    ordered: list[CrawlRun | str] = []
    for run in history:
        if (sweep := sweep_of(run)) is None:
            ordered.append(run)
            continue
        if sweep not in groups:
            groups[sweep] = []
            ordered.append(sweep)
        groups[sweep].append(run)
    whole = []
    for entry in ordered:
        if isinstance(entry, CrawlRun):
            whole.append(entry)
            continue
        shares = groups[entry]
        if all((run.stats or {}).get(SHARES_STAT) == len(shares) for run in shares):
            whole.append(_sweep_run(shares))
    return whole


def _sweep_run(shares: Sequence[CrawlRun]) -> CrawlRun:
    """One unsaved CrawlRun standing for a settled sweep's shares (its id the first share's)."""
    first = min(shares, key=lambda run: run.id)
    items = sum(run.items or 0 for run in shares)
    if all(run.status == CrawlRunStatus.OK for run in shares):
        status = CrawlRunStatus.OK
    elif items > 0:
        status = CrawlRunStatus.PARTIAL
    else:
        status = CrawlRunStatus.FAILED
    walled = next((run for run in shares if run.access_status in WALLS), None)
    flagged = [run for run in shares if run.layout_changed]
    return CrawlRun(
        id=first.id,
        platform_id=first.platform_id,
        started_at=min(run.started_at for run in shares),
        finished_at=max((run.finished_at or run.started_at) for run in shares),
        status=status,
        requests=sum(run.requests or 0 for run in shares),
        items=items,
        posts_stored=sum(run.posts_stored or 0 for run in shares),
        errors=sum(run.errors or 0 for run in shares),
        stats={
            "weisu/stopped_at_seen": any(reached_seen(run) for run in shares),
            SWEEP_STAT: sweep_of(first),
        },
        layout_changed=len(flagged) == len(shares),
        health_reason=flagged[0].health_reason if flagged else None,
        access_status=walled.access_status if walled else first.access_status,
        access_reason=walled.access_reason if walled else first.access_reason,
    )


def platform_problems(
    runs: Mapping[str, Sequence[CrawlRun]],
    names: Mapping[str, str],
    rules: AlertHealthSettings,
    zone: ZoneInfo,
    *,
    now: datetime,
    window: timedelta,
) -> list[HealthProblem]:
    """Every platform's current problem, for platforms whose newest run finished within ``window``."""
    problems = []
    for platform_id, shares in sorted(runs.items()):
        history = whole_runs(shares)
        if not history or (history[0].finished_at or history[0].started_at) < now - window:
            continue
        found = assess(platform_id, names.get(platform_id, platform_id), history, rules, zone)
        if found is not None:
            problems.append(found)
    return problems
