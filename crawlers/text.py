"""Pure text functions for the pipelines: normalise (strip HTML, unescape, NFKC, collapse), mask PII."""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import unicodedata

MAX_TEXT_CHARS = 20_000

_EMOTICON = re.compile(r"<img\b[^>]*?\balt=[\"']?([^\"'\s>]+)[\"']?[^>]*>", re.I)
_BREAK = re.compile(r"<br\s*/?>|</p\s*>|</div\s*>|</li\s*>", re.I)
_DROP_BLOCKS = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]+>")
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")

# Order matters: an 18-digit ID number contains digit runs that the phone patterns would also match.
MASKS: list[tuple[str, re.Pattern[str], str]] = [
    (
        "id_number",
        re.compile(r"(?<![0-9A-Za-z])[1-9]\d{5}(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{5}[\dXx](?![0-9A-Za-z])"),
        "[身份证号]",
    ),
    ("email", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"), "[邮箱]"),
    ("mobile", re.compile(r"(?<!\d)(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?!\d)"), "[手机号]"),
    ("landline", re.compile(r"(?<!\d)(?:\(0\d{2,3}\)|0\d{2,3}-)\d{7,8}(?:-\d{1,4})?(?!\d)"), "[电话]"),
    (
        "plate",
        re.compile(
            r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z][·・]?[A-HJ-NP-Z0-9]{5,6}"
            r"(?![A-Za-z0-9])"
        ),
        "[车牌]",
    ),
]


def normalise_text(value: str | None, limit: int = MAX_TEXT_CHARS) -> str:
    """HTML or plain text → one clean string: emoticons keep their alt text, tags go, entities unescape."""
    if not value:
        return ""
    text = _DROP_BLOCKS.sub(" ", value)
    text = _EMOTICON.sub(r"\1", text)
    text = _BREAK.sub("\n", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    text = unicodedata.normalize("NFKC", text)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text).strip()
    return text[:limit]


def mask_personal_data(text: str) -> tuple[str, dict[str, int]]:
    """Replace ID numbers, e-mails, mobile and landline numbers and licence plates with placeholders."""
    counts: dict[str, int] = {}
    for name, pattern, placeholder in MASKS:
        text, n = pattern.subn(placeholder, text)
        if n:
            counts[name] = n
    return text, counts


def author_key(secret: str, platform_id: str, handle: str) -> str:
    """Pseudonymous author key: HMAC-SHA256 (hex) of the platform and handle; the handle is never stored."""
    message = f"{platform_id}\x00{handle}".encode()
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
