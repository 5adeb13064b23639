"""Child-process entry point: `python -m crawlers.crawl_process --settings FILE|- KEY...` runs a reactor.

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
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from settings import Settings

ASYNCIO_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
#: What runner._spawn_crawl writes to the child's stdin: one JSON object with these two members.
STDIN_SETTINGS = "settings"
STDIN_AUTHOR_KEY = "author_hash_key"
#: The young generation's collection threshold while the reactor runs (Python's default: 700).
GC_YOUNG_THRESHOLD = 20_000


def settings_from_file(path: str | None) -> Settings:
    """The parent's exact Settings (dumped as JSON, base URLs already rebased). ``-``: read from stdin
    with the author-hash key beside them (how the runner sends them); a file path: secrets from the env."""
    from settings import Settings, load_settings

    if not path:
        return load_settings()
    if path == "-":
        message = json.loads(sys.stdin.buffer.read().decode("utf-8"))
        settings = Settings.model_validate(message[STDIN_SETTINGS])
        return settings.changed(author_hash_key=message[STDIN_AUTHOR_KEY])
    settings = Settings.model_validate(json.loads(Path(path).read_text(encoding="utf-8")))
    if key := os.environ.get("WEISU_AUTHOR_HASH_KEY"):
        settings = settings.changed(author_hash_key=key)
    return settings


def crawl(
    settings: Settings, platform_ids: list[str], log_level: str = "WARNING", distributed: bool = False
) -> dict[str, int]:
    """Crawl the platforms to their end; the crawl_runs ids opened, by platform. ``distributed``: as one
    worker of the shared Redis sweep (crawlers/distributed.py), taking requests from its frontier."""
    from crawlers.scrapy_imports import import_http_handler

    # Scrapy's HTTP handler first: importing it builds deprecated classes whose inspect.stack() call
    # costs time in proportion to the modules already loaded (SQLAlchemy and pydantic add ~250).
    import_http_handler()
    from scrapy.crawler import Crawler, CrawlerProcess
    from scrapy.utils.reactor import install_reactor
    from twisted.internet.defer import DeferredList

    from crawlers.config import OwnedSettings, SharedSettings, crawler_settings
    from crawlers.extensions.crawl_runs import OPENED_RUN_SETTING, open_runs
    from crawlers.spiders import SPIDERS

    # Crawlers built here (one per platform, each with its own settings) expect the reactor installed.
    install_reactor(ASYNCIO_REACTOR)
    process = CrawlerProcess({"LOG_LEVEL": log_level, "TELNETCONSOLE_ENABLED": False})
    settings = SharedSettings.of(settings)
    worker = None
    if distributed:
        from crawlers.distributed import distributed_settings, join_sweep

        worker = join_sweep(settings, platform_ids)
    opened = open_runs(settings, platform_ids, None if worker is None else worker.sweep)
    if worker is not None:
        worker.opened_runs([run.run_id for run in opened.values()])
    first, then = crawl_phases(settings, platform_ids)
    crawlers = {}
    for key in platform_ids:
        platform = settings.platforms[key]
        values = crawler_settings(settings, key, log_level) | {OPENED_RUN_SETTING: opened[key]}
        if worker is not None:
            values = distributed_settings(settings, key, values, worker.sweep)
        crawlers[key] = Crawler(SPIDERS[platform.kind], OwnedSettings(values))
    started = [process.crawl(crawlers[key], platform_id=key) for key in first]
    if then:
        # Comment platforms start once the platforms they discover threads from have stored their
        # posts. They are added while the first crawls are still active, so process.join() (which
        # loops while any crawl is active) waits for them too.
        def start_threads(_: object) -> None:
            for key in then:
                process.crawl(crawlers[key], platform_id=key)

        DeferredList(started).addBoth(start_threads)
    # Scrapy sets its own logger to DEBUG and the root logger to NOTSET, and filters in its handler:
    # every response and item builds a DEBUG record (~2,000 a sweep) only for the handler to drop it.
    # With the levels set, those calls return at once. Each Crawler built resets the root level,
    # hence here, after the last one.
    logging.getLogger("scrapy").setLevel(log_level)
    logging.root.setLevel(log_level)
    gc.freeze()
    # A sweep allocates many short-lived objects (requests, responses, items) and holds little: with
    # the default threshold (700) the young generation is collected ~180 times a sweep.
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])
    gc.enable()
    process.start()
    if worker is not None:
        worker.finish(list(crawlers.values()))
    return {key: run.run_id for key, run in opened.items()}


def crawl_phases(settings: Settings, platform_ids: list[str]) -> tuple[list[str], list[str]]:
    """The platforms to crawl first, and the comment platforms that discover threads from one of
    them, started after the first have finished (a run without their sources starts them at once)."""
    keys = set(platform_ids)
    later = [
        key
        for key in platform_ids
        if (discover := settings.platforms[key].discover) is not None and keys & set(discover.sources)
    ]
    return [key for key in platform_ids if key not in later], later


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--settings", help="JSON dump of the parent's Settings, or - to read it from stdin")
    parser.add_argument("--log-level", default="WARNING", help="Scrapy log level (INFO to watch a crawl)")
    parser.add_argument("--distributed", action="store_true", help="be a worker of the shared Redis sweep")
    parser.add_argument("platforms", nargs="+")
    args = parser.parse_args(argv)
    gc.disable()
    from crawlers.distributed import DistributedError

    try:
        _crawl_and_close(settings_from_file(args.settings), args.platforms, args.log_level, args.distributed)
    except DistributedError as error:
        print(f"crawl: {error}", file=sys.stderr)
        return 1
    return 0


def _crawl_and_close(
    settings: Settings, platform_ids: list[str], log_level: str, distributed: bool = False
) -> dict[str, int]:
    """The crawl, with the collector off until it starts (see the module docstring), then the
    crawl's database connections closed; the runs opened."""
    try:
        runs = crawl(settings, platform_ids, log_level, distributed)
    finally:
        gc.enable()
    _close_database(settings.database_url)
    return runs


