import contextlib
import ipaddress

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fedimeter.domain.handles import (
    MAX_INPUT_LENGTH,
    parse_account_ref,
    parse_authority,
    parse_ipv4_number,
)
from fedimeter.domain.models import AccountRef, Handle, InstanceAddress
from fedimeter.errors import InvalidHandle


@pytest.mark.parametrize(
    ("text", "username", "domain"),
    [
        ("@Gargron@mastodon.social", "Gargron", "mastodon.social"),
        ("Gargron@mastodon.social", "Gargron", "mastodon.social"),
        ("alice@example.com:8443", "alice", "example.com:8443"),
        ("  \t@alice@example.com \n", "alice", "example.com"),
        ("acct:alice@example.com", "alice", "example.com"),
        ("ACCT:@alice@example.com", "alice", "example.com"),
        ("alice@EXAMPLE.Com", "alice", "example.com"),
        ("alice@example.com.", "alice", "example.com"),
        ("alice@example.com/", "alice", "example.com"),
        ("alice@Bücher.example", "alice", "xn--bcher-kva.example"),
        ("alice@BÜCHER。example", "alice", "xn--bcher-kva.example"),
        ("alice@xn--bcher-kva.example", "alice", "xn--bcher-kva.example"),
        ("alice@127.0.0.1", "alice", "127.0.0.1"),
        ("alice@127.0.0.1:8080", "alice", "127.0.0.1:8080"),
        ("alice@[::1]:8080", "alice", "[::1]:8080"),
        ("alice@[2001:DB8:0:0::1]", "alice", "[2001:db8::1]"),
        ("alice@2130706433", "alice", "127.0.0.1"),
        ("alice@0x7f.1", "alice", "127.0.0.1"),
        ("a.b-c_d@example.com", "a.b-c_d", "example.com"),
        ("localuser@localhost", "localuser", "localhost"),
    ],
)
def test_handle_forms_parse(text: str, username: str, domain: str) -> None:
    """Every accepted handle spelling gives the normalised user name and domain."""
    ref = parse_account_ref(text)
    assert ref == AccountRef(handle=Handle(username, domain), web=None)


@pytest.mark.parametrize(
    ("text", "handle", "web"),
    [
        (
            "https://mastodon.social/@Gargron",
            Handle("Gargron", "mastodon.social"),
            InstanceAddress("mastodon.social", "https"),
        ),
        (
            "https://Mastodon.Social/users/Gargron/",
            Handle("Gargron", "mastodon.social"),
            InstanceAddress("mastodon.social", "https"),
        ),
        (
            "http://127.0.0.1:8080/@alice",
            Handle("alice", "127.0.0.1:8080"),
            InstanceAddress("127.0.0.1", "http", 8080),
        ),
        (
            "HTTPS://social.example:443/@alice//",
            Handle("alice", "social.example"),
            InstanceAddress("social.example", "https"),
        ),
        (
            "http://[::1]:3000/users/alice",
            Handle("alice", "[::1]:3000"),
            InstanceAddress("::1", "http", 3000),
        ),
        (
            "https://social.example/@%61lice",
            Handle("alice", "social.example"),
            InstanceAddress("social.example", "https"),
        ),
    ],
)
def test_profile_urls_keep_scheme_and_port(text: str, handle: Handle, web: InstanceAddress) -> None:
    """A profile URL gives the handle on the URL's authority and keeps scheme and port."""
    assert parse_account_ref(text) == AccountRef(handle=handle, web=web)


def test_profile_url_of_a_remote_account_names_its_home() -> None:
    """``https://a/@user@b`` is b's account seen through a: it resolves at home, not on a."""
    ref = parse_account_ref("https://mastodon.social/@noiob@awoo.space")
    assert ref == AccountRef(handle=Handle("noiob", "awoo.space"), web=None)


