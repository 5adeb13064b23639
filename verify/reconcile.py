"""Reconciliation: after a push with no answer, look the request up at the dispatch system before re-sending.

Open311 GeoReport v2 defines no idempotency key, so a server may store a request twice if asked
twice. A push whose outcome is unknown (timeout, dropped connection, 5xx) is therefore followed
by a lookup with the standard query of ``GET /requests.json`` (``start_date``/``end_date`` around
the unanswered attempt, every status), matched on the reference that opens every description we
send (`verify.tickets.reference`). Only an answer that positively lacks the request lets the
pusher send again; a lookup that fails leaves the ticket to be looked up again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx

from settings import Settings
from storage.base import utcnow
from storage.vocabulary import ReconcileOutcome
from verify.tickets import IDEMPOTENCY_ATTRIBUTE, reference

#: A full answer splits its window in two; this many halvings of a 30-minute window reach 1 s.
MAX_SPLITS = 11
MIN_WINDOW = timedelta(seconds=1)


class LookupFailed(Exception):
    """The lookup could not show whether the request is there; the message says why."""


@dataclass(frozen=True)
class Lookup:
    """What one reconciliation showed: found (with the server's id), absent, or no answer."""

    outcome: ReconcileOutcome
    service_request_id: str | None = None
    requested_at: datetime | None = None  # the server's requested_datetime of the request found
    error: str | None = None
    matches: int = 0  # more than one: the server already held duplicates; the earliest is kept


def w3c(moment: datetime) -> str:
    """A GeoReport v2 date parameter (W3C format, UTC), whole seconds."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_datetime(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fetch(client: httpx.Client, params: dict[str, str], settings: Settings) -> list[dict[str, object]]:
    response = client.get(settings.dispatch.request_path, params=params)
    if response.status_code != 200:
        raise LookupFailed(f"HTTP {response.status_code}: {response.text[:300]}")
    try:
        body = response.json()
    except ValueError:
        raise LookupFailed(f"unreadable answer {response.text[:200]!r}") from None
    if not isinstance(body, list) or not all(isinstance(record, dict) for record in body):
        raise LookupFailed(f"expected a list of requests, not {response.text[:200]!r}")
    return body


def _find(
    client: httpx.Client,
    params: dict[str, str],
    window: tuple[datetime, datetime],
    marker: str,
    settings: Settings,
    splits: int = 0,
) -> list[dict[str, object]]:
    """The requests in ``window`` whose description carries ``marker``; raises LookupFailed when unsure."""
    start, end = window
    records = _fetch(client, {**params, "start_date": w3c(start), "end_date": w3c(end)}, settings)
    description = settings.dispatch.field_names.get("description", "description")
    hits = [record for record in records if marker in str(record.get(description) or "")]
    if hits or len(records) < settings.dispatch.lookup_max_results:
        return hits
    # A full answer may have been cut off by the server: absence is proven only window half by half.
    if splits >= MAX_SPLITS or end - start <= MIN_WINDOW:
        raise LookupFailed(f"{len(records)} requests between {w3c(start)} and {w3c(end)}, the server's limit")
    middle = start + (end - start) / 2
    return _find(client, params, (start, middle + MIN_WINDOW), marker, settings, splits + 1) or _find(
        client, params, (middle, end), marker, settings, splits + 1
    )


def reconcile(client: httpx.Client, key: str, unknown_since: datetime, settings: Settings) -> Lookup:
    """Look up the request sent under ``key`` by attempts made since ``unknown_since``."""
    dispatch = settings.dispatch
    params = {"jurisdiction_id": dispatch.jurisdiction_id, "status": "open,closed"}
    if dispatch.api_key:
        params["api_key"] = dispatch.api_key
    found = ReconcileOutcome.FOUND_BY_DESCRIPTION
    if dispatch.lookup_by_attribute:
        params[dispatch.field_names.get(IDEMPOTENCY_ATTRIBUTE, IDEMPOTENCY_ATTRIBUTE)] = key
        found = ReconcileOutcome.FOUND_BY_ATTRIBUTE
    slack = timedelta(seconds=dispatch.lookup_clock_slack_seconds)
    window = (unknown_since - slack, utcnow() + slack)
    id_field = dispatch.field_names.get("service_request_id", "service_request_id")
    try:
        hits = _find(client, params, window, reference(key), settings)
        if not hits:
            return Lookup(ReconcileOutcome.ABSENT)
        # Several: the server held duplicates before; the first one stored is the ticket's.
        earliest = min(hits, key=lambda r: parse_datetime(r.get("requested_datetime")) or window[1])
        request_id = earliest.get(id_field)
        if request_id in (None, ""):
            raise LookupFailed(f"the request found carries no {id_field}")
        requested_at = parse_datetime(earliest.get("requested_datetime"))
        return Lookup(found, str(request_id), requested_at, matches=len(hits))
    except (httpx.HTTPError, LookupFailed) as error:
        return Lookup(ReconcileOutcome.LOOKUP_FAILED, error=f"lookup: {type(error).__name__}: {error}")
