"""Detection throughput: posts/s through detect_new_posts vs bare `jieba.lcut` over the same texts."""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jieba
import pandas as pd

from classify.corpus import CORPUS_DIR
from classify.detection import detect_new_posts
from classify.model import load_active
from classify.training import train_and_activate
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope, upgrade
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


def bench_detect(posts: int = POSTS) -> dict[str, Any]:
    texts = _real_texts(posts)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        settings = load_settings(env={"WEISU_DATABASE_URL": url, "WEISU_MODEL_DIR": str(Path(tmp) / "m")})
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with session_scope(factory) as session:
            train_and_activate(settings, session)
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
        started = time.perf_counter()
        with session_scope(factory) as session:
            load_active(settings, session)  # once per process; a scheduler keeps it
        load_seconds = time.perf_counter() - started
        jieba.initialize()
        started = time.perf_counter()
        for text in texts:
            jieba.lcut(text)
        baseline = len(texts) / (time.perf_counter() - started)
        started = time.perf_counter()
        summary = detect_new_posts(settings, factory)
        weisu = summary.posts_seen / (time.perf_counter() - started)
        engine.dispose()
    return {
        "unit": "posts/s",
        "weisu": round(weisu, 1),
        "baseline": round(baseline, 1),
        "baseline_name": "bare jieba.lcut",
        "ratio": round(weisu / baseline, 3),
        "posts": len(texts),
        "model_load_seconds": round(load_seconds, 2),
        "detect": summary.as_dict(),
    }


if __name__ == "__main__":
    print(bench_detect())
