"""Urgency rules: safety hazards and basic needs make a lead urgent; the reason names what fired.

A rule (``classify.urgent_terms`` in config.yaml) lists exact terms ("停水", "煤气味") and/or
object-in-state patterns: one of ``objects`` followed, within ``window`` characters of the same
clause, by one of ``states`` ("井盖" … "丢失"). Citizens word a hazard in many ways ("井盖有丢失",
"井盖被车撞飞了", "外墙瓷砖掉落"); a list of exact phrases misses most of them, while an object next
to a hazardous state in one clause generalises to wordings nobody listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: A term preceded by one of these within a few characters does not fire ("没有停水", "已修好"); the
#: same words between an object and its state cancel the pattern ("井盖没有丢失").
_NEGATION = re.compile(r"(没有|并未|未曾|不会|无需|已经修好|已修复)$")
_NEGATED_GAP = re.compile(r"没有|并未|未曾|不会|无需|修好|修复")

#: Characters that end a clause: an object and its state must sit in the same clause.
_CLAUSE_END = "，。！？；,.!?;\n"
DEFAULT_WINDOW = 10


@dataclass(frozen=True)
class Urgency:
    urgent: bool
    reason: str | None


@dataclass(frozen=True)
class _Rule:
    name: str
    pattern: re.Pattern[str]


def _alternation(words: Iterable[str]) -> str:
    return "|".join(map(re.escape, sorted(set(words), key=len, reverse=True)))


def _entry_pattern(entry: Any) -> str:
    """One named group per entry kind: ``term`` for an exact term, ``obj``/``gap``/``state`` for a pattern."""
    if isinstance(entry, str):
        return re.escape(entry)
    objects = entry["objects"] if isinstance(entry, Mapping) else entry.objects
    states = entry["states"] if isinstance(entry, Mapping) else entry.states
    window = (entry.get("window") if isinstance(entry, Mapping) else entry.window) or DEFAULT_WINDOW
    return f"(?:{_alternation(objects)})[^{_CLAUSE_END}]{{0,{int(window)}}}?(?:{_alternation(states)})"


def _freeze(rules: Mapping[str, Sequence[Any]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((name, tuple(_entry_pattern(entry) for entry in entries)) for name, entries in rules.items())


@lru_cache(maxsize=16)
def _compile(frozen: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[re.Pattern[str], tuple[_Rule, ...]]:
    rules = tuple(_Rule(name, re.compile("|".join(parts) or r"(?!)")) for name, parts in frozen)
    anything = re.compile("|".join(part for _, parts in frozen for part in parts) or r"(?!)")
    return anything, rules


def _negated(text: str, match: re.Match[str]) -> bool:
    if _NEGATION.search(text[max(0, match.start() - 4) : match.start()]):
        return True
    # Inside an object-in-state match, a negation between the two cancels it ("井盖并未丢失").
    return len(match.group(0)) > 2 and _NEGATED_GAP.search(match.group(0)[1:-1]) is not None


_last: list[Any] = [None, None]


def _compiled(rules: Mapping[str, Sequence[Any]]) -> tuple[re.Pattern[str], tuple[_Rule, ...]]:
    # Detection calls assess with the same settings object for every post: building the patterns'
    # source costs more than matching, so it is redone only when another rules object comes in.
    if _last[0] is not rules:
        _last[:] = [rules, _compile(_freeze(rules))]
    return _last[1]


def assess(text: str, rules: Mapping[str, Sequence[Any]]) -> Urgency:
    """Urgent when any rule fires un-negated; the reason is like "燃气安全: 燃气泄漏; 井盖: 井盖有丢失"."""
    anything, compiled = _compiled(rules)
    # One pass over the text with every rule finds that most posts fire nothing; only those that may
    # fire are examined rule by rule.
    if not anything.search(text):
        return Urgency(False, None)
    fired = []
    for rule in compiled:
        hits: list[str] = []
        for match in rule.pattern.finditer(text):
            if not _negated(text, match) and match.group(0) not in hits:
                hits.append(match.group(0))
            if len(hits) == 3:
                break
        if hits:
            fired.append(f"{rule.name}: {'、'.join(hits)}")
    if not fired:
        return Urgency(False, None)
    return Urgency(True, "; ".join(fired)[:500])
