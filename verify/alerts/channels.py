"""The configured channels, their secrets read from the environment, and sending one alert through one
(a webhook over httpx, e-mail over smtplib). A failed send raises DeliveryError with a short reason."""

from __future__ import annotations

import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import httpx

from settings import AlertChannelSettings, SecretError, Settings, WebhookFormat
from storage.vocabulary import AlertKind
from verify.alerts.formats import (
    AlertMessage,
    dingtalk_body,
    dingtalk_signed_url,
    email_message,
    generic_body,
    wecom_body,
)

#: A failed send's reason is kept this short (it may quote a server's answer).
MAX_ERROR_CHARS = 300


class DeliveryError(Exception):
    """A send that did not reach its target; the message is one short line for the outbox."""


@dataclass(frozen=True)
class Channel:
    """One configured channel with its secrets resolved: what it takes and how it sends."""

    name: str
    config: AlertChannelSettings
    url: str | None = None
    secret: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    def takes(self, kind: AlertKind) -> bool:
        return not self.config.events or kind in self.config.events


def _secret(name: str, key: str, variable: str | None, env: Mapping[str, str]) -> str | None:
    if variable is None:
        return None
    value = env.get(variable, "")
    if not value:
        raise SecretError(f"alerts.channels.{name}.{key}: environment variable {variable} is not set")
    return value


def configured_channels(settings: Settings, env: Mapping[str, str]) -> list[Channel]:
    """Every channel of ``alerts.channels`` with its secrets from ``env``; SecretError (one line naming
    the channel and the variable) when one is unset, before anything is sent."""
    channels = []
    for name, config in settings.alerts.channels.items():
        url = config.url or _secret(name, "url_env", config.url_env, env)
        secret = _secret(name, "secret_env", config.secret_env, env)
        password = _secret(name, "password_env", config.password_env, env)
        channels.append(Channel(name, config, url, secret, password))
    return channels


#: How a test (or a caller) gets "now" in milliseconds for DingTalk's signature.
Millis = Callable[[], int]


def now_millis() -> int:
    return int(time.time() * 1000)


def _robot_answer(response: httpx.Response) -> None:
    """WeCom and DingTalk answer 200 even when they refuse a message; errcode 0 is the only success."""
    try:
        answer = response.json()
    except ValueError:
        return  # not a robot's JSON (a proxy, a test receiver): the 2xx status is the answer
    if isinstance(answer, dict) and answer.get("errcode", 0) != 0:
        raise DeliveryError(f"robot refused: errcode {answer.get('errcode')} {answer.get('errmsg', '')}")


def send_webhook(
    channel: Channel, message: AlertMessage, client: httpx.Client, millis: Millis = now_millis
) -> None:
    """POST the alert in the channel's format; DeliveryError for an unreachable target or a refusal."""
    config = channel.config
    assert channel.url is not None  # configured_channels resolved url or url_env
    url = channel.url
    if config.format == WebhookFormat.WECOM:
        body = wecom_body(message, config.message_type)
    elif config.format == WebhookFormat.DINGTALK:
        body = dingtalk_body(message, config.message_type)
        if channel.secret:
            url = dingtalk_signed_url(url, channel.secret, millis())
    else:
        body = generic_body(message)
    try:
        response = client.post(url, json=body)
    except httpx.HTTPError as error:
        raise DeliveryError(f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]) from error
    if not response.is_success:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}"[:MAX_ERROR_CHARS])
    if config.format in (WebhookFormat.WECOM, WebhookFormat.DINGTALK):
        _robot_answer(response)


def send_email(channel: Channel, message: AlertMessage, timeout: float) -> None:
    """Send the alert over SMTP (STARTTLS, implicit TLS or plain on loopback), signing in when a
    username is configured; DeliveryError for any refusal or network failure."""
    config = channel.config
    assert config.smtp_host and config.sender  # the channel's validator
    mail = email_message(message, config.sender, config.to)
    try:
        if config.security == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                config.smtp_host, config.smtp_port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=timeout)
        with smtp:
            if config.security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if config.username:
                smtp.login(config.username, channel.password or "")
            smtp.send_message(mail)
    except (OSError, smtplib.SMTPException) as error:
        raise DeliveryError(f"{type(error).__name__}: {error}"[:MAX_ERROR_CHARS]) from error


def send(
    channel: Channel, message: AlertMessage, client: httpx.Client, timeout: float, millis: Millis = now_millis
) -> None:
    """Send one alert through one channel."""
    if channel.config.kind == "email":
        send_email(channel, message, timeout)
    else:
        send_webhook(channel, message, client, millis)
