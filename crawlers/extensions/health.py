"""Crawl health: a run's figures from Scrapy stats, the rules that flag a probable layout change, and
the per-platform overview `weisu platforms` prints.

A platform that changes its page layout rarely fails loudly: the selectors simply find nothing, or
find the rows but not their text. So a finished run is compared with the platform's earlier runs
(thresholds in config.yaml ``crawl_health``) and flagged ``layout_changed`` with a reason in Chinese,
the language of the dashboard and of ``weisu platforms``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, tzinfo
from typing import Any

from rich.markup import escape

from settings import CrawlHealthSettings, Settings
from storage.models import CrawlRun
from storage.vocabulary import ACCESS_STATUS_LABELS, AccessStatus

STATUS_PREFIX = "downloader/response_status_count/"
#: Spider counters for posts lost before they became items (make_item / html_board list rows).
DROPPING_FIELDS = ("external_id", "text", "link")


def responses_by_status(stats: Mapping[str, Any]) -> dict[str, int]:
    """{"200": 12, "503": 2} from Scrapy's downloader counters (retried responses count each time)."""
    return {
        key.removeprefix(STATUS_PREFIX): int(value)
        for key, value in sorted(stats.items())
        if key.startswith(STATUS_PREFIX)
    }


def dropped_reasons(stats: Mapping[str, Any]) -> dict[str, int]:
    """{"empty_text": 2, "missing_field/text": 1}: dropped by a pipeline, or never built by the spider."""
    reasons = {
        key.removeprefix("weisu/dropped/"): int(value)
        for key, value in stats.items()
        if key.startswith("weisu/dropped/")
    }
    for name in DROPPING_FIELDS:
        if count := int(stats.get(f"weisu/missing_field/{name}", 0)):
            reasons[f"missing_field/{name}"] = count
    return dict(sorted(reasons.items()))


@dataclass(frozen=True)
class RunFigures:
    """What the health rules look at in one run."""

    items: int
    #: Posts found without text: dropped empty after normalising, or with no text field at all.
    empty_text: int = 0
    #: Responses with a 2xx status: a run without any is an outage, not a layout change.
    ok_responses: int = 0
    #: The spider stopped at content earlier runs stored (so finding no new items is expected).
    reached_seen: bool = False

    @classmethod
    def of(
        cls, items: int, dropped: Mapping[str, int], statuses: Mapping[str, int], reached_seen: bool
    ) -> RunFigures:
        empty = int(dropped.get("empty_text", 0)) + int(dropped.get("missing_field/text", 0))
        ok = sum(count for status, count in statuses.items() if status.startswith("2"))
        return cls(items=items, empty_text=empty, ok_responses=ok, reached_seen=reached_seen)

    @property
    def found(self) -> int:
        return self.items + self.empty_text

    @property
    def empty_share(self) -> float:
        return self.empty_text / self.found if self.found else 0.0


def layout_change(
    current: RunFigures, previous: Sequence[RunFigures], rules: CrawlHealthSettings
) -> str | None:
    """The reason this run looks like a layout change, or None. ``previous``: earlier runs, newest first."""
    earlier = list(previous[: rules.lookback_runs])
    if not earlier or not could_be_layout_change(current, rules):
        return None
    best = max(run.items for run in earlier)
    found_nothing = current.items == 0 and current.ok_responses and not current.reached_seen
    if found_nothing and best >= rules.min_previous_items:
        return f"本次未解析出任何条目，此前{len(earlier)}次运行最多 {best} 条"
    if current.found >= rules.min_items_for_share:
        before = [run.empty_share for run in earlier if run.found]
        average = sum(before) / len(before) if before else 0.0
        if current.empty_share - average >= rules.empty_text_jump:
            return f"空正文条目占比 {current.empty_share:.0%}，此前平均 {average:.0%}"
    return None


def could_be_layout_change(current: RunFigures, rules: CrawlHealthSettings) -> bool:
    """Whether some earlier runs could make this run a layout change: it found nothing, or its share
    of empty texts reaches the jump on its own (an average of earlier shares is never below 0). When
    not, layout_change is None whatever the earlier runs were, and they need not be read."""
    found_nothing = current.items == 0 and current.ok_responses and not current.reached_seen
    many_empty = current.found >= rules.min_items_for_share and current.empty_share >= rules.empty_text_jump
    return bool(found_nothing or many_empty)


