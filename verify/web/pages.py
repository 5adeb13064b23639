"""Server-rendered pages: login and the lead queue (a lead's own page is in ``lead_pages``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from storage.models import LeadState
from verify import review
from verify.users import authenticate
from verify.web.deps import SESSION_USER, CsrfChecked, DbSession, PageUser, csrf_token

router = APIRouter(include_in_schema=False)
PAGE_SIZE = 20


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


@router.get("/")
def home() -> Response:
    return see_other("/leads")


@router.get("/login")
def login_form(request: Request, next: str = "/leads") -> Response:
    return render(request, "login.html", {"next": _local_path(next), "error": None})


@router.post("/login", dependencies=[CsrfChecked])
def login(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form()],
    password: Annotated[str, Form()],
    next: Annotated[str, Form()] = "/leads",
) -> Response:
    user = authenticate(session, username, password)
    if user is None:
        context = {"next": _local_path(next), "error": "用户名或密码错误"}
        return render(request, "login.html", context, status_code=401)
    session.commit()  # a rehashed password, if argon2 parameters changed
    request.session.clear()  # a fresh session (and CSRF token) on every login
    request.session[SESSION_USER] = user.username
    return see_other(_local_path(next))


@router.post("/logout", dependencies=[CsrfChecked])
def logout(request: Request) -> Response:
    request.session.clear()
    return see_other("/login")


@router.get("/leads")
def leads_page(
    request: Request, session: DbSession, user: PageUser, state: str = "", page: int = 1
) -> Response:
    chosen = LeadState(state) if state in LeadState.__members__.values() else None
    criteria = review.LeadFilter(state=chosen, page=max(page, 1), page_size=PAGE_SIZE)
    leads, total = review.queue(session=session, criteria=criteria)
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    context = {"user": user, "leads": leads, "total": total, "page": criteria.page, "pages": pages}
    context.update(state=chosen.value if chosen else "", states=list(LeadState))
    return render(request, "leads.html", context)
