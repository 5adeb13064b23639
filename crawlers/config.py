"""Scrapy settings for one platform's crawler, built from weisu Settings (politeness, robots, pipelines)."""

from __future__ import annotations

from typing import Any

from crawlers.pipelines import PIPELINES
from settings import Settings


def crawler_settings(settings: Settings, platform_id: str, log_level: str = "WARNING") -> dict[str, Any]:
    """Per-platform Scrapy settings: each platform runs in its own Crawler, so delays never mix.

    Against the simulator (``simulator_url`` set) every platform is on one loopback host and the
    configured delays would only slow tests down; they are dropped there and nowhere else.
    """
    platform = settings.platforms[platform_id]
    politeness = platform.politeness
    delay = 0.0 if settings.simulator_url else politeness.download_delay
    return {
        "BOT_NAME": "weisu",
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_OBEY": politeness.obey_robots,
        "DOWNLOAD_DELAY": delay,
        "DOWNLOAD_DELAY_JITTER": 0.5,
        "CONCURRENT_REQUESTS": politeness.concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": politeness.concurrency,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_MAX_DELAY": max(30.0, delay * 10),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(politeness.concurrency),
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "RETRY_TIMES": 3,
        "DOWNLOADER_MIDDLEWARES": {"crawlers.middlewares.retry_after.RetryAfterMiddleware": 560},
        "WEISU_MAX_RETRY_AFTER": 60.0,
        "DOWNLOAD_TIMEOUT": 30,
        "LOG_LEVEL": log_level,
        "LOGSTATS_INTERVAL": 0,
        "ITEM_PIPELINES": PIPELINES,
        "EXTENSIONS": {"crawlers.extensions.crawl_runs.CrawlRunRecorder": 500},
        "WEISU_SETTINGS": settings,
        "WEISU_PLATFORM": platform_id,
        "WEISU_STORE_BATCH": 100,
    }
