"""The alerts outbox on SQLite and PostgreSQL: an urgent lead alerts once however often the pass runs, a
refused delivery is retried with backoff and sent once, one that keeps failing shows as failed on the
alerts page (and can be sent again), an SLA warning fires at its lead time and not before, and a crawl
health problem alerts once per episode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from alert_receivers import Received, webhook_receiver
from fastapi.testclient import TestClient
from review_client import NOW, csrf_of, review_app, submit_login
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from settings import AlertChannelSettings, Settings
from storage.models import AlertDelivery, CrawlRun, DeliveryState, JobRun, Lead, Platform, Priority
from storage.vocabulary import JobOutcome
from verify.alerts.delivery import deliver_alerts
from verify.alerts.events import sla_warning_events

pytestmark = pytest.mark.usefixtures("cheap_hashing")
NOTHING = {"new": 0, "sent": 0, "retrying": 0, "failed": 0}


def at(moment: datetime) -> Callable[[], datetime]:
    return lambda: moment


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[tuple[str, Received]]:
    statuses = getattr(request, "param", [200])
    with webhook_receiver(statuses) as served:
        yield served


@pytest.fixture
def alerting(settings: Settings, receiver: tuple[str, Received]) -> Settings:
    """The test settings with one generic webhook channel pointing at the local receiver."""
    ops = AlertChannelSettings(kind="webhook", url=receiver[0] + "/hook")
    return settings.changed(alerts={"channels": {"ops": ops}, "backoff_base_seconds": 30})


def _urgent(make_lead: Callable[..., Lead]) -> Lead:
    return make_lead(
        priority=Priority.URGENT,
        urgency_reason="井盖丢失",
        found_at=NOW - timedelta(minutes=1),
        urgent_since=NOW - timedelta(minutes=1),
        sla_due_at=NOW + timedelta(minutes=29),
    )


def test_an_urgent_lead_alerts_exactly_once_across_two_passes(
    alerting: Settings, session_factory: sessionmaker[Session], make_lead, receiver
) -> None:
    lead = _urgent(make_lead)
    first = deliver_alerts(alerting, session_factory, clock=at(NOW), env={})
    second = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(seconds=30)), env={})
    assert (first, second) == ({**NOTHING, "new": 1, "sent": 1}, NOTHING)
    _, received = receiver
    assert [(body["event"], body["title"]) for body in received.bodies] == [
        (f"urgent:lead:{lead.id}", f"【加急线索】#{lead.id} 城乡建设")
    ]
    assert received.bodies[0]["text"] == (
        f"加急线索 #{lead.id}：南山区科技园路灯不亮\n"
        "类别：城乡建设；地点：南山区粤海街道科技园\n"
        "加急原因：井盖丢失\n"
        "发现时间：2026-11-29 13:59；处理时限：2026-11-29 14:29"
    )


def test_an_urgent_lead_older_than_the_window_does_not_alert(
    alerting: Settings, session_factory: sessionmaker[Session], make_lead
) -> None:
    make_lead(
        priority=Priority.URGENT, urgent_since=NOW - timedelta(hours=25), found_at=NOW - timedelta(hours=25)
    )
    assert deliver_alerts(alerting, session_factory, clock=at(NOW), env={}) == NOTHING


@pytest.mark.parametrize("receiver", [[500, 200]], indirect=True)
def test_a_delivery_answered_500_is_retried_after_its_backoff_and_sent_once(
    alerting: Settings, session_factory: sessionmaker[Session], make_lead, receiver
) -> None:
    _urgent(make_lead)
    first = deliver_alerts(alerting, session_factory, clock=at(NOW), env={})
    early = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(seconds=29)), env={})
    due = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(seconds=30)), env={})
    later = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(seconds=90)), env={})
    assert (first, early, due, later) == (
        {**NOTHING, "new": 1, "retrying": 1},
        NOTHING,
        {**NOTHING, "sent": 1},
        NOTHING,
    )
    assert len(receiver[1].bodies) == 2
    with session_factory() as session:
        delivery = session.scalars(select(AlertDelivery)).one()
        assert (delivery.state, delivery.attempts, delivery.last_error) == (DeliveryState.SENT, 2, None)


@pytest.mark.parametrize("receiver", [[500]], indirect=True)
def test_a_receiver_always_failing_shows_as_failed_on_the_alerts_page_and_can_be_retried(
    alerting: Settings, session_factory: sessionmaker[Session], session: Session, make_lead
) -> None:
    alerting = alerting.changed(alerts={"max_attempts": 2})
    lead = _urgent(make_lead)
    deliver_alerts(alerting, session_factory, clock=at(NOW), env={})
    last = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(seconds=30)), env={})
    assert last == {**NOTHING, "failed": 1}
    with session_factory() as reader:
        delivery_id = reader.scalars(select(AlertDelivery.id)).one()
    with (
        review_app(alerting, session, [("sue", "sue-pw-12345", "supervisor")]) as app,
        TestClient(app) as client,
    ):
        submit_login(client, "sue", "sue-pw-12345")
        page = client.get("/alerts")
        assert page.status_code == 200
        assert f'<tr id="delivery-{delivery_id}" class="breach">' in page.text
        assert (
            f"<td>#1 【加急线索】#{lead.id} 城乡建设</td>\n      <td>ops</td>\n      <td>2</td>" in page.text
        )
        assert "<td>HTTP 500: {&#34;errcode&#34;: 0, &#34;errmsg&#34;: &#34;ok&#34;}</td>" in page.text
        forged = client.post(f"/alerts/deliveries/{delivery_id}/retry", data={"csrf_token": "wrong"})
        retried = client.post(
            f"/alerts/deliveries/{delivery_id}/retry",
            data={"csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )
    assert (forged.status_code, retried.status_code) == (403, 303)
    with session_factory() as reader:
        delivery = reader.get(AlertDelivery, delivery_id)
        assert delivery is not None and (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 0)


def test_an_analyst_cannot_open_the_alerts_page(alerting: Settings, session: Session) -> None:
    with review_app(alerting, session, [("al", "al-pw-123456", "analyst")]) as app, TestClient(app) as client:
        submit_login(client, "al", "al-pw-123456")
        assert client.get("/alerts").status_code == 403


def test_an_sla_warning_fires_at_its_lead_time_and_not_before(
    alerting: Settings, session_factory: sessionmaker[Session], session: Session, make_lead
) -> None:
    alerting = alerting.changed(alerts={"sla_warning_minutes": 10})
    lead = make_lead(sla_due_at=NOW + timedelta(minutes=30))
    before = sla_warning_events(session, alerting, NOW + timedelta(minutes=19, seconds=59))
    events = sla_warning_events(session, alerting, NOW + timedelta(minutes=20))
    assert before == []
    assert [(e.key, e.title) for e in events] == [
        (f"sla:lead:{lead.id}:20261129T063000Z", f"【时限将至】线索 #{lead.id} 还剩 10 分钟")
    ]
    assert events[0].body == (
        f"线索 #{lead.id}（普通）：南山区科技园路灯不亮\n状态：待认领，尚无人认领\n"
        "处理时限：2026-11-29 14:30，还剩 10 分钟。"
    )
    session.rollback()  # SQLite: the reading transaction would hold the database the passes write to
    sent = [
        deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(minutes=m)), env={})["sent"]
        for m in (19, 20, 25, 31)
    ]
    assert sent == [0, 1, 0, 0]


def test_a_crawl_health_problem_alerts_once_per_episode(
    alerting: Settings, session_factory: sessionmaker[Session], session: Session, receiver
) -> None:
    session.add(Platform(id="testboard", name="测试论坛", kind="html_board"))
    session.flush()
    history = [(9, 20, "ok"), (8, 22, "ok"), (7, 18, "ok"), (6, 21, "ok"), (5, 19, "ok"),
               (4, 0, "failed"), (3, 0, "failed"), (2, 0, "failed")]  # fmt: skip
    for hours_ago, items, status in history:
        started = NOW - timedelta(hours=hours_ago)
        session.add(
            CrawlRun(platform_id="testboard", started_at=started, finished_at=started + timedelta(minutes=5),
                     status=status, items=items, errors=0 if status == "ok" else 3)
        )  # fmt: skip
    session.commit()
    first = deliver_alerts(alerting, session_factory, clock=at(NOW), env={})
    again = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(minutes=1)), env={})
    assert (first, again) == ({**NOTHING, "new": 1, "sent": 1}, NOTHING)
    body = receiver[1].bodies[0]
    assert (body["kind"], body["title"]) == ("crawl_health", "【抓取健康】测试论坛")
    assert body["text"] == (
        "测试论坛：连续 3 次抓取失败或不完整（最近一次失败，3 个错误），"
        "自 2026-11-29 10:00 起该平台的帖子可能漏抓。"
    )


def _job_run(session: Session, minutes_ago: int, outcome: JobOutcome, error: str | None = None) -> None:
    started = NOW - timedelta(minutes=minutes_ago)
    session.add(JobRun(job_id="push_tickets", started_at=started, finished_at=started, outcome=outcome,
                       error=error, host="ops-1", pid=42))  # fmt: skip
    session.commit()


def test_a_failing_scheduled_job_alerts_once_per_streak_and_a_success_ends_it(
    alerting: Settings, session_factory: sessionmaker[Session], session: Session, receiver
) -> None:
    _job_run(session, 60, JobOutcome.OK)
    _job_run(session, 30, JobOutcome.FAILED, "ConnectError: dispatch unreachable")
    _job_run(session, 29, JobOutcome.SKIPPED, "lease held by ops-2:7")  # another scheduler's turn: normal
    _job_run(session, 20, JobOutcome.FAILED, "ConnectError: dispatch unreachable\nsecond line")
    first = deliver_alerts(alerting, session_factory, clock=at(NOW), env={})
    _job_run(session, -1, JobOutcome.FAILED, "ConnectError: dispatch unreachable")  # the same streak
    again = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(minutes=2)), env={})
    _job_run(session, -3, JobOutcome.OK)
    _job_run(session, -4, JobOutcome.MISSED, "missed by 4000 s, beyond its grace time")  # a new streak
    third = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(minutes=5)), env={})
    assert (first, again, third) == (
        {**NOTHING, "new": 1, "sent": 1},
        NOTHING,
        {**NOTHING, "new": 1, "sent": 1},
    )
    failed, missed = receiver[1].bodies
    assert (failed["kind"], failed["title"]) == ("job_failed", "【定时任务失败】推送工单")
    assert failed["text"] == (
        "定时任务「推送工单」（push_tickets）最近一次运行失败："
        "ConnectError: dispatch unreachable second line\n"
        "自 2026-11-29 13:30 起连续 2 次未成功，这段时间它负责的工作没有完成。"
    )
    assert missed["text"].startswith("定时任务「推送工单」（push_tickets）最近一次运行错过：missed by 4000 s")


@pytest.mark.parametrize("receiver", [[500, 200]], indirect=True)
def test_a_delivery_leased_by_another_pass_is_left_to_it_until_the_lease_expires(
    alerting: Settings, session_factory: sessionmaker[Session], make_lead, receiver
) -> None:
    _urgent(make_lead)
    deliver_alerts(alerting, session_factory, clock=at(NOW), env={})  # 500: retried 30 s later
    with session_factory() as session:
        delivery = session.scalars(select(AlertDelivery)).one()
        # Another pass took it at NOW + 30 s and is still sending (its lease: lease_seconds).
        delivery.claim_expires_at = NOW + timedelta(seconds=30 + alerting.alerts.lease_seconds)
        session.commit()
    leased = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(seconds=40)), env={})
    expired = deliver_alerts(alerting, session_factory, clock=at(NOW + timedelta(seconds=151)), env={})
    assert (leased, expired) == (NOTHING, {**NOTHING, "sent": 1})
    assert len(receiver[1].bodies) == 2


def test_a_channel_raising_an_unexpected_error_is_retried_and_the_others_still_get_the_alert(
    alerting: Settings, session_factory: sessionmaker[Session], make_lead, receiver, monkeypatch
) -> None:
    from verify.alerts import delivery as outbox

    broken = AlertChannelSettings(kind="webhook", url="http://127.0.0.1:9/none")
    alerting = alerting.changed(alerts={"channels": {"broken": broken}})
    real_send = outbox.send

    def send(channel, *args, **kwargs):  # type: ignore[no-untyped-def]
        if channel.name == "broken":
            raise RuntimeError("a bug")
        return real_send(channel, *args, **kwargs)

    monkeypatch.setattr(outbox, "send", send)
    _urgent(make_lead)
    assert deliver_alerts(alerting, session_factory, clock=at(NOW), env={}) == {
        **NOTHING,
        "new": 1,
        "sent": 1,
        "retrying": 1,
    }
    with session_factory() as session:
        broken = session.scalars(select(AlertDelivery).where(AlertDelivery.channel == "broken")).one()
        assert (broken.state, broken.last_error) == (DeliveryState.PENDING, "RuntimeError: a bug")
    assert len(receiver[1].bodies) == 1
