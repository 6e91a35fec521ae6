"""Read an answer's body within a size cap and decode it as JSON, refusing anything else."""

from __future__ import annotations

import json
import zlib
from typing import TYPE_CHECKING, NoReturn

import httpx

from fedimeter.errors import BadResponse

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MAX_JSON_DEPTH",
    "answer_headers",
    "decode_content",
    "decode_json",
    "read_body",
    "read_raw",
    "too_large",
]

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
    """Read the whole body of an httpx answer, decompressed, never holding more than ``limit``.

    ``headers`` are the answer's, lower-case names to values (``answer_headers``), when the
    caller has them already; otherwise they are read from ``response``.

    Returns:
        The decoded body.

    Raises:
        BadResponse: the body is (or announces to be) larger than ``limit``, or is compressed
            with an unknown or corrupt encoding.
        httpx.RemoteProtocolError: a compressed body ended early (a truncated answer).
    """
    if headers is None:
        headers = answer_headers(response)
    raw = await read_raw(response, limit=limit, host=host, headers=headers)
    if response.is_stream_consumed and raw is response.content:
        return raw  # httpx has decoded it already
    return decode_content(raw, headers.get("content-encoding"), limit=limit, host=host)


async def read_raw(
    response: httpx.Response, *, limit: int, host: str, headers: Mapping[str, str]
) -> bytes:
    """The body as it came over the wire (compressed if it was), at most ``limit`` bytes.

    An answer built in memory (a transport that answers with ready content, as
    ``httpx.MockTransport`` may) comes back as ``response.content``, which httpx has decoded.

    Raises:
        BadResponse: the body is (or announces to be) larger than ``limit``.
    """
    announced = headers.get("content-length", "").strip()
    if announced.isascii() and announced.isdigit() and int(announced) > limit:
        _too_large(host, limit, f"announced a {int(announced):,}-byte answer,")
    if response.is_stream_consumed:
        if len(response.content) > limit:
            _too_large(host, limit, "sent an answer")
        return response.content
    chunks: list[bytes] = []
    wire = 0
    # The stream itself, not ``aiter_raw()``: httpx's layers around it (a chunker, counters,
    # one more async generator) cost more CPU than the reading, for nothing used here.
    async for raw in response.stream:  # type: ignore[union-attr]
        wire += len(raw)
        if wire > limit:
            _too_large(host, limit, "sent an answer")
        chunks.append(raw)
    return b"".join(chunks)


def decode_content(raw: bytes, encoding: str | None, *, limit: int, host: str) -> bytes:
    """Decompress a body by its ``Content-Encoding``, never producing more than ``limit`` bytes.

    The cap applies while decompressing, so a small compressed bomb cannot exhaust memory.

    Raises:
        BadResponse: the result would pass ``limit``, or the encoding is unknown or corrupt.
        httpx.RemoteProtocolError: a compressed body ended early (a truncated answer).
    """
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return raw
    if name in {"gzip", "x-gzip"}:
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif name == "deflate":
        inflater = zlib.decompressobj()
    else:
        raise BadResponse(f"{host} answered with an unsupported Content-Encoding {name!r}")
    try:
        body = inflater.decompress(raw, limit + 1)
        if len(body) > limit or inflater.unconsumed_tail:
            # More output than the cap allows: a bomb, or just too big.
            _too_large(host, limit, "sent an answer that decompresses")
        if not inflater.eof:
            raise httpx.RemoteProtocolError(f"the {name} body from {host} ended early")
        tail = inflater.flush()
    except zlib.error as exc:
        raise BadResponse(f"{host} sent a corrupt {name} body ({exc})") from None
    if len(body) + len(tail) > limit:
        _too_large(host, limit, "sent an answer that decompresses")
    return body + tail if tail else body


def too_large(host: str, limit: int, announced: int | None) -> NoReturn:
    """Raise the ``BadResponse`` for a body over ``limit`` (``announced``: its Content-Length).

    Raises:
        BadResponse: always.
    """
    if announced is not None:
        _too_large(host, limit, f"announced a {announced:,}-byte answer,")
    _too_large(host, limit, "sent an answer")


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
        text = body.decode(json.detect_encoding(body), "surrogatepass")
        # One decoder for every answer: ``json.loads`` with an option builds one per call.
        value = _DECODER.decode(text)
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


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def _depth_exceeds(value: object, limit: int) -> bool:
    """Whether arrays/objects nest deeper than ``limit``; iterative, so it cannot overflow.

    Level by level, keeping only the containers of each: a 40-account answer has a few
    hundred of them among thousands of values, and a walk that examined every value one at
    a time cost four times as much.
    """
    level: list[dict[str, object] | list[object]] = (
        [value] if isinstance(value, dict | list) else []
    )
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        below: list[dict[str, object] | list[object]] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            below += [child for child in children if type(child) in _CONTAINERS]  # type: ignore[misc]
        level = below
    return False


#: What ``json`` makes of arrays and objects (exactly these types, never subclasses).
_CONTAINERS = frozenset((dict, list))


def _too_large(host: str, limit: int, what: str) -> NoReturn:
    raise BadResponse(f"{host} {what} larger than max_response_bytes ({limit:,} bytes) allows")
