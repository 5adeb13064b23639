"""Items the spiders yield: one dataclass per post, as Scrapy's itemadapter accepts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RawBody:
    """The response a post came from, as served, cut at the configured size.

    One object per response, shared by every item parsed from it; ``sha256`` is of ``body`` (the
    bytes as served, kept up to the limit), so the original can be proven against it after the
    store pipeline has masked the copy it keeps; ``size`` is the size as served; ``handles`` are the
    author handles of every item parsed from it, which the stored copy replaces by their keys.
    """

    url: str
    status: int
    content_type: str | None
    fetched_at: datetime
    body: bytes
    size: int
    sha256: str
    handles: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        url: str,
        status: int,
        content_type: str | None,
        fetched_at: datetime,
        body: bytes,
        limit: int,
        handles: frozenset[str] = frozenset(),
    ) -> RawBody:
        kept = body[:limit]
        digest = hashlib.sha256(kept).hexdigest()
        return cls(url, status, content_type, fetched_at, kept, len(body), digest, handles)


@dataclass
class PostItem:
    """One post as found on a platform; pipelines normalise, mask, pseudonymise and store it."""

    platform_id: str
    external_id: str
    url: str
    text: str
    title: str | None = None
    #: The raw handle, only until the pseudonymise pipeline replaces it with ``author_key``.
    author: str | None = None
    author_key: str | None = None
    published_at: datetime | None = None
    likes: int = 0
    replies: int = 0
    reposts: int = 0
    ip_location: str | None = None
    entry_point: str | None = None
    parent_external_id: str | None = None
    masked: dict[str, int] = field(default_factory=dict)
    #: The response behind the post, stamped by the evidence spider middleware; stored as raw_responses.
    evidence: RawBody | None = field(default=None, repr=False, compare=False)

    def row(self) -> dict[str, Any]:
        """The posts-table columns this item fills (the store pipeline adds hash, run and fetch time)."""
        return {
            "platform_id": self.platform_id,
            "external_id": self.external_id,
            "url": self.url[:2000],
            "parent_external_id": self.parent_external_id,
            "author_key": self.author_key,
            "title": self.title[:500] if self.title else None,
            "text": self.text,
            "published_at": self.published_at,
            "likes": self.likes,
            "replies": self.replies,
            "reposts": self.reposts,
            "ip_location": self.ip_location[:100] if self.ip_location else None,
            "entry_point": self.entry_point[:200] if self.entry_point else None,
        }
