"""Comments spider: a thread of nested comments under a video or post; replies become child posts.

A thread is one JSON API (Bilibili ``x/v2/reply``, Weibo ``comments/hotflow``, …) whose records each
may carry a list of replies at ``fields.children``; every reply is a post whose
``parent_external_id`` is the comment it answers: the record's own parent field where the platform
has one (Bilibili's ``parent_str`` names the reply a reply-to-a-reply answers), else the nesting.

The threads read are the watched ids of config.yaml plus, with ``discover:``, the threads under
posts other platforms found (crawlers.discovery). Each thread keeps its own mark: comments come
newest first, so paging a thread stops at the first page reaching what the last full read held —
unless its source post counts more new comments than the pages read so far hold, when it pages on
to find the new replies under older comments.
A thread is recorded as read only when every one of its pages was read: one that failed is read
again next run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import scrapy
from scrapy.http import Response

from crawlers.discovery import ThreadPlan, discovered_threads, watched_threads
from crawlers.fields import fill_template, json_first, json_path, to_int
from crawlers.incremental import Mark, SeenContent, item_mark
from crawlers.items import PostItem
from crawlers.spiders.base import Output
from crawlers.spiders.json_feed import JsonFeedSpider
from crawlers.spiders.payload import load_payload
from settings import Settings
from storage.db import session_factory_for, session_scope
from storage.queries import record_thread_read

#: Stands for ``{page}`` in a reply-API URL while the comment's values fill its other placeholders.
_PAGE = "\x00page\x00"
#: Replies nested deeper than this are ignored: a hostile response must not make us recurse forever.
MAX_DEPTH = 8


@dataclass
class _Reading:
    """A thread being read: its requests still out, whether one was lost, the newest comment seen."""

    pending: int = 0
    broken: bool = False
    newest: Mark | None = None
    #: Comments seen so far that were written after the thread's last full read.
    written_since: int = 0


class CommentsSpider(JsonFeedSpider):
    kind = "comments"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: This run's threads by key (the ``{keyword}`` of the entry point's URL).
        self.threads: dict[str, ThreadPlan] = {}
        self._reading: dict[str, _Reading] = {}
        #: Reply-API requests for the page being parsed (extract_all adds them, parse_listing sends them).
        self._more_replies: list[scrapy.Request] = []
        discovery = self.platform.discover
        self.max_depth = discovery.max_depth if discovery is not None else MAX_DEPTH

    # --- which threads ----------------------------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        watched = [k for entry in self.platform.entry_points for k in entry.keywords]
        for plan in self.plan_threads(watched):
            self.threads[plan.key] = plan
        async for request in super().start():  # the watched ids, as configured
            yield request
        start = self.platform.pagination.start
        for plan in self.threads.values():
            if plan.source is not None:
                self.count("threads_followed")
                yield self.page_request(0, plan.key, start, pages_seen=1)

    def plan_threads(self, watched: list[str]) -> list[ThreadPlan]:
        """Watched ids with their marks, then the discovered threads (none without a database)."""
        settings = self._thread_state_settings()
        if settings is None:
            return []
        with session_scope(session_factory_for(settings.database_url)) as session:
            plans = watched_threads(session, self.platform_id, watched)
            plans += discovered_threads(
                session, self.platform_id, self.platform, settings.city, skip=frozenset(watched)
            )
        return plans

    def _thread_state_settings(self) -> Settings | None:
        """weisu's settings when this crawl keeps thread state in the database (WEISU_THREAD_STATE)."""
        if self.crawler is None or not self.crawler.settings.getbool("WEISU_THREAD_STATE"):
            return None
        settings: Settings | None = self.crawler.settings.get("WEISU_SETTINGS")
        return settings

    # --- paging one thread ------------------------------------------------------------------------

    def page_request(
        self, entry_index: int, keyword: str | None, page: Any, pages_seen: int
    ) -> scrapy.Request:
        if keyword in self.threads:
            self._reading.setdefault(keyword, _Reading()).pending += 1
        return super().page_request(entry_index, keyword, page, pages_seen)

    def parse_listing(self, response: Response) -> Output:
        self._more_replies = []
        out = super().parse_listing(response)
        out.extend(self._more_replies)
        key = response.meta.get("keyword")
        if key in self.threads:
            reading = self._reading.setdefault(key, _Reading())
            for item in out:
                if isinstance(item, PostItem) and item.parent_external_id is None:
                    mark = item_mark(item)
                    if mark is not None and (reading.newest is None or mark > reading.newest):
                        reading.newest = mark
            self._done_with_request(key)
        return out

    def past_skipped(self, meta: Any) -> Output:
        key = meta.get("keyword")
        if key in self.threads:
            self._reading.setdefault(key, _Reading()).broken = True
            self._done_with_request(key)
        return super().past_skipped(meta)

    def reached(self, response: Response, items: list[PostItem]) -> bool:
        plan = self.threads.get(response.meta.get("keyword") or "")
        if plan is None:
            return super().reached(response, items)
        # The thread's own mark, against its top-level comments (replies come oldest first).
        at_mark = SeenContent(plan.mark).reached(i for i in items if i.parent_external_id is None)
        if plan.read_at is None:
            return at_mark
        reading = self._reading.setdefault(plan.key, _Reading())
        read_at = plan.read_at
        reading.written_since += sum(1 for i in items if i.published_at and i.published_at > read_at)
        if at_mark and reading.written_since < plan.unseen:
            # The source counts more new comments than the pages down to the mark hold: the rest are
            # replies under older comments, on the pages past the mark (up to max_pages).
            self.count("read_past_mark")
            return False
        return at_mark

    def next_page(self, response: Response, data: Any, found: int) -> scrapy.Request | None:
        plan = self.threads.get(response.meta.get("keyword") or "")
        discovery = self.platform.discover
        found_thread = plan is not None and plan.source is not None and discovery is not None
        if found_thread and discovery is not None and response.meta["pages_seen"] >= discovery.max_pages:
            return None  # a found thread reads at most discover.max_pages pages a run
        return super().next_page(response, data, found)

    def _done_with_request(self, key: str) -> None:
        reading = self._reading[key]
        reading.pending -= 1
        if reading.pending > 0 or reading.broken:
            return
        plan = self.threads[key]
        settings = self._thread_state_settings()
        if settings is None:
            return
        newest = " ".join(reading.newest) if reading.newest is not None else None
        with session_scope(session_factory_for(settings.database_url)) as session:
            record_thread_read(
                session,
                self.platform_id,
                key,
                source=plan.source,
                replies=plan.replies,
                newest_mark=newest,
                now=datetime.now(UTC),
            )
        self.count("threads_read")

    # --- one page's comments ----------------------------------------------------------------------

    def extract_all(self, record: dict[str, Any], response: Response) -> list[PostItem]:
        items = self._walk(record, response, parent=None, depth=0)
        api = self.platform.discover.reply_api if self.platform.discover is not None else None
        if api is not None and items and self.max_depth >= 1:
            total = to_int(json_first(record, api.count))
            inlined = [i.external_id for i in items[1:]]
            if total > len(inlined):
                # {page} stays a placeholder while the comment's own values fill the rest.
                filled = fill_template(api.url.replace("{page}", _PAGE), record, self.platform.base_url)
                meta = response.meta | {"reply_root": items[0].external_id, "reply_seen": inlined}
                self._more_replies.append(self._reply_request(filled, meta | {"reply_count": total}, 1))
        return items

    # --- replies beyond those inlined (Bilibili x/v2/reply/reply) ---------------------------------

    def _reply_request(self, url: str, meta: Mapping[str, Any], page: int) -> scrapy.Request:
        key = meta.get("keyword")
        if key in self.threads:
            self._reading.setdefault(key, _Reading()).pending += 1
        keep = ("keyword", "label", "reply_root", "reply_seen", "reply_count")
        return scrapy.Request(
            self.join(url.replace(_PAGE, str(page))),
            callback=self.parse_replies,
            errback=self.failed,
            meta={name: meta.get(name) for name in keep} | {"reply_url": url, "reply_page": page},
        )

    def parse_replies(self, response: Response) -> Output:
        return self.guarded(self._replies, response)

    def _replies(self, response: Response) -> Output:
        """One page of a comment's replies: those not inlined already, then the next page."""
        api = self.platform.discover.reply_api if self.platform.discover is not None else None
        if api is None:
            return []
        meta = response.meta
        data = load_payload(response.text, self.platform.response)
        records = [r for r in json_path(data, api.items) if isinstance(r, dict)]
        seen = set(meta["reply_seen"])
        out: Output = [
            item
            for record in records
            for item in self._walk(record, response, parent=meta["reply_root"], depth=1)
            if item.external_id not in seen
        ]
        page = meta["reply_page"]
        if records and page < api.max_pages and page * api.page_size < meta["reply_count"]:
            out.append(self._reply_request(meta["reply_url"], meta, page + 1))
        if meta.get("keyword") in self.threads:
            self._done_with_request(meta["keyword"])
        return out

    def _walk(
        self, record: dict[str, Any], response: Response, parent: str | None, depth: int
    ) -> list[PostItem]:
        item = self.extract(record, response)
        if item is None:
            return []
        if item.parent_external_id in (None, "", "0"):
            # Roots say "0", "" or nothing; then the nesting tells which comment a reply answers.
            item.parent_external_id = parent
        out = [item]
        children_path = self.fields.get("children")
        if children_path and depth < self.max_depth:
            for child in json_path(record, children_path):
                if isinstance(child, dict):
                    out.extend(self._walk(child, response, item.external_id, depth + 1))
        return out
