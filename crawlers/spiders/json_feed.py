"""JSON feed spider: search or list APIs paged by page number, offset or cursor (Weibo, 黑猫投诉…).

The JSON may come bare, in a JSONP wrapper or embedded in an HTML page (``response.format``).
"""

from __future__ import annotations

from typing import Any

import scrapy
from scrapy.http import Response

from crawlers.fields import fill_template, json_first, json_path, parse_time, to_int
from crawlers.items import PostItem
from crawlers.spiders.base import Output, PlatformSpider
from crawlers.spiders.payload import load_payload

#: fields: items (path to the list of posts), then paths inside one post. ``url`` may be a template
#: such as "{base_url}/detail/{mid}" filled from JSON paths inside the post.
ITEM_FIELDS = ("external_id", "text", "title", "author", "url", "ip_location", "parent_external_id")
COUNT_FIELDS = ("likes", "replies", "reposts")


class JsonFeedSpider(PlatformSpider):
    kind = "json_feed"

    def parse_listing(self, response: Response) -> Output:
        data = load_payload(response.text, self.platform.response)
        records = json_path(data, self.fields.get("items", ""))
        out: Output = []
        for record in records:
            if isinstance(record, dict):
                out.extend(self.extract_all(record, response))
        if self.reached(response, [o for o in out if isinstance(o, PostItem)]):
            self.count("stopped_at_seen")  # newest first: every later page was crawled before
            return out
        if records and (follow := self.next_page(response, data, len(records))) is not None:
            out.append(follow)
        return out

    def reached(self, response: Response, items: list[PostItem]) -> bool:
        """True when this page holds content at or below the mark: later pages were read before."""
        return self.seen.reached(items)

    def extract_all(self, record: dict[str, Any], response: Response) -> list[PostItem]:
        """The posts in one record: here just the record; comment threads add its nested replies."""
        item = self.extract(record, response)
        return [item] if item is not None else []

    def extract(self, record: dict[str, Any], response: Response) -> PostItem | None:
        values: dict[str, Any] = {}
        for name in ITEM_FIELDS:
            path = self.fields.get(name)
            if path and "{" in path:
                values[name] = fill_template(path, record, self.platform.base_url)
            else:
                value = json_first(record, path)
                values[name] = None if value is None else str(value)
        if values.get("url"):
            values["url"] = self.join(values["url"], response)
        values["published_at"] = parse_time(
            json_first(record, self.fields.get("published_at")), self.fields.get("time_format")
        )
        for name in COUNT_FIELDS:
            values[name] = to_int(json_first(record, self.fields.get(name)))
        return self.make_item(values, response)

    def next_page(self, response: Response, data: Any, found: int) -> scrapy.Request | None:
        """The next request, or None: has-more false, is-end true, total covered, no cursor or max_pages."""
        pagination = self.platform.pagination
        meta = response.meta
        if pagination.style == "none" or meta["pages_seen"] >= pagination.max_pages:
            return None
        if pagination.has_more_path and not json_first(data, pagination.has_more_path):
            return None
        if pagination.end_path and json_first(data, pagination.end_path):
            return None
        if pagination.total_path and self.reached_total(meta, json_first(data, pagination.total_path)):
            return None
        if pagination.style == "cursor":
            page = json_first(data, pagination.cursor_path or "")
            if page in (None, "", 0, "0"):
                return None
        elif pagination.style == "offset":
            page = meta["page"] + pagination.per_page
        else:
            page = meta["page"] + 1
        return self.page_request(meta["entry"], meta["keyword"], page, meta["pages_seen"] + 1)

    def reached_total(self, meta: dict[str, Any], total: Any) -> bool:
        """True when the pages fetched so far cover the response's total count (saves one empty page)."""
        pagination = self.platform.pagination
        if pagination.style == "offset":
            covered = meta["page"] + pagination.per_page
        else:
            covered = (meta["page"] - pagination.start + 1) * pagination.per_page
        return covered >= to_int(total) if total is not None else False
