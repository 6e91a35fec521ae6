"""What delivering by the configured channels needs, for reports and alerts alike.

``ChannelDelivery`` holds the settings, the clock, the network (a guarded HTTP client, or
a test's transport) and the sleep between retries; ``each_channel`` opens one client for a
delivery and hands each channel asked for, once, to the caller's sending function.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, TypeVar

from fedimeter.delivery.mastodon import MastodonPoster
from fedimeter.delivery.sending import Sender, http_client

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from datetime import datetime

    import httpx

    from fedimeter.config import Channel, Settings

__all__ = ["ChannelDelivery"]

_T = TypeVar("_T")
#: The longest list of recipients named in full where people read it; longer: a count.
_LABEL_LIMIT = 200


class ChannelDelivery:
    """The settings, clock and network of a delivery by Mastodon post, webhook or e-mail."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], datetime],
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """Deliver with ``settings``; ``transport`` replaces the guarded network (tests)."""
        self.settings = settings
        self._clock = clock
        self._transport = transport
        self._sleep = sleep

    async def each_channel(
        self,
        channels: Sequence[Channel],
        send: Callable[[Channel, Sender], Awaitable[_T | None]],
    ) -> list[_T]:
        """``send`` for each distinct channel in order, over one client; what they returned.

        ``None`` (nothing to send by that channel) is left out.
        """
        outcomes: list[_T] = []
        async with http_client(self.settings, self._transport) as client:
            sender = Sender(self.settings, client, self._clock)
            for channel in dict.fromkeys(channels):
                outcome = await send(channel, sender)
                if outcome is not None:
                    outcomes.append(outcome)
        return outcomes

    def poster(self, sender: Sender) -> tuple[MastodonPoster, str]:
        """The Mastodon account posts go to, and its token (for fingerprints, never stored)."""
        settings = self.settings
        token = settings.post_token.get_secret_value() if settings.post_token else ""
        poster = MastodonPoster(
            sender,
            instance_url=settings.post_instance or "",
            token=token,
            visibility=settings.post_visibility,
            sleep=self._sleep,
        )
        return poster, token

    def webhook_secret(self) -> str | None:
        """The secret webhook bodies are signed with, if one is set."""
        secret = self.settings.webhook_secret
        return secret.get_secret_value() if secret else None

    def recipients_label(self) -> str:
        """The e-mail recipients for people: listed, or counted when the list is long."""
        recipients = list(self.settings.email_to)
        label = ", ".join(recipients)
        return label if len(label) <= _LABEL_LIMIT else f"{len(recipients)} recipients"
