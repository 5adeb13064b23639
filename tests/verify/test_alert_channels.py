"""Alert channels against real local receivers: the exact JSON bodies of the generic, WeCom and DingTalk
webhooks (with DingTalk's signature), an e-mail through a real SMTP server, and escaping of crawled text."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from alert_receivers import smtp_server, webhook_receiver

from settings import AlertChannelSettings, AlertSettings, SecretError, Settings
from storage.models import AlertKind
from verify.alerts.channels import Channel, DeliveryError, configured_channels, send
from verify.alerts.formats import AlertMessage, bounded_bytes

#: Crawled text that tries markdown links, a heading, HTML and a robot @-mention of everyone.
MESSAGE = AlertMessage(
    event_key="urgent:lead:7",
    kind=AlertKind.URGENT_LEAD,
    title="【加急线索】#7 城乡建设",
    body="加急线索 #7：井盖丢失 [点我](http://evil) <b>快</b> <@all>\n地点：南山区粤海街道",
    created_at=datetime(2026, 11, 29, 6, 0, tzinfo=UTC),
)
MILLIS = 1764396000000
DINGTALK_SECRET = "SECtest-signing-secret"


def _webhook(url: str, **fields: object) -> Channel:
    return Channel("ops", AlertChannelSettings.model_validate({"kind": "webhook", "url": url, **fields}), url)


def _send(channel: Channel) -> None:
    with httpx.Client(timeout=5) as client:
        send(channel, MESSAGE, client, timeout=5, millis=lambda: MILLIS)


def test_the_generic_webhook_posts_weisus_json() -> None:
    with webhook_receiver() as (url, received):
        _send(_webhook(url + "/hook"))
    assert received.paths == ["/hook"]
    assert received.bodies == [
        {
            "event": "urgent:lead:7",
            "kind": "urgent_lead",
            "title": "【加急线索】#7 城乡建设",
            "text": "加急线索 #7：井盖丢失 [点我](http://evil) <b>快</b> <@all>\n地点：南山区粤海街道",
            "created_at": "2026-11-29T06:00:00+00:00",
        }
    ]


def test_the_wecom_robot_gets_escaped_markdown() -> None:
    with webhook_receiver() as (url, received):
        _send(_webhook(url + "/cgi-bin/webhook/send?key=k1", format="wecom"))
    assert received.paths == ["/cgi-bin/webhook/send?key=k1"]
    assert received.bodies == [
        {
            "msgtype": "markdown",
            "markdown": {
                "content": "### 【加急线索】\\#7 城乡建设\n\n"
                "加急线索 \\#7：井盖丢失 \\[点我\\]\\(http://evil\\) &lt;b&gt;快&lt;/b&gt; &lt;@all&gt;\n\n"
                "地点：南山区粤海街道"
            },
        }
    ]


def test_the_wecom_robot_gets_text_without_mentions() -> None:
    with webhook_receiver() as (url, received):
        _send(_webhook(url + "/send", format="wecom", message_type="text"))
    assert received.bodies == [
        {
            "msgtype": "text",
            "text": {
                "content": "【加急线索】#7 城乡建设\n"
                "加急线索 #7：井盖丢失 [点我](http://evil) ＜b＞快＜/b＞ ＜@all＞\n地点：南山区粤海街道"
            },
        }
    ]


def test_the_dingtalk_robot_gets_markdown_and_a_signed_url() -> None:
    channels = {"ops": {"kind": "webhook", "format": "dingtalk", "url_env": "WEISU_DINGTALK_URL",
                        "secret_env": "WEISU_DINGTALK_SECRET"}}  # fmt: skip
    settings = Settings(alerts=AlertSettings.model_validate({"channels": channels}))
    with webhook_receiver() as (url, received):
        env = {
            "WEISU_DINGTALK_URL": url + "/robot/send?access_token=abc",
            "WEISU_DINGTALK_SECRET": DINGTALK_SECRET,
        }
        _send(configured_channels(settings, env)[0])
    # Base64(HMAC-SHA256(secret, "1764396000000\nSECtest-signing-secret")), url-encoded.
    assert received.paths == [
        "/robot/send?access_token=abc&timestamp=1764396000000&sign=W7%2Fk%2ByYxYn4u77mraJtt0zeLUZFCKp7Rn5egCNXUFxk%3D"
    ]
    assert received.bodies == [
        {
            "msgtype": "markdown",
            "markdown": {
                "title": "【加急线索】#7 城乡建设",
                "text": "### 【加急线索】\\#7 城乡建设\n\n"
                "加急线索 \\#7：井盖丢失 \\[点我\\]\\(http://evil\\) &lt;b&gt;快&lt;/b&gt; &lt;@all&gt;\n\n"
                "地点：南山区粤海街道",
            },
        }
    ]


def test_a_robot_refusing_with_an_errcode_is_a_failed_delivery() -> None:
    with webhook_receiver() as (url, received):
        received.answer = {"errcode": 310000, "errmsg": "sign not match"}
        with pytest.raises(DeliveryError, match="^robot refused: errcode 310000 sign not match$"):
            _send(_webhook(url + "/robot/send", format="dingtalk"))


def test_a_server_error_is_a_failed_delivery() -> None:
    with webhook_receiver([500]) as (url, _), pytest.raises(DeliveryError, match=r"^HTTP 500: "):
        _send(_webhook(url + "/hook"))


def test_an_email_arrives_with_the_chinese_subject_and_escaped_html() -> None:
    with smtp_server() as (port, keeper):
        config = AlertChannelSettings.model_validate(
            {
                "kind": "email", "smtp_host": "127.0.0.1", "smtp_port": port, "security": "none",
                "from": "weisu@example.invalid", "to": ["duty@example.invalid", "lead@example.invalid"],
            }
        )  # fmt: skip
        _send(Channel("mail", config))
    assert keeper.envelopes == [("weisu@example.invalid", ["duty@example.invalid", "lead@example.invalid"])]
    mail = keeper.messages[0]
    assert mail["Subject"] == "【加急线索】#7 城乡建设"
    assert mail["To"] == "duty@example.invalid, lead@example.invalid"
    plain = mail.get_body(("plain",)).get_content().replace("\r\n", "\n")  # SMTP carries CRLF
    assert plain == (
        "【加急线索】#7 城乡建设\n\n"
        "加急线索 #7：井盖丢失 [点我](http://evil) <b>快</b> <@all>\n地点：南山区粤海街道\n"
    )
    html = mail.get_body(("html",)).get_content().replace("\r\n", "\n")
    assert html == (
        '<html lang="zh-CN"><body>\n<h3>【加急线索】#7 城乡建设</h3>\n'
        "<p>加急线索 #7：井盖丢失 [点我](http://evil) &lt;b&gt;快&lt;/b&gt; &lt;@all&gt;</p>\n"
        "<p>地点：南山区粤海街道</p>\n</body></html>\n"
    )


def test_an_unreachable_smtp_server_is_a_failed_delivery() -> None:
    config = AlertChannelSettings.model_validate(
        {"kind": "email", "smtp_host": "127.0.0.1", "smtp_port": 1, "security": "none",
         "from": "weisu@example.invalid", "to": ["duty@example.invalid"]}
    )  # fmt: skip
    with pytest.raises(DeliveryError, match="^ConnectionRefusedError: "):
        _send(Channel("mail", config))


def test_a_long_message_is_cut_to_the_robots_byte_limit() -> None:
    cut = bounded_bytes("井" * 2000, 2048)
    assert len(cut.encode("utf-8")) <= 2048 and cut.endswith("…（已截断）")
    assert cut == "井" * 676 + "…（已截断）"


def test_a_channel_whose_secret_is_unset_stops_in_one_line() -> None:
    settings = Settings(
        alerts=AlertSettings.model_validate(
            {"channels": {"ops-mail": {"kind": "email", "smtp_host": "smtp.example.invalid",
             "password_env": "WEISU_SMTP_PASSWORD", "from": "weisu@example.invalid",
             "to": ["a@example.invalid"]}}}
        )
    )  # fmt: skip
    with pytest.raises(SecretError) as raised:
        configured_channels(settings, {})
    assert str(raised.value) == (
        "alerts.channels.ops-mail.password_env: environment variable WEISU_SMTP_PASSWORD is not set"
    )
    assert configured_channels(settings, {"WEISU_SMTP_PASSWORD": "pw"})[0].password == "pw"


def test_plain_smtp_to_a_remote_host_is_refused_at_load() -> None:
    with pytest.raises(ValueError, match="security: none is only for a relay on loopback"):
        AlertChannelSettings.model_validate(
            {"kind": "email", "smtp_host": "smtp.example.invalid", "security": "none",
             "from": "weisu@example.invalid", "to": ["duty@example.invalid"]}
        )  # fmt: skip
