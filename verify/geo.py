"""Where a district is: approximate WGS-84 coordinates for a ticket's lat/long when no more is known."""

from __future__ import annotations

#: The seat of each Shenzhen district government (大鹏新区: its administrative committee in 葵涌),
#: WGS-84, rounded to 0.001° (about 100 m), as shown on public maps (OpenStreetMap / Wikipedia
#: infoboxes). Enough to route a ticket to the right district on the dispatcher's map; never a
#: claim about where the problem itself is — the address_string carries the street and landmark.
DISTRICT_SEATS: dict[str, tuple[float, float]] = {
    "福田区": (22.522, 114.055),
    "罗湖区": (22.548, 114.131),
    "南山区": (22.533, 113.930),
    "盐田区": (22.558, 114.237),
    "宝安区": (22.555, 113.884),
    "龙岗区": (22.721, 114.247),
    "龙华区": (22.697, 114.045),
    "坪山区": (22.691, 114.346),
    "光明区": (22.749, 113.936),
    "大鹏新区": (22.593, 114.479),
}


def district_point(district: str | None) -> tuple[float, float] | None:
    """(lat, long) of a Shenzhen district, or None for an unknown or missing district."""
    return DISTRICT_SEATS.get(district or "")
