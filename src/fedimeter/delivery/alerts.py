"""Sending alerts through the report channels: Mastodon posts, a webhook, an e-mail.

Each round sends, per channel, every alert waiting for it (claimed in the alert log, so no
other process sends it too): on Mastodon as few posts as the server's limit allows (a line
per alert, handles without the ``@`` that would notify them and hashtags without the ``#``
that would make the post a use of the tag), to the webhook one POST whose
JSON says ``"type": "alert"``, by e-mail one message. A channel that fails leaves its alerts
failed for the next round; the other channels are still tried.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Literal

from fedimeter.delivery.channels import ChannelDelivery
from fedimeter.delivery.email import send_email
from fedimeter.delivery.mastodon import idempotency_key
from fedimeter.delivery.webhook import DISCORD_LIMIT, send_webhook, webhook_host
from fedimeter.domain.mail import check_address
from fedimeter.domain.posts import mastodon_length, post_text
from fedimeter.errors import ConfigError, DeliveryError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from datetime import datetime

    import httpx

    from fedimeter.config import Channel, Settings
    from fedimeter.delivery.sending import Sender
    from fedimeter.storage.alerts import AlertRecord, AlertStore

__all__ = [
    "TEXT_LINES",
    "AlertDeliverer",
    "AlertOutcome",
    "alert_json",
    "pack_posts",
    "post_line",
    "webhook_alert_body",
]

_ELLIPSIS = "\u2026"
#: The most alerts a webhook's text lists one by one.
TEXT_LINES = 100
_SUBJECT_LIMIT = 180


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    """What happened to the alerts waiting for one channel."""

    channel: Channel
    #: Where they went, for people: a host, or the recipients.
    destination: str
    status: Literal["delivered", "failed"]
    #: One line: what went out, or why it failed.
    detail: str
    #: How many alerts it was about.
    alerts: int
    url: str | None = None


def alert_json(alert: AlertRecord) -> dict[str, object]:
    """An alert as JSON-ready values (the webhook body, ``--json``, the API)."""
    return {
        "id": alert.id,
        "rule": alert.rule,
        "kind": alert.kind,
        "subject": alert.subject,
        "subject_label": alert.subject_label,
        "occurrence": alert.occurrence,
        "text": alert.text,
        "fired_at": alert.fired_at.isoformat().replace("+00:00", "Z"),
        "details": dict(alert.details),
    }


def webhook_alert_body(alerts: Sequence[AlertRecord]) -> bytes:
    """``{"type": "alert", "text", "content", "username", "alerts": [...]}`` as JSON.

    ``text`` holds at most ``TEXT_LINES`` alerts and counts the rest (chat services refuse
    or cut long messages); ``alerts`` holds every one.
    """
    lines = [a.text for a in alerts[:TEXT_LINES]]
    if len(alerts) > TEXT_LINES:
        lines.append(f"and {len(alerts) - TEXT_LINES:,} more: see fedimeter alerts list")
    text = "\n".join(lines)
    content = text if len(text) <= DISCORD_LIMIT else text[: DISCORD_LIMIT - 1] + _ELLIPSIS
    payload = {
        "type": "alert",
        "text": text,
        "content": content,
        "username": "fedimeter",
        "alerts": [alert_json(a) for a in alerts],
    }
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def post_line(text: str) -> str:
    """An alert's line fit to post: no mention (``user@host``), no hashtag (``caturday``).

    Posting ``#caturday`` would add a use of the very tag being measured, and put every
    alert about it in the tag's public timeline.
    """
    return post_text(text)


def _heading(count: int) -> str:
    return "fedimeter alert" if count == 1 else "fedimeter alerts"


def pack_posts(
    lines: Sequence[str], limit: int, max_posts: int = 20
) -> list[tuple[list[int], str]]:
    """Lines packed into as few posts as fit ``limit`` (as Mastodon counts), in order.

    Each post starts with a heading line; a line too long for a post alone is cut with an
    ellipsis. More than ``max_posts`` posts (an outage failing thousands of accounts at
    once) become the first ``max_posts - 1`` and one that counts the rest. Returns each
    post's line indexes (the last post's include those it only counts) and its text.
    """
    posts: list[tuple[list[int], str]] = []
    group: list[int] = []
    body: list[str] = []
    for index, line in enumerate(lines):
        room = limit - mastodon_length(_heading(1) + "\n")
        if mastodon_length(line) > room:
            line = line[: max(1, room - 1)].rstrip() + _ELLIPSIS  # noqa: PLW2901
            while mastodon_length(line) > room and len(line) > 1:
                line = line[:-2] + _ELLIPSIS  # noqa: PLW2901
        candidate = "\n".join([_heading(len(group) + 1), *body, line])
        if group and mastodon_length(candidate) > limit:
            posts.append((group, "\n".join([_heading(len(group)), *body])))
            group, body = [], []
        group.append(index)
        body.append(line)
    if group:
        posts.append((group, "\n".join([_heading(len(group)), *body])))
    if len(posts) > max_posts:
        kept = posts[: max(0, max_posts - 1)]
        rest = [i for indexes, _ in posts[len(kept) :] for i in indexes]
        more = "1 more alert" if len(rest) == 1 else f"{len(rest):,} more alerts"
        posts = [*kept, (rest, f"fedimeter alerts\n{more}: see fedimeter alerts list")]
    return posts


def _fingerprint(*parts: str) -> str:
    """A hash of where alerts go, so a token never ends up in a key or the database."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class AlertDeliverer(ChannelDelivery):
    """Delivers the alerts waiting in the alert log by the configured channels."""

    def __init__(
        self,
        settings: Settings,
        store: AlertStore,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Deliver with ``settings``; ``transport`` replaces the guarded network (tests)."""
        super().__init__(settings, clock=clock, transport=transport, sleep=sleep)
        self._store = store

    async def deliver_pending(self, channels: Sequence[Channel]) -> list[AlertOutcome]:
        """Send every alert waiting for each of ``channels``; one outcome per channel used.

        Raises:
            StorageError: the alert log cannot be read or written.
        """
        configured = set(self.settings.delivery_channels())

        async def send(channel: Channel, sender: Sender) -> AlertOutcome | None:
            if channel not in configured:
                return None  # its alerts wait until it is configured again
            claimed = await self._store.claim(channel, self._clock())
            if not claimed:
                return None
            if channel == "mastodon":
                return await self._mastodon(sender, claimed)
            if channel == "webhook":
                return await self._webhook(sender, claimed)
            return await self._email(claimed)

        return await self.each_channel(channels, send)

    async def _mastodon(self, sender: Sender, claimed: list[AlertRecord]) -> AlertOutcome:
        settings = self.settings
        poster, token = self.poster(sender)
        place = _fingerprint("mastodon", poster.base_url, token)
        sent = 0
        first_url: str | None = None
        try:
            limit = await poster.max_characters()
            posts = pack_posts([post_line(a.text) for a in claimed], limit, settings.post_max_parts)
            for indexes, text in posts:
                batch = [claimed[i] for i in indexes]
                ids = ",".join(str(a.id) for a in batch)
                _, url = await poster.post(
                    text,
                    in_reply_to=None,
                    idempotency_key=idempotency_key(f"alerts|{place}|{ids}", 0),
                )
                await self._store.delivered(
                    [a.id for a in batch],
                    "mastodon",
                    self._clock(),
                    destination=poster.host,
                    url=url,
                )
                sent += len(batch)
                first_url = first_url or url
        except (DeliveryError, ConfigError) as exc:
            rest = [a.id for a in claimed[sent:]]
            await self._store.failed(
                rest, "mastodon", self._clock(), destination=poster.host, error=str(exc)
            )
            done = f" ({sent} posted before)" if sent else ""
            return AlertOutcome(
                "mastodon", poster.host, "failed", f"{exc}{done}", len(claimed), first_url
            )
        count = "1 post" if len(posts) == 1 else f"{len(posts)} posts"
        return AlertOutcome(
            "mastodon",
            poster.host,
            "delivered",
            f"posted {_alerts(sent)} in {count}" + (f": {first_url}" if first_url else ""),
            len(claimed),
            first_url,
        )

    async def _webhook(self, sender: Sender, claimed: list[AlertRecord]) -> AlertOutcome:
        url = self.settings.webhook_url or ""
        host = webhook_host(url)
        ids = [a.id for a in claimed]
        try:
            await send_webhook(
                sender,
                url,
                webhook_alert_body(claimed),
                secret=self.webhook_secret(),
                sleep=self._sleep,
                content=_alerts(len(claimed)),
            )
        except (DeliveryError, ConfigError) as exc:
            await self._store.failed(
                ids, "webhook", self._clock(), destination=host, error=str(exc)
            )
            return AlertOutcome("webhook", host, "failed", str(exc), len(claimed))
        await self._store.delivered(ids, "webhook", self._clock(), destination=host)
        detail = f"sent {_alerts(len(claimed))} to the webhook at {host}"
        return AlertOutcome("webhook", host, "delivered", detail, len(claimed))

    async def _email(self, claimed: list[AlertRecord]) -> AlertOutcome:
        settings = self.settings
        recipients = list(settings.email_to)
        label = self.recipients_label()
        ids = [a.id for a in claimed]
        try:
            message = alert_message(
                sender=settings.email_from or "",
                recipients=recipients,
                texts=[a.text for a in claimed],
                now=self._clock(),
            )
            await send_email(settings, message, sleep=self._sleep)
        except (DeliveryError, ConfigError) as exc:
            await self._store.failed(ids, "email", self._clock(), destination=label, error=str(exc))
            return AlertOutcome("email", label, "failed", str(exc), len(claimed))
        await self._store.delivered(ids, "email", self._clock(), destination=label)
        detail = f"e-mailed {_alerts(len(claimed))} to {label}"
        return AlertOutcome("email", label, "delivered", detail, len(claimed))


def alert_message(
    *, sender: str, recipients: list[str], texts: Sequence[str], now: datetime
) -> EmailMessage:
    """A plain-text message with one line per alert; the subject is the alert when alone."""
    message = EmailMessage()
    if len(texts) == 1:
        subject = f"fedimeter alert: {texts[0]}"
        if len(subject) > _SUBJECT_LIMIT:
            subject = subject[: _SUBJECT_LIMIT - 1] + _ELLIPSIS
    else:
        subject = f"fedimeter: {len(texts)} alerts"
    message["Subject"] = subject
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=check_address(sender).rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
    message.set_content("\n".join(texts) + "\n")
    return message


def _alerts(count: int) -> str:
    return "1 alert" if count == 1 else f"{count} alerts"
