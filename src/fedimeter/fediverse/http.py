"""GET a JSON document from a server: pacing, retries, redirects, size cap, JSON decoding.

``Fetcher.get_json`` is the one place that talks HTTP. It sends through the guarded transport's
own ``fetch`` (no httpx request or response objects built: see ``connection``), or through any
other ``httpx.AsyncBaseTransport`` (``httpx.MockTransport`` in unit tests) by way of
``HttpxSender``, which gives the same ``Answer``; and it turns every network failure into an
error from ``fedimeter.errors``:

- 5xx, timeouts, refused or reset connections, truncated bodies: retried up to
  ``max_retries`` times with full-jitter exponential backoff, then ``RemoteUnavailable``;
- 429: waits for the host's reset (``X-RateLimit-Reset`` or ``Retry-After``) without spending
  the retry budget, at most ``MAX_THROTTLED`` times, then ``RateLimited``;
- 401/403: ``AccessDenied``; other answers are returned for the caller to judge.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import httpx

from fedimeter.clock import utc_now
from fedimeter.errors import (
    AccessDenied,
    AddressRefused,
    BadResponse,
    Halted,
    RateLimited,
    RemoteUnavailable,
    network_reason,
)
from fedimeter.fediverse.body import (
    answer_headers,
    decode_content,
    decode_json,
    read_raw,
    too_large,
)
from fedimeter.fediverse.connection import Answer, BodyTooLarge, DeadlinePassed
from fedimeter.fediverse.pacers import Pacers
from fedimeter.fediverse.paging import Shown, is_paging
from fedimeter.fediverse.ratelimit import Pacing, RateLimitInfo, read_rate_limit
from fedimeter.fediverse.stats import RequestStats
from fedimeter.fediverse.target import Target, Targets
from fedimeter.fediverse.transport import GuardedTransport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence
    from datetime import datetime

    from fedimeter.config import Settings
    from fedimeter.fediverse.paging import PagingPacer
    from fedimeter.fediverse.ratelimit import HostPacer

__all__ = ["MAX_REDIRECTS", "MAX_THROTTLED", "Fetcher", "HttpxSender", "Reply", "Sender"]

#: Redirects followed for one request.
MAX_REDIRECTS = 5
#: 429 answers accepted for one request before giving up with ``RateLimited``.
MAX_THROTTLED = 10

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Paths outside Mastodon's API rate limit (rack-attack throttles /api/* only).
_UNMETERED_PREFIXES = (b"/.well-known/", b"/nodeinfo/")
_ERROR_BODY_LIMIT = 64 * 1024


@dataclass(frozen=True, slots=True)
class Reply:
    """A final (non-redirect) answer.

    ``data`` is the parsed JSON for a 2xx answer. For other statuses it is the error body when
    that was small JSON (``{"error": ...}``), else ``None``.
    """

    target: Target
    status: int
    data: object
    #: The ``Link`` header of a 2xx answer (where the next page is), if it had one.
    link: str | None = None

    @property
    def url(self) -> httpx.URL:
        """The URL that gave the answer (after redirects)."""
        return self.target.url()

    @property
    def host(self) -> str:
        """The authority that gave the answer."""
        return self.target.authority

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300  # noqa: PLR2004 - the 2xx range

    @property
    def error_text(self) -> str:
        """The ``error`` (and ``error_description``) of an error body, or ``""``."""
        if not isinstance(self.data, dict):
            return ""
        parts = [self.data.get("error"), self.data.get("error_description")]
        return ": ".join(part for part in parts if isinstance(part, str))

    def describe(self) -> str:
        """``"404 Not Found"``."""
        return _status_text(self.status)


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str


class _Retryable(Exception):
    """A failed attempt worth retrying; ``str()`` is a verb phrase ("timed out after 30 s")."""


class Sender(Protocol):
    """Sends one GET and gives back the whole answer (``GuardedTransport`` is one)."""

    async def fetch(
        self,
        target: Target,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        limit: int,
        error_limit: int,
        read_timeout: float | None,
        connect_timeout: float | None,
        deadline: float | None,
    ) -> Answer:
        """GET ``target``; the answer's body over the wire, within the limits and deadline."""
        ...


