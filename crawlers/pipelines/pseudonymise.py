"""Replace the author's handle with a keyed hash (HMAC-SHA256 with settings.author_hash_key)."""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from crawlers.items import PostItem
from storage.personal_data import author_key


class PseudonymisePipeline:
    def __init__(self, secret: str) -> None:
        self.secret = secret

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PseudonymisePipeline:
        settings = crawler.settings.get("WEISU_SETTINGS")
        if settings is None:
            raise NotConfigured("WEISU_SETTINGS is not set")
        return cls(settings.author_hash_key)

    def process_item(self, item: Any) -> PostItem:
        if item.author:
            item.author_key = author_key(self.secret, item.platform_id, item.author)
        item.author = None  # the raw handle never leaves this pipeline
        return item
