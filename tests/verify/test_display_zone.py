"""Times are shown, filtered and exported in the settings' zone (schedules.timezone), not a fixed one."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from review_client import review_app, submit_login

from verify.days import end_utc, local_wall_clock, local_zone, start_utc
from verify.web import dashboard_stats
from verify.web.display import local_time

# 2026-11-28 17:30 UTC: 2026-11-29 01:30 in Shanghai, 2026-11-28 12:30 in New York.
MOMENT = datetime(2026, 11, 28, 17, 30, tzinfo=UTC)
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Display does not depend on the database."""
    return sqlite_url


def test_the_display_zone_is_the_one_the_settings_name(settings) -> None:
    assert local_zone(settings) == ZoneInfo("Asia/Shanghai")
    settings = settings.changed(schedules={"timezone": "America/New_York"})
    assert local_zone(settings) == NEW_YORK


def test_a_moment_reads_in_the_zone_it_is_shown_in() -> None:
    assert local_time(MOMENT, ZoneInfo("Asia/Shanghai")) == "2026-11-29 01:30"
    assert local_time(MOMENT, NEW_YORK) == "2026-11-28 12:30"
    assert local_wall_clock(MOMENT, NEW_YORK) == datetime(2026, 11, 28, 12, 30)


def test_a_local_day_is_bounded_by_the_zones_midnights() -> None:
    assert (start_utc(date(2026, 11, 28), NEW_YORK), end_utc(date(2026, 11, 28), NEW_YORK)) == (
        datetime(2026, 11, 28, 5, 0, tzinfo=UTC),
        datetime(2026, 11, 29, 5, 0, tzinfo=UTC),
    )


def test_the_dashboard_counts_a_lead_on_the_zones_day(session, make_lead) -> None:
    make_lead(found_at=MOMENT)
    now = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
    shanghai = dashboard_stats.build(session, ZoneInfo("Asia/Shanghai"), days=2, now=now)
    new_york = dashboard_stats.build(session, NEW_YORK, days=2, now=now)
    assert shanghai.found == {"2026-11-29": {"城乡建设": 1}}
    assert new_york.found == {"2026-11-28": {"城乡建设": 1}}


@pytest.fixture
def new_york_alice(settings, session) -> Iterator[TestClient]:
    settings = settings.changed(schedules={"timezone": "America/New_York"})
    with review_app(settings, session, [("alice", "alice-pw", "analyst")]) as app:
        client = TestClient(app, follow_redirects=False)
        assert submit_login(client, "alice", "alice-pw").is_redirect
        yield client


def test_the_lead_page_shows_times_in_the_settings_zone(new_york_alice, make_lead) -> None:
    lead = make_lead(found_at=MOMENT, sla_due_at=MOMENT)  # open: the page shows its deadline
    html = new_york_alice.get(f"/leads/{lead.id}").text
    assert "2026-11-28 12:30" in html
    assert "2026-11-29 01:30" not in html
