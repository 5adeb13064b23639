"""Child-process entry point: `python -m crawlers.crawl_process --settings FILE KEY...` runs a reactor.

The reactor cannot be restarted in one process, so runner.run_crawl starts this module in a fresh
process each time. Results go to the database (crawl_runs), never back through pipes.

Start-up is a large share of a short crawl, so main() keeps the cyclic garbage collector off while
modules load and crawlers are built (they make no garbage, but trigger ~300 collections), then
freezes what exists so collections during the crawl skip it: 0.6 s of a 4 s sweep in the profile.
Heavy imports therefore happen inside the functions, after the collector is off.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from settings import Settings

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def settings_from_file(path: str | None) -> Settings:
    """The parent's exact Settings (dumped as JSON, base URLs already rebased); secrets from the env."""
    from settings import Settings, load_settings

    if not path:
        return load_settings()
    settings = Settings.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    if key := os.environ.get("WEISU_AUTHOR_HASH_KEY"):
        settings.author_hash_key = key
    return settings


def crawl(settings: Settings, platform_ids: list[str], log_level: str = "WARNING") -> None:
    # Scrapy's HTTP handler first: importing it builds deprecated classes whose inspect.stack() call
    # costs time in proportion to the modules already loaded (SQLAlchemy and pydantic add ~250).
    import scrapy.core.downloader.handlers.http11  # noqa: F401
    from scrapy.crawler import Crawler, CrawlerProcess
    from scrapy.utils.reactor import install_reactor

    from crawlers.config import SharedSettings, crawler_settings
    from crawlers.spiders import SPIDERS

    # Crawlers built here (one per platform, each with its own settings) expect the reactor installed.
    install_reactor(ASYNCIO_REACTOR)
    process = CrawlerProcess({"LOG_LEVEL": log_level, "TELNETCONSOLE_ENABLED": False})
    settings = SharedSettings.of(settings)
    for key in platform_ids:
        platform = settings.platforms[key]
        crawler = Crawler(SPIDERS[platform.kind], crawler_settings(settings, key, log_level))
        process.crawl(crawler, platform_id=key)
    gc.freeze()
    gc.enable()
    process.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", help="JSON dump of the parent's Settings")
    parser.add_argument("--log-level", default="WARNING", help="Scrapy log level (INFO to watch a crawl)")
    parser.add_argument("platforms", nargs="+")
    args = parser.parse_args(argv)
    gc.disable()
    try:
        crawl(settings_from_file(args.settings), args.platforms, args.log_level)
    finally:
        gc.enable()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
