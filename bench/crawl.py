"""Crawl benchmark: weisu's full crawl of the simulator vs a bare Scrapy spider fetching the same URLs.

Both run in a child process (a Twisted reactor cannot restart), so both figures include process
start-up. The baseline has no pipelines, no parsing, no robots.txt and no database; it may use the
same total concurrency weisu's platforms add up to.

Wall-clock pages/s is the headline figure. On a shared machine it moves with everyone else's load,
so the CPU seconds each side's child process used are reported too: pages per CPU-second compare
the work each side does per page, whatever the load.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fixtures.serving import serve_in_thread
from fixtures.simulator.app import create_app
from settings import PROJECT_ROOT, load_settings


def _children_cpu_seconds() -> float:
    """CPU (user + system) used so far by this process's finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _weisu_crawl(base: str, database_url: str) -> tuple[int, float, float]:
    from crawlers.runner import run_crawl
    from storage.db import upgrade

    upgrade(database_url)
    settings = load_settings(env={"WEISU_SIMULATOR_URL": base, "WEISU_DATABASE_URL": database_url})
    cpu, started = _children_cpu_seconds(), time.perf_counter()
    results = run_crawl(settings, None)
    elapsed = time.perf_counter() - started
    if any(r.status != "ok" for r in results):
        raise RuntimeError(f"weisu crawl was not clean: {results}")
    return sum(r.requests for r in results), elapsed, _children_cpu_seconds() - cpu


def _baseline_crawl(urls: list[str], concurrency: int, workdir: Path) -> tuple[int, float, float]:
    url_file = workdir / "urls.json"
    url_file.write_text(json.dumps(urls), encoding="utf-8")
    cpu, started = _children_cpu_seconds(), time.perf_counter()
    output = subprocess.run(
        [sys.executable, "-m", "bench.crawl", "--baseline", str(url_file), str(concurrency)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    elapsed = time.perf_counter() - started
    return int(output.strip().splitlines()[-1]), elapsed, _children_cpu_seconds() - cpu


def bench_crawl() -> dict[str, Any]:
    """Pages per second: weisu (all platforms, pipelines, DB) and a bare Scrapy spider on the same URLs."""
    settings = load_settings(env={})
    concurrency = sum(p.politeness.concurrency for p in settings.enabled_platforms().values())
    app = create_app(42)
    with tempfile.TemporaryDirectory(prefix="weisu-bench-") as tmp, serve_in_thread(app) as base:
        requests, weisu_seconds, weisu_cpu = _weisu_crawl(base, f"sqlite:///{tmp}/bench.db")
        urls = list(app.state.request_log)  # the pages weisu fetched (robots.txt excluded)
        weisu_pages = len(urls)
        baseline_pages, baseline_seconds, baseline_cpu = _baseline_crawl(urls, concurrency, Path(tmp))
    weisu = weisu_pages / weisu_seconds
    baseline = baseline_pages / baseline_seconds
    weisu_per_cpu, baseline_per_cpu = weisu_pages / weisu_cpu, baseline_pages / baseline_cpu
    return {
        "unit": "pages/s",
        "weisu": round(weisu, 1),
        "baseline": round(baseline, 1),
        "baseline_name": "bare Scrapy spider, same URLs",
        "ratio": round(weisu / baseline, 2) if baseline else None,
        "pages": weisu_pages,
        "requests_with_robots": requests,
        "posts": len(app.state.world.truth()["posts"]),
        "weisu_seconds": round(weisu_seconds, 2),
        "baseline_pages": baseline_pages,
        "baseline_seconds": round(baseline_seconds, 2),
        "weisu_cpu_seconds": round(weisu_cpu, 2),
        "baseline_cpu_seconds": round(baseline_cpu, 2),
        "pages_per_cpu_second": {"weisu": round(weisu_per_cpu, 1), "baseline": round(baseline_per_cpu, 1)},
        "cpu_ratio": round(weisu_per_cpu / baseline_per_cpu, 2),
    }


def _run_baseline(url_file: str, concurrency: int) -> None:
    """Child side of the baseline: fetch every URL once, parse nothing, print the response count."""
    import scrapy
    from scrapy.crawler import CrawlerProcess

    urls = json.loads(Path(url_file).read_text(encoding="utf-8"))
    counted: list[int] = []

    class BareSpider(scrapy.Spider):
        name = "bare"

        async def start(self):  # type: ignore[no-untyped-def]
            for url in urls:
                yield scrapy.Request(url, dont_filter=True)

        def parse(self, response):  # type: ignore[no-untyped-def]
            counted.append(1)
            return []

    process = CrawlerProcess(
        {
            "LOG_LEVEL": "WARNING",
            "TELNETCONSOLE_ENABLED": False,
            "ROBOTSTXT_OBEY": False,
            "CONCURRENT_REQUESTS": concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": concurrency,
        }
    )
    process.crawl(BareSpider)
    process.start()
    print(len(counted))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline":
        _run_baseline(sys.argv[2], int(sys.argv[3]))
    else:
        print(json.dumps(bench_crawl(), ensure_ascii=False))
