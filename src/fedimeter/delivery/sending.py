"""What every channel shares: a guarded HTTP client, and attempts retried with backoff.

A send is a coroutine that raises ``Retry`` for a failure worth another attempt (5xx,
timeouts, resets, 429) and ``DeliveryError`` for one that is not (a refused token, a URL that
does not exist). ``with_retries`` runs it up to ``1 + retries`` times, waiting with full-jitter
exponential backoff, or as long as the server asked (``Retry-After``, ``X-RateLimit-Reset``)
when that is not too long.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from http import HTTPStatus
from typing import TYPE_CHECKING, TypeVar

import httpx

from fedimeter.errors import AddressRefused, BadResponse, DeliveryError, network_reason
from fedimeter.fediverse.body import decode_json, read_body
from fedimeter.fediverse.ratelimit import read_rate_limit
from fedimeter.fediverse.transport import GuardedTransport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from fedimeter.config import Settings

__all__ = [
    "Answer",
    "Retry",
    "Sender",
    "describe_status",
    "http_client",
    "with_retries",
]

_T = TypeVar("_T")

#: The error text kept from a failed answer: enough to say what the server said.
_ERROR_TEXT = 200


class Retry(Exception):
    """A failed attempt worth repeating; ``wait`` is how long the server asked us to wait."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        """``reason`` is a phrase such as "answered 503 Service Unavailable"."""
        super().__init__(reason)
        self.wait = wait


@dataclass(frozen=True, slots=True)
class Answer:
    """A server's answer to a send: its status, and its JSON body when it sent one."""

    status: int
    data: object
    text: str


@dataclass
class Sender:
    """Sends requests for one delivery channel and judges the answers the same way."""

    settings: Settings
    client: httpx.AsyncClient
    clock: Callable[[], datetime]

    async def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        headers: dict[str, str] | None = None,
        json: object = None,
        content: bytes | None = None,
    ) -> Answer:
        """Send once; answers are returned, failures worth repeating raise ``Retry``.

        Raises:
            Retry: a timeout, a refused or reset connection, a 5xx or 429 answer.
            DeliveryError: the address is refused (SSRF guard), or the answer is too large.
        """
        try:
            response = await self.client.send(
                self.client.build_request(method, url, headers=headers, json=json, content=content),
                stream=True,
            )
        except (AddressRefused, BadResponse) as exc:
            raise DeliveryError(f"{what}: {exc}") from None
        except httpx.TimeoutException:
            raise Retry("timed out") from None
        except httpx.TransportError as exc:
            raise Retry(f"could not be reached ({network_reason(exc)})") from None
        try:
            host = response.url.host
            try:
                body = await read_body(response, limit=self.settings.max_response_bytes, host=host)
            except BadResponse as exc:
                raise DeliveryError(f"{what}: {exc}") from None
            except httpx.HTTPError as exc:
                raise Retry(f"broke off its answer ({type(exc).__name__})") from None
        finally:
            await response.aclose()
        text = body.decode("utf-8", "replace")
        data: object = None
        try:
            data = decode_json(body, content_type=response.headers.get("content-type"), host=host)
        except BadResponse:
            data = None
        if response.status_code == 429:  # noqa: PLR2004
            limit = read_rate_limit(response.headers, now=self.clock())
            wait = limit.retry_after if limit.retry_after is not None else limit.reset_in
            raise Retry("answered 429 Too Many Requests", wait)
        if response.status_code >= 500:  # noqa: PLR2004
            raise Retry(f"answered {describe_status(response.status_code)}")
        return Answer(response.status_code, data, text[:_ERROR_TEXT])


def describe_status(status: int) -> str:
    """``"404 Not Found"``."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def http_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An HTTP client for deliveries: the SSRF guard, fedimeter's User-Agent, no redirects.

    Redirects are not followed: a POST that is redirected is not re-sent, and a webhook or
    server that moved should be configured with its new address.
    """
    return httpx.AsyncClient(
        transport=transport if transport is not None else GuardedTransport(settings),
        headers={"User-Agent": settings.user_agent, "Accept": "application/json"},
        timeout=httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.request_deadline,
        ),
        follow_redirects=False,
    )


async def with_retries(
    attempt: Callable[[], Awaitable[_T]],
    *,
    what: str,
    settings: Settings,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
) -> _T:
    """Run ``attempt`` until it succeeds, at most ``1 + settings.delivery_retries`` times.

    Between attempts it waits as long as the server asked, or a full-jitter backoff
    (``retry_base_delay`` doubling up to ``retry_max_delay``) when it did not say.

    Raises:
        DeliveryError: an attempt failed for good, every attempt failed, or the server asked
            for a wait longer than ``max_rate_limit_wait``.
    """
    retries = settings.delivery_retries
    max_wait = settings.max_rate_limit_wait
    for number in range(retries + 1):
        try:
            return await attempt()
        except Retry as exc:
            if number == retries:
                tries = "once" if retries == 0 else f"{retries + 1} times"
                raise DeliveryError(f"{what} {exc} (tried {tries})") from None
            if exc.wait is not None:
                if exc.wait > max_wait:
                    raise DeliveryError(
                        f"{what} {exc} and asked to wait {exc.wait:.0f} s, longer than"
                        f" max_rate_limit_wait ({max_wait:.0f} s)"
                    ) from None
                delay = max(0.0, exc.wait)
            else:
                delay = jitter() * min(
                    settings.retry_max_delay, settings.retry_base_delay * 2**number
                )
            await sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises
