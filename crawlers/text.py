"""Pure text functions for the pipelines: normalise (strip HTML, unescape, NFKC, collapse).

Masking personal data lives in storage.personal_data: the migrations mask stored rows with it too.
"""

from __future__ import annotations

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
