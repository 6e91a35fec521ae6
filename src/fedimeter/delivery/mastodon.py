"""Posting a report to Mastodon: the server's character limit, then a thread of replies.

Each post carries an ``Idempotency-Key`` derived from the delivery and the post's place in
the thread, so a retry after a lost answer (the post was made, the answer never came back)
returns the post already made instead of making a second one; Mastodon keeps these keys for
an hour.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fedimeter.delivery.sending import Answer, Sender, describe_status, with_retries
from fedimeter.domain.posts import DEFAULT_MAX_CHARACTERS
from fedimeter.errors import DeliveryError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["MastodonPoster", "idempotency_key", "instance_base_url", "max_characters_from"]

_UNAUTHORIZED = frozenset({401, 403})


def instance_base_url(url: str) -> str:
    """``https://host[:port]`` from what a person wrote (a trailing path is dropped)."""
    parts = urlsplit(url.strip())
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}{port}"


def max_characters_from(instance: object) -> int | None:
    """The status length limit in an instance document (v2, v1, or Pleroma's), or None."""
    if not isinstance(instance, dict):
        return None
    configuration = instance.get("configuration")
    statuses = configuration.get("statuses") if isinstance(configuration, dict) else None
    for value in (
        statuses.get("max_characters") if isinstance(statuses, dict) else None,
        instance.get("max_toot_chars"),  # Pleroma, Akkoma and older forks
    ):
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


class MastodonPoster:
    """Posts threads with one account's token on one server."""

    def __init__(
        self,
        sender: Sender,
        *,
        instance_url: str,
        token: str,
        visibility: str,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        """Post to ``instance_url`` with ``token``; ``sleep`` waits between retries."""
        self._sender = sender
        self.base_url = instance_base_url(instance_url)
        self.host = urlsplit(self.base_url).netloc
        self._token = token
        self._visibility = visibility
        self._sleep = sleep

    async def max_characters(self) -> int:
        """The server's status length limit: ``/api/v2/instance``, else v1, else 500.

        Raises:
            DeliveryError: the server cannot be reached or refuses the address.
        """
        for path in ("/api/v2/instance", "/api/v1/instance"):

            async def attempt(url: str = self.base_url + path) -> Answer:
                return await self._sender.request("GET", url, what=self.host)

            answer = await self._retrying(attempt, f"{self.host} (reading its character limit)")
            if 200 <= answer.status < 300:  # noqa: PLR2004 - the 2xx range
                found = max_characters_from(answer.data)
                if found is not None:
                    return found
        return DEFAULT_MAX_CHARACTERS

    async def post(
        self,
        text: str,
        *,
        in_reply_to: str | None,
        idempotency_key: str,
    ) -> tuple[str, str | None]:
        """Post ``text`` (as a reply to ``in_reply_to``); return the new post's id and URL.

        Raises:
            DeliveryError: the token was refused, the server rejected the post, or it kept
                failing through every retry.
        """
        body: dict[str, object] = {"status": text, "visibility": self._visibility}
        if in_reply_to is not None:
            body["in_reply_to_id"] = in_reply_to
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Idempotency-Key": idempotency_key,
        }

        async def attempt() -> Answer:
            return await self._sender.request(
                "POST",
                f"{self.base_url}/api/v1/statuses",
                what=self.host,
                headers=headers,
                json=body,
            )

        answer = await self._retrying(attempt, f"{self.host} (posting)")
        if answer.status in _UNAUTHORIZED:
            raise DeliveryError(
                f"{self.host} refused the access token ({describe_status(answer.status)}):"
                " check post_token; it needs the write:statuses scope"
            )
        if not 200 <= answer.status < 300:  # noqa: PLR2004 - the 2xx range
            said = _error_text(answer)
            raise DeliveryError(
                f"{self.host} did not accept the post ({describe_status(answer.status)}"
                f"{': ' + said if said else ''})"
            )
        data = answer.data
        status_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(status_id, str | int) or isinstance(status_id, bool):
            raise DeliveryError(f"{self.host} accepted the post but its answer has no post id")
        url = data.get("url") if isinstance(data, dict) else None
        return str(status_id), url if isinstance(url, str) else None

    async def _retrying(self, attempt: Callable[[], Awaitable[Answer]], what: str) -> Answer:
        return await with_retries(
            attempt, what=what, settings=self._sender.settings, sleep=self._sleep
        )


def idempotency_key(delivery_key: str, index: int) -> str:
    """The key of the ``index``-th post of one delivery: stable across retries and restarts."""
    digest = hashlib.sha256(f"{delivery_key}|{index}".encode()).hexdigest()
    return f"fedimeter-{digest[:40]}"


def _error_text(answer: Answer) -> str:
    """What the server said was wrong, from ``{"error": ...}`` or the body's start."""
    if isinstance(answer.data, dict):
        error = answer.data.get("error")
        if isinstance(error, str):
            return error
    return " ".join(answer.text.split())[:120]
