"""One request as the simulator's handlers see it: method, target, headers and body.

The HTTP layer (``_server``) builds it; routing reads the headers (``Authorization``,
``Content-Type``, ``Idempotency-Key``) and, for methods that carry one, the body.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_REQUEST_BODY", "Request"]

#: Largest request body the simulated servers accept; a larger one is answered 413 by the
#: "front proxy" before the application sees it, as nginx's ``client_max_body_size`` does.
MAX_REQUEST_BODY = 1 << 20


@dataclass(frozen=True, slots=True)
class Request:
    """A parsed request: header names are lower case, values decoded as Latin-1 (RFC 9110)."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...] = ()
    #: The body of a method other than GET and HEAD (their bodies are read and dropped).
    body: bytes = b""
    #: The body was larger than the server's cap and was dropped: the answer is 413.
    too_large: bool = False

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key == wanted:
                return value
        return None
