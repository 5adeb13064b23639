"""Typed loading of config.yaml plus environment overrides; a bad file stops the program in one line."""

from __future__ import annotations

import enum
import ipaddress
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Required, Self
from urllib.parse import urlsplit, urlunsplit

import yaml
from cssselect import SelectorError
from parsel import Selector
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from typing_extensions import TypedDict  # pydantic reads typing.TypedDict only from Python 3.12

from storage.vocabulary import AlertKind

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config.yaml"

#: Environment variables that override config.yaml (documented in README; a test checks that).
ENV_OVERRIDES = {
    "WEISU_CONFIG": "path of the config file (default: config.yaml beside settings.py)",
    "WEISU_DATABASE_URL": "database.url",
    "WEISU_SIMULATOR_URL": "rebases every platform's base_url onto the platform simulator",
    "WEISU_DISPATCH_URL": "dispatch.base_url",
    "WEISU_DISPATCH_API_KEY": "the dispatch system's api_key (secret; never in config.yaml)",
    "WEISU_AUTHOR_HASH_KEY": "HMAC key for pseudonymous author keys (secret, no default; crawl, scheduler)",
    "WEISU_SECRET_KEY": "signs the review app's session cookies (secret, no default; serve)",
    "WEISU_MODEL_DIR": "classify.model_dir",
    "WEISU_REDIS_URL": "the Redis that `weisu crawl --distributed` workers share (never in config.yaml)",
    "WEISU_REDIS_PREFIX": "prefix of every Redis key the distributed crawl writes (default weisu:)",
}


#: The secrets a command may need: Settings attribute → the environment variable that sets it.
SECRET_VARIABLES = {"secret_key": "WEISU_SECRET_KEY", "author_hash_key": "WEISU_AUTHOR_HASH_KEY"}
#: Shortest key accepted, in bytes (UTF-8): 256 bits, the HMAC-SHA256 block a guess must cover.
SECRET_MIN_BYTES = 32
MAKE_SECRET = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


class ConfigError(Exception):
    """A configuration file that cannot be used; the message is one line: file, key path, reason."""


class SecretError(ConfigError):
    """A secret a command needs is unset or too short; the message is one line naming the variable."""


class Derivable(BaseModel):
    """Settings are frozen once loaded (nothing may change them under a running stage); a variant is
    derived as a new object with ``changed``."""

    def changed(self, **updates: Any) -> Self:
        """A copy with ``updates``: settings are frozen once loaded, so a variant is a new object. A dict
        given for a nested settings model changes only the keys it names. Like model_copy, the values
        are not validated again: this is for code that derives settings (demo, tests), not for input."""
        return self.model_copy(
            update={name: _changed(getattr(self, name), value) for name, value in updates.items()}
        )


def _changed(current: Any, value: Any) -> Any:
    """``value`` laid over ``current``: a dict changes only the keys it names, in a nested model or in a
    mapping of models (e.g. ``schedules.jobs``), at any depth."""
    if isinstance(value, dict) and isinstance(current, Derivable):
        return current.changed(**value)
    if isinstance(value, dict) and isinstance(current, dict):
        return {**current, **{key: _changed(current.get(key), item) for key, item in value.items()}}
    return value


