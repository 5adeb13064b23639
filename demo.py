"""`weisu demo`: start both simulators, crawl, detect, and serve the review app until Ctrl-C."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path

import httpx
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from fixtures.serving import LOOPBACK, free_port
from settings import PROJECT_ROOT, SECRET_VARIABLES, Settings, load_settings

console = Console()
SIMULATOR_PORT = 8010
DISPATCH_PORT = 8020
DEMO_PUSH_SECONDS = 5
#: The demo's own secrets, made once per install (var/ is git-ignored) so pseudonyms stay stable.
DEMO_SECRETS = PROJECT_ROOT / "var" / "demo-secrets.json"


def demo_secrets(path: Path = DEMO_SECRETS) -> dict[str, str]:
    """The demo's secret_key and author_hash_key: read from ``path``, or made at random and written there
    first (owner-only, mode 0600). Only the demo uses this; every other command needs them exported."""
    try:
        stored: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):  # none yet, or a file cut short: make new ones
        stored = {}
    if all(stored.get(name) for name in SECRET_VARIABLES):
        return stored
    stored = {name: secrets.token_urlsafe(48) for name in SECRET_VARIABLES}
    path.parent.mkdir(parents=True, exist_ok=True)
    # Created 0600 from the start (not chmod-ed afterwards): no moment when others could read it.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a file left by an older run keeps its mode through O_TRUNC
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(stored, file)
    return stored


def demo_settings(settings: Settings, secrets_path: Path = DEMO_SECRETS) -> Settings:
    """The demo's conveniences, for itself only: its stored secrets where none is exported, and a session
    cookie without the Secure flag (it serves plain http on loopback)."""
    for name, value in demo_secrets(secrets_path).items():
        if not getattr(settings, name):
            setattr(settings, name, value)
    settings.review.cookie_secure = False
    return settings


def _port_or_free(preferred: int) -> int:
    try:
        import socket

        with socket.socket() as sock:
            sock.bind((LOOPBACK, preferred))
        return preferred
    except OSError:
        return free_port()


@contextmanager
def child_process(args: list[str], ready_url: str, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``weisu ARGS`` in a child process, wait until ``ready_url`` answers, stop it on exit."""
    process = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=PROJECT_ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}")
            try:
                httpx.get(ready_url, timeout=1.0)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start at {ready_url}") from None
                time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _has_usable_model(settings: Settings) -> bool:
    """An active model that still loads (a model from older library versions is refused)."""
    from classify.model import ModelError, load_active
    from storage.db import session_factory_for, session_scope

    try:
        with session_scope(session_factory_for(settings.database_url)) as session:
            load_active(settings, session)
    except ModelError:
        return False
    return True


def prepare(settings: Settings) -> dict[str, int]:
    """Initialise, crawl every platform, train when no model is active, detect; return stage counts."""
    from classify.detection import detect_new_posts
    from classify.training import train_and_activate
    from cli import initialise_database
    from crawlers.runner import run_crawl
    from storage.db import session_factory_for, session_scope
    from storage.queries import stage_counts
    from verify.users import ensure_demo_analyst

    initialise_database(settings)
    factory = session_factory_for(settings.database_url)
    with session_scope(factory) as session:
        ensure_demo_analyst(session, settings)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"抓取 {len(settings.enabled_platforms())} 个平台 (crawling)…")
        run_crawl(settings, None)
        progress.update(task, description="抓取完成 (crawled)", completed=1, total=1)
        if not _has_usable_model(settings):
            task = progress.add_task("训练模型 (training the detector)…")
            with session_scope(factory) as session:
                train_and_activate(settings, session=session)
            progress.update(task, description="模型就绪 (model trained)", completed=1, total=1)
        task = progress.add_task("识别线索 (detecting leads)…")
        detect_new_posts(settings, factory)
        progress.update(task, description="识别完成 (detected)", completed=1, total=1)
    with session_scope(factory) as session:
        return stage_counts(session)


def run_demo(settings: Settings, port: int = 8000) -> None:
    """The whole path on loopback; Ctrl-C stops every process this started."""
    import uvicorn
    from apscheduler.schedulers.background import BackgroundScheduler

    import schedules
    from verify.web.app import create_app

    (PROJECT_ROOT / "var").mkdir(exist_ok=True)
    simulator_port, dispatch_port = _port_or_free(SIMULATOR_PORT), _port_or_free(DISPATCH_PORT)
    simulator_url = f"http://{LOOPBACK}:{simulator_port}"
    dispatch_url = f"http://{LOOPBACK}:{dispatch_port}"
    # Child processes (the crawler) re-read the configuration, so the overrides go through the env.
    os.environ["WEISU_SIMULATOR_URL"] = simulator_url
    os.environ["WEISU_DISPATCH_URL"] = dispatch_url
    os.environ.setdefault("WEISU_DATABASE_URL", settings.database_url)
    settings = demo_settings(load_settings(settings.config_path))
    settings.schedules.push_seconds = DEMO_PUSH_SECONDS
    dispatch_db = Path(PROJECT_ROOT / "var" / "dispatch.db")
    with ExitStack() as stack:
        stack.enter_context(
            child_process(
                ["simulate", "--port", str(simulator_port), "--seed", "42"],
                f"{simulator_url}/_truth",
                "platform simulator",
            )
        )
        stack.enter_context(
            child_process(
                ["simulate-dispatch", "--port", str(dispatch_port), "--db", str(dispatch_db)],
                f"{dispatch_url}/services.json",
                "dispatch simulator",
            )
        )
        counts = prepare(settings)
        scheduler = schedules.configure(BackgroundScheduler(timezone=settings.schedules.timezone), settings)
        for job_id in ("nightly_sweep", "incremental_sweep"):
            scheduler.remove_job(job_id)  # the demo world is crawled once above
        scheduler.start()
        stack.callback(scheduler.shutdown, wait=False)
        console.print(
            f"\n[bold]weisu demo[/bold]  帖子 posts: {counts['posts']}  线索 leads: {counts['leads']}  "
            f"加急 urgent leads: {counts['urgent_leads']}  工单 tickets: {counts['tickets']}\n"
            f"review app: [link]http://{LOOPBACK}:{port}[/link]   "
            f"login: {settings.review.demo_analyst} / {settings.review.demo_password}\n"
            f"platform simulator: {simulator_url}   dispatch simulator: {dispatch_url}\n"
            "verified leads are pushed to the dispatch simulator every "
            f"{DEMO_PUSH_SECONDS} s; Ctrl-C stops everything."
        )
        with suppress(KeyboardInterrupt):
            app = create_app(settings)
            uvicorn.run(app, host=LOOPBACK, port=port, log_level="warning", proxy_headers=False)
