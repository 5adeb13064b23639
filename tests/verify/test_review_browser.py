"""A real headless Chromium: sign in, open a lead, verify it — and the ticket is in the outbox."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from fixtures.serving import serve_in_thread
from settings import load_settings
from storage.db import make_engine, make_session_factory
from storage.models import Lead, LeadState, Ticket, TicketState
from verify.users import create_user
from verify.web.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is not installed"),
]


def test_analyst_signs_in_opens_a_lead_and_verifies_it_into_a_ticket(sqlite_url: str, lead_adder) -> None:
    from playwright.sync_api import sync_playwright

    settings = load_settings(env={})
    settings.database.url = sqlite_url
    engine = make_engine(sqlite_url)
    factory = make_session_factory(engine)
    with factory() as session:
        create_user(session, "alice", "alice-pw", "analyst")
        lead_id = lead_adder(
            session, ("<script>alert(1)</script>井盖缺失，行人容易掉下去",), priority="urgent"
        ).id
    app = create_app(settings)
    with serve_in_thread(app) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{url}/leads")
            assert page.url.startswith(f"{url}/login")
            page.fill("input[name=username]", "alice")
            page.fill("input[name=password]", "alice-pw")
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/leads")
            assert page.locator("h1").inner_text().startswith("线索队列")
            page.click(f"a[href='/leads/{lead_id}'] >> nth=0")
            page.wait_for_url(f"{url}/leads/{lead_id}")
            assert "<script>alert(1)</script>井盖缺失" in page.locator("article.post .text").inner_text()
            page.fill("input[name=responsible_unit]", "南山区城管局")
            page.click("button:has-text('核实并派单')")
            page.wait_for_selector("#ticket")
            assert "已进入发送队列" in page.locator(".flash").inner_text()
            assert dialogs == []
        finally:
            browser.close()
    app.state.engine.dispose()
    with factory() as session:
        ticket = session.scalars(select(Ticket)).one()
        lead = session.get(Lead, lead_id)
        assert (ticket.lead_id, ticket.state, ticket.idempotency_key) == (
            lead_id,
            TicketState.QUEUED,
            f"weisu-lead-{lead_id}",
        )
        assert (lead.state, lead.responsible_unit) == (LeadState.PROMOTED, "南山区城管局")
    engine.dispose()