class StrictModel(Derivable):
    """Unknown keys are errors: a typo in config.yaml must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


#: The database URL schemes weisu runs on (storage.db maps plain postgresql:// onto psycopg).
DATABASE_SCHEMES = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")


class DatabaseSettings(StrictModel):
    url: str = "sqlite:///var/weisu.db"
    echo: bool = False

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        # Refused here, in one line, rather than as a SQLAlchemy traceback at the first connection.
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme.lower() not in DATABASE_SCHEMES:
            raise ValueError(f"unknown database scheme {scheme!r}: use one of {', '.join(DATABASE_SCHEMES)}")
        return value


# --- field paths: checked for syntax when the file is read, so a typo never reaches a crawl ---------

#: One segment of a tiny JSON path as crawlers.fields reads it: a key, optionally followed by ``[]``
#: (every element) or ``[n]`` (one element); ``*`` fans out over an object's values.
_JSON_SEGMENT = re.compile(r"[^\s.\[\]{}]*(\[\d*\])?")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
#: Parsing an expression against an empty page is how parsel checks its syntax.
_EMPTY_PAGE = Selector(text="<html></html>")


@lru_cache(maxsize=4096)  # every load checks the same few hundred paths again
def _json_path(value: str) -> str:
    segments = value.split(".")
    if not value or not all(segment and _JSON_SEGMENT.fullmatch(segment) for segment in segments):
        raise ValueError(f"{value!r} is not a JSON path (keys joined by dots, [] or [n] after a key)")
    return value


@lru_cache(maxsize=4096)
def _json_path_or_template(value: str) -> str:
    """A JSON path, or a template such as "{base_url}/detail/{mid}" whose placeholders are JSON paths."""
    if "{" not in value and "}" not in value:
        return _json_path(value)
    for key in _PLACEHOLDER.findall(value):
        if key != "base_url":
            _json_path(key)
    if "{" in _PLACEHOLDER.sub("", value) or "}" in _PLACEHOLDER.sub("", value):
        raise ValueError(f"{value!r} has an unmatched brace")
    return value


@lru_cache(maxsize=4096)
def _selector(value: str) -> str:
    """A CSS selector or an XPath expression (the crawler tells them apart; either must parse)."""
    for query in (_EMPTY_PAGE.css, _EMPTY_PAGE.xpath):
        try:
            query(value)
        except (ValueError, SelectorError):
            continue
        return value
    raise ValueError(f"{value!r} is neither a CSS selector nor an XPath expression")


@lru_cache(maxsize=4096)
def _xpath(value: str) -> str:
    try:
        _EMPTY_PAGE.xpath(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an XPath expression") from None
    return value


def _time_format(value: str) -> str:
    if "%" not in value:
        raise ValueError(f"{value!r} is not a strptime format (no % directive)")
    return value


JsonPath = Annotated[str, AfterValidator(_json_path)]
JsonPathOrTemplate = Annotated[str, AfterValidator(_json_path_or_template)]
CssOrXPath = Annotated[str, AfterValidator(_selector)]
XPath = Annotated[str, AfterValidator(_xpath)]
TimeFormat = Annotated[str, AfterValidator(_time_format)]


class PaginationSettings(StrictModel):
    """How a platform pages: by page number, offset, cursor/max_id taken from the response, or a next link.

    The page number, offset or cursor goes where an entry point's url or body says ``{page}``: the
    template names the query parameter (or path segment, or JSON key), so nothing else does.
    """

    style: Literal["page", "offset", "cursor", "next_link", "none"] = "page"
    start: int = 1
    #: Items per page: what an offset steps by, and how page numbers count towards ``total_path``.
    #: Only those two read it, so only they take it (elsewhere the URL template says the size).
    page_size: int | None = Field(default=None, ge=1)
    max_pages: int = Field(default=5, ge=1)
    cursor_path: JsonPath | None = None
    has_more_path: JsonPath | None = None
    end_path: JsonPath | None = None
    total_path: JsonPath | None = None
    next_selector: CssOrXPath | None = None

    #: The key a style cannot page without, which no other style reads.
    STYLE_KEYS: ClassVar[dict[str, str]] = {"cursor": "cursor_path", "next_link": "next_selector"}

    @model_validator(mode="after")
    def _keys_fit_the_style(self) -> PaginationSettings:
        for style, key in self.STYLE_KEYS.items():
            if self.style == style and getattr(self, key) is None:
                raise ValueError(f"style {style} needs {key}")
            if self.style != style and getattr(self, key) is not None:
                raise ValueError(f"{key} is read only with style {style}, this is style {self.style}")
        if self.total_path is not None and self.style not in ("page", "offset"):
            # Coverage is counted in page numbers or offsets: a cursor or a link counts nothing.
            raise ValueError(f"total_path is read only with style page or offset, this is style {self.style}")
        reads_size = self.style == "offset" or (self.style == "page" and self.total_path is not None)
        if reads_size and self.page_size is None:
            raise ValueError(
                f"style {self.style} needs page_size" + ("" if self.style == "offset" else " with total_path")
            )
        if not reads_size and self.page_size is not None:
            raise ValueError(
                "page_size is read only with style offset or with total_path"
                " (here the url template says the size)"
            )
        return self

    @property
    def per_page(self) -> int:
        """``page_size`` where it is read (the check above makes it present there)."""
        if self.page_size is None:
            raise ValueError(f"style {self.style} without total_path has no page_size")
        return self.page_size


class PolitenessSettings(StrictModel):
    download_delay: float = Field(default=0.0, ge=0)
    concurrency: int = Field(default=4, ge=1)
    obey_robots: bool = True
    #: How long one request may take before it counts as failed (and is retried): a platform that
    #: hangs costs a run at most (retries + 1) × this per request.
    download_timeout: float = Field(default=30.0, gt=0)


class EntryPoint(StrictModel):
    """One place a crawl starts: a URL template, optionally expanded once per keyword.

    POST APIs (search fronts that take a form or JSON body) set ``method: POST`` and a ``body``
    template filled with ``{keyword}`` and ``{page}`` like the URL; ``headers`` are sent as given.
    """

    url: str
    keywords: list[str] = Field(default_factory=list)
    label: str | None = None
    method: Literal["GET", "POST"] = "GET"
    body: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    #: The entry point lists only our city's content (a Shenzhen board, a city news feed): a post found
    #: through it that names no place is still ours.
    local: bool = False


#: window.__INITIAL_STATE__ = {...}</script> as Xiaohongshu, Douyin and many Vue/React SSR pages embed it.
DEFAULT_EMBEDDED_JSON_PATTERN = r"window\.__INITIAL_STATE__\s*=\s*(.+?)\s*;?\s*</script>"


class ResponseSettings(StrictModel):
    """Where the JSON of a json_feed/comments response is: the body, a JSONP wrapper, or an HTML page."""

    format: Literal["json", "jsonp", "embedded_json"] = "json"
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _one_group(cls, value: str | None) -> str | None:
        if value is None:
            return value
        try:
            groups = re.compile(value).groups
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        if groups != 1:
            raise ValueError(f"must have exactly one group (the JSON text), has {groups}")
        return value

    @property
    def effective_pattern(self) -> str:
        return self.pattern or DEFAULT_EMBEDDED_JSON_PATTERN


class ThreadKeyField(enum.StrEnum):
    """Which stored field of a found post names its comment thread (fills ``{keyword}``)."""

    EXTERNAL_ID = "external_id"
    URL = "url"


class FollowRule(StrictModel):
    """When a found post's comments are read: it passes ANY configured test (none configured: never)."""

    min_replies: int | None = Field(default=None, ge=0)
    min_likes: int | None = Field(default=None, ge=0)
    #: Cheap text tests on the post's title and text: a keyword, or one of the city's district names.
    keywords: list[str] = Field(default_factory=list)
    local_places: bool = False


class ReplyApi(StrictModel):
    """A platform's replies-of-a-comment API (Bilibili ``x/v2/reply/reply``), read when a top-level
    comment counts more replies than its record inlines."""

    #: Relative to base_url; ``{page}`` and ``{…}`` JSON paths of the top-level comment are filled in.
    url: str
    #: The JSON path of the reply list in its response, and of the comment's own reply count.
    items: str
    count: str
    page_size: int = Field(default=20, ge=1)
    max_pages: int = Field(default=3, ge=1)


