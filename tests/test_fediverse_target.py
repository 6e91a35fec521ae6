"""Targets: the request line and origin of a URL, the same as httpx would send them."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedimeter.errors import AddressRefused
from fedimeter.fediverse.target import Target, Targets

BASES = [
    "http://social.example",
    "https://Social.Example:443",
    "http://social.example:8080",
    "http://127.0.0.1:3000",
    "https://[::1]:8443",
    "https://münchen.example",
    "https://user:secret@social.example",
]
#: Paths and queries from everything a URL may hold, and some it may not.
PATHS = st.text(
    alphabet=st.sampled_from(
        [*"abcXYZ019-._~!$&'()*+,;=:@/?%[]#\"<>\\^`{|} ", "é", "ü", "\u2028", "\t"]
    ),
    max_size=30,
)


def as_httpx(url: str) -> tuple[str, str, int, bytes, bytes]:
    """What httpx makes of ``url``: scheme, host, port, Host header, request target."""
    parsed = httpx.URL(url)
    port = parsed.port or {"http": 80, "https": 443}[parsed.scheme]
    return parsed.scheme, parsed.raw_host.decode(), port, parsed.netloc, parsed.raw_path


def parts(target: Target) -> tuple[str, str, int, bytes, bytes]:
    """The same of a target."""
    return target.scheme, target.host, target.port, target.netloc, target.raw_path


@given(base=st.sampled_from(BASES), path=PATHS)
def test_a_target_sends_what_httpx_would_send(base: str, path: str) -> None:
    """Whatever the path, the origin and the request target are the bytes httpx would use."""
    url = base + "/" + path
    try:
        expected = as_httpx(url)
    except httpx.InvalidURL:  # pragma: no cover - the bases and paths make valid URLs
        with pytest.raises(AddressRefused):
            Targets().parse(url)
        return
    targets = Targets()
    assert parts(targets.parse(url)) == expected
    assert parts(targets.parse(url)) == expected  # the origin from the cache this time


@pytest.mark.parametrize(
    ("url", "raw_path"),
    [
        ("http://a.example", b"/"),
        ("http://a.example?q=1", b"/?q=1"),
        ("http://a.example/api/v1/accounts?id[]=1&id[]=2", b"/api/v1/accounts?id[]=1&id[]=2"),
        ("http://a.example/x#fragment", b"/x"),
        ("http://a.example/a b", b"/a%20b"),
        ("http://a.example/a/./b/../c?d=/./", b"/a/c?d=/./"),
    ],
)
def test_paths(url: str, raw_path: bytes) -> None:
    """An empty path is ``/``; fragments are not sent; spaces encoded; dot segments resolved."""
    assert Targets().parse(url).raw_path == raw_path


def test_default_ports_and_case_are_normalised() -> None:
    """``HTTPS://Social.Example:443`` is the origin ``https``, ``social.example``, 443."""
    target = Targets().parse("https://Social.Example:443/x")
    assert target.origin == ("https", "social.example", 443)
    assert target.netloc == b"social.example"
    assert target.authority == "social.example"
    assert target.text == "https://social.example/x"
    assert str(target.url()) == "https://social.example/x"


def test_an_internationalised_name_travels_as_punycode() -> None:
    """The host of ``münchen.example`` is its IDNA form."""
    target = Targets().parse("https://münchen.example/x")
    assert target.host == "xn--mnchen-3ya.example"
    assert target.netloc == b"xn--mnchen-3ya.example"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://a.example/x",
        "file:///etc/passwd",
        "http:///x",
        "http://a.example:99999/",
        "http://[::1/",
        "nothing",
        "",
    ],
)
def test_what_is_not_an_http_address_is_refused(url: str) -> None:
    """Other schemes, no host, or no URL at all: AddressRefused, naming it."""
    with pytest.raises(AddressRefused, match="http"):
        Targets().parse(url)


def test_httpx_urls_are_taken_too() -> None:
    """An ``httpx.URL`` (a redirect's target, say) gives the same target as its text."""
    url = httpx.URL("http://a.example:8080/x?y=1")
    assert parts(Targets().parse(url)) == parts(Targets().parse(str(url)))
