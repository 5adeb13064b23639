"""Comments spider: a thread of nested comments under a video or post; replies become child posts.

A thread is one JSON API (Bilibili ``x/v2/reply``, Weibo ``comments/hotflow``, …) whose records each
may carry a list of replies at ``fields.children``; every reply is a post whose
``parent_external_id`` is the comment it answers: the record's own parent field where the platform
has one (Bilibili's ``parent_str`` names the reply a reply-to-a-reply answers), else the nesting.
"""

from __future__ import annotations

from typing import Any

from scrapy.http import Response

from crawlers.fields import json_path
from crawlers.items import PostItem
from crawlers.spiders.json_feed import JsonFeedSpider

#: Replies nested deeper than this are ignored: a hostile response must not make us recurse forever.
MAX_DEPTH = 8


class CommentsSpider(JsonFeedSpider):
    kind = "comments"

    def extract_all(self, record: dict[str, Any], response: Response) -> list[PostItem]:
        return self._walk(record, response, parent=None, depth=0)

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
        if children_path and depth < MAX_DEPTH:
            for child in json_path(record, children_path):
                if isinstance(child, dict):
                    out.extend(self._walk(child, response, item.external_id, depth + 1))
        return out
