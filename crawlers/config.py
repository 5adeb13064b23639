"""Scrapy settings for one platform's crawler, built from weisu Settings (politeness, robots, pipelines)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from scrapy.settings import Settings as ScrapySettings
from scrapy.settings import default_settings

from crawlers.pipelines import PIPELINES
from settings import Settings

#: Scrapy components that crawler_settings switches off (remote control, telnet, cookies, the HTTP
#: cache, feeds, job state, memory debugging, periodic stats). Left in the base lists, each is still
#: imported and built once per crawler only to raise NotConfigured: 51 times a sweep, and the cookies
#: middleware alone imports tldextract and requests. Disabling one in EXTENSIONS would import it
#: too, since Scrapy resolves every key to its class; so they are taken out of the base lists.
SWITCHED_OFF = frozenset(
    {
        "scrapy.extensions.remote_control.RemoteControl",  # REMOTE_CONTROL_ENABLED: False (aiohttp)
        "scrapy.extensions.telnet.TelnetConsole",  # TELNETCONSOLE_ENABLED: False
        "scrapy.extensions.memdebug.MemoryDebugger",  # MEMDEBUG_ENABLED: default False
        "scrapy.extensions.feedexport.FeedExporter",  # no FEEDS
        "scrapy.extensions.spiderstate.SpiderState",  # no JOBDIR
        "scrapy.extensions.logstats.LogStats",  # LOGSTATS_INTERVAL: 0
        "scrapy.downloadermiddlewares.cookies.CookiesMiddleware",  # COOKIES_ENABLED: False
        "scrapy.downloadermiddlewares.httpcache.HttpCacheMiddleware",  # HTTPCACHE_ENABLED: default False
        "scrapy.extensions.memusage.MemoryUsage",  # MEMUSAGE_ENABLED: False (no limit is set)
    }
)
#: Scrapy components that do nothing for weisu's spiders, left out of the base lists too. The offsite
#: middleware filters requests to hosts outside a spider's ``allowed_domains``, and no platform spider
#: has any (it follows links its platform's pages give, rebased onto the simulator in tests): it
#: allows everything, yet checks every request twice (when scheduled and when downloaded).
DOES_NOTHING_HERE = frozenset({"scrapy.downloadermiddlewares.offsite.OffsiteMiddleware"})


def _without_switched_off(base: dict[str, int]) -> dict[str, int]:
    return {name: order for name, order in base.items() if name not in SWITCHED_OFF}


EXTENSIONS_BASE = _without_switched_off(default_settings.EXTENSIONS_BASE)
#: Scrapy's robots.txt middleware fetches the file once per crawler; this one once per host for the
#: whole crawl process (crawlers/robots.py), in the same place in the chain.
ROBOTS_MIDDLEWARE = "scrapy.downloadermiddlewares.robotstxt.RobotsTxtMiddleware"
DOWNLOADER_MIDDLEWARES_BASE = {
    ("crawlers.robots.SharedRobotsTxtMiddleware" if name == ROBOTS_MIDDLEWARE else name): order
    for name, order in _without_switched_off(default_settings.DOWNLOADER_MIDDLEWARES_BASE).items()
    if name not in DOES_NOTHING_HERE
}


class SharedSettings(Settings):
    """weisu Settings that Scrapy's per-crawler deep copy of its settings passes through unchanged.

    A sweep builds one Crawler per platform and each deep-copies its settings, WEISU_SETTINGS with
    all 42 platforms included: read-only data, so one object is shared instead of 42 copies made.
    """

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> SharedSettings:
        return self

    @classmethod
    def of(cls, settings: Settings) -> SharedSettings:
        if isinstance(settings, SharedSettings):
            return settings
        values = {name: getattr(settings, name) for name in Settings.model_fields}
        return cls.model_construct(_fields_set=settings.model_fields_set, **values)


class OwnedSettings(ScrapySettings):
    """Scrapy settings built for exactly one Crawler, which may take this object instead of a copy.

    ``Crawler.__init__`` deep-copies the settings it is given, Scrapy's ~300 defaults included: 2 ms
    per platform, 0.1 s of a 42-platform sweep. crawl_process builds a fresh object for each crawler
    and keeps no reference to it, so that first copy protects nothing and is skipped; any later
    ``copy()`` (``frozencopy``, ``copy_to_dict``) is a real deep copy as usual.
    """

    _handed_over = False

    def copy(self) -> OwnedSettings:
        if not self._handed_over:
            self._handed_over = True
            return self
        return super().copy()


def platforms_sharing_host(settings: Settings, platform_id: str) -> int:
    """How many enabled platforms (this one included) crawl the same host as ``platform_id``."""
    host = urlsplit(settings.platforms[platform_id].base_url).netloc
    sharing = [
        key
        for key, platform in settings.platforms.items()
        if urlsplit(platform.base_url).netloc == host and (platform.enabled or key == platform_id)
    ]
    return len(sharing)


def crawler_settings(settings: Settings, platform_id: str, log_level: str = "WARNING") -> dict[str, Any]:
    """Per-platform Scrapy settings: each platform runs in its own Crawler, so delays never mix.

    Against the simulator (``simulator_url`` set) every platform is on one loopback host and the
    configured delays would only slow tests down; they are dropped there and nowhere else.
    """
    platform = settings.platforms[platform_id]
    politeness = platform.politeness
    # Each platform has its own Crawler and so its own download slots: platforms on one real host
    # (api.bilibili.com, www.sz.gov.cn) would add their rates up. Splitting the host's budget keeps
    # the host's combined rate within what each entry asks for.
    sharing = platforms_sharing_host(settings, platform_id)
    delay = 0.0 if settings.simulator_url else politeness.download_delay * sharing
    concurrency = max(1, politeness.concurrency // sharing)
    return {
        "BOT_NAME": "weisu",
        "USER_AGENT": settings.user_agent,
        "ROBOTSTXT_OBEY": politeness.obey_robots,
        "ROBOTSTXT_PARSER": "crawlers.robots.SharedProtegoRobotParser",
        "DOWNLOAD_DELAY": delay,
        "DOWNLOAD_DELAY_JITTER": 0.5,
        "CONCURRENT_REQUESTS": concurrency,
        "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        "AUTOTHROTTLE_ENABLED": True,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_MAX_DELAY": max(30.0, delay * 10),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": float(concurrency),
        "COOKIES_ENABLED": False,
        # No control ports: Scrapy 2.19 opens a telnet console and an aiohttp remote-control server
        # per crawler by default (one per platform here).
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "MEMUSAGE_ENABLED": False,
        "EXTENSIONS_BASE": EXTENSIONS_BASE,
        "DOWNLOADER_MIDDLEWARES_BASE": DOWNLOADER_MIDDLEWARES_BASE,
        # Our pipelines are synchronous, so items gain nothing from running in parallel, while Scrapy
        # starts CONCURRENT_ITEMS asyncio tasks for every response (100 by default: most of the
        # reactor's CPU in a sweep's profile).
        "CONCURRENT_ITEMS": 8,
        "RETRY_TIMES": 3,
        "DOWNLOADER_MIDDLEWARES": {
            "crawlers.middlewares.retry_after.RetryAfterMiddleware": 560,
            # Walls: after decompression (590) and redirects (600), before retries (550); a redirect
            # to a login page is caught before it is followed.
            "crawlers.middlewares.walls.WallMiddleware": 580,
            "crawlers.middlewares.walls.LoginRedirectMiddleware": 650,
            # Outermost but the stats: the credential is on a request only while it is downloaded.
            "crawlers.middlewares.credentials.CredentialsMiddleware": 760,
        },
        "WEISU_MAX_RETRY_AFTER": 60.0,
        "DOWNLOAD_TIMEOUT": politeness.download_timeout,
        "LOG_LEVEL": log_level,
        "LOGSTATS_INTERVAL": 0,
        # Scrapy's collector proxies every attribute access to warn about a deprecated argument.
        "STATS_CLASS": "crawlers.stats.PlainStatsCollector",
        # The closing stats dump is pretty-printed before the log level is checked: 42 times a sweep.
        "STATS_DUMP": log_level in ("DEBUG", "INFO"),
        "ITEM_PIPELINES": PIPELINES,
        "EXTENSIONS": {"crawlers.extensions.crawl_runs.CrawlRunRecorder": 500},
        # Nearest the spider, so every item leaving a callback is stamped with its response body.
        "SPIDER_MIDDLEWARES": {"crawlers.middlewares.evidence.EvidenceMiddleware": 950},
        "WEISU_MAX_RAW_BODY_BYTES": settings.evidence.max_body_bytes,
        "WEISU_SETTINGS": SharedSettings.of(settings),
        "WEISU_PLATFORM": platform_id,
        "WEISU_STORE_BATCH": settings.crawl_gaps.store_batch,
        # Comment spiders keep each thread's state in the database (crawlers.discovery); a spider
        # built without it (a recorded sample's replay) reads the watched ids only.
        "WEISU_THREAD_STATE": True,
    }