def gaps_reason(aged_out: int) -> str | None:
    """The health reason's sentence for requests given up this run (crawlers/gaps.py), or None."""
    if aged_out <= 0:
        return None
    return f"{aged_out} 个请求多次重试仍失败，已放弃（其中的帖子可能缺失，见日志中的网址）"


TABLE_COLUMNS = (
    "platform", "name", "kind", "priority", "enabled", "last run", "status",
    "requests", "items", "stored", "errors", "flag",
)  # fmt: skip


@dataclass(frozen=True)
class PlatformHealth:
    """One line of `weisu platforms` (and of the dashboard): a configured platform and its last run."""

    platform_id: str
    name: str
    kind: str
    priority: str
    enabled: bool
    last_run_at: datetime | None = None
    status: str | None = None
    requests: int = 0
    items: int = 0
    stored: int = 0
    errors: int = 0
    layout_changed: bool = False
    reason: str | None = None
    #: An admin paused it (sweeps skip it), with why.
    paused: bool = False
    paused_reason: str | None = None
    #: Requests the last run gave up after their retries and later runs' tries (crawl_gaps aged out).
    gaps_aged_out: int = 0
    #: What the last run met: ok, or a login wall / captcha / expired cookie with its reason.
    access_status: str | None = None
    access_reason: str | None = None

    def as_json(self) -> dict[str, Any]:
        values = asdict(self)
        values["last_run_at"] = self.last_run_at.isoformat() if self.last_run_at else None
        return values

    def cells(self, shown_in: tzinfo) -> list[str]:
        """The row under TABLE_COLUMNS: times in the operators' zone, the flag in red with its reason."""
        last_run = (
            self.last_run_at.astimezone(shown_in).strftime("%Y-%m-%d %H:%M") if self.last_run_at else "—"
        )
        if self.layout_changed:
            flag = f"[bold red]版面可能已改变[/]：{self.reason}"
        elif self.gaps_aged_out:
            flag = f"[bold red]缺口已放弃[/]：{self.reason}"
        else:
            flag = ""
        if self.access_status not in (None, AccessStatus.OK):
            wall = ACCESS_STATUS_LABELS[AccessStatus(self.access_status)]
            # The reason may quote a platform's own message: shown as text, never as markup.
            access = f"[bold red]{wall}[/]：{escape(self.access_reason or '')}"
            flag = f"{flag}；{access}" if flag else access
        counts = [str(n) for n in (self.requests, self.items, self.stored, self.errors)]
        enabled = (
            ("paused: " + (self.paused_reason or "—")) if self.paused else ("yes" if self.enabled else "no")
        )
        base = [self.platform_id, self.name, self.kind, self.priority, enabled, last_run, self.status or "—"]
        return [*base, *counts, flag]


def platform_overview(
    settings: Settings, latest: Mapping[str, CrawlRun], paused: Mapping[str, str | None] | None = None
) -> list[PlatformHealth]:
    """Every configured platform in config.yaml order, with its latest run's figures (None: never run)
    and, from ``paused`` ({platform: reason}), whether an admin paused it."""
    rows = []
    paused = paused or {}
    for key, platform in settings.platforms.items():
        row = PlatformHealth(key, platform.name, platform.kind, platform.priority, platform.enabled)
        if key in paused:
            row = replace(row, paused=True, paused_reason=paused[key])
        run = latest.get(key)
        if run is not None:
            row = replace(
                row,
                last_run_at=run.finished_at or run.started_at,
                status=run.status,
                requests=run.requests,
                items=run.items,
                stored=run.posts_stored,
                errors=run.errors,
                layout_changed=run.layout_changed,
                reason=run.health_reason,
                gaps_aged_out=int((run.stats or {}).get("weisu/gaps_aged_out", 0)),
                access_status=run.access_status,
                access_reason=run.access_reason,
            )
        rows.append(row)
    return rows
