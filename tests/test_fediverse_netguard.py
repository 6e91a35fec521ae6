import ipaddress

import pytest

from fedimeter.errors import AddressRefused
from fedimeter.fediverse.netguard import check_address, ip_literal, is_loopback_host, refusal_reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "a loopback address"),
        ("127.255.0.9", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("172.16.0.1", "a private address"),
        ("172.31.255.255", "a private address"),
        ("192.168.1.1", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("100.64.0.1", "a carrier-grade NAT (shared) address"),
        ("100.127.255.254", "a carrier-grade NAT (shared) address"),
        ("0.0.0.0", "the unspecified address"),  # noqa: S104 - an address to judge, not bind
        ("0.1.2.3", "a 'this network' address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("240.0.0.1", "a reserved address"),
        ("255.255.255.255", "the broadcast address"),
        ("192.0.2.10", "a documentation address"),
        ("198.51.100.7", "a documentation address"),
        ("203.0.113.9", "a documentation address"),
        ("198.18.0.1", "a benchmarking address"),
        ("192.0.0.8", "an IETF protocol assignment address"),
        ("::", "the unspecified address"),
        ("::1", "a loopback address"),
        ("fc00::1", "a unique local (private) address"),
        ("fd12:3456::1", "a unique local (private) address"),
        ("fe80::1", "a link-local address"),
        ("fe80::1%eth0", "a link-local address"),
        ("fec0::1", "a site-local address"),
        ("ff02::1", "a multicast address"),
        ("2001:db8::1", "a documentation address"),
        ("2001:0:4136:e378::1", "an IETF protocol assignment address"),
        ("100::1", "a discard-only address"),
        ("64:ff9b:1::a00:1", "a local-use NAT64 address"),
        ("4000::1", "a reserved address"),
        ("::ffff:127.0.0.1", "a loopback address (127.0.0.1) written as IPv6"),
        ("::ffff:10.0.0.1", "a private address (10.0.0.1) written as IPv6"),
        ("::127.0.0.1", "a loopback address (127.0.0.1) written as IPv6"),
        ("::ffff:169.254.169.254", "a link-local address (169.254.169.254) written as IPv6"),
        ("2002:7f00:1::1", "a loopback address (127.0.0.1) written as IPv6"),
        ("2002:c0a8:101::", "a private address (192.168.1.1) written as IPv6"),
        ("64:ff9b::7f00:1", "a loopback address (127.0.0.1) written as IPv6"),
        ("64:ff9b::a9fe:a9fe", "a link-local address (169.254.169.254) written as IPv6"),
        ("::8.8.8.8", "a deprecated IPv4-compatible address"),
    ],
)
def test_non_public_addresses_are_named(address: str, reason: str) -> None:
    """Every special-purpose range is refused with the reason a person can act on."""
    assert refusal_reason(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "address",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.215.14",
        "100.63.255.255",
        "100.128.0.1",
        "172.32.0.1",
        "192.1.0.1",
        "2606:4700:4700::1111",
        "2a01:4f8::1",
        "::ffff:8.8.8.8",
        "2002:808:808::1",
        "64:ff9b::808:808",
    ],
)
def test_public_addresses_pass(address: str) -> None:
    """Globally routable addresses, also in IPv6 forms carrying a public IPv4, are allowed."""
    assert refusal_reason(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.257", "10.0.1.1"),
        ("::1", "::1"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
    ],
)
def test_ip_literals_in_every_spelling_are_recognised(host: str, expected: str) -> None:
    """Numeric host forms are read as the address they mean, so DNS never sees them."""
    assert ip_literal(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize("host", ["mastodon.social", "localhost", "1.2.3.4.5", "08", "[::g]"])
def test_host_names_are_not_literals(host: str) -> None:
    """Names (and malformed numbers) are left to DNS, whose answer is then checked."""
    assert ip_literal(host) is None


def test_refusal_message_names_the_address_and_the_setting() -> None:
    """The error says which address, why, and which setting allows it."""
    with pytest.raises(AddressRefused) as caught:
        check_address(ipaddress.ip_address("127.0.0.1"), host="127.0.0.1", allow_private=False)
    assert str(caught.value) == (
        "127.0.0.1 is a loopback address; "
        "set allow_private_addresses to measure servers on private networks"
    )


def test_refusal_message_names_the_host_that_resolved_there() -> None:
    """For a name, the message shows both the name and the address it resolved to."""
    with pytest.raises(AddressRefused, match=r"^intranet\.example \(10\.0\.0\.5\) is a private"):
        check_address(
            ipaddress.ip_address("10.0.0.5"), host="intranet.example", allow_private=False
        )


def test_allow_private_lets_everything_through() -> None:
    """With allow_private_addresses the guard refuses nothing."""
    check_address(ipaddress.ip_address("127.0.0.1"), host="localhost", allow_private=True)


def test_public_address_is_not_refused() -> None:
    """A public address passes the check without an error."""
    check_address(ipaddress.ip_address("8.8.8.8"), host="dns.google", allow_private=False)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST", True),
        ("127.0.0.1", True),
        ("127.1", True),
        ("2130706433", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),  # noqa: S104 - a host name under test, nothing listens
        ("10.0.0.1", False),
        ("localhost.example.org", False),
        ("mail.example.org", False),
    ],
)
def test_is_loopback_host(host: str, loopback: bool) -> None:
    """localhost and loopback addresses in any spelling; no other name is trusted."""
    assert is_loopback_host(host) is loopback
