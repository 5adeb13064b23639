"""What every platform spider shares: entry points, link joining, field counts, bad-page handling."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import quote, urljoin

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider, IgnoreRequest
from scrapy.http import Response, TextResponse
from scrapy.spidermiddlewares.httperror import HttpError
from scrapy.utils.request import fingerprint as fingerprint_of
from twisted.python.failure import Failure

from crawlers.gaps import GAP_ID, SECOND_CHANCE, GapBook, gap_kind, refetch_request, report_aged_out
from crawlers.incremental import SeenContent
from crawlers.items import PostItem
from crawlers.refused import WallHit
from settings import PlatformSettings, rebase_url

Output = list[scrapy.Request | PostItem]
#: How often a page that does not parse is fetched again before it is skipped.
MALFORMED_RETRIES = 1
#: Only these two placeholders are filled, so a JSON body template may hold literal braces.
_ENTRY_PLACEHOLDER = re.compile(r"\{(keyword|page)\}")
#: Signal sent when the errback has handled a failed request, with what it returns (``request``,
#: ``output``): what a distributed worker waits for before it releases the request's lease.
errback_handled = object()


class SecondChances(Protocol):
    """Where requests lost after their retries wait until the rest of the run is done."""

    def keep(self, request: scrapy.Request) -> None: ...

    def due(self) -> list[scrapy.Request]:
        """The requests to send now, taken out (none while they must still wait)."""
        ...


class KeptInMemory:
    """A process's own second chances: the run's requests are all this process's (run alone)."""

    def __init__(self) -> None:
        self.waiting: list[scrapy.Request] = []

    def keep(self, request: scrapy.Request) -> None:
        self.waiting.append(request)

    def due(self) -> list[scrapy.Request]:
        requests, self.waiting = self.waiting, []
        return requests


def quote_keyword(keyword: str) -> str:
    """A keyword in a URL or form body: percent-encoded UTF-8, nothing left unescaped."""
    return quote(keyword, safe="")


def json_escape(keyword: str) -> str:
    """A keyword inside a JSON string literal of a body template (quotes and backslashes escaped)."""
    return json.dumps(keyword, ensure_ascii=False)[1:-1]


def guess_body_type(body: str) -> str:
    """The Content-Type of a body template the entry point gives no header for: JSON or a form."""
    return "application/json" if body.lstrip()[:1] in ("{", "[") else "application/x-www-form-urlencoded"


def fill_entry_template(template: str, keyword: str | None, page: Any, escape: Callable[[str], str]) -> str:
    """Fill ``{keyword}`` (escaped for where it goes) and ``{page}``; every other brace stays as written."""
    values = {"keyword": escape(keyword or ""), "page": str(page)}
    return _ENTRY_PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


