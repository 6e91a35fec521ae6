"""What the simulator answers: a status, headers and a body, and how to put them on the wire.

Handlers and faults build ``Reply`` values; the HTTP layer (``_server``) only executes them.
Keeping delivery (normal, drip, truncated, reset, hang) in the value lets a fault change how an
answer is sent without the handlers knowing about faults.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Literal

__all__ = [
    "HTML",
    "JRD",
    "JSON",
    "Delivery",
    "Reply",
    "empty_reply",
    "error_reply",
    "json_reply",
]

JSON = "application/json; charset=utf-8"
#: WebFinger answers are JSON Resource Descriptors; Mastodon labels them so.
JRD = "application/jrd+json; charset=utf-8"
HTML = "text/html; charset=utf-8"

#: How the body goes out. ``normal``: all at once with the right Content-Length. ``drip``: one
#: byte every ``interval`` seconds. ``truncated``: a Content-Length for the whole body, half the
#: body, then the connection closes. ``reset``: no answer, TCP RST. ``hang``: no answer; the
#: connection stays open until the client gives up.
Delivery = Literal["normal", "drip", "truncated", "reset", "hang"]


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer, before the HTTP layer adds ``Date`` and ``Content-Length``."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delivery: Delivery = "normal"
    interval: float = 0.0
    #: The JSON value the body encodes, for faults that rewrite a normal answer.
    data: object = field(default=None, compare=False)

    def with_headers(self, extra: list[tuple[str, str]]) -> Reply:
        """Return a copy with ``extra`` headers appended."""
        if not extra:
            return self
        return replace(self, headers=(*self.headers, *extra))


def _encode(value: object) -> bytes:
    # Compact separators like Rails' JSON encoder: the byte counts of real answers matter
    # more to drip and truncation faults than prettiness does.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_reply(
    value: object,
    status: int = 200,
    *,
    content_type: str = JSON,
    headers: tuple[tuple[str, str], ...] = (),
) -> Reply:
    """Return a JSON answer holding ``value``."""
    return Reply(
        status=status,
        body=_encode(value),
        headers=(("Content-Type", content_type), *headers),
        data=value,
    )


def error_reply(status: int, message: str) -> Reply:
    """Return a Mastodon-style error: ``{"error": message}`` with ``status``."""
    return json_reply({"error": message}, status)


def empty_reply(status: int) -> Reply:
    """Return an answer with no body, like Rails' ``head 404``."""
    return Reply(status=status)
