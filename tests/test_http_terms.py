"""The one Retry-After parser (storage.http_terms) that the crawler middleware and the pusher share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.http_terms import RETRY_AFTER_MAX_SECONDS, parse_retry_after

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


@pytest.mark.parametrize(("value", "seconds"), [("120", 120.0), (" 7 ", 7.0), ("0", 0.0), (b"30", 30.0)])
def test_delta_seconds_are_read_as_seconds(value: str | bytes, seconds: float) -> None:
    assert parse_retry_after(value, NOW) == seconds


def test_a_fractional_delay_is_read_as_sent() -> None:
    assert parse_retry_after("0.5", NOW) == 0.5


def test_an_http_date_is_counted_from_now() -> None:
    assert parse_retry_after("Sun, 29 Nov 2026 06:05:00 GMT", NOW) == 300.0


def test_an_http_date_already_past_means_retry_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "   ", "soon", "1e3", "12 seconds", "Sun, 99 Foo 2026"])
def test_garbage_or_absence_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize("value", ["-1", "-0.5"])
def test_a_negative_delay_is_none(value: str) -> None:
    assert parse_retry_after(value, NOW) is None


@pytest.mark.parametrize("value", ["99999999999999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_a_huge_delay_is_cut_to_a_day(value: str) -> None:
    assert parse_retry_after(value, NOW) == RETRY_AFTER_MAX_SECONDS == 86_400.0


def test_the_crawler_and_the_pusher_use_this_parser() -> None:
    from crawlers.middlewares import retry_after
    from verify import pusher

    assert retry_after.parse_retry_after is parse_retry_after
    assert pusher.parse_retry_after is parse_retry_after
