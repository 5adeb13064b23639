"""Admin page of the monitored platforms: configuration, last crawl health, and pausing a platform.

A platform's definition lives in config.yaml (a platform is data); what an admin changes here is
operational — pausing a platform whose layout changed until its selectors are fixed, and resuming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from settings import AlertHealthSettings, PlatformSettings, Settings
from storage.models import AuditEvent, CrawlRun, Platform
from storage.queries import latest_runs, recent_finished_runs, set_platform_paused, sync_platforms
from storage.vocabulary import Action
from verify.alerts.health import HealthProblem, assess, learned_volume
from verify.days import local_zone
from verify.web.deps import AdminPage, DbSession, get_settings
from verify.web.pages import render, see_other
from verify.web.sparkline import Sparkline, sparkline

router = APIRouter(include_in_schema=False)
PLATFORMS_PAGE = "/admin/platforms"
KIND_LABELS = {"json_feed": "JSON 接口", "comments": "评论接口", "html_board": "网页版块", "rss": "RSS/Atom"}
PRIORITY_LABELS = {"incremental": "每 15 分钟", "nightly": "每晚"}
#: Runs drawn in each platform's volume sparkline.
SPARKLINE_RUNS = 20


@dataclass(frozen=True)
class PlatformRow:
    key: str
    config: PlatformSettings
    row: Platform | None
    last_run: CrawlRun | None
    #: Items of its recent finished runs, with the expected volume's level.
    volume: Sparkline | None = None
    #: What its recent runs are missing, as the health alert says it (None: healthy).
    problem: HealthProblem | None = None


def _volume(name: str, recent: list[CrawlRun], rules: AlertHealthSettings) -> Sparkline | None:
    """The sparkline of a platform's recent runs (newest first), with its learned expected volume."""
    if not recent:
        return None
    median = learned_volume(recent, rules)
    shown = [run.items for run in reversed(recent[:SPARKLINE_RUNS])]
    title = f"{name}：最近 {len(shown)} 次抓取的条目数 {'、'.join(map(str, shown))}"
    return sparkline(shown, title + (f"，预期约 {median:g} 条" if median is not None else ""), median)


def _rows(
    session: Session, settings: Settings, stored: dict[str, Platform], latest: dict[str, CrawlRun]
) -> list[PlatformRow]:
    """Every configured platform in config.yaml order: its row, last run, volume and current problem."""
    rules = settings.alerts.health
    history = recent_finished_runs(session, max(SPARKLINE_RUNS, 2 * rules.volume_runs + rules.failure_streak))
    zone = local_zone(settings)
    rows = []
    for key, config in settings.platforms.items():
        recent = history.get(key, [])
        problem = assess(key, config.name, recent, rules, zone)
        volume = _volume(config.name, recent, rules)
        rows.append(PlatformRow(key, config, stored.get(key), latest.get(key), volume, problem))
    return rows


@router.get(PLATFORMS_PAGE)
def platforms_page(request: Request, session: DbSession, user: AdminPage) -> Response:
    settings = get_settings(request)
    # The table mirrors config.yaml even before the first crawl, so every platform can be paused.
    sync_platforms(session, {k: (p.name, p.kind, p.enabled) for k, p in settings.platforms.items()})
    session.commit()
    stored = {p.id: p for p in session.scalars(select(Platform))}
    rows = _rows(session, settings, stored, latest_runs(session))
    context = {"user": user, "rows": rows, "kinds": KIND_LABELS, "priorities": PRIORITY_LABELS}
    return render(request, "admin_platforms.html", context)


def _set_paused(
    request: Request, session: DbSession, user: AdminPage, key: str, paused: bool, reason: str
) -> Response:
    try:
        set_platform_paused(session, key, paused=paused, actor=user.username, reason=reason.strip())
    except KeyError:
        session.rollback()
        request.session["flash"] = f"没有这个平台：{key[:64]}"
        return see_other(PLATFORMS_PAGE)
    action = Action.PAUSE_PLATFORM if paused else Action.RESUME_PLATFORM
    session.add(
        AuditEvent(
            actor=user.username, action=action, reason=reason.strip()[:500] or None, details={"platform": key}
        )
    )
    session.commit()
    request.session["flash"] = f"已暂停平台 {key}。" if paused else f"已恢复平台 {key}。"
    return see_other(PLATFORMS_PAGE)


@router.post(PLATFORMS_PAGE + "/{key}/pause")
def pause_platform(
    request: Request,
    session: DbSession,
    user: AdminPage,
    key: str,
    reason: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    return _set_paused(request, session, user, key, True, reason)


@router.post(PLATFORMS_PAGE + "/{key}/resume")
def resume_platform(request: Request, session: DbSession, user: AdminPage, key: str) -> Response:
    return _set_paused(request, session, user, key, False, "")
