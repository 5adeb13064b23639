"""The supervisors' jobs page: each job's schedule, next run and last outcome, recent runs, all escaped;
analysts are refused."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from review_client import review_app, submit_login
from sqlalchemy import insert

from storage.models import JobOutcome, JobRun, apscheduler_jobs

pytestmark = pytest.mark.usefixtures("cheap_hashing")
ACCOUNTS = [
    ("sue", "sue-pw-123", "supervisor"),
    ("alice", "alice-pw", "analyst"),
    ("ada", "ada-pw-123", "admin"),
]
STARTED = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)  # 02:00 in Shanghai
NEXT_RUN = datetime(2026, 12, 3, 18, 0, tzinfo=UTC)
ERROR = "RuntimeError: <script>alert(1)</script> 抓取失败"


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """Pages do not depend on the database: SQLite only."""
    return sqlite_url


@pytest.fixture
def client(settings, session):
    session.execute(
        insert(apscheduler_jobs).values(
            id="nightly_sweep", next_run_time=NEXT_RUN.timestamp(), job_state=b"-"
        )
    )
    common = {"host": "worker-1", "pid": 4242}
    session.add(
        JobRun(
            job_id="nightly_sweep",
            outcome=JobOutcome.OK,
            started_at=STARTED,
            finished_at=STARTED,
            counts={"weibo": "ok"},
            **common,
        )
    )
    session.add(
        JobRun(
            job_id="nightly_sweep",
            outcome=JobOutcome.FAILED,
            started_at=STARTED.replace(day=3),
            finished_at=STARTED.replace(day=3),
            error=ERROR,
            **common,
        )
    )
    session.add(
        JobRun(
            job_id="push_tickets",
            outcome=JobOutcome.SKIPPED,
            started_at=STARTED.replace(hour=17),
            finished_at=STARTED.replace(hour=17),
            error="lease held by worker-2:77",
            **common,
        )
    )
    session.commit()
    with review_app(settings, session, ACCOUNTS) as app, TestClient(app) as test_client:
        yield test_client


def _row(html: str, job_id: str) -> str:
    match = re.search(rf'<tr id="job-{job_id}"[^>]*>(.*?)</tr>', html, re.S)
    assert match is not None
    return match.group(0)


def test_a_supervisor_sees_each_jobs_schedule_next_run_and_last_outcome(client: TestClient) -> None:
    submit_login(client, "sue", "sue-pw-123")
    page = client.get("/admin/jobs")
    assert page.status_code == 200
    nightly = _row(page.text, "nightly_sweep")
    cells = re.findall(r"<td[^>]*>(.*?)</td>", nightly, re.S)
    assert cells == [
        "夜间全量抓取<br><code>nightly_sweep</code>",
        "定时 0 2 * * *",
        "是",
        "2026-12-04 02:00",
        "失败",
        "2026-12-04 02:00",
        "RuntimeError: &lt;script&gt;alert(1)&lt;/script&gt; 抓取失败",
    ]
    assert nightly.startswith('<tr id="job-nightly_sweep" class="breach">')
    push = re.findall(r"<td[^>]*>(.*?)</td>", _row(page.text, "push_tickets"), re.S)
    assert push[1:6] == ["每 30 秒", "是", "—", "跳过", "2026-12-03 01:00"]


def test_the_jobs_page_lists_recent_runs_newest_first_escaped(client: TestClient) -> None:
    submit_login(client, "sue", "sue-pw-123")
    page = client.get("/admin/jobs").text
    runs = page[page.index('id="job-runs"') :]
    rows = re.findall(r"<tr>\s*<td><code>(\w+)</code></td>.*?<td>(成功|失败|跳过|错过)</td>", runs, re.S)
    assert rows == [("nightly_sweep", "失败"), ("nightly_sweep", "成功"), ("push_tickets", "跳过")]
    assert "weibo=ok" in runs and "worker-1:4242" in runs
    assert "<script>alert(1)</script>" not in page


def test_the_nav_links_the_jobs_page_for_supervisors_only(client: TestClient) -> None:
    submit_login(client, "sue", "sue-pw-123")
    assert '<a href="/admin/jobs">定时任务</a>' in client.get("/leads").text
    client.cookies.clear()
    submit_login(client, "alice", "alice-pw")
    assert "/admin/jobs" not in client.get("/leads").text


def test_an_analyst_is_refused_the_jobs_page(client: TestClient) -> None:
    submit_login(client, "alice", "alice-pw")
    page = client.get("/admin/jobs")
    assert page.status_code == 403
    assert "无权访问" in page.text


def test_an_admin_sees_the_jobs_page(client: TestClient) -> None:
    submit_login(client, "ada", "ada-pw-123")
    assert client.get("/admin/jobs").status_code == 200
