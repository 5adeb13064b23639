"""Mask a raw response body as its posts are masked: personal data out, author handles keyed-hashed.

The body is decoded the way Scrapy decodes it (w3lib: Content-Type charset, BOM, declared
charset), masked with ``storage.personal_data.mask_personal_data`` and re-encoded in the charset it was
served in, not as UTF-8: the stored file then still agrees with its Content-Type header and with
any ``<meta charset>`` or ``<?xml encoding?>`` inside it, and only the masked spans differ from
the bytes served. Bytes that do not decode (a body cut at the size limit inside a character, a
stray byte) go through unchanged (surrogateescape). A placeholder the charset cannot hold (a
Latin-1 page) is written as an HTML character reference, since such legacy charsets are served
for HTML and XML; JSON is UTF-8 by its RFC.
"""

from __future__ import annotations

import codecs
import html
import json
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, quote_plus

from w3lib.encoding import html_to_unicode

from storage.personal_data import author_key, mask_personal_data

ERRORS = "weisu-evidence"
#: ASCII handles shorter than this are not replaced: a uid "7" would rewrite every lone 7 in the page.
MIN_ASCII_HANDLE_CHARS = 4
#: Other handles (Chinese nicknames are often two characters) need at least this many.
MIN_HANDLE_CHARS = 2

# Non-ASCII characters written as JSON/JavaScript escapes (\u5fae\u4fe1): masks look for 微信, 粤B….
# Only those outside the surrogate range are unescaped (a lone surrogate cannot be re-encoded), and
# only into characters the body's charset holds, so the result is still the same JSON.
_ESCAPED = re.compile(r"\\u(?!d[89a-fA-F])([0-9a-fA-F]{4})")


def _evidence_errors(error: UnicodeError) -> tuple[bytes, int]:
    """Encoding errors: undecodable bytes (surrogateescape's U+DC80–U+DCFF) go back as they came;
    characters the charset lacks become &#N; references."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    out = bytearray()
    for char in error.object[error.start : error.end]:
        code = ord(char)
        out += bytes([code - 0xDC00]) if 0xDC80 <= code <= 0xDCFF else f"&#{code};".encode("ascii")
    return bytes(out), error.end


codecs.register_error(ERRORS, _evidence_errors)


def body_encoding(content_type: str | None, body: bytes) -> str:
    """The charset Scrapy decodes this body with (w3lib's rules; GBK and GB2312 read as GB18030)."""
    encoding, _ = html_to_unicode(content_type, body)
    return encoding


def handle_replacements(secret: str, platform_id: str, handles: Iterable[str]) -> dict[str, str]:
    """{written form of a handle: its author_key}, for every form a page may write a handle in:
    as is, HTML-escaped, URL-quoted (profile links) and JSON-escaped."""
    replacements: dict[str, str] = {}
    for handle in handles:
        floor = MIN_ASCII_HANDLE_CHARS if handle.isascii() else MIN_HANDLE_CHARS
        if len(handle) < floor:
            continue
        key = author_key(secret, platform_id, handle)
        masked = mask_personal_data(handle)[0]
        forms = {handle, masked, html.escape(handle), quote(handle), quote_plus(handle)}
        forms.add(json.dumps(handle)[1:-1])
        for form in forms:
            replacements[form] = key
    return replacements


#: Characters a handle must not touch on either side: "12345" is not replaced inside "123456".
_WORD_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")


def _replace_handles(text: str, replacements: Mapping[str, str]) -> str:
    """Every form, never inside a longer word or number; where forms overlap, the leftmost wins, and
    of those starting at one place the longest — what a regex alternation of the forms, longest
    first, between word-boundary lookarounds matches. Found with ``str.find`` instead: each body has
    its own handles, and compiling that regex for every body was the costliest step of masking it."""
    if not replacements:
        return text
    found: list[tuple[int, int]] = []  # (start, -length): sorted, the leftmost then longest comes first
    for form in replacements:
        if not form:
            continue
        size = len(form)
        start = text.find(form)
        while start >= 0:
            end = start + size
            before = text[start - 1] if start else ""
            after = text[end] if end < len(text) else ""
            if before not in _WORD_CHARS and after not in _WORD_CHARS:
                found.append((start, -size))
            start = text.find(form, start + 1)
    if not found:
        return text
    found.sort()
    parts: list[str] = []
    done = 0
    for start, negative in found:
        if start < done:
            continue  # inside a match already taken, as the regex would have scanned past it
        end = start - negative
        parts += (text[done:start], replacements[text[start:end]])
        done = end
    parts.append(text[done:])
    return "".join(parts)


def mask_body(body: bytes, content_type: str | None, replacements: Mapping[str, str]) -> bytes:
    """The body with personal data masked and every handle form replaced by its author key, in the
    charset it was served in."""
    encoding = body_encoding(content_type, body)
    text = body.decode(encoding, "surrogateescape")

    def unescape(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        if char.isascii():
            return match.group()
        try:
            char.encode(encoding)
        except UnicodeEncodeError:
            return match.group()
        return char

    text = _ESCAPED.sub(unescape, text)
    # Personal data first: an author key is hex, whose digit runs a phone pattern could otherwise take.
    text, _ = mask_personal_data(text)
    text = _replace_handles(text, replacements)
    return text.encode(encoding, ERRORS)


# Where a body written before masking existed may hold a handle: JSON strings and numbers, HTML
# text and attribute values. Used only to find the handles behind known author keys (below).
_JSON_STRING = re.compile(r'"((?:[^"\\\n]|\\.){1,300})"')
_NUMBER = re.compile(r"(?<![\w.])\d{2,30}(?![\w.])")
_HTML_TEXT = re.compile(r">([^<>]{1,300})<")
_ATTRIBUTE = re.compile(r"""=\s*(?:"([^"<>]{1,500})"|'([^'<>]{1,500})')""")


def _candidates(text: str) -> set[str]:
    found: set[str] = set(_NUMBER.findall(text))
    for value in _JSON_STRING.findall(text):
        try:
            found.add(json.loads(f'"{value}"'))
        except ValueError:
            found.add(value)
    found.update(html.unescape(value) for value in _HTML_TEXT.findall(text))
    found.update(html.unescape(a or b) for a, b in _ATTRIBUTE.findall(text))
    return {value.strip() for value in found if value.strip()}


def handles_behind(
    body: bytes, content_type: str | None, secret: str, platform_id: str, author_keys: Iterable[str]
) -> set[str]:
    """The strings in a body whose author_key is one of the given keys (the keys of the posts parsed
    from it): how a body stored before masking finds its handles again without its spider."""
    wanted = set(author_keys)
    if not wanted:
        return set()
    text = body.decode(body_encoding(content_type, body), "replace")
    return {value for value in _candidates(text) if author_key(secret, platform_id, value) in wanted}
