"""Delivering a report: to each channel asked for, once per report and place, independently.

A *report* is identified by its period's UTC days and the accounts it covers (``report_key``):
posting the 7-day report twice on the same day, or a scheduled report after each of four
rounds a day, sends it once. Every delivery is claimed in the delivery log first
(``fedimeter.storage.deliveries``); a thread that a crash cut short is finished from where it
stopped, with the posts planned the first time. One channel failing never keeps the others
from being tried; each gets an ``Outcome``.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fedimeter.delivery.channels import ChannelDelivery
from fedimeter.delivery.email import build_message, check_smtp_settings, send_email
from fedimeter.delivery.mastodon import MastodonPoster, idempotency_key
from fedimeter.delivery.webhook import send_webhook, webhook_body, webhook_host
from fedimeter.domain.posts import post_text, split_thread
from fedimeter.domain.report_html import render_html
from fedimeter.domain.report_render import render_csv, render_json, render_text
from fedimeter.errors import ConfigError, DeliveryError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from datetime import datetime

    import httpx

    from fedimeter.config import Channel, Settings
    from fedimeter.delivery.sending import Sender
    from fedimeter.domain.report import Report
    from fedimeter.storage.deliveries import DeliveryLog, DeliveryRecord

__all__ = ["Deliverer", "Outcome", "report_key", "selection_key"]

OutcomeStatus = Literal["delivered", "skipped", "failed"]
_EN_DASH = "\u2013"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one channel's delivery."""

    channel: Channel
    #: Where it went, for people: a host, or the recipients.
    destination: str
    status: OutcomeStatus
    #: One line: the post's URL, why it was skipped, or why it failed.
    detail: str
    url: str | None = None


def selection_key(handles: Sequence[str] | None) -> str:
    """``all``, or a short fingerprint of the accounts a report covers."""
    if handles is None:
        return "all"
    joined = "\n".join(sorted({h.removeprefix("@").casefold() for h in handles}))
    return "accounts-" + hashlib.sha256(joined.encode()).hexdigest()[:16]


def report_key(report: Report, selection: str) -> str:
    """The period's UTC days and the selection: the same report has the same key."""
    return f"{report.since:%Y-%m-%d}/{report.until:%Y-%m-%d}/{selection}"


def _fingerprint(*parts: str) -> str:
    """A hash of where a report goes, so secrets (tokens, webhook URLs) are never stored."""
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _subject(report: Report) -> str:
    return f"fedimeter report {report.since:%Y-%m-%d} {_EN_DASH} {report.until:%Y-%m-%d}"


