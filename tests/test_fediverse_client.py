from typing import Any

import httpx
import pytest

from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.errors import (
    AccessDenied,
    AccountNotFound,
    AddressRefused,
    ConfigError,
    FedimeterError,
    Halted,
)
from fedimeter.fediverse import FediverseClient
from test_fediverse_support import (
    START,
    FakeTime,
    Handler,
    Routes,
    account,
    fixture,
    json_response,
    make_client,
    make_settings,
)


def webfinger(subject: str, home: str, username: str) -> dict[str, Any]:
    """A Mastodon-shaped WebFinger answer."""
    return {
        "subject": f"acct:{subject}",
        "aliases": [f"{home}/@{username}", f"{home}/users/{username}"],
        "links": [
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": f"{home}/@{username}",
            },
            {
                "rel": "self",
                "type": "application/activity+json",
                "href": f"{home}/users/{username}",
            },
        ],
    }


def lookup_answer(username: str, remote_id: str, host: str) -> Handler:
    """A lookup handler that knows one account."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("acct", "").lower() != username.lower():
            return json_response({"error": "Record not found"}, 404)
        return json_response(
            account(remote_id, username=username, acct=username, url=f"https://{host}/@{username}")
        )

    return handler


async def test_bare_handle_resolves_with_webfinger_then_lookup_on_the_home() -> None:
    """@Gargron@mastodon.social: WebFinger names the home; lookup there gives the id."""
    routes = Routes()
    routes.add("mastodon.social", "/.well-known/webfinger", fixture("webfinger.json"))
    routes.add(
        "mastodon.social",
        "/api/v1/accounts/lookup",
        lookup_answer("Gargron", "1", "mastodon.social"),
    )
    client = make_client(routes, FakeTime())
    resolved = await client.resolve(parse_account_ref("@gargron@Mastodon.Social"))
    assert resolved == ResolvedAccount(
        handle=Handle("Gargron", "mastodon.social"),
        home=InstanceAddress("mastodon.social"),
        remote_id="1",
        display_name="Eugen",
        url="https://mastodon.social/@Gargron",
    )
    webfinger_request = routes.requests[0]
    assert webfinger_request.url.params["resource"] == "acct:gargron@mastodon.social"


async def test_handle_on_a_domain_served_by_another_host() -> None:
    """alice@example.com served by social.example.com: measured at social.example.com."""
    routes = Routes()
    routes.add(
        "example.com",
        "/.well-known/webfinger",
        webfinger("alice@example.com", "https://social.example.com", "alice"),
    )
    routes.add(
        "social.example.com",
        "/api/v1/accounts/lookup",
        lookup_answer("alice", "42", "social.example.com"),
    )
    client = make_client(routes, FakeTime())
    resolved = await client.resolve(parse_account_ref("alice@example.com"))
    assert resolved.handle == Handle("alice", "example.com")
    assert resolved.home == InstanceAddress("social.example.com")
    assert resolved.remote_id == "42"
    assert routes.paths() == [
        "example.com/.well-known/webfinger",
        "social.example.com/api/v1/accounts/lookup",
    ]


async def test_webfinger_alias_resolves_to_the_canonical_account() -> None:
    """WebFinger for an alias answers the real account; lookup uses the real name and case."""
    routes = Routes()
    routes.add(
        "social.example",
        "/.well-known/webfinger",
        webfinger("RealAlice@social.example", "https://social.example", "RealAlice"),
    )
    routes.add(
        "social.example",
        "/api/v1/accounts/lookup",
        lookup_answer("RealAlice", "9", "social.example"),
    )
    client = make_client(routes, FakeTime())
    resolved = await client.resolve(parse_account_ref("alias@social.example"))
    assert resolved.handle == Handle("RealAlice", "social.example")
    assert resolved.remote_id == "9"


@pytest.mark.parametrize(
    "webfinger_answer",
    [
        httpx.Response(404, html="<h1>Not Found</h1>"),
        httpx.Response(200, html="<html>Welcome to my blog</html>"),
        httpx.Response(200, json=["not", "jrd"]),
        httpx.ConnectError("refused"),
    ],
)
async def test_failing_webfinger_falls_back_to_lookup_on_the_domain(
    webfinger_answer: httpx.Response | Exception,
) -> None:
    """Without usable WebFinger (404, HTML, not JRD, network error) the domain itself is asked."""

    def finger(request: httpx.Request) -> httpx.Response:
        if isinstance(webfinger_answer, Exception):
            raise webfinger_answer
        return webfinger_answer

    routes = Routes()
    routes.add("social.example", "/.well-known/webfinger", finger)
    routes.add(
        "social.example", "/api/v1/accounts/lookup", lookup_answer("Bob", "5", "social.example")
    )
    client = make_client(routes, FakeTime(), max_retries=0)
    resolved = await client.resolve(parse_account_ref("bob@social.example"))
    assert resolved.handle == Handle("Bob", "social.example")
    assert resolved.home == InstanceAddress("social.example")
    assert resolved.remote_id == "5"


async def test_profile_url_learns_the_canonical_domain_confirmed_by_webfinger() -> None:
    """https://social.example.com/@alice → alice@example.com once example.com confirms it."""
    routes = Routes()
    answer = webfinger("alice@example.com", "https://social.example.com", "alice")
    routes.add("social.example.com", "/.well-known/webfinger", answer)
    routes.add("example.com", "/.well-known/webfinger", answer)
    routes.add(
        "social.example.com",
        "/api/v1/accounts/lookup",
        lookup_answer("alice", "42", "social.example.com"),
    )
    client = make_client(routes, FakeTime())
    resolved = await client.resolve(parse_account_ref("https://social.example.com/@alice"))
    assert resolved.handle == Handle("alice", "example.com")
    assert resolved.home == InstanceAddress("social.example.com")
    assert routes.requests[0].url.params["resource"] == "acct:alice@social.example.com"


