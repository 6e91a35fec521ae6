"""Read an answer's body within a size cap and decode it as JSON, refusing anything else."""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, NoReturn

import httpx

from fedimeter.errors import BadResponse

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["MAX_JSON_DEPTH", "answer_headers", "decode_json", "read_body"]

#: Deepest nesting of arrays and objects accepted; real answers stay under ten.
MAX_JSON_DEPTH = 64

_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_XML_TYPES = frozenset({"text/xml", "application/xml"})


async def read_body(
    response: httpx.Response,
    *,
    limit: int,
    host: str,
    headers: Mapping[str, str] | None = None,
) -> bytes:
    """Read the whole body, decompressing gzip or deflate, never holding more than ``limit``.

    ``headers`` are the answer's, lower-case names to values (``answer_headers``), when the
    caller has them already; otherwise they are read from ``response``.

    Both the bytes on the wire and the decompressed bytes are capped, so neither a huge
    answer nor a small compressed bomb can exhaust memory.

    Returns:
        The decoded body.

    Raises:
        BadResponse: the body is (or announces to be) larger than ``limit``, or is compressed
            with an unknown or corrupt encoding.
        httpx.RemoteProtocolError: a compressed body ended early (a truncated answer).
    """
    if headers is None:
        headers = response.headers
    announced = headers.get("content-length", "").strip()
    if announced.isascii() and announced.isdigit() and int(announced) > limit:
        _too_large(host, limit, f"announced a {int(announced):,}-byte answer,")
    if response.is_stream_consumed:
        # Built in memory (a transport that answers with ready content, as MockTransport
        # does): httpx has decoded it already.
        if len(response.content) > limit:
            _too_large(host, limit, "sent an answer")
        return response.content
    decompress, finish = _decoder(headers.get("content-encoding"), host, limit)
    chunks: list[bytes] = []
    wire = size = 0
    # The stream itself, not ``aiter_raw()``: httpx's layers around it (a chunker, counters,
    # one more async generator) cost more CPU than the reading, for nothing used here.
    async for raw in response.stream:  # type: ignore[union-attr]
        wire += len(raw)
        if wire > limit:
            _too_large(host, limit, "sent an answer")
        part = decompress(raw, limit - size + 1)
        size += len(part)
        if size > limit:
            _too_large(host, limit, "sent an answer that decompresses")
        chunks.append(part)
    tail = finish()
    if size + len(tail) > limit:
        _too_large(host, limit, "sent an answer that decompresses")
    chunks.append(tail)
    return b"".join(chunks)


def answer_headers(response: httpx.Response) -> dict[str, str]:
    """The answer's headers by lower-case name, repeated ones joined with ``", "``.

    Built once per answer: ``httpx.Headers.get`` walks every header on each lookup, and an
    answer is looked up some ten times (rate limit, type, length, encoding, location).
    """
    found: dict[str, str] = {}
    for name, value in response.headers.multi_items():
        if name in found:
            found[name] = f"{found[name]}, {value}"
        else:
            found[name] = value
    return found


def decode_json(body: bytes, *, content_type: str | None, host: str) -> object:
    """Parse an answer body as JSON.

    The ``Content-Type`` must not be HTML or XML; an untyped or ``text/plain`` body is accepted
    when it parses, as some servers label JSON badly. ``NaN``/``Infinity`` and nesting deeper
    than ``MAX_JSON_DEPTH`` are refused.

    Returns:
        The parsed value (dict, list, str, int, float, bool or None).

    Raises:
        BadResponse: the body is HTML, XML, empty, not JSON, or nested too deeply.
    """
    media = (content_type or "").split(";", 1)[0].strip().lower()
    looks_like_markup = body.lstrip()[:1] == b"<"
    if media in _HTML_TYPES or (looks_like_markup and media not in _XML_TYPES):
        raise BadResponse(f"{host} answered with an HTML page instead of JSON")
    if media in _XML_TYPES or media.endswith("+xml"):
        raise BadResponse(f"{host} answered with XML ({media}) instead of JSON")
    if not body.strip():
        raise BadResponse(f"{host} answered with an empty body instead of JSON")
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        raise BadResponse(f"{host} answered with JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, huge integers
        if media and not _is_json_type(media):
            raise BadResponse(f"{host} answered with {media} instead of JSON") from None
        raise BadResponse(f"{host} answered with malformed JSON ({exc})") from None
    # Nesting deeper than the limit needs more brackets than the limit: most answers have
    # fewer in all, and need no walk.
    brackets = body.count(b"[") + body.count(b"{")
    if brackets > MAX_JSON_DEPTH and _depth_exceeds(value, MAX_JSON_DEPTH):
        raise BadResponse(f"{host} answered with JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _is_json_type(media: str) -> bool:
    return media == "application/json" or media.endswith("+json")


def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit``; iterative, so it cannot overflow."""
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: list[object]
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _too_large(host: str, limit: int, what: str) -> NoReturn:
    raise BadResponse(f"{host} {what} larger than max_response_bytes ({limit:,} bytes) allows")


def _decoder(
    encoding: str | None, host: str, limit: int
) -> tuple[Callable[[bytes, int], bytes], Callable[[], bytes]]:
    """A ``(decompress(chunk, max_length), finish())`` pair for a ``Content-Encoding``."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return (lambda chunk, _limit: chunk), (lambda: b"")
    if name in {"gzip", "x-gzip"}:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif name == "deflate":
        inflater = zlib.decompressobj()
    else:
        raise BadResponse(f"{host} answered with an unsupported Content-Encoding {name!r}")

    def decompress(chunk: bytes, max_length: int) -> bytes:
        try:
            part = inflater.decompress(chunk, max_length)
        except zlib.error as exc:
            raise BadResponse(f"{host} sent a corrupt {name} body ({exc})") from None
        if inflater.unconsumed_tail:
            # More output is waiting than the cap allows: a bomb, or just too big.
            _too_large(host, limit, "sent an answer that decompresses")
        return part

    def finish() -> bytes:
        if not inflater.eof:
            raise httpx.RemoteProtocolError(f"the {name} body from {host} ended early")
        return inflater.flush()

    return decompress, finish
