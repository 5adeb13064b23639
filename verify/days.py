"""The display time zone (settings' ``schedules.timezone``) and its calendar days as UTC instants.

The one helper every verify module uses to show times or turn an analyst's day into a query bound.
Analysts filter and export by local days; the database compares UTC timestamps. ``date.min`` and
``date.max`` have no local midnight inside Python's datetime range, so the bounds are clamped there
instead of overflowing.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

from settings import Settings

#: The days a filter may name: wide enough for any real case, narrow enough that a typo is caught.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)


def local_zone(settings: Settings) -> ZoneInfo:
    """The zone analysts read times in: the one the schedules run in (``schedules.timezone``)."""
    return _zone(settings.schedules.timezone)


@cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def start_utc(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight at the start of ``day``, in UTC (the earliest instant for ``date.min``)."""
    try:
        return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)
    except OverflowError:
        return EARLIEST


def end_utc(day: date, zone: ZoneInfo) -> datetime:
    """The first instant after local ``day``, in UTC: an exclusive bound (the last one at date.max)."""
    if day >= date.max:
        return LATEST
    return start_utc(day + timedelta(days=1), zone)


def local_wall_clock(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Local wall-clock time without a zone, for spreadsheets (they have no time zones)."""
    return value.astimezone(zone).replace(tzinfo=None) if value else None