async def test_unconfirmed_foreign_subject_is_not_believed() -> None:
    """A server claiming another domain's account without that domain's word keeps its own."""
    routes = Routes()
    routes.add(
        "evil.example",
        "/.well-known/webfinger",
        webfinger("Gargron@mastodon.social", "https://evil.example", "Gargron"),
    )
    routes.add(
        "evil.example", "/api/v1/accounts/lookup", lookup_answer("gargron", "666", "evil.example")
    )
    routes.add("mastodon.social", "/.well-known/webfinger", fixture("webfinger.json"))
    client = make_client(routes, FakeTime())
    resolved = await client.resolve(parse_account_ref("https://evil.example/@gargron"))
    assert resolved.handle == Handle("gargron", "evil.example")
    assert resolved.home == InstanceAddress("evil.example")


async def test_profile_url_keeps_its_scheme_and_port() -> None:
    """http://127.0.0.1:8080/@alice is asked over http on port 8080."""
    routes = Routes()
    routes.add(
        "127.0.0.1:8080", "/api/v1/accounts/lookup", lookup_answer("alice", "3", "127.0.0.1:8080")
    )
    client = make_client(routes, FakeTime())
    resolved = await client.resolve(parse_account_ref("http://127.0.0.1:8080/@alice"))
    assert resolved.home == InstanceAddress("127.0.0.1", "http", 8080)
    assert {r.url.scheme for r in routes.requests} == {"http"}


async def test_default_scheme_reaches_bare_handles_over_http() -> None:
    """With default_scheme='http' (the simulated fediverse) bare handles use http."""
    routes = Routes()
    routes.add(
        "sim.test", "/.well-known/webfinger", webfinger("ann@sim.test", "http://sim.test", "ann")
    )
    routes.add("sim.test", "/api/v1/accounts/lookup", lookup_answer("ann", "1", "sim.test"))
    client = make_client(routes, FakeTime(), default_scheme="http")
    resolved = await client.resolve(parse_account_ref("ann@sim.test"))
    assert resolved.home == InstanceAddress("sim.test", "http")
    assert [r.url.scheme for r in routes.requests] == ["http", "http"]


async def test_default_scheme_comes_from_the_settings() -> None:
    """Without a default_scheme argument, settings.default_scheme decides."""
    routes = Routes()
    routes.add("sim.test", "/api/v1/accounts/lookup", lookup_answer("ann", "1", "sim.test"))
    settings = make_settings(default_scheme="http")
    client = FediverseClient(settings, transport=httpx.MockTransport(routes))
    resolved = await client.resolve(parse_account_ref("ann@sim.test"))
    assert resolved.home == InstanceAddress("sim.test", "http")
    assert {r.url.scheme for r in routes.requests} == {"http"}


async def test_unknown_account_is_account_not_found() -> None:
    """A lookup 404 on the home server raises AccountNotFound naming the account."""
    routes = Routes()
    client = make_client(routes, FakeTime())
    with pytest.raises(
        AccountNotFound, match=r"social\.example has no account 'nobody' \(404 Not Found\)"
    ):
        await client.resolve(parse_account_ref("nobody@social.example"))


async def test_limited_federation_lookup_is_access_denied() -> None:
    """A 401 on the lookup raises AccessDenied."""
    routes = Routes()
    routes.add(
        "social.example",
        "/api/v1/accounts/lookup",
        lambda _r: json_response(fixture("error_401_authenticated_user_required.json"), 401),
    )
    client = make_client(routes, FakeTime())
    with pytest.raises(AccessDenied):
        await client.resolve(parse_account_ref("alice@social.example"))


