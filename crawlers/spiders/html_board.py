"""HTML board spider: list pages with thread links → detail pages; next-page links; GBK/GB18030-safe.

A board whose fields name a ``floor`` selector reads a thread past its first post: every reply floor
(after the first post) becomes a post whose parent is the thread, and the thread's own next-page link
(``thread_next``) is followed up to ``pagination.max_pages`` pages. A board whose list rows show each
thread's reply count (``list_replies``) reads a stored thread again when it lists more replies than
were stored: new floors under an old thread.
"""

from __future__ import annotations

from typing import Any

import scrapy
from scrapy.http import Response

from crawlers.fields import parse_time, select, select_first, to_int
from crawlers.items import PostItem
from crawlers.spiders.base import Output, PlatformSpider

#: fields: items (list rows), external_id and link (inside a row), then detail-page selectors.
DETAIL_FIELDS = ("title", "text", "author", "ip_location")
#: Reply floors on a thread page: ``floor`` selects each, these are read inside it.
FLOOR_FIELDS = {"floor_id": "external_id", "floor_text": "text", "floor_author": "author"}


class HtmlBoardSpider(PlatformSpider):
    kind = "html_board"

    def parse_listing(self, response: Response) -> Output:
        out: Output = []
        rows = select(response, self.fields["items"])
        if not rows:
            self.count("empty_pages")  # not an error: a board can be empty, but a monitor may watch it
        threads: list[tuple[str, str]] = []
        listed_replies: dict[str, int] = {}
        for row in rows:
            external_id = select_first(row, self.fields.get("external_id"))
            link = select_first(row, self.fields.get("link"))
            if not external_id or not link:
                self.count("missing_field/link" if external_id else "missing_field/external_id")
                continue
            threads.append((external_id, link))
            if self.fields.get("list_replies"):
                listed_replies[external_id] = to_int(select_first(row, self.fields["list_replies"]))
        # List rows carry no time: ask which threads are stored. A thread a clean run stored, with no
        # more replies listed than stored, is not fetched again, and paging stops there
        # (crawlers/incremental.py: the gap rule). One stored by a run that failed or was killed is
        # fetched again, as is one listing new replies: its reply floors are partial, or new.
        known, settled = self.seen.threads([external_id for external_id, _ in threads], listed_replies)
        for external_id, link in threads:
            if external_id in settled:
                continue
            if external_id in known:
                self.count("threads_read_again")
            meta = {"label": response.meta.get("label"), "external_id": external_id}
            if external_id in listed_replies:
                meta["list_replies"] = listed_replies[external_id]
            detail = self.join(link, response)
            out.append(scrapy.Request(detail, callback=self.parse_detail, errback=self.failed, meta=meta))
        if known:
            # Met content earlier runs stored, so finding nothing new is no sign of a layout change.
            self.count("stopped_at_seen")
        follow = self.next_page(response) if rows and not settled else None
        if follow is not None:
            out.append(follow)
        return out

    def next_page(self, response: Response) -> scrapy.Request | None:
        pagination = self.platform.pagination
        meta = response.meta
        if pagination.style == "none" or meta["pages_seen"] >= pagination.max_pages:
            return None
        if pagination.style == "next_link":
            href = select_first(response, pagination.next_selector or "")
            if not href:
                return None
            keep = ("entry", "keyword", "page", "label")
            next_meta = {k: meta.get(k) for k in keep} | {"pages_seen": meta["pages_seen"] + 1}
            url = self.join(href, response)
            return scrapy.Request(url, callback=self.parse_page, errback=self.failed, meta=next_meta)
        step = pagination.per_page if pagination.style == "offset" else 1
        return self.page_request(meta["entry"], meta["keyword"], meta["page"] + step, meta["pages_seen"] + 1)

    def parse_detail(self, response: Response) -> Output:
        return self.guarded(self.extract_detail, response)

    def extract_detail(self, response: Response) -> Output:
        thread_page = int(response.meta.get("thread_page", 1))
        out: Output = [] if thread_page > 1 else list(self.first_post(response))
        if not self.fields.get("floor"):
            return out
        floors = select(response, self.fields["floor"])
        for floor in floors[1:] if thread_page == 1 else floors:  # page 1 opens with the first post
            values: dict[str, Any] = {"url": response.url, "parent_external_id": response.meta["external_id"]}
            for field, name in FLOOR_FIELDS.items():
                values[name] = select_first(floor, self.fields.get(field))
            values["published_at"] = parse_time(
                select_first(floor, self.fields.get("floor_time")), self.fields.get("time_format")
            )
            if (item := self.make_item(values, response)) is not None:
                out.append(item)
        href = select_first(response, self.fields.get("thread_next"))
        if floors and href and thread_page < self.platform.pagination.max_pages:
            keep = ("label", "external_id")
            meta = {k: response.meta.get(k) for k in keep} | {"thread_page": thread_page + 1}
            url = self.join(href, response)
            out.append(scrapy.Request(url, callback=self.parse_detail, errback=self.failed, meta=meta))
        return out

    def first_post(self, response: Response) -> list[PostItem]:
        values: dict[str, Any] = {"external_id": response.meta["external_id"], "url": response.url}
        for name in DETAIL_FIELDS:
            values[name] = select_first(response, self.fields.get(name))
        values["published_at"] = parse_time(
            select_first(response, self.fields.get("published_at")), self.fields.get("time_format")
        )
        for name in ("likes", "replies", "reposts"):
            values[name] = to_int(select_first(response, self.fields.get(name)))
        if not self.fields.get("replies") and "list_replies" in response.meta:
            values["replies"] = int(response.meta["list_replies"])  # the count the list row showed
        item = self.make_item(values, response)
        return [item] if item else []