class Deliverer(ChannelDelivery):
    """Delivers reports with the configured channels, recording each in the delivery log."""

    def __init__(
        self,
        settings: Settings,
        log: DeliveryLog,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Deliver with ``settings``; ``transport`` replaces the guarded network (tests)."""
        super().__init__(settings, clock=clock, transport=transport, sleep=sleep)
        self._log = log

    def check(self, channels: Sequence[Channel]) -> None:
        """Refuse channels that are not configured, before any report is built.

        Raises:
            ConfigError: a channel lacks its settings, or they would be unsafe.
        """
        configured = self.settings.delivery_channels()
        needs = {
            "mastodon": "post_instance and post_token",
            "webhook": "webhook_url",
            "email": "smtp_host, email_from and email_to",
        }
        for channel in channels:
            if channel not in configured:
                raise ConfigError(
                    f"cannot deliver by {channel}: set {needs[channel]} (see docs/delivery.md)"
                )
            if channel == "email":
                check_smtp_settings(self.settings)

    async def deliver(
        self, report: Report, channels: Sequence[Channel], *, selection: str = "all"
    ) -> list[Outcome]:
        """Deliver ``report`` by each of ``channels`` (each once per report and place).

        Raises:
            ConfigError: a channel is not configured (nothing is sent then).
            StorageError: the delivery log cannot be read or written.
        """
        self.check(channels)
        key = report_key(report, selection)

        async def send(channel: Channel, sender: Sender) -> Outcome:
            if channel == "mastodon":
                return await self._mastodon(sender, report, key)
            if channel == "webhook":
                return await self._webhook(sender, report, key)
            return await self._email(report, key)

        return await self.each_channel(channels, send)

    # -- channels --------------------------------------------------------------------------

    async def _mastodon(self, sender: Sender, report: Report, key: str) -> Outcome:
        poster, token = self.poster(sender)
        destination = _fingerprint("mastodon", poster.base_url, token)
        claim = await self._claim("mastodon", destination, poster.host, report, key)
        if isinstance(claim, Outcome):
            return claim
        record = claim
        try:
            parts = list(record.parts or [])
            if record.parts_sent == 0:
                # Nothing went out yet: plan afresh (the report or the limit may have changed).
                parts = await self._plan_thread(poster, report)
                await self._log.plan(record.id, parts, self._clock())
            ids = list(record.remote_ids)
            url = record.url
            thread = f"{record.id}|{record.report_key}|{record.created_at.isoformat()}"
            for index in range(len(ids), len(parts)):
                post_id, post_url = await poster.post(
                    parts[index],
                    in_reply_to=ids[-1] if ids else None,
                    idempotency_key=idempotency_key(f"{destination}|{thread}", index),
                )
                ids.append(post_id)
                url = url or post_url
                await self._log.part_sent(record.id, ids, url, self._clock())
        except (DeliveryError, ConfigError) as exc:
            return await self._failed(record, "mastodon", poster.host, exc)
        await self._log.delivered(record.id, self._clock(), url)
        posts = "1 post" if len(parts) == 1 else f"a thread of {len(parts)} posts"
        return Outcome(
            "mastodon",
            poster.host,
            "delivered",
            f"posted as {posts}" + (f": {url}" if url else ""),
            url,
        )

    async def _plan_thread(self, poster: MastodonPoster, report: Report) -> list[str]:
        """The report as the posts of a thread that fit the server's limit.

        Raises:
            DeliveryError: the server cannot be asked, or the thread would be too long.
        """
        parts = split_thread(post_text(render_text(report)), await poster.max_characters())
        if len(parts) > self.settings.post_max_parts:
            raise DeliveryError(
                f"the report would take {len(parts)} posts, more than post_max_parts"
                f" ({self.settings.post_max_parts}): report on fewer accounts (--top) or"
                " raise post_max_parts"
            )
        return parts

    async def _webhook(self, sender: Sender, report: Report, key: str) -> Outcome:
        url = self.settings.webhook_url or ""
        host = webhook_host(url)
        claim = await self._claim("webhook", _fingerprint("webhook", url), host, report, key)
        if isinstance(claim, Outcome):
            return claim
        try:
            await send_webhook(
                sender,
                url,
                webhook_body(render_text(report), render_json(report)),
                secret=self.webhook_secret(),
                sleep=self._sleep,
            )
        except (DeliveryError, ConfigError) as exc:
            return await self._failed(claim, "webhook", host, exc)
        await self._log.delivered(claim.id, self._clock())
        return Outcome("webhook", host, "delivered", f"sent to the webhook at {host}")

    async def _email(self, report: Report, key: str) -> Outcome:
        settings = self.settings
        recipients = list(settings.email_to)
        label = self.recipients_label()
        destination = _fingerprint(
            "email", settings.smtp_host or "", *sorted(r.casefold() for r in recipients)
        )
        claim = await self._claim("email", destination, label, report, key)
        if isinstance(claim, Outcome):
            return claim
        message = build_message(
            sender=settings.email_from or "",
            recipients=recipients,
            subject=_subject(report),
            text=render_text(report),
            html=render_html(report),
            csv=render_csv(report),
            csv_name=f"fedimeter-{report.since:%Y-%m-%d}-{report.until:%Y-%m-%d}.csv",
            now=self._clock(),
        )
        try:
            await send_email(settings, message, sleep=self._sleep)
        except (DeliveryError, ConfigError) as exc:
            return await self._failed(claim, "email", label, exc)
        await self._log.delivered(claim.id, self._clock())
        return Outcome("email", label, "delivered", f"e-mailed to {label}")

    # -- the log ---------------------------------------------------------------------------

    async def _claim(
        self, channel: Channel, destination: str, label: str, report: Report, key: str
    ) -> DeliveryRecord | Outcome:
        """The claimed record, or the outcome when someone delivered or delivers it."""
        claim = await self._log.claim(
            channel=channel,
            destination=destination,
            label=label,
            report_key=key,
            period=(report.since, report.until),
            now=self._clock(),
        )
        if claim.won:
            return claim.record
        record = claim.record
        if record.status == "delivered":
            when = f"{record.delivered_at:%Y-%m-%d %H:%M} UTC" if record.delivered_at else ""
            where = f": {record.url}" if record.url else ""
            detail = f"delivered already on {when}{where}; a report is sent once per period"
        else:
            detail = "another fedimeter process is delivering this report right now"
        return Outcome(channel, label, "skipped", detail, record.url)

    async def _failed(
        self, record: DeliveryRecord, channel: Channel, label: str, exc: Exception
    ) -> Outcome:
        await self._log.failed(record.id, str(exc), self._clock())
        return Outcome(channel, label, "failed", str(exc))
