"""The exception a downloader middleware raises for an answer that is a wall, not a page.

It lives apart from crawlers/walls.py, which reads payloads through crawlers.spiders, so that the
spiders' errback can tell a wall from other ignored requests without an import cycle.
"""

from __future__ import annotations

from scrapy.exceptions import IgnoreRequest


class WallHit(IgnoreRequest):
    """A response recognised as a wall; the message is the reason (it names no credential value)."""
