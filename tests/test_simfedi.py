"""Tests of the simulated fediverse over real sockets, with httpx as the collector will use it."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from fedimeter.domain.models import InstanceAddress
from fedimeter.simfedi import (
    BATCH_LIMIT,
    DEFAULT_START,
    Fault,
    RateLimit,
    SimAccount,
    SimFediverse,
    SimInstance,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

# Real response bodies from the Mastodon documentation (see fixtures/mastodon/SOURCES.md).
EXAMPLES = Path(__file__).parent / "fixtures" / "mastodon"
RESET_FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
WEEK = 7 * 24 * 3600


def example(name: str) -> Any:
    """Load one real response body from the fixtures."""
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


@pytest.fixture
def world() -> SimFediverse:
    """An empty world with a fixed seed."""
    return SimFediverse(seed=1)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A sync httpx client with short timeouts."""
    with httpx.Client(timeout=5.0) as http_client:
        yield http_client


def add_alice(instance: SimInstance, **overrides: Any) -> SimAccount:
    """Add the usual test account."""
    values: dict[str, Any] = {
        "followers": 120,
        "following": 30,
        "statuses": 400,
        "followers_per_day": 5.0,
        "following_per_day": 0.5,
        "statuses_per_day": 3.0,
    }
    values.update(overrides)
    return instance.add_account("alice", **values)


def get(client: httpx.Client, instance: SimInstance, path: str, **params: Any) -> httpx.Response:
    """GET ``path`` on ``instance``'s web host."""
    return client.get(f"{instance.base_url}{path}", params=params or None)