class DiscoverySettings(StrictModel):
    """How a comments platform finds threads beyond its watched ids: the posts other platforms found."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    #: The platforms whose stored posts are threads here (bilibili ← bilibili_search).
    sources: list[str] = Field(alias="from", min_length=1)
    key: ThreadKeyField = ThreadKeyField.EXTERNAL_ID
    #: A regular expression with one group cutting the thread key out of ``key`` (an id in a URL).
    key_pattern: str | None = None
    follow: FollowRule = Field(default_factory=FollowRule)
    #: Threads followed per run (watched ids not counted), most engaged first.
    budget: int = Field(default=20, ge=0)
    #: Pages read per thread and run, and how deep replies to replies are read (1: replies only).
    max_pages: int = Field(default=3, ge=1)
    max_depth: int = Field(default=2, ge=0)
    #: Only posts stored this many days ago or later are considered.
    max_age_days: int = Field(default=7, ge=1)
    #: A followed thread is read again (only what is new) when its source shows more replies than at
    #: the last read, or when that read is this many hours old: a source post's counts are raised only
    #: when a crawl sees it again, and listings stop paging at what they stored before.
    reread_hours: int = Field(default=24, ge=1)
    #: Where the platform has one: the API listing a top-level comment's replies beyond those inlined.
    reply_api: ReplyApi | None = None

    @field_validator("key_pattern")
    @classmethod
    def _one_key_group(cls, value: str | None) -> str | None:
        if value is not None and re.compile(value).groups != 1:
            raise ValueError("must have exactly one group (the thread key)")
        return value


#: A header name as HTTP allows it (RFC 9110 token); the ones the HTTP client sets itself are refused.
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-type"})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _regexes(values: list[str]) -> list[str]:
    for value in values:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
    return values


class JsonCode(StrictModel):
    """A JSON answer meaning "not signed in" or "verify first": the value at ``path`` is one of ``values``."""

    path: JsonPath
    values: list[int | str] = Field(min_length=1)


class WallPatterns(StrictModel):
    """What marks a response as a wall instead of a page (crawlers/walls.py). A platform's own patterns
    are added to the generic ones (DEFAULT_WALLS); markers are regular expressions, searched only in
    answers that hold no data, and in the top-level message of a JSON answer."""

    #: Where a redirect to a login page goes (matched against the redirect's target URL).
    login_urls: list[str] = Field(default_factory=list)
    login_markers: list[str] = Field(default_factory=list)
    captcha_markers: list[str] = Field(default_factory=list)
    login_json: list[JsonCode] = Field(default_factory=list)
    captcha_json: list[JsonCode] = Field(default_factory=list)

    @field_validator("login_urls", "login_markers", "captcha_markers")
    @classmethod
    def _compiles(cls, values: list[str]) -> list[str]:
        return _regexes(values)

    def plus(self, other: WallPatterns) -> WallPatterns:
        """These patterns with ``other``'s added (a platform's own on top of the generic ones)."""
        names = type(self).model_fields
        return WallPatterns(**{name: [*getattr(self, name), *getattr(other, name)] for name in names})


#: The generic walls every platform is checked for: a redirect to a login URL, a login form (a
#: password field) or a login title, captcha pages, and JSON codes of the big platforms (Weibo's
#: ok: -100, Bilibili's code -101 账号未登录, Xiaohongshu's code -100 登录已过期).
DEFAULT_WALLS = WallPatterns(
    login_urls=[r"(?i)/(login|signin|sign_in|logon|passport|sso)\b", r"(?i)//(passport|login|sso|account)\."],
    login_markers=[
        r"(?i)<input[^>]+type\s*=\s*[\"']?password",
        r"(?i)<title>[^<]*(登录|登陆|sign in|log in)",
        "未登录|请先登录|请登录|登录已过期|登录失效|登录后查看|账号未登录",
    ],
    captcha_markers=[
        "验证码|安全验证|人机验证|滑块验证|拖动滑块",
        r"(?i)captcha|geetest|slider[-_ ]?(verify|captcha|check)|nc_scale",
    ],
    login_json=[
        JsonCode(path="ok", values=[-100]),
        JsonCode(path="code", values=[-101]),
        JsonCode(path="code", values=[-100]),
    ],
)


# --- the fields each spider kind reads (crawlers/spiders): any other key is a typo -------------------


class JsonFeedFields(TypedDict, total=False):
    """json_feed fields: JSON paths into each record of ``items`` (text fields may be URL templates)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    items: Required[JsonPath]
    external_id: JsonPathOrTemplate
    text: JsonPathOrTemplate
    title: JsonPathOrTemplate
    author: JsonPathOrTemplate
    url: JsonPathOrTemplate
    ip_location: JsonPathOrTemplate
    parent_external_id: JsonPathOrTemplate
    published_at: JsonPath
    time_format: TimeFormat
    likes: JsonPath
    replies: JsonPath
    reposts: JsonPath


class CommentsFields(JsonFeedFields, total=False):
    """comments fields: a json_feed's, and where a comment's nested replies are."""

    children: JsonPath


