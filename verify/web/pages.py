"""Server-rendered pages: sign-in (rate-limited) and the filtered lead queue (one lead: ``lead_pages``)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from storage.base import utcnow
from storage.vocabulary import REQUEST_TYPE_ORDER, LeadState, Priority
from verify import review, sla, users
from verify.days import local_zone
from verify.inputs import storable
from verify.review import QueueSort
from verify.web import sessions
from verify.web.deps import AnalystPage, DbSession, csrf_token, get_settings, session_user
from verify.web.filters import problems_message, read_filter

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20
SORT_LABELS = {
    QueueSort.URGENT: "加急优先、问题先于建议和咨询、时限最近",
    QueueSort.SCORE: "评分最高",
    QueueSort.UNCERTAINTY: "模型最不确定",
}


def render(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    context = {"csrf_token": csrf_token(request), "flash": request.session.pop("flash", None), **context}
    templates = request.app.state.templates
    return templates.TemplateResponse(request, name, context, status_code=status_code)  # type: ignore[no-any-return]


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _local_path(target: str | None) -> str:
    # Only same-site paths: "//evil.example" or "https://…" would make login an open redirect.
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/leads"


def client_address(request: Request) -> str:
    # The direct peer, or the client a trusted proxy named: app.py's ProxyHeadersMiddleware set it.
    return request.client.host if request.client else "unknown"


@router.get("/")
def home() -> Response:
    return see_other("/leads")


@router.get("/login")
def login_form(request: Request, next: str = "/leads") -> Response:
    return render(request, "login.html", {"next": _local_path(next), "error": None})


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(max_length=100)],
    password: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=2000)] = "/leads",
) -> Response:
    # No account has a name PostgreSQL cannot even compare (NUL): such a name is an unknown user.
    username = username if storable(username) else ""
    review_settings = get_settings(request).review
    client = client_address(request)
    if users.login_blocked(session, username, client, review_settings):
        minutes = review_settings.login_window_minutes
        error = f"登录失败次数过多，请 {minutes} 分钟后再试。"
        return render(request, "login.html", {"next": _local_path(next), "error": error}, status_code=429)
    user = users.authenticate(session, username, password)
    if user is None:
        users.record_login_failure(session, username, client)
        session.commit()
        context = {"next": _local_path(next), "error": "用户名或密码错误"}
        return render(request, "login.html", context, status_code=401)
    users.clear_login_failures(session, username)
    session.commit()  # the cleared failures and a rehashed password, if argon2 parameters changed
    sessions.start(request, user)  # a fresh session (and CSRF token) on every login
    return see_other(_local_path(next))


@router.post("/logout")
def logout(request: Request, session: DbSession) -> Response:
    # Signing out ends every session of the account, so a copied cookie dies with this one.
    user = session_user(request, session)
    if user is not None:
        users.end_sessions(user)
        session.commit()
    request.session.clear()
    return see_other("/login")


@router.get("/leads")
def leads_page(request: Request, session: DbSession, user: AnalystPage) -> Response:
    criteria, problems = read_filter(request.query_params, PAGE_SIZE)
    now = utcnow()
    zone = local_zone(get_settings(request))
    summary = review.summarise(session=session, criteria=criteria, zone=zone, now=now)
    leads = review.page(session=session, criteria=criteria, zone=zone, summary=summary)
    total = summary.total
    review_settings = get_settings(request).review
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    context = {
        "user": user,
        "leads": leads,
        "clocks": {lead.id: sla.sla_clocks(lead, review_settings) for lead in leads},
        "now": now,
        "total": total,
        "page": criteria.page,
        "pages": pages,
        "filter": criteria,
        "counts": summary.counts,
        "breaches": summary.breaches,
        "states": list(LeadState),
        "priorities": list(Priority),
        "request_types": list(REQUEST_TYPE_ORDER),
        "sorts": SORT_LABELS,
        "query": lambda **overrides: urlencode(criteria.query_params(**overrides)),
        "query_problems": problems_message(problems) if problems else None,
    }
    # 400: the link was wrong; the queue still shows, filtered by the values that were valid.
    return render(request, "leads.html", context, status_code=400 if problems else 200)
