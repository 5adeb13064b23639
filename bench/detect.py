"""Detection throughput: posts/s through detect_new_posts, split by step, beside bare tokenisers."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jieba
import pandas as pd

from classify import detection
from classify import model as model_module
from classify import text as text_module
from classify.corpus import CORPUS_DIR
from classify.detection import detect_new_posts
from classify.model import TASK, load_active
from classify.training import train_and_activate
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope, upgrade
from storage.models import ModelVersion
from storage.queries import insert_posts, sync_platforms

POSTS = 3000


def _real_texts(count: int) -> list[str]:
    """Real texts, complaints and noise interleaved: hot-issue letters, Weibo comments, reviews, news."""
    letters = pd.read_csv(CORPUS_DIR / "messages_hot_raw.csv", dtype=str, keep_default_na=False)
    sources = [
        (letters["title"] + "。" + letters["text"]).tolist(),
        pd.read_csv(CORPUS_DIR / "negatives_food_delivery_reviews.csv", dtype=str)["text"].tolist(),
        pd.read_csv(CORPUS_DIR / "negatives_news_titles.csv", dtype=str)["text"].tolist(),
        letters["title"].tolist(),
    ]
    texts = [text for group in zip(*sources, strict=False) for text in group if text]
    return texts[:count]


@contextmanager
def _step_timers() -> Iterator[dict[str, float]]:
    """Seconds spent per detection step, by wrapping the functions each step calls (~1 µs per call)."""
    spent = dict.fromkeys(("tokenise", "score", "place", "urgency", "merge"), 0.0)
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
    wrap(detection, "assess", "urgency")
    wrap(detection._OpenLeads, "match", "merge")
    wrap(detection._OpenLeads, "add", "merge")
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


def _detect_once(texts: list[str], root: Path, model: ModelVersion) -> dict[str, Any]:
    """One run on a fresh database whose active model is ``model``: rate, step split, load time."""
    url = f"sqlite:///{root / 'bench.db'}"
    upgrade(url)
    settings = load_settings(env={"WEISU_DATABASE_URL": url, "WEISU_MODEL_DIR": str(root / "m")})
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with session_scope(factory) as session:
        session.add(model)
        sync_platforms(session, {"bench": ("bench", "json_feed", True)})
        now = datetime.now(UTC)
        rows = [
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
        insert_posts(session, rows)
    model_module._loaded.clear()  # measure the load of every run, not a cached detector
    started = time.perf_counter()
    with session_scope(factory) as session:
        load_active(settings, session)  # once per process; a scheduler keeps it
    load_seconds = time.perf_counter() - started
    text_module.clear_cache()
    with _step_timers() as spent:
        started = time.perf_counter()
        summary = detect_new_posts(settings, factory)
        total = time.perf_counter() - started
    spent["store"] = total - sum(spent.values())  # reading pages, writing rows, commits
    engine.dispose()
    return {"rate": summary.posts_seen / total, "spent": spent, "load": load_seconds, "summary": summary}


def bench_detect(posts: int = POSTS, repeats: int = 3) -> dict[str, Any]:
    """Train once, then detect ``repeats`` times on fresh databases; report the median run."""
    texts = _real_texts(posts)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'train.db'}"
        upgrade(url)
        settings = load_settings(env={"WEISU_DATABASE_URL": url, "WEISU_MODEL_DIR": str(Path(tmp) / "m")})
        engine = make_engine(url)
        with session_scope(make_session_factory(engine)) as session:
            report = train_and_activate(settings, session)
        engine.dispose()
        runs = []
        for run in range(repeats):
            root = Path(tmp) / f"run{run}"
            root.mkdir()
            model = ModelVersion(
                version=report.version, task=TASK, path=str(report.path), data_hash="bench", active=True
            )
            runs.append(_detect_once(texts, root, model))
    jieba.initialize()
    baseline = _rate(jieba.lcut, texts)
    rjieba_rate = None
    if text_module.rjieba is not None:
        bare = text_module.rjieba.Jieba()
        rjieba_rate = _rate(lambda text: bare.cut(text, False), texts)
    median = sorted(runs, key=lambda r: r["rate"])[len(runs) // 2]
    total = len(texts) / median["rate"]
    spent = median["spent"]
    return {
        "unit": "posts/s",
        "weisu": round(median["rate"], 1),
        "weisu_runs": [round(r["rate"], 1) for r in runs],
        "baseline": round(baseline, 1),
        "baseline_name": "bare jieba.lcut",
        "ratio": round(median["rate"] / baseline, 3),
        "bare_rjieba": None if rjieba_rate is None else round(rjieba_rate, 1),
        "segmenter": text_module.segmenter_name(),
        "step_ms_per_post": {step: round(1000 * s / len(texts), 3) for step, s in spent.items()},
        "step_share": {step: round(s / total, 3) for step, s in spent.items()},
        "posts": len(texts),
        "model_load_seconds": round(sorted(r["load"] for r in runs)[len(runs) // 2], 2),
        "train_seconds": report.train_seconds,
        "detect": median["summary"].as_dict(),
    }


if __name__ == "__main__":
    result = bench_detect()
    print(result)
    print(
        f"detection {result['weisu']} posts/s, median of {result['weisu_runs']} ({result['segmenter']}); "
        f"bare jieba.lcut {result['baseline']}/s, bare rjieba {result['bare_rjieba']}/s; "
        f"model load {result['model_load_seconds']} s"
    )
    for step, ms in result["step_ms_per_post"].items():
        print(f"  {step:<9}{ms:8.3f} ms/post  {result['step_share'][step]:6.1%}")
