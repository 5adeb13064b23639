"""Downloader middlewares: stop at a login wall, a captcha page or an expired cookie (crawlers/walls.py).

``LoginRedirectMiddleware`` (650) sees a redirect before Scrapy follows it: a redirect to a login URL is
a wall, and the login page (often on another host, often robots-disallowed) is never fetched.
``WallMiddleware`` (580) sees every other answer after decompression and redirects and before retries.
A wall is recorded in the run's stats (its kind, counted, and the most pressing one with its reason)
and raised as ``WallHit`` (crawlers.refused): the request's errback counts it as walled, so the spider parses
nothing, and the entry point it belongs to goes no further, while the platform's other entry points go on.
"""

from __future__ import annotations

import logging
from urllib.parse import urljoin

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from crawlers.refused import WallHit
from crawlers.walls import (
    COUNT_STAT,
    CREDENTIAL_SENT,
    REASON_STAT,
    STATUS_STAT,
    Wall,
    WallRules,
    login_status,
    more_pressing,
    reason,
)

logger = logging.getLogger(__name__)


class _WallsBase:
    def __init__(self, crawler: Crawler, platform_id: str, rules: WallRules) -> None:
        self.crawler = crawler
        self.platform_id = platform_id
        self.rules = rules

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> _WallsBase:
        weisu, platform_id = crawler.settings.get("WEISU_SETTINGS"), crawler.settings.get("WEISU_PLATFORM")
        if weisu is None or not platform_id:
            raise NotConfigured("WEISU_SETTINGS / WEISU_PLATFORM are not set")
        return cls(crawler, platform_id, WallRules(weisu.platforms[platform_id]))

    def hit(self, wall: Wall, request: Request) -> WallHit:
        """Record the wall in the run's stats, log it, and return the exception that stops the request."""
        text = reason(wall, request.meta.get("label"), self.rules.platform)
        stats = self.crawler.stats
        assert stats is not None
        stats.inc_value(COUNT_STAT.format(wall.status.value))
        if more_pressing(wall.status, stats.get_value(STATUS_STAT)):
            stats.set_value(STATUS_STAT, wall.status.value)
            stats.set_value(REASON_STAT, text)
        logger.warning(
            "access wall: platform=%s status=%s url=%s: %s", self.platform_id, wall.status, request.url, text
        )
        return WallHit(text)


class LoginRedirectMiddleware(_WallsBase):
    def process_response(self, request: Request, response: Response) -> Response:
        if 300 <= response.status < 400 and not request.meta.get("dont_obey_robotstxt"):
            location = response.headers.get(b"Location")
            target = urljoin(request.url, location.decode("latin-1")) if location else ""
            if target and self.rules.is_login_url(target):
                wall = Wall(login_status(bool(request.meta.get(CREDENTIAL_SENT))), "跳转到登录页")
                raise self.hit(wall, request)
        return response


class WallMiddleware(_WallsBase):
    def process_response(self, request: Request, response: Response) -> Response:
        if request.meta.get("dont_obey_robotstxt"):  # Scrapy's own robots.txt request
            return response
        wall = self.rules.recognise(response, bool(request.meta.get(CREDENTIAL_SENT)))
        if wall is not None:
            raise self.hit(wall, request)
        return response
