"""A limit on the size of request bodies sent to the API (``/api/...``).

No API call needs more than a few kilobytes (the largest, a delivery naming 10,000 accounts,
is some 130 kB); without a limit a client could make the server read, parse and validate any
amount. The bytes are counted as they arrive, so a body sent in chunks, or with a
``Content-Length`` smaller than itself, stops at the limit too; a declared length over the
limit is refused before anything is read. The dashboard's forms (``/manage/add``, with its
follows export of up to 2 MB) are not under ``/api/`` and keep their own limits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from fastapi import Request, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_API_BODY", "ApiBodyLimit", "BodyTooLarge", "too_large_response"]

#: The most bytes an API request body may have: 1 MiB.
MAX_API_BODY: Final = 1024 * 1024
_PREFIX: Final = "/api/"
_V1: Final = "/api/v1/"


class BodyTooLarge(HTTPException):
    """The request body is over the limit (raised from ``receive``, answered with 413).

    An ``HTTPException``: FastAPI passes it on when reading the body fails with it, rather
    than answering "There was an error parsing the body".
    """

    def __init__(self, limit: int) -> None:
        """The error for a body over ``limit`` bytes."""
        super().__init__(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"the request body is larger than {limit} bytes, more than any API call needs",
        )


def too_large_response(path: str, detail: str) -> JSONResponse:
    """The 413 answer: fedimeter's error body, or mastodon-meter's envelope on its routes."""
    if path.startswith(_V1) or path == _V1.rstrip("/"):
        body: dict[str, object] = {"detail": detail, "code": "too_large"}
    else:
        body = {"status": False, "message": detail}
    return JSONResponse(body, status_code=status.HTTP_413_CONTENT_TOO_LARGE)


async def too_large_handler(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler for ``BodyTooLarge`` raised inside a route."""
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for 413 only
    return too_large_response(request.url.path, str(exc.detail))


class ApiBodyLimit:
    """ASGI middleware: request bodies under ``/api/`` of at most ``limit`` bytes."""

    def __init__(self, app: ASGIApp, limit: int = MAX_API_BODY) -> None:
        """Limit the bodies of requests to ``app`` under ``/api/`` to ``limit`` bytes."""
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, counting its body's bytes; 413 once they are too many."""
        if scope["type"] != "http" or not str(scope["path"]).startswith(_PREFIX):
            await self.app(scope, receive, send)
            return
        path = str(scope["path"])
        too_large = BodyTooLarge(self.limit)
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await too_large_response(path, str(too_large.detail))(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise too_large
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            # Raised where no handler answered it (a route's dependency, a background read).
            if started:
                raise
            await too_large_response(path, str(too_large.detail))(scope, receive, send)
