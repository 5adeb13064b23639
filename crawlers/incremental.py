"""Incremental crawling: what earlier crawls stored, so a feed stops paging once it reaches seen content.

A platform keeps a high-water mark ("ISO time external-id" of the newest post stored). Feeds sorted
newest first stop after the first page holding a post at or below the mark; HTML boards, whose list
rows carry no time, ask the database which of a page's thread ids are already stored instead, skip
their detail pages, and stop paging at the first page with a known thread. Either way the number of
requests grows with the new content, not with the platform's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crawlers.items import PostItem
from storage.db import session_scope
from storage.models import Platform, Post

KnownIds = Callable[[list[str]], set[str]]


def parse_mark(mark: str | None) -> tuple[str, str] | None:
    """ "2026-11-28T02:43:00+00:00 9222034125856492" → (time, id); None when there is no mark yet."""
    if not mark or " " not in mark:
        return None
    when, _, external_id = mark.partition(" ")
    return when, external_id


def _nothing_known(_ids: list[str]) -> set[str]:
    return set()


@dataclass
class SeenContent:
    """What earlier crawls stored. The default (no mark, nothing known) makes a full crawl."""

    mark: tuple[str, str] | None = None
    known: KnownIds = field(default=_nothing_known)

    def reached(self, items: Iterable[PostItem]) -> bool:
        """True when any item is at or below the mark: the pages after this one were crawled before."""
        if self.mark is None:
            return False
        for item in items:
            if item.published_at is not None:
                key = (item.published_at.astimezone(UTC).isoformat(), item.external_id)
                if key <= self.mark:
                    return True
        return False


def load_seen(factory: sessionmaker[Session], platform_id: str) -> SeenContent:
    """The platform's mark from the database, and a lookup of its stored external ids."""
    with session_scope(factory) as session:
        mark = session.scalar(select(Platform.high_water_mark).where(Platform.id == platform_id))

    def known(ids: list[str]) -> set[str]:
        if not ids:
            return set()
        with session_scope(factory) as session:
            query = select(Post.external_id).where(Post.platform_id == platform_id, Post.external_id.in_(ids))
            return set(session.scalars(query))

    return SeenContent(parse_mark(mark), known)
