"""`make bench`: run every benchmark, print each figure beside its same-run baseline and the ratio."""

from __future__ import annotations

import json
import platform
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console()


def _run(name: str, bench: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    console.print(f"[bold]{name}[/bold] …")
    started = time.perf_counter()
    result = bench()
    result["wall_seconds"] = round(time.perf_counter() - started, 2)
    return result


def main() -> int:
    from bench.crawl import bench_crawl_median
    from bench.detect import bench_detect
    from bench.queue import bench_queue
    from bench.world import bench_world

    results = {"crawl": _run("crawl", bench_crawl_median), "detect": _run("detect", bench_detect)}
    results["world"] = _run("world", bench_world)
    results["queue"] = _run("queue", bench_queue)
    table = Table("benchmark", "figure", "weisu", "baseline", "weisu / baseline")
    for name, result in results.items():
        table.add_row(
            name,
            str(result.get("unit", "")),
            f"{result['weisu']:.1f}",
            f"{result['baseline']:.1f} ({result.get('baseline_name', 'baseline')})",
            f"{result['weisu'] / result['baseline']:.2f}" if result["baseline"] else "n/a",
        )
    crawl = results["crawl"]
    # The target is CPU efficiency: pages per CPU-second against bare Scrapy's, median of the runs.
    table.add_row(
        "crawl",
        f"CPU ratio, median of {crawl['runs']}",
        f"{crawl['weisu_cpu_seconds']:.2f} s",
        f"{crawl['baseline_cpu_seconds']:.2f} s (bare Scrapy)",
        f"{crawl['cpu_ratio']:.2f}",
    )
    detect = results["detect"]
    if detect.get("bare_rjieba"):
        # Detection's second baseline: bare tokenising with the segmenter it uses itself.
        table.add_row(
            "detect",
            str(detect["unit"]),
            f"{detect['weisu']:.1f}",
            f"{detect['bare_rjieba']:.1f} (bare rjieba)",
            f"{detect['ratio_to_rjieba']:.2f}",
        )
    console.print(table)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    console.print(f"python {platform.python_version()} on {platform.machine()}, peak RSS {peak_mib:.0f} MiB")
    print(json.dumps(results, ensure_ascii=False, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
