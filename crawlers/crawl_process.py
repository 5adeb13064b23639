"""Child-process entry point: `python -m crawlers.crawl_process --settings FILE KEY...` runs a reactor.

The reactor cannot be restarted in one process, so runner.run_crawl starts this module in a fresh
process each time. Results go to the database (crawl_runs), never back through pipes.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from scrapy.crawler import Crawler, CrawlerProcess
from scrapy.utils.reactor import install_reactor

from crawlers.config import crawler_settings
from crawlers.spiders import SPIDERS
from settings import Settings, load_settings

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"


def settings_from_file(path: str | None) -> Settings:
    """The parent's exact Settings (dumped as JSON, base URLs already rebased); secrets from the env."""
    if not path:
        return load_settings()
    settings = Settings.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    if key := os.environ.get("WEISU_AUTHOR_HASH_KEY"):
        settings.author_hash_key = key
    return settings


def crawl(settings: Settings, platform_ids: list[str], log_level: str = "WARNING") -> None:
    # Crawlers built here (one per platform, each with its own settings) expect the reactor installed.
    install_reactor(ASYNCIO_REACTOR)
    process = CrawlerProcess({"LOG_LEVEL": log_level, "TELNETCONSOLE_ENABLED": False})
    for key in platform_ids:
        platform = settings.platforms[key]
        crawler = Crawler(SPIDERS[platform.kind], crawler_settings(settings, key, log_level))
        process.crawl(crawler, platform_id=key)
    process.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", help="JSON dump of the parent's Settings")
    parser.add_argument("--log-level", default="WARNING", help="Scrapy log level (INFO to watch a crawl)")
    parser.add_argument("platforms", nargs="+")
    args = parser.parse_args(argv)
    crawl(settings_from_file(args.settings), args.platforms, args.log_level)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
