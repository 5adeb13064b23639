"""The JSON inside a response body: plain JSON, a JSONP ``callback(...)`` wrapper, or JSON embedded in HTML.

Platforms hand out the same data in three wrappers: a bare JSON API; JSONP for old cross-site widgets
(``jQuery1234({...});``); and server-rendered pages that carry their state as a script
(``window.__INITIAL_STATE__={...}</script>``), where JavaScript's ``undefined`` may appear as a value.
Every failure raises ValueError, so the spider's malformed-page handling retries or skips the page.
"""

from __future__ import annotations

import json
import re
from typing import Any

from settings import ResponseSettings

#: ``callback(...)``, ``callback(...);``, ``/**/ cb(...)`` or ``window.cb && cb(...)``: group 1 is the JSON.
_JSONP = re.compile(r"^\s*(?:/\*\*/\s*)?(?:[\w$.]+\s*&&\s*)?[\w$.]+\s*\(\s*(.*)\)\s*;?\s*$", re.S)
#: A JSON string literal (kept as is) or a bare ``undefined`` (becomes ``null``).
_STRING_OR_UNDEFINED = re.compile(r'"(?:[^"\\]|\\.)*"|\bundefined\b', re.S)


def unwrap_jsonp(text: str) -> str:
    """The JSON text inside a JSONP call; a body that is already plain JSON is returned unchanged."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        return stripped
    match = _JSONP.match(stripped)
    if match is None:
        raise ValueError("no JSONP callback(...) wrapper in the response")
    return match.group(1)


def undefined_to_null(script: str) -> str:
    """Replace JavaScript ``undefined`` values with ``null``, leaving the word alone inside strings."""
    return _STRING_OR_UNDEFINED.sub(lambda m: "null" if m.group(0) == "undefined" else m.group(0), script)


def extract_embedded(page: str, pattern: str) -> str:
    """The JSON text that ``pattern``'s one group captures from an HTML page (searched across lines)."""
    match = re.search(pattern, page, re.S)
    if match is None:
        raise ValueError("embedded JSON not found in the page")
    return undefined_to_null(match.group(1))


def load_payload(text: str, response: ResponseSettings) -> Any:
    """Parse a response body as the platform's ``response.format`` says; ValueError when it does not parse."""
    if response.format == "jsonp":
        text = unwrap_jsonp(text)
    elif response.format == "embedded_json":
        text = extract_embedded(text, response.effective_pattern)
    return json.loads(text)  # json.JSONDecodeError is a ValueError
