"""Crawl gaps: requests lost after their retries, recorded so later runs fetch them again.

A request that still fails after Scrapy's retries (5xx or 429 every time, a timeout, a page that was
malformed twice) is first fetched once more when the rest of its run is done, with fresh retries
(``PlatformSpider.second_chance``); one that fails that too becomes a row of ``crawl_gaps``: platform,
what rebuilds the request (URL, method, body, the spider's plain meta) and why it failed, never a
header. One row per platform and request fingerprint, so a request that fails again is the same gap
tried once more. Each later run of the
platform fetches its open gaps first (``PlatformSpider.start``); a gap that parses is recovered; one
that has failed ``crawl_gaps.max_attempts`` times, or first failed ``crawl_gaps.max_age_hours`` ago,
is aged out and reported: a warning naming platform and URL, ``weisu/gaps_aged_out`` in the run's
stats, and a sentence in its health reason (``weisu platforms``, the dashboard).

A gap fetched again is a single page: it does not page on (its ``pages_seen`` is the limit), since the
run also pages down from the top as far as the high-water mark or the settled threads say (see
crawlers/incremental.py); that paging, not the refetch of a page whose content has since moved on,
is what makes a lost listing page good. For a thread's detail page, whose URL does not move, the
refetch is what brings the thread back.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import scrapy
from sqlalchemy.orm import Session, sessionmaker

from settings import CrawlGapSettings
from storage.db import session_scope
from storage.models import CrawlGap, GapKind, GapState
from storage.queries import close_gap, gap_expired, record_gap_failure

if TYPE_CHECKING:
    from crawlers.spiders.base import PlatformSpider

logger = logging.getLogger(__name__)

#: The meta keys a gap keeps: plain values that rebuild the request (and nothing a platform sent).
KEPT_META = ("entry", "keyword", "page", "label", "external_id", "thread_page", "callback")
#: Meta key of a request that fetches a recorded gap again: the gap's id.
GAP_ID = "gap_id"
#: Meta key of a request fetched once more at the end of its own run, before it may become a gap.
SECOND_CHANCE = "second_chance"
#: Callbacks a gap may name: the spider's page parsers, nothing else a row could point at.
CALLBACK_PREFIX = "parse_"


@dataclass(frozen=True)
class OpenGap:
    """An open gap as a run reads it when it opens: what to fetch again."""

    id: int
    kind: GapKind
    url: str
    method: str
    body: str | None
    meta: Mapping[str, Any]

    @classmethod
    def of(cls, gap: CrawlGap) -> OpenGap:
        return cls(gap.id, GapKind(gap.kind), gap.url, gap.method, gap.body, dict(gap.meta or {}))


@dataclass(frozen=True)
class AgedGap:
    """A gap given up: what the report names."""

    platform_id: str
    url: str
    attempts: int
    first_failed_at: datetime
    last_reason: str | None

    @classmethod
    def of(cls, gap: CrawlGap) -> AgedGap:
        return cls(gap.platform_id, gap.url, gap.attempts, gap.first_failed_at, gap.last_reason)


def report_aged_out(gap: AgedGap, log: logging.Logger | logging.LoggerAdapter[Any] = logger) -> None:
    """The warning every aged-out gap gets: the post behind it may be lost for good."""
    log.warning(
        "crawl gap aged out, given up: platform=%s url=%s attempts=%d first_failed=%s last_reason=%s",
        gap.platform_id,
        gap.url,
        gap.attempts,
        gap.first_failed_at.isoformat(timespec="seconds"),
        gap.last_reason,
    )


def age_out(
    session: Session, gaps: Sequence[CrawlGap], rules: CrawlGapSettings, now: datetime
) -> list[AgedGap]:
    """Close the expired gaps among these open ones (the others stay open); the ones closed."""
    aged = []
    for gap in gaps:
        if gap_expired(gap, rules.max_attempts, timedelta(hours=rules.max_age_hours), now):
            close_gap(session, gap.id, GapState.AGED_OUT, now)
            aged.append(AgedGap.of(gap))
    return aged


def gap_kind(spider: PlatformSpider, request: scrapy.Request) -> GapKind:
    """A thread's detail page, a page of a comment thread, or else a listing page."""
    if _callback_name(request) == "parse_detail":
        return GapKind.DETAIL
    return GapKind.THREAD if spider.kind == "comments" else GapKind.LISTING


def _callback_name(request: scrapy.Request) -> str:
    return str(getattr(request.callback, "__name__", "") or "parse_page")


def _plain(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def kept_meta(request: scrapy.Request) -> dict[str, Any]:
    meta = {key: request.meta[key] for key in KEPT_META if key in request.meta and _plain(request.meta[key])}
    return meta | {"callback": _callback_name(request)}


def refetch_request(spider: PlatformSpider, gap: OpenGap) -> scrapy.Request:
    """The request that fetches a gap again: one page (no paging on), never dropped as a duplicate of
    the same page the run's own paging asks for, with the entry point's configured headers."""
    meta = dict(gap.meta)
    name = str(meta.pop("callback", "") or "parse_page")
    callback = getattr(spider, name, None) if name.startswith(CALLBACK_PREFIX) else None
    if callback is None:
        callback = spider.parse_detail if gap.kind == GapKind.DETAIL else spider.parse_page  # type: ignore[attr-defined]
    headers: dict[str, str] = {}
    entry = meta.get("entry")
    if isinstance(entry, int) and 0 <= entry < len(spider.platform.entry_points):
        headers = spider.entry_headers(entry)
    meta |= {GAP_ID: gap.id, "pages_seen": spider.platform.pagination.max_pages}
    return scrapy.Request(
        gap.url,
        method=gap.method,
        body=gap.body,
        headers=headers or None,
        callback=callback,
        errback=spider.failed,
        meta=meta,
        dont_filter=True,
    )


@dataclass
class GapBook:
    """A spider's view of its platform's gaps: the open ones to fetch again, and where failures and
    recoveries are written. The default (no database) records nothing, for spiders run alone."""

    platform_id: str = ""
    factory: sessionmaker[Session] | None = None
    rules: CrawlGapSettings = field(default_factory=CrawlGapSettings)
    pending: Sequence[OpenGap] = ()

    def failed(self, fingerprint: str, kind: GapKind, request: scrapy.Request, reason: str) -> AgedGap | None:
        """Record a request lost after its retries; the gap when this try made it age out."""
        if self.factory is None:
            return None
        now = datetime.now(UTC)
        body = request.body.decode("utf-8", errors="replace") if request.body else None
        with session_scope(self.factory) as session:
            gap = record_gap_failure(
                session,
                platform_id=self.platform_id,
                fingerprint=fingerprint,
                kind=kind,
                url=request.url,
                method=request.method,
                body=body,
                meta=kept_meta(request),
                reason=reason,
                now=now,
                gap_id=request.meta.get(GAP_ID),
            )
            if gap.attempts <= 1 or gap.state != GapState.OPEN:
                return None  # a first failure is fetched again next run; a gap given up stays so
            aged = age_out(session, [gap], self.rules, now)
        return aged[0] if aged else None

    def recovered(self, gap_id: int) -> None:
        if self.factory is None:
            return
        with session_scope(self.factory) as session:
            close_gap(session, gap_id, GapState.RECOVERED, datetime.now(UTC))
