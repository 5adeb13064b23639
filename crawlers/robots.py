"""robots.txt fetched once per host and parsed once per body for the whole crawl process.

Each platform has its own Crawler, and Scrapy's robots.txt middleware fetches and parses the host's
robots.txt once per crawler. Where platforms share a host (on the simulator all 51 do) that is the
same file fetched and parsed again and again. Here the first crawler to need a host's robots.txt
fetches it, and the others wait for it and take the same parse (the rules are read-only; which
user agent they are checked for is each crawler's, at each request). Only a robots.txt answered
200 is shared: after a failure (retries spent, a 5xx, a timeout) Scrapy allows everything, and one
platform's bad luck must not allow everything for all of them, so each crawler then fetches its own.
Every request is still checked against the rules.
"""

from __future__ import annotations

import os
from typing import ClassVar

from protego import Protego
from scrapy import Spider
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.robotstxt import RobotsTxtMiddleware
from scrapy.http import Request, Response
from scrapy.robotstxt import ProtegoRobotParser, RobotParser, decode_robotstxt
from scrapy.utils.defer import maybe_deferred_to_future
from scrapy.utils.httpobj import urlparse_cached
from twisted.internet.defer import Deferred


class SharedProtegoRobotParser(ProtegoRobotParser):
    _parsed: ClassVar[dict[bytes, Protego]] = {}

    def __init__(self, robotstxt_body: bytes, spider: Spider | None) -> None:
        self.spider = spider
        parsed = self._parsed.get(robotstxt_body)
        if parsed is None:
            parsed = self._parsed[robotstxt_body] = Protego.parse(decode_robotstxt(robotstxt_body, spider))
        self.rp = parsed


class _Fetching:
    """A host's robots.txt one crawler is fetching; the other crawlers that need it wait here.

    Each waiter gets its own Deferred: one Deferred awaited from several coroutines hands the result
    to the first only (its asyncio adapter's callback returns None to the next)."""

    def __init__(self) -> None:
        self.waiting: list[Deferred[RobotParser | None]] = []

    async def result(self) -> RobotParser | None:
        waiter: Deferred[RobotParser | None] = Deferred()
        self.waiting.append(waiter)
        return await maybe_deferred_to_future(waiter)

    def done(self, parser: RobotParser | None) -> None:
        for waiter in self.waiting:
            waiter.callback(parser)


class SharedRobotsTxtMiddleware(RobotsTxtMiddleware):
    #: (process id, scheme://host) → the host's shared parser, or the fetch under way (it ends with the
    #: parser, or None when the fetch was not answered 200). The process id: a crawl child forked from
    #: a process that crawled before fetches the file again.
    _shared: ClassVar[dict[tuple[int, str], RobotParser | _Fetching]] = {}

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        #: Per host this crawler fetched robots.txt from: whether it was answered 200.
        self._answered: dict[str, bool] = {}

    async def robot_parser(self, request: Request) -> RobotParser | None:
        url = urlparse_cached(request)
        if url.netloc in self._parsers:  # this crawler has it, or is fetching it itself
            return await super().robot_parser(request)
        key = (os.getpid(), f"{url.scheme}://{url.netloc}")
        shared = self._shared.get(key)
        if shared is None:  # the first crawler to need it fetches it, and shares it if answered 200
            fetching = self._shared[key] = _Fetching()
            parser: RobotParser | None = None
            try:
                parser = await super().robot_parser(request)
            finally:
                shareable = parser if self._answered.get(url.netloc, False) else None
                if shareable is not None:
                    self._shared[key] = shareable
                else:
                    del self._shared[key]
                fetching.done(shareable)
            return parser
        parser = await shared.result() if isinstance(shared, _Fetching) else shared
        if parser is None:  # the fetch was not answered 200: this crawler fetches its own
            return await super().robot_parser(request)
        self._parsers[url.netloc] = parser
        self._stats.inc_value("robotstxt/shared")
        return parser

    async def _parse_robots(self, response: Response, netloc: str, request: Request) -> None:
        self._answered[netloc] = response.status == 200
        await super()._parse_robots(response, netloc, request)
