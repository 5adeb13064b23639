"""Spider middleware: stamp every post item with the raw response body it was parsed from (evidence).

Spiders stay unaware of it: whatever item leaves a callback gets ``item.evidence``, one shared
``RawBody`` per response (the detail page for listing+detail boards, else the listing or API page).
A callback's output is gathered before it goes on, so the body knows the author handles of every
item parsed from it; the store pipeline masks it (storage.body_masking) and writes it once per
distinct SHA-256 of the original beside the posts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

from scrapy.crawler import Crawler
from scrapy.http import Response

from crawlers.items import PostItem, RawBody

DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024


class EvidenceMiddleware:
    def __init__(self, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.max_body_bytes = max_body_bytes

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EvidenceMiddleware:
        return cls(crawler.settings.getint("WEISU_MAX_RAW_BODY_BYTES", DEFAULT_MAX_BODY_BYTES))

    def raw_body(self, response: Response, handles: frozenset[str]) -> RawBody:
        content_type = response.headers.get(b"Content-Type")
        return RawBody.of(
            url=response.url,
            status=response.status,
            content_type=content_type.decode("latin-1")[:200] if content_type else None,
            fetched_at=datetime.now(UTC),
            body=response.body,
            limit=self.max_body_bytes,
            handles=handles,
        )

    def stamp(self, response: Response, output: list[Any]) -> list[Any]:
        """Stamp the output's unstamped items with one body (built only when there is one: most
        responses yield requests alone) that knows all their authors."""
        items = [e for e in output if isinstance(e, PostItem) and e.evidence is None]
        if items:
            raw = self.raw_body(response, frozenset(item.author for item in items if item.author))
            for item in items:
                item.evidence = raw
        return output

    def process_spider_output(self, response: Response, result: Iterable[Any]) -> Iterable[Any]:
        yield from self.stamp(response, list(result))

    async def process_spider_output_async(
        self, response: Response, result: AsyncIterator[Any]
    ) -> AsyncIterator[Any]:
        for element in self.stamp(response, [element async for element in result]):
            yield element
