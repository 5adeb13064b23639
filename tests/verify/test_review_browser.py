"""A real headless Chromium: the analysts' day (filter, claim, promote, reject, merge, a rival's view)
and hostile crawled text, which must render inert and bounded on every page that shows it."""

from __future__ import annotations

from pathlib import Path

import pytest
from keys_for_tests import TEST_SECRET_ENV
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

    settings = load_settings(env=TEST_SECRET_ENV)
    settings = settings.changed(database={"url": sqlite_url})
    settings = settings.changed(
        review={"cookie_secure": False}
    )  # the browser talks plain http to the loopback server
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


HOSTILE_TEXT = (
    '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    '<a href="javascript:window.__pwned = 3">点我</a><svg onload="window.__pwned = 4"></svg>'
    "井盖缺失" + "很长的帖子" * 40_000
)


def _settings_and_factory(sqlite_url: str):
    settings = load_settings(env=TEST_SECRET_ENV)
    settings = settings.changed(database={"url": sqlite_url})
    settings = settings.changed(
        review={"cookie_secure": False}
    )  # the browser talks plain http to the loopback server
    engine = make_engine(sqlite_url)
    return settings, engine, make_session_factory(engine)


def _launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


def _sign_in(page, url: str, name: str) -> None:
    page.goto(f"{url}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", f"{name}-pw")
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/leads")


def test_a_day_in_the_queue_filter_claim_promote_reject_merge_and_a_rival_sees_it_taken(
    sqlite_url: str, lead_adder
) -> None:
    from playwright.sync_api import sync_playwright

    settings, engine, factory = _settings_and_factory(sqlite_url)
    with factory() as session:
        for name in ("alice", "bob"):
            create_user(session, name, f"{name}-pw", "analyst")
        promote_id = lead_adder(session, ("福田区路面塌陷",), district="福田区", summary="福田区路面塌陷").id
        reject_id = lead_adder(session, ("转发抽奖",), district="南山区", summary="转发抽奖广告").id
        survivor_id = lead_adder(session, ("科技园路灯不亮",), summary="科技园路灯不亮").id
        duplicate_id = lead_adder(session, ("科技园路灯又坏了",), summary="科技园路灯又坏了").id
    app = create_app(settings)
    with serve_in_thread(app) as url, sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            alice = browser.new_context().new_page()
            _sign_in(alice, url, "alice")
            # Filter: only 福田区.
            alice.fill("form.filter input[name=district]", "福田区")
            alice.click("form.filter button[type=submit]")
            alice.wait_for_url("**district=*")
            shown = alice.locator("table.queue tbody tr").evaluate_all(
                "rows => rows.map(r => r.dataset.lead)"
            )
            assert shown == [str(promote_id)]
            # Open (claim), edit and promote.
            alice.click(f"a[href='/leads/{promote_id}'] >> nth=0")
            alice.wait_for_url(f"{url}/leads/{promote_id}")
            alice.fill("input[name=category]", "交通运输")
            alice.fill("input[name=responsible_unit]", "福田区交通局")
            alice.click("#verify-button")
            alice.wait_for_selector("#ticket")
            assert "已进入发送队列" in alice.locator(".flash").inner_text()
            # A rival in another browser context sees a claimed lead as taken.
            alice.goto(f"{url}/leads/{reject_id}")
            bob = browser.new_context().new_page()
            _sign_in(bob, url, "bob")
            assert "alice 核实中" in bob.locator(f"tr[data-lead='{reject_id}']").inner_text()
            bob.goto(f"{url}/leads/{reject_id}")
            assert bob.locator("#taken").inner_text() == "此线索正由 alice 核实，只读显示。"
            assert bob.locator("#verify-form").count() == 0
            # Reject with a reason; the keyboard shortcut proves the static script runs under the CSP.
            alice.keyboard.press("r")
            assert alice.evaluate("document.activeElement.id") == "reject-reason"
            alice.select_option("#reject-reason", "spam")
            alice.click("#reject-form button[type=submit]")
            alice.wait_for_url(f"{url}/leads")
            # Merge two leads.
            alice.goto(f"{url}/leads/{duplicate_id}")
            alice.keyboard.press("m")
            alice.keyboard.type(str(survivor_id))
            alice.click("#merge-form button[type=submit]")
            alice.wait_for_url(f"{url}/leads/{survivor_id}")
            assert f"线索 {duplicate_id} 已合并到线索 {survivor_id}。" in alice.locator(".flash").inner_text()
        finally:
            browser.close()
    app.state.engine.dispose()
    with factory() as session:
        states = {i: session.get(Lead, i).state for i in (promote_id, reject_id, survivor_id, duplicate_id)}
        assert states == {
            promote_id: LeadState.PROMOTED,
            reject_id: LeadState.REJECTED,
            survivor_id: LeadState.CLAIMED,  # landing on the survivor's page claims it
            duplicate_id: LeadState.MERGED,
        }
        promoted = session.get(Lead, promote_id)
        assert (promoted.category, promoted.responsible_unit) == ("交通运输", "福田区交通局")
    engine.dispose()


