"""Detection workers side by side on PostgreSQL: posts/s with one worker and with several, same posts.

Posts: the simulator worlds' posts (bench.detect.simulator_posts), stored in a fresh schema of the
PostgreSQL database given; the model is bench.detect's cached one. Each worker is a process of its own
running classify.detection.run_worker, as `weisu detect --worker` does. Workers load and warm the model
first, then start together; the clock runs from their start until no post is left to judge. Each run
also checks that every post was classified once, and reports the leads, so runs can be compared.

    .venv/bin/python -m bench.detect_workers postgresql://postgres@127.0.0.1:5432/<db> --workers 1 2
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bench.detect import SEEDS, cached_model, simulator_posts
from classify.model import TASK
from storage.db import make_engine, make_session_factory, session_scope, temporary_postgres_schema, upgrade
from storage.models import Classification, Lead, ModelVersion, Post
from storage.queries import count_awaiting_detection, insert_posts, sync_platforms
from storage.vocabulary import DetectionStatus

IDLE_EXIT = 1.0


def _peak_mb() -> int:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec,
    so a spawned worker would report its parent's peak when that was higher."""
    status = Path("/proc/self/status").read_text()
    kilobytes = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    return round(kilobytes / 1024)


def _worker(url: str, model_dir: str, batch_size: int, start: Barrier, results: Any) -> None:
    from classify.detection import run_worker
    from classify.model import load_active
    from settings import load_settings

    settings = load_settings(env={"WEISU_DATABASE_URL": url, "WEISU_MODEL_DIR": model_dir})
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        load_active(settings, session).predict(["楼道里有很浓的煤气味"], explain_above=0.0)  # warm
    start.wait()
    started = time.perf_counter()
    summary = run_worker(settings, factory, batch_size, idle_exit=IDLE_EXIT)
    seconds = time.perf_counter() - started - IDLE_EXIT
    results.put({"seconds": seconds, "peak_mb": _peak_mb(), **summary.as_dict()})
    engine.dispose()


def _run(base_url: str, rows: list[dict[str, Any]], workers: int, batch_size: int) -> dict[str, Any]:
    version, path, _ = cached_model({})
    with temporary_postgres_schema(base_url, "bench") as url:
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            session.add(
                ModelVersion(version=version, task=TASK, path=str(path), data_hash="bench", active=True)
            )
            sync_platforms(
                session, {key: (key, "json_feed", True) for key in {r["platform_id"] for r in rows}}
            )
            insert_posts(session, rows)
        context = multiprocessing.get_context("spawn")
        start, results = context.Barrier(workers + 1), context.Queue()
        processes = [
            context.Process(target=_worker, args=(url, str(Path(path).parent), batch_size, start, results))
            for _ in range(workers)
        ]
        for process in processes:
            process.start()
        start.wait()
        started, load_before = time.perf_counter(), os.getloadavg()[0]
        with session_scope(factory) as session:
            while any(p.is_alive() for p in processes) and (
                count_awaiting_detection(session)
                or session.scalar(
                    select(func.count())
                    .select_from(Post)
                    .where(Post.detection_status == DetectionStatus.CLASSIFIED)
                )
            ):
                session.rollback()
                time.sleep(0.05)
        seconds = time.perf_counter() - started
        per_worker = [results.get(timeout=600) for _ in processes]
        for process in processes:
            process.join()
        with session_scope(factory) as session:
            posts = session.scalar(select(func.count()).select_from(Post)) or 0
            leads = session.scalar(select(func.count()).select_from(Lead)) or 0
            per_post = session.execute(
                select(func.count()).select_from(Classification).group_by(Classification.post_id)
            )
            judged_once = set(per_post.scalars()) == {1}
        engine.dispose()
    return {
        "workers": workers,
        "posts": posts,
        "seconds": round(seconds, 2),
        "posts_per_second": round(posts / seconds, 1),
        "leads": leads,
        # The machine is shared: the 1-minute load average at the start and at the end of the run.
        "load_average": (round(load_before, 1), round(os.getloadavg()[0], 1)),
        "every_post_classified_once": judged_once,
        "per_worker": per_worker,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url", help="a PostgreSQL database (a temporary schema is made in it)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    parser.add_argument("--batch-size", type=int, default=100)
    arguments = parser.parse_args()
    rows = simulator_posts(tuple(arguments.seeds))
    for workers in arguments.workers:
        result = _run(arguments.database_url, rows, workers, arguments.batch_size)
        print(result)


if __name__ == "__main__":
    main()
