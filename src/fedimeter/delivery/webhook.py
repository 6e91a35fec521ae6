"""Sending a report to a webhook: one JSON POST that chat bridges understand, retried.

The body carries the text report under the names the common receivers read (``text`` for
Slack and Matrix bridges, ``content`` for Discord-compatible hooks, which cap it at 2,000
characters) and the whole report as data under ``report`` for programs. With a secret, the
body is signed: ``X-Fedimeter-Signature: sha256=<hex HMAC-SHA256 of the body>``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fedimeter.delivery.sending import Answer, Retry, Sender, describe_status, with_retries
from fedimeter.errors import DeliveryError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from fedimeter.domain.report_render import JSONValue

__all__ = [
    "DISCORD_LIMIT",
    "SIGNATURE_HEADER",
    "send_webhook",
    "sign",
    "webhook_body",
    "webhook_host",
]

#: Discord-compatible receivers refuse a ``content`` longer than this.
DISCORD_LIMIT = 2000
SIGNATURE_HEADER = "X-Fedimeter-Signature"
#: 408 and 425 say "try again" although they are 4xx.
_RETRYABLE_4XX = frozenset({408, 425})


def webhook_body(text: str, report: JSONValue) -> bytes:
    """The JSON body for ``text`` and the report's data."""
    content = text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 1] + "\u2026"
    payload = {"text": text, "content": content, "username": "fedimeter", "report": report}
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def sign(body: bytes, secret: str) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``body`` with ``secret``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_host(url: str) -> str:
    """The host a webhook URL points at, for messages (the path may hold a secret)."""
    return urlsplit(url).netloc.rpartition("@")[2] or url


async def send_webhook(
    sender: Sender,
    url: str,
    body: bytes,
    *,
    secret: str | None,
    sleep: Callable[[float], Awaitable[None]],
    content: str = "the report",
) -> None:
    """POST ``body`` to ``url``, retrying timeouts, resets, 5xx, 408 and 429.

    ``content`` names what the body carries in messages ("the report", "2 alerts").

    Raises:
        DeliveryError: the receiver refused it (another 4xx, a redirect) or kept failing.
    """
    what = f"the webhook at {webhook_host(url)}"
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(body, secret)

    async def attempt() -> Answer:
        answer = await sender.request("POST", url, what=what, headers=headers, content=body)
        if answer.status in _RETRYABLE_4XX:
            raise Retry(f"answered {describe_status(answer.status)}")
        return answer

    answer = await with_retries(attempt, what=what, settings=sender.settings, sleep=sleep)
    if 300 <= answer.status < 400:  # noqa: PLR2004 - redirects
        raise DeliveryError(
            f"{what} answered {describe_status(answer.status)}: set webhook_url to the address"
            " it redirects to"
        )
    if not 200 <= answer.status < 300:  # noqa: PLR2004 - the 2xx range
        said = " ".join(answer.text.split())[:120]
        raise DeliveryError(
            f"{what} refused {content} ({describe_status(answer.status)}"
            f"{': ' + said if said else ''})"
        )