def run_distributed(
    settings: Settings, platform_ids: list[str], log_level: str = "WARNING"
) -> dict[str, int]:
    """`weisu crawl --distributed`: this process is the worker (a fresh reactor: the CLI runs none)."""
    gc.disable()
    return _crawl_and_close(settings, platform_ids, log_level, distributed=True)


def run_forked(settings: Settings, platform_ids: list[str], log_level: str = "WARNING") -> None:
    """Entry point of a child forked from the parent (runner.run_crawl): same crawl as main(), without
    starting a new interpreter, re-importing SQLAlchemy, pydantic and weisu (~0.4 s) or re-reading
    the settings. Never returns: the child must not run the parent's code after the crawl."""
    code = 1
    try:
        import asyncio

        from storage.db import forget_inherited_connections

        gc.disable()
        # The caller may be showing a rich progress display, whose stdout/stderr proxies take the
        # console's lock, which another thread of the caller may have held at the fork: write to
        # the process's own streams instead.
        sys.stdout = sys.__stdout__ or sys.stdout
        sys.stderr = sys.__stderr__ or sys.stderr
        forget_inherited_connections()
        # The asyncio reactor takes the thread's event loop: the parent's (and its selector's file
        # descriptor) must not be shared with the child.
        asyncio.set_event_loop(asyncio.new_event_loop())
        _crawl_and_close(settings, platform_ids, log_level)
        code = 0
    except BaseException:
        logging.getLogger(__name__).exception("crawl child failed")
    finally:
        exit_now(code)


def _close_database(database_url: str) -> None:
    """Close the crawl's pooled connections (what interpreter teardown would do, explicitly)."""
    from storage.db import session_factory_for

    session_factory_for(database_url).kw["bind"].dispose()


def exit_now(code: int) -> None:
    """End the child without tearing down its ~1,000 modules one by one (40 ms of a 2 s sweep): the
    results are committed and the connections closed; only the log and output buffers need flushing."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