class HtmlBoardFields(TypedDict, total=False):
    """html_board fields: CSS or XPath on the list page (items, and external_id, link, list_replies
    inside a row), then on the detail page; ``floor*`` read reply floors, ``thread_next`` their pager."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    items: Required[CssOrXPath]
    external_id: CssOrXPath
    link: CssOrXPath
    list_replies: CssOrXPath
    title: CssOrXPath
    text: CssOrXPath
    author: CssOrXPath
    ip_location: CssOrXPath
    published_at: CssOrXPath
    time_format: TimeFormat
    likes: CssOrXPath
    replies: CssOrXPath
    reposts: CssOrXPath
    floor: CssOrXPath
    floor_id: CssOrXPath
    floor_text: CssOrXPath
    floor_author: CssOrXPath
    floor_time: CssOrXPath
    thread_next: CssOrXPath


class RssFields(TypedDict, total=False):
    """rss fields: XPath overriding the RSS 2.0 defaults (crawlers/spiders/rss.py)."""

    __pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[misc]
    items: XPath
    external_id: XPath
    title: XPath
    text: XPath
    url: XPath
    published_at: XPath
    author: XPath


#: What a platform kind without JSON answers reads as its response shape (walls look at it).
PLAIN_RESPONSE = ResponseSettings()


class PlatformBase(StrictModel):
    """One monitored platform, entirely described by data (see DESIGN.md, "A platform is data").

    Each spider kind has its own model below with only the keys that kind reads; config.yaml's
    ``kind`` picks the model (PlatformSettings), so a key another kind reads is refused as unknown.
    """

    #: The paging styles this kind's spider implements, and whether it reads JSON paths in pagination.
    PAGING_STYLES: ClassVar[frozenset[str]] = frozenset()
    JSON_PAGING: ClassVar[bool] = False

    name: str
    base_url: str
    entry_points: list[EntryPoint] = Field(min_length=1)
    pagination: PaginationSettings = Field(default_factory=PaginationSettings)
    politeness: PolitenessSettings = Field(default_factory=PolitenessSettings)
    priority: Literal["incremental", "nightly"] = "nightly"
    enabled: bool = True
    #: The charset to decode responses with when the server names none or the wrong one (GBK boards).
    encoding: str | None = None
    #: The environment variable holding the platform's cookie or token (crawlers/middlewares/credentials.py).
    credentials_env: str | None = None
    #: The header the credential goes in; None: a Cookie header.
    credentials_header: str | None = None
    #: This platform's own wall patterns, on top of DEFAULT_WALLS.
    walls: WallPatterns = Field(default_factory=WallPatterns)

    @field_validator("credentials_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("must be the name of an environment variable (letters, digits, _)")
        return value

    @field_validator("credentials_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not _HEADER_NAME.match(value):
            raise ValueError(f"{value!r} is not an HTTP header name")
        if value.lower() in _RESERVED_HEADERS:
            raise ValueError(f"{value} is set by the HTTP client, not a place for a credential")
        return value

    @model_validator(mode="after")
    def _header_needs_variable(self) -> Self:
        if self.credentials_header is not None and self.credentials_env is None:
            raise ValueError("credentials_header needs credentials_env (the variable holding the value)")
        return self

    @model_validator(mode="after")
    def _pagination_fits_the_kind(self) -> Self:
        pagination = self.pagination
        if pagination.style not in self.PAGING_STYLES:
            styles = ", ".join(sorted(self.PAGING_STYLES))
            raise ValueError(f"pagination.style: {pagination.style} is not one of this kind's ({styles})")
        json_paths = ("has_more_path", "end_path", "total_path")
        if not self.JSON_PAGING and (set_paths := [p for p in json_paths if getattr(pagination, p)]):
            raise ValueError(f"pagination.{set_paths[0]}: a JSON path, and this kind reads no JSON")
        if pagination.style in ("page", "offset", "cursor"):
            templates = [text for entry in self.entry_points for text in (entry.url, entry.body or "")]
            if not any("{page}" in text for text in templates):
                raise ValueError(
                    f"pagination.style: {pagination.style} puts the page where an entry point's url or"
                    " body says {page}, and none does"
                )
        return self

    @property
    def wall_patterns(self) -> WallPatterns:
        """The generic wall patterns with this platform's own added."""
        return DEFAULT_WALLS.plus(self.walls)

    @field_validator("base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")


class JsonApiPlatform(PlatformBase):
    """What the two JSON kinds share: paging read from the response, and its envelope (``response``)."""

    PAGING_STYLES: ClassVar[frozenset[str]] = frozenset({"page", "offset", "cursor", "none"})
    JSON_PAGING: ClassVar[bool] = True

    response: ResponseSettings = Field(default_factory=ResponseSettings)


class JsonFeedPlatform(JsonApiPlatform):
    """A JSON API listing posts (crawlers/spiders/json_feed.py)."""

    kind: Literal["json_feed"]
    # mypy sees a plain dict (what the spiders read); pydantic checks the kind's own keys and paths.
    if TYPE_CHECKING:
        fields: dict[str, str]
    else:
        fields: JsonFeedFields

    @property
    def discover(self) -> None:
        """Only comments platforms follow threads."""
        return None


class CommentsPlatform(JsonApiPlatform):
    """A thread of comments under posts, videos or articles (crawlers/spiders/comments.py)."""

    kind: Literal["comments"]
    if TYPE_CHECKING:
        fields: dict[str, str]
    else:
        fields: CommentsFields
    #: Follow the posts other platforms found into their comments.
    discover: DiscoverySettings | None = None


class HtmlBoardPlatform(PlatformBase):
    """HTML list pages leading to detail pages (crawlers/spiders/html_board.py)."""

    PAGING_STYLES: ClassVar[frozenset[str]] = frozenset({"page", "offset", "next_link", "none"})

    kind: Literal["html_board"]
    if TYPE_CHECKING:
        fields: dict[str, str]
    else:
        fields: HtmlBoardFields

    @property
    def response(self) -> ResponseSettings:
        """HTML pages are read as they are."""
        return PLAIN_RESPONSE

    @property
    def discover(self) -> None:
        return None


class RssPlatform(PlatformBase):
    """An RSS 2.0 or Atom feed, read in one request (crawlers/spiders/rss.py)."""

    PAGING_STYLES: ClassVar[frozenset[str]] = frozenset({"none"})

    kind: Literal["rss"]
    if TYPE_CHECKING:
        fields: dict[str, str]
    else:
        fields: RssFields = Field(default_factory=dict)
    pagination: PaginationSettings = Field(default_factory=lambda: PaginationSettings(style="none"))

    @property
    def response(self) -> ResponseSettings:
        return PLAIN_RESPONSE

    @property
    def discover(self) -> None:
        return None


PLATFORM_KINDS = ("json_feed", "html_board", "rss", "comments")
#: One platform entry: ``kind`` chooses the model, so each is validated against its own keys only.
PlatformSettings = Annotated[
    JsonFeedPlatform | CommentsPlatform | HtmlBoardPlatform | RssPlatform, Field(discriminator="kind")
]
#: Validates one platform entry outside a Settings (tests, tools).
PLATFORM = TypeAdapter(PlatformSettings)