async def test_refused_webfinger_host_is_not_silently_skipped() -> None:
    """An SSRF refusal during WebFinger propagates instead of falling back."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AddressRefused("10.0.0.1 is a private address; set allow_private_addresses")

    client = make_client(refuse, FakeTime())
    with pytest.raises(AddressRefused):
        await client.resolve(parse_account_ref("alice@intranet.example"))


# --- server info ------------------------------------------------------------------------


def nodeinfo_routes(host: str, path: str, document: Any) -> Routes:
    """Discovery pointing at ``path``, and the document there."""
    routes = Routes()
    rel = "http://nodeinfo.diaspora.software/ns/schema/2.0"
    routes.add(
        host, "/.well-known/nodeinfo", {"links": [{"rel": rel, "href": f"https://{host}{path}"}]}
    )
    routes.add(host, path, document)
    return routes


def mastodon_nodeinfo(version: str) -> dict[str, Any]:
    """The real Mastodon NodeInfo with another version."""
    document: dict[str, Any] = fixture("nodeinfo_2_0_mastodon.json")
    document["software"]["version"] = version
    return document


@pytest.mark.parametrize(
    ("version", "supported"),
    [("4.1.2+nightly-20230523", False), ("4.3.0+glitch", True), ("4.5.0-nightly.2025-07-11", True)],
)
async def test_server_info_from_nodeinfo(version: str, supported: bool) -> None:
    """NodeInfo gives software and version; Mastodon 4.3+ means batch support."""
    time = FakeTime()
    client = make_client(
        nodeinfo_routes("social.example", "/nodeinfo/2.0", mastodon_nodeinfo(version)), time
    )
    info = await client.server_info(InstanceAddress("social.example"))
    assert (info.software, info.version, info.supports_batch) == ("mastodon", version, supported)
    assert info.checked_at == START


@pytest.mark.parametrize(
    ("path", "software"),
    [("/nodeinfo/2.1.json", "pleroma"), ("/api/nodeinfo/2.0.json", "pixelfed")],
)
async def test_nodeinfo_path_comes_from_discovery(path: str, software: str) -> None:
    """Pleroma's and Pixelfed's own paths are found through discovery, not guessed."""
    document = fixture("nodeinfo_2_1.json")
    document["software"]["name"] = software
    client = make_client(nodeinfo_routes("other.example", path, document), FakeTime())
    info = await client.server_info(InstanceAddress("other.example"))
    assert (info.software, info.supports_batch) == (software, None)


@pytest.mark.parametrize(
    "broken",
    [
        lambda _r: httpx.Response(404, html="<h1>404</h1>"),
        lambda _r: httpx.Response(200, html="<html></html>"),
        lambda _r: json_response({"links": []}),
        lambda _r: httpx.Response(503),
    ],
)
async def test_broken_nodeinfo_gives_unknown_server_info(broken: Handler) -> None:
    """Missing, HTML, empty or failing NodeInfo gives None fields instead of an error."""
    routes = Routes()
    routes.add("social.example", "/.well-known/nodeinfo", broken)
    client = make_client(routes, FakeTime(), max_retries=0)
    info = await client.server_info(InstanceAddress("social.example"))
    assert (info.software, info.version, info.supports_batch) == (None, None, None)


async def test_server_info_raises_address_refused() -> None:
    """An SSRF refusal is the one NodeInfo failure that raises."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AddressRefused("127.0.0.1 is a loopback address; set allow_private_addresses")

    client = make_client(refuse, FakeTime())
    with pytest.raises(AddressRefused):
        await client.server_info(InstanceAddress("127.0.0.1"))


# --- construction -----------------------------------------------------------------------


def test_bad_default_scheme_is_a_config_error() -> None:
    """default_scheme must be http or https."""
    with pytest.raises(ConfigError):
        FediverseClient(
            make_settings(),
            transport=httpx.MockTransport(lambda _r: httpx.Response(200)),
            default_scheme="ftp",
        )


async def test_client_closes_only_the_transport_it_made() -> None:
    """aclose() leaves a transport passed in open for its owner."""
    closed: list[bool] = []

    class Transport(httpx.MockTransport):
        async def aclose(self) -> None:
            closed.append(True)

    transport = Transport(lambda _r: httpx.Response(200))
    async with FediverseClient(make_settings(), transport=transport):
        pass
    assert closed == []


async def test_a_halted_client_sends_nothing_until_resumed() -> None:
    """halt(): requests raise Halted without reaching the server; resume() sends again."""
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(404, json={"error": "Record not found"})

    client = FediverseClient(make_settings(), transport=httpx.MockTransport(answer))
    client.halt()
    with pytest.raises(Halted, match="round is stopping"):
        await client.resolve(parse_account_ref("alice@social.example"))
    assert seen == []
    client.resume()
    with pytest.raises(FedimeterError):
        await client.resolve(parse_account_ref("alice@social.example"))
    assert seen
    await client.aclose()
