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

from sqlalchemy.orm import Session, sessionmaker

from crawlers.items import PostItem
from storage.db import session_scope
from storage.queries import stored_external_ids

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


def seen_content(
    factory: sessionmaker[Session], platform_id: str, mark: str | None, stored_before: bool = True
) -> SeenContent:
    """What was seen, from a mark already read: a lookup of the platform's stored external ids.

    ``stored_before`` False (the platform had no post when the run opened) makes the first crawl of a
    platform skip the lookups: every thread is new. Threads this crawl stores itself are never
    "seen" then, so a thread that slides to the next listing page mid-crawl does not end the paging.
    """
    if not stored_before:
        return SeenContent(parse_mark(mark))

    def known(ids: list[str]) -> set[str]:
        if not ids:
            return set()
        with session_scope(factory) as session:
            return stored_external_ids(session, platform_id, ids)

    return SeenContent(parse_mark(mark), known)