def test_profile_url_without_scheme_uses_the_default_scheme() -> None:
    """``host/@user`` is read as a URL with ``default_scheme``."""
    ref = parse_account_ref("social.example:8080/@alice", default_scheme="http")
    assert ref.web == InstanceAddress("social.example", "http", 8080)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("al ice@example.com", "spaces"),
        ("alice@exa mple.com", "spaces"),
        ("alice\x00@example.com", "control"),
        ("ali!ce@example.com", "not a valid user name"),
        ("alice.@example.com", "not a valid user name"),
        ("-alice@example.com", "not a valid user name"),
        ("ålice@example.com", "not a valid user name"),
        ("@example.com", "needs a user name and a host"),
        ("alice", "needs a user name and a host"),
        ("alice@", "no host"),
        ("@alice@", "no host"),
        ("@@alice@example.com", "too many @"),
        ("alice@bob@example.com", "too many @"),
        ("alice@example.com:0", "bad port"),
        ("alice@example.com:65536", "bad port"),
        ("alice@example.com:http", "bad port"),
        ("alice@example.com:", "bad port"),
        ("alice@exa_mple.com", "not a valid host name"),
        ("alice@-example.com", "not a valid host name"),
        ("alice@example..com", "not a valid host name"),
        ("alice@xn--zz.example", "not a valid host name"),
        ("alice@1.2.3.4.5", "neither a host name nor an IPv4 address"),
        ("alice@256.1.1.1", "neither a host name nor an IPv4 address"),
        ("alice@::1", "IPv6 addresses in brackets"),
        ("alice@[::1", "never closes"),
        ("alice@[::g]", "not a valid IPv6"),
        ("alice@[fe80::1%25eth0]", "zone index"),
        ("alice@[::1]x", "unexpected"),
        ("https://example.com/@alice?x=1", "query"),
        ("https://example.com/@alice#top", "query or fragment"),
        ("https://bob:secret@example.com/@alice", "user name or password"),
        ("https://bob@example.com/@alice", "user name or password"),
        ("ftp://example.com/@alice", "only http and https"),
        ("javascript://example.com/@alice", "only http and https"),
        ("https:///@alice", "no host"),
        ("https://example.com/", "not a profile URL"),
        ("https://example.com/about", "not a profile URL"),
        ("https://example.com/@alice/123", "not a profile URL"),
        ("https://example.com/@", "no user name"),
        ("a" * 300 + "@" + "b" * 30 + ".com", "at most 320"),
        ("a" * 65 + "@example.com", "not a valid user name"),
        ("alice@" + "a" * 64 + ".com", "not a valid host name"),
    ],
)
def test_bad_account_text_is_refused_with_a_reason(text: str, fragment: str) -> None:
    """Each kind of bad input raises InvalidHandle with a message that says what was wrong."""
    with pytest.raises(InvalidHandle) as caught:
        parse_account_ref(text)
    assert fragment in str(caught.value)


def test_error_messages_say_what_is_expected() -> None:
    """A refusal tells the person which forms are accepted."""
    with pytest.raises(InvalidHandle, match=r"expected @user@host, user@host or a profile URL"):
        parse_account_ref("alice")


def test_non_text_is_refused() -> None:
    """Something that is not a string gives InvalidHandle, not TypeError."""
    with pytest.raises(InvalidHandle, match="must be text"):
        parse_account_ref(42)  # type: ignore[arg-type]


def test_exactly_320_characters_are_accepted() -> None:
    """The length limit lets the longest legal handle through."""
    text = "a" * 64 + "@" + ".".join(["b" * 63] * 3) + ".c" + "c" * 60
    assert len(text) <= MAX_INPUT_LENGTH
    assert parse_account_ref(text).handle.username == "a" * 64


@pytest.mark.parametrize(
    ("text", "scheme", "expected"),
    [
        ("mastodon.social", "https", InstanceAddress("mastodon.social", "https")),
        ("Mastodon.Social:443", "https", InstanceAddress("mastodon.social", "https")),
        ("mastodon.social:80", "http", InstanceAddress("mastodon.social", "http")),
        ("mastodon.social:8080", "https", InstanceAddress("mastodon.social", "https", 8080)),
        ("https://mastodon.social/", "http", InstanceAddress("mastodon.social", "https")),
        ("http://127.0.0.1:8080", "https", InstanceAddress("127.0.0.1", "http", 8080)),
        ("HTTP://[::1]:80/", "https", InstanceAddress("::1", "http")),
        ("Bücher.example", "https", InstanceAddress("xn--bcher-kva.example", "https")),
        (" social.example/ ", "https", InstanceAddress("social.example", "https")),
        ("017700000001", "https", InstanceAddress("127.0.0.1", "https")),
    ],
)
def test_authorities_parse(text: str, scheme: str, expected: InstanceAddress) -> None:
    """Instance hosts normalise like handle domains; default ports are dropped."""
    assert parse_authority(text, scheme=scheme) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("https://mastodon.social/about", "is a page"),
        ("https://mastodon.social/?q=1", "query"),
        ("https://user@mastodon.social", "user name or password"),
        ("mastodon.social:99999", "bad port"),
        ("gopher://mastodon.social", "only http and https"),
        ("", "cannot be empty"),
        ("mastodon social", "spaces"),
    ],
)
def test_bad_authorities_are_refused(text: str, fragment: str) -> None:
    """An instance address that is not host[:port] or an http(s) root URL is refused."""
    with pytest.raises(InvalidHandle) as caught:
        parse_authority(text)
    assert fragment in str(caught.value)


