"""Recognise a wall in one response (a login wall, a captcha page, an expired cookie); say why in Chinese.

A wall is not a page: it holds no posts, it is not malformed and it is not a layout change. What marks
one is data (settings.WallPatterns: DEFAULT_WALLS plus the platform's own ``walls``):

* a redirect whose target matches ``login_urls``;
* an answer that holds no data (HTML where JSON was asked for, a board page without rows or text, a
  feed without its root) and matches ``login_markers`` or ``captcha_markers`` — markers are never
  looked for in a page that holds data, where a complaint about 验证码 scams is just a post;
* a short JSON answer (at most MAX_WALL_JSON_BYTES) whose top level matches ``login_json`` /
  ``captcha_json`` (Weibo's ``ok: -100``, Bilibili's ``code: -101``), or whose top-level message
  matches a marker. "Not signed in" answers are small error objects; a longer answer is data.

Every answer passes through here, so the common case is cheap: a JSON answer costs a length test and
a look at its first character, a board page the selector query its spider runs anyway (on the same
cached parse); markers are searched only in pages that hold no data.

A login wall met while the platform's credential was sent is an expired cookie: the platform did not
accept it. The reasons name the environment variable to set, never its value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scrapy.http import Response, TextResponse

from crawlers.fields import json_first, select
from crawlers.spiders.payload import unwrap_jsonp
from settings import PlatformSettings
from storage.models import AccessStatus

#: Request meta flag the credentials middleware sets when it sent the platform's credential.
CREDENTIAL_SENT = "weisu_credential_sent"
#: Stats the middlewares write and the crawl-run recorder reads (prefixed weisu/ like every spider stat).
STATUS_STAT = "weisu/access_status"
REASON_STAT = "weisu/access_reason"
COUNT_STAT = "weisu/walls/{}"
#: Most pressing first: an expired cookie needs the operator; a captcha may pass by itself.
SEVERITY = (AccessStatus.COOKIE_EXPIRED, AccessStatus.LOGIN_WALL, AccessStatus.CAPTCHA)
#: Top-level fields where JSON APIs put their error message.
MESSAGE_FIELDS = ("message", "msg", "errmsg", "error_msg", "status_msg", "description")
#: Statuses whose body is looked at: answers, and the two refusals that come with a login form.
CHECKED_STATUSES = frozenset({*range(200, 300), 401, 403})
_FEED_ROOT = re.compile(r"<(rss|feed|rdf:RDF)\b")
#: Server-sent text quoted in a reason is cut to this many characters.
QUOTE_CHARS = 40
#: The longest JSON answer read as a possible "not signed in" object; longer ones are data.
MAX_WALL_JSON_BYTES = 4096
_MARKUP_FIRST = re.compile(r"\s*<")


@dataclass(frozen=True)
class Wall:
    """A recognised wall: its kind and what the answer showed (Chinese, completes "入口 X …")."""

    status: AccessStatus
    how: str


def login_status(credential_sent: bool) -> AccessStatus:
    """A login wall despite our credential means the credential has expired."""
    return AccessStatus.COOKIE_EXPIRED if credential_sent else AccessStatus.LOGIN_WALL


class Patterns:
    """Regular expressions searched one by one (each may carry its own inline flags, such as ``(?i)``)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.compiled = [re.compile(pattern) for pattern in patterns]

    def search(self, text: str) -> bool:
        return any(pattern.search(text) for pattern in self.compiled)


