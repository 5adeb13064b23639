"""The weekly report as data: one query pass, then the pure sections (spikes, recurring places, terms,
heat, ticket outcomes). Every output (page, workbook, charts) is drawn from a WeeklyReport."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy.orm import Session

from settings import ReportSettings
from storage.base import utcnow
from verify.reports import data
from verify.reports.outcomes import TicketOutcome, ticket_outcomes
from verify.reports.recurring import RecurringPlace, recurring_places
from verify.reports.spikes import CellTest, cell_tests, spikes
from verify.reports.terms import Term, top_terms
from verify.reports.weeks import IsoWeek


@dataclass(frozen=True)
class HeatRow:
    """One category × district cell this week: leads, their posts, and the posts' engagement."""

    category: str
    district: str
    leads: int
    posts: int
    engagement: int


@dataclass(frozen=True)
class WeeklyReport:
    week: IsoWeek
    trailing: tuple[IsoWeek, ...]
    generated_at: datetime
    options: ReportSettings
    leads: int  # counted leads this week
    trailing_mean: float  # the trailing weeks' mean
    cells: tuple[CellTest, ...]  # every cell tested, best q first
    spikes: tuple[CellTest, ...]
    recurring: tuple[RecurringPlace, ...]
    terms: dict[str, list[Term]]
    heat: tuple[HeatRow, ...]  # most engagement first
    #: Leads per week (oldest first, this week last) and category.
    weekly: dict[str, dict[str, int]]
    tickets: tuple[TicketOutcome, ...]

    @property
    def weeks(self) -> list[str]:
        return [str(w) for w in (*self.trailing, self.week)]


Cells = dict[tuple[str, str], tuple[int, list[int]]]


def _cells(leads: pd.DataFrame, week: str, trailing: list[str]) -> Cells:
    """(category, district) → (this week's count, trailing counts oldest first), for every cell with a
    lead anywhere in the window."""
    if leads.empty:
        return {}
    table = pd.crosstab([leads["category"], leads["district"]], leads["week"])
    table = table.reindex(columns=[*trailing, week], fill_value=0)
    return {
        (str(category), str(district)): (int(row[week]), [int(row[w]) for w in trailing])
        for (category, district), row in table.iterrows()
    }


def _heat(this_week: pd.DataFrame) -> list[HeatRow]:
    if this_week.empty:
        return []
    grouped = this_week.groupby(["category", "district"]).agg(
        leads=("lead_id", "count"), posts=("posts", "sum"), engagement=("engagement", "sum")
    )
    rows = [
        HeatRow(str(c), str(d), int(r["leads"]), int(r["posts"]), int(r["engagement"]))
        for (c, d), r in grouped.iterrows()
    ]
    return sorted(rows, key=lambda r: (-r.engagement, -r.leads, r.category, r.district))


def _weekly(leads: pd.DataFrame, weeks: list[str]) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {w: {} for w in weeks}
    for (week, category), n in leads.groupby(["week", "category"]).size().items():
        counts[str(week)][str(category)] = int(n)
    return counts


def build_weekly_report(
    session: Session, options: ReportSettings, week: IsoWeek, zone: ZoneInfo, now: datetime | None = None
) -> WeeklyReport:
    """The report of ``week`` (local days in ``zone``) against its ``options.trailing_weeks``."""
    trailing = week.trailing(options.trailing_weeks)
    start, end = week.start_utc(zone), week.end_utc(zone)
    leads = data.leads_frame(session, trailing[0].start_utc(zone), end, zone)
    names = [str(w) for w in trailing]
    this = str(week)
    cells = cell_tests(_cells(leads, this, names))
    this_week = leads[leads["week"] == this]
    per_week = leads.groupby("week").size()
    return WeeklyReport(
        week=week,
        trailing=tuple(trailing),
        generated_at=now or utcnow(),
        options=options,
        leads=len(this_week),
        trailing_mean=float(sum(int(per_week.get(w, 0)) for w in names) / len(names)),
        cells=tuple(cells),
        spikes=tuple(spikes(cells, options.fdr_level, options.min_count)),
        recurring=tuple(recurring_places(leads, this, names, options.recurring_min_weeks)),
        terms=top_terms(data.post_texts(session, start, end), options.top_terms),
        heat=tuple(_heat(this_week)),
        weekly=_weekly(leads, [*names, this]),
        tickets=tuple(ticket_outcomes(data.tickets_frame(session, start, end), start, end)),
    )
