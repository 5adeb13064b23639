"""The `weisu` command: wires the stages together (as do schedules.py and demo.py, through bootstrap.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bootstrap import (
    StartupError,
    initialise_database,
    require_current_schema,
    session_factory,
    startup_settings,
)
from classify.evaluation_terms import EvaluationTask
from settings import Settings
from storage.vocabulary import RequestType, Role
from verify.export_terms import CaseProgress, FileFormat

if TYPE_CHECKING:
    from classify.detection import DetectSummary

app = typer.Typer(
    help="weisu (未诉): find livelihood complaints before they are filed.",
    no_args_is_help=True,
)
users_app = typer.Typer(help="Manage analyst, supervisor and admin accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
report_app = typer.Typer(help="Class-case (类案) reports.", no_args_is_help=True)
app.add_typer(report_app, name="report")
console = Console()
#: Progress bars go to stderr, so stdout keeps only the results (and nothing at all under --quiet).
progress_console = Console(stderr=True)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="config file (default: config.yaml or $WEISU_CONFIG)")
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="no progress bar and no summary, only errors and the exit code (cron)"
    ),
]


@contextmanager
def _progress(description: str, quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar told (done, total) by the stage doing the work; nothing under --quiet, and nothing
    when stderr is not a terminal (a bar redrawn into a log file or a pipe is noise there)."""
    if quiet or not progress_console.is_terminal:
        yield lambda _done, _total: None
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    # Transient: once the work ends the bar goes, leaving the summary or the one-line error alone.
    with Progress(*columns, console=progress_console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@contextmanager
def _steps(description: str, steps: Sequence[str], quiet: bool) -> Iterator[Callable[[str], None]]:
    """A progress bar over a stage's named steps, told each step as it starts; nothing under --quiet."""
    with _progress(description, quiet) as update:
        names = list(steps)

        def start(step: str) -> None:
            update(names.index(step), len(names))
            if not quiet and progress_console.is_terminal:
                progress_console.log(f"{description}: {step}")

        yield start
        update(len(names), len(names))


def _settings(config: Path | None, *secrets: str) -> Settings:
    """The validated settings; ``secrets`` names the ones the command cannot run without (see
    settings.SECRET_VARIABLES: serve signs cookies with secret_key, crawl and scheduler pseudonymise
    authors with author_hash_key). A problem is one line and exit 2, before anything is touched."""
    try:
        return startup_settings(config, *secrets)
    except StartupError as error:
        typer.echo(f"weisu: {error}", err=True)
        raise typer.Exit(2) from None


def _only_reading(command: str, settings: Settings) -> None:
    """A command that only reads never migrates: one line and exit 2 unless the database is at head."""
    try:
        require_current_schema(settings)
    except StartupError as error:
        _fail(command, error)


def _require_simulators(command: str) -> None:
    """The simulators live in fixtures/, which the wheel leaves out: without them, one line says so."""
    if importlib.util.find_spec("fixtures") is None:
        reason = "the simulators are not installed: they come with the source tree (fixtures/), not the wheel"
        typer.echo(f"weisu {command}: {reason}", err=True)
        raise typer.Exit(2)


def _stage_errors() -> tuple[type[Exception], ...]:
    """Errors a stage raises for bad input or state: shown as one line, never as a traceback."""
    from classify.evaluation import EvaluationError
    from classify.model import ModelError

    return (EvaluationError, ModelError)


@app.command()
def init(
    config: ConfigOption = None,
    admin: Annotated[str | None, typer.Option(help="create this admin account (asks for a password)")] = None,
) -> None:
    """Create or upgrade the database to the latest schema."""
    settings = _settings(config)
    initialise_database(settings)
    if admin:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
        _create_user(settings, admin, password, Role.ADMIN)
    console.print(f"database ready: {settings.database_url}")


def _fail(command: str, error: Exception) -> NoReturn:
    typer.echo(f"weisu {command}: {error}", err=True)
    raise typer.Exit(2)


def _scope(settings: Settings):  # type: ignore[no-untyped-def]
    from storage.db import session_scope

    return session_scope(session_factory(settings))


@app.command()
def simulate(
    port: Annotated[int, typer.Option(help="loopback port")] = 8010,
    seed: Annotated[int, typer.Option(help="seed of the simulated world")] = 42,
    host: Annotated[str, typer.Option(help="address to bind (loopback only)")] = "127.0.0.1",
    error_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of requests answered 503")] = 0.0,
    throttle_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of requests answered 429 + Retry-After")
    ] = 0.0,
    malformed_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of JSON answers cut off halfway")
    ] = 0.0,
    fault_seed: Annotated[int, typer.Option(help="seed of the fault draws")] = 0,
    wall: Annotated[
        list[str] | None,
        typer.Option(
            help="KEY=KIND walls platform KEY (login_redirect, login_page, captcha, expired_cookie);"
            " repeatable"
        ),
    ] = None,
) -> None:
    """Serve every simulated platform on one loopback port (truth at /_truth), optionally with seeded
    faults and walls (the same as POST /_faults and /_walls later)."""
    _require_simulators("simulate")
    from fixtures.simulator.server import serve

    faults = {
        "error_rate": str(error_rate),
        "throttle_rate": str(throttle_rate),
        "malformed_rate": str(malformed_rate),
        "seed": str(fault_seed),
    }
    walls = dict(item.partition("=")[::2] for item in wall or [])
    try:
        serve(host=host, port=port, seed=seed, faults=faults, walls=walls)
    except ValueError as error:
        typer.echo(f"weisu simulate: {error}", err=True)
        raise typer.Exit(2) from None


