"""Ticket outcomes per category: tickets sent, returns (退单), first-dispatch accuracy, resolution time.

Tickets sent this week are the cohort for returns and accuracy: a return is a move of the ticket to
another unit by the dispatch system (verify.sync counts each in ``tickets.reassignments``), and the
first-dispatch accuracy is the share of those tickets never moved, as far as the status sync has seen
when the report runs. Resolution time is measured on the tickets closed this week, from delivery
(``sent_at``) to closing (``closed_at``), in hours: median and 90th percentile (linear interpolation
between ranks, pandas' default).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

#: The row that adds up every category.
ALL_CATEGORIES = "合计"


@dataclass(frozen=True)
class TicketOutcome:
    category: str
    sent: int
    returned: int  # tickets sent this week moved at least once
    returns: int  # their moves in all
    closed: int
    median_hours: float | None
    p90_hours: float | None

    @property
    def first_dispatch_accuracy(self) -> float | None:
        return (self.sent - self.returned) / self.sent if self.sent else None


def _outcome(category: str, tickets: pd.DataFrame, start: datetime, end: datetime) -> TicketOutcome:
    sent = tickets[(tickets["sent_at"] >= start) & (tickets["sent_at"] < end)]
    closed = tickets[tickets["closed_at"].notna()]
    closed = closed[(closed["closed_at"] >= start) & (closed["closed_at"] < end)]
    pairs = zip(closed["sent_at"], closed["closed_at"], strict=True)
    hours = [(c - s).total_seconds() / 3600 for s, c in pairs]
    series = pd.Series(hours, dtype=float)
    return TicketOutcome(
        category=category,
        sent=len(sent),
        returned=int((sent["reassignments"] > 0).sum()),
        returns=int(sent["reassignments"].sum()),
        closed=len(closed),
        median_hours=float(series.median()) if hours else None,
        p90_hours=float(series.quantile(0.9)) if hours else None,
    )


def ticket_outcomes(tickets: pd.DataFrame, start: datetime, end: datetime) -> list[TicketOutcome]:
    """One row per category with tickets sent or closed in [start, end), by name, then ALL_CATEGORIES."""
    if tickets.empty:
        return []
    rows = [_outcome(str(c), group, start, end) for c, group in tickets.groupby("category", sort=True)]
    return [*rows, _outcome(ALL_CATEGORIES, tickets, start, end)]
