"""Crawl benchmark: weisu's full crawl of the simulator vs a bare Scrapy spider fetching the same URLs.

Both run in a child process (a Twisted reactor cannot restart), so both figures include process
start-up. The baseline has no pipelines, no parsing, no robots.txt and no database; it may use the
same total concurrency weisu's platforms add up to. Its child (``python -m bench.crawl --baseline``)
imports Scrapy and the standard library only: this module imports the simulator, the settings and
the rest of the harness inside the functions that use them, and the child checks that none of them
was loaded, so their import time is never counted as bare Scrapy's work.

Wall-clock pages/s is the headline figure. On a shared machine it moves with everyone else's load,
so the CPU seconds each side used are reported too (its child process, plus the caller's own
thread: run_crawl syncs the platforms and collects the results there): pages per CPU-second compare
the work each side does per page, whatever the load. Each side's wall time is also split where
the simulator saw its requests: start-up until the first page request, the span of page requests,
and the time after the last one (robots.txt is not a page: weisu fetches it before the first).

`python -m bench.crawl --runs N` runs the whole comparison N times and adds the medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from settings import Settings

#: Modules of the harness (simulator, web stack, weisu) that a bare Scrapy child must not load.
HARNESS_MODULES = (
    "fastapi", "uvicorn", "pydantic", "sqlalchemy", "settings", "fixtures", "crawlers", "storage",
)  # fmt: skip


def _children_cpu_seconds() -> float:
    """CPU (user + system) used so far by this process's finished child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def cpu_clock() -> Iterator[dict[str, float]]:
    """CPU seconds of the block: its finished child processes, plus this thread (``time.thread_time``:
    the caller's own work, such as run_crawl's platform sync and result collection, without the
    simulator, which serves from another thread of this process). Filled when the block ends:
    {"children", "caller", "total"}."""
    figures: dict[str, float] = {}
    children, caller = _children_cpu_seconds(), time.thread_time()
    try:
        yield figures
    finally:
        figures["children"] = _children_cpu_seconds() - children
        figures["caller"] = time.thread_time() - caller
        figures["total"] = figures["children"] + figures["caller"]


@contextmanager
def request_clock(log: list[str], poll_seconds: float = 0.005) -> Iterator[dict[str, float]]:
    """Times (from entering) of the first and last request the simulator logged, and the total.

    Filled when the block ends: {"to_first_request", "requests", "after_last_request"} in seconds.
    A thread polls the length of the simulator's request log (appended once per page request).
    """
    phases: dict[str, float] = {}
    seen: list[float] = []
    stop = threading.Event()
    start_count, started = len(log), time.perf_counter()

    def poll() -> None:
        count = start_count
        while not stop.is_set():
            if len(log) != count:
                count = len(log)
                seen.append(time.perf_counter() - started)
            time.sleep(poll_seconds)

    thread = threading.Thread(target=poll, name="request-clock", daemon=True)
    thread.start()
    try:
        yield phases
    finally:
        total = time.perf_counter() - started
        stop.set()
        thread.join()
        if seen:
            phases |= {
                "to_first_request": round(seen[0], 2),
                "requests": round(seen[-1] - seen[0], 2),
                "after_last_request": round(total - seen[-1], 2),
            }


def _weisu_settings(base: str, database_url: str) -> Settings:
    """Settings for a sweep of the simulator at ``base`` into a freshly migrated database."""
    from settings import load_settings
    from storage.db import upgrade

    upgrade(database_url)
    return load_settings(env={"WEISU_SIMULATOR_URL": base, "WEISU_DATABASE_URL": database_url})


def _weisu_crawl(settings: Settings) -> tuple[int, float, float]:
    from crawlers.runner import run_crawl

    started = time.perf_counter()
    with cpu_clock() as cpu:
        results = run_crawl(settings, None)
    elapsed = time.perf_counter() - started
    if any(r.status != "ok" for r in results):
        raise RuntimeError(f"weisu crawl was not clean: {results}")
    return sum(r.requests for r in results), elapsed, cpu["total"]


