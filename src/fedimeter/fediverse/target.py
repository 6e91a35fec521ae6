"""Where a request goes: a URL split into what the connection and the request line need.

Parsing a URL with ``httpx.URL`` costs more CPU than the rest of a request on a kept-alive
connection (host validation, IDNA, percent-encoding each part in Python: about a quarter of
``Fetcher.get_json``'s CPU, docs/performance.md). A round sends thousands of requests to a few
dozen origins, each with a path fedimeter built itself, already percent-encoded. So
``Targets`` parses each origin (``scheme://authority``) once with httpx and keeps it, and takes a
path that holds only characters httpx would leave as they are straight as the request target;
anything else (a fragment, a dot segment, a space, a non-ASCII character, a quote) goes through
``httpx.URL`` whole, so the bytes sent are always the ones httpx would send.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import httpx

from fedimeter.errors import AddressRefused

__all__ = ["Target", "Targets"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_MAX_PORT: Final = 65535
#: A path and query httpx sends unchanged: unreserved and reserved characters, and ``%``.
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/?%\[\]]*")
#: Where the authority of a URL ends.
_AUTHORITY_END: Final = re.compile(r"[/?#]")
#: Origins remembered; more than any round's hosts, a bound against unbounded growth.
_MAX_ORIGINS: Final = 4096


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed http(s) URL."""

    #: The URL as text (after httpx's normalisation when it went through httpx).
    text: str
    scheme: str
    #: The host in ASCII (an internationalised name as punycode, an IPv6 address bare).
    host: str
    port: int
    #: ``host[:port]`` as the Host header carries it (the port only when not the default).
    netloc: bytes
    #: Path and query, percent-encoded, as the request line carries them.
    raw_path: bytes

    @property
    def authority(self) -> str:
        """``host[:port]``: what pacing, counters and messages call the server."""
        return self.netloc.decode("ascii")

    @property
    def origin(self) -> tuple[str, str, int]:
        """Scheme, host, port: what a connection can serve."""
        return (self.scheme, self.host, self.port)

    def url(self) -> httpx.URL:
        """As an ``httpx.URL`` (parsed anew: for the rare use that needs one)."""
        return httpx.URL(self.text)


_Origin = tuple[str, str, int, bytes]


class Targets:
    """Parses URLs into ``Target``s, remembering each origin it has seen."""

    def __init__(self) -> None:
        """Start with no origin known."""
        self._origins: dict[str, _Origin] = {}

    def parse(self, url: str | httpx.URL) -> Target:
        """The target of ``url``.

        Raises:
            AddressRefused: ``url`` is not a valid http(s) address.
        """
        if isinstance(url, str):
            start = url.find("://")
            if start > 0:
                end = _AUTHORITY_END.search(url, start + 3)
                cut = len(url) if end is None else end.start()
                rest = url[cut:]
                query = rest.find("?")
                path = rest if query < 0 else rest[:query]
                # Dot segments ("/./", "/../") are resolved by httpx: left to it.
                if "/." not in path and _PLAIN_PATH.fullmatch(rest):
                    scheme, host, port, netloc = self._origin(url[:cut])
                    if not rest.startswith("/"):
                        rest = "/" + rest
                    origin_text = f"{scheme}://{netloc.decode('ascii')}"
                    return Target(
                        origin_text + rest, scheme, host, port, netloc, rest.encode("ascii")
                    )
        return _from_httpx(_httpx_url(url))

    def _origin(self, text: str) -> _Origin:
        known = self._origins.get(text)
        if known is not None:
            return known
        parsed = _from_httpx(_httpx_url(text))
        found = (parsed.scheme, parsed.host, parsed.port, parsed.netloc)
        if len(self._origins) >= _MAX_ORIGINS:
            self._origins.clear()
        self._origins[text] = found
        return found


def _httpx_url(url: str | httpx.URL) -> httpx.URL:
    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        # Nothing can be checked about an address that is not one: refuse it.
        raise AddressRefused(f"{url!s} is not a valid http(s) address ({exc})") from None


def _from_httpx(url: httpx.URL) -> Target:
    """Refuse anything but an http(s) URL with a host; split the rest."""
    scheme = url.scheme
    if scheme not in _DEFAULT_PORTS or not url.host:
        raise AddressRefused(f"{url!s} is not an http(s) address")
    if url.port is not None and not 0 < url.port <= _MAX_PORT:
        raise AddressRefused(f"{url!s} is not a valid http(s) address (port {url.port})")
    try:
        host = url.raw_host.decode("ascii")
    except UnicodeDecodeError:  # pragma: no cover - httpx gives ASCII (IDNA) hosts
        raise AddressRefused(f"{url!s} has a host that is not ASCII") from None
    return Target(
        str(url),
        scheme,
        host,
        url.port or _DEFAULT_PORTS[scheme],
        url.netloc,
        url.raw_path,
    )
