"""A night at scale: sweep a disk world of many posts into PostgreSQL, then detect, with 1 and 2 workers.

Not part of `make bench` (it runs for many minutes): ``python -m bench.scale --posts 1000000 --workers 1,2
--database-url postgresql://postgres@127.0.0.1:5432/test_scale18``. For each worker count it builds a
fresh database (``<name>_w<N>``), crawls the disk world (fixtures.simulator.disk_world) with N crawler
processes, then detects with N detection processes, and reports posts/s, each worker's peak memory (RSS
high-water mark, its process tree summed, sampled from /proc), the PostgreSQL write rate
(pg_stat_database.tup_inserted per second) and each worker's memory at 25/50/75/100% of the sweep: a
worker that keeps no per-post state stays flat. On a server with autovacuum off the bench analyzes the
tables a night grows every ANALYZE_SECONDS, as autovacuum would, and says so in its output.

The worker commands are a seam: ``COMMANDS`` maps a name to the functions that give N crawler and N
detection commands. "single" uses today's single-process `weisu crawl` (the platforms split between
the N processes) and one-shot `weisu detect` (N one-shot runs side by side, which only the SKIP LOCKED
detection makes safe); "distributed" names `weisu crawl --distributed` and `weisu detect --worker`.

``--together`` (with ``--commands distributed``) starts the N crawlers and the N detection workers at
once, as production runs them, and times one phase, the *night*: until the crawlers have exited and
every stored post is judged (the detection workers are then stopped with SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlalchemy import create_engine, func, select, text, union_all
from sqlalchemy.engine import make_url

from fixtures.simulator.disk_world import DISK_PLATFORMS, build_disk_world
from storage.models import Lead, Post
from storage.vocabulary import DetectionStatus

ROOT = Path(__file__).resolve().parent.parent
WEISU = [sys.executable, "-m", "cli"]
#: Sweep shares at which each worker's memory is sampled.
QUARTERS = (0.25, 0.5, 0.75, 1.0)
POLL_SECONDS = 0.5
#: On a server with autovacuum off (this machine's test server), the bench analyzes the night's tables
#: this often, standing in for the autovacuum every stock PostgreSQL runs: a table of a million rows
#: that was never analyzed is planned as the empty table it was at the start of the night.
ANALYZE_SECONDS = 30.0
#: The tables a night grows (fixed names, not input).
NIGHT_TABLES = ("posts", "classifications", "lead_posts", "leads", "raw_responses")
#: Memory counts as flat when the last quarter's sample is within this factor of the first's.
FLAT_FACTOR = 1.25
DATABASE_NAME = re.compile(r"[a-z0-9_]{1,60}")

#: N → the commands of N worker processes (argument lists).
Commands = Callable[[int], list[list[str]]]


def single_crawl(workers: int) -> list[list[str]]:
    """Today's crawl: each process sweeps its own share of the platforms (round robin)."""
    return [[*WEISU, "crawl", "--quiet", *DISK_PLATFORMS[i::workers]] for i in range(workers)]


def single_detect(workers: int) -> list[list[str]]:
    return [[*WEISU, "detect", "--quiet"] for _ in range(workers)]


def distributed_crawl(workers: int) -> list[list[str]]:
    """After issue #18's merge: N workers share one sweep through the Redis frontier."""
    return [[*WEISU, "crawl", "--distributed", "--all", "--quiet"] for _ in range(workers)]


def distributed_detect(workers: int) -> list[list[str]]:
    return [[*WEISU, "detect", "--worker", "--idle-exit", "10"] for _ in range(workers)]


def together_detect(workers: int) -> list[list[str]]:
    """Detection workers started with the crawlers, as in production: they wait for posts as long as
    the sweep may take (the bench stops them once every stored post is judged, as systemd would)."""
    return [[*WEISU, "detect", "--worker"] for _ in range(workers)]


COMMANDS: dict[str, tuple[Commands, Commands]] = {
    "single": (single_crawl, single_detect),
    "distributed": (distributed_crawl, distributed_detect),
}


