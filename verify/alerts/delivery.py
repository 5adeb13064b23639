"""The alerts outbox: record each new event once (its key is unique) with one delivery per channel, then
send what is due, one leased delivery at a time, retrying with exponential backoff until the tries run
out and the delivery shows as failed on the alerts page (where a supervisor can send it again).

`deliver_alerts` is the one entry point the scheduler calls (every 30 seconds: an urgent lead reaches
people within a minute of detection) and `weisu alerts --send` runs once.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from settings import AlertSettings, Settings
from storage.base import utcnow
from storage.models import Alert, AlertDelivery
from storage.queries import insert_alert
from storage.vocabulary import DeliveryState
from verify.alerts.channels import Channel, DeliveryError, Millis, configured_channels, now_millis, send
from verify.alerts.events import Event, derive_events
from verify.alerts.formats import AlertMessage

log = logging.getLogger("weisu.alerts")
#: Deliveries sent per pass at most; the rest wait for the next pass (30 s later).
MAX_PER_PASS = 200


def record_events(
    session: Session, events: Sequence[Event], channels: Sequence[Channel], now: datetime
) -> int:
    """Store the events not stored yet, each with a pending delivery per channel that takes its kind;
    how many were new. Safe to run concurrently: the event key decides, once."""
    new = 0
    for event in events:
        values = {
            "event_key": event.key, "kind": event.kind, "title": event.title[:200], "body": event.body,
            "lead_id": event.lead_id, "platform_id": event.platform_id, "created_at": now,
        }  # fmt: skip
        alert_id = insert_alert(session, values)
        if alert_id is None:
            continue
        new += 1
        for channel in channels:
            if channel.takes(event.kind):
                session.add(AlertDelivery(alert_id=alert_id, channel=channel.name, next_attempt_at=now))
    session.flush()
    return new


def backoff(attempts: int, rules: AlertSettings) -> timedelta:
    """The wait after the ``attempts``-th failed try: base × 2^(attempts-1), at most the configured cap."""
    seconds = rules.backoff_base_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, rules.backoff_max_seconds))


def _claim(session: Session, delivery_id: int, now: datetime, lease: float) -> bool:
    """Lease a due delivery for this pass; False when another pass holds it or it is no longer due."""
    result = session.execute(
        update(AlertDelivery)
        .where(
            AlertDelivery.id == delivery_id,
            AlertDelivery.state == DeliveryState.PENDING,
            AlertDelivery.next_attempt_at <= now,
            or_(AlertDelivery.claim_expires_at.is_(None), AlertDelivery.claim_expires_at < now),
        )
        .values(claim_expires_at=now + timedelta(seconds=lease))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(getattr(result, "rowcount", 0) == 1)


def _outcome(
    session: Session, delivery: AlertDelivery, error: str | None, now: datetime, rules: AlertSettings
) -> str:
    delivery.attempts += 1
    delivery.claim_expires_at = None
    if error is None:
        delivery.state, delivery.sent_at, delivery.last_error = DeliveryState.SENT, now, None
        return "sent"
    delivery.last_error = error[:500]
    if delivery.attempts >= rules.max_attempts:
        delivery.state = DeliveryState.FAILED
        return "failed"
    delivery.next_attempt_at = now + backoff(delivery.attempts, rules)
    return "retrying"


def deliver_due(
    factory: sessionmaker[Session],
    channels: Sequence[Channel],
    rules: AlertSettings,
    client: httpx.Client,
    clock: Callable[[], datetime],
    millis: Millis | None = None,
) -> dict[str, int]:
    """Send every delivery due now, each leased in its own short transaction (no lock is held while
    sending); counts of sent, retrying (will be tried again) and failed (tries exhausted)."""
    counts = {"sent": 0, "retrying": 0, "failed": 0}
    by_name = {channel.name: channel for channel in channels}
    started = clock()
    with factory() as session:
        due = list(
            session.scalars(
                select(AlertDelivery.id)
                .where(AlertDelivery.state == DeliveryState.PENDING, AlertDelivery.next_attempt_at <= started)
                .order_by(AlertDelivery.next_attempt_at, AlertDelivery.id)
                .limit(MAX_PER_PASS)
            )
        )
    for delivery_id in due:
        with factory() as session:
            if not _claim(session, delivery_id, clock(), rules.lease_seconds):
                continue
            delivery = session.get(AlertDelivery, delivery_id)
            assert delivery is not None  # just claimed
            alert = delivery.alert
            message = AlertMessage(alert.event_key, alert.kind, alert.title, alert.body, alert.created_at)
            channel_name = delivery.channel
            # End the transaction before sending: on SQLite it holds the write lock, which crawls need.
            session.commit()
            error = None
            try:
                channel = by_name.get(channel_name)
                if channel is None:
                    raise DeliveryError(f"channel {channel_name} is no longer configured")
                send(channel, message, client, rules.timeout_seconds, millis or now_millis)
            except DeliveryError as failure:
                error = str(failure)
            except Exception as failure:  # a bug in one channel must not stop the others' deliveries
                log.exception("alert delivery %s through %s failed", delivery_id, channel_name)
                error = f"{type(failure).__name__}: {failure}"
            delivery = session.get(AlertDelivery, delivery_id)
            assert delivery is not None  # rows are never deleted while leased
            counts[_outcome(session, delivery, error, clock(), rules)] += 1
            session.commit()
    return counts


def deliver_alerts(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    clock: Callable[[], datetime] = utcnow,
    env: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    millis: Millis | None = None,
) -> dict[str, int]:
    """One pass: derive the events the database shows, record the new ones, send what is due.

    Raises settings.SecretError (one line) when a channel's secret variable is unset, before anything
    is recorded or sent. Returns {"new": …, "sent": …, "retrying": …, "failed": …}.
    """
    channels = configured_channels(settings, os.environ if env is None else env)
    with session_factory() as session:
        new = record_events(session, derive_events(session, settings, clock()), channels, clock())
        session.commit()
    rules = settings.alerts
    with httpx.Client(timeout=httpx.Timeout(rules.timeout_seconds), transport=transport) as client:
        counts = deliver_due(session_factory, channels, rules, client, clock, millis)
    return {"new": new, **counts}


def retry_delivery(session: Session, delivery_id: int, now: datetime) -> AlertDelivery | None:
    """Send a failed delivery again at the next pass, with a fresh set of tries; None when there is no
    failed delivery of that id."""
    delivery = session.get(AlertDelivery, delivery_id)
    if delivery is None or delivery.state != DeliveryState.FAILED:
        return None
    delivery.state, delivery.attempts, delivery.next_attempt_at = DeliveryState.PENDING, 0, now
    delivery.claim_expires_at = None
    session.flush()
    return delivery


def recent_alerts(session: Session, limit: int = 100) -> list[Alert]:
    """The newest alerts, newest first, with their deliveries."""
    query = select(Alert).options(selectinload(Alert.deliveries)).order_by(Alert.id.desc()).limit(limit)
    return list(session.scalars(query))


def open_deliveries(session: Session) -> list[AlertDelivery]:
    """Deliveries not sent: failed first (they need a person), then pending by next try."""
    query = (
        select(AlertDelivery)
        .options(selectinload(AlertDelivery.alert))
        .where(AlertDelivery.state.in_((DeliveryState.FAILED, DeliveryState.PENDING)))
        .order_by(AlertDelivery.state, AlertDelivery.next_attempt_at, AlertDelivery.id)
    )
    return list(session.scalars(query))
