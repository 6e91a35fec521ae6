"""Parse what people type to name an account or an instance.

Accepted account forms: ``@user@host``, ``user@host``, ``user@host:port``, ``acct:user@host``
and profile URLs (``https://host/@user``, ``https://host/users/user``,
``https://host/@user@other.host``). Host names are normalised to lower-case ASCII (IDNA
``xn--`` labels), IPv4 numbers written in decimal, hex or octal become dotted quads, IPv6
literals are compressed. Parsing is idempotent: ``parse_account_ref(str(ref.handle))`` gives
``ref.handle`` back.

Pure: no I/O, no DNS.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote

import idna

from fedimeter.domain.models import DEFAULT_PORTS, AccountRef, Handle, InstanceAddress
from fedimeter.errors import InvalidHandle

__all__ = ["MAX_INPUT_LENGTH", "parse_account_ref", "parse_authority", "parse_ipv4_number"]

#: Longest input accepted: a 64-character user name, ``@`` and a 255-character domain.
MAX_INPUT_LENGTH = 320
_MAX_USERNAME = 64
_MAX_HOST = 253
_MAX_LABEL = 63
_MAX_PORT = 65535
_BYTE = 0xFF

# Mastodon's own pattern for remote user names: word characters, with dots and dashes only
# between them. Other servers (Pleroma, Misskey, GoToSocial) stay inside it.
_USERNAME = re.compile(r"[A-Za-z0-9_]+(?:[.-]+[A-Za-z0-9_]+)*")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX = re.compile(r"0[xX][0-9a-fA-F]*")
_OCTAL = re.compile(r"0[0-7]+")
_ENDS_IN_NUMBER = re.compile(r"(?:[0-9]+|0[xX][0-9a-fA-F]*)")
_FORBIDDEN_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")

_EXPECTED_ACCOUNT = "expected @user@host, user@host or a profile URL such as https://host/@user"
_EXPECTED_INSTANCE = "expected host, host:port or https://host"


def parse_account_ref(text: str, *, default_scheme: str = "https") -> AccountRef:
    """Parse an account handle or profile URL.

    A bare handle gives ``AccountRef(handle, web=None)``. A profile URL gives the handle
    ``user@authority`` and ``web`` set to the URL's scheme and authority (WebFinger later says
    whether the handle's domain differs); ``https://host/@user@other`` names a remote account
    seen through ``host`` and gives ``user@other`` with ``web=None``, because only the account's
    home server has its true counts.

    Args:
        text: what a person typed.
        default_scheme: scheme assumed for a profile URL written without one (``host/@user``).

    Returns:
        The parsed reference, normalised.

    Raises:
        InvalidHandle: the text is not a handle or profile URL; the message says why.
    """
    stripped = _prepare(text, what="an account handle", expected=_EXPECTED_ACCOUNT)
    if _SCHEME.match(stripped):
        return _parse_profile_url(stripped)
    if stripped.lower().startswith("acct:"):
        return AccountRef(handle=_parse_handle(stripped[5:]))
    head = stripped.split("/", 1)[0]
    if "/" in stripped and "@" not in head:
        # ``host/@user`` typed without a scheme.
        return _parse_profile_url(f"{_check_scheme(default_scheme)}://{stripped}")
    return AccountRef(handle=_parse_handle(stripped.rstrip("/")))


def parse_authority(text: str, scheme: str = "https") -> InstanceAddress:
    """Parse an instance address: ``host``, ``host:port`` or ``https://host[:port]/``.

    A scheme in the text wins over ``scheme``. A port that is the scheme's default is dropped.

    Returns:
        The normalised address.

    Raises:
        InvalidHandle: the text is not a host, ``host:port`` or an http(s) URL with an empty
            path; the message says why.
    """
    stripped = _prepare(text, what="an instance address", expected=_EXPECTED_INSTANCE)
    match = _SCHEME.match(stripped)
    if match:
        scheme = match.group(1)
        rest = stripped[match.end() :]
        authority, path = _split_url(rest, expected=_EXPECTED_INSTANCE)
        if path.strip("/"):
            raise InvalidHandle(
                f"{text.strip()!r} is a page, not an instance address; {_EXPECTED_INSTANCE}"
            )
    else:
        authority = stripped.rstrip("/")
    scheme = _check_scheme(scheme)
    host, port = _split_authority(authority)
    if port == DEFAULT_PORTS[scheme]:
        port = None
    return InstanceAddress(host=host, scheme=scheme, port=port)


def parse_ipv4_number(text: str) -> ipaddress.IPv4Address | None:
    """Read a host written as an IPv4 number the way URL parsers and ``inet_aton`` do.

    ``127.0.0.1``, ``2130706433``, ``0x7f.1``, ``017700000001`` and ``127.1`` all mean
    127.0.0.1: one to four parts in decimal, hex (``0x``) or octal (leading ``0``), the last
    part filling the remaining bytes. A single trailing dot is allowed.

    Returns:
        The address, or ``None`` when the text is not such a number (a host name, or a number
        out of range).
    """
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4:  # noqa: PLR2004 - an IPv4 address has four bytes
        return None
    numbers: list[int] = []
    for part in parts:
        number = _ipv4_part(part)
        if number is None:
            return None
        numbers.append(number)
    *leading, last = numbers
    if any(n > _BYTE for n in leading) or last >= 256 ** (4 - len(leading)):
        return None
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(part: str) -> int | None:
    if _HEX.fullmatch(part):
        return int(part[2:] or "0", 16)
    if _OCTAL.fullmatch(part):
        return int(part, 8)
    if _DECIMAL.fullmatch(part):
        return int(part)
    return None


def _prepare(text: str, *, what: str, expected: str) -> str:
    """Strip surrounding whitespace and refuse empty, over-long or space-holding text."""
    if not isinstance(text, str):
        raise InvalidHandle(f"{what} must be text, not {type(text).__name__}; {expected}")
    stripped = text.strip()
    if not stripped:
        raise InvalidHandle(f"{what} cannot be empty; {expected}")
    if len(stripped) > MAX_INPUT_LENGTH:
        raise InvalidHandle(
            f"{what} is at most {MAX_INPUT_LENGTH} characters, this one has {len(stripped)}"
        )
    if _FORBIDDEN_CHARS.search(stripped):
        raise InvalidHandle(f"{stripped!r} holds spaces or control characters; {expected}")
    return stripped


def _check_scheme(scheme: str) -> str:
    lowered = scheme.lower()
    if lowered not in DEFAULT_PORTS:
        raise InvalidHandle(f"only http and https addresses are supported, not {scheme!r}")
    return lowered


def _parse_handle(text: str) -> Handle:
    """``[@]user@host[:port]`` to a Handle."""
    body = text.removeprefix("@")
    if "@" not in body:
        raise InvalidHandle(
            f"{text!r} is not a handle: it needs a user name and a host; {_EXPECTED_ACCOUNT}"
        )
    if body.count("@") > 1:
        raise InvalidHandle(f"{text!r} has too many @ signs; {_EXPECTED_ACCOUNT}")
    username, domain = body.split("@")
    if not domain:
        raise InvalidHandle(f"{text!r} has no host after the @; {_EXPECTED_ACCOUNT}")
    host, port = _split_authority(domain)
    return Handle(username=_check_username(username, text), domain=_authority(host, port))


def _parse_profile_url(url: str) -> AccountRef:
    match = _SCHEME.match(url)
    if match is None:  # pragma: no cover - callers checked
        raise InvalidHandle(f"{url!r} is not a profile URL; {_EXPECTED_ACCOUNT}")
    scheme = _check_scheme(match.group(1))
    authority, path = _split_url(url[match.end() :], expected=_EXPECTED_ACCOUNT)
    host, port = _split_authority(authority)
    if port == DEFAULT_PORTS[scheme]:
        port = None
    web = InstanceAddress(host=host, scheme=scheme, port=port)
    segments = [unquote(segment) for segment in path.strip("/").split("/")]
    if len(segments) == 1 and segments[0].startswith("@"):
        name = segments[0][1:]
        if "@" in name:
            # ``https://a/@user@b``: a's cached copy of b's account; measure it at home.
            return AccountRef(handle=_parse_handle(name))
        return AccountRef(handle=Handle(_check_username(name, url), web.authority), web=web)
    if len(segments) == 2 and segments[0] == "users":  # noqa: PLR2004 - /users/<name>
        return AccountRef(handle=Handle(_check_username(segments[1], url), web.authority), web=web)
    raise InvalidHandle(
        f"{url!r} is not a profile URL; expected https://host/@user or https://host/users/user"
    )


def _split_url(rest: str, *, expected: str) -> tuple[str, str]:
    """Split what follows ``scheme://`` into authority and path, refusing what we never use."""
    if "?" in rest or "#" in rest:
        raise InvalidHandle(f"an address with a query or fragment is not supported; {expected}")
    authority, _, path = rest.partition("/")
    if "@" in authority:
        raise InvalidHandle(f"an address with a user name or password in it is refused; {expected}")
    if not authority:
        raise InvalidHandle(f"the address has no host; {expected}")
    return authority, path


