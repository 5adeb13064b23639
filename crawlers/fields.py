"""Field mapping helpers: tiny JSON paths (``data.cards[].mblog``), CSS/XPath selectors, and time parsing."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from parsel import Selector, SelectorList
from scrapy.http import TextResponse

#: Platforms that print naive local times are in China Standard Time.
PLATFORM_TZ = timezone(timedelta(hours=8))
_TIME_FORMATS = ("%a %b %d %H:%M:%S %z %Y", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S")
_EPOCH = re.compile(r"^\d{10}(\d{3})?$")
#: ASP.NET's JSON date, "/Date(1732770000000+0800)/" (Ctrip): epoch milliseconds, offset informational.
_DOTNET_DATE = re.compile(r"^/Date\((\d+)([+-]\d{4})?\)/$")


class Selectable(Protocol):
    """Anything with parsel's css/xpath: a Selector, a SelectorList, a Scrapy response."""

    def css(self, query: str) -> SelectorList[Selector]: ...

    def xpath(self, query: str, **kwargs: Any) -> SelectorList[Selector]: ...


_SEGMENT = re.compile(r"([^\[\]]*)(?:\[(\d*)\])?")


@lru_cache(maxsize=1024)
def _path_segments(path: str) -> tuple[tuple[str, str | None], ...]:
    """``data.cards[].mblog`` → (("data", None), ("cards", ""), ("mblog", None)); parsed once per path
    (a sweep looks up ~5,000 paths, all from config.yaml)."""
    segments = []
    for part in path.split(".") if path else []:
        match = _SEGMENT.fullmatch(part)
        if match is None:
            raise ValueError(f"bad JSON path segment {part!r} in {path!r}")
        segments.append((match.group(1), match.group(2)))
    return tuple(segments)


def json_path(data: Any, path: str) -> list[Any]:
    """Every value at ``path``: dots descend, ``[]`` fans out over a list, ``[2]`` picks one element,
    ``*`` fans out over an object's values (NetEase keys its comments by id: ``comments.*``).

    Missing keys yield nothing rather than raising, so a card without an ``mblog`` is simply skipped.
    """
    values = [data]
    for key, index in _path_segments(path):
        nxt: list[Any] = []
        for value in values:
            if key == "*":
                nxt.extend(value.values() if isinstance(value, dict) else [])
                continue
            if key:
                value = value.get(key) if isinstance(value, dict) else None
            if value is None:
                continue
            if index is None:
                nxt.append(value)
            elif isinstance(value, list):
                nxt.extend(value if index == "" else value[int(index) : int(index) + 1])
        values = nxt
    return values


def json_first(data: Any, path: str | None) -> Any:
    if not path:
        return None
    found = json_path(data, path)
    return found[0] if found else None


#: An XPath function call such as ``substring-after(a/@href, '/topic/')`` (no CSS selector starts so).
_XPATH_FUNCTION = re.compile(r"^[a-z][a-z-]*\(")
_TEMPLATE_KEY = re.compile(r"\{([^{}]+)\}")


def is_xpath(expression: str) -> bool:
    return expression.startswith(("/", "(", "./")) or bool(_XPATH_FUNCTION.match(expression))


def fill_template(template: str, record: Any, base_url: str) -> str:
    """A URL template such as "{base_url}/question/{question.id}/answer/{id}" filled from a JSON record."""

    def value(match: re.Match[str]) -> str:
        key = match.group(1)
        found = base_url if key == "base_url" else json_first(record, key)
        return "" if found is None else str(found)

    return _TEMPLATE_KEY.sub(value, template)


#: What select() found in each response still alive, by (expression, as XPath): the wall check asks a
#: board page for its rows (a detail page for its text) before the spider asks for the same, and a
#: query over a whole page is the costly part of both. Rows and other selectors are not kept.
_FOUND_IN: WeakKeyDictionary[TextResponse, dict[tuple[str, bool], SelectorList[Selector]]] = (
    WeakKeyDictionary()
)


def select(node: Selectable, expression: str, xpath: bool | None = None) -> SelectorList[Selector]:
    """CSS unless the expression looks like XPath (or the caller says it is, as RSS fields are).

    A response is queried once per expression; callers get the same list (they only read it)."""
    use_xpath = is_xpath(expression) if xpath is None else xpath
    if not isinstance(node, TextResponse):
        return node.xpath(expression) if use_xpath else node.css(expression)
    found = _FOUND_IN.get(node)
    if found is None:
        found = _FOUND_IN[node] = {}
    key = (expression, use_xpath)
    selected = found.get(key)
    if selected is None:
        selected = found[key] = node.xpath(expression) if use_xpath else node.css(expression)
    return selected


def select_first(node: Selectable, expression: str | None, xpath: bool | None = None) -> str | None:
    if not expression:
        return None
    value = select(node, expression, xpath).get()
    return value.strip() if isinstance(value, str) else value


def parse_time(value: Any, time_format: str | None = None) -> datetime | None:
    """Epoch seconds/milliseconds, a configured format, RFC 822 or ISO 8601 → aware UTC (naive = UTC+8)."""
    if value is None or value == "":
        return None
    parsed: datetime | None = None
    text = str(value).strip()
    if dotnet := _DOTNET_DATE.match(text):
        return datetime.fromtimestamp(int(dotnet.group(1)) / 1000, tz=UTC)
    if isinstance(value, int | float) or _EPOCH.match(text):
        number = float(text)
        return datetime.fromtimestamp(number / 1000 if number > 1e11 else number, tz=UTC)
    formats = ((time_format,) if time_format else ()) + _TIME_FORMATS
    for fmt in formats:
        try:
            parsed = datetime.strptime(text, fmt)
            break
        except ValueError:
            continue
    if parsed is None:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=PLATFORM_TZ)
    return parsed.astimezone(UTC)


def to_int(value: Any) -> int:
    """Engagement counts arrive as ints, numeric strings or "1.2万"; anything else counts as 0."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    try:
        if text.endswith("万"):
            return int(float(text[:-1]) * 10_000)
        return int(float(text))
    except ValueError:
        return 0
