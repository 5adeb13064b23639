"""An alert as each channel's message: weisu's generic JSON, the WeCom (企业微信) and DingTalk (钉钉) group
robots' markdown or text, and an e-mail (plain text plus HTML). Every format escapes the alert's text
for itself — markdown punctuation, robot @-mentions, HTML — and stays within the target's size limit.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import jinja2

from storage.vocabulary import AlertKind

#: WeCom: markdown content at most 4096 bytes, text at most 2048 (UTF-8); DingTalk's limit is larger,
#: but a message that long helps nobody, so both robots get the WeCom bounds.
MARKDOWN_MAX_BYTES = 4096
TEXT_MAX_BYTES = 2048
SUBJECT_MAX_CHARS = 120
TRUNCATED = "…（已截断）"
#: Markdown punctuation a robot could read as syntax; each is escaped with a backslash.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
#: Autoescaping on: the e-mail's HTML part is a template, never text glued to tags.
_EMAIL_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).resolve().parent / "templates"), autoescape=True
)


@dataclass(frozen=True)
class AlertMessage:
    """What every format starts from: the alert's key, kind, plain-text title and body, and when."""

    event_key: str
    kind: AlertKind
    title: str
    body: str
    created_at: datetime


def bounded_bytes(text: str, limit: int) -> str:
    """``text`` cut (at a character boundary) so its UTF-8 encoding fits ``limit`` bytes, marked when cut."""
    if len(text.encode("utf-8")) <= limit:
        return text
    room = limit - len(TRUNCATED.encode("utf-8"))
    cut = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return cut + TRUNCATED


def markdown_escaped(text: str) -> str:
    """Plain text as markdown that shows it as written: punctuation backslash-escaped, angle brackets as
    entities (no <font>, no <@userid> mention), so crawled text cannot add links, headings or mentions."""
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text)
    return escaped.replace("<", "&lt;").replace(">", "&gt;")


def plain_text_escaped(text: str) -> str:
    """Plain text for a robot's text message: ``<@…>`` would mention people, so angle brackets turn
    full-width."""
    return text.replace("<", "＜").replace(">", "＞")


def _markdown(message: AlertMessage) -> str:
    lines = [f"### {markdown_escaped(message.title)}"]
    lines += [markdown_escaped(line) for line in message.body.splitlines()]
    return bounded_bytes("\n\n".join(lines), MARKDOWN_MAX_BYTES)


def _text(message: AlertMessage) -> str:
    return bounded_bytes(plain_text_escaped(f"{message.title}\n{message.body}"), TEXT_MAX_BYTES)


def generic_body(message: AlertMessage) -> dict[str, Any]:
    """weisu's own JSON: the event's key and kind, title, text and time (JSON escapes it all)."""
    return {
        "event": message.event_key,
        "kind": message.kind.value,
        "title": message.title,
        "text": message.body,
        "created_at": message.created_at.isoformat(),
    }


def wecom_body(message: AlertMessage, message_type: str) -> dict[str, Any]:
    """A WeCom group robot's message: {"msgtype": "markdown", "markdown": {"content": …}} or text."""
    if message_type == "text":
        return {"msgtype": "text", "text": {"content": _text(message)}}
    return {"msgtype": "markdown", "markdown": {"content": _markdown(message)}}


def dingtalk_body(message: AlertMessage, message_type: str) -> dict[str, Any]:
    """A DingTalk group robot's message: {"msgtype": "markdown", "markdown": {"title", "text"}} or text."""
    if message_type == "text":
        return {"msgtype": "text", "text": {"content": _text(message)}}
    title = bounded_bytes(plain_text_escaped(message.title), 200)
    return {"msgtype": "markdown", "markdown": {"title": title, "text": _markdown(message)}}


def dingtalk_signature(secret: str, timestamp_ms: int) -> str:
    """DingTalk's signed-robot check: Base64(HMAC-SHA256(key=secret, "<timestamp>\\n<secret>"))."""
    digest = hmac.new(secret.encode("utf-8"), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """The robot URL with its ``timestamp`` (milliseconds) and url-encoded ``sign`` query parameters."""
    joiner = "&" if "?" in url else "?"
    sign = quote_plus(dingtalk_signature(secret, timestamp_ms))
    return f"{url}{joiner}timestamp={timestamp_ms}&sign={sign}"


def email_message(message: AlertMessage, sender: str, recipients: list[str]) -> EmailMessage:
    """The alert as a UTF-8 e-mail: the title as subject (one line, bounded), the body as plain text and
    as HTML with every character escaped."""
    mail = EmailMessage()
    subject = " ".join(message.title.split())
    mail["Subject"] = subject if len(subject) <= SUBJECT_MAX_CHARS else subject[: SUBJECT_MAX_CHARS - 1] + "…"
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail.set_content(f"{message.title}\n\n{message.body}\n")
    page = _EMAIL_TEMPLATES.get_template("email.html")
    mail.add_alternative(page.render(title=message.title, lines=message.body.splitlines()), subtype="html")
    return mail
