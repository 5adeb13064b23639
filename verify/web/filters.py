"""The queue filter read leniently from a page's query string: a malformed value is ignored, never a 500."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import TypeVar

from storage.models import LeadState, Priority
from verify.review import MAX_SEARCH_CHARS, LeadFilter, QueueSort

MAX_FIELD_CHARS = 100
E = TypeVar("E", bound=StrEnum)


def _choice(kind: type[E], value: str | None) -> E | None:
    try:
        return kind(value) if value else None
    except ValueError:
        return None


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _fraction(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and 0.0 <= number <= 1.0 else None


def _text(value: str | None, limit: int = MAX_FIELD_CHARS) -> str | None:
    value = (value or "").strip()
    return value[:limit] or None


def _page(value: str | None) -> int:
    try:
        return max(int(value or 1), 1)
    except ValueError:
        return 1


def parse_filter(params: Mapping[str, str], page_size: int) -> LeadFilter:
    """The LeadFilter a queue URL asks for; unknown or malformed values fall back to 'no filter'."""
    return LeadFilter(
        state=_choice(LeadState, params.get("state")),
        priority=_choice(Priority, params.get("priority")),
        category=_text(params.get("category")),
        district=_text(params.get("district")),
        platform=_text(params.get("platform")),
        found_from=_day(params.get("found_from")),
        found_to=_day(params.get("found_to")),
        score_min=_fraction(params.get("score_min")),
        score_max=_fraction(params.get("score_max")),
        text=_text(params.get("text"), MAX_SEARCH_CHARS),
        sort=_choice(QueueSort, params.get("sort")) or QueueSort.URGENT,
        page=_page(params.get("page")),
        page_size=page_size,
    )