def test_an_unknown_scheme_argument_is_refused() -> None:
    """``scheme`` itself must be http or https."""
    with pytest.raises(InvalidHandle, match="only http and https"):
        parse_authority("example.com", scheme="ftp")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7F000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("10.1.257", "10.1.1.1"),
        ("0", "0.0.0.0"),  # noqa: S104 - a parsed value, not a bind address
        ("0x", "0.0.0.0"),  # noqa: S104
        ("1.2.3.4.", "1.2.3.4"),
    ],
)
def test_ipv4_numbers_in_every_spelling(text: str, expected: InstanceAddress) -> None:
    """Decimal, hex, octal and short forms mean the address inet_aton would give."""
    assert parse_ipv4_number(text) == ipaddress.IPv4Address(expected)


@pytest.mark.parametrize(
    "text", ["256.0.0.1", "1.2.3.4.5", "4294967296", "08", "1..2", "", "example", "0x1g"]
)
def test_non_ipv4_numbers(text: str) -> None:
    """Out-of-range numbers, bad digits and names are not IPv4 addresses."""
    assert parse_ipv4_number(text) is None


# --- properties -------------------------------------------------------------------------

_usernames = st.from_regex(r"[A-Za-z0-9_]{1,10}([.-][A-Za-z0-9_]{1,10}){0,2}", fullmatch=True)
_labels = st.from_regex(r"[A-Za-z](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
_hosts = st.one_of(
    st.lists(_labels, min_size=1, max_size=4).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a.exploded.upper()}]"),
    st.sampled_from(["Bücher.example", "ÄÖÜ.example", "例え.テスト", "xn--bcher-kva.example"]),
)
_ports = st.one_of(st.none(), st.integers(min_value=1, max_value=65535))


@st.composite
def _handle_texts(draw: st.DrawFn) -> str:
    username, host, port = draw(_usernames), draw(_hosts), draw(_ports)
    prefix = draw(st.sampled_from(["", "@", "acct:", "ACCT:@"]))
    authority = host if port is None else f"{host}:{port}"
    return f"{prefix}{username}@{authority}"


@given(st.text(max_size=400))
@example("@")
@example("http://")
@example("https://[")
@example("a@[::ffff:1.2.3.4]")
@example("a@\u3002")
def test_arbitrary_text_gives_a_ref_or_invalid_handle(text: str) -> None:
    """No input makes the parser raise anything but InvalidHandle."""
    try:
        ref = parse_account_ref(text)
    except InvalidHandle:
        return
    assert parse_account_ref(str(ref.handle)).handle == ref.handle


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=60).map(lambda t: f"a@{t}"))
def test_arbitrary_domains_give_a_ref_or_invalid_handle(text: str) -> None:
    """Domain-shaped garbage is refused cleanly too."""
    with contextlib.suppress(InvalidHandle):
        parse_account_ref(text)


@given(st.text(max_size=120))
def test_arbitrary_authorities_give_an_address_or_invalid_handle(text: str) -> None:
    """parse_authority raises nothing but InvalidHandle, and is idempotent."""
    try:
        address = parse_authority(text)
    except InvalidHandle:
        return
    assert parse_authority(address.base_url) == address


@given(_handle_texts())
def test_valid_handles_round_trip(text: str) -> None:
    """Parsing the printed handle gives the same handle back (normalisation is idempotent)."""
    handle = parse_account_ref(text).handle
    assert parse_account_ref(str(handle)).handle == handle
    assert parse_account_ref(handle.acct).handle == handle


@given(_handle_texts())
def test_handles_compare_case_insensitively_by_key(text: str) -> None:
    """Upper- and lower-case spellings of a handle share one key."""
    upper = parse_account_ref(text.upper().replace("ACCT:", "acct:")).handle
    lower = parse_account_ref(text.lower()).handle
    assert upper.key == lower.key


@given(_usernames, _hosts, _ports, st.sampled_from(["http", "https"]))
def test_profile_urls_round_trip(username: str, host: str, port: int | None, scheme: str) -> None:
    """A profile URL's handle, printed and parsed again, is the same handle."""
    authority = host if port is None else f"{host}:{port}"
    ref = parse_account_ref(f"{scheme}://{authority}/@{username}")
    assert ref.web is not None
    assert parse_account_ref(str(ref.handle)).handle == ref.handle
    assert parse_authority(ref.web.base_url) == ref.web
