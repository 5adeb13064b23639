"""Pure text functions for the pipelines: normalise (strip HTML, unescape, NFKC, collapse).

HTML goes to text through w3lib (Scrapy's own HTML helpers); only the two rules that are ours stay
here: an emoticon image keeps its alt text, and block ends become line breaks.
Masking personal data lives in storage.personal_data: the migrations mask stored rows with it too.
"""

from __future__ import annotations

import re
import unicodedata

from w3lib.html import remove_tags, remove_tags_with_content, replace_entities

MAX_TEXT_CHARS = 20_000

# Platforms write emoticons as images ("[怒]" in the alt): the name is the text a reader sees.
_EMOTICON = re.compile(r"<img\b[^>]*?\balt=[\"']?([^\"'\s>]+)[\"']?[^>]*>", re.I)
# A line break or the end of a block is a line break in the text (comments split their paragraphs so).
_BREAK = re.compile(r"<br\s*/?>|</p\s*>|</div\s*>|</li\s*>", re.I)
_SPACES = re.compile(r"[^\S\n]+")
_NEWLINES = re.compile(r"\s*\n\s*")


def normalise_text(value: str | None, limit: int = MAX_TEXT_CHARS) -> str:
    """HTML or plain text → one clean string: emoticons keep their alt text, tags go, entities unescape."""
    if not value:
        return ""
    text = remove_tags_with_content(value, which_ones=("script", "style"))
    text = _EMOTICON.sub(r"\1", text)
    text = _BREAK.sub("\n", text)
    text = replace_entities(remove_tags(text))
    text = unicodedata.normalize("NFKC", text)
    text = _SPACES.sub(" ", text)
    text = _NEWLINES.sub("\n", text).strip()
    return text[:limit]
