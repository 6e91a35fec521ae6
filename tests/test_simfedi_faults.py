"""Outages, relabelled answers, 429 storms, redirect loops and seeded chaos, over real sockets."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from fedimeter.simfedi import (
    CHAOS_PROFILES,
    ChaosRates,
    Fault,
    RateLimit,
    SimFediverse,
    SimInstance,
    add_chaos,
)

RESET_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@pytest.fixture
def world() -> SimFediverse:
    """An empty world with a fixed seed."""
    return SimFediverse(seed=1)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A sync httpx client with short timeouts."""
    with httpx.Client(timeout=5.0) as http_client:
        yield http_client


def get(client: httpx.Client, instance: SimInstance, path: str, **params: Any) -> httpx.Response:
    """GET ``path`` on ``instance``'s web host."""
    return client.get(f"{instance.base_url}{path}", params=params or None)


def refused(client: httpx.Client, url: str) -> bool:
    """Whether connecting to ``url`` is refused (the host is down)."""
    try:
        client.get(url)
    except httpx.ConnectError:
        return True
    return False


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def raw_request(instance: SimInstance, path: str) -> socket.socket:
    """Open a keep-alive connection to ``instance`` and send one GET; return the socket."""
    sock = socket.create_connection((instance.host, instance.address.port), timeout=5.0)
    host = instance.web_domain
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Read until the server closes (EOF or reset); return what arrived."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


# Outages -----------------------------------------------------------------------------------------


