"""Pace requests to each host by its own ``X-RateLimit-*`` headers.

``read_rate_limit`` turns headers into a ``RateLimitInfo`` (pure, never raises).
``HostPacer`` keeps one host's budget: it counts requests down as they are sent, resets the
count from every answer (minus requests still in flight, which the server may not have counted
yet), and makes ``acquire()`` wait for the reset when the window is known to be spent.
``Pacing`` says how pacers wait; ``pacers.py`` keeps one of each kind per host.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedimeter.errors import RateLimited
from fedimeter.fediverse.times import parse_http_date, parse_timestamp

if TYPE_CHECKING:
    from datetime import datetime

__all__ = [
    "RESET_MARGIN",
    "HostPacer",
    "Pacer",
    "Pacing",
    "RateLimitInfo",
    "Sleep",
    "read_rate_limit",
]

#: Seconds added after a reset before sending again, for latency and the Date header's
#: one-second resolution.
RESET_MARGIN = 1.0
# A header value above this is garbage, not a budget or a wait.
_MAX_HEADER_NUMBER = 10**9
# A bare number this large in X-RateLimit-Reset is a Unix time, not a delay in seconds.
_UNIX_TIME_THRESHOLD = 10**9

Sleep = Callable[[float], Awaitable[None]]

# Every answer in the same second carries the same Date: parse each text once.
_server_date = functools.lru_cache(maxsize=64)(parse_http_date)


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What one answer's headers say about the host's budget; ``None`` where they say nothing.

    Delays are seconds from the moment the answer was produced, measured on the server's own
    clock when it sent a ``Date`` header, so clock skew between us and it does not matter.
    """

    limit: int | None = None
    remaining: int | None = None
    reset_in: float | None = None
    retry_after: float | None = None

    @property
    def has_budget(self) -> bool:
        """Whether the answer tells both how many requests are left and when that refills."""
        return self.remaining is not None and self.reset_in is not None


def read_rate_limit(headers: Mapping[str, str], *, now: datetime) -> RateLimitInfo:
    """Read ``X-RateLimit-Limit/Remaining/Reset``, ``Retry-After`` and ``Date``.

    Args:
        headers: the answer's headers, looked up case-insensitively (``httpx.Headers``).
        now: our own clock, used only when the answer has no usable ``Date``.

    Returns:
        The parsed values; missing or garbage headers give ``None`` fields, never an error.
    """
    date_header = headers.get("date")
    server_now = (_server_date(date_header) if date_header else None) or now
    return RateLimitInfo(
        limit=_count(headers.get("x-ratelimit-limit")),
        remaining=_count(headers.get("x-ratelimit-remaining")),
        reset_in=_reset_in(headers.get("x-ratelimit-reset"), server_now),
        retry_after=_retry_after(headers.get("retry-after"), server_now),
    )


def _count(value: str | None) -> int | None:
    if value is None:
        return None
    text = value.strip()
    if not text.isascii() or not text.isdigit() or int(text) > _MAX_HEADER_NUMBER:
        return None
    return int(text)


