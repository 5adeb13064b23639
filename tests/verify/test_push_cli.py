"""`weisu push --requeue` and `weisu simulate-dispatch`'s fault options, through the command line."""

from __future__ import annotations

from pathlib import Path

import httpx
from typer.testing import CliRunner

from cli import app
from fixtures.dispatch_simulator.app import SimulatorOptions, configured_services
from fixtures.dispatch_simulator.app import create_app as create_simulator
from fixtures.serving import serve_in_thread
from settings import load_settings
from storage.db import make_engine, make_session_factory, session_scope
from storage.models import Ticket, TicketState
from verify import workflow

runner = CliRunner()


def test_push_requeues_a_failed_ticket_and_delivers_it(tmp_path: Path, lead_adder) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    settings = load_settings(env=env)
    factory = make_session_factory(make_engine(settings.database_url))
    with session_scope(factory) as session:
        lead = lead_adder(session)
        workflow.claim(session=session, lead_id=lead.id, actor="alice", settings=settings)
        ticket = workflow.verify_and_promote(
            session=session, lead_id=lead.id, actor="alice", settings=settings
        )
        ticket.state, ticket.last_error = TicketState.FAILED, "HTTP 400: unknown service_code: 'x'"
        ticket_id = ticket.id
    with serve_in_thread(create_simulator(tmp_path / "dispatch.db")) as url:
        env["WEISU_DISPATCH_URL"] = url
        result = runner.invoke(app, ["push", "--requeue", str(ticket_id)], env=env)
        stored = httpx.get(f"{url}/_requests").json()["requests"]
    assert (result.exit_code, result.stdout) == (0, "push: 1 attempted, 1 sent, 0 to retry, 0 failed\n")
    assert result.stderr == ""
    assert [r["idempotency_key"] for r in stored] == [f"weisu-lead-{lead.id}"]
    with session_scope(factory) as session:
        row = session.get(Ticket, ticket_id)
        assert (row.state, row.service_request_id) == (TicketState.SENT, "sr-000001")


def test_push_refuses_to_requeue_a_ticket_that_is_not_there(tmp_path: Path) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    result = runner.invoke(app, ["push", "--requeue", "999"], env=env)
    assert (result.exit_code, result.stderr) == (2, "weisu push: no ticket 999\n")


def test_simulate_dispatch_refuses_fault_rates_above_one_in_total() -> None:
    result = runner.invoke(app, ["simulate-dispatch", "--error-rate", "0.7", "--drop-rate", "0.7"])
    assert (result.exit_code, result.stderr) == (
        2,
        "weisu simulate-dispatch: fault rates must be ≥ 0 and add up to at most 1, not 1.4\n",
    )


def test_push_names_configured_service_codes_the_dispatch_system_does_not_offer(tmp_path: Path) -> None:
    env = {"WEISU_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}"}
    assert runner.invoke(app, ["init"], env=env).exit_code == 0
    services = {k: v for k, v in configured_services().items() if k not in ("health", "transport")}
    with serve_in_thread(
        create_simulator(tmp_path / "dispatch.db", SimulatorOptions(services=services))
    ) as url:
        result = runner.invoke(app, ["push"], env={**env, "WEISU_DISPATCH_URL": url})
    assert (result.exit_code, result.stdout) == (0, "push: 0 attempted, 0 sent, 0 to retry, 0 failed\n")
    assert result.stderr == "weisu push: service codes unknown to the dispatch system: health, transport\n"


def test_simulate_dispatch_ignore_idempotency_key_serves_a_simulator_that_stores_repeats(monkeypatch) -> None:
    served: list[dict[str, object]] = []
    monkeypatch.setattr("fixtures.dispatch_simulator.server.serve", lambda **kwargs: served.append(kwargs))
    assert runner.invoke(app, ["simulate-dispatch", "--ignore-idempotency-key"]).exit_code == 0
    assert runner.invoke(app, ["simulate-dispatch"]).exit_code == 0
    assert [kwargs["honour_idempotency_key"] for kwargs in served] == [False, True]
