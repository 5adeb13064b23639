"""Jurisdiction: is a post about our city, another one, or can't we tell — and why.

Evidence in order of strength: place names in the text (ours, then another city's), the entry point
it was found through (a city board or feed lists only our city), then the platform's IP-location
label, which on most platforms names only a province. Only ``elsewhere`` drops a post; ``unknown``
stays a lead candidate, because a Shenzhen resident's "我们小区停水了" names no place at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from classify.places import Place
from settings import CitySettings
from storage.vocabulary import Jurisdiction

#: Prefixes platforms put before the IP-location value ("发布于 广东", "IP属地：广东", "来自广东").
_IP_PREFIX = re.compile(r"^\s*(?:发布于|IP属地|ip属地|来自)\s*[:：]?\s*")


@dataclass(frozen=True)
class JurisdictionDecision:
    jurisdiction: Jurisdiction
    reason: str

    @property
    def elsewhere(self) -> bool:
        return self.jurisdiction is Jurisdiction.ELSEWHERE


def ip_region(label: str | None) -> str:
    """The region an IP-location label names, without the platform's prefix ("" when there is none)."""
    return _IP_PREFIX.sub("", label or "").strip()


def decide(
    text: str, place: Place, city: CitySettings, *, ip_location: str | None, local_entry: str | None
) -> JurisdictionDecision:
    """Decide from the text's places, the local entry point's label (None if not local), the IP label."""
    named = place.street or place.district or (city.name if city.name in text else None)
    if named:
        return JurisdictionDecision(Jurisdiction.OURS, f"正文提到「{named}」")
    if place.other_city:
        return JurisdictionDecision(Jurisdiction.ELSEWHERE, f"正文提到「{place.other_city}」，未提到本市")
    if local_entry:
        return JurisdictionDecision(Jurisdiction.OURS, f"来自本市入口「{local_entry}」")
    region = ip_region(ip_location)
    if region and city.province not in region and city.name not in region:
        return JurisdictionDecision(Jurisdiction.ELSEWHERE, f"IP属地「{region}」在外省，正文未提到本市")
    if region:
        return JurisdictionDecision(Jurisdiction.UNKNOWN, f"IP属地「{region}」，正文未提到具体地点")
    return JurisdictionDecision(Jurisdiction.UNKNOWN, "正文未提到地点，无IP属地")


__all__ = ["Jurisdiction", "JurisdictionDecision", "decide", "ip_region"]