def _seconds(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    if number != number or number in {float("inf"), float("-inf")}:  # noqa: PLR0124 - NaN test
        return None
    return number


def _reset_in(value: str | None, server_now: datetime) -> float | None:
    if value is None:
        return None
    text = value.strip()
    number = _seconds(text)
    if number is not None:
        # Liberal: some proxies send a Unix time or a delay instead of a timestamp.
        if number >= _UNIX_TIME_THRESHOLD:
            return max(0.0, number - server_now.timestamp())
        return max(0.0, number) if number <= _MAX_HEADER_NUMBER else None
    moment = parse_timestamp(text)
    if moment is None:
        return None
    return max(0.0, (moment - server_now).total_seconds())


def _retry_after(value: str | None, server_now: datetime) -> float | None:
    if value is None:
        return None
    text = value.strip()
    number = _seconds(text)
    if number is not None:
        return max(0.0, number) if number <= _MAX_HEADER_NUMBER else None
    moment = parse_http_date(text)
    if moment is None:
        return None
    return max(0.0, (moment - server_now).total_seconds())


@dataclass(frozen=True, slots=True)
class Pacing:
    """How a host's pacers wait: the longest wait allowed, the clocks, who hears of a wait.

    Time is injected (``monotonic``, ``sleep``) so tests run without sleeping.
    """

    #: A wait longer than this fails the request (``RateLimited``) instead.
    max_wait: float
    sleep: Sleep = asyncio.sleep
    monotonic: Callable[[], float] = time.monotonic
    #: Told the seconds of each wait (the client's statistics).
    on_wait: Callable[[float], None] | None = None
    #: Seconds after a reset before sending again (latency, the Date header's resolution).
    margin: float = RESET_MARGIN


class Pacer:
    """What a host's pacers share: requests in flight, waking those who wait, a bounded wait.

    Subclasses keep a budget and decide when ``acquire()`` waits; every one ends a request
    with ``answered()`` or ``failed()`` and can be held by ``back_off()`` (a 429).
    """

    #: What runs out, for the message when the wait for it would be too long.
    budget_name = "rate limit"

    def __init__(self, host: str, pacing: Pacing) -> None:
        """Pace requests to ``host`` (named in messages) as ``pacing`` says."""
        self.host = host
        # Copied out of ``pacing``: read on every request.
        self._max_wait = pacing.max_wait
        self._sleep = pacing.sleep
        self._monotonic = pacing.monotonic
        self._on_wait = pacing.on_wait
        self._margin = pacing.margin
        self._blocked_until = 0.0
        self._in_flight = 0
        self._answer = asyncio.Event()

    @property
    def in_flight(self) -> int:
        """Requests acquired and not yet answered or failed."""
        return self._in_flight

    def failed(self) -> None:
        """A request got no answer (or was not sent); its budget stays spent (it may count)."""
        self._in_flight = max(0, self._in_flight - 1)
        self._wake()

    def back_off(self, seconds: float) -> None:
        """Send nothing this pacer paces to the host for ``seconds`` from now (a 429)."""
        self._blocked_until = max(self._blocked_until, self._monotonic() + seconds)

    def _wake(self) -> None:
        self._answer.set()
        self._answer = asyncio.Event()

    async def _wait(self, seconds: float) -> None:
        if seconds > self._max_wait:
            raise RateLimited(
                f"{self.host} has used up its {self.budget_name} for the next {seconds:.0f} s,"
                f" longer than max_rate_limit_wait ({self._max_wait:g} s); try again later"
            )
        if self._on_wait is not None:
            self._on_wait(seconds)
        await self._sleep(seconds)


class HostPacer(Pacer):
    """One host's request budget, shared by every request in flight to it.

    Call ``acquire()`` before sending, then exactly one of ``answered()`` (any HTTP answer)
    or ``failed()`` (no answer). ``back_off()`` holds every request until a moment (a 429).
    """

    def __init__(self, host: str, pacing: Pacing) -> None:
        """Pace requests to ``host`` (named in messages) as ``pacing`` says."""
        super().__init__(host, pacing)
        self._limit: int | None = None
        self._remaining: int | None = None
        self._reset_at: float | None = None
        # Until the host has answered once we do not know its budget: send one request and
        # wait for its answer instead of spending an unknown budget several times over.
        self._known = False

    @property
    def remaining(self) -> int | None:
        """Requests we may still send in the current window; ``None`` when not known."""
        return self._remaining

    @property
    def reset_at(self) -> float | None:
        """When the current window ends, on the ``monotonic`` clock; ``None`` when not known.

        The paging pacer (``paging.py``) tells by it whose budget a paging answer shows.
        """
        return self._reset_at

    async def acquire(self) -> None:
        """Wait until a request may be sent to the host, then count it as sent.

        Raises:
            RateLimited: the wait for the host's budget would be longer than ``max_wait``.
        """
        while True:
            now = self._monotonic()
            if self._reset_at is not None and now >= self._reset_at + self._margin:
                self._remaining, self._reset_at = self._limit, None
            if now < self._blocked_until:
                await self._wait(self._blocked_until - now)
                continue
            if self._remaining is not None and self._remaining <= 0:
                if self._reset_at is not None:
                    await self._wait(self._reset_at + self._margin - now)
                    continue
                if self._in_flight == 0:
                    # A refilled window spent by requests that all failed: nothing will
                    # tell us the new count, so start again as with a host never seen.
                    self._remaining, self._known = None, False
            if self._in_flight > 0 and (not self._known or self._remaining == 0):
                await self._answer.wait()
                continue
            break
        if self._remaining is not None:
            self._remaining -= 1
        self._in_flight += 1

    def answered(self, info: RateLimitInfo) -> None:
        """Take in an answer's headers: they replace our estimate of the budget."""
        self._in_flight = max(0, self._in_flight - 1)
        self._known = True
        if info.limit is not None:
            self._limit = info.limit
        if info.has_budget and info.remaining is not None and info.reset_in is not None:
            now = self._monotonic()
            reset_at = now + info.reset_in
            # Requests still in flight may not be in the server's count yet: assume they are
            # not, so the estimate can only err on the safe side.
            budget = max(0, info.remaining - self._in_flight)
            new_window = self._reset_at is None or reset_at > self._reset_at + self._margin
            if new_window or self._remaining is None:
                self._remaining, self._reset_at = budget, reset_at
            else:
                # An older answer arriving late must not raise the budget again.
                self._remaining = min(self._remaining, budget)
        self._wake()