class CitySettings(StrictModel):
    name: str = "深圳"
    #: IP-location labels are province-level on most platforms: one outside it, with nothing in the text
    #: naming our city, marks the post as elsewhere.
    province: str = "广东"
    other_cities: list[str] = Field(default_factory=list)
    districts: dict[str, list[str]] = Field(default_factory=dict)
    landmark_suffixes: list[str] = Field(default_factory=list)


class HazardPattern(StrictModel):
    """An urgency pattern: one of ``objects`` followed within ``window`` characters of one clause by one
    of ``states`` ("井盖" … "丢失")."""

    objects: list[str] = Field(min_length=1)
    states: list[str] = Field(min_length=1)
    window: int = Field(default=10, ge=0, le=40)


class ClassifySettings(StrictModel):
    model_dir: str = "var/models"
    relevance_threshold: float = Field(default=0.65, ge=0, le=1)
    category_min_probability: float = Field(default=0.4, ge=0, le=1)
    #: rule name → exact terms and/or object-in-state patterns (classify.urgency)
    urgent_terms: dict[str, list[str | HazardPattern]] = Field(default_factory=dict)
    merge_similarity: float = Field(default=0.7, ge=0, le=1)


class ReviewSettings(StrictModel):
    claim_minutes: int = Field(default=15, ge=1)
    urgent_sla_minutes: int = Field(default=30, ge=1)
    ordinary_sla_minutes: int = Field(default=120, ge=1)
    demo_analyst: str = "analyst"
    demo_password: str = "weisu-demo"
    # An urgent lead's ticket waits for a second analyst's confirmation before the pusher sends it.
    urgent_second_confirmation: bool = False
    # Sign-in rate limit: this many failures within the window refuse further tries (429).
    login_failures_per_user: int = Field(default=5, ge=1)
    login_failures_per_address: int = Field(default=20, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    # A session ends after this long without a request, and this long after sign-in whatever happens;
    # both are checked on the server against the signed cookie's timestamps, not left to the browser.
    session_idle_minutes: int = Field(default=30, ge=1)
    session_absolute_hours: int = Field(default=12, ge=1)
    # The session cookie carries the Secure flag (sent over HTTPS only); only `weisu demo` and the tests,
    # which serve plain http on loopback, turn it off.
    cookie_secure: bool = True
    # Peers (addresses or networks) whose X-Forwarded-For names the real client: the reverse proxies in
    # front of `weisu serve`. Any other peer's header is ignored and its own address is recorded.
    trusted_proxies: list[str] = Field(default_factory=list)

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, values: list[str]) -> list[str]:
        for value in values:
            try:
                ipaddress.ip_network(value, strict=False)
            except ValueError:
                raise ValueError(f"{value!r} is not an IP address or network") from None
        return values


class DispatchSettings(StrictModel):
    base_url: str = "http://127.0.0.1:8020"
    jurisdiction_id: str = "shenzhen"
    service_codes: dict[str, str] = Field(default_factory=dict)
    default_service_code: str = "other"
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=30.0, ge=0)
    backoff_max_seconds: float = Field(default=3600.0, ge=0)
    lease_seconds: float = Field(default=120.0, gt=0)
    api_key: str | None = Field(default=None, exclude=True)
    # Starter responsibility list (职责清单) loaded into an empty database; admins edit it in the web app.
    responsibility_csv: str = "verify/data/responsibility_shenzhen.csv"
    # Another ticket API served by configuration: its paths ({id} is the request id) and the names its
    # form fields carry (Open311 name → that API's name; unlisted fields keep their Open311 names).
    request_path: str = "/requests.json"
    status_path: str = "/requests/{id}.json"
    services_path: str = "/services.json"
    field_names: dict[str, str] = Field(default_factory=dict)
    # Open311 defines no idempotency key: unless the server is known to deduplicate on
    # attribute[idempotency_key], a push with no answer is looked up (GET request_path) before it is
    # sent again. lookup_by_attribute: the server filters that GET on attribute[idempotency_key].
    honours_idempotency_key: bool = False
    lookup_by_attribute: bool = False
    # The most requests the server returns for one GET; a full answer proves nothing, so its window is split.
    lookup_max_results: int = Field(default=1000, ge=2)
    # The lookup's time window reaches this far beyond our own clock on each side (the server's may differ).
    lookup_clock_slack_seconds: float = Field(default=900.0, ge=0)

    @model_validator(mode="after")
    def _lease_outlasts_a_push(self) -> DispatchSettings:
        # A POST may spend the timeout connecting, again writing and again reading: a shorter lease
        # could expire mid-POST and let a second pusher send the same ticket at the same time.
        if self.lease_seconds <= 3 * self.timeout_seconds:
            lease, timeout = f"{self.lease_seconds:g}", f"{self.timeout_seconds:g}"
            raise ValueError(f"lease_seconds ({lease}) must exceed 3 × timeout_seconds ({timeout})")
        return self

    @field_validator("responsibility_csv")
    @classmethod
    def _starter_list_exists(cls, value: str) -> str:
        # A missing list would seed nothing, silently, and every promotion would fall back to the
        # default unit: stop at load instead. Relative to the project root, as Settings.resolve_path reads it.
        path = Path(value)
        if not (path if path.is_absolute() else PROJECT_ROOT / path).is_file():
            raise ValueError(f"no such file: {value}")
        return value