def scale_config(counts: dict[str, int], path: Path) -> Path:
    """config.yaml with only the disk platforms on, deep enough to reach every post, and no delays
    (the simulator is local: politeness toward it would only measure sleeping)."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    for key, platform in config["platforms"].items():
        platform["enabled"] = key in DISK_PLATFORMS
        if key in DISK_PLATFORMS:
            # Ten items a page is the smallest page size among them; an empty page ends a sweep early.
            platform["pagination"]["max_pages"] = math.ceil(counts[key] / 10) + 2
            platform["politeness"] = {"download_delay": 0.0, "concurrency": 8, "obey_robots": True}
            platform["priority"] = "nightly"
    # 黑猫's feed serves up to 50 a page: the biggest disk platform, read in a fifth of the requests.
    for entry in config["platforms"]["heimao"]["entry_points"]:
        entry["url"] = entry["url"].replace("page_size=10", "page_size=50")
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (a crawl runs in a child process)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def _rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


@dataclass
class Phase:
    """One phase's processes and what was sampled while they ran."""

    name: str
    peaks: list[float] = field(default_factory=list)
    quarters: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    inserted: int = 0
    failed: list[int] = field(default_factory=list)


def _inserted(engine: Any, database: str) -> int:
    with engine.connect() as connection:
        value = connection.execute(
            text("SELECT tup_inserted FROM pg_stat_database WHERE datname = :name"), {"name": database}
        ).scalar()
    return int(value or 0)


def run_phase(
    name: str,
    commands: list[list[str]],
    env: dict[str, str],
    engine: Any,
    database: str,
    progress: Callable[[], float],
    until: Callable[[list[subprocess.Popen[bytes]]], bool] | None = None,
    maintain: Callable[[], None] | None = None,
) -> Phase:
    """Run the worker commands side by side until all exit (or ``until`` says the phase is over: the
    workers still running are then stopped with SIGTERM), sampling memory and progress; ``maintain``
    is called every ANALYZE_SECONDS meanwhile."""
    phase = Phase(name, peaks=[0.0] * len(commands))
    before = _inserted(engine, database)
    started = time.perf_counter()
    maintained = started
    processes = [subprocess.Popen(c, env=env, cwd=ROOT, stdout=subprocess.DEVNULL) for c in commands]
    pending = list(QUARTERS)
    stopped: set[int] = set()
    while True:
        if until is not None and not stopped and until(processes):
            phase.seconds = time.perf_counter() - started
            for process in processes:
                if process.poll() is None:
                    stopped.add(process.pid)
                    process.terminate()
        running = [p.poll() is None for p in processes]
        rss = [_rss_mib(_tree(p.pid)) if alive else 0.0 for p, alive in zip(processes, running, strict=True)]
        phase.peaks = [max(a, b) for a, b in zip(phase.peaks, rss, strict=True)]
        share = progress()
        while pending and (share >= pending[0] or not any(running)):
            # A worker already gone has no memory to show: None, not 0.
            shown = [round(r, 1) if alive else None for r, alive in zip(rss, running, strict=True)]
            phase.quarters.append({"share": pending.pop(0), "rss_mib": shown})
        if not any(running):
            break
        if maintain is not None and time.perf_counter() - maintained >= ANALYZE_SECONDS:
            maintain()
            maintained = time.perf_counter()
        time.sleep(POLL_SECONDS)
    phase.seconds = phase.seconds or time.perf_counter() - started
    phase.inserted = _inserted(engine, database) - before  # pg_stat counters lag a little: read after exit
    phase.failed = [p.returncode for p in processes if p.returncode and p.pid not in stopped]
    return phase


def autovacuum_on(engine: Any) -> bool:
    with engine.connect() as connection:
        return connection.execute(text("SHOW autovacuum")).scalar() == "on"


def _analyzer(engine: Any) -> Callable[[], None] | None:
    """What stands in for autovacuum's ANALYZE while the workers run, if the server has it off."""
    if autovacuum_on(engine):
        return None

    def analyze() -> None:
        with engine.connect() as connection:
            connection.execute(text(f"ANALYZE {', '.join(NIGHT_TABLES)}"))
            connection.commit()

    return analyze


def _database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _create_database(admin_url: str, name: str, template: str | None = None) -> str:
    """A new, empty database ``name`` (dropped first if it exists), copied from ``template`` if given."""
    for database in (name, template or name):
        if not DATABASE_NAME.fullmatch(database):
            raise ValueError(f"database names are lower-case letters, digits and _: {database!r}")
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        # Identifiers cannot be bound parameters; the names were checked against DATABASE_NAME above.
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        copy = f' TEMPLATE "{template}"' if template else ""
        connection.execute(text(f'CREATE DATABASE "{name}"{copy}'))
    engine.dispose()
    return _database_url(admin_url, name)


