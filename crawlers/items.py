"""Items the spiders yield: one dataclass per post, as Scrapy's itemadapter accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


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
