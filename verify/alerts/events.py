"""The events people are told about, derived from the database alone (stages meet only there): urgent
leads, SLAs about to break, crawl health problems and scheduled jobs that failed. Each has a key that
names it once and for all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from settings import Settings
from storage.models import JobRun, Lead, Platform
from storage.queries import recent_finished_runs
from storage.vocabulary import AWAITING_DECISION_STATES, LIVE_STATES, AlertKind, JobOutcome, Priority
from verify.alerts.health import platform_problems
from verify.alerts.text import one_line
from verify.days import local_zone
from verify.web.display import PRIORITY_LABELS, STATE_LABELS, local_time

#: A lead's summary, place and urgency reason (crawled or derived from crawled text) are cut here.
MAX_SUMMARY_CHARS = 200
MAX_FIELD_CHARS = 100
#: A job run that did not do its work (a run skipped because another scheduler held the lease did not
#: need to: the other one ran it).
UNSUCCESSFUL_RUNS = (JobOutcome.FAILED, JobOutcome.MISSED)


@dataclass(frozen=True)
class Event:
    """One alert to make: its unique key, kind, Chinese title and plain-text body."""

    key: str
    kind: AlertKind
    title: str
    body: str
    lead_id: int | None = None
    platform_id: str | None = None


def _place(lead: Lead) -> str:
    place = "".join(part for part in (lead.district, lead.street, lead.landmark) if part)
    return one_line(place, MAX_FIELD_CHARS) or "未识别"


def urgent_lead_events(session: Session, settings: Settings, now: datetime) -> list[Event]:
    """Every live urgent lead that became urgent within ``alerts.urgent_window_hours``: one event each."""
    since = now - timedelta(hours=settings.alerts.urgent_window_hours)
    query = (
        select(Lead)
        .where(Lead.priority == Priority.URGENT, Lead.state.in_(LIVE_STATES))
        .where(or_(Lead.urgent_since >= since, Lead.urgent_since.is_(None) & (Lead.found_at >= since)))
        .order_by(Lead.id)
    )
    zone = local_zone(settings)
    events = []
    for lead in session.scalars(query):
        summary = one_line(lead.summary, MAX_SUMMARY_CHARS)
        body = "\n".join(
            [
                f"加急线索 #{lead.id}：{summary}",
                f"类别：{one_line(lead.category, MAX_FIELD_CHARS) or '未分类'}；地点：{_place(lead)}",
                f"加急原因：{one_line(lead.urgency_reason, MAX_FIELD_CHARS) or '未说明'}",
                f"发现时间：{local_time(lead.urgent_since or lead.found_at, zone)}；"
                f"处理时限：{local_time(lead.sla_due_at, zone)}",
            ]
        )
        title = f"【加急线索】#{lead.id} {one_line(lead.category, 20) or '未分类'}"
        events.append(Event(f"urgent:lead:{lead.id}", AlertKind.URGENT_LEAD, title, body, lead_id=lead.id))
    return events


def sla_warning_events(session: Session, settings: Settings, now: datetime) -> list[Event]:
    """Every open lead whose deadline (verify.sla wrote it) falls within the next
    ``alerts.sla_warning_minutes``: one event per lead and deadline (a new deadline warns again)."""
    lead_time = timedelta(minutes=settings.alerts.sla_warning_minutes)
    query = (
        select(Lead)
        .where(
            Lead.state.in_(AWAITING_DECISION_STATES),
            Lead.sla_due_at > now,
            Lead.sla_due_at <= now + lead_time,
        )
        .order_by(Lead.sla_due_at, Lead.id)
    )
    zone = local_zone(settings)
    events = []
    for lead in session.scalars(query):
        assert lead.sla_due_at is not None  # the query's condition
        left = max(int((lead.sla_due_at - now).total_seconds() // 60), 0)
        holder = f"，认领人：{lead.claimed_by}" if lead.claimed_by else "，尚无人认领"
        summary = one_line(lead.summary, MAX_SUMMARY_CHARS)
        body = "\n".join(
            [
                f"线索 #{lead.id}（{PRIORITY_LABELS[lead.priority]}）：{summary}",
                f"状态：{STATE_LABELS[lead.state]}{holder}",
                f"处理时限：{local_time(lead.sla_due_at, zone)}，还剩 {left} 分钟。",
            ]
        )
        title = f"【时限将至】线索 #{lead.id} 还剩 {left} 分钟"
        key = f"sla:lead:{lead.id}:{lead.sla_due_at.strftime('%Y%m%dT%H%M%SZ')}"
        events.append(Event(key, AlertKind.SLA_WARNING, title, body, lead_id=lead.id))
    return events


def health_events(session: Session, settings: Settings, now: datetime) -> list[Event]:
    """Every platform's current crawl health problem (verify/alerts/health.py): one event per episode."""
    rules = settings.alerts.health
    # Enough runs for the yardstick plus an episode before it (a streak, a run of quiet runs).
    runs = recent_finished_runs(session, 2 * rules.volume_runs + rules.failure_streak)
    names = {p.id: p.name for p in session.scalars(select(Platform))}
    names.update({key: p.name for key, p in settings.platforms.items()})
    zone: ZoneInfo = local_zone(settings)
    window = timedelta(hours=settings.alerts.health_window_hours)
    return [
        Event(
            problem.event_key,
            AlertKind.CRAWL_HEALTH,
            f"【抓取健康】{names.get(problem.platform_id, problem.platform_id)}",
            problem.text,
            platform_id=problem.platform_id,
        )
        for problem in platform_problems(runs, names, rules, zone, now=now, window=window)
    ]


def job_failure_events(session: Session, settings: Settings, now: datetime) -> list[Event]:
    """Every scheduled job whose newest run within ``alerts.health_window_hours`` failed or was missed:
    one event per streak of such runs, keyed by the streak's first run (a success ends the streak)."""
    since = now - timedelta(hours=settings.alerts.health_window_hours)
    query = (
        select(JobRun)
        .where(JobRun.started_at >= since, JobRun.outcome != JobOutcome.SKIPPED)
        .order_by(JobRun.job_id, JobRun.started_at.desc(), JobRun.id.desc())
    )
    newest_first: dict[str, list[JobRun]] = {}
    for run in session.scalars(query):
        newest_first.setdefault(run.job_id, []).append(run)
    zone = local_zone(settings)
    events = []
    for job_id, runs in newest_first.items():
        streak = []
        for run in runs:
            if run.outcome not in UNSUCCESSFUL_RUNS:
                break
            streak.append(run)
        if not streak:
            continue
        first, newest = streak[-1], streak[0]
        schedule = settings.schedules.jobs.get(job_id)
        name = schedule.label if schedule and schedule.label else job_id
        what = "失败" if newest.outcome == JobOutcome.FAILED else "错过"
        error = one_line(newest.error or "", MAX_SUMMARY_CHARS)
        body = "\n".join(
            [
                f"定时任务「{name}」（{job_id}）最近一次运行{what}：{error}",
                f"自 {local_time(first.started_at, zone)} 起连续 {len(streak)} 次未成功，"
                "这段时间它负责的工作没有完成。",
            ]
        )
        title = f"【定时任务失败】{name}"
        events.append(Event(f"job:{job_id}:{first.id}", AlertKind.JOB_FAILED, title, body))
    return events


def derive_events(session: Session, settings: Settings, now: datetime) -> list[Event]:
    """Every event the database shows at ``now`` (already alerted ones included: the outbox skips them)."""
    return [
        *urgent_lead_events(session, settings, now),
        *sla_warning_events(session, settings, now),
        *health_events(session, settings, now),
        *job_failure_events(session, settings, now),
    ]
