"""Which IP addresses fedimeter may connect to (the SSRF guard's rules). Pure: no I/O.

A server is measured only at a globally routable address, unless the settings allow private
networks. The tables follow the IANA special-purpose address registries rather than
``ipaddress.is_global``, whose answers changed between Python releases (3.11 calls
``64:ff9b::7f00:1``, NAT64 for 127.0.0.1, global). IPv6 forms that carry an IPv4 address
(mapped, compatible, 6to4, NAT64) are judged by the address they carry.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Final

from fedimeter.domain.handles import parse_ipv4_number
from fedimeter.errors import AddressRefused

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["IPAddress", "check_address", "ip_literal", "is_loopback_host", "refusal_reason"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Most specific first: the first network that holds an address names why it is refused.
_IPV4_RULES: Final[tuple[tuple[_V4, str], ...]] = (
    (_V4("0.0.0.0/32"), "the unspecified address"),
    (_V4("0.0.0.0/8"), "a 'this network' address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("100.64.0.0/10"), "a carrier-grade NAT (shared) address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.0.0.0/24"), "an IETF protocol assignment address"),
    (_V4("192.0.2.0/24"), "a documentation address"),
    (_V4("192.88.99.0/24"), "a deprecated 6to4 relay address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("198.18.0.0/15"), "a benchmarking address"),
    (_V4("198.51.100.0/24"), "a documentation address"),
    (_V4("203.0.113.0/24"), "a documentation address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("255.255.255.255/32"), "the broadcast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
)

_IPV6_RULES: Final[tuple[tuple[_V6, str], ...]] = (
    (_V6("::/128"), "the unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_V6("100::/64"), "a discard-only address"),
    (_V6("2001:db8::/32"), "a documentation address"),
    (_V6("2001::/23"), "an IETF protocol assignment address"),
    (_V6("3fff::/20"), "a documentation address"),
    (_V6("5f00::/16"), "a segment-routing address"),
    (_V6("fc00::/7"), "a unique local (private) address"),
    (_V6("fe80::/10"), "a link-local address"),
    (_V6("fec0::/10"), "a site-local address"),
    (_V6("ff00::/8"), "a multicast address"),
)

# Global unicast space; everything outside it (and not an IPv4 carrier) is reserved.
_IPV6_GLOBAL_UNICAST: Final = _V6("2000::/3")
_IPV4_COMPATIBLE: Final = _V6("::/96")
_NAT64: Final = _V6("64:ff9b::/96")


def ip_literal(host: str) -> IPAddress | None:
    """The IP address a URL host names directly, without DNS.

    Understands IPv6 (with or without brackets) and every IPv4 spelling that URL parsers and
    ``getaddrinfo`` accept (``2130706433``, ``0x7f.1``, ``017700000001``), so that none of
    them slips past the guard as a "host name".

    Returns:
        The address, or ``None`` when ``host`` is a name that needs DNS.
    """
    text = host.strip("[]")
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text)
        except ValueError:
            return None
    return parse_ipv4_number(text)


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (in any spelling).

    For deciding where it is safe to listen or send a password without TLS; a name other
    than ``localhost`` is not trusted to be local, whatever DNS says today.
    """
    if host.strip().lower() == "localhost":
        return True
    literal = ip_literal(host.strip())
    return literal is not None and literal.is_loopback


def refusal_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public Internet address.

    Returns:
        A phrase such as ``"a loopback address"``, or ``None`` when the address is globally
        routable.
    """
    if isinstance(address, ipaddress.IPv4Address):
        return _first_match(address, _IPV4_RULES)
    carried = _carried_ipv4(address)
    if carried is not None:
        inner = refusal_reason(carried)
        if inner is not None:
            return f"{inner} ({carried}) written as IPv6"
        if address in _IPV4_COMPATIBLE:
            return "a deprecated IPv4-compatible address"
        return None
    reason = _first_match(address, _IPV6_RULES)
    if reason is None and address not in _IPV6_GLOBAL_UNICAST:
        return "a reserved address"
    return reason


def check_address(address: IPAddress, *, host: str, allow_private: bool) -> None:
    """Refuse a connection to ``address`` (what ``host`` resolved to) unless it is public.

    Raises:
        AddressRefused: the address is not globally routable and ``allow_private`` is off.
    """
    if allow_private:
        return
    reason = refusal_reason(address)
    if reason is None:
        return
    named = str(address) if host.strip("[]") == str(address) else f"{host} ({address})"
    raise AddressRefused(
        f"{named} is {reason}; set allow_private_addresses to measure servers on private networks"
    )


def _first_match(address: IPAddress, rules: Sequence[tuple[_Network, str]]) -> str | None:
    for network, reason in rules:
        if address in network:
            return reason
    return None


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside a mapped, compatible, 6to4 or NAT64 IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
