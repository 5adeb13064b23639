"""A database with nine weeks of known leads and tickets, for the weekly report's tests (2026-W40 …
2026-W48, Asia/Shanghai weeks). Counts per (category, district) cell, W40 … W47 | W48:

* 城乡建设·南山区  2 2 2 2 2 2 2 2 | 12  the planted spike (Poisson)
* 环境保护·福田区  0 6 1 5 0 7 2 3 | 7   noisy but normal (over-dispersed: negative binomial)
* 交通运输·宝安区  1 1 1 1 1 1 1 1 | 4   borderline: p ≈ 0.023, cut by the FDR (q ≈ 0.058)
* 劳动保障·罗湖区  1 1 1 1 1 1 1 2 | 1   (its W47 second lead is Sunday 23:30 local: still W47)
* HOSTILE·龙华区  1 0 1 0 1 0 1 0 | 1   (its W48 lead is Monday 00:10 local, Sunday in UTC)
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from storage.models import Lead, LeadPost, LeadState, Platform, Post, Ticket, TicketState
from verify.reports.weeks import IsoWeek

ZONE = ZoneInfo("Asia/Shanghai")
WEEK = IsoWeek(2026, 48)
TRAILING = WEEK.trailing(8)
HOSTILE = '<script>alert("x")</script>'
HOSTILE_PLACE = "<img src=x onerror=alert(1)>公园"
SPIKE = ("城乡建设", "南山区")
NOISY = ("环境保护", "福田区")
BORDERLINE = ("交通运输", "宝安区")
STEADY = ("劳动保障", "罗湖区")
ODD = (HOSTILE, "龙华区")
HISTORY = {
    SPIKE: [2, 2, 2, 2, 2, 2, 2, 2],
    NOISY: [0, 6, 1, 5, 0, 7, 2, 3],
    BORDERLINE: [1, 1, 1, 1, 1, 1, 1, 1],
    STEADY: [1, 1, 1, 1, 1, 1, 1, 1],  # plus the Sunday-night lead of W47
    ODD: [1, 0, 1, 0, 1, 0, 1, 0],
}
THIS_WEEK = {SPIKE: 12, NOISY: 7, BORDERLINE: 4, STEADY: 1, ODD: 0}  # plus ODD's Monday-midnight lead
TEXTS = {
    SPIKE: "路面塌陷很危险",
    NOISY: "垃圾堆放发臭",
    BORDERLINE: "公交车晚点，路面拥堵",
    STEADY: "工资拖欠三个月",
    ODD: f"{HOSTILE}噪音扰民",
}
#: Landmarks of the spike cell's leads by week (its first lead of the week): 碧海花园 recurs (three
#: trailing weeks, written three ways), 科技园 does not (this week's second lead, but two trailing weeks).
SPIKE_PLACES = {
    "2026-W40": "科技园",
    "2026-W41": "科技园",
    "2026-W45": "碧海花园小区",
    "2026-W46": "碧海花园二期",
    "2026-W47": "碧海花园",
    "2026-W48": "碧海花园",
}
#: The noisy cell's hostile landmark, in four weeks.
NOISY_PLACE_WEEKS = ("2026-W41", "2026-W43", "2026-W45", "2026-W48")


def local(week: IsoWeek, day: int, hour: int, minute: int = 0) -> datetime:
    """A local wall-clock time of ``week`` (day 0 = Monday) as a UTC instant."""
    moment = datetime.combine(week.monday + timedelta(days=day), datetime.min.time(), tzinfo=ZONE)
    return moment.replace(hour=hour, minute=minute).astimezone(UTC)


class World:
    def __init__(self, session: Session) -> None:
        self.session = session
        self.ids = itertools.count(1)
        if session.get(Platform, "weibo") is None:
            session.add(Platform(id="weibo", name="微博", kind="json_feed"))
            session.flush()

    def lead(
        self,
        cell: tuple[str, str],
        seen: datetime,
        text: str = "旧帖",
        landmark: str | None = None,
        engagement: tuple[int, int, int] = (0, 0, 0),
        state: LeadState = LeadState.NEW,
    ) -> Lead:
        n = next(self.ids)
        lead = Lead(
            category=cell[0],
            district=cell[1],
            landmark=landmark,
            summary=text[:100],
            first_seen_at=seen,
            last_seen_at=seen,
            found_at=seen,
            evidence_count=1,
            state=state,
        )
        self.session.add(lead)
        self.session.flush()
        likes, replies, reposts = engagement
        post = Post(
            platform_id="weibo",
            external_id=f"w{n}",
            url=f"https://m.weibo.cn/detail/{n}",
            title=None,
            text=text,
            published_at=seen,
            likes=likes,
            replies=replies,
            reposts=reposts,
            content_hash=f"{n:064d}",
        )
        self.session.add(post)
        self.session.flush()
        self.session.add(LeadPost(lead_id=lead.id, post_id=post.id))
        return lead

    def ticket(
        self, lead: Lead, sent: datetime | None, closed: datetime | None = None, moved: int = 0
    ) -> Ticket:
        ticket = Ticket(
            lead_id=lead.id,
            idempotency_key=f"weisu-lead-{lead.id}",
            payload={},
            state=TicketState.SENT if sent else TicketState.FAILED,
            sent_at=sent,
            closed_at=closed,
            dispatch_status="closed" if closed else None,
            reassignments=moved,
        )
        self.session.add(ticket)
        return ticket


def plant(session: Session) -> None:
    """The nine weeks described in the module's docstring, with this week's tickets."""
    world = World(session)
    for cell, history in HISTORY.items():
        for week, count in zip(TRAILING, history, strict=True):
            for i in range(count):
                place = SPIKE_PLACES.get(str(week)) if cell == SPIKE and i == 0 else None
                if cell == NOISY and i == 0 and str(week) in NOISY_PLACE_WEEKS:
                    place = HOSTILE_PLACE
                world.lead(cell, local(week, 2, 12), landmark=place)
    world.lead(STEADY, local(TRAILING[-1], 6, 23, 30))  # Sunday 23:30 local: W47
    world.lead(ODD, local(WEEK, 0, 0, 10), TEXTS[ODD])  # Monday 00:10 local (Sunday 16:10 UTC): W48
    this_week: dict[tuple[str, str], list[Lead]] = {}
    for cell, count in THIS_WEEK.items():
        for i in range(count):
            place = {0: SPIKE_PLACES[str(WEEK)], 1: "科技园"}.get(i) if cell == SPIKE else None
            if cell == NOISY and i == 0:
                place = HOSTILE_PLACE
            text = TEXTS[cell] + ("，井盖松动" if cell == SPIKE and i % 2 else "")
            engagement = {SPIKE: (10, 2, 1), NOISY: (1, 0, 0)}.get(cell, (0, 0, 0))
            lead = world.lead(cell, local(WEEK, 2, 9 + i % 8), text, place, engagement, LeadState.PROMOTED)
            this_week.setdefault(cell, []).append(lead)
    # Neither counts: a rejected lead and one merged into another.
    world.lead(SPIKE, local(WEEK, 3, 12), TEXTS[SPIKE], state=LeadState.REJECTED)
    world.lead(SPIKE, local(WEEK, 3, 12), TEXTS[SPIKE], state=LeadState.MERGED)
    spike = this_week[SPIKE]
    monday = local(WEEK, 0, 10)
    for lead, hours, moved in zip(spike[:4], (2, 4, 6, 10), (0, 0, 1, 2), strict=True):
        world.ticket(lead, monday, monday + timedelta(hours=hours), moved)
    # Sent last Saturday 20:00, closed this Monday 02:00: resolved this week after 30 hours (its lead
    # surfaced long before the report's window, so no cell counts it).
    earlier = world.lead(SPIKE, local(WEEK.shifted(-20), 2, 12), state=LeadState.PROMOTED)
    world.ticket(earlier, local(TRAILING[-1], 5, 20), local(WEEK, 0, 2), moved=1)
    world.ticket(this_week[BORDERLINE][0], local(WEEK, 1, 9))
    world.ticket(spike[4], None)  # never delivered: not in the outcomes
    session.commit()