@app.command("simulate-dispatch")
def simulate_dispatch(
    port: Annotated[int, typer.Option(help="loopback port")] = 8020,
    db: Annotated[Path, typer.Option(help="SQLite file holding received requests")] = Path("var/dispatch.db"),
    host: Annotated[str, typer.Option(help="address to bind (loopback only)")] = "127.0.0.1",
    error_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of POSTs answered 500")] = 0.0,
    throttle_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of POSTs answered 429 + Retry-After")
    ] = 0.0,
    retry_after: Annotated[int, typer.Option(min=0, help="Retry-After seconds of a 429")] = 1,
    drop_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of POSTs stored, then the connection dropped")
    ] = 0.0,
    slow_rate: Annotated[float, typer.Option(min=0.0, max=1.0, help="share of POSTs answered late")] = 0.0,
    slow_seconds: Annotated[float, typer.Option(min=0.0, help="how late a slow answer comes")] = 2.0,
    return_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="share of stored requests returned (退单) to another unit")
    ] = 0.0,
    seed: Annotated[int, typer.Option(help="seed of the fault draws")] = 0,
    ignore_idempotency_key: Annotated[
        bool, typer.Option(help="store a request again when asked twice, as a plain Open311 server may")
    ] = False,
) -> None:
    """Serve the Open311 GeoReport v2 dispatch-system simulator, optionally with seeded faults."""
    _require_simulators("simulate-dispatch")
    from fixtures.dispatch_simulator.faults import FaultPlan
    from fixtures.dispatch_simulator.server import serve

    try:
        plan = FaultPlan(
            error_rate=error_rate,
            throttle_rate=throttle_rate,
            retry_after_seconds=retry_after,
            drop_after_store_rate=drop_rate,
            slow_rate=slow_rate,
            slow_seconds=slow_seconds,
            return_rate=return_rate,
            seed=seed,
        )
    except ValueError as error:
        typer.echo(f"weisu simulate-dispatch: {error}", err=True)
        raise typer.Exit(2) from None
    faulty = error_rate or throttle_rate or drop_rate or slow_rate or return_rate
    serve(
        host=host,
        port=port,
        db_path=db,
        fault_plan=plan if faulty else None,
        honour_idempotency_key=not ignore_idempotency_key,
    )


@app.command()
def crawl(
    platforms: Annotated[list[str] | None, typer.Argument(help="platform keys from config.yaml")] = None,
    all_platforms: Annotated[
        bool, typer.Option("--all", help="crawl every enabled platform an admin has not paused")
    ] = False,
    config: ConfigOption = None,
    quiet: QuietOption = False,
    distributed: Annotated[
        bool,
        typer.Option("--distributed", help="be one worker of a sweep shared through Redis (WEISU_REDIS_URL)"),
    ] = False,
) -> None:
    """Crawl platforms into the posts table (a second crawl of the same content adds nothing)."""
    settings = _settings(config, "author_hash_key")
    if not platforms and not all_platforms:
        typer.echo("weisu crawl: name platforms or pass --all", err=True)
        raise typer.Exit(2)
    unknown = sorted(set(platforms or []) - set(settings.platforms))
    if unknown:
        typer.echo(f"weisu crawl: unknown platform(s): {', '.join(unknown)}", err=True)
        raise typer.Exit(2)
    from crawlers.runner import run_crawl

    initialise_database(settings)
    if distributed:
        from crawlers.distributed import DistributedError, run_worker

        try:
            results = run_worker(settings, None if all_platforms else list(platforms or []))
        except DistributedError as error:
            _fail("crawl", error)
    else:
        with _progress("抓取平台", quiet) as on_progress:
            results = run_crawl(
                settings, None if all_platforms else list(platforms or []), on_progress=on_progress
            )
    if quiet:
        return
    table = Table("platform", "status", "requests", "items", "new posts", "errors", title="crawl")
    for result in results:
        table.add_row(
            result.platform_id,
            result.status,
            str(result.requests),
            str(result.items),
            str(result.posts_stored),
            str(result.errors),
        )
    console.print(table)


