"""Mask personal data (ID, card, phone, QQ and WeChat numbers, e-mails, plates) before storage."""

from __future__ import annotations

from typing import Any

from scrapy.crawler import Crawler

from crawlers.items import PostItem
from storage.personal_data import mask_personal_data


class MaskPipeline:
    def __init__(self, crawler: Crawler | None = None) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MaskPipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> PostItem:
        item.text, counts = mask_personal_data(item.text)
        if item.title:
            item.title, title_counts = mask_personal_data(item.title)
            for name, n in title_counts.items():
                counts[name] = counts.get(name, 0) + n
        item.masked = counts
        if self.crawler is not None and self.crawler.stats is not None:
            for name, n in counts.items():
                self.crawler.stats.inc_value(f"weisu/masked/{name}", n)
        return item
