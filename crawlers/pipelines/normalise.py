"""Normalise text: strip HTML, unescape entities, NFKC, collapse whitespace, bound the size."""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem

from crawlers.items import PostItem
from crawlers.text import MAX_TEXT_CHARS, normalise_text


class NormalisePipeline:
    def __init__(self, crawler: Crawler | None = None, limit: int = MAX_TEXT_CHARS) -> None:
        self.crawler = crawler
        self.limit = limit

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> NormalisePipeline:
        return cls(crawler, crawler.settings.getint("WEISU_MAX_TEXT_CHARS", MAX_TEXT_CHARS))

    def process_item(self, item: Any) -> PostItem:
        item.text = normalise_text(item.text, self.limit)
        item.title = normalise_text(item.title, 500) or None
        item.ip_location = normalise_text(item.ip_location, 100) or None
        if not item.text:
            if self.crawler is not None and self.crawler.stats is not None:
                self.crawler.stats.inc_value("weisu/dropped/empty_text")
            raise DropItem(f"empty text after normalising: {item.platform_id} {item.external_id}")
        return item