def trained_template(admin_url: str, env: dict[str, str]) -> str:
    """A database with the schema and an active model, trained once: each run starts from a copy of it."""
    name = f"{make_url(admin_url).database}_template"
    url = _create_database(admin_url, name)
    env = env | {"WEISU_DATABASE_URL": url}
    subprocess.run([*WEISU, "init"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([*WEISU, "train", "--quiet"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return name


ALL = select(func.count(Post.id))
JUDGED = select(func.count(Post.id)).where(Post.detection_status != DetectionStatus.NEW)
# What the twice-a-second progress polls ask instead of counting a table of a million rows (which took a
# good share of a core from the workers being measured): index lookups. Post ids come from one sequence
# and detection takes posts in id order, so the highest id is about how many are stored and the first
# id still waiting about how many are done.
HIGHEST_ID = select(func.max(Post.id))


def _first(*statuses: DetectionStatus) -> Any:
    """The lowest id of a post in any of ``statuses``: one probe of the (status, id) index per status,
    where "status IN (…)" made PostgreSQL walk the primary key."""
    firsts = union_all(
        *(select(func.min(Post.id).label("id")).where(Post.detection_status == status) for status in statuses)
    ).subquery()
    return select(func.min(firsts.c.id))


FIRST_NEW = _first(DetectionStatus.NEW)
FIRST_UNMERGED = _first(DetectionStatus.NEW, DetectionStatus.CLASSIFIED)


def _scalar(engine: Any, query: Any) -> Any:
    with engine.connect() as connection:
        return connection.execute(query).scalar()


def _count(engine: Any, query: Any) -> int:
    return int(_scalar(engine, query) or 0)


def _done_through(engine: Any, waiting: Any) -> int:
    """About how many posts are done: those below the first still ``waiting`` (a progress figure only)."""
    first = _scalar(engine, waiting)
    return int(first) - 1 if first is not None else _count(engine, HIGHEST_ID)


def run_workers(
    workers: int,
    total: int,
    base_env: dict[str, str],
    admin_url: str,
    template: str,
    commands: tuple[Commands, Commands],
    together: bool = False,
) -> dict[str, Any]:
    """One sweep plus detection with ``workers`` crawler and ``workers`` detection processes: one phase
    after the other, or (``together``) all started at once, as in production."""
    name = f"{make_url(admin_url).database}_w{workers}"
    url = _create_database(admin_url, name, template)
    env = base_env | {"WEISU_DATABASE_URL": url}
    engine = create_engine(url)
    stats = create_engine(admin_url)
    crawl_commands, detect_commands = commands
    analyze = _analyzer(engine)  # asked once: the server's autovacuum does not change during a run
    if together:
        return _night(workers, env, engine, stats, name, total, crawl_commands, analyze)
    crawl = run_phase(
        "crawl",
        crawl_commands(workers),
        env,
        stats,
        name,
        lambda: _count(engine, HIGHEST_ID) / total,
        maintain=analyze,
    )
    stored = _count(engine, ALL)
    detect = run_phase(
        "detect",
        detect_commands(workers),
        env,
        stats,
        name,
        lambda: _done_through(engine, FIRST_NEW) / max(stored, 1),
        maintain=analyze,
    )
    judged = _count(engine, JUDGED)
    leads = _count(engine, select(func.count(Lead.id)))
    engine.dispose()
    stats.dispose()
    out: dict[str, Any] = {
        "workers": workers,
        "posts_stored": stored,
        "posts_judged": judged,
        "leads": leads,
        "autovacuum": analyze is None,
    }
    for phase, done in ((crawl, stored), (detect, judged)):
        first = phase.quarters[0]["rss_mib"]
        out[phase.name] = {
            "seconds": round(phase.seconds, 1),
            "posts_per_second": round(done / phase.seconds, 1),
            "peak_rss_mib_per_worker": [round(p, 1) for p in phase.peaks],
            "rss_at_quarters": phase.quarters,
            # Flat: no worker's peak is much above what it used a quarter of the way through.
            "memory_flat": all(
                peak <= early * FLAT_FACTOR for early, peak in zip(first, phase.peaks, strict=True) if early
            ),
            "pg_rows_inserted_per_second": round(phase.inserted / phase.seconds, 1),
            "failed_exit_codes": phase.failed,
        }
    return out


def _night(
    workers: int,
    env: dict[str, str],
    engine: Any,
    stats: Any,
    name: str,
    total: int,
    crawl: Commands,
    analyze: Callable[[], None] | None,
) -> dict[str, Any]:
    """Crawlers and detection workers side by side, until the crawlers are done and every post they
    stored is judged: one clock for the night, each worker's memory."""

    def over(processes: list[subprocess.Popen[bytes]]) -> bool:
        # Every post the finished crawlers stored is judged and merged.
        crawlers = processes[:workers]
        return (
            all(p.poll() is not None for p in crawlers)
            and _count(engine, HIGHEST_ID) > 0
            and _scalar(engine, FIRST_UNMERGED) is None
        )

    night = run_phase(
        "night",
        crawl(workers) + together_detect(workers),
        env,
        stats,
        name,
        lambda: _done_through(engine, FIRST_UNMERGED) / total,
        until=over,
        maintain=analyze,
    )
    stored, judged = _count(engine, ALL), _count(engine, JUDGED)
    leads = _count(engine, select(func.count(Lead.id)))
    engine.dispose()
    stats.dispose()
    first = night.quarters[0]["rss_mib"]
    return {
        "workers": workers,
        "posts_stored": stored,
        "posts_judged": judged,
        "leads": leads,
        "autovacuum": analyze is None,
        "night": {
            "seconds": round(night.seconds, 1),
            "posts_per_second": round(judged / night.seconds, 1),
            "peak_rss_mib_per_worker": {
                "crawl": [round(p, 1) for p in night.peaks[:workers]],
                "detect": [round(p, 1) for p in night.peaks[workers:]],
            },
            "rss_at_quarters": night.quarters,
            "memory_flat": all(
                peak <= early * FLAT_FACTOR for early, peak in zip(first, night.peaks, strict=True) if early
            ),
            "pg_rows_inserted_per_second": round(night.inserted / night.seconds, 1),
            "failed_exit_codes": night.failed,
        },
    }


def bench_scale(
    posts: int,
    workers: list[int],
    admin_url: str,
    seed: int = 42,
    commands: str = "single",
    together: bool = False,
) -> dict[str, Any]:
    """Build the disk world, serve it, and run the sweep plus detection for each worker count."""
    from fixtures.serving import free_port

    results: dict[str, Any] = {
        "posts": posts,
        "seed": seed,
        "commands": commands,
        "together": together,
        "runs": [],
    }
    with tempfile.TemporaryDirectory(prefix="weisu-scale-") as tmp:
        world = Path(tmp) / "world.sqlite"
        started = time.perf_counter()
        counts = build_disk_world(world, posts, seed)
        results["build_seconds"] = round(time.perf_counter() - started, 1)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "fixtures.simulator.disk_world", "serve", str(world), "--port", str(port)],
            cwd=ROOT,
        )
        simulator = f"http://127.0.0.1:{port}"
        try:
            _wait_for(simulator)
            base_env = dict(os.environ) | {
                "WEISU_CONFIG": str(scale_config(counts, Path(tmp) / "config.yaml")),
                "WEISU_SIMULATOR_URL": simulator,
                "WEISU_AUTHOR_HASH_KEY": secrets.token_urlsafe(48),
                "WEISU_MODEL_DIR": str(Path(tmp) / "models"),
            }
            template = trained_template(admin_url, base_env)
            for n in workers:
                run = run_workers(n, posts, base_env, admin_url, template, COMMANDS[commands], together)
                print(json.dumps(run), flush=True)  # each run as it ends: a long bench keeps what it measured
                results["runs"].append(run)
            results["simulator_peak_rss_mib"] = round(_hwm_mib(server.pid), 1)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results


def _hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait_for(url: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/_truth/counts", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the disk world at {url} did not answer within {seconds} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2", help="worker counts to run, comma-separated")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--commands", choices=sorted(COMMANDS), default="single")
    parser.add_argument(
        "--together",
        action="store_true",
        help="start crawlers and detection workers at once, as in production (with --commands distributed)",
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get("WEISU_SCALE_DATABASE_URL", ""),
        help="a PostgreSQL URL whose user may create databases <name>_w<N> (or $WEISU_SCALE_DATABASE_URL)",
    )
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        parser.exit(2, "bench.scale: give --database-url postgresql://… (the write rate is PostgreSQL's)\n")
    if args.together and args.commands != "distributed":
        parser.exit(2, "bench.scale: --together runs the workers of --commands distributed\n")
    workers = [int(n) for n in args.workers.split(",") if n.strip()]
    results = bench_scale(args.posts, workers, args.database_url, args.seed, args.commands, args.together)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