class HttpxSender:
    """A ``Sender`` over any ``httpx.AsyncBaseTransport`` (``httpx.MockTransport``, say)."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        """Send through ``transport``."""
        self._transport = transport

    async def fetch(
        self,
        target: Target,
        headers: Sequence[tuple[bytes, bytes]],
        *,
        limit: int,
        error_limit: int,
        read_timeout: float | None,
        connect_timeout: float | None,
        deadline: float | None,
    ) -> Answer:
        """GET ``target`` through the transport and read the answer within the limits.

        Raises:
            DeadlinePassed: the answer was not whole by ``deadline``.
            BodyTooLarge: a 2xx body larger than ``limit``.
            httpx.TransportError: whatever the transport raised.
        """
        timeout = {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": read_timeout,
            "pool": None if deadline is None else deadline - asyncio.get_running_loop().time(),
        }
        request = httpx.Request(
            "GET", target.url(), headers=list(headers), extensions={"timeout": timeout}
        )
        try:
            async with asyncio.timeout_at(deadline):
                response = await self._transport.handle_async_request(request)
                try:
                    return await self._read(response, target.authority, limit, error_limit)
                finally:
                    await response.aclose()
        except TimeoutError:
            raise DeadlinePassed("the answer was not whole by the request's deadline") from None

    async def _read(
        self, response: httpx.Response, host: str, limit: int, error_limit: int
    ) -> Answer:
        headers = answer_headers(response)
        ok = 200 <= response.status_code < 300  # noqa: PLR2004 - the 2xx range
        body: bytes | None
        try:
            body = await read_raw(
                response, limit=limit if ok else error_limit, host=host, headers=headers
            )
        except BadResponse:
            if ok:
                announced = headers.get("content-length", "").strip()
                raise BodyTooLarge(limit, int(announced) if announced.isdigit() else None) from None
            body = None
        if response.is_stream_consumed and body is response.content:
            headers.pop("content-encoding", None)  # httpx has decoded it already
        return Answer(response.status_code, "1.1", b"", list(response.headers.raw), headers, body)


class Fetcher:
    """Send GET requests for JSON with the client's settings, limits and counters."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | Sender,
        *,
        stats: RequestStats | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        """Use ``transport`` for every request; ``jitter()`` gives a number in [0, 1)."""
        self.settings = settings
        self.stats = stats if stats is not None else RequestStats()
        #: While set, no new request is sent (a round is stopping); see FediverseClient.halt.
        self.halted = False
        # The guarded transport sends on its own path; any other httpx transport through httpx.
        self._sender: Sender = (
            HttpxSender(transport)
            if isinstance(transport, httpx.AsyncBaseTransport)
            and not isinstance(transport, GuardedTransport)
            else transport
        )
        self._targets = Targets()
        self._sleep = sleep
        self._clock = clock
        self._jitter = jitter
        #: Each host's budget, and Mastodon's second throttle for requests that page.
        self.pacers = Pacers(
            Pacing(
                max_wait=settings.max_rate_limit_wait,
                sleep=sleep,
                monotonic=monotonic,
                on_wait=self.stats.waited,
            )
        )
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._connections = asyncio.Semaphore(settings.max_connections)
        # Built once: the guarded transport joins them once for every request after.
        self._headers: tuple[tuple[bytes, bytes], ...] = (
            (b"User-Agent", settings.user_agent.encode("ascii", "replace")),
            (b"Accept", b"application/json"),
            (b"Accept-Encoding", b"gzip, deflate"),
        )
        self._limit = settings.max_response_bytes
        self._error_limit = min(_ERROR_BODY_LIMIT, settings.max_response_bytes)

    async def get_json(self, url: str | httpx.URL) -> Reply:
        """GET ``url`` and return the final answer, following up to ``MAX_REDIRECTS``.

        Returns:
            The answer; a 2xx answer always carries parsed JSON.

        Raises:
            AddressRefused: the host or a redirect target is not a public address, or the URL
                is not an http(s) URL at all.
            AccessDenied: 401 or 403.
            RateLimited: the host's rate-limit wait is too long, or it kept answering 429.
            RemoteUnavailable: 5xx or no answer after every retry.
            BadResponse: a 2xx answer that is not JSON or too large; a bad redirect.
        """
        current = self._targets.parse(url)
        seen = {current.text}
        for _ in range(MAX_REDIRECTS + 1):
            outcome = await self._with_retries(current)
            if isinstance(outcome, Reply):
                return outcome
            current = self._redirect_target(current, outcome.location)
            if current.text in seen:
                raise BadResponse(f"{current.authority} redirects in a loop ({current.text})")
            seen.add(current.text)
        raise BadResponse(f"{current.authority} redirected more than {MAX_REDIRECTS} times")

    async def _with_retries(self, target: Target) -> Reply | _Redirect:
        host = target.authority
        unmetered = target.raw_path.startswith(_UNMETERED_PREFIXES)
        pacer = None if unmetered else self.pacers.api(host)
        paging = (
            self.pacers.paging(host) if pacer is not None and is_paging(target.raw_path) else None
        )
        failures: list[str] = []
        throttled = 0
        while True:
            try:
                outcome, info, shown = await self._attempt(target, host, pacer, paging)
            except _Retryable as exc:
                failures.append(str(exc))
            else:
                if isinstance(outcome, Reply) and outcome.status == 429:  # noqa: PLR2004
                    throttled += 1
                    await self._throttled(host, info, throttled, pacer, paging, shown)
                    continue
                if isinstance(outcome, Reply) and outcome.status >= 500:  # noqa: PLR2004
                    failures.append(f"answered {outcome.describe()}")
                else:
                    return outcome
            if len(failures) > self.settings.max_retries:
                raise RemoteUnavailable(_summary(host, failures))
            self.stats.retries += 1
            await self._sleep(self._backoff(len(failures)))

    async def _attempt(
        self,
        target: Target,
        host: str,
        pacer: HostPacer | None,
        paging: PagingPacer | None = None,
    ) -> tuple[Reply | _Redirect, RateLimitInfo, Shown | None]:
        """Send once; the answer, what its headers say and (paging) whose budget they show.

        A paging request waits for the paging budget first, before it takes one of the
        host's connection slots and its API budget: a wait of up to the paging window must
        hold neither.
        """
        if paging is None:
            outcome, info = await self._attempt_once(target, host, pacer, None)
            return outcome, info, None
        await paging.acquire()
        shown: list[Shown] = []
        try:
            outcome, info = await self._attempt_once(target, host, pacer, (paging, shown))
        finally:
            if not shown:
                paging.failed()
        return outcome, info, shown[0]

    async def _attempt_once(
        self,
        target: Target,
        host: str,
        pacer: HostPacer | None,
        paging: tuple[PagingPacer, list[Shown]] | None,
    ) -> tuple[Reply | _Redirect, RateLimitInfo]:
        """Send once; the answer and what its headers say about the rate limit."""
        async with self._host_slot(host):
            if pacer is not None:
                await pacer.acquire()
            if self.halted:
                # Stopping: nothing new goes out, what is on the wire is let finish.
                if pacer is not None:
                    pacer.failed()
                raise Halted(f"{host} was not asked: the round is stopping")
            answered = False
            settings = self.settings
            try:
                async with self._connections:
                    self.stats.sent(host)
                    deadline = asyncio.get_running_loop().time() + settings.request_deadline
                    answer = await self._sender.fetch(
                        target,
                        self._headers,
                        limit=self._limit,
                        error_limit=self._error_limit,
                        read_timeout=settings.read_timeout,
                        connect_timeout=settings.connect_timeout,
                        deadline=deadline,
                    )
                self.stats.answered(answer.status)
                info = read_rate_limit(answer.headers, now=self._clock())
                _take_in(info, pacer, paging)
                answered = True
                return self._outcome(target, host, answer), info
            except DeadlinePassed:
                deadline_text = f"{settings.request_deadline:g}"
                raise _Retryable(f"did not finish answering within {deadline_text} s") from None
            except BodyTooLarge as exc:
                too_large(host, exc.limit, exc.announced)
            except httpx.TransportError as exc:
                raise _Retryable(self._describe_failure(exc)) from None
            finally:
                if not answered:
                    self.stats.failures += 1
                    if pacer is not None:
                        pacer.failed()

    def _outcome(self, target: Target, host: str, answer: Answer) -> Reply | _Redirect:
        status = answer.status
        headers = answer.headers
        if status in _REDIRECTS:
            location = headers.get("location", "").strip()
            if not location:
                raise BadResponse(f"{host} answered {_status_text(status)} without a Location")
            return _Redirect(location)
        if status in {401, 403}:
            raise AccessDenied(
                f"{host} answered {_status_text(status)}: it lets only signed-in users or "
                "servers read this (limited federation mode or authorized fetch)"
            )
        content_type = headers.get("content-type")
        encoding = headers.get("content-encoding")
        raw = answer.body
        if 200 <= status < 300:  # noqa: PLR2004 - the 2xx range
            assert raw is not None  # noqa: S101 - a 2xx body over its limit raised
            self.stats.bytes_received += len(raw)
            body = decode_content(raw, encoding, limit=self._limit, host=host)
            data = decode_json(body, content_type=content_type, host=host)
            return Reply(target, status, data, headers.get("link"))
        if raw is None:
            return Reply(target, status, None)  # an error body too large to keep
        self.stats.bytes_received += len(raw)
        try:
            body = decode_content(raw, encoding, limit=self._error_limit, host=host)
            data = decode_json(body, content_type=content_type, host=host)
        except (BadResponse, httpx.RemoteProtocolError):
            data = None  # an error page: the status says enough
        return Reply(target, status, data)

    async def _throttled(  # noqa: PLR0917 - the request's pacers and what they saw
        self,
        host: str,
        info: RateLimitInfo,
        count: int,
        pacer: HostPacer | None,
        paging: PagingPacer | None = None,
        shown: Shown | None = None,
    ) -> None:
        """Hold the host after a 429: until Retry-After, the reset, or an exponential backoff.

        A paging request's 429 holds its paging budget, and the host's other requests too
        unless the figures were the paging throttle's alone.

        Raises:
            RateLimited: too many 429s in a row, or a wait longer than max_rate_limit_wait.
        """
        if count > MAX_THROTTLED:
            raise RateLimited(f"{host} answered 429 Too Many Requests {count} times in a row")
        if info.retry_after is not None:
            wait: float | None = info.retry_after
        elif info.reset_in is not None:
            # When the headers say the window is spent, the pacers wait for the reset
            # themselves (both took the figures in, unless they were not known to be the API's).
            spent = (
                pacer is not None
                and info.has_budget
                and info.remaining == 0
                and shown in {None, Shown.SAME, Shown.PAGING}
            )
            wait = None if spent else info.reset_in
        else:
            wait = self._exponential(count)
        if pacer is not None:
            if wait is not None:
                if paging is not None:
                    paging.back_off(wait)
                if paging is None or shown is not Shown.PAGING:
                    pacer.back_off(wait)
            return
        # Unmetered paths have no pacer: wait here.
        wait = wait or 0.0
        if wait > self.settings.max_rate_limit_wait:
            raise RateLimited(
                f"{host} asks us to wait {wait:.0f} s, longer than max_rate_limit_wait "
                f"({self.settings.max_rate_limit_wait:g} s); try again later"
            )
        self.stats.waited(wait)
        await self._sleep(wait)

    def _redirect_target(self, current: Target, location: str) -> Target:
        host = current.authority
        try:
            joined = current.url().join(location)
        except httpx.InvalidURL:
            raise BadResponse(f"{host} redirected to an invalid URL {location!r}") from None
        try:
            return self._targets.parse(joined)
        except AddressRefused:
            raise BadResponse(
                f"{host} redirected to {location!r}, which is not an http(s) URL"
            ) from None

    def _host_slot(self, host: str) -> asyncio.Semaphore:
        slot = self._host_slots.get(host)
        if slot is None:
            slot = asyncio.Semaphore(self.settings.per_host_concurrency)
            self._host_slots[host] = slot
        return slot

    def _exponential(self, attempt: int) -> float:
        """``retry_base_delay`` doubling per attempt, capped at ``retry_max_delay``."""
        base = self.settings.retry_base_delay * 2 ** min(attempt - 1, 62)
        return float(min(self.settings.retry_max_delay, base))

    def _backoff(self, attempt: int) -> float:
        """Full jitter: a uniform delay up to the exponential bound, so clients spread out."""
        return self._jitter() * self._exponential(attempt)

    def _describe_failure(self, exc: httpx.TransportError) -> str:
        settings = self.settings
        if isinstance(exc, httpx.ConnectTimeout):
            return f"did not accept a connection within {settings.connect_timeout:g} s"
        if isinstance(exc, httpx.PoolTimeout):
            return "could not get a free connection in time"
        if isinstance(exc, httpx.TimeoutException):
            return f"timed out after {settings.read_timeout:g} s"
        if isinstance(exc, httpx.ConnectError):
            return f"could not be reached ({network_reason(exc)})"
        if isinstance(exc, httpx.RemoteProtocolError):
            return f"broke off the answer ({network_reason(exc)})"
        return f"failed on the network ({type(exc).__name__}: {exc})"


def _take_in(
    info: RateLimitInfo,
    pacer: HostPacer | None,
    paging: tuple[PagingPacer, list[Shown]] | None,
) -> None:
    """Give an answer's rate-limit figures to the pacers they belong to.

    A paging request's figures go to its paging pacer, which says whose budget they show
    (in ``paging[1]``); the API pacer takes them only when they may be its own: figures of
    the paging window must not hold the host's other requests.
    """
    if paging is None:
        if pacer is not None:
            pacer.answered(info)
        return
    shown = paging[0].answered(info)
    paging[1].append(shown)
    if pacer is not None:
        pacer.answered(info if shown is Shown.SAME else RateLimitInfo())


def _summary(host: str, failures: list[str]) -> str:
    last = failures[-1]
    if all(failure == last for failure in failures):
        times = {1: "once", 2: "twice"}.get(len(failures), f"{len(failures)} times")
        return f"{host} {last} {times}"
    return f"{host} {last} (failed {len(failures)} attempts in all)"


def _status_text(status: int) -> str:
    phrase = httpx.codes.get_reason_phrase(status)
    return f"{status} {phrase}" if phrase else str(status)