@app.command()
def train(config: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Train the detector from the labelled corpus in fixtures/ and activate it."""
    from classify.training import TRAINING_STEPS, train_and_activate

    settings = _settings(config)
    initialise_database(settings)
    try:
        with _scope(settings) as session, _steps("训练", TRAINING_STEPS, quiet) as on_step:
            report = train_and_activate(settings, session=session, on_step=on_step)
    except _stage_errors() as error:
        _fail("train", error)
    if not quiet:
        console.print(report.summary())


@app.command()
def retrain(config: ConfigOption = None, quiet: QuietOption = False) -> None:
    """Retrain on the corpus plus analysts' decisions; activate the new model only if it is not worse."""
    from classify.retraining import retrain as retrain_detector
    from classify.training import TRAINING_STEPS

    settings = _settings(config)
    initialise_database(settings)
    try:
        with _scope(settings) as session, _steps("重新训练", TRAINING_STEPS, quiet) as on_step:
            report = retrain_detector(settings, session=session, on_step=on_step)
    except _stage_errors() as error:
        _fail("retrain", error)
    if not quiet:
        console.print(report.summary())


@app.command()
def evaluate(
    data: Annotated[Path, typer.Option("--data", help="CSV with columns text, label (and optional title)")],
    task: Annotated[
        EvaluationTask,
        typer.Option(help="what to score (type labels: 投诉 举报 求助 反映问题 咨询 咨询问题 建议)"),
    ] = EvaluationTask.CATEGORY,
    as_json: Annotated[bool, typer.Option("--json", help="end with one JSON object on its own line")] = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="write a PNG here: a reliability diagram for relevance, else a confusion matrix"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Evaluate the active model on a labelled CSV: per-class P/R/F1, accuracy, macro-F1, and for
    relevance and type the expected calibration error."""
    settings = _settings(config)
    from classify.evaluation import evaluate_file, format_report

    try:
        result = evaluate_file(settings, data, task=task, plot=plot)
    except _stage_errors() as error:
        _fail("evaluate", error)
    console.print(format_report(result))
    if as_json:
        # Plain print so nothing wraps or colours the machine-readable last line.
        print(json.dumps(result, ensure_ascii=False))


@app.command()
def detect(
    config: ConfigOption = None,
    quiet: QuietOption = False,
    worker: Annotated[
        bool,
        typer.Option(
            "--worker",
            help="keep running as one of any number of detection workers (one per process, on any machine"
            " sharing the database): claim batches of new posts as they arrive until SIGTERM/SIGINT",
        ),
    ] = False,
    batch_size: Annotated[
        int | None,
        typer.Option(min=1, max=10_000, help="with --worker: posts claimed per transaction (default: 500)"),
    ] = None,
    idle_exit: Annotated[
        float | None,
        typer.Option(min=0.0, help="with --worker: stop after this many seconds without new posts"),
    ] = None,
) -> None:
    """Classify new posts and turn the relevant ones into leads with their evidence."""
    from bootstrap import detect_and_stamp

    for name, value in (("--batch-size", batch_size), ("--idle-exit", idle_exit)):
        if value is not None and not worker:
            raise typer.BadParameter("only with --worker", param_hint=name)
    settings = _settings(config)
    initialise_database(settings)
    try:
        if worker:
            summary = _detect_worker(settings, batch_size, idle_exit)
        else:
            with _progress("识别帖子", quiet) as on_progress:
                summary = detect_and_stamp(settings, session_factory(settings), on_progress=on_progress)
    except _stage_errors() as error:
        _fail("detect", error)
    if not quiet:
        console.print(summary.summary())


def _detect_worker(settings: Settings, batch_size: int | None, idle_exit: float | None) -> DetectSummary:
    """`weisu detect --worker`: pages until stopped; SIGTERM (systemd, compose) ends it between pages."""
    import signal
    import threading

    from classify.detection import run_worker
    from storage.db import session_scope
    from verify.sla import stamp_deadlines

    factory = session_factory(settings)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    merged = 0

    def stamp(summary: DetectSummary) -> None:
        nonlocal merged
        # Verify owns deadlines: stamp those of the leads just made, or just made urgent.
        if summary.leads_created + summary.leads_updated > merged:
            merged = summary.leads_created + summary.leads_updated
            with session_scope(factory) as session:
                stamp_deadlines(session, settings.review)

    return run_worker(settings, factory, batch_size, idle_exit=idle_exit, stop=stop, on_page=stamp)


@app.command()
def push(
    requeue: Annotated[
        list[int] | None,
        typer.Option(help="put this failed ticket back in the outbox first, payload rebuilt (repeatable)"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Send queued tickets to the dispatch system (Open311 POST /requests.json)."""
    import httpx

    from storage.db import session_scope
    from verify.pusher import push_pending, unknown_service_codes
    from verify.tickets import TicketError, requeue_failed

    settings = _settings(config)
    # Writes tickets' states: migrates like every writing command, never pushes against an old schema.
    initialise_database(settings)
    factory = session_factory(settings)
    for ticket_id in requeue or []:
        try:
            with session_scope(factory) as session:
                requeue_failed(session=session, ticket_id=ticket_id, actor="cli", settings=settings)
        except TicketError as error:
            typer.echo(f"weisu push: {error}", err=True)
            raise typer.Exit(2) from None
    try:
        unknown = unknown_service_codes(settings)
    except httpx.HTTPError as error:
        typer.echo(f"weisu push: could not read the dispatch system's services: {error}", err=True)
    else:
        if unknown:  # the affected tickets will fail with the server's message; the others still go
            typer.echo(
                f"weisu push: service codes unknown to the dispatch system: {', '.join(unknown)}", err=True
            )
    summary = push_pending(settings, factory)
    console.print(summary.summary())


@app.command()
def sync(config: ConfigOption = None) -> None:
    """Read open tickets' status back from the dispatch system (open/closed, notes, reassignment)."""
    from verify.sync import sync_statuses

    settings = _settings(config)
    # Writes tickets' states: migrates like every writing command, never syncs against an old schema.
    initialise_database(settings)
    summary = sync_statuses(settings, session_factory(settings))
    console.print(summary.summary())


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="file to write")],
    fmt: Annotated[FileFormat, typer.Option("--format", help="file format")] = FileFormat.CSV,
    since: Annotated[str | None, typer.Option(help="first day verified, YYYY-MM-DD (Shanghai)")] = None,
    until: Annotated[str | None, typer.Option(help="last day verified, YYYY-MM-DD (Shanghai)")] = None,
    category: Annotated[str | None, typer.Option(help="only this category, e.g. 城乡建设")] = None,
    district: Annotated[str | None, typer.Option(help="only this district, e.g. 南山区")] = None,
    state: Annotated[
        CaseProgress | None, typer.Option(help="only cases at this stage at the dispatch system")
    ] = None,
    request_type: Annotated[
        RequestType | None,
        typer.Option("--type", help="only this request type"),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Export verified cases (Chinese column headers) as CSV, XLSX or Parquet."""
    from datetime import date

    from verify.days import local_zone
    from verify.exports import ExportError, cases_frame, write_frame

    settings = _settings(config)
    try:
        first = date.fromisoformat(since) if since else None
        last = date.fromisoformat(until) if until else None
    except ValueError as error:
        _fail("export", error)
    _only_reading("export", settings)
    try:
        with _scope(settings) as session:
            frame = cases_frame(
                session,
                since=first,
                until=last,
                category=category,
                district=district,
                state=state,
                request_type=request_type,
                zone=local_zone(settings),
            )
        write_frame(frame, fmt, output)
    except (ExportError, ValueError) as error:
        _fail("export", error)
    console.print(f"export: {len(frame)} cases → {output}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 8000,
    config: ConfigOption = None,
) -> None:
    """Serve the analysts' review app and the JSON API."""
    import uvicorn

    from verify.web.app import create_app

    settings = _settings(config, "secret_key")
    initialise_database(settings)
    application = create_app(settings)
    # uvicorn logs only warnings here, so without this line nothing says where the app is.
    typer.echo(f"weisu serve: review app at {served_url(host, port)} (Ctrl-C stops it)")
    # proxy_headers off: uvicorn would otherwise trust X-Forwarded-For from any loopback peer; the app
    # honours it only from review.trusted_proxies.
    uvicorn.run(application, host=host, port=port, log_level="warning", proxy_headers=False)


def served_url(host: str, port: int) -> str:
    """The URL a browser opens for ``host:port`` (an IPv6 address in brackets)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@app.command()
def platforms(
    as_json: Annotated[bool, typer.Option("--json", help="a JSON list of platforms, for machines")] = False,
    config: ConfigOption = None,
) -> None:
    """List every configured platform with its last crawl run, counts and layout-change flag."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import select

    from crawlers.extensions.health import TABLE_COLUMNS, platform_overview
    from storage.models import Platform
    from storage.queries import latest_runs

    settings = _settings(config)
    _only_reading("platforms", settings)
    with _scope(settings) as session:
        paused = {p.id: p.paused_reason for p in session.scalars(select(Platform).where(Platform.paused))}
        rows = platform_overview(settings, latest_runs(session), paused)
    if as_json:
        typer.echo(json.dumps([row.as_json() for row in rows], ensure_ascii=False, indent=1))
        return
    table = Table(*TABLE_COLUMNS, title="platforms")
    for row in rows:
        table.add_row(*row.cells(ZoneInfo(settings.schedules.timezone)))
    console.print(table)


@app.command()
def status(config: ConfigOption = None) -> None:
    """Print the stage counts: posts, leads, urgent leads, tickets."""
    from storage.queries import stage_counts

    settings = _settings(config)
    _only_reading("status", settings)
    with _scope(settings) as session:
        counts = stage_counts(session)
    for key, value in counts.items():
        console.print(f"{key}: {value}")


@app.command()
def alerts(
    send: Annotated[
        bool, typer.Option("--send", help="derive new alerts and deliver what is due, once, now")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """List alert deliveries waiting or failed; --send first runs one delivery pass, as the scheduler does."""
    from settings import SecretError
    from storage.vocabulary import ALERT_KIND_LABELS, DELIVERY_STATE_LABELS
    from verify.alerts.delivery import deliver_alerts, open_deliveries
    from verify.days import local_zone

    settings = _settings(config)
    if send:
        initialise_database(settings)
        try:
            counts = deliver_alerts(settings, session_factory(settings))
        except SecretError as error:
            _fail("alerts", error)
        console.print(", ".join(f"{key}: {value}" for key, value in counts.items()))
    else:
        _only_reading("alerts", settings)
    zone = local_zone(settings)
    table = Table("投递", "告警", "类型", "标题", "渠道", "状态", "尝试次数", "下次尝试", "最近错误")
    with _scope(settings) as session:
        for d in open_deliveries(session):
            table.add_row(
                str(d.id), str(d.alert_id), ALERT_KIND_LABELS[d.alert.kind], escape(d.alert.title),
                d.channel, DELIVERY_STATE_LABELS[d.state], str(d.attempts),
                d.next_attempt_at.astimezone(zone).strftime("%Y-%m-%d %H:%M"), escape(d.last_error or ""),
            )  # fmt: skip
    console.print(table)


@app.command()
def scheduler(config: ConfigOption = None) -> None:
    """Run the scheduled jobs (config.yaml schedules.jobs); keeping them in the database."""
    import os

    import schedules
    from settings import ConfigError, SecretError
    from verify.alerts.channels import configured_channels

    settings = _settings(config, "author_hash_key")
    try:
        schedules.check_job_table(settings, schedules.JOBS)
        # A channel's unset secret stops the scheduler now, not at the first alert.
        configured_channels(settings, os.environ)
    except (ConfigError, SecretError) as error:
        _fail("scheduler", error)
    initialise_database(settings)
    schedules.run_forever(settings)


@app.command()
def jobs(
    history: Annotated[bool, typer.Option("--history", help="list past runs instead of the jobs")] = False,
    job: Annotated[str | None, typer.Option("--job", help="with --history: only this job's runs")] = None,
    limit: Annotated[int, typer.Option(min=1, help="with --history: at most this many runs")] = 20,
    config: ConfigOption = None,
) -> None:
    """List each scheduled job with its next run and last outcome, or (--history) the past runs."""
    from zoneinfo import ZoneInfo

    from storage.job_runs import job_statuses, run_history
    from storage.vocabulary import JOB_OUTCOME_LABELS
    from verify.web.display import local_time

    settings = _settings(config)
    _only_reading("jobs", settings)
    zone = ZoneInfo(settings.schedules.timezone)
    plans = settings.schedules.jobs
    with _scope(settings) as session:
        if history or job is not None:  # naming a job asks for its runs
            runs = run_history(session, job_id=job, limit=limit)
            table = Table("任务", "开始", "结束", "结果", "计数", "错误", "主机:进程", title="运行记录")
            for run in runs:
                table.add_row(
                    run.job_id,
                    local_time(run.started_at, zone),
                    local_time(run.finished_at, zone),
                    JOB_OUTCOME_LABELS[run.outcome],
                    json.dumps(run.counts, ensure_ascii=False) if run.counts else "—",
                    (run.error or "—")[:200],
                    f"{run.host}:{run.pid}",
                )
            console.print(table)
            return
        statuses = job_statuses(session, plans)
    table = Table("任务", "名称", "计划", "启用", "下次运行", "上次结果", "上次开始", title="定时任务")
    for status in statuses:
        plan = plans.get(status.job_id)
        last = status.last_run
        table.add_row(
            status.job_id,
            plan.label if plan else "—",
            plan.every if plan else "—",
            ("是" if plan.enabled else "否") if plan else "不在配置中",
            local_time(status.next_run_at, zone),
            JOB_OUTCOME_LABELS[last.outcome] if last else "—",
            local_time(last.started_at, zone) if last else "—",
        )
    console.print(table)


@app.command()
def demo(
    port: Annotated[
        int, typer.Option(min=1, max=65515, help="review app port; the simulators use PORT+10 and PORT+20")
    ] = 8000,
    config: ConfigOption = None,
) -> None:
    """Start both simulators, crawl, detect, and serve the review app until Ctrl-C."""
    _require_simulators("demo")
    from demo import DemoError, run_demo

    try:
        run_demo(_settings(config), port=port)
    except DemoError as error:
        _fail("demo", error)


@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="login name")],
    role: Annotated[Role, typer.Option(help="what the account may do")] = Role.ANALYST,
    password: Annotated[str | None, typer.Option(help="password (asked for when omitted)")] = None,
    config: ConfigOption = None,
) -> None:
    """Create an account."""
    settings = _settings(config)
    initialise_database(settings)
    secret = password or typer.prompt("password", hide_input=True, confirmation_prompt=True)
    _create_user(settings, name, secret, role)
    console.print(f"created {role} {name}")