class WallRules:
    """One platform's wall patterns, compiled once per crawl."""

    def __init__(self, platform: PlatformSettings) -> None:
        patterns = platform.wall_patterns
        self.platform = platform
        self.login_urls = Patterns(patterns.login_urls)
        self.login_markers = Patterns(patterns.login_markers)
        self.captcha_markers = Patterns(patterns.captcha_markers)
        self.login_json = patterns.login_json
        self.captcha_json = patterns.captcha_json
        self.embedded = re.compile(platform.response.effective_pattern, re.S)

    def is_login_url(self, url: str) -> bool:
        return self.login_urls.search(url)

    def recognise(self, response: Response, credential_sent: bool) -> Wall | None:
        """The wall this response is, or None for an answer the spider should parse as usual."""
        if response.status not in CHECKED_STATUSES or not isinstance(response, TextResponse):
            return None
        if not self.holds_data(response):
            return self._page_wall(response.text, response.status, credential_sent)
        if self.reads_json and len(response.body) <= MAX_WALL_JSON_BYTES:
            return self._json_wall(response.text, credential_sent)
        return None

    @property
    def reads_json(self) -> bool:
        return (
            self.platform.kind in ("json_feed", "comments")
            and self.platform.response.format != "embedded_json"
        )

    def holds_data(self, response: TextResponse) -> bool:
        """Whether the answer is the kind of page the platform serves its data in (never its content)."""
        kind = self.platform.kind
        if kind in ("json_feed", "comments"):
            if self.platform.response.format == "embedded_json":
                return self.embedded.search(response.text) is not None
            return _MARKUP_FIRST.match(response.text) is None  # HTML or XML where JSON(P) was asked for
        if kind == "rss":
            return _FEED_ROOT.search(response.text[:4096]) is not None
        # A listing has rows, a detail page its text (found even if a mislabelled charset garbles it).
        fields = self.platform.fields
        return any(bool(fields.get(name) and select(response, fields[name])) for name in ("items", "text"))

    def _page_wall(self, text: str, status: int, credential_sent: bool) -> Wall | None:
        shown = "返回" if status < 300 else f"返回 HTTP {status} 和"
        # A login form first: login pages often offer an SMS 验证码 too, captcha pages rarely a password.
        if self.login_markers.search(text):
            return Wall(login_status(credential_sent), f"{shown}登录页面")
        if self.captcha_markers.search(text):
            return Wall(AccessStatus.CAPTCHA, f"{shown}验证码页面")
        return None

    def _json_wall(self, text: str, credential_sent: bool) -> Wall | None:
        data = _json_root(text, self.platform.response.format)
        if not isinstance(data, dict):
            return None
        codes = [(code, True) for code in self.login_json] + [(code, False) for code in self.captcha_json]
        for code, login in codes:
            value = json_first(data, code.path)
            if value in code.values and not isinstance(value, bool):
                status = login_status(credential_sent) if login else AccessStatus.CAPTCHA
                verb = "接口返回未登录" if login else "接口要求验证"
                return Wall(status, f"{verb}（{code.path} = {json.dumps(value, ensure_ascii=False)}）")
        return self._message_wall(data, credential_sent)

    def _message_wall(self, data: Mapping[str, Any], credential_sent: bool) -> Wall | None:
        for name in MESSAGE_FIELDS:
            message = data.get(name)
            if not isinstance(message, str):
                continue
            quoted = message[:QUOTE_CHARS]
            if self.login_markers.search(message):
                return Wall(login_status(credential_sent), f"接口返回未登录（{name}：{quoted}）")
            if self.captcha_markers.search(message):
                return Wall(AccessStatus.CAPTCHA, f"接口要求验证（{name}：{quoted}）")
        return None


def _json_root(text: str, form: str) -> Any:
    try:
        return json.loads(unwrap_jsonp(text) if form == "jsonp" else text)
    except ValueError:
        return None


def credential_noun(platform: PlatformSettings) -> str:
    header = platform.credentials_header
    return "Cookie" if header is None or header.lower() == "cookie" else f"{header} 凭据"


def reason(wall: Wall, label: str | None, platform: PlatformSettings) -> str:
    """What an operator reads: the wall, where it was met, and what to do (naming the variable only)."""
    entry = f"入口 {label} " if label else "请求"
    noun, variable = credential_noun(platform), platform.credentials_env
    if wall.status == AccessStatus.CAPTCHA:
        return f"遇到验证码：{entry}{wall.how}，该入口本次已停止；请稍后再试或调低抓取频率"
    if wall.status == AccessStatus.COOKIE_EXPIRED:
        return f"{noun} 已失效：{entry}{wall.how}，请更新环境变量 {variable} 中的 {noun}"
    if variable:
        return f"需要登录：{entry}{wall.how}，请在环境变量 {variable} 中配置有效的 {noun}"
    return f"需要登录：{entry}{wall.how}，请为该平台设置 credentials_env，并在该环境变量中配置有效的 Cookie"


def more_pressing(status: AccessStatus, than: str | None) -> bool:
    """Whether ``status`` outranks the wall already recorded for the run (None: none yet)."""
    return than is None or SEVERITY.index(status) < SEVERITY.index(AccessStatus(than))


def access_outcome(stats: Mapping[str, Any], answered: bool) -> tuple[AccessStatus | None, str | None]:
    """A finished run's access: its most pressing wall with the reason; ok when it met none and got an
    answer (``answered``: any 2xx); None when nothing answered, which says nothing about access."""
    status = stats.get(STATUS_STAT)
    if status:
        return AccessStatus(status), stats.get(REASON_STAT)
    return (AccessStatus.OK, None) if answered else (None, None)
