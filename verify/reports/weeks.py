"""ISO weeks (``2026-W48``) in the display time zone: parsing, the last complete one, UTC bounds."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from verify.days import FIRST_DAY, LAST_DAY, start_utc

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")


class WeekError(ValueError):
    """A week that cannot be read; the message says what was given and what is expected."""


@dataclass(frozen=True, order=True)
class IsoWeek:
    """One ISO 8601 week: Monday to Sunday, local days."""

    year: int
    week: int

    @classmethod
    def parse(cls, text: str) -> IsoWeek:
        """``2026-W48`` → IsoWeek(2026, 48); WeekError for anything else, or a week the year lacks."""
        match = _WEEK.match(text.strip())
        if match is None:
            raise WeekError(f"week {text!r}: expected YYYY-Www, e.g. 2026-W48")
        year, week = int(match.group(1)), int(match.group(2))
        try:
            monday = date.fromisocalendar(year, week, 1)
        except ValueError:
            raise WeekError(f"week {text!r}: {year} has no ISO week {week}") from None
        if not FIRST_DAY <= monday <= LAST_DAY:
            raise WeekError(f"week {text!r}: must lie between {FIRST_DAY.year} and {LAST_DAY.year}")
        return cls(year, week)

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        year, week, _ = day.isocalendar()
        return cls(year, week)

    @classmethod
    def last_complete(cls, now: datetime, zone: ZoneInfo) -> IsoWeek:
        """The latest week whose Sunday has ended in ``zone`` at ``now``."""
        return cls.of(now.astimezone(zone).date() - timedelta(days=7))

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    def shifted(self, weeks: int) -> IsoWeek:
        return IsoWeek.of(self.monday + timedelta(weeks=weeks))

    def trailing(self, count: int) -> list[IsoWeek]:
        """The ``count`` weeks before this one, oldest first."""
        return [self.shifted(-n) for n in range(count, 0, -1)]

    def start_utc(self, zone: ZoneInfo) -> datetime:
        """Local Monday 00:00 as a UTC instant (inclusive bound)."""
        return start_utc(self.monday, zone)

    def end_utc(self, zone: ZoneInfo) -> datetime:
        """The next local Monday 00:00 as a UTC instant (exclusive bound)."""
        return start_utc(self.monday + timedelta(weeks=1), zone)

    def __str__(self) -> str:
        return f"{self.year}-W{self.week:02d}"

    @property
    def label(self) -> str:
        """The week as people read it: ``2026-W48（11月23日—11月29日）``."""
        sunday = self.monday + timedelta(days=6)
        return f"{self}（{self.monday.month}月{self.monday.day}日—{sunday.month}月{sunday.day}日）"