@users_app.command("token")
def users_token(
    name: Annotated[str, typer.Argument(help="the account the token acts as")],
    label: Annotated[str, typer.Option(help="what the token is for, e.g. the client's name")] = "",
    config: ConfigOption = None,
) -> None:
    """Create an API token for /api/v1 (Bearer); printed once, only its hash is stored."""
    from verify.users import UserError, create_token

    settings = _settings(config)
    initialise_database(settings)
    try:
        with _scope(settings) as session:
            token = create_token(session, name, label)
    except UserError as error:
        typer.echo(f"weisu users: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(token)


@report_app.command("weekly")
def report_weekly(
    week: Annotated[
        str | None, typer.Option(help="ISO week YYYY-Www, e.g. 2026-W48 (default: the last complete week)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="folder to write into (default: report.out_dir)")] = None,
    config: ConfigOption = None,
    quiet: QuietOption = False,
) -> None:
    """Write the weekly class-case report (HTML page, XLSX workbook, PNG charts) into OUT/<week>/."""
    from verify.reports.weekly import write_weekly_report
    from verify.reports.weeks import IsoWeek, WeekError

    settings = _settings(config)
    try:
        chosen = IsoWeek.parse(week) if week else None
    except WeekError as error:
        _fail("report weekly", error)
    _only_reading("report weekly", settings)
    with _progress("类案周报", quiet) as update:
        update(0, 1)
        folder = write_weekly_report(settings, session_factory(settings), chosen, out=out)
        update(1, 1)
    if quiet:
        return
    console.print(f"report weekly: {folder}")
    for path in sorted(folder.iterdir()):
        console.print(f"  {path.name}")


def _create_user(settings: Settings, name: str, password: str, role: Role) -> None:
    from verify.users import UserError, check_new_password, create_user

    try:
        check_new_password(password)  # the admin page's rule (one function for both)
        with _scope(settings) as session:
            create_user(session, username=name, password=password, role=role)
    except UserError as error:
        typer.echo(f"weisu users: {error}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    sys.exit(app())


if __name__ == "__main__":
    main()
