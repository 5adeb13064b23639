"""`weisu demo`: check its ports, start both simulators, crawl, detect, serve the review app until stopped."""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bootstrap import detect_and_stamp, initialise_database, session_factory, startup_settings
from fixtures.serving import LOOPBACK, PARENT_PID_ENV, port_is_free
from settings import PROJECT_ROOT, SECRET_VARIABLES, Settings

console = Console()
DEFAULT_PORT = 8000
#: `make demo PORT=P` serves the review app on P and the simulators on P + 10 and P + 20.
SIMULATOR_OFFSET, DISPATCH_OFFSET = 10, 20
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
    kept = demo_secrets(secrets_path)
    stored = {name: value for name, value in kept.items() if not getattr(settings, name)}
    return settings.changed(**stored, review={"cookie_secure": False})


#: How long a stopped child may take to shut down before it is killed.
STOP_SECONDS = 10


class DemoError(Exception):
    """The demo cannot start; the message is one line saying what to do."""


@dataclass(frozen=True)
class DemoPorts:
    review: int
    simulator: int
    dispatch: int

    @classmethod
    def around(cls, port: int) -> DemoPorts:
        return cls(port, port + SIMULATOR_OFFSET, port + DISPATCH_OFFSET)

    def named(self) -> list[tuple[int, str]]:
        return [
            (self.review, "review app"),
            (self.simulator, "platform simulator"),
            (self.dispatch, "dispatch simulator"),
        ]

    def taken(self) -> list[tuple[int, str]]:
        return [(port, name) for port, name in self.named() if not port_is_free(port)]


def check_ports(ports: DemoPorts) -> None:
    """DemoError naming the first taken port and a `make demo PORT=…` whose three ports are all free."""
    taken = ports.taken()
    if not taken:
        return
    port, name = taken[0]
    base = next(
        (b for b in range(ports.review + 1, ports.review + 100) if not DemoPorts.around(b).taken()),
        ports.review + 1,
    )
    free = DemoPorts.around(base)
    raise DemoError(
        f"port {port} ({name}) is taken: choose other ports with `make demo PORT={base}` "
        f"(`weisu demo --port {base}`: review app {base}, simulators {free.simulator} and {free.dispatch})"
    )


@contextmanager
def child_process(args: list[str], ready_url: str, name: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``weisu ARGS`` in a child process, wait until ``ready_url`` answers, stop it on exit.

    The child also stops by itself when this process dies without stopping it (SIGKILL): see
    fixtures.serving.exit_with_parent.
    """
    env = dict(os.environ, **{PARENT_PID_ENV: str(os.getpid())})
    process = subprocess.Popen([sys.executable, "-m", "cli", *args], cwd=PROJECT_ROOT, env=env)
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
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM unwinds the stack like Ctrl-C, so every child is stopped (by default Python just dies)."""

    def unwind(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the cleanup short
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, unwind)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _stop_forked_children() -> None:
    """Stop a crawl child still running when the demo stops mid-crawl (its runs read as interrupted later)."""
    for child in multiprocessing.active_children():
        child.terminate()
        child.join(STOP_SECONDS)


@contextmanager
def demo_children(ports: DemoPorts, dispatch_db: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Both simulators as child processes, stopped on exit, on SIGTERM, and (by themselves) on SIGKILL."""
    with ExitStack() as stack:
        stack.enter_context(stop_on_sigterm())
        stack.callback(_stop_forked_children)
        children = [
            stack.enter_context(
                child_process(
                    ["simulate", "--port", str(ports.simulator), "--seed", "42"],
                    f"http://{LOOPBACK}:{ports.simulator}/_truth",
                    "platform simulator",
                )
            ),
            stack.enter_context(
                child_process(
                    ["simulate-dispatch", "--port", str(ports.dispatch), "--db", str(dispatch_db)],
                    f"http://{LOOPBACK}:{ports.dispatch}/services.json",
                    "dispatch simulator",
                )
            ),
        ]
        yield children


def _has_usable_model(settings: Settings) -> bool:
    """An active model that still loads (a model from older library versions is refused)."""
    from classify.model import ModelError, load_active
    from storage.db import session_scope

    try:
        with session_scope(session_factory(settings)) as session:
            load_active(settings, session)
    except ModelError:
        return False
    return True


def prepare(settings: Settings) -> dict[str, int]:
    """Initialise, crawl every platform, train when no model is active, detect; return stage counts."""
    from classify.training import train_and_activate
    from crawlers.runner import run_crawl
    from storage.db import session_scope
    from storage.queries import stage_counts
    from verify.users import ensure_demo_analyst

    initialise_database(settings)
    factory = session_factory(settings)
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
        detect_and_stamp(settings, factory)
        progress.update(task, description="识别完成 (detected)", completed=1, total=1)
    with session_scope(factory) as session:
        return stage_counts(session)


def run_demo(settings: Settings, port: int = DEFAULT_PORT) -> None:
    """The whole path on loopback; Ctrl-C or SIGTERM stops every process this started."""
    from apscheduler.schedulers.background import BackgroundScheduler

    import schedules
    from verify.web.app import create_app

    ports = DemoPorts.around(port)
    check_ports(ports)  # before anything is crawled, so a taken port costs nothing but this line
    (PROJECT_ROOT / "var").mkdir(exist_ok=True)
    simulator_url = f"http://{LOOPBACK}:{ports.simulator}"
    dispatch_url = f"http://{LOOPBACK}:{ports.dispatch}"
    # Child processes (the crawler) re-read the configuration, so the overrides go through the env.
    os.environ["WEISU_SIMULATOR_URL"] = simulator_url
    os.environ["WEISU_DISPATCH_URL"] = dispatch_url
    os.environ.setdefault("WEISU_DATABASE_URL", settings.database_url)
    settings = demo_settings(startup_settings(settings.config_path))
    settings = settings.changed(schedules={"jobs": {"push_tickets": {"interval_seconds": DEMO_PUSH_SECONDS}}})
    dispatch_db = Path(PROJECT_ROOT / "var" / "dispatch.db")
    with ExitStack() as stack:
        stack.enter_context(demo_children(ports, dispatch_db))
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
        serve_until_stopped(create_app(settings), port)


def serve_until_stopped(app: Any, port: int) -> None:
    """Serve ``app`` on loopback in the foreground until Ctrl-C or SIGTERM.

    On SIGTERM uvicorn stops, then raises the signal again: inside demo_children that unwinds the demo.
    """
    import uvicorn

    with suppress(KeyboardInterrupt):
        # proxy_headers off: the app honours X-Forwarded-For only from review.trusted_proxies.
        uvicorn.run(app, host=LOOPBACK, port=port, log_level="warning", proxy_headers=False)
