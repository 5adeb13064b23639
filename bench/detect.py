"""Detection throughput on simulator posts: posts/s through detect_new_posts, split by step, beside bare
tokenisers timed on the same texts in the same run.

Posts: every post the platform simulator serves for seeds 42, 43 and 44 (about 3,000: short Weibo
posts and comments, forum threads, whole letters on government boards, reviews, news), stored as the
crawler stores them (personal data masked). ``--real`` runs on 3,000 real corpus texts instead (the
figure reported before 2026-11-29 afternoon), labelled as such.

The trained model is cached under var/bench/detect-model/<key>/, the key hashing the model code and
library versions, so repeated runs skip the 1–3 minute training; delete the folder to retrain.

Times: the model is loaded and warmed (one prediction: the segmenter's dictionary and the
explanation's feature names are built lazily) before the clock starts, as in the scheduler's
long-lived process; load and warm-up are reported beside. Each run is on a fresh SQLite database;
the median of ``repeats`` runs is shown, with CPU seconds, because the machine is shared.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jieba
import pandas as pd

from classify import detection, merging
from classify import model as model_module
from classify import text as text_module
from classify.corpus import CORPUS_DIR
from classify.detection import detect_new_posts
from classify.model import TASK, ModelError, library_versions, load_active
from classify.training import train_and_activate
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope, upgrade
from storage.models import ModelVersion, title_and_text
from storage.queries import insert_posts, sync_platforms

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "var" / "bench" / "detect-model"
MODEL_CODE = (
    "model.py",
    "pipelines.py",
    "features.py",
    "text.py",
    "training.py",
    "corpus.py",
    "request_type.py",
    "data/userdict.txt",
)
SEEDS = (42, 43, 44)
POSTS = 3000
STEPS = ("tokenise", "score", "place", "urgency", "merge")


def simulator_posts(seeds: tuple[int, ...] = SEEDS) -> list[dict[str, Any]]:
    """Every post the simulator serves for these seeds, as rows for ``posts`` (masked like a crawl)."""
    from fixtures.simulator.world import build_world
    from storage.personal_data import mask_personal_data

    rows = []
    for seed in seeds:
        world = build_world(seed)
        for platform, posts in world.posts.items():
            for post in posts:
                rows.append(
                    {
                        "platform_id": platform,
                        "external_id": f"{seed}-{post.external_id}",
                        "url": f"https://example.invalid/{platform}/{seed}/{post.external_id}",
                        "title": mask_personal_data(post.title)[0] if post.title else None,
                        "text": mask_personal_data(post.text)[0],
                        "published_at": post.published.astimezone(UTC),
                        "ip_location": post.extra.get("region") or post.extra.get("ip_location"),
                        "parent_external_id": post.parent_id and f"{seed}-{post.parent_id}",
                        "content_hash": hashlib.sha256(
                            f"{platform}{seed}{post.external_id}".encode()
                        ).hexdigest(),
                    }
                )
    return rows


def real_posts(count: int = POSTS) -> list[dict[str, Any]]:
    """Real texts, complaints and noise interleaved: letters, reviews, news titles, letter titles."""
    letters = pd.read_csv(CORPUS_DIR / "messages_hot_raw.csv", dtype=str, keep_default_na=False)
    sources = [
        (letters["title"] + "。" + letters["text"]).tolist(),
        pd.read_csv(CORPUS_DIR / "negatives_food_delivery_reviews.csv", dtype=str)["text"].tolist(),
        pd.read_csv(CORPUS_DIR / "negatives_news_titles.csv", dtype=str)["text"].tolist(),
        letters["title"].tolist(),
    ]
    texts = [text for group in zip(*sources, strict=False) for text in group if text][:count]
    now = datetime.now(UTC)
    return [
        {
            "platform_id": "bench",
            "external_id": str(i),
            "url": f"https://example.invalid/{i}",
            "text": text,
            "published_at": now,
            "content_hash": f"{i:064d}",
        }
        for i, text in enumerate(texts)
    ]


def cached_model(settings_env: dict[str, str]) -> tuple[str, Path, float | None]:
    """(version, directory, training seconds or None when cached) of a model trained by this code."""
    digest = hashlib.sha256(json.dumps(library_versions(), sort_keys=True).encode())
    for name in MODEL_CODE:
        digest.update((ROOT / "classify" / name).read_bytes())
    home = CACHE / digest.hexdigest()[:16]
    record = home / "model.json"
    if record.exists():
        saved = json.loads(record.read_text())
        try:
            model_module.load_model(Path(saved["path"]))
            return saved["version"], Path(saved["path"]), None
        except (ModelError, OSError):
            pass  # a half-written or foreign model: train again
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'train.db'}"
        upgrade(url)
        settings = load_settings(
            env={**settings_env, "WEISU_DATABASE_URL": url, "WEISU_MODEL_DIR": str(home)}
        )
        engine = make_engine(url)
        with session_scope(make_session_factory(engine)) as session:
            report = train_and_activate(settings, session)
        engine.dispose()
    record.write_text(json.dumps({"version": report.version, "path": str(report.path)}))
    return report.version, Path(report.path), report.train_seconds


@contextmanager
def _step_timers() -> Iterator[dict[str, float]]:
    """Seconds spent per detection step, by wrapping the functions each step calls (~1 µs per call)."""
    spent = dict.fromkeys(STEPS, 0.0)
    patches: list[tuple[Any, str, Any]] = []

    def wrap(owner: Any, name: str, step: str) -> None:
        original = getattr(owner, name)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[step] += time.perf_counter() - started

        patches.append((owner, name, original))
        setattr(owner, name, timed)

    wrap(text_module, "_cut", "tokenise")  # called inside the vectorisers: subtracted from "score"
    wrap(detection.Detector, "predict", "score")
    wrap(detection, "extract_place", "place")
    wrap(detection, "decide_jurisdiction", "place")
    wrap(detection, "assess", "urgency")
    wrap(detection, "shingles", "merge")
    wrap(merging.LeadIndex, "match", "merge")
    wrap(merging.LeadIndex, "add", "merge")
    try:
        yield spent
    finally:
        for owner, name, original in reversed(patches):
            setattr(owner, name, original)
        spent["score"] -= spent["tokenise"]


def _rate(function: Callable[[str], Any], texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        function(text)
    return len(texts) / (time.perf_counter() - started)


def _detect_once(rows: list[dict[str, Any]], root: Path, version: str, path: Path) -> dict[str, Any]:
    """One run on a fresh database whose active model is the cached one: rate, step split, load time."""
    url = f"sqlite:///{root / 'bench.db'}"
    upgrade(url)
    settings = load_settings(env={"WEISU_DATABASE_URL": url, "WEISU_MODEL_DIR": str(root / "m")})
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        session.add(ModelVersion(version=version, task=TASK, path=str(path), data_hash="bench", active=True))
        sync_platforms(
            session, {key: (key, "json_feed", True) for key in {row["platform_id"] for row in rows}}
        )
        insert_posts(session, rows)
    model_module._loaded.clear()  # measure the load of every run, not a cached detector
    text_module.clear_cache()
    started = time.perf_counter()
    with session_scope(factory) as session:
        detector = load_active(settings, session)  # once per process; a scheduler keeps it
    loaded = time.perf_counter()
    detector.predict(["楼道里有很浓的煤气味"], explain_above=0.0)  # build what predict builds lazily
    warm = time.perf_counter()
    text_module.clear_cache()
    with _step_timers() as spent:
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        summary = detect_new_posts(settings, factory)
        cpu, total = time.process_time() - started_cpu, time.perf_counter() - started_wall
    spent["store"] = total - sum(spent.values())  # reading pages, writing rows, commits
    engine.dispose()
    return {
        "rate": summary.posts_seen / total,
        "cpu_rate": summary.posts_seen / cpu,
        "spent": spent,
        "total": total,
        "load": loaded - started,
        "warm_up": warm - loaded,
        "summary": summary,
    }


def bench_detect(real: bool = False, repeats: int = 3) -> dict[str, Any]:
    """Detect ``repeats`` times on fresh databases with the cached model; report the median run."""
    rows = real_posts() if real else simulator_posts()
    texts = [title_and_text(row.get("title"), row["text"]) for row in rows]
    version, path, train_seconds = cached_model({})
    with tempfile.TemporaryDirectory() as tmp:
        runs = []
        for run in range(repeats):
            root = Path(tmp) / f"run{run}"
            root.mkdir()
            runs.append(_detect_once(rows, root, version, path))
    jieba.initialize()
    baseline = _rate(jieba.lcut, texts)
    rjieba_rate = None
    if text_module.rjieba is not None:
        bare = text_module.rjieba.Jieba()
        rjieba_rate = _rate(lambda text: bare.cut(text, False), texts)
    median = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
    spent = median["spent"]
    return {
        "unit": "posts/s",
        "posts_from": "3,000 real corpus texts"
        if real
        else f"simulator worlds, seeds {', '.join(map(str, SEEDS))}",
        "weisu": round(median["rate"], 1),
        "weisu_runs": [round(r["rate"], 1) for r in runs],
        "weisu_per_cpu_second": round(median["cpu_rate"], 1),
        # A fresh process's first run: loading and warming the model counted in.
        "weisu_cold": round(len(rows) / (median["total"] + median["load"] + median["warm_up"]), 1),
        "baseline": round(baseline, 1),
        "baseline_name": "bare jieba.lcut",
        "ratio": round(median["rate"] / baseline, 3),
        "bare_rjieba": None if rjieba_rate is None else round(rjieba_rate, 1),
        # The end-to-end rate against tokenising alone with the segmenter detection itself uses.
        "ratio_to_rjieba": None if rjieba_rate is None else round(median["rate"] / rjieba_rate, 3),
        "segmenter": text_module.segmenter_name(),
        "step_ms_per_post": {step: round(1000 * s / len(rows), 3) for step, s in spent.items()},
        "step_share": {step: round(s / median["total"], 3) for step, s in spent.items()},
        "posts": len(rows),
        "characters_per_post": round(sum(map(len, texts)) / len(texts), 1),
        "model_load_seconds": round(sorted(r["load"] for r in runs)[len(runs) // 2], 2),
        "model_warm_up_seconds": round(sorted(r["warm_up"] for r in runs)[len(runs) // 2], 2),
        "train_seconds": train_seconds,
        "detect": median["summary"].as_dict(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--real", action="store_true", help="3,000 real corpus texts instead of simulator posts"
    )
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    result = bench_detect(real=arguments.real, repeats=arguments.repeats)
    print(result)
    print(
        f"detection of {result['posts']} posts ({result['posts_from']}, "
        f"{result['characters_per_post']} chars "
        f"each): {result['weisu']} posts/s, median of {result['weisu_runs']}, "
        f"{result['weisu_per_cpu_second']} per CPU-second, {result['weisu_cold']}/s with load and warm-up "
        f"({result['segmenter']}); "
        f"bare jieba.lcut {result['baseline']}/s (ratio {result['ratio']}), bare rjieba "
        f"{result['bare_rjieba']}/s (ratio {result['ratio_to_rjieba']}); "
        f"model load {result['model_load_seconds']} s + warm-up {result['model_warm_up_seconds']} s"
    )
    for step, ms in result["step_ms_per_post"].items():
        print(f"  {step:<9}{ms:8.3f} ms/post  {result['step_share'][step]:6.1%}")
