"""robots.txt parsed once per distinct body for the whole crawl process, not once per crawler.

Each platform has its own Crawler, and each fetches and parses its host's robots.txt. Where
platforms share a host (on the simulator all 42 do) that is the same file parsed again and again;
the parsed rules are read-only, so crawlers that fetched identical bytes share one parse. Every
crawler still fetches robots.txt itself, and every request is still checked against it.
"""

from __future__ import annotations

from typing import ClassVar

from protego import Protego
from scrapy import Spider
from scrapy.robotstxt import ProtegoRobotParser, decode_robotstxt


class SharedProtegoRobotParser(ProtegoRobotParser):
    _parsed: ClassVar[dict[bytes, Protego]] = {}

    def __init__(self, robotstxt_body: bytes, spider: Spider | None) -> None:
        self.spider = spider
        parsed = self._parsed.get(robotstxt_body)
        if parsed is None:
            parsed = self._parsed[robotstxt_body] = Protego.parse(decode_robotstxt(robotstxt_body, spider))
        self.rp = parsed
