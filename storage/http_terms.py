"""HTTP terms more than one stage reads: the Retry-After header, parsed once for crawlers and the pusher.

It lives in storage only because storage is the one package every stage may import (DESIGN.md:
crawlers never import verify, and verify has no business importing crawlers); it touches no database.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

#: The longest wait a Retry-After is read as: a larger ask is not a plan (and a datetime that far
#: ahead overflows), so it is cut to a day; each caller then decides whether to wait that long.
RETRY_AFTER_MAX_SECONDS = 86_400.0

# RFC 9110 §10.2.3 allows whole seconds; a fraction ("0.5") is read too, as some servers send one.
_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(value: str | bytes | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds to wait: delta-seconds, or an HTTP date counted from ``now`` (a date
    already past is 0). None when absent, negative or unreadable; at most RETRY_AFTER_MAX_SECONDS."""
    if value is None:
        return None
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    text = text.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 5322 "-0000": a time in UTC whose zone the sender did not vouch for
            when = when.replace(tzinfo=UTC)
        seconds = max((when - (now or datetime.now(UTC))).total_seconds(), 0.0)
    return min(seconds, RETRY_AFTER_MAX_SECONDS)
