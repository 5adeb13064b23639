"""When a distributed worker is done with a leased request, told by Scrapy's public signals and by the
worker's own components, never by the engine's private state.

A leased request is *done* when everything it produced is safe outside this process: the requests it
led to are in the shared queue and its posts are committed. Three ways lead there:

* **A response.** ``response_received`` marks the lease answered. The outermost spider middleware
  (crawlers/distributed.py ``LeaseOutput``) counts each request and item the callback (or, for an
  HTTP error status, the errback) yields; a request counts as settled once the scheduler has pushed
  it (or its duplicate filter dropped it), an item once ``item_scraped``, ``item_dropped`` or
  ``item_error`` names the response. When the output is exhausted and nothing is left unsettled, the
  lease is done. A callback that raises (``spider_error``) ends the output there.
* **A download failure.** The spider's errback sends ``errback_handled`` (crawlers/spiders/base.py)
  with what it returns; those requests are counted the same way.
* **A replacement.** A downloader middleware that answers with a new request (a retry, a redirect)
  makes it a copy of the leased one: once the scheduler has pushed the copy, the original is done.

Whatever path a request takes, the engine is idle (``spider_idle``) only when it holds none: then
every lease still tracked is done. So an unforeseen path costs a late release, never a lost request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response

from crawlers.frontier import LEASE
from crawlers.spiders.base import errback_handled

#: Meta key of a request a leased request produced: the producer's lease token (never queued).
PARENT = "weisu_parent_lease"


@dataclass
class _Lease:
    answered: bool = False
    finished: bool = False
    pending: int = 0

    @property
    def done(self) -> bool:
        return self.finished and self.pending <= 0


def lease_of(source: Any) -> str | None:
    """The lease token of a request, or of the request behind a response; None when not leased."""
    request = source.request if isinstance(source, Response) else source
    if not isinstance(request, Request):
        return None
    token = request.meta.get(LEASE)
    return token if isinstance(token, str) else None


class LeaseTracker:
    """One crawler's leased requests and what each still waits for (see the module docstring)."""

    def __init__(self) -> None:
        self.leases: dict[str, _Lease] = {}

    # --- what the scheduler and the middleware report -----------------------------------------

    def _lease(self, token: str | None) -> _Lease | None:
        """The tracked lease of ``token``; None for a request not leased or no longer tracked."""
        return None if token is None else self.leases.get(token)

    def leased(self, token: str) -> None:
        self.leases[token] = _Lease()

    def produced(self, token: str | None, output: Any) -> Any:
        """Count one request or item a leased request produced; a request is tagged with its producer."""
        if (lease := self._lease(token)) is None:
            return output
        lease.pending += 1
        if isinstance(output, Request):
            output.meta[PARENT] = token
        return output

    def settled(self, token: str | None) -> None:
        if (lease := self._lease(token)) is not None:
            lease.pending -= 1

    def finished(self, token: str | None) -> None:
        if (lease := self._lease(token)) is not None:
            lease.finished = True

    def pushed(self, request: Request) -> None:
        """The scheduler has pushed ``request`` (or dropped it as a duplicate)."""
        if (parent := request.meta.pop(PARENT, None)) is not None:
            self.settled(parent)
        elif (token := lease_of(request)) is not None and not self._answered(token):
            self.finished(token)  # a retry or redirect of a leased request: the copy is queued

    def _answered(self, token: str) -> bool:
        lease = self._lease(token)
        return lease is not None and lease.answered

    # --- what is done ---------------------------------------------------------------------------

    def done(self) -> list[str]:
        return [token for token, lease in self.leases.items() if lease.done]

    def all(self) -> list[str]:
        return list(self.leases)

    def forget(self, tokens: list[str]) -> None:
        for token in tokens:
            self.leases.pop(token, None)

    def idle(self) -> None:
        """The engine holds no request: every lease still tracked is done."""
        for lease in self.leases.values():
            lease.finished, lease.pending = True, 0

    # --- Scrapy's signals -----------------------------------------------------------------------

    def response_received(self, response: Response, request: Request) -> None:
        if (lease := self._lease(lease_of(request))) is not None:
            lease.answered = True

    def item_settled(self, item: Any, response: Any) -> None:
        self.settled(lease_of(response))

    def spider_error(self, response: Any) -> None:
        self.finished(lease_of(response))

    def errback_handled(self, request: Request, output: Any) -> None:
        token = lease_of(request)
        if token is None or self._answered(token):
            return  # an HTTP error status: the spider middleware counts the errback's output
        for produced in output or ():
            self.produced(token, produced)
        self.finished(token)


_TRACKERS: WeakKeyDictionary[Crawler, LeaseTracker] = WeakKeyDictionary()


def tracker_of(crawler: Crawler) -> LeaseTracker:
    """The crawler's tracker, made (and connected to the crawler's signals) on first use."""
    if (tracker := _TRACKERS.get(crawler)) is None:
        tracker = _TRACKERS[crawler] = LeaseTracker()
        connect = crawler.signals.connect
        connect(tracker.response_received, signal=signals.response_received)
        for signal in (signals.item_scraped, signals.item_dropped, signals.item_error):
            connect(tracker.item_settled, signal=signal)
        connect(tracker.spider_error, signal=signals.spider_error)
        connect(tracker.errback_handled, signal=errback_handled)
    return tracker
