"""Asia/Shanghai calendar days as UTC instants, safe at the very edges of the calendar.

Analysts filter and export by local days; the database compares UTC timestamps. ``date.min`` and
``date.max`` have no local midnight inside Python's datetime range, so the bounds are clamped there
instead of overflowing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
#: The days a filter may name: wide enough for any real case, narrow enough that a typo is caught.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def start_utc(day: date) -> datetime:
    """Midnight in Shanghai at the start of ``day``, in UTC (the earliest instant for ``date.min``)."""
    try:
        return datetime.combine(day, time.min, tzinfo=SHANGHAI).astimezone(UTC)
    except OverflowError:
        return EARLIEST


def end_utc(day: date) -> datetime:
    """The first instant after ``day`` in Shanghai, in UTC: an exclusive bound (the last one at date.max)."""
    if day >= date.max:
        return LATEST
    return start_utc(day + timedelta(days=1))


def local_wall_clock(value: datetime | None) -> datetime | None:
    """Shanghai wall-clock time without a zone, for spreadsheets (they have no time zones)."""
    return value.astimezone(SHANGHAI).replace(tzinfo=None) if value else None