class JobSchedule(StrictModel):
    """One scheduled job (schedules.JOBS names it): a cron line or an interval, and how missed runs behave."""

    #: Exactly one of: a crontab line in ``schedules.timezone`` ("0 2 * * *"), or seconds between runs.
    cron: str | None = None
    interval_seconds: int | None = Field(default=None, ge=1)
    #: A run missed by at most this much (scheduler down, or busy) still runs; a later one is recorded
    #: as missed and skipped.
    grace_seconds: int = Field(default=300, ge=1)
    #: Several missed runs of this job run once (true), not once each.
    coalesce: bool = True
    enabled: bool = True
    #: The operators' name for the job (web page, `weisu jobs`); the job id when empty.
    label: str = ""

    @property
    def every(self) -> str:
        """When it runs, in Chinese: the crontab line, or 每 N 秒/分钟/小时."""
        if self.cron is not None:
            return f"定时 {self.cron}"
        seconds = self.interval_seconds or 0
        for size, unit in ((3600, "小时"), (60, "分钟")):
            if seconds % size == 0:
                return f"每 {seconds // size} {unit}"
        return f"每 {seconds} 秒"

    @field_validator("cron")
    @classmethod
    def _crontab(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a crontab line: {exc}") from None
        return value

    @model_validator(mode="after")
    def _one_trigger(self) -> JobSchedule:
        if (self.cron is None) == (self.interval_seconds is None):
            raise ValueError("give exactly one of cron or interval_seconds")
        return self


class ScheduleSettings(StrictModel):
    """The scheduler: its zone, the lease that keeps two schedulers from running one job, and the jobs."""

    timezone: str = "Asia/Shanghai"
    #: A job's lease is renewed every third of this while it runs; a crashed scheduler's lapses after it.
    lease_seconds: int = Field(default=300, ge=3)
    #: job id (schedules.JOBS) → its schedule; every job of the table needs one (checked at start).
    jobs: dict[str, JobSchedule] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class LogFormat(enum.StrEnum):
    """How the scheduler writes its log lines: key=value text, or one JSON object per line."""

    TEXT = "text"
    JSON = "json"


class LoggingSettings(StrictModel):
    format: LogFormat = LogFormat.TEXT
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class RetentionSettings(StrictModel):
    """Days things are kept before the purge_expired job deletes them (nothing a lead, ticket or audit
    event refers to is ever deleted)."""

    job_runs_days: int = Field(default=90, ge=1)
    #: Raw response bodies no kept post points to any more, or only posts that are deleted.
    raw_responses_days: int = Field(default=30, ge=1)
    #: Crawl gaps recovered or given up this long ago (open ones are work still to do).
    crawl_gaps_days: int = Field(default=30, ge=1)
    #: Posts fetched this long ago that never became evidence of a lead.
    posts_days: int = Field(default=60, ge=1)


class CrawlHealthSettings(StrictModel):
    """When a finished crawl run is flagged ``layout_changed`` (compared with the platform's earlier runs)."""

    #: How many earlier finished runs of the platform a run is compared with.
    lookback_runs: int = Field(default=5, ge=1)
    #: A run with no items is flagged only when an earlier run found at least this many.
    min_previous_items: int = Field(default=1, ge=1)
    #: Flag when the share of items with empty text exceeds the earlier runs' average by this much...
    empty_text_jump: float = Field(default=0.3, gt=0, le=1)
    #: ...and the run found at least this many items (a share of three items is noise).
    min_items_for_share: int = Field(default=5, ge=1)


class CrawlGapSettings(StrictModel):
    """Requests lost after their retries (crawl_gaps): how long later runs keep fetching them again."""

    #: A gap is given up (aged out, and reported) after this many failed tries, the first included...
    max_attempts: int = Field(default=5, ge=1)
    #: ...or once it failed first this many hours ago, whichever comes first.
    max_age_hours: float = Field(default=72.0, gt=0)
    #: Posts stored per transaction: a crawl killed outright loses at most this many parsed posts
    #: (the next run fetches them again).
    store_batch: int = Field(default=100, ge=1)


class EvidenceSettings(StrictModel):
    """Raw response bodies kept as evidence behind stored posts (gzip, one row per distinct body)."""

    #: Bytes of a body kept; a longer body is cut here (its served size is still recorded).
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)


class AlertHealthSettings(StrictModel):
    """When a platform's crawl runs raise a health alert (verify/alerts/health.py)."""

    #: The expected volume is the median items of the platform's last this many clean (ok) runs...
    volume_runs: int = Field(default=10, ge=1)
    #: ...learned only once it has at least this many (before that, no far-below alert).
    volume_min_runs: int = Field(default=5, ge=1)
    #: A run is far below when P(X <= items) under Poisson(median) is below this.
    volume_p_value: float = Field(default=0.001, gt=0, lt=1)
    #: This many failed or partial runs in a row raise an error-streak alert.
    failure_streak: int = Field(default=3, ge=1)


class WebhookFormat(enum.StrEnum):
    """A webhook's body: weisu's own JSON, or a WeCom (企业微信) or DingTalk (钉钉) group robot's message."""

    GENERIC = "generic"
    WECOM = "wecom"
    DINGTALK = "dingtalk"


