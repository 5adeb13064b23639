"""Urgency rules: safety hazards and basic needs make a lead urgent; the reason names the terms that fired."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

#: A term preceded by one of these within a few characters does not fire ("没有停水", "已修好").
_NEGATION = re.compile(r"(没有|并未|未曾|不会|无需|已经修好|已修复)$")


@dataclass(frozen=True)
class Urgency:
    urgent: bool
    reason: str | None


@lru_cache(maxsize=16)
def _any_term(terms: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile("|".join(map(re.escape, sorted(terms, key=len, reverse=True))) or r"(?!)")


def assess(text: str, rules: dict[str, list[str]]) -> Urgency:
    """Urgent when any configured term appears un-negated; reason like "燃气安全: 燃气泄漏、煤气味"."""
    # One pass over the text with every term finds that most posts fire nothing; only those that may
    # fire are examined rule by rule.
    if not _any_term(tuple(term for terms in rules.values() for term in terms)).search(text):
        return Urgency(False, None)
    fired = []
    for rule, terms in rules.items():
        hits = []
        for term in terms:
            for match in re.finditer(re.escape(term), text):
                if not _NEGATION.search(text[max(0, match.start() - 4) : match.start()]):
                    hits.append(term)
                    break
        if hits:
            fired.append(f"{rule}: {'、'.join(hits)}")
    if not fired:
        return Urgency(False, None)
    return Urgency(True, "; ".join(fired)[:500])