def _check_username(username: str, text: str) -> str:
    if not username:
        raise InvalidHandle(f"{text!r} has no user name before the @; {_EXPECTED_ACCOUNT}")
    if len(username) > _MAX_USERNAME or not _USERNAME.fullmatch(username):
        raise InvalidHandle(
            f"{username!r} is not a valid user name: use letters, digits and _, "
            "with . or - only between them"
        )
    return username


def _split_authority(authority: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` to a normalised host and port."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            raise InvalidHandle(f"{authority!r} opens an IPv6 address with [ but never closes it")
        host = _ipv6(authority[1:end])
        rest = authority[end + 1 :]
        if rest and not rest.startswith(":"):
            raise InvalidHandle(f"unexpected {rest!r} after the IPv6 address in {authority!r}")
        return host, _port(rest[1:], authority) if rest else None
    if authority.count(":") > 1:
        raise InvalidHandle(f"write IPv6 addresses in brackets, as [{authority}]")
    name, colon, port_text = authority.partition(":")
    return _hostname(name), _port(port_text, authority) if colon else None


def _port(text: str, authority: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= _MAX_PORT:
        raise InvalidHandle(f"{authority!r} has a bad port {text!r}; use a number from 1 to 65535")
    return int(text)


def _ipv6(text: str) -> str:
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        raise InvalidHandle(f"[{text}] is not a valid IPv6 address") from None
    if address.scope_id:
        raise InvalidHandle(f"[{text}] has a zone index, which cannot name a server")
    return address.compressed


def _hostname(name: str) -> str:
    """Lower-case ASCII host name, IDNA-encoded, or a dotted-quad IPv4 address."""
    if not name:
        raise InvalidHandle(f"the host name is missing; {_EXPECTED_INSTANCE}")
    name = name.removesuffix(".")
    if name.isascii():
        ascii_name = name.lower()
    else:
        try:
            ascii_name = idna.encode(name, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise InvalidHandle(f"{name!r} is not a valid host name") from None
    labels = ascii_name.split(".")
    if _ENDS_IN_NUMBER.fullmatch(labels[-1]):
        # As in URL parsers: a host ending in a number is an IPv4 address or nothing.
        address = parse_ipv4_number(ascii_name)
        if address is None:
            raise InvalidHandle(f"{name!r} is neither a host name nor an IPv4 address")
        return str(address)
    if len(ascii_name) > _MAX_HOST or not all(_valid_label(label) for label in labels):
        raise InvalidHandle(
            f"{name!r} is not a valid host name: use letters, digits, - and dots between labels"
        )
    return ascii_name


def _valid_label(label: str) -> bool:
    if len(label) > _MAX_LABEL or not _LABEL.fullmatch(label):
        return False
    if label.startswith("xn--"):
        try:
            idna.decode(label)
        except (idna.IDNAError, UnicodeError):
            return False
    return True


def _authority(host: str, port: int | None) -> str:
    """Format like ``InstanceAddress.authority``."""
    return InstanceAddress(host=host, port=port).authority