#: The only SMTP hosts reached without TLS (a local relay).
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class AlertChannelSettings(StrictModel):
    """One place alerts go: a webhook (``url`` or ``url_env``) or e-mail over SMTP (``smtp_host`` …).

    Secrets are named, never written: ``url_env`` (a robot URL carries its key), ``secret_env`` (the
    DingTalk signing secret), ``password_env`` (the SMTP password) hold environment variable names.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)

    kind: Literal["webhook", "email"]
    #: Event kinds sent here (empty: every kind).
    events: list[AlertKind] = Field(default_factory=list)
    url: str | None = None
    url_env: str | None = None
    format: WebhookFormat = WebhookFormat.GENERIC
    #: WeCom and DingTalk robots: a markdown message (default) or plain text.
    message_type: Literal["markdown", "text"] = "markdown"
    secret_env: str | None = None
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    #: starttls (port 587), ssl (implicit TLS, port 465) or none (a relay on loopback only).
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = None
    sender: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list)

    @field_validator("url_env", "secret_env", "password_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError("must be the name of an environment variable (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _complete(self) -> AlertChannelSettings:
        if self.kind == "webhook" and (self.url is None) == (self.url_env is None):
            raise ValueError("a webhook needs exactly one of url and url_env")
        if self.kind == "webhook" and self.url and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must be an absolute http(s) URL")
        if self.kind == "email" and not (self.smtp_host and self.sender and self.to):
            raise ValueError("an email channel needs smtp_host, from and to")
        # Without TLS the password and the alerts (leads' summaries) would cross the network in clear.
        if self.kind == "email" and self.security == "none" and self.smtp_host not in LOOPBACK_HOSTS:
            raise ValueError("security: none is only for a relay on loopback (127.0.0.1, ::1, localhost)")
        return self


class AlertSettings(StrictModel):
    """Alerts that reach people: which events, how early, where to, and how deliveries are retried."""

    #: Urgent leads that became urgent within this many hours alert (older ones never do: a new
    #: install or a restored backup must not flood the channels).
    urgent_window_hours: float = Field(default=24.0, gt=0)
    #: An open lead alerts this many minutes before its SLA deadline (verify.sla writes sla_due_at).
    sla_warning_minutes: int = Field(default=10, ge=1)
    #: Crawl health alerts only for a platform whose newest run finished within this many hours (a new
    #: install does not alert about old history).
    health_window_hours: float = Field(default=48.0, gt=0)
    health: AlertHealthSettings = Field(default_factory=AlertHealthSettings)
    #: name → channel.
    channels: dict[str, AlertChannelSettings] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10.0, gt=0)
    #: A delivery is tried this many times, waiting backoff_base_seconds × 2^(n-1) (at most
    #: backoff_max_seconds) between tries, then shown as failed in the app (/alerts).
    max_attempts: int = Field(default=5, ge=1)
    backoff_base_seconds: float = Field(default=30.0, ge=0)
    backoff_max_seconds: float = Field(default=1800.0, ge=0)
    #: A delivery being sent is leased this long, so two delivery passes never send it both.
    lease_seconds: float = Field(default=120.0, gt=0)


class ReportSettings(StrictModel):
    """The weekly class-case (类案) report (verify.reports): its baseline, tests and output folder."""

    #: Weeks before the reported one that make its baseline (expected counts, recurring places).
    trailing_weeks: int = Field(default=8, ge=2, le=52)
    #: A cell is a spike when its Benjamini–Hochberg q-value is at most this...
    fdr_level: float = Field(default=0.05, gt=0, lt=1)
    #: ...and it has at least this many leads this week.
    min_count: int = Field(default=3, ge=1)
    #: A place recurs when it has leads this week and in at least this many trailing weeks.
    recurring_min_weeks: int = Field(default=3, ge=1)
    #: Words listed per category.
    top_terms: int = Field(default=10, ge=1, le=50)
    #: Where `weisu report weekly` and the scheduled job write (one folder per week).
    out_dir: str = "var/reports"

    @model_validator(mode="after")
    def _recurring_within_trailing(self) -> ReportSettings:
        if self.recurring_min_weeks > self.trailing_weeks:
            raise ValueError(
                f"recurring_min_weeks ({self.recurring_min_weeks}) cannot exceed trailing_weeks"
                f" ({self.trailing_weeks})"
            )
        return self


#: The environment variables that set one setting each (the others in ENV_OVERRIDES are read elsewhere).
ENV_FIELDS: dict[str, tuple[str, ...]] = {
    "WEISU_DATABASE_URL": ("database", "url"),
    "WEISU_SIMULATOR_URL": ("simulator_url",),
    "WEISU_DISPATCH_URL": ("dispatch", "base_url"),
    "WEISU_DISPATCH_API_KEY": ("dispatch", "api_key"),
    "WEISU_AUTHOR_HASH_KEY": ("author_hash_key",),
    "WEISU_SECRET_KEY": ("secret_key",),
    "WEISU_MODEL_DIR": ("classify", "model_dir"),
    "WEISU_REDIS_URL": ("redis_url",),
    "WEISU_REDIS_PREFIX": ("redis_prefix",),
}
#: The environment one load reads: load_settings(env=...) names it, else the process's own.
_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("weisu_environment", default=None)


class EnvironmentOverrides(PydanticBaseSettingsSource):
    """pydantic-settings source of the documented WEISU_* variables (ENV_FIELDS), each onto its one
    setting; an empty variable counts as unset. No other variable is read, so none goes undocumented."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # values are gathered per variable in __call__, not per field

    def __call__(self) -> dict[str, Any]:
        environment = _ENVIRONMENT.get()
        env = os.environ if environment is None else environment
        values: dict[str, Any] = {}
        for variable, path in ENV_FIELDS.items():
            if value := env.get(variable):
                *parents, last = path
                target = values
                for part in parents:
                    target = target.setdefault(part, {})
                target[last] = value
        return values


