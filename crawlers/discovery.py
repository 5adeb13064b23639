"""Comment discovery: which threads a comments platform reads this run, beyond its watched ids.

A thread is the comments under a post another platform found (a Weibo search hit, a Bilibili video
from the video search). Its key is a field of that stored post; it is followed when the post passes
the platform's follow rule and was never followed, or was and shows more replies than when it was
last read, or was last read ``reread_hours`` ago; at most ``budget`` threads a run, most engaged
first. Every thread keeps its own mark (the newest top-level comment read), so a re-read stops at
what it already holds — unless the source's count says more was written since than the re-read has
met: new replies under older comments, which sit on older pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from crawlers.incremental import Mark, parse_mark
from settings import CitySettings, DiscoverySettings, FollowRule, PlatformSettings
from storage.models import Post, title_and_text
from storage.queries import comment_threads, thread_source_posts


@dataclass(frozen=True)
class ThreadPlan:
    """One thread to read this run."""

    key: str
    #: (platform, external id) of the found post; None for a watched id from config.yaml.
    source: tuple[str, str] | None
    #: The source post's reply count now (0 for a watched id): stored once the thread is read.
    replies: int
    #: The thread's own mark from its last full read: paging stops at a comment at or below it.
    mark: Mark | None
    #: Comments the source shows beyond its count at the last full read: until as many comments
    #: written after that read are seen, paging goes on past the mark, since new replies under older
    #: comments sit on the older pages.
    unseen: int = 0
    #: When the last full read was (None: never read).
    read_at: datetime | None = None


def place_names(city: CitySettings) -> list[str]:
    """The city's district names, the local places the follow rule looks for."""
    return list(city.districts)


def follows(post: Post, rule: FollowRule, places: list[str]) -> bool:
    """True when the post passes any configured test of the rule (no test configured: False)."""
    if rule.min_replies is not None and post.replies >= rule.min_replies:
        return True
    if rule.min_likes is not None and post.likes >= rule.min_likes:
        return True
    text = title_and_text(post.title, post.text)
    if any(keyword in text for keyword in rule.keywords):
        return True
    return rule.local_places and any(place in text for place in places)


def thread_key(post: Post, discovery: DiscoverySettings) -> str | None:
    """The thread key a found post gives (None when the pattern does not match)."""
    value = str(getattr(post, discovery.key.value) or "")
    if discovery.key_pattern is None:
        return value or None
    match = re.search(discovery.key_pattern, value)
    return match.group(1) if match and match.group(1) else None


def discovered_threads(
    session: Session,
    platform_id: str,
    platform: PlatformSettings,
    city: CitySettings,
    now: datetime | None = None,
    skip: frozenset[str] = frozenset(),
) -> list[ThreadPlan]:
    """The threads found posts lead to this run: passing the rule, new or grown, within the budget."""
    discovery = platform.discover
    if discovery is None or discovery.budget == 0:
        return []
    now = now or datetime.now(UTC)
    since = now - timedelta(days=discovery.max_age_days)
    stale = now - timedelta(hours=discovery.reread_hours)
    places = place_names(city)
    candidates: dict[str, Post] = {}
    for post in thread_source_posts(session, discovery.sources, since):
        key = thread_key(post, discovery)
        if key and key not in skip and key not in candidates and follows(post, discovery.follow, places):
            candidates[key] = post
    followed = comment_threads(session, platform_id, candidates)
    plans = []
    for key, post in candidates.items():  # most engaged first (the query's order)
        thread = followed.get(key)
        if thread is not None and post.replies <= thread.replies_at_read and thread.last_read_at > stale:
            continue  # read lately, and nothing new shows
        source = (post.platform_id, post.external_id)
        if thread is None:
            plans.append(ThreadPlan(key, source, post.replies, None))
        else:
            unseen = max(0, post.replies - thread.replies_at_read)
            mark = parse_mark(thread.newest_mark)
            plans.append(ThreadPlan(key, source, post.replies, mark, unseen, thread.last_read_at))
        if len(plans) == discovery.budget:
            break
    return plans


def watched_threads(session: Session, platform_id: str, keys: list[str]) -> list[ThreadPlan]:
    """The watched ids of config.yaml as threads, each with its mark from earlier runs."""
    followed = comment_threads(session, platform_id, keys)
    return [
        ThreadPlan(key, None, 0, parse_mark(followed[key].newest_mark) if key in followed else None)
        for key in dict.fromkeys(keys)
    ]
