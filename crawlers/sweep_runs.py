"""A distributed sweep's crawl_runs rows: each worker writes one row per platform, its *share* of the
platform's sweep (tagged ``weisu/sweep`` in its stats, crawlers/extensions/crawl_runs.py). Once every
share of the sweep has closed, the last worker to close *settles* the sweep: each share learns how many
shares its platform's sweep had (``weisu/sweep_shares``, what the health rules wait for before they read
the shares as one run, verify/alerts/health.py), and the platform's high-water mark moves to the newest
post any share stored, but only when every share closed clean (the gap rule, at the sweep's level).

A share whose worker was killed closes ``interrupted`` (crawlers/extensions/run_owner.py): the sweep is
settled without it, and moves no mark (other workers re-crawled its requests, but the rule stays
conservative: the next sweep pages down to the old mark).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from crawlers.extensions.run_owner import OWNER_KEY, owner_is_gone
from storage.base import utcnow
from storage.models import CrawlRun, CrawlRunStatus
from storage.queries import move_high_water_mark
from storage.vocabulary import SHARES_STAT


def settle_sweep(session: Session, run_ids: Sequence[int]) -> bool:
    """Settle the sweep whose shares are ``run_ids`` (every worker's, every platform's) if each has
    closed; True when it did (False: a share still runs, and its worker settles the sweep later).

    Workers finishing together settle one after another: the shares are locked first, in id order
    (PostgreSQL; SQLite has one writer anyway), so their updates never cross."""
    query = select(CrawlRun).where(CrawlRun.id.in_(list(run_ids))).order_by(CrawlRun.id).with_for_update()
    runs = list(session.scalars(query))
    now = utcnow()
    for run in runs:
        if run.status == CrawlRunStatus.RUNNING and owner_is_gone(
            (run.stats or {}).get(OWNER_KEY), run.started_at, now
        ):
            run.status, run.finished_at = CrawlRunStatus.INTERRUPTED, now
            run.stats = (run.stats or {}) | {"finish_reason": "interrupted"}
    if any(run.status == CrawlRunStatus.RUNNING for run in runs):
        return False
    by_platform: dict[str, list[CrawlRun]] = defaultdict(list)
    for run in runs:
        by_platform[run.platform_id].append(run)
    for platform_id, shares in sorted(by_platform.items()):
        counted = [run for run in shares if run.status != CrawlRunStatus.INTERRUPTED]
        for run in counted:
            run.stats = (run.stats or {}) | {SHARES_STAT: len(counted)}
        if len(counted) == len(shares) and all(run.status == CrawlRunStatus.OK for run in shares):
            marks = [run.cursor for run in shares if run.cursor]
            if marks:
                move_high_water_mark(session, platform_id, max(marks))
    session.flush()
    return True