def test_take_down_refuses_connections_and_bring_up_serves_on_the_same_ports(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A host taken down refuses connections (web and alias); back up, it answers on its ports."""
    alpha = world.add_instance("alpha", account_domain="alias")
    beta = world.add_instance("beta")
    alice = alpha.add_account("alice")
    with world.run_in_thread():
        alias = alpha.alias_address
        assert alias is not None
        ports = (alpha.address.port, alias.port)
        account_url = f"{alpha.base_url}/api/v1/accounts/{alice.id}"
        finger_url = f"{alias.base_url}/.well-known/webfinger?resource=acct:{alice.acct}"
        before = client.get(account_url)  # leaves a keep-alive connection in the pool
        world.take_down("alpha")
        down = (alpha.up, refused(client, account_url), refused(client, finger_url))
        other = get(client, beta, "/api/v1/instance")
        world.take_down("alpha")  # a second time changes nothing
        world.bring_up("alpha")
        after = client.get(account_url)
        finger = client.get(finger_url)
        world.bring_up("alpha")
        assert (alpha.address.port, alias.port) == ports
    assert before.status_code == 200
    assert down == (False, True, True)
    assert other.status_code == 200  # the other hosts never notice
    assert alpha.up
    assert after.status_code == 200
    assert after.json()["id"] == alice.id
    assert finger.json()["subject"] == f"acct:{alice.acct}"
    # Refused connections never reach the server: nothing is logged for them.
    assert world.count(instance="alpha") == 3


def test_take_down_drops_open_connections_idle_and_in_flight(world: SimFediverse) -> None:
    """Keep-alive connections and requests waiting for an answer end when the host goes down."""
    alpha = world.add_instance("alpha")
    alpha.faults.append(Fault(kind="timeout", endpoint="peers"))
    with world.run_in_thread():
        idle = raw_request(alpha, "/api/v1/accounts/lookup?acct=nobody")  # one small answer
        first = idle.recv(65536)
        hanging = raw_request(alpha, "/api/v1/instance/peers")
        wait_until(lambda: world.count(endpoint="peers") == 1)
        started = time.monotonic()
        world.take_down("alpha")
        idle_rest, hanging_rest = read_until_closed(idle), read_until_closed(hanging)
        waited = time.monotonic() - started
        idle.close()
        hanging.close()
    assert first.startswith(b"HTTP/1.1 404 ")
    assert first.endswith(b'{"error":"Record not found"}')
    assert (idle_rest, hanging_rest) == (b"", b"")
    assert waited < 2.0  # closed by the server, not by the socket timeout


def test_instance_taken_down_before_serving_starts_down(
    world: SimFediverse, client: httpx.Client
) -> None:
    """take_down on a world that does not serve yet: the host has an address but refuses."""
    alpha = world.add_instance("alpha")
    world.take_down("alpha")
    assert not alpha.up
    with world.run_in_thread():
        url = f"{alpha.base_url}/api/v1/instance"
        assert refused(client, url)
        world.bring_up("alpha")
        response = client.get(url)
    assert response.status_code == 200


def test_scheduled_outage_takes_the_host_down_and_brings_it_back(
    world: SimFediverse, client: httpx.Client
) -> None:
    """An outage declared up front begins `after` seconds into serving and lasts `lasting`."""
    alpha = world.add_instance("alpha", rate_limit=None)
    beta = world.add_instance("beta", rate_limit=None)
    outage = world.schedule_outage("alpha", after=0.3, lasting=0.4)
    assert world.outages == [outage]
    assert (outage.began, outage.ended, outage.permanent) == (None, None, False)
    served = time.monotonic()
    with world.run_in_thread():
        url = f"{alpha.base_url}/api/v1/instance/peers"
        port = alpha.address.port
        early = client.get(url)
        wait_until(lambda: outage.began is not None)
        during = refused(client, url)
        neighbour = get(client, beta, "/api/v1/instance/peers")
        wait_until(lambda: outage.ended is not None)
        after = client.get(url)
        assert alpha.address.port == port
    assert outage.began is not None
    assert outage.ended is not None
    assert early.status_code == 200
    assert during
    assert neighbour.status_code == 200
    assert after.status_code == 200
    assert outage.began - served >= 0.29
    assert outage.ended - outage.began >= 0.39
    assert outage.describe() == "down after 0.3s for 0.4s"


def test_outage_scheduled_while_serving_and_for_good(
    world: SimFediverse, client: httpx.Client
) -> None:
    """An outage with after=0 has begun when schedule_outage returns; lasting=None never ends."""
    alpha = world.add_instance("alpha")
    with world.run_in_thread():
        url = f"{alpha.base_url}/api/v1/instance"
        assert client.get(url).status_code == 200
        outage = world.schedule_outage("alpha", after=0.0, lasting=None)
        assert outage.began is not None
        assert refused(client, url)
        time.sleep(0.2)
        assert refused(client, url)
        assert not alpha.up
        world.bring_up("alpha")  # an outage for good can still be ended by hand
        assert client.get(url).status_code == 200
    assert outage.permanent
    assert outage.ended is None
    assert outage.describe() == "down after 0.0s for good"


def test_overlapping_outages_keep_the_host_down_until_the_last_ends(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A short outage inside a longer one does not bring the host back early."""
    alpha = world.add_instance("alpha")
    long = world.schedule_outage("alpha", after=0.0, lasting=1.0)
    short = world.schedule_outage("alpha", after=0.1, lasting=0.1)
    with world.run_in_thread():
        url = f"{alpha.base_url}/api/v1/instance"
        wait_until(lambda: short.ended is not None)
        still_down = refused(client, url)
        wait_until(lambda: long.ended is not None)
        back = client.get(url)
    assert still_down
    assert back.status_code == 200


async def test_outages_on_the_running_loop() -> None:
    """On the world's own loop, take_down and bring_up act at once (async tests)."""
    world = SimFediverse(seed=2)
    alpha = world.add_instance("alpha")
    async with world.serving(), httpx.AsyncClient(timeout=5.0) as client:
        url = f"{alpha.base_url}/api/v1/instance"
        first = await client.get(url)
        world.take_down("alpha")
        with pytest.raises(httpx.ConnectError):
            await client.get(url)
        world.bring_up("alpha")
        again = await client.get(url)
        world.schedule_outage("alpha", after=0.0, lasting=0.2)
        with pytest.raises(httpx.ConnectError):
            await client.get(url)
    assert (first.status_code, again.status_code) == (200, 200)


def test_an_outage_cut_short_by_the_end_of_serving_leaves_the_host_up(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Serving again after an interrupted outage starts with the host up; it does not rerun."""
    alpha = world.add_instance("alpha")
    outage = world.schedule_outage("alpha", after=0.0, lasting=60.0)
    with world.run_in_thread():
        assert not alpha.up
    assert alpha.up
    with world.run_in_thread():
        response = get(client, alpha, "/api/v1/instance")
    assert response.status_code == 200
    assert outage.ended is None


def test_outage_options_are_checked(world: SimFediverse) -> None:
    """Outages refuse unknown instances and timings that cannot work."""
    world.add_instance("alpha")
    with pytest.raises(KeyError):
        world.schedule_outage("nobody", lasting=1.0)
    with pytest.raises(KeyError):
        world.take_down("nobody")
    with pytest.raises(ValueError, match="after"):
        world.schedule_outage("alpha", after=-1.0, lasting=1.0)
    with pytest.raises(ValueError, match="lasting"):
        world.schedule_outage("alpha", lasting=0.0)
    assert world.outages == []


# Content types -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, "text/html; charset=utf-8"),
        ("text/plain", "text/plain"),
        ("application/octet-stream", "application/octet-stream"),
    ],
)
def test_content_type_fault_serves_good_json_under_a_wrong_type(
    world: SimFediverse, client: httpx.Client, content_type: str | None, expected: str
) -> None:
    """A content_type fault keeps the status and the valid JSON body, with another type."""
    alpha = world.add_instance("alpha")
    alice = alpha.add_account("alice", followers=12)
    alpha.faults.append(
        Fault(kind="content_type", endpoint="account", content_type=content_type, times=1)
    )
    with world.run_in_thread():
        relabelled = get(client, alpha, f"/api/v1/accounts/{alice.id}")
        normal = get(client, alpha, f"/api/v1/accounts/{alice.id}")
    assert relabelled.status_code == 200
    assert relabelled.headers["content-type"] == expected
    assert relabelled.headers.get_list("content-type") == [expected]
    assert json.loads(relabelled.content) == normal.json()
    assert normal.headers["content-type"].startswith("application/json")
    assert "x-ratelimit-remaining" in relabelled.headers
    assert world.requests[0].fault == "content_type"


def test_json_content_type_over_an_html_body(world: SimFediverse, client: httpx.Client) -> None:
    """The reverse: an HTML page labelled JSON, by html with content_type or malformed with body."""
    alpha = world.add_instance("alpha")
    page = "<html><body>Maintenance</body></html>"
    alpha.faults += [
        Fault(kind="html", content_type="application/json; charset=utf-8", times=1),
        Fault(kind="malformed", body=page, times=1),
    ]
    with world.run_in_thread():
        challenge = get(client, alpha, "/api/v1/instance")
        maintenance = get(client, alpha, "/api/v1/instance")
    for response in (challenge, maintenance):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert response.text.lstrip().startswith(("<!DOCTYPE html>", "<html>"))
        with pytest.raises(json.JSONDecodeError):
            response.json()


def test_content_type_fault_spoils_the_answer_to_a_stored_post(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Like drip or truncated, a relabelled answer comes from an application that did the work."""
    alpha = world.add_instance("alpha")
    alice = alpha.add_account("alice")
    token = alpha.add_token(alice)
    alpha.faults.append(Fault(kind="content_type", endpoint="post", content_type="text/plain"))
    with world.run_in_thread():
        response = client.post(
            f"{alpha.base_url}/api/v1/statuses",
            headers={"Authorization": f"Bearer {token}"},
            json={"status": "hello"},
        )
    assert response.headers["content-type"] == "text/plain"
    assert json.loads(response.content)["id"] == alpha.statuses[0].id


# 429 storms --------------------------------------------------------------------------------------


def test_rate_limited_storm_answers_429_with_headers_until_it_passes(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A rate_limited fault: 429s with Retry-After and Remaining 0 for `duration` seconds."""
    alpha = world.add_instance("alpha", rate_limit=RateLimit(limit=100, window=600.0))
    storm = Fault(kind="rate_limited", duration=0.6)
    alpha.faults.append(storm)
    with world.run_in_thread():
        stormed = [get(client, alpha, "/api/v1/instance/peers") for _ in range(3)]
        assert storm.ends_at is not None
        time.sleep(max(0.0, storm.ends_at - time.time()) + 0.05)
        after = get(client, alpha, "/api/v1/instance/peers")
    assert storm.spent
    assert storm.hits == 3
    for response in stormed:
        assert response.status_code == 429
        assert response.json() == {"error": "Too many requests"}
        assert response.headers["retry-after"] == "1"  # whole seconds, rounded up
        assert response.headers.get_list("x-ratelimit-remaining") == ["0"]
        assert response.headers["x-ratelimit-limit"] == "100"
        reset = datetime.strptime(response.headers["x-ratelimit-reset"], RESET_FORMAT).replace(
            tzinfo=UTC
        )
        assert reset.timestamp() == pytest.approx(storm.ends_at, abs=1e-3)
    assert after.status_code == 200
    # The storm's requests counted toward the real budget, but none was over it.
    assert after.headers["x-ratelimit-remaining"] == "96"
    assert [(r.status, r.fault, r.counted, r.over_limit) for r in world.requests] == [
        *[(429, "rate_limited", True, False)] * 3,
        (200, None, True, False),
    ]
    assert world.count_over_limit() == 0


def test_rate_limited_headers_follow_the_instance_and_the_fault(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Without a rate limit the 429 announces Mastodon's 300; headers can be left out."""
    unlimited = world.add_instance("unlimited", rate_limit=None)
    stripped = world.add_instance("stripped", rate_limit=RateLimit(send_headers=False))
    plain = world.add_instance("plain")
    unlimited.faults.append(Fault(kind="rate_limited"))
    stripped.faults.append(Fault(kind="rate_limited"))
    plain.faults.append(Fault(kind="rate_limited", retry_after=False, times=1))
    with world.run_in_thread():
        first = get(client, unlimited, "/api/v1/instance")
        hidden = get(client, stripped, "/api/v1/instance")
        mastodon_like = get(client, plain, "/api/v1/instance")
    assert first.status_code == hidden.status_code == mastodon_like.status_code == 429
    assert first.headers["x-ratelimit-limit"] == "300"
    # Without a duration the storm announces the end of the current window.
    assert 1 <= int(first.headers["retry-after"]) <= 300
    assert not [name for name in hidden.headers if name.startswith("x-ratelimit")]
    assert "retry-after" in hidden.headers
    assert "retry-after" not in mastodon_like.headers
    assert mastodon_like.headers["x-ratelimit-remaining"] == "0"


# Redirects between hosts -------------------------------------------------------------------------


def test_redirect_to_a_target_instance_keeps_path_and_query(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A redirect with a target sends the client to the same path and query on that host."""
    alpha = world.add_instance("alpha")
    beta = world.add_instance("beta")
    alice = beta.add_account("alice")
    alpha.faults.append(Fault(kind="redirect", target=beta, status=301))
    with world.run_in_thread():
        moved = get(client, alpha, "/api/v1/accounts/lookup", acct="alice")
        followed = client.get(
            f"{alpha.base_url}/api/v1/accounts/lookup",
            params={"acct": "alice"},
            follow_redirects=True,
        )
    assert moved.status_code == 301
    assert moved.headers["location"] == f"{beta.base_url}/api/v1/accounts/lookup?acct=alice"
    assert followed.json()["id"] == alice.id


def test_redirect_loop_between_two_hosts(world: SimFediverse, client: httpx.Client) -> None:
    """A redirects to B and B back to A: a client following redirects gives up."""
    alpha = world.add_instance("alpha")
    beta = world.add_instance("beta")
    alpha.faults.append(Fault(kind="redirect", target=beta))
    beta.faults.append(Fault(kind="redirect", target=alpha))
    with world.run_in_thread(), httpx.Client(timeout=5.0, max_redirects=5) as limited:
        with pytest.raises(httpx.TooManyRedirects) as caught:
            limited.get(f"{alpha.base_url}/api/v1/instance", follow_redirects=True)
        last = caught.value.request.url
    assert last.path == "/api/v1/instance"
    hosts = [record.instance for record in world.requests]
    assert hosts == ["alpha", "beta", "alpha", "beta", "alpha", "beta"]
    assert {record.status for record in world.requests} == {302}


def test_new_fault_options_are_checked(world: SimFediverse) -> None:
    """Targets, content types, durations and storms refuse values that cannot work."""
    beta = world.add_instance("beta")
    with pytest.raises(ValueError, match="not both"):
        Fault(kind="redirect", location="http://127.0.0.1:1/", target=beta)
    with pytest.raises(ValueError, match="target"):
        Fault(kind="status", target=beta)
    with pytest.raises(ValueError, match="content_type"):
        Fault(kind="content_type", content_type="text/plain\r\nX-Evil: 1")
    with pytest.raises(ValueError, match="content_type"):
        Fault(kind="content_type", content_type=" ")
    with pytest.raises(ValueError, match="duration"):
        Fault(kind="rate_limited", duration=0.0)
    with pytest.raises(ValueError, match="429"):
        Fault(kind="rate_limited", status=503)


def test_faults_describe_themselves(world: SimFediverse) -> None:
    """describe() gives the short line a benchmark prints."""
    beta = world.add_instance("beta")
    lines = [
        Fault(kind="status", status=503, endpoint="account", probability=0.25, times=2),
        Fault(kind="rate_limited", duration=3.0, retry_after=False),
        Fault(kind="redirect", target=beta, status=301),
        Fault(kind="content_type", content_type="text/plain"),
        Fault(kind="drip", interval=0.002),
    ]
    assert [fault.describe() for fault in lines] == [
        "status 503 on account p=0.25 times=2",
        "rate_limited for 3.0s without Retry-After",
        "redirect 301 -> beta",
        "content_type as text/plain",
        "drip every 0.002s",
    ]


# Chaos -------------------------------------------------------------------------------------------


def chaos_world(seed: int, hosts: int = 30, software: str = "mastodon") -> SimFediverse:
    """A world of ``hosts`` instances with five accounts each."""
    world = SimFediverse(seed=seed)
    for number in range(hosts):
        instance = world.add_instance(f"host{number:02d}", software=software)
        for name in ("a", "b", "c", "d", "e"):
            instance.add_account(name, followers=number)
    return world


def only(profile: str, **overrides: Any) -> ChaosRates:
    """Rates that give every host ``profile`` and touch no account."""
    weights: dict[str, Any] = dict.fromkeys(CHAOS_PROFILES, 0.0)
    weights[profile] = 1.0
    return ChaosRates(**{**weights, "deleted": 0.0, "suspended": 0.0, **overrides})


def test_add_chaos_is_deterministic_for_a_seed() -> None:
    """Equal seeds over equal worlds inject equal chaos; the world's own RNG is not touched."""
    reports = []
    for _ in range(2):
        world = chaos_world(seed=5)
        state = world.rng.getstate()
        reports.append(add_chaos(world, rng=42))
        assert world.rng.getstate() == state
    first, second = reports
    assert first.describe() == second.describe()
    assert [host.profile for host in first.hosts] == [host.profile for host in second.hosts]
    assert [why for _, why in first.accounts] == [why for _, why in second.accounts]
    assert first.seed == 42
    other = add_chaos(chaos_world(seed=5), rng=43)
    assert other.describe() != first.describe()
    assert len(first.profile_counts()) >= 6  # a real mix on 30 hosts
    assert first.describe().startswith("chaos seed=42: 30 hosts, 150 accounts\n")


def test_add_chaos_reports_what_can_be_measured() -> None:
    """Deleted, suspended and refused-for-good accounts are unmeasurable, with the reason."""
    world = chaos_world(seed=1, hosts=40)
    report = add_chaos(world, rng=7, rates=ChaosRates(deleted=0.1, suspended=0.05))
    refusing = {"limited", "html", "redirect_loop", "down"}
    for account, why in report.accounts:
        host = report.host(account.instance.name)
        if account.deleted:
            assert why == "account deleted"
        elif account.suspended:
            assert why == "account suspended"
        elif host.profile in refusing:
            assert why is not None
            assert why == host.refuses
        else:
            assert why is None
            assert report.measurable(account)
    assert report.measurable_accounts
    assert report.unmeasurable_accounts
    total = len(report.measurable_accounts) + len(report.unmeasurable_accounts)
    assert total == len(report.accounts) == 200
    assert any(account.deleted for account, _ in report.accounts)
    assert "not measurable, account deleted:" in report.describe()


def test_add_chaos_counts_software_that_refuses_without_a_token() -> None:
    """Hosts whose software wants a token are unmeasurable even when healthy."""
    world = chaos_world(seed=1, hosts=2, software="pixelfed")
    report = add_chaos(world, rng=1, rates=only("healthy"))
    assert {why for _, why in report.accounts} == {"pixelfed wants a token for accounts"}


def test_add_chaos_rates_are_checked() -> None:
    """Rates refuse negative weights, all-zero weights, shares and ranges that cannot work."""
    with pytest.raises(ValueError, match="weights"):
        ChaosRates(healthy=-1.0)
    with pytest.raises(ValueError, match="weights"):
        only("healthy", healthy=0.0)
    with pytest.raises(ValueError, match="deleted"):
        ChaosRates(deleted=1.5)
    with pytest.raises(ValueError, match="storm"):
        ChaosRates(storm=(3.0, 1.0))


class Profiled:
    """A world of two hosts where ``alpha`` got one chaos profile; ``beta`` stays healthy."""

    def __init__(self, profile: str) -> None:
        """Build the world and give ``alpha`` the ``profile``."""
        self.world = SimFediverse(seed=3)
        self.alpha = self.world.add_instance("alpha", rate_limit=None)
        self.beta = self.world.add_instance("beta", rate_limit=None)
        self.alice = self.alpha.add_account("alice")
        self.beta.add_account("alice")
        rates = only(
            profile,
            outage_after=(0.0, 0.0),
            outage_lasting=(0.3, 0.3),
            fault_probability=(1.0, 1.0),
            drip_interval=(0.001, 0.001),
        )
        self.report = add_chaos(self.world, [self.alpha], rng=9, rates=rates)
        assert self.report.host("alpha").profile == profile

    @property
    def account_url(self) -> str:
        """Where alpha serves alice's account."""
        return f"{self.alpha.base_url}/api/v1/accounts/{self.alice.id}"


@pytest.mark.parametrize(
    ("profile", "status", "content_type", "measurable"),
    [
        ("healthy", 200, "application/json", True),
        ("limited", 401, "application/json", False),
        ("html", 200, "text/html", False),
        ("rate_limited", 429, "application/json", True),
        ("slow", 200, "application/json", True),
    ],
)
def test_chaos_profiles_answer_as_described(
    profile: str, status: int, content_type: str, measurable: bool
) -> None:
    """Healthy hosts answer, limited ones 401, CDN-fronted ones HTML, storms 429, slow ones drip."""
    host = Profiled(profile)
    assert host.report.measurable(host.alice) is measurable
    with host.world.run_in_thread(), httpx.Client(timeout=10.0) as client:
        started = time.monotonic()
        response = client.get(host.account_url)
        elapsed = time.monotonic() - started
    assert response.status_code == status
    assert response.headers["content-type"].startswith(content_type)
    if profile == "rate_limited":
        assert response.headers["x-ratelimit-remaining"] == "0"
    if profile == "slow":
        assert response.json()["id"] == host.alice.id
        assert elapsed >= 0.001 * len(response.content)


def test_chaos_unprocessable_hosts_refuse_only_the_batch() -> None:
    """An unprocessable host answers 422 to the batch call; the per-account call still works."""
    host = Profiled("unprocessable")
    with host.world.run_in_thread(), httpx.Client(timeout=5.0) as client:
        batch = client.get(f"{host.alpha.base_url}/api/v1/accounts?id[]={host.alice.id}")
        single = client.get(host.account_url)
    assert (batch.status_code, single.status_code) == (422, 200)
    assert host.report.measurable(host.alice)


def test_chaos_redirects_point_at_another_host_or_loop() -> None:
    """A redirect host sends clients to another host; a lone looping host to itself."""
    moving, looping = Profiled("redirect"), Profiled("redirect_loop")
    with moving.world.run_in_thread(), httpx.Client(timeout=5.0, max_redirects=5) as client:
        moved = client.get(moving.account_url)
    with (
        looping.world.run_in_thread(),
        httpx.Client(timeout=5.0, max_redirects=5) as client,
        pytest.raises(httpx.TooManyRedirects),
    ):
        client.get(looping.account_url, follow_redirects=True)
    assert moved.headers["location"].startswith(moving.beta.base_url)
    assert moving.report.measurable(moving.alice)
    assert looping.report.reason(looping.alice) == "host redirects in a loop"


def test_chaos_down_and_outage_hosts_refuse_connections() -> None:
    """A down host refuses for good; an outage host refuses, then comes back."""
    down, outage = Profiled("down"), Profiled("outage")
    outages = outage.report.host("alpha").outages
    assert outages
    assert outages[0].after == 0.0
    with down.world.run_in_thread(), httpx.Client(timeout=5.0) as client:
        assert refused(client, down.account_url)
    with outage.world.run_in_thread(), httpx.Client(timeout=5.0) as client:
        assert refused(client, outage.account_url)
        wait_until(lambda: all(item.ended is not None for item in outages))
        back = client.get(outage.account_url)
    assert back.status_code == 200
    assert down.report.reason(down.alice) == "host is down for good"
    assert outage.report.measurable(outage.alice)
