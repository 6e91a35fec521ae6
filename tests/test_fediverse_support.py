"""Shared fakes for the fediverse client tests (no tests here).

``FakeTime`` replaces the clocks and ``sleep`` so retries and rate-limit waits never really
sleep: a sleep advances the fake time and is recorded. ``Routes`` is an ``httpx.MockTransport``
handler that answers by host and path and logs every request.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Self

import httpx

from fedimeter.config import Settings
from fedimeter.fediverse import FediverseClient

FIXTURES = Path(__file__).parent / "fixtures" / "mastodon"
START = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)

Handler = Callable[[httpx.Request], httpx.Response]
AsyncHandler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def fixture(name: str) -> Any:
    """A JSON fixture, parsed."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def make_settings(**overrides: Any) -> Settings:
    """Settings for tests: in-memory database, small delays, everything else default."""
    values: dict[str, Any] = {
        "database_url": "sqlite:///:memory:",
        "retry_base_delay": 1.0,
        "retry_max_delay": 8.0,
        "max_retries": 3,
    }
    values.update(overrides)
    return Settings(**values)


class FakeTime:
    """Wall clock, monotonic clock and sleep that only move when something sleeps."""

    def __init__(self, start: datetime = START) -> None:
        """Start at ``start`` with nothing slept."""
        self.start = start
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        """The fake wall-clock time."""
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        """The fake monotonic time."""
        return 1000.0 + self.elapsed

    async def sleep(self, seconds: float) -> None:
        """Record the sleep, move time on, let other tasks run."""
        self.sleeps.append(seconds)
        self.elapsed += max(0.0, seconds)
        await asyncio.sleep(0)


def http_date(moment: datetime) -> str:
    """``Sun, 22 Nov 2026 10:00:00 GMT``."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def iso_z(moment: datetime) -> str:
    """``2026-11-22T10:05:00.123456Z``, the form of Mastodon's X-RateLimit-Reset."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    """A JSON answer."""
    return httpx.Response(status, json=data, headers=headers)


def account(remote_id: str, **changes: Any) -> dict[str, Any]:
    """An account body shaped like the documented local account, with the given id."""
    body: dict[str, Any] = fixture("account_local_gargron.json")
    body["id"] = remote_id
    body.update(changes)
    return body


class Routes:
    """A MockTransport handler: ``(host, path) -> handler``; logs every request it sees."""

    def __init__(self) -> None:
        """No routes yet: everything answers 404."""
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def add(self, host: str, path: str, handler: Handler | Any) -> None:
        """Answer ``path`` on ``host`` with a handler or with fixed JSON."""
        if callable(handler):
            self.routes[(host, path)] = handler
        else:
            self.routes[(host, path)] = lambda _request: json_response(handler)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Route a request; 404 with Mastodon's body when nothing matches."""
        self.requests.append(request)
        handler = self.routes.get((request.url.netloc.decode(), request.url.path))
        if handler is None:
            return json_response({"error": "Record not found"}, 404)
        return handler(request)

    def paths(self) -> list[str]:
        """``host/path`` of every request, in order."""
        return [f"{r.url.netloc.decode()}{r.url.path}" for r in self.requests]


def make_client(
    handler: Handler | AsyncHandler | Routes,
    time: FakeTime,
    *,
    default_scheme: str | None = None,
    **settings: Any,
) -> FediverseClient:
    """A client over a MockTransport with fake time."""
    return FediverseClient(
        make_settings(**settings),
        transport=httpx.MockTransport(handler),
        sleep=time.sleep,
        clock=time.now,
        monotonic=time.monotonic,
        default_scheme=default_scheme,
    )


class KeepAliveServer:
    """A real HTTP/1.1 server on 127.0.0.1 that keeps connections open between answers.

    Every answer is ``body`` (JSON) after ``delay`` seconds. ``close_after_answer`` makes the
    server close each connection after one answer without saying so (no ``Connection:
    close``), as a server whose keep-alive timeout has passed does. With ``tls`` it speaks
    HTTPS.
    """

    def __init__(
        self,
        *,
        body: bytes = b'{"ok": true}',
        delay: float = 0.0,
        close_after_answer: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """Answer ``body``; entering the context listens."""
        self.body = body
        self.delay = delay
        self.close_after_answer = close_after_answer
        self.tls = tls
        #: Connections accepted so far, and those open now.
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Self:
        """Listen on a free port."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.tls)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_exc: object) -> None:
        """Stop listening and drop every connection."""
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def head(self) -> bytes:
        """The head of every answer."""
        return (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(self.body)}\r\n\r\n".encode()
        )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        self._writers.add(writer)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                self.requests += 1
                await asyncio.sleep(self.delay)
                writer.write(self.head + self.body)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            self._writers.discard(writer)
            writer.close()
