"""Test receivers for alerts: a local webhook server answering a scripted list of statuses, and a real
local SMTP server (aiosmtpd) keeping every message it is given."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from fixtures.serving import free_port
from settings import AlertChannelSettings, Settings
from storage.db import session_factory_for
from storage.models import CrawlRun
from verify.alerts.delivery import deliver_alerts


@dataclass
class Received:
    """What a webhook receiver was sent: each request's path with query, and its JSON body."""

    paths: list[str] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    #: Statuses to answer, in order; the last one is repeated.
    statuses: list[int] = field(default_factory=lambda: [200])
    #: The body answered (a robot's {"errcode": 0, "errmsg": "ok"}).
    answer: dict[str, Any] = field(default_factory=lambda: {"errcode": 0, "errmsg": "ok"})


@contextmanager
def webhook_receiver(statuses: list[int] | None = None) -> Iterator[tuple[str, Received]]:
    """A threaded HTTP server on loopback: (its base URL, what it received)."""
    received = Received(statuses=statuses or [200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = int(self.headers.get("Content-Length", 0))
            received.paths.append(self.path)
            received.bodies.append(json.loads(self.rfile.read(length)))
            index = min(len(received.paths), len(received.statuses)) - 1
            payload = json.dumps(received.answer).encode()
            self.send_response(received.statuses[index])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


class _Keeper:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[arg-type]
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[tuple[int, _Keeper]]:
    """A real SMTP server on loopback (no TLS: the channel is configured with ``security: none``)."""
    keeper = _Keeper()
    port = free_port()
    controller = Controller(keeper, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, keeper
    finally:
        controller.stop()


def deliver_after_runs(
    settings: Settings, runs: Sequence[CrawlRun]
) -> tuple[Settings, dict[str, int], Received]:
    """One delivery pass 30 s after the newest of ``runs`` closed, to a webhook channel on a local receiver:
    (the settings with that channel, the pass's counts, what the receiver was sent)."""
    with webhook_receiver() as (url, received):
        settings = settings.changed(
            alerts={"channels": {"ops": AlertChannelSettings(kind="webhook", url=url + "/hook")}}
        )
        newest = max(run.finished_at for run in runs if run.finished_at)
        counts = deliver_alerts(
            settings,
            session_factory_for(settings.database_url),
            clock=lambda: newest + timedelta(seconds=30),
            env={},
        )
    return settings, counts, received