def test_hostile_crawled_text_renders_inert_and_bounded_on_every_page(sqlite_url: str, lead_adder) -> None:
    from playwright.sync_api import sync_playwright

    settings, engine, factory = _settings_and_factory(sqlite_url)
    with factory() as session:
        create_user(session, "sue", "sue-pw", "supervisor")
        hostile_id = lead_adder(
            session,
            (HOSTILE_TEXT,),
            summary=HOSTILE_TEXT[:1000],
            category="<script>window.__pwned = 5</script>",
            post_url="javascript:window.__pwned = 6",
        ).id
        neighbour_id = lead_adder(session, ("路灯",), category="<script>window.__pwned = 5</script>").id
    app = create_app(settings)
    pages = ["/leads", f"/leads/{hostile_id}", f"/leads/{neighbour_id}", "/dashboard"]
    with serve_in_thread(app) as url, sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            _sign_in(page, url, "sue")
            for path in pages:
                page.goto(f"{url}{path}")
                page.wait_for_load_state("load")
                assert page.evaluate("window.__pwned") is None, path
                body = page.locator("main").inner_text()
                assert "<script>window.__pwned" in body, path  # shown as text, not run
                assert len(body) < 20_000, path  # 200 KB of crawled text is cut down
            page.goto(f"{url}/leads/{hostile_id}")
            text = page.locator("article.post .text").inner_text()
            assert text.startswith(
                '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
            )
            assert text.endswith("…（已截断）") and len(text) == 2000 + len("…（已截断）")
            assert page.locator("a[href^='javascript:']").count() == 0
            assert page.locator("main img, main svg[onload]").count() == 0
            assert dialogs == []
        finally:
            browser.close()
    app.state.engine.dispose()
    engine.dispose()


def _lead_state(factory, lead_id: int) -> tuple[LeadState, str | None]:
    with factory() as session:
        lead = session.get(Lead, lead_id)
        return lead.state, lead.claimed_by


def test_escape_asks_before_releasing_the_claim(sqlite_url: str, lead_adder) -> None:
    from playwright.sync_api import sync_playwright

    settings, engine, factory = _settings_and_factory(sqlite_url)
    with factory() as session:
        create_user(session, "alice", "alice-pw", "analyst")
        lead_id = lead_adder(session, ("科技园路灯不亮",)).id
    app = create_app(settings)
    with serve_in_thread(app) as url, sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page()
            _sign_in(page, url, "alice")
            page.goto(f"{url}/leads/{lead_id}")
            questions: list[str] = []
            page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
            page.keyboard.press("Escape")
            page.wait_for_timeout(300)  # a release, had it been sent, would have navigated by now
            assert questions == ["放回队列？此线索将不再由您认领，其他分析员可以认领。"]
            assert page.url == f"{url}/leads/{lead_id}"
            assert _lead_state(factory, lead_id) == (LeadState.CLAIMED, "alice")
            page.once("dialog", lambda dialog: dialog.accept())
            page.keyboard.press("Escape")
            page.wait_for_url(f"{url}/leads")
            assert f"线索 {lead_id} 已放回队列。" in page.locator(".flash").inner_text()
            assert _lead_state(factory, lead_id) == (LeadState.NEW, None)
        finally:
            browser.close()
    app.state.engine.dispose()
    engine.dispose()


def test_a_similar_lead_opens_beside_for_comparison_without_being_claimed(
    sqlite_url: str, lead_adder
) -> None:
    from playwright.sync_api import sync_playwright

    settings, engine, factory = _settings_and_factory(sqlite_url)
    with factory() as session:
        create_user(session, "alice", "alice-pw", "analyst")
        working_id = lead_adder(session, ("科技园路灯不亮",), summary="科技园路灯不亮").id
        similar_id = lead_adder(session, ("科技园又一盏路灯不亮",), summary="科技园又一盏路灯不亮").id
    app = create_app(settings)
    with serve_in_thread(app) as url, sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            context = browser.new_context()
            page = context.new_page()
            _sign_in(page, url, "alice")
            page.goto(f"{url}/leads/{working_id}")
            with context.expect_page() as opened:
                page.click(f"ul.similar a[href='/leads/{similar_id}?compare=1']")
            compare = opened.value
            compare.wait_for_load_state("load")
            assert compare.locator("#compare").inner_text().startswith("对比查看：打开此页不会认领这条线索。")
            assert compare.locator("#verify-form").count() == 0
            assert _lead_state(factory, similar_id) == (LeadState.NEW, None)
            assert _lead_state(factory, working_id) == (LeadState.CLAIMED, "alice")
            assert page.locator("#verify-form").count() == 1  # the analyst's own page is still there
        finally:
            browser.close()
    app.state.engine.dispose()
    engine.dispose()


def test_the_queue_shows_at_least_ten_whole_leads_on_a_1366_by_768_screen(
    sqlite_url: str, lead_adder, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    settings, engine, factory = _settings_and_factory(sqlite_url)
    with factory() as session:
        create_user(session, "alice", "alice-pw", "analyst")
        for n in range(25):
            summary = f"南山区科技园第{n}号路灯不亮，" + "附近居民夜间出行很不方便，已经持续多日无人处理" * 3
            lead_adder(session, (summary,), summary=summary, priority="urgent" if n % 4 == 0 else "ordinary")
    app = create_app(settings)
    with serve_in_thread(app) as url, sync_playwright() as playwright:
        browser = _launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            _sign_in(page, url, "alice")
            page.screenshot(path=str(tmp_path / "queue-1366x768.png"))
            boxes = [row.bounding_box() for row in page.locator("table.queue tbody tr").all()]
            whole = [box for box in boxes if box and box["y"] >= 0 and box["y"] + box["height"] <= 768]
            assert len(boxes) == 20  # one page of the queue
            assert len(whole) >= 10, f"only {len(whole)} whole rows on screen"
        finally:
            browser.close()
    app.state.engine.dispose()
    engine.dispose()