def same_json_types(ours: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """Keys present in both whose non-null values differ in JSON type."""
    return [
        key
        for key, value in theirs.items()
        if key in ours
        and value is not None
        and ours[key] is not None
        and type(ours[key]) is not type(value)
    ]


# Bodies ------------------------------------------------------------------------------------------


def test_account_body_has_the_fields_and_types_of_the_example(
    world: SimFediverse, client: httpx.Client
) -> None:
    """An account answer has every field of Mastodon's example, with the same JSON types."""
    alpha = world.add_instance("alpha")
    alice = add_alice(alpha, fields=[("Homepage", "<a>x</a>")])
    expected = example("account_local_gargron.json")
    with world.run_in_thread():
        body = get(client, alpha, f"/api/v1/accounts/{alice.id}").json()
    assert set(expected) <= set(body)
    assert same_json_types(body, expected) == []
    assert body["id"] == alice.id
    assert isinstance(body["id"], str)
    assert body["acct"] == "alice"  # local accounts have no domain in acct
    assert body["url"] == alice.profile_url
    assert set(body["fields"][0]) == set(expected["fields"][0])
    assert (body["followers_count"], body["following_count"], body["statuses_count"]) == (
        120,
        30,
        400,
    )
    assert body["last_status_at"] == DEFAULT_START.date().isoformat()


def test_suspended_account_is_200_with_zeroed_counts_like_the_example(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A suspended account answers 200 with suspended: true and the example's fields zeroed."""
    alpha = world.add_instance("alpha")
    alice = add_alice(alpha)
    alice.suspended = True
    expected = example("account_suspended.json")
    with world.run_in_thread():
        response = get(client, alpha, f"/api/v1/accounts/{alice.id}")
    body = response.json()
    assert response.status_code == 200
    assert set(expected) <= set(body)
    assert same_json_types(body, expected) == []
    assert body["suspended"] is True
    assert (body["followers_count"], body["following_count"], body["statuses_count"]) == (0, 0, 0)
    assert body["last_status_at"] is None


def test_moved_account_carries_the_target_account(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A moved account's JSON holds the new account under "moved", with its full acct."""
    alpha = world.add_instance("alpha")
    beta = world.add_instance("beta")
    alice = add_alice(alpha)
    new_alice = beta.add_account("alice2", followers=7)
    alice.moved_to = new_alice
    with world.run_in_thread():
        body = get(client, alpha, f"/api/v1/accounts/{alice.id}").json()
        target = get(client, beta, f"/api/v1/accounts/{new_alice.id}").json()
        assert body["moved"]["acct"] == new_alice.acct
    assert body["moved"]["followers_count"] == 7
    assert "moved" not in target


def test_deleted_account_answers_404_or_the_gone_status(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A deleted account is 404 "Record not found", or 410 where the server says Gone."""
    alpha = world.add_instance("alpha")
    old = world.add_instance("old", version="3.0.0", gone_status=410)
    gone_here = add_alice(alpha)
    gone_there = add_alice(old)
    gone_here.deleted = gone_there.deleted = True
    with world.run_in_thread():
        here = get(client, alpha, f"/api/v1/accounts/{gone_here.id}")
        there = get(client, old, f"/api/v1/accounts/{gone_there.id}")
        unknown = get(client, alpha, "/api/v1/accounts/999")
    assert here.status_code == 404
    assert here.json() == example("error_404_record_not_found.json")
    assert there.status_code == 410
    assert unknown.status_code == 404


def test_lookup_finds_local_accounts_by_username_or_account_domain(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Lookup accepts user and user@account-domain, and answers 404 for others."""
    alpha = world.add_instance("alpha", account_domain="alias")
    alice = add_alice(alpha)
    with world.run_in_thread():
        by_name = get(client, alpha, "/api/v1/accounts/lookup", acct="alice")
        by_acct = get(client, alpha, "/api/v1/accounts/lookup", acct=f"@{alice.acct.upper()}")
        web_host = get(client, alpha, "/api/v1/accounts/lookup", acct=f"alice@{alpha.web_domain}")
        unknown = get(client, alpha, "/api/v1/accounts/lookup", acct="nobody")
    assert by_name.json()["id"] == by_acct.json()["id"] == alice.id
    assert web_host.status_code == 404  # not the account domain: Mastodon looks it up as remote
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "Record not found"}


def test_old_mastodon_has_no_lookup_and_serves_timestamps(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Mastodon before 3.4 has no lookup; before 3.1 last_status_at is a full timestamp."""
    old = world.add_instance("old", version="3.0.1")
    alice = add_alice(old)
    with world.run_in_thread():
        lookup = get(client, old, "/api/v1/accounts/lookup", acct="alice")
        body = get(client, old, f"/api/v1/accounts/{alice.id}").json()
    assert lookup.status_code == 404
    assert body["last_status_at"] == "2026-01-05T12:00:00.000Z"


# Batch -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("software", "version", "has_batch"),
    [
        ("mastodon", "4.3.0", True),
        ("mastodon", "4.3.0+glitch", True),
        ("mastodon", "4.5.0-nightly.2025-07-11", True),
        ("mastodon", "4.2.10", False),
        ("mastodon", "3.5.3", False),
        ("pleroma", "2.6.0", False),
    ],
)
def test_batch_endpoint_exists_only_on_mastodon_4_3(
    world: SimFediverse, client: httpx.Client, software: str, version: str, has_batch: bool
) -> None:
    """GET /api/v1/accounts?id[]= answers on Mastodon 4.3+ and is a 404 route elsewhere."""
    server = world.add_instance("server", software=software, version=version)
    alice = add_alice(server)
    with world.run_in_thread():
        response = get(client, server, "/api/v1/accounts", **{"id[]": [alice.id]})
    if has_batch:
        assert response.status_code == 200
        assert [account["id"] for account in response.json()] == [alice.id]
    else:
        assert response.status_code == 404
        assert response.json() == {"error": "Record not found"}


def test_batch_answers_like_mastodon(world: SimFediverse, client: httpx.Client) -> None:
    """Batch leaves out missing and deleted ids, ignores id=, gives [] for none, 422 past 40."""
    alpha = world.add_instance("alpha")
    first, second, third = (alpha.add_account(name) for name in ("a", "b", "c"))
    third.deleted = True
    example_ids = {account["id"] for account in example("accounts_multiple.json")}
    assert example_ids == {"1"}  # the example asked for 1 and 2 and got only 1
    with world.run_in_thread():
        found = get(
            client, alpha, "/api/v1/accounts", **{"id[]": [second.id, "1", third.id, first.id]}
        )
        scalar = get(client, alpha, "/api/v1/accounts", id=first.id)
        none = get(client, alpha, "/api/v1/accounts")
        too_many = get(
            client, alpha, "/api/v1/accounts", **{"id[]": [str(n) for n in range(BATCH_LIMIT + 1)]}
        )
        duplicates = get(
            client, alpha, "/api/v1/accounts", **{"id[]": [first.id] * (BATCH_LIMIT + 5)}
        )
    # Database order (creation order), not the order asked.
    assert [account["id"] for account in found.json()] == [first.id, second.id]
    assert scalar.json() == []
    assert none.status_code == 200
    assert none.json() == []
    assert too_many.status_code == 422
    assert set(too_many.json()) == {"error"}
    assert [account["id"] for account in duplicates.json()] == [first.id]


# WebFinger ---------------------------------------------------------------------------------------


def test_webfinger_answers_like_the_example(world: SimFediverse, client: httpx.Client) -> None:
    """WebFinger gives a JRD shaped like Mastodon's, on the account domain and the web host."""
    alpha = world.add_instance("alpha")
    alice = add_alice(alpha)
    expected = example("webfinger.json")
    with world.run_in_thread():
        response = client.get(
            f"{alpha.base_url}/.well-known/webfinger", params={"resource": f"acct:{alice.acct}"}
        )
        by_url = client.get(
            f"{alpha.base_url}/.well-known/webfinger", params={"resource": alice.profile_url}
        )
    body = response.json()
    assert response.headers["content-type"].startswith("application/jrd+json")
    assert set(body) == set(expected)
    assert body["subject"] == f"acct:alice@{alpha.domain}"
    assert [link["rel"] for link in body["links"]] == [link["rel"] for link in expected["links"]]
    assert by_url.json() == body
    assert "x-ratelimit-limit" not in response.headers


def test_webfinger_rejects_unknown_and_malformed_resources(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Unknown users and foreign domains are 404, a resource without a domain is 400."""
    alpha = world.add_instance("alpha")
    add_alice(alpha)
    with world.run_in_thread():
        url = f"{alpha.base_url}/.well-known/webfinger"
        unknown = client.get(url, params={"resource": f"acct:bob@{alpha.domain}"})
        foreign = client.get(url, params={"resource": "acct:alice@elsewhere.example"})
        malformed = client.get(url, params={"resource": "acct:alice"})
        missing = client.get(url)
    assert (unknown.status_code, foreign.status_code) == (404, 404)
    assert (malformed.status_code, missing.status_code) == (400, 400)


def test_alias_domain_serves_only_webfinger_pointing_to_the_web_host(
    world: SimFediverse, client: httpx.Client
) -> None:
    """With an alias, acct uses the alias authority and WebFinger there links to the web host."""
    alpha = world.add_instance("alpha", account_domain="alias")
    alice = add_alice(alpha)
    with world.run_in_thread():
        alias = alpha.alias_address
        assert alias is not None
        assert alpha.domain == alias.authority != alpha.web_domain
        assert alice.acct == f"alice@{alias.authority}"
        finger = client.get(
            f"{alias.base_url}/.well-known/webfinger", params={"resource": f"acct:{alice.acct}"}
        )
        api_on_alias = client.get(f"{alias.base_url}/api/v1/accounts/{alice.id}")
        instance = get(client, alpha, "/api/v1/instance").json()
    self_link = next(link for link in finger.json()["links"] if link["rel"] == "self")
    assert finger.json()["subject"] == f"acct:{alice.acct}"
    assert self_link["href"] == f"{alpha.base_url}/users/alice"
    assert api_on_alias.status_code == 404
    assert api_on_alias.headers["content-type"].startswith("text/html")
    assert instance["uri"] == alpha.domain
    assert {record.server for record in world.requests} == {"alias", "web"}


def test_alias_can_redirect_webfinger_to_the_web_host(
    world: SimFediverse, client: httpx.Client
) -> None:
    """alias_redirect makes the account domain 301 to the web host's WebFinger."""
    alpha = world.add_instance("alpha", account_domain="alias", alias_redirect=True)
    alice = add_alice(alpha)
    with world.run_in_thread():
        alias = alpha.alias_address
        assert alias is not None
        url = f"{alias.base_url}/.well-known/webfinger"
        moved = client.get(url, params={"resource": f"acct:{alice.acct}"})
        followed = client.get(url, params={"resource": f"acct:{alice.acct}"}, follow_redirects=True)
    assert moved.status_code == 301
    assert moved.headers["location"].startswith(f"{alpha.base_url}/.well-known/webfinger?")
    assert followed.json()["subject"] == f"acct:{alice.acct}"


# NodeInfo and instance endpoints -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("software", "path"),
    [
        ("mastodon", "/nodeinfo/2.0"),
        ("pleroma", "/nodeinfo/2.1.json"),
        ("akkoma", "/nodeinfo/2.1.json"),
        ("pixelfed", "/api/nodeinfo/2.0.json"),
        ("misskey", "/nodeinfo/2.1"),
    ],
)
def test_nodeinfo_is_discovered_at_the_software_path(
    world: SimFediverse, client: httpx.Client, software: str, path: str
) -> None:
    """Discovery links to each software's own NodeInfo path; the document has the usual shape."""
    server = world.add_instance(
        "server", software=software, version="4.3.2", rate_limit=RateLimit(limit=1)
    )
    add_alice(server)
    server.add_account("bob", statuses=10, last_status_days_ago=None)
    expected = example("nodeinfo_2_0_mastodon.json")
    with world.run_in_thread():
        discovery = get(client, server, "/.well-known/nodeinfo").json()
        href = discovery["links"][0]["href"]
        document = client.get(href)
        client.get(href)  # NodeInfo does not count toward the API budget of 1
    body = document.json()
    assert set(discovery) == set(example("nodeinfo_discovery.json"))
    assert href == f"{server.base_url}{path}"
    assert set(expected) <= set(body)
    assert body["software"] == {**body["software"], "name": software, "version": "4.3.2"}
    assert body["usage"]["users"]["total"] == 2
    assert body["usage"]["localPosts"] == 410
    assert "x-ratelimit-limit" not in document.headers
    assert world.count(endpoint="nodeinfo", status=200) == 2
    if software == "misskey":
        assert body["usage"]["users"]["activeMonth"] is None
    else:
        assert body["usage"]["users"]["activeMonth"] == 1  # bob never posted


def test_instance_v1_and_v2_have_the_examples_keys(
    world: SimFediverse, client: httpx.Client
) -> None:
    """/api/v1/instance and /api/v2/instance have the examples' top-level keys and live stats."""
    alpha = world.add_instance("alpha", peers=["a.example", "b.example"])
    add_alice(alpha)
    with world.run_in_thread():
        v1 = get(client, alpha, "/api/v1/instance")
        v2 = get(client, alpha, "/api/v2/instance")
    assert set(v1.json()) == set(example("instance_v1.json"))
    assert set(v2.json()) == set(example("instance_v2.json"))
    assert v1.json()["stats"] == {"user_count": 1, "status_count": 400, "domain_count": 2}
    assert v1.json()["uri"] == alpha.domain
    assert v1.headers["deprecation"].startswith("@")
    assert v2.json()["usage"]["users"]["active_month"] == 1
    assert "deprecation" not in v2.headers


def test_pleroma_and_old_mastodon_instance_endpoints(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Pleroma shows a compatible version string; v2 is missing before Mastodon 4.0."""
    pleroma = world.add_instance("pleroma", software="pleroma", version="2.6.0")
    old = world.add_instance("old", version="3.5.3")
    with world.run_in_thread():
        pleroma_v1 = get(client, pleroma, "/api/v1/instance")
        old_v1 = get(client, old, "/api/v1/instance")
        old_v2 = get(client, old, "/api/v2/instance")
    assert pleroma_v1.json()["version"] == "2.7.2 (compatible; Pleroma 2.6.0)"
    assert pleroma_v1.json()["uri"] == pleroma.base_url
    assert "deprecation" not in old_v1.headers
    assert old_v2.status_code == 404


def test_activity_has_twelve_string_buckets_newest_first(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Activity gives 12 weekly buckets of strings; the first is the incomplete current week."""
    alpha = world.add_instance("alpha")
    add_alice(alpha, statuses_per_day=10.0)
    expected = example("instance_activity.json")
    with world.run_in_thread():
        buckets = get(client, alpha, "/api/v1/instance/activity").json()
    assert len(buckets) == 12
    assert all(set(bucket) == set(expected[0]) for bucket in buckets)
    assert all(isinstance(value, str) for bucket in buckets for value in bucket.values())
    weeks = [int(bucket["week"]) for bucket in buckets]
    assert weeks[0] == int(datetime(2026, 1, 5, tzinfo=UTC).timestamp())  # this Monday
    assert all(newer - older == WEEK for newer, older in itertools.pairwise(weeks))
    assert buckets[0]["statuses"] == "5"  # half a day of this week at 10 a day
    assert buckets[1]["statuses"] == "70"


def test_peers_and_misskey_without_mastodon_api(world: SimFediverse, client: httpx.Client) -> None:
    """Peers lists the configured domains; Misskey answers NodeInfo but no /api/v1 at all."""
    alpha = world.add_instance("alpha", peers=5)
    misskey = world.add_instance("misskey", software="misskey", version="2024.11.0")
    with world.run_in_thread():
        peers = get(client, alpha, "/api/v1/instance/peers").json()
        no_api = get(client, misskey, "/api/v1/instance")
        nodeinfo = get(client, misskey, "/.well-known/nodeinfo")
    assert len(peers) == 5
    assert all(isinstance(peer, str) for peer in peers)
    assert no_api.status_code == 404
    assert nodeinfo.status_code == 200


def test_limited_federation_and_disabled_endpoints(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Limited federation makes /api/* 401; disabled endpoints are 404 (activity: empty body)."""
    closed = world.add_instance("closed", limited_federation=True)
    trimmed = world.add_instance("trimmed", disabled_endpoints={"activity", "lookup"})
    alice = add_alice(closed)
    add_alice(trimmed)
    with world.run_in_thread():
        refused = get(client, closed, f"/api/v1/accounts/{alice.id}")
        refused_instance = get(client, closed, "/api/v1/instance")
        nodeinfo = get(client, closed, "/.well-known/nodeinfo")
        activity = get(client, trimmed, "/api/v1/instance/activity")
        lookup = get(client, trimmed, "/api/v1/accounts/lookup", acct="alice")
        trimmed.disabled_endpoints = frozenset()
        lookup_again = get(client, trimmed, "/api/v1/accounts/lookup", acct="alice")
    assert refused.status_code == refused_instance.status_code == 401
    assert refused.json() == example("error_401_authenticated_user_required.json")
    assert nodeinfo.status_code == 200
    assert (activity.status_code, activity.content) == (404, b"")
    assert lookup.json() == {"error": "Record not found"}
    assert lookup_again.status_code == 200


def test_hidden_collections_and_user_overrides(world: SimFediverse, client: httpx.Client) -> None:
    """Pleroma zeroes hidden follow counts, Mastodon flags them; user figures can be forced."""
    mastodon = world.add_instance("mastodon", users_total=5000, active_month=321)
    pleroma = world.add_instance("pleroma", software="pleroma", version="2.6.0")
    on_mastodon = add_alice(mastodon, hide_collections=True)
    on_pleroma = add_alice(pleroma, hide_collections=True)
    with world.run_in_thread():
        shown = get(client, mastodon, f"/api/v1/accounts/{on_mastodon.id}").json()
        hidden = get(client, pleroma, f"/api/v1/accounts/{on_pleroma.id}").json()
        nodeinfo = get(client, mastodon, "/nodeinfo/2.0").json()
        v2 = get(client, mastodon, "/api/v2/instance").json()
    assert (shown["followers_count"], shown["hide_collections"]) == (120, True)
    assert (hidden["followers_count"], hidden["following_count"]) == (0, 0)
    assert hidden["statuses_count"] == 400
    assert nodeinfo["usage"]["users"]["total"] == 5000
    assert nodeinfo["usage"]["users"]["activeMonth"] == 321
    assert v2["usage"]["users"]["active_month"] == 321


def test_pixelfed_wants_a_token_for_accounts(world: SimFediverse, client: httpx.Client) -> None:
    """Pixelfed answers 401 on account endpoints but serves /api/v1/instance."""
    pixelfed = world.add_instance("pixelfed", software="pixelfed", version="0.12.3")
    alice = add_alice(pixelfed)
    with world.run_in_thread():
        account = get(client, pixelfed, f"/api/v1/accounts/{alice.id}")
        instance = get(client, pixelfed, "/api/v1/instance")
    assert account.status_code == 401
    assert instance.json()["version"] == "3.5.3 (compatible; Pixelfed 0.12.3)"


# Rate limits -------------------------------------------------------------------------------------


def wait_for_fresh_window(window: float) -> None:
    """Sleep until just after the next fixed-window boundary, so a burst fits in one window."""
    now = time.time()
    time.sleep(math.floor(now / window) * window + window - now + 0.01)


def test_rate_limit_headers_and_429_until_the_window_resets(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Answers carry X-RateLimit-*; past the limit 429 without Retry-After until the reset."""
    window = 0.5
    alpha = world.add_instance("alpha", rate_limit=RateLimit(limit=3, window=window))
    with world.run_in_thread():
        wait_for_fresh_window(window)
        answers = [get(client, alpha, "/api/v1/instance/peers") for _ in range(5)]
        reset = datetime.strptime(
            answers[-1].headers["x-ratelimit-reset"], "%Y-%m-%dT%H:%M:%S.%fZ"
        ).replace(tzinfo=UTC)
        time.sleep(max(0.0, reset.timestamp() - time.time()) + 0.01)
        after_reset = get(client, alpha, "/api/v1/instance/peers")
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429, 429]
    assert [answer.headers["x-ratelimit-remaining"] for answer in answers] == [
        "2",
        "1",
        "0",
        "0",
        "0",
    ]
    assert all(answer.headers["x-ratelimit-limit"] == "3" for answer in answers)
    assert all(RESET_FORMAT.match(answer.headers["x-ratelimit-reset"]) for answer in answers)
    assert answers[3].json() == example("error_429_too_many_requests.json")
    assert "retry-after" not in answers[3].headers
    assert math.isclose(reset.timestamp() % window, 0.0, abs_tol=1e-3)
    assert after_reset.status_code == 200
    assert after_reset.headers["x-ratelimit-remaining"] == "2"
    assert world.count_over_limit(instance="alpha") == 2
    assert world.count(instance="alpha", status=429) == 2


def test_retry_after_and_stripped_headers_are_options(
    world: SimFediverse, client: httpx.Client
) -> None:
    """retry_after adds Retry-After to 429s; send_headers=False hides X-RateLimit-* headers."""
    window = 60.0
    proxied = world.add_instance(
        "proxied", rate_limit=RateLimit(limit=1, window=window, retry_after=True)
    )
    stripped = world.add_instance(
        "stripped", rate_limit=RateLimit(limit=1, window=window, send_headers=False)
    )
    with world.run_in_thread():
        get(client, proxied, "/api/v1/instance/peers")
        get(client, stripped, "/api/v1/instance/peers")
        limited = get(client, proxied, "/api/v1/instance/peers")
        hidden = get(client, stripped, "/api/v1/instance/peers")
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= window
    assert hidden.status_code == 429
    assert not [name for name in hidden.headers if name.startswith("x-ratelimit")]


def test_errors_and_faults_count_toward_the_rate_limit(
    world: SimFediverse, client: httpx.Client
) -> None:
    """404s and faulty answers count and carry headers; resets and timeouts do not count."""
    alpha = world.add_instance("alpha", rate_limit=RateLimit(limit=100, window=600.0))
    alpha.faults.append(Fault(kind="status", status=503, endpoint="peers", times=1))
    alpha.faults.append(Fault(kind="reset", endpoint="activity", times=1))
    with world.run_in_thread():
        missing = get(client, alpha, "/api/v1/accounts/404")
        failed = get(client, alpha, "/api/v1/instance/peers")
        with pytest.raises(httpx.TransportError):
            get(client, alpha, "/api/v1/instance/activity")
        after = get(client, alpha, "/api/v1/instance")
    assert missing.headers["x-ratelimit-remaining"] == "99"
    assert failed.status_code == 503
    assert failed.headers["x-ratelimit-remaining"] == "98"
    assert after.headers["x-ratelimit-remaining"] == "97"
    assert [record.counted for record in world.requests] == [True, True, False, True]


# Simulated time ----------------------------------------------------------------------------------


def test_counts_grow_with_simulated_time(world: SimFediverse, client: httpx.Client) -> None:
    """advance() grows counts by floor(rate * days) and moves last_status_at with the posts."""
    alpha = world.add_instance("alpha")
    alice = add_alice(alpha)
    with world.run_in_thread():
        world.advance(days=1.5)
        body = get(client, alpha, f"/api/v1/accounts/{alice.id}").json()
        alice.followers = 1000
        alice.followers_per_day = -2.0
        world.advance(days=2)
        later = get(client, alpha, f"/api/v1/accounts/{alice.id}").json()
    assert (body["followers_count"], body["following_count"], body["statuses_count"]) == (
        127,
        30,
        404,
    )
    assert body["last_status_at"] == "2026-01-06"  # the 4th post, 4/3 days after the start
    assert later["followers_count"] == 996
    assert world.now == DEFAULT_START + timedelta(days=3.5)
    assert later["last_status_at"] == "2026-01-08"


# Faults ------------------------------------------------------------------------------------------


def test_status_fault_applies_times_then_is_spent(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A status fault with times=2 answers twice with a JSON error, then the account is back."""
    alpha = world.add_instance("alpha")
    alice = add_alice(alpha)
    fault = Fault(kind="status", status=503, endpoint="account", times=2)
    alpha.faults.append(fault)
    with world.run_in_thread():
        statuses = [get(client, alpha, f"/api/v1/accounts/{alice.id}") for _ in range(3)]
        instance = get(client, alpha, "/api/v1/instance")
    assert [response.status_code for response in statuses] == [503, 503, 200]
    assert set(statuses[0].json()) == {"error"}
    assert instance.status_code == 200
    assert fault.hits == 2
    assert fault.spent
    assert [record.fault for record in world.requests] == ["status", "status", None, None]


def test_html_and_malformed_faults_are_not_usable_json(
    world: SimFediverse, client: httpx.Client
) -> None:
    """An html fault serves a text/html page; a malformed one serves broken JSON."""
    alpha = world.add_instance("alpha")
    alice = add_alice(alpha)
    alpha.faults += [
        Fault(kind="html", endpoint="account", times=1),
        Fault(kind="html", status=502, endpoint="account", times=1),
        Fault(kind="malformed", endpoint="account", times=1),
    ]
    with world.run_in_thread():
        page, proxy, broken = (get(client, alpha, f"/api/v1/accounts/{alice.id}") for _ in range(3))
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert proxy.status_code == 502
    assert "502 Bad Gateway" in proxy.text
    assert broken.status_code == 200
    assert broken.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        broken.json()


def test_wrong_type_fault_keeps_the_shape_with_bad_values(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A wrong_type fault keeps every key but serves counts and ids of the wrong type."""
    alpha = world.add_instance("alpha")
    alice = add_alice(alpha)
    alpha.faults.append(Fault(kind="wrong_type", endpoint="account", times=1))
    with world.run_in_thread():
        bad = get(client, alpha, f"/api/v1/accounts/{alice.id}").json()
        good = get(client, alpha, f"/api/v1/accounts/{alice.id}").json()
    assert set(bad) == set(good)
    assert not isinstance(bad["id"], str)
    counts = [bad[key] for key in ("followers_count", "following_count", "statuses_count")]
    assert all(not isinstance(count, int) or count < 0 for count in counts)


def test_timeout_and_reset_faults_send_no_answer(world: SimFediverse) -> None:
    """A timeout fault never answers; a reset fault drops the connection; neither is logged 2xx."""
    alpha = world.add_instance("alpha")
    alpha.faults += [
        Fault(kind="timeout", endpoint="instance", times=1),
        Fault(kind="reset", endpoint="instance", times=1),
    ]
    with world.run_in_thread(), httpx.Client(timeout=0.3) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            get(client, alpha, "/api/v1/instance")
        waited = time.monotonic() - started
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            get(client, alpha, "/api/v1/instance")
        recovered = get(client, alpha, "/api/v1/instance")
    assert waited >= 0.3
    assert recovered.status_code == 200
    records = world.requests
    assert [(record.fault, record.status) for record in records] == [
        ("timeout", None),
        ("reset", None),
        (None, 200),
    ]


def test_drip_and_truncated_faults_shape_the_body_delivery(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A drip fault sends the body byte by byte; a truncated one closes before Content-Length."""
    alpha = world.add_instance("alpha", peers=["a.example"])
    alpha.faults += [
        Fault(kind="drip", endpoint="peers", interval=0.02, times=1),
        Fault(kind="truncated", endpoint="peers", times=1),
    ]
    with world.run_in_thread():
        started = time.monotonic()
        dripped = get(client, alpha, "/api/v1/instance/peers")
        elapsed = time.monotonic() - started
        with pytest.raises(httpx.RemoteProtocolError):
            get(client, alpha, "/api/v1/instance/peers")
    assert dripped.json() == ["a.example"]
    assert elapsed >= 0.02 * len(dripped.content)


def test_redirect_fault_points_elsewhere(world: SimFediverse, client: httpx.Client) -> None:
    """A redirect fault answers 302 to its location, here another instance."""
    alpha = world.add_instance("alpha")
    beta = world.add_instance("beta", title="Beta")
    with world.run_in_thread():
        alpha.faults.append(
            Fault(kind="redirect", endpoint="instance", location=f"{beta.base_url}/api/v1/instance")
        )
        redirected = get(client, alpha, "/api/v1/instance")
        followed = client.get(f"{alpha.base_url}/api/v1/instance", follow_redirects=True)
        loop = f"{beta.base_url}/api/v1/instance/peers"
        beta.faults.append(Fault(kind="redirect", endpoint="peers", status=301, location=loop))
        with pytest.raises(httpx.TooManyRedirects):
            client.get(loop, follow_redirects=True)
    assert redirected.status_code == 302
    assert redirected.headers["location"] == f"{beta.base_url}/api/v1/instance"
    assert followed.json()["title"] == "Beta"


def test_faults_can_target_account_ids_in_batches(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A fault with account_ids hits a batch that asks for any targeted id and nothing else."""
    alpha = world.add_instance("alpha")
    alice, bob = alpha.add_account("alice"), alpha.add_account("bob")
    alpha.faults.append(Fault(kind="status", status=500, account_ids={bob.id}))
    with world.run_in_thread():
        with_bob = get(client, alpha, "/api/v1/accounts", **{"id[]": [alice.id, bob.id]})
        without_bob = get(client, alpha, "/api/v1/accounts", **{"id[]": [alice.id]})
        bob_alone = get(client, alpha, f"/api/v1/accounts/{bob.id}")
    assert (with_bob.status_code, without_bob.status_code, bob_alone.status_code) == (
        500,
        200,
        500,
    )


def test_probabilistic_faults_repeat_with_the_seed(client: httpx.Client) -> None:
    """Equal seeds give equal fault rolls, so flaky-server tests are reproducible."""
    outcomes = []
    for _ in range(2):
        world = SimFediverse(seed=7)
        alpha = world.add_instance("alpha", rate_limit=None)
        alpha.faults.append(Fault(kind="status", status=502, probability=0.5))
        with world.run_in_thread():
            outcomes.append(
                [get(client, alpha, "/api/v1/instance/peers").status_code for _ in range(20)]
            )
    assert outcomes[0] == outcomes[1]
    assert {200, 502} == set(outcomes[0])


def test_fault_options_are_checked() -> None:
    """Faults refuse kinds, endpoints and options that cannot work."""
    with pytest.raises(ValueError, match="kind"):
        Fault(kind="explode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="endpoint"):
        Fault(kind="status", endpoint="statuses")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="location"):
        Fault(kind="redirect")
    with pytest.raises(ValueError, match="probability"):
        Fault(kind="reset", probability=2.0)


# Log, connections, serving -----------------------------------------------------------------------


def test_request_log_records_every_request(world: SimFediverse, client: httpx.Client) -> None:
    """The log keeps instance, path, query, endpoint, status and times; clear empties it."""
    alpha = world.add_instance("alpha")
    beta = world.add_instance("beta")
    alice = add_alice(alpha)
    with world.run_in_thread():
        get(client, alpha, "/api/v1/accounts", **{"id[]": [alice.id, "2"]})
        get(client, alpha, "/api/v1/nothing")
        get(client, beta, "/.well-known/nodeinfo")
        records = world.requests
        assert world.count(instance="alpha") == 2
        assert world.count(endpoint="batch") == 1
        assert world.count(instance="beta", endpoint="nodeinfo_discovery") == 1
        world.clear_requests()
        assert world.requests == []
    batch, other, discovery = records
    assert (batch.instance, batch.method, batch.path) == ("alpha", "GET", "/api/v1/accounts")
    assert batch.query == {"id[]": [alice.id, "2"]}
    assert (batch.endpoint, batch.status, batch.counted) == ("batch", 200, True)
    assert batch.finished is not None
    assert batch.started <= batch.finished
    assert (other.endpoint, other.status) == ("other", 404)
    assert (discovery.counted, discovery.over_limit) == (False, False)


def test_connections_are_kept_alive(world: SimFediverse, client: httpx.Client) -> None:
    """Many requests through one client reuse one TCP connection."""
    alpha = world.add_instance("alpha", rate_limit=None)
    with world.run_in_thread():
        ports = {
            get(client, alpha, "/api/v1/instance/peers")
            .extensions["network_stream"]
            .get_extra_info("client_addr")[1]
            for _ in range(20)
        }
        head = client.head(f"{alpha.base_url}/api/v1/instance")
    assert len(ports) == 1
    assert head.status_code == 200
    assert int(head.headers["content-length"]) > 0
    assert head.content == b""
    assert head.headers["date"]


def test_addresses_follow_the_domain_model(world: SimFediverse) -> None:
    """Instances expose InstanceAddress values on loopback with their own ephemeral ports."""
    alpha = world.add_instance("alpha")
    beta = world.add_instance("beta")
    alice = add_alice(alpha)
    with pytest.raises(RuntimeError, match="no address"):
        _ = alpha.address
    with world.run_in_thread():
        assert isinstance(alpha.address, InstanceAddress)
        assert alpha.address.host == "127.0.0.1"
        assert alpha.address.scheme == "http"
        assert alpha.address.port != beta.address.port
        assert alice.acct == f"alice@127.0.0.1:{alpha.address.port}"
        assert alice.handle.acct == alice.acct
        assert alice.profile_url == f"http://127.0.0.1:{alpha.address.port}/@alice"


def test_worlds_with_equal_seeds_build_equal_ids() -> None:
    """The seed fixes generated ids and ages."""
    first, second = SimFediverse(seed=3), SimFediverse(seed=3)
    ids = [
        world.add_instance(name, software=software).add_account("alice").id
        for world in (first, second)
        for name, software in (("m", "mastodon"), ("p", "pleroma"), ("g", "gotosocial"))
    ]
    assert ids[:3] == ids[3:]
    assert ids[0].isdigit()
    assert not ids[1].isdigit()


def test_instance_added_while_serving_answers_at_once(
    world: SimFediverse, client: httpx.Client
) -> None:
    """An instance added to a running world listens immediately."""
    with world.run_in_thread():
        late = world.add_instance("late")
        add_alice(late)
        response = get(client, late, "/api/v1/accounts/lookup", acct="alice")
    assert response.status_code == 200


async def test_serving_on_the_running_loop_handles_concurrent_requests() -> None:
    """serving() runs on the test's loop and answers concurrent requests to several instances."""
    world = SimFediverse(seed=2)
    instances = [
        world.add_instance(name, latency=(0.0, 0.01), rate_limit=None) for name in ("a", "b")
    ]
    accounts = [instance.add_account("alice") for instance in instances]
    async with world.serving(), httpx.AsyncClient(timeout=5.0) as client:
        responses = await asyncio.gather(
            *(
                client.get(f"{instance.base_url}/api/v1/accounts/{account.id}")
                for instance, account in zip(instances, accounts, strict=True)
                for _ in range(25)
            )
        )
    assert {response.status_code for response in responses} == {200}
    assert world.count(instance="a", endpoint="account") == 25
    assert world.count(instance="b", endpoint="account") == 25