def _baseline_crawl(urls: list[str], concurrency: int, workdir: Path) -> tuple[int, float, float]:
    from settings import PROJECT_ROOT

    url_file = workdir / "urls.json"
    url_file.write_text(json.dumps(urls), encoding="utf-8")
    started = time.perf_counter()
    with cpu_clock() as cpu:
        output = subprocess.run(
            [sys.executable, "-m", "bench.crawl", "--baseline", str(url_file), str(concurrency)],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    elapsed = time.perf_counter() - started
    return int(output.strip().splitlines()[-1]), elapsed, cpu["total"]


def bench_crawl() -> dict[str, Any]:
    """Pages per second: weisu (all platforms, pipelines, DB) and a bare Scrapy spider on the same URLs."""
    from fixtures.serving import serve_in_thread
    from fixtures.simulator.app import create_app
    from settings import load_settings

    settings = load_settings(env={})
    concurrency = sum(p.politeness.concurrency for p in settings.enabled_platforms().values())
    app = create_app(42)
    log = app.state.request_log
    with tempfile.TemporaryDirectory(prefix="weisu-bench-") as tmp, serve_in_thread(app) as base:
        sweep = _weisu_settings(base, f"sqlite:///{tmp}/bench.db")
        with request_clock(log) as weisu_phases:
            requests, weisu_seconds, weisu_cpu = _weisu_crawl(sweep)
        urls = list(log)  # the pages weisu fetched (robots.txt excluded)
        weisu_pages = len(urls)
        with request_clock(log) as baseline_phases:
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
        "wall_phases": {"weisu": weisu_phases, "baseline": baseline_phases},
    }


#: Figures whose median a multi-run report gives.
MEDIAN_KEYS = (
    "ratio", "cpu_ratio", "weisu", "baseline", "weisu_seconds", "baseline_seconds",
    "weisu_cpu_seconds", "baseline_cpu_seconds",
)  # fmt: skip


def bench_crawl_runs(runs: int) -> dict[str, Any]:
    """``runs`` full comparisons, each with the 1-minute load average it started under, and medians."""
    results = []
    for _ in range(runs):
        load = round(os.getloadavg()[0], 2)
        results.append(bench_crawl() | {"load_average_1min": load})
        print(json.dumps(results[-1], ensure_ascii=False), file=sys.stderr)
    medians = {key: round(statistics.median(r[key] for r in results), 2) for key in MEDIAN_KEYS}
    return {"runs": runs, "median": medians, "each": results}


#: Comparisons ``make bench`` makes: one sweep's CPU ratio moves by ±0.05–0.1 between runs on a
#: shared machine, so the median of five is reported, with each run's ratios beside it.
MAKE_BENCH_RUNS = 5


def bench_crawl_median(runs: int = MAKE_BENCH_RUNS) -> dict[str, Any]:
    """The comparison ``make bench`` reports: the medians of ``runs`` runs, with the last run's sizes
    and each run's wall and CPU ratios."""
    report = bench_crawl_runs(runs)
    last = report["each"][-1]
    sizes = {key: last[key] for key in ("unit", "baseline_name", "pages", "requests_with_robots", "posts")}
    ratios = [{"ratio": r["ratio"], "cpu_ratio": r["cpu_ratio"]} for r in report["each"]]
    return sizes | report["median"] | {"runs": runs, "each_run": ratios}


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
    loaded = sorted(name for name in HARNESS_MODULES if name in sys.modules)
    if loaded:
        raise RuntimeError(f"the bare Scrapy child loaded harness modules: {', '.join(loaded)}")
    print(len(counted))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="weisu's full sweep vs bare Scrapy on the same URLs")
    parser.add_argument("--runs", type=int, default=1, help="repeat the comparison; report the medians")
    args = parser.parse_args(argv)
    result = bench_crawl() if args.runs == 1 else bench_crawl_runs(args.runs)
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline":
        _run_baseline(sys.argv[2], int(sys.argv[3]))
    else:
        main()
