"""Incremental crawling: what earlier crawls stored, so paging stops once it reaches seen content —
and never before a region a failed or killed crawl left with a hole.

A platform keeps a high-water mark ("ISO time external-id" of the newest post stored). Feeds sorted
newest first stop after the first page holding a post at or below the mark; HTML boards, whose list
rows carry no time, ask the database which of a page's thread ids are already stored instead, skip
their detail pages, and stop paging at the first page with a *settled* thread. Either way the number
of requests grows with the new content, not with the platform's size.

The gap rule. A run is *clean* when it closes finished with no error: no request lost after its
retries, no page skipped as malformed (its status is ``ok``). Only a clean run proves continuity:
it paged from the top down to content an earlier clean run had reached, fetching everything on the
way. So, by induction over a platform's clean runs, everything at or below what a clean run reached
is stored, and the two stop rules only ever stop at such content:

* Feeds: the mark is written only when a run closes clean (crawl_runs.py). A run that lost a page,
  or was killed, or shut down early, leaves the mark where the last clean run put it, so the next
  run pages down to it again, over the lost page; the store skips what is already there.
* Boards: a thread is *settled* when a clean run stored it (or it was stored outside any run) and
  the list shows no more replies than are stored (where the list shows counts: a board lists a
  thread that has new floors again, bumped, with its new count). A board skips the detail page of
  every settled thread and stops paging at a page holding one; every other thread's detail page is
  fetched (again), since its floors may be partial or new. Threads a killed or holed run stored are
  passed over, not stopped at, so the resuming run pages on (to ``max_pages`` or to the first
  settled thread) past the whole region the interrupted run touched. No marker is needed: the runs'
  own status says which runs proved continuity, and a run killed before it could close is never
  ``ok``.

What a clean run reaches is bounded by ``pagination.max_pages``: content deeper than that below the
top was never promised. The bodies of requests lost for good are also recorded and fetched again by
later runs (crawlers/gaps.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC

from sqlalchemy.orm import Session, sessionmaker

from crawlers.items import PostItem
from storage.db import session_scope
from storage.queries import StoredThread, stored_threads

#: "(ISO time in UTC, external id)": how posts are ordered against a mark.
Mark = tuple[str, str]
#: {stored external id: (whether a clean run stored it, its stored reply count)} for the ids asked about.
StoredThreads = Callable[[list[str]], dict[str, StoredThread]]


def item_mark(item: PostItem) -> Mark | None:
    """A post's place in the newest-first order marks are kept in; None without a publication time."""
    if item.published_at is None:
        return None
    return item.published_at.astimezone(UTC).isoformat(), item.external_id


def parse_mark(mark: str | None) -> Mark | None:
    """ "2026-11-28T02:43:00+00:00 9222034125856492" → (time, id); None when there is no mark yet."""
    if not mark or " " not in mark:
        return None
    when, _, external_id = mark.partition(" ")
    return when, external_id


def _nothing_stored(_ids: list[str]) -> dict[str, StoredThread]:
    return {}


@dataclass
class SeenContent:
    """What earlier crawls stored. The default (no mark, nothing known) makes a full crawl."""

    mark: Mark | None = None
    stored: StoredThreads = field(default=_nothing_stored)

    def threads(
        self, ids: list[str], listed_replies: Mapping[str, int] | None = None
    ) -> tuple[set[str], set[str]]:
        """(stored, settled): the ids stored, and those of them a clean run stored with every reply the
        list shows (``listed_replies``, where the list shows counts): paging stops there, and they are
        not fetched again. A settled thread showing more replies than stored has new floors to read."""
        stored = self.stored(ids)
        listed = listed_replies or {}
        settled = {
            external_id
            for external_id, thread in stored.items()
            if thread.settled and listed.get(external_id, 0) <= thread.replies
        }
        return set(stored), settled

    def reached(self, items: Iterable[PostItem]) -> bool:
        """True when any item is at or below the mark: the pages after this one were crawled before."""
        if self.mark is None:
            return False
        return any((key := item_mark(item)) is not None and key <= self.mark for item in items)


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

    def stored(ids: list[str]) -> dict[str, StoredThread]:
        if not ids:
            return {}
        with session_scope(factory) as session:
            return stored_threads(session, platform_id, ids)

    return SeenContent(parse_mark(mark), stored)
