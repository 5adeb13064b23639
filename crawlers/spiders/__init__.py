"""Generic spiders, one per platform kind; a platform entry in config.yaml picks its kind."""

from __future__ import annotations

from crawlers.spiders.base import PlatformSpider
from crawlers.spiders.comments import CommentsSpider
from crawlers.spiders.html_board import HtmlBoardSpider
from crawlers.spiders.json_feed import JsonFeedSpider
from crawlers.spiders.rss import RssSpider

#: kind → spider class.
SPIDERS: dict[str, type[PlatformSpider]] = {
    "json_feed": JsonFeedSpider,
    "comments": CommentsSpider,
    "html_board": HtmlBoardSpider,
    "rss": RssSpider,
}

__all__ = ["SPIDERS", "CommentsSpider", "HtmlBoardSpider", "JsonFeedSpider", "PlatformSpider", "RssSpider"]
