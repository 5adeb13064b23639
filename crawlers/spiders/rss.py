"""RSS 2.0 spider: one feed per entry point, items with title, link, description, pubDate and guid."""

from __future__ import annotations

from typing import Any

from scrapy.http import Response, TextResponse

from crawlers.fields import parse_time, select, select_first
from crawlers.spiders.base import Output, PlatformSpider

#: RSS 2.0 element names; a platform's ``fields`` (XPath, relative to one item) override them.
RSS_FIELDS = {
    "items": "//channel/item",
    "external_id": "guid/text()",
    "title": "title/text()",
    "text": "description/text()",
    "url": "link/text()",
    "published_at": "pubDate/text()",
    "author": "author/text()",
}


class RssSpider(PlatformSpider):
    kind = "rss"

    def parse_listing(self, response: Response) -> Output:
        if not isinstance(response, TextResponse):
            raise ValueError("not a text response")
        fields = RSS_FIELDS | self.fields
        items = select(response, fields["items"], xpath=True)
        if not items and not response.xpath("/rss|/*[local-name()='feed']"):
            raise ValueError("no RSS document in the response")
        out: Output = []
        for node in items:
            values: dict[str, Any] = {
                name: select_first(node, fields[name], xpath=True)
                for name in ("external_id", "title", "text", "url", "author")
            }
            values["external_id"] = values["external_id"] or values["url"]
            values["text"] = values["text"] or values["title"]
            values["published_at"] = parse_time(select_first(node, fields["published_at"], xpath=True))
            if (item := self.make_item(values, response)) is not None:
                out.append(item)
        return out
