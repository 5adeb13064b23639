"""Near-duplicate detection between posts: character 3-shingles of the normalised text."""

from __future__ import annotations

import re

from classify.text import normalise

SHINGLE = 3
_KEEP = re.compile(r"[0-9a-z\u4e00-\u9fff]")


def shingles(text: str, size: int = SHINGLE) -> frozenset[str]:
    chars = "".join(_KEEP.findall(normalise(text)))
    if len(chars) <= size:
        return frozenset([chars]) if chars else frozenset()
    return frozenset(chars[i : i + size] for i in range(len(chars) - size + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
