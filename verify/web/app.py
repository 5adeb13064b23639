"""create_app(settings): the FastAPI review app — pages, JSON API, signed session cookies, proxy
headers from trusted proxies only, security headers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from settings import Settings, require_secrets
from storage.base import utcnow
from storage.db import make_engine, make_session_factory
from verify.days import local_zone
from verify.web import (
    admin_pages,
    alerts_pages,
    api,
    dashboard,
    display,
    exports,
    jobs_pages,
    lead_pages,
    pages,
    platforms_pages,
    report_pages,
    users_pages,
)
from verify.web.deps import CsrfChecked, LoginRequired, PageForbidden
from verify.web.sessions import Clock

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "weisu_session"
# Scripts only from our own /static files, never inline: markup injected through crawled text cannot run.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def make_templates(zone: ZoneInfo) -> Jinja2Templates:
    """The app's templates; times show in ``zone`` (days.local_zone of the app's settings)."""
    # Autoescaping on for every template: crawled text is hostile and is never marked safe.
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
    )
    env.filters.update(display.FILTERS)
    env.filters["local_time"] = partial(display.local_time, zone=zone)
    env.globals["timezone"] = zone.key  # for the lead page's script, which shows a renewed lease
    env.globals.update(display.GLOBALS)
    return Jinja2Templates(env=env)


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
    return response


def _favicon() -> FileResponse:
    """Browsers ask for /favicon.ico whatever the page links; answer it rather than log a 404."""
    return FileResponse(HERE / "static" / "favicon.ico", media_type="image/x-icon")


async def _to_login(request: Request, _: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def _forbidden(request: Request, _: Exception) -> Response:
    templates = request.app.state.templates
    context = {"csrf_token": "", "flash": None}
    return templates.TemplateResponse(request, "forbidden.html", context, status_code=403)  # type: ignore[no-any-return]


def create_app(settings: Settings, clock: Clock = utcnow) -> FastAPI:
    """The review app; one engine and session factory for the app's lifetime, from settings.database_url.

    SecretError (one line) when ``WEISU_SECRET_KEY`` is unset or short: cookies signed with a known key
    could be forged. ``clock`` tells the time for session lifetimes (tests pass one they can move).
    """
    require_secrets(settings, "secret_key")
    review = settings.review
    # The OpenAPI document is served by api.openapi_router, behind the same sign-in as the API itself.
    app = FastAPI(
        title="weisu review API",
        version="1",
        summary="未诉 线索核实与派单",
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # One CSRF mechanism for every page, form, script and API call made with the session cookie.
        dependencies=[CsrfChecked],
    )
    engine = make_engine(settings.database_url, echo=settings.database.echo)
    app.state.settings = settings
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.templates = make_templates(local_zone(settings))
    app.state.clock = clock
    app.middleware("http")(_security_headers)
    # The cookie's own expiry is the absolute lifetime; idle and absolute limits and the account's
    # session version are checked on the server at every request (verify.web.sessions).
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=review.session_absolute_hours * 3600,
        same_site="lax",
        https_only=review.cookie_secure,
    )
    # Added last, so it runs first: X-Forwarded-For names the client only when the direct peer is one
    # of the configured proxies; otherwise the peer's own address is what every later step sees.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=review.trusted_proxies)
    app.add_exception_handler(LoginRequired, _to_login)
    app.add_exception_handler(PageForbidden, _forbidden)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_api_route("/favicon.ico", _favicon, include_in_schema=False)
    app.include_router(pages.router)
    app.include_router(lead_pages.router)
    app.include_router(dashboard.router)
    app.include_router(admin_pages.router)
    app.include_router(users_pages.router)
    app.include_router(platforms_pages.router)
    app.include_router(jobs_pages.router)
    app.include_router(alerts_pages.router)
    app.include_router(exports.router)
    app.include_router(report_pages.router)
    app.include_router(api.router)
    app.include_router(api.openapi_router)
    return app