class Settings(Derivable, BaseSettings):
    """Everything an operator changes, as loaded from config.yaml and the environment."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # config.yaml comes in as the init arguments; the documented variables override it, one key each.
        return (EnvironmentOverrides(settings_cls), init_settings)

    config_path: Path = Field(default=DEFAULT_CONFIG_PATH, exclude=True)
    user_agent: str = "weisu/0.1 (+https://example.invalid/weisu; city livelihood monitoring)"
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    simulator_url: str | None = None
    platforms: dict[str, PlatformSettings] = Field(default_factory=dict)
    city: CitySettings = Field(default_factory=CitySettings)
    classify: ClassifySettings = Field(default_factory=ClassifySettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    dispatch: DispatchSettings = Field(default_factory=DispatchSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    crawl_health: CrawlHealthSettings = Field(default_factory=CrawlHealthSettings)
    crawl_gaps: CrawlGapSettings = Field(default_factory=CrawlGapSettings)
    evidence: EvidenceSettings = Field(default_factory=EvidenceSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    # Secrets come only from the environment and have no usable default: "" means unset, and every
    # command that needs one refuses to start without it (require_secrets).
    author_hash_key: str = Field(default="", exclude=True, repr=False)
    secret_key: str = Field(default="", exclude=True, repr=False)
    # The distributed crawl's shared frontier (crawlers/distributed.py), from the environment only:
    # every node reads one config.yaml, and a Redis URL may hold a password.
    redis_url: str = Field(default="", repr=False)
    redis_prefix: str = "weisu:"

    def resolve_path(self, value: str | Path) -> Path:
        """Relative paths in config.yaml are relative to the project root, not the working directory."""
        path = Path(value)
        return path if path.is_absolute() else PROJECT_ROOT / path

    @property
    def model_dir(self) -> Path:
        return self.resolve_path(self.classify.model_dir)

    @property
    def database_url(self) -> str:
        return absolute_sqlite_url(self.database.url)

    def enabled_platforms(self) -> dict[str, PlatformSettings]:
        return {key: p for key, p in self.platforms.items() if p.enabled}

    @model_validator(mode="after")
    def _discovery_sources_exist(self) -> Settings:
        for key, platform in self.platforms.items():
            if platform.discover is None:
                continue
            unknown = [s for s in platform.discover.sources if s not in self.platforms or s == key]
            if unknown:
                raise ValueError(f"platforms.{key}.discover.from: unknown platform(s) {', '.join(unknown)}")
        return self


def require_secrets(settings: Settings, *names: str) -> None:
    """Raise SecretError when one of the named secrets (``secret_key``, ``author_hash_key``) is unset or
    shorter than SECRET_MIN_BYTES: the one line names its variable and how to make one."""
    for name in names:
        variable = SECRET_VARIABLES[name]
        value = getattr(settings, name)
        if not value:
            raise SecretError(f"{variable} is not set; make one with {MAKE_SECRET} and export it")
        size = len(value.encode("utf-8"))
        if size < SECRET_MIN_BYTES:
            raise SecretError(
                f"{variable} is {size} bytes, at least {SECRET_MIN_BYTES} are needed; "
                f"make one with {MAKE_SECRET}"
            )


def absolute_sqlite_url(url: str) -> str:
    """Make a relative SQLite path relative to the project root so every process opens one file."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(PROJECT_ROOT / url[len(prefix) :])
    return url


def rebase_url(url: str, new_base: str, platform_key: str) -> str:
    """Point a real platform URL at the simulator, which serves each platform under /p/<key>."""
    base = urlsplit(new_base.rstrip("/"))
    parts = urlsplit(url)
    path = f"{base.path}/p/{platform_key}{parts.path}"
    return urlunsplit((base.scheme, base.netloc, path, parts.query, parts.fragment))


def _format_error(path: Path, error: ValidationError) -> str:
    first = error.errors()[0]
    loc = list(first["loc"])
    if len(loc) > 2 and loc[0] == "platforms" and loc[2] in PLATFORM_KINDS:
        del loc[2]  # the kind that chose the platform's model, not a key of the file
    message = first["msg"]
    # A platform's kind chooses its model: a missing or unknown kind is reported as the key it is.
    if first["type"] == "union_tag_not_found":
        loc, message = [*loc, "kind"], "Field required"
    elif first["type"] == "union_tag_invalid":
        kinds = [repr(kind) for kind in PLATFORM_KINDS]
        loc, message = [*loc, "kind"], f"Input should be {', '.join(kinds[:-1])} or {kinds[-1]}"
    key = ".".join(str(part) for part in loc) or "(top level)"
    more = len(error.errors()) - 1
    tail = f" (+{more} more)" if more else ""
    return f"{path}: {key}: {message}{tail}"


def _read_text(path: Path) -> str:
    """The file's text; every way it cannot be read is one ConfigError naming the file."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: (file): not found") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path}: (file): is a directory, not a YAML file") from exc
    except PermissionError as exc:
        raise ConfigError(f"{path}: (file): permission denied") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: (file): not UTF-8 text (byte {exc.start})") from exc
    except OSError as exc:
        # Windows reports a directory as PermissionError/OSError; anything else is still one line.
        if path.is_dir():
            raise ConfigError(f"{path}: (file): is a directory, not a YAML file") from exc
        raise ConfigError(f"{path}: (file): cannot be read ({exc.strerror or exc})") from exc


#: libyaml's safe loader where PyYAML was built with it: the same documents, several times faster
#: (docs/benchmarks.md, issue #16); every command and crawl child starts by loading the file.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _yaml_mapping(path: Path) -> dict[str, Any]:
    """The config file as a mapping; ConfigError when it is unreadable, not YAML, empty or not a mapping."""
    text = _read_text(path)
    try:
        raw = yaml.load(text, Loader=_YAML_LOADER)  # a safe loader, C or Python
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(file)"
        raise ConfigError(f"{path}: {where}: not valid YAML") from exc
    if raw is None:
        # An empty file (or one of comments only) would silently run on defaults: the wrong file, likely.
        raise ConfigError(f"{path}: (file): empty, no settings in it")
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: (top level): must be a mapping")
    return raw


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Load config.yaml (or ``path``), apply the environment's overrides (``env``, else the process's
    own), validate; raise ConfigError. The result is frozen."""
    environment = os.environ if env is None else env
    config_path = Path(path or environment.get("WEISU_CONFIG") or DEFAULT_CONFIG_PATH)
    raw = _yaml_mapping(config_path)
    if "redis_url" in raw:
        raise ConfigError(f"{config_path}: redis_url: set WEISU_REDIS_URL in the environment instead")
    token = _ENVIRONMENT.set(environment)
    try:
        settings = Settings(**{**raw, "config_path": config_path})
    except ValidationError as exc:
        raise ConfigError(_format_error(config_path, exc)) from exc
    finally:
        _ENVIRONMENT.reset(token)
    if settings.simulator_url:
        simulator = settings.simulator_url
        rebased = {
            key: platform.changed(base_url=rebase_url(platform.base_url, simulator, key))
            for key, platform in settings.platforms.items()
        }
        settings = settings.changed(platforms=rebased)
    return settings