class PlatformSpider(scrapy.Spider):
    """A spider for one platform, built from its PlatformSettings; the spider name is the platform key."""

    kind = ""

    def __init__(self, platform_id: str, platform: PlatformSettings, **kwargs: Any) -> None:
        super().__init__(name=platform_id, **kwargs)
        self.platform_id = platform_id
        self.platform = platform
        self.fields = platform.fields
        #: Set when crawling the platform simulator: absolute links to the real host are rebased too.
        self.simulator_url: str | None = None
        #: What earlier crawls stored; the crawl-run recorder fills it in when the spider opens.
        self.seen = SeenContent()
        #: The platform's recorded gaps (crawlers/gaps.py); the recorder fills it in when the spider opens.
        self.gaps = GapBook()
        #: Requests lost after their retries, fetched once more when the run is otherwise done (in
        #: Redis for a distributed worker: crawlers/distributed.py replaces this when the spider opens).
        self.second_chances: SecondChances = KeptInMemory()

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> PlatformSpider:
        if "platform" not in kwargs:
            kwargs["platform"] = crawler.settings["WEISU_SETTINGS"].platforms[kwargs["platform_id"]]
        spider: PlatformSpider = super().from_crawler(crawler, *args, **kwargs)
        crawler.signals.connect(spider.fetch_second_chances, signal=signals.spider_idle)
        weisu = crawler.settings.get("WEISU_SETTINGS")
        spider.simulator_url = weisu.simulator_url if weisu is not None else None
        return spider

    # --- requests -------------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        for gap in self.gaps.pending:  # what earlier runs lost, first
            yield refetch_request(self, gap)
        for index, entry in enumerate(self.platform.entry_points):
            keywords: list[str | None] = [*entry.keywords] or [None]
            for keyword in keywords:
                page = self.platform.pagination.start
                yield self.page_request(index, keyword, page, pages_seen=1)

    def page_request(
        self, entry_index: int, keyword: str | None, page: Any, pages_seen: int
    ) -> scrapy.Request:
        """A listing-page request; meta holds only plain values, so requests can go through a queue."""
        entry = self.platform.entry_points[entry_index]
        path = fill_entry_template(entry.url, keyword, page, quote_keyword)
        label = entry.label or (
            f"{entry.url.split('?')[0]}:{keyword}" if keyword else entry.url.split("?")[0]
        )
        meta = {
            "entry": entry_index,
            "keyword": keyword,
            "page": page,
            "pages_seen": pages_seen,
            "label": label,
        }
        headers = self.entry_headers(entry_index)
        body: str | None = None
        if entry.body is not None:
            content_type = next(v for k, v in headers.items() if k.lower() == "content-type")
            escape = json_escape if "json" in content_type else quote_keyword
            body = fill_entry_template(entry.body, keyword, page, escape)
        return scrapy.Request(
            self.join(path),
            method=entry.method,
            body=body,
            headers=headers or None,
            callback=self.parse_page,
            errback=self.failed,
            meta=meta,
        )

    def entry_headers(self, entry_index: int) -> dict[str, str]:
        """An entry point's configured headers; with a body template and no Content-Type, a guessed one."""
        entry = self.platform.entry_points[entry_index]
        headers = dict(entry.headers)
        if entry.body is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = guess_body_type(entry.body)
        return headers

    def join(self, href: str, response: Response | None = None) -> str:
        """Resolve a link; host-absolute paths ("/p/1") hang off base_url so the simulator prefix stays."""
        if href.startswith("/") and not href.startswith("//"):
            return self.platform.base_url + href
        url = response.urljoin(href) if response is not None else urljoin(self.platform.base_url + "/", href)
        if self.simulator_url and not url.startswith(self.simulator_url):
            # Pages link to their real host (https://www.douban.com/group/topic/1/): same rebasing rule.
            return rebase_url(url, self.simulator_url, self.platform_id)
        return url

    # --- responses ------------------------------------------------------------------------------

    def decoded(self, response: Response) -> Response:
        """Apply the configured encoding where the platform mislabels its pages."""
        if self.platform.encoding and isinstance(response, TextResponse):
            return response.replace(encoding=self.platform.encoding)
        return response

    def parse_page(self, response: Response) -> Output:
        return self.guarded(self.parse_listing, response)

    def parse_listing(self, response: Response) -> Output:
        raise NotImplementedError

    def guarded(self, callback: Callable[[Response], Iterable[Any]], response: Response) -> Output:
        """A malformed page is fetched once more (a cut-off body is often transient); if it is still
        malformed it is logged with platform and URL, counted, recorded as a crawl gap (fetched again
        by later runs) and skipped: the run goes on. A recorded gap that parses is recovered."""
        try:
            out = list(callback(self.decoded(response)))
        except Exception as error:  # noqa: BLE001 - any parser failure on one page must not end the crawl
            tries = int(response.meta.get("malformed_tries", 0))
            if tries < MALFORMED_RETRIES and response.request is not None:
                self.count("malformed_retried")
                meta = dict(response.meta) | {"malformed_tries": tries + 1}
                return [response.request.replace(dont_filter=True, meta=meta)]
            if response.request is not None and self.second_chance(response.request):
                return self.past_skipped(response.meta)
            self.count("malformed_pages")
            self.logger.warning(
                "malformed page skipped: platform=%s url=%s error=%s: %s",
                self.platform_id,
                response.url,
                type(error).__name__,
                error,
            )
            if response.request is not None:
                self.record_gap(response.request, f"malformed: {type(error).__name__}")
            return self.past_skipped(response.meta)
        if (gap_id := response.meta.get(GAP_ID)) is not None:
            self.gaps.recovered(gap_id)
            self.count("gaps_recovered")
        return out

    def failed(self, failure: Failure) -> Output:
        """A request lost for good — retries spent on 5xx/429 or timeouts, or a status that is not
        retried — is logged with platform, URL and reason and counted; a feed's next page is still
        fetched. What was retried in vain is recorded as a crawl gap, fetched again by later runs; a
        status never retried (404) is not. A request robots.txt forbids is only counted: skipping it
        is the point."""
        request = failure.request  # type: ignore[attr-defined]  # Scrapy sets it on errback failures
        output = self._failed(failure, request)
        if getattr(self, "crawler", None) is not None:
            self.crawler.signals.send_catch_log(signal=errback_handled, request=request, output=output)
        return output

    def _failed(self, failure: Failure, request: scrapy.Request) -> Output:
        if failure.check(WallHit):  # the walls middleware recorded and logged it, with its reason
            self.count("walled_requests")
            return []
        if failure.check(IgnoreRequest) and not failure.check(HttpError):  # HttpError is an IgnoreRequest
            self.count("ignored_requests")
            return []
        error = failure.value
        reason = f"HTTP {error.response.status}" if isinstance(error, HttpError) else type(error).__name__
        self.count("failed_requests")
        self.logger.warning(
            "request failed: platform=%s url=%s reason=%s: %s", self.platform_id, request.url, reason, error
        )
        # A status never retried (404, 410…) is not fetched again.
        retried = not isinstance(error, HttpError) or error.response.status in self.retried_statuses()
        if retried and not self.second_chance(request):
            self.record_gap(request, reason)
        return self.past_skipped(request.meta)

    def second_chance(self, request: scrapy.Request) -> bool:
        """Queue a request lost after its retries to be fetched once more, with fresh retries, when
        the rest of the run is done (a burst of 5xx or 429 has often passed by then); False when it
        had that chance already, or is a recorded gap fetched again, and is to be recorded as a gap.

        A feed pages on past the lost page meanwhile (past_skipped); when the page comes through at
        the end, the pages it leads to are already fetched and Scrapy's duplicate filter drops them.
        """
        if request.meta.get(SECOND_CHANCE) or GAP_ID in request.meta or self.crawler is None:
            return False
        dropped = ("retry_times", "malformed_tries")
        meta = {k: v for k, v in request.meta.items() if k not in dropped} | {SECOND_CHANCE: True}
        self.second_chances.keep(request.replace(dont_filter=True, meta=meta))
        self.count("second_chances")
        return True

    def fetch_second_chances(self) -> None:
        """spider_idle: send the requests kept for a second chance, and keep the spider open for them."""
        if self.crawler is None or self.crawler.engine is None:
            return
        requests = self.second_chances.due()
        if not requests:
            return
        for request in requests:
            self.crawler.engine.crawl(request)
        raise DontCloseSpider

    def retried_statuses(self) -> set[int]:
        crawler = getattr(self, "crawler", None)
        settings = crawler.settings if crawler is not None else scrapy.settings.Settings()
        return {int(code) for code in settings.getlist("RETRY_HTTP_CODES")}

    def record_gap(self, request: scrapy.Request, reason: str) -> None:
        """A request lost after its retries goes to crawl_gaps, so later runs fetch it again."""
        crawler = getattr(self, "crawler", None)
        fingerprinter = crawler.request_fingerprinter if crawler is not None else None
        fingerprint = (fingerprinter.fingerprint(request) if fingerprinter else fingerprint_of(request)).hex()
        self.count("gaps_recorded")
        aged = self.gaps.failed(fingerprint, gap_kind(self, request), request, reason)
        if aged is not None:
            self.count("gaps_aged_out")
            report_aged_out(aged, self.logger)

    def past_skipped(self, meta: Mapping[str, Any]) -> Output:
        """Requests that go on past a skipped page; a next page known without parsing one (page or
        offset numbers) is still fetched, so one bad page does not lose the rest of a feed."""
        pagination = self.platform.pagination
        if pagination.style not in ("page", "offset") or "entry" not in meta:
            return []
        if meta["pages_seen"] >= pagination.max_pages:
            return []
        step = pagination.per_page if pagination.style == "offset" else 1
        return [
            self.page_request(meta["entry"], meta["keyword"], meta["page"] + step, meta["pages_seen"] + 1)
        ]

    def count(self, key: str, n: int = 1) -> None:
        if self.crawler is not None and self.crawler.stats is not None:
            self.crawler.stats.inc_value(f"weisu/{key}", n)

    def make_item(self, values: dict[str, Any], response: Response) -> PostItem | None:
        """An item from extracted values; without an id or text the post is counted and dropped."""
        for name in ("external_id", "text"):
            if values.get(name) in (None, ""):
                self.count(f"missing_field/{name}")
                return None
        if values.get("published_at") is None:
            self.count("missing_field/published_at")
        return PostItem(
            platform_id=self.platform_id,
            external_id=str(values["external_id"]),
            url=values.get("url") or response.url,
            text=str(values["text"]),
            title=values.get("title"),
            author=None if values.get("author") in (None, "") else str(values["author"]),
            published_at=values.get("published_at"),
            likes=values.get("likes", 0),
            replies=values.get("replies", 0),
            reposts=values.get("reposts", 0),
            ip_location=values.get("ip_location"),
            entry_point=response.meta.get("label"),
            parent_external_id=values.get("parent_external_id"),
        )
