"""Bounding hostile text before it goes into an alert: one line, at most so many characters."""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")


def one_line(text: str | None, limit: int) -> str:
    """``text`` with every run of whitespace (newlines included) as one space, cut to ``limit`` characters
    with an ellipsis: crawled text cannot start a new line (a heading, a quote) or flood a message."""
    flat = _SPACE.sub(" ", text or "").strip()
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
