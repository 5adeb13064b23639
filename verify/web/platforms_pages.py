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

from settings import PlatformSettings
from storage.models import AuditEvent, CrawlRun, Platform
from storage.queries import latest_runs, set_platform_paused, sync_platforms
from storage.vocabulary import Action
from verify.web.deps import AdminPage, DbSession, get_settings
from verify.web.pages import render, see_other

router = APIRouter(include_in_schema=False)
PLATFORMS_PAGE = "/admin/platforms"
KIND_LABELS = {"json_feed": "JSON 接口", "comments": "评论接口", "html_board": "网页版块", "rss": "RSS/Atom"}
PRIORITY_LABELS = {"incremental": "每 15 分钟", "nightly": "每晚"}


@dataclass(frozen=True)
class PlatformRow:
    key: str
    config: PlatformSettings
    row: Platform | None
    last_run: CrawlRun | None


@router.get(PLATFORMS_PAGE)
def platforms_page(request: Request, session: DbSession, user: AdminPage) -> Response:
    settings = get_settings(request)
    # The table mirrors config.yaml even before the first crawl, so every platform can be paused.
    sync_platforms(session, {k: (p.name, p.kind, p.enabled) for k, p in settings.platforms.items()})
    session.commit()
    stored = {p.id: p for p in session.scalars(select(Platform))}
    runs = latest_runs(session)
    rows = [
        PlatformRow(key, config, stored.get(key), runs.get(key)) for key, config in settings.platforms.items()
    ]
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
