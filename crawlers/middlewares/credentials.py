"""Downloader middleware: send a platform's cookie or token (from its ``credentials_env`` variable) to
that platform only, and keep it out of everything else.

The credential goes in a Cookie header, or in the header the platform's ``credentials_header`` names,
and only on requests under the platform's ``base_url`` (same scheme, host and port, and path prefix —
the simulator serves every platform on one host under /p/KEY). It is added as a request enters the
downloader and taken off again as its answer (or error) leaves it, before the redirect and retry
middlewares copy the request: a redirect to another host, a link followed elsewhere, a queued retry
never carries it. Its value is never logged, stored, or put in a stat or an exception; a platform
whose variable is unset crawls without it and says so once, naming the variable.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured
from scrapy.http import Response

from crawlers.walls import CREDENTIAL_SENT
from settings import PlatformSettings

logger = logging.getLogger(__name__)
DEFAULT_HEADER = "Cookie"
#: A value with these would split the header (or be refused by the HTTP client, quoting it).
_UNSENDABLE = re.compile(r"[\r\n\x00]")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def within(url: str, base_url: str) -> bool:
    """Whether ``url`` is under ``base_url``: same scheme, host and port, and the base path as a prefix."""
    try:
        target, base = urlsplit(url), urlsplit(base_url)
        target_port = target.port or _DEFAULT_PORTS.get(target.scheme)
        base_port = base.port or _DEFAULT_PORTS.get(base.scheme)
    except ValueError:  # a port that is not a number
        return False
    if (target.scheme, target.hostname, target_port) != (base.scheme, base.hostname, base_port):
        return False
    prefix = base.path.rstrip("/")
    return not prefix or target.path == prefix or target.path.startswith(prefix + "/")


def credential_from_env(platform_id: str, platform: PlatformSettings) -> str | None:
    """The platform's credential, or None (logged once by variable name when unset or unsendable)."""
    variable = platform.credentials_env
    if variable is None:
        return None
    value = os.environ.get(variable, "").strip()
    if not value:
        logger.warning("platform %s: %s is not set; crawling without credentials", platform_id, variable)
        return None
    if _UNSENDABLE.search(value):
        logger.warning(
            "platform %s: %s holds a line break or NUL; crawling without credentials", platform_id, variable
        )
        return None
    return value


class CredentialsMiddleware:
    def __init__(self, base_url: str, header: str, value: str) -> None:
        self.base_url = base_url
        self.header = header
        self._value = value.encode("utf-8")

    def __repr__(self) -> str:  # never the value, should the middleware end up in a message
        return f"CredentialsMiddleware(base_url={self.base_url!r}, header={self.header!r})"

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CredentialsMiddleware:
        weisu, platform_id = crawler.settings.get("WEISU_SETTINGS"), crawler.settings.get("WEISU_PLATFORM")
        if weisu is None or not platform_id:
            raise NotConfigured("WEISU_SETTINGS / WEISU_PLATFORM are not set")
        platform: PlatformSettings = weisu.platforms[platform_id]
        value = credential_from_env(platform_id, platform)
        if value is None:
            raise NotConfigured  # no arguments: Scrapy logs nothing, credential_from_env said why
        return cls(platform.base_url, platform.credentials_header or DEFAULT_HEADER, value)

    def process_request(self, request: Request) -> None:
        if within(request.url, self.base_url):
            request.headers[self.header] = self._value
            request.meta[CREDENTIAL_SENT] = True
        else:
            self._take_off(request)

    def process_response(self, request: Request, response: Response) -> Response:
        self._take_off(request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> Any:
        self._take_off(request)
        return None

    def _take_off(self, request: Request) -> None:
        if request.headers.get(self.header) == self._value:
            del request.headers[self.header]
