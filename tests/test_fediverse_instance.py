"""Measuring an instance: the parsers on real bodies, then every source over real sockets."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from fedimeter.config import Settings, load_settings
from fedimeter.domain.instances import (
    SOURCE_NAMES,
    InstanceFigures,
    InstanceMeasurement,
    SourceStatus,
    WeekActivity,
)
from fedimeter.domain.models import InstanceAddress
from fedimeter.errors import AddressRefused, BadResponse, Halted
from fedimeter.fediverse import FediverseClient
from fedimeter.fediverse.parse import (
    InstanceFacts,
    NodeInfoFacts,
    parse_activity,
    parse_instance_v1,
    parse_instance_v2,
    parse_nodeinfo_facts,
    parse_peers,
    split_compatible,
)
from fedimeter.simfedi import Fault, SimFediverse, SimInstance
from simhelpers import sim_client
from test_fediverse_support import FakeTime, Routes, fixture, json_response, make_client

HOST = "social.example"

# -- parsers, on the documented bodies --------------------------------------------------------


def test_v1_instance_example_gives_stats_version_and_registrations() -> None:
    """The documented /api/v1/instance: stats, plain version, closed registrations."""
    assert parse_instance_v1(fixture("instance_v1.json"), host=HOST) == InstanceFacts(
        software=None,
        version="3.5.3",
        users=812303,
        statuses=38151616,
        domains=25255,
        open_registrations=False,
    )


def test_v2_instance_example_gives_active_month() -> None:
    """The documented /api/v2/instance: usage.users.active_month and registrations.enabled."""
    assert parse_instance_v2(fixture("instance_v2.json"), host=HOST) == InstanceFacts(
        version="4.5.0-nightly.2025-07-11", active_month=279347, open_registrations=True
    )


def test_activity_example_is_twelve_weeks_oldest_first_newest_incomplete() -> None:
    """String values are read as numbers; the first (newest) bucket is the week in progress."""
    weeks = parse_activity(fixture("instance_activity.json"), host=HOST)
    assert len(weeks) == 12
    assert weeks[0] == WeekActivity(date(2019, 9, 9), 106029, 19089, 2769, complete=True)
    assert weeks[-1] == WeekActivity(date(2019, 11, 25), 37125, 14239, 542, complete=False)
    assert [w.complete for w in weeks] == [True] * 11 + [False]
    assert all(
        b.week_start - a.week_start == timedelta(days=7) for a, b in itertools.pairwise(weeks)
    )


def test_peers_example_is_counted() -> None:
    """/api/v1/instance/peers: the number of domains listed."""
    assert parse_peers(fixture("instance_peers.json"), host=HOST) == 3


def test_mastodon_nodeinfo_gives_every_figure() -> None:
    """A real Mastodon NodeInfo: software, users, activity, local posts, registrations."""
    assert parse_nodeinfo_facts(fixture("nodeinfo_2_0_mastodon.json"), host=HOST) == (
        NodeInfoFacts(
            software="mastodon",
            version="4.1.2+nightly-20230523",
            users=1159186,
            active_month=217235,
            active_halfyear=468099,
            local_posts=56694261,
            open_registrations=True,
        )
    )


def test_nodeinfo_2_1_example_is_read_like_2_0() -> None:
    """The NodeInfo 2.1 spec example reads the same fields."""
    facts = parse_nodeinfo_facts(fixture("nodeinfo_2_1.json"), host=HOST)
    assert (facts.software, facts.users, facts.active_month, facts.active_halfyear) == (
        "diaspora",
        123,
        23,
        42,
    )
    assert facts.local_posts == 500


def test_null_activity_figures_are_unknown_not_zero() -> None:
    """Misskey's activeMonth/activeHalfyear are null: None, never 0."""
    body = fixture("nodeinfo_2_1.json")
    body["usage"]["users"].update(activeMonth=None, activeHalfyear=None)
    del body["usage"]["localPosts"]
    facts = parse_nodeinfo_facts(body, host=HOST)
    assert (facts.users, facts.active_month, facts.active_halfyear, facts.local_posts) == (
        123,
        None,
        None,
        None,
    )


def test_negative_figures_are_read_for_plausible_to_judge() -> None:
    """A negative count is a value to judge, not a malformed answer."""
    body = fixture("instance_v1.json")
    body["stats"]["user_count"] = -4
    assert parse_instance_v1(body, host=HOST).users == -4


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("2.7.2 (compatible; Pleroma 2.6.0)", ("pleroma", "2.6.0")),
        ("2.7.2 (compatible; Akkoma 3.13.2)", ("akkoma", "3.13.2")),
        ("3.5.3 (compatible; Pixelfed 0.12.3)", ("pixelfed", "0.12.3")),
        ("2.7.2 (compatible; Pleroma 2.6.2-develop)", ("pleroma", "2.6.2-develop")),
        ("4.3.2", (None, "4.3.2")),
        ("0.17.3 git-5a7b3c2", (None, "0.17.3 git-5a7b3c2")),
        ("4.3.2 (compatible)", (None, "4.3.2 (compatible)")),
    ],
)
def test_compatible_versions_name_the_real_software(
    version: str, expected: tuple[str | None, str]
) -> None:
    """Pleroma-style versions give the software and its own version; others stay as they are."""
    assert split_compatible(version) == expected


@pytest.mark.parametrize("bad", ["lots", 1.5, True, "812303", [1]])
def test_a_figure_of_the_wrong_type_is_a_bad_response(bad: object) -> None:
    """A count that is not a whole number makes the answer malformed."""
    body = fixture("instance_v1.json")
    body["stats"]["user_count"] = bad
    with pytest.raises(BadResponse, match=r"stats\.user_count"):
        parse_instance_v1(body, host=HOST)


@pytest.mark.parametrize(
    ("parser", "data"),
    [
        (parse_instance_v1, []),
        (parse_instance_v1, {"stats": [1, 2, 3]}),
        (parse_instance_v2, {"usage": {"users": "many"}}),
        (parse_instance_v2, {"registrations": {"enabled": "yes"}}),
        (parse_nodeinfo_facts, "nodeinfo"),
        (parse_nodeinfo_facts, {"usage": {"users": {"total": "12"}}}),
        (parse_nodeinfo_facts, {"openRegistrations": "no"}),
        (parse_peers, {"peers": []}),
        (parse_peers, ["a.example", -1]),
        (parse_activity, {"week": "1"}),
        (parse_activity, ["1574640000"]),
    ],
)
def test_malformed_bodies_are_bad_responses(parser: Any, data: object) -> None:
    """Wrong shapes raise BadResponse, never KeyError or TypeError."""
    with pytest.raises(BadResponse):
        parser(data, host=HOST)


def _bucket(**changes: object) -> dict[str, object]:
    bucket: dict[str, object] = {
        "week": "1574640000",
        "statuses": "1",
        "logins": "2",
        "registrations": "3",
    }
    bucket.update(changes)
    return bucket


@pytest.mark.parametrize(
    "bucket",
    [
        _bucket(statuses="-5"),
        _bucket(logins="lots"),
        _bucket(registrations=None),
        _bucket(week="not a date"),
        _bucket(week="9" * 19),
        _bucket(statuses=2.5),
        _bucket(statuses=True),
        {"week": "1574640000", "statuses": "1", "logins": "2"},
    ],
)
def test_activity_values_must_be_non_negative_whole_numbers(bucket: dict[str, object]) -> None:
    """A bucket with a missing, negative, fractional or non-numeric value is malformed."""
    with pytest.raises(BadResponse):
        parse_activity([bucket], host=HOST)


def test_activity_accepts_numbers_where_strings_belong_and_any_order() -> None:
    """Integers are read too, and the buckets are sorted whatever order they came in."""
    weeks = parse_activity(
        [_bucket(week=1574035200, statuses=7), _bucket(week="1574640000")], host=HOST
    )
    assert [(w.week_start, w.statuses, w.complete) for w in weeks] == [
        (date(2019, 11, 18), 7, True),
        (date(2019, 11, 25), 1, False),
    ]


def test_two_buckets_for_one_week_are_malformed() -> None:
    """The same week twice cannot both be true."""
    with pytest.raises(BadResponse, match="two activity buckets"):
        parse_activity([_bucket(), _bucket(statuses="9")], host=HOST)


def test_empty_activity_is_no_weeks() -> None:
    """A server without activity yet answers []."""
    assert parse_activity([], host=HOST) == ()


# -- measure_instance with a mocked transport: what the simulator cannot stage ----------------


def _mock_routes(nodeinfo_users: int, v1_users: int) -> Routes:
    """A Mastodon whose NodeInfo and /api/v1/instance disagree on the user count."""
    routes = Routes()
    routes.add(
        HOST,
        "/.well-known/nodeinfo",
        {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/2.0", "href": "/ni"}]},
    )
    nodeinfo = fixture("nodeinfo_2_0_mastodon.json")
    nodeinfo["usage"]["users"]["total"] = nodeinfo_users
    routes.add(HOST, "/ni", nodeinfo)
    v1 = fixture("instance_v1.json")
    v1["stats"]["user_count"] = v1_users
    routes.add(HOST, "/api/v1/instance", v1)
    routes.add(HOST, "/api/v2/instance", fixture("instance_v2.json"))
    routes.add(HOST, "/api/v1/instance/peers", fixture("instance_peers.json"))
    routes.add(HOST, "/api/v1/instance/activity", fixture("instance_activity.json"))
    return routes


async def test_a_rejected_figure_falls_back_to_the_next_source() -> None:
    """NodeInfo's zeroed users are not believed; /api/v1/instance's count is used instead."""
    client = make_client(_mock_routes(nodeinfo_users=0, v1_users=1_159_000), FakeTime())
    measured = await client.measure_instance(
        InstanceAddress(HOST), previous=InstanceFigures(users=1_159_186)
    )
    assert measured.figures.users == 1_159_000
    assert _statuses(measured) == ["implausible", "ok", "ok", "ok", "ok"]
    assert measured.sources[0].detail.startswith("users reads 0 where the previous")
    # NodeInfo's other figures are still believed.
    assert measured.figures.active_halfyear == 468099


async def test_when_every_source_of_a_figure_is_doubted_it_is_unknown() -> None:
    """Both user counts jumped a hundred-fold: users is None and both sources are doubted."""
    client = make_client(_mock_routes(nodeinfo_users=99, v1_users=98), FakeTime())
    measured = await client.measure_instance(
        InstanceAddress(HOST), previous=InstanceFigures(users=1_159_186, statuses=38_151_616)
    )
    assert measured.figures.users is None
    assert measured.figures.statuses == 38151616
    assert _statuses(measured)[:2] == ["implausible", "implausible"]
    assert measured.up


async def test_figures_come_from_their_best_source() -> None:
    """Users from NodeInfo, statuses and domains from v1, active_month from v2."""
    client = make_client(_mock_routes(nodeinfo_users=1_159_186, v1_users=812303), FakeTime())
    measured = await client.measure_instance(InstanceAddress(HOST))
    assert measured.figures == InstanceFigures(
        users=1159186,
        statuses=38151616,
        domains=25255,
        peers=3,
        active_month=279347,
        active_halfyear=468099,
    )
    assert (measured.software, measured.version, measured.open_registrations) == (
        "mastodon",
        "4.1.2+nightly-20230523",
        True,
    )
    assert len(measured.weeks) == 12


@pytest.mark.parametrize(
    ("discovery", "status", "detail"),
    [
        ({"links": []}, "missing", "lists no NodeInfo 2.x document"),
        (
            {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/1.0", "href": "/n"}]},
            "missing",
            "lists no NodeInfo 2.x document",
        ),
        (
            {
                "links": [
                    {
                        "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                        "href": "javascript:alert(1)",
                    }
                ]
            },
            "failed",
            "not an http(s) URL",
        ),
        (["not", "a", "jrd"], "failed", "answered NodeInfo discovery with a list"),
    ],
)
async def test_nodeinfo_discovery_without_a_usable_link(
    discovery: object, status: SourceStatus, detail: str
) -> None:
    """No 2.x link is missing, a bad one failed; the API is still asked."""
    routes = _mock_routes(1_159_186, 812_303)
    routes.add(HOST, "/.well-known/nodeinfo", lambda _r: json_response(discovery))
    measured = await make_client(routes, FakeTime()).measure_instance(InstanceAddress(HOST))
    assert measured.sources[0].status == status
    assert detail in measured.sources[0].detail
    assert _statuses(measured)[1:] == ["ok"] * 4
    assert measured.software is None
    assert measured.version == "4.5.0-nightly.2025-07-11"


async def test_an_unexpected_status_is_a_failure_with_the_servers_words() -> None:
    """A 422 is neither missing nor denied: failed, with the error text."""
    routes = _mock_routes(1, 1)
    routes.add(HOST, "/api/v1/instance/peers", lambda _r: json_response({"error": "Nope"}, 422))
    measured = await make_client(routes, FakeTime()).measure_instance(InstanceAddress(HOST))
    assert measured.sources[3].status == "failed"
    assert measured.sources[3].detail == (
        f"{HOST} answered 422 Unprocessable Entity for /api/v1/instance/peers (Nope)"
    )


# -- measure_instance against the simulated fediverse over real sockets ----------------------


@pytest.fixture
def sim_settings() -> Settings:
    """Loopback allowed, one quick retry, short timeouts; no database is needed."""
    return load_settings(
        database_url="sqlite:///:memory:",
        allow_private_addresses=True,
        max_retries=1,
        retry_base_delay=0.0,
        retry_max_delay=0.0,
        connect_timeout=1.0,
        read_timeout=0.5,
        request_deadline=2.0,
    )


@pytest.fixture
def world() -> SimFediverse:
    """An empty world with a fixed seed."""
    return SimFediverse(seed=5)


@pytest.fixture
async def client(sim_settings: Settings, world: SimFediverse) -> AsyncIterator[FediverseClient]:
    """A client on the world's clock; the world serves while it is open."""
    async with world.serving(), sim_client(sim_settings, world) as opened:
        yield opened


def _populate(instance: SimInstance) -> SimInstance:
    """Three accounts: one posting daily, one quiet for 100 days, one silent for a year."""
    instance.add_account("alice", statuses=400, statuses_per_day=3.0, created_days_ago=20)
    instance.add_account("bob", statuses=50, last_status_days_ago=100)
    instance.add_account("carol", statuses=7, last_status_days_ago=365)
    return instance


def _statuses(measured: InstanceMeasurement) -> list[SourceStatus]:
    return [source.status for source in measured.sources]


def _api_requests(world: SimFediverse, instance: SimInstance) -> int:
    return sum(
        1
        for r in world.requests
        if r.instance == instance.name and r.endpoint not in {"nodeinfo_discovery", "nodeinfo"}
    )


# software, version, (statuses of nodeinfo, v1, v2, peers, activity; requests per measurement)
SOFTWARE: list[tuple[str, str, tuple[tuple[SourceStatus, ...], int]]] = [
    ("mastodon", "4.3.2", (("ok", "ok", "ok", "ok", "ok"), 6)),
    ("mastodon", "4.0.0", (("ok", "ok", "ok", "ok", "ok"), 6)),
    ("mastodon", "3.5.3", (("ok", "ok", "missing", "ok", "ok"), 5)),
    ("pleroma", "2.6.0", (("ok", "ok", "missing", "ok", "missing"), 6)),
    ("akkoma", "3.13.2", (("ok", "ok", "missing", "ok", "missing"), 6)),
    ("misskey", "2024.11.0", (("ok", "missing", "missing", "missing", "missing"), 2)),
    ("gotosocial", "0.17.3", (("ok", "ok", "ok", "ok", "missing"), 6)),
    ("pixelfed", "0.12.3", (("ok", "ok", "missing", "ok", "missing"), 6)),
]


@pytest.mark.parametrize(("software", "version", "expected"), SOFTWARE)
async def test_every_software_gives_the_figures_it_serves(
    world: SimFediverse,
    client: FediverseClient,
    software: str,
    version: str,
    expected: tuple[tuple[SourceStatus, ...], int],
) -> None:
    """Each figure equals what the simulated server serves; what it lacks is None."""
    statuses, _ = expected
    server = _populate(world.add_instance("server", software=software, version=version, peers=9))
    measured = await client.measure_instance(server.address)
    assert tuple(_statuses(measured)) == statuses
    assert (measured.software, measured.version) == (software, version)
    assert measured.open_registrations is True
    assert measured.taken_at == world.now
    has_api = software != "misskey"
    assert measured.figures == InstanceFigures(
        users=server.user_count(),
        statuses=server.status_count(),
        domains=9 if has_api else None,
        peers=9 if has_api else None,
        # Misskey serves activeMonth/activeHalfyear as null.
        active_month=server.active_users() if has_api else None,
        active_halfyear=server.active_users(halfyear=True) if has_api else None,
    )
    assert measured.figures.users == 3


@pytest.mark.parametrize(("software", "version", "expected"), SOFTWARE)
async def test_one_measurement_costs_a_known_number_of_requests(
    world: SimFediverse,
    client: FediverseClient,
    software: str,
    version: str,
    expected: tuple[tuple[SourceStatus, ...], int],
) -> None:
    """Two for NodeInfo, one per /api/* source that can exist; none repeated."""
    _, requests = expected
    server = _populate(world.add_instance("server", software=software, version=version))
    await client.measure_instance(server.address)
    assert world.count(instance="server") == requests
    assert world.count(instance="server", endpoint="nodeinfo_discovery") == 1
    assert world.count(instance="server", endpoint="nodeinfo") == 1
    assert _api_requests(world, server) == requests - 2
    assert client.stats.requests == requests


async def test_misskey_spends_nothing_on_the_mastodon_api(
    world: SimFediverse, client: FediverseClient
) -> None:
    """Once NodeInfo says misskey, no /api/* request is sent and each is recorded as such."""
    server = _populate(world.add_instance("server", software="misskey", version="2024.11.0"))
    measured = await client.measure_instance(server.address)
    assert _api_requests(world, server) == 0
    assert [s.detail for s in measured.sources[1:]] == ["not offered by misskey"] * 4
    assert measured.up


async def test_mastodon_before_4_0_is_not_asked_for_v2(
    world: SimFediverse, client: FediverseClient
) -> None:
    """/api/v2/instance came with Mastodon 4.0: an older server is spared the sure 404."""
    server = _populate(world.add_instance("server", version="3.5.3"))
    measured = await client.measure_instance(server.address)
    assert world.count(instance="server", endpoint="instance_v2") == 0
    assert measured.sources[2].detail == "not offered by mastodon 3.5.3 (added in 4.0)"
    # active_month comes from NodeInfo instead.
    assert measured.figures.active_month == server.active_users()


async def test_nodeinfo_is_found_where_discovery_points(
    world: SimFediverse, client: FediverseClient
) -> None:
    """Pleroma's highest 2.x document (/nodeinfo/2.1.json), Pixelfed's /api/nodeinfo/2.0.json."""
    pleroma = world.add_instance("pleroma", software="pleroma", version="2.6.0")
    pixelfed = world.add_instance("pixelfed", software="pixelfed", version="0.12.3")
    await client.measure_instance(pleroma.address)
    await client.measure_instance(pixelfed.address)
    documents = {(r.instance, r.path) for r in world.requests if r.endpoint == "nodeinfo"}
    assert documents == {("pleroma", "/nodeinfo/2.1.json"), ("pixelfed", "/api/nodeinfo/2.0.json")}


async def test_activity_is_twelve_weeks_oldest_first_only_the_newest_incomplete(
    world: SimFediverse, client: FediverseClient
) -> None:
    """The served strings become numbers, in week order, the week in progress last."""
    server = _populate(world.add_instance("server"))
    world.advance(days=2.5)
    measured = await client.measure_instance(server.address)
    async with httpx.AsyncClient() as plain:
        served = (await plain.get(f"{server.base_url}/api/v1/instance/activity")).json()
    assert [w.complete for w in measured.weeks] == [True] * 11 + [False]
    assert [
        (w.week_start, w.statuses, w.logins, w.registrations) for w in reversed(measured.weeks)
    ] == [
        (
            datetime.fromtimestamp(int(b["week"]), UTC).date(),
            int(b["statuses"]),
            int(b["logins"]),
            int(b["registrations"]),
        )
        for b in served
    ]
    now = world.now.date()
    assert measured.weeks[-1].week_start == now - timedelta(days=now.weekday())
    assert measured.weeks[-1].statuses > 0  # alice posts every day


@pytest.mark.parametrize(
    ("disabled", "source"),
    [
        ("nodeinfo", "nodeinfo"),
        ("instance", "instance_v1"),
        ("instance_v2", "instance_v2"),
        ("peers", "peers"),
        ("activity", "activity"),
    ],
)
async def test_a_turned_off_endpoint_is_missing_and_the_others_are_read(
    world: SimFediverse, client: FediverseClient, disabled: str, source: str
) -> None:
    """404 from one endpoint marks that source missing; every other source is still ok."""
    server = _populate(world.add_instance("server", disabled_endpoints={disabled}))
    measured = await client.measure_instance(server.address)
    by_source = {s.source: s for s in measured.sources}
    assert by_source[source].status == "missing"  # type: ignore[index]
    assert "404 Not Found" in by_source[source].detail  # type: ignore[index]
    assert [s.status for s in measured.sources if s.source != source] == ["ok"] * 4
    assert measured.figures.users == 3  # NodeInfo or v1, whichever is left


async def test_without_nodeinfo_a_compatible_version_still_names_the_software(
    world: SimFediverse, client: FediverseClient
) -> None:
    """Pleroma's "2.7.2 (compatible; Pleroma 2.6.0)" gives pleroma 2.6.0."""
    server = _populate(
        world.add_instance(
            "server", software="pleroma", version="2.6.0", disabled_endpoints={"nodeinfo"}
        )
    )
    measured = await client.measure_instance(server.address)
    assert (measured.software, measured.version) == ("pleroma", "2.6.0")
    # Without NodeInfo there is no half-year figure; the rest comes from v1.
    assert measured.figures.active_halfyear is None
    assert measured.figures.users == server.user_count()


async def test_limited_federation_denies_the_api_but_nodeinfo_is_read(
    world: SimFediverse, client: FediverseClient
) -> None:
    """/api/* answers 401 (denied); NodeInfo's users and local posts are still known."""
    server = _populate(world.add_instance("server", limited_federation=True))
    measured = await client.measure_instance(server.address)
    assert _statuses(measured) == ["ok", "denied", "denied", "denied", "denied"]
    assert "401 Unauthorized" in measured.sources[1].detail
    assert measured.figures == InstanceFigures(
        users=server.user_count(),
        statuses=server.status_count(),
        active_month=server.active_users(),
        active_halfyear=server.active_users(halfyear=True),
    )
    assert measured.weeks == ()
    assert measured.up


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_after_retries_is_failed(
    world: SimFediverse, client: FediverseClient, status: int
) -> None:
    """A source answering 5xx every time is failed after its retry; the others are ok."""
    server = _populate(world.add_instance("server"))
    server.faults.append(Fault(kind="status", endpoint="instance", status=status))
    measured = await client.measure_instance(server.address)
    assert _statuses(measured) == ["ok", "failed", "ok", "ok", "ok"]
    assert str(status) in measured.sources[1].detail
    assert world.count(instance="server", endpoint="instance") == 2  # max_retries=1
    # v1 gave statuses and domains; statuses falls back to NodeInfo's local posts.
    assert measured.figures.statuses == server.status_count()
    assert measured.figures.domains is None


async def test_a_5xx_that_clears_on_retry_is_ok(
    world: SimFediverse, client: FediverseClient
) -> None:
    """One 503 then the real answer: the retry reads it."""
    server = _populate(world.add_instance("server"))
    server.faults.append(Fault(kind="status", endpoint="peers", status=503, times=1))
    measured = await client.measure_instance(server.address)
    assert _statuses(measured) == ["ok"] * 5
    assert measured.figures.peers == len(server.peers)


@pytest.mark.parametrize(
    ("kind", "endpoint", "source"),
    [
        ("malformed", "activity", "activity"),
        ("malformed", "nodeinfo", "nodeinfo"),
        ("html", "instance_v2", "instance_v2"),
        ("wrong_type", "instance", "instance_v1"),
        ("wrong_type", "peers", "peers"),
        ("wrong_type", "activity", "activity"),
        ("wrong_type", "nodeinfo", "nodeinfo"),
        ("reset", "peers", "peers"),
        ("truncated", "instance", "instance_v1"),
        ("timeout", "activity", "activity"),
    ],
)
async def test_broken_answers_are_failed(
    world: SimFediverse, client: FediverseClient, kind: Any, endpoint: Any, source: str
) -> None:
    """Malformed JSON, HTML, wrong types, resets, cut bodies and timeouts: failed, never raised."""
    server = _populate(world.add_instance("server"))
    server.faults.append(Fault(kind=kind, endpoint=endpoint))
    measured = await client.measure_instance(server.address)
    by_source = {s.source: s.status for s in measured.sources}
    assert by_source.pop(source) == "failed"  # type: ignore[call-overload]
    assert set(by_source.values()) == {"ok"}
    assert measured.up


async def test_a_server_that_answers_nothing_is_down(
    world: SimFediverse, client: FediverseClient
) -> None:
    """Every source failing gives a measurement that is not up, with a reason for each."""
    server = _populate(world.add_instance("server"))
    server.faults.append(Fault(kind="status", status=502))
    measured = await client.measure_instance(server.address)
    assert _statuses(measured) == ["failed"] * 5
    assert all("502 Bad Gateway" in s.detail for s in measured.sources)
    assert not measured.up
    assert measured.figures == InstanceFigures()
    assert (measured.software, measured.version, measured.open_registrations) == (None,) * 3


async def test_an_implausible_jump_is_unknown_and_its_source_doubted(
    world: SimFediverse, client: FediverseClient
) -> None:
    """Users a hundredth of last time: None, NodeInfo and v1 implausible, the rest kept."""
    server = _populate(world.add_instance("server", users_total=30))
    previous = InstanceFigures(users=30_000, statuses=server.status_count(), peers=5)
    measured = await client.measure_instance(server.address, previous=previous)
    assert measured.figures.users is None
    assert _statuses(measured) == ["implausible", "implausible", "ok", "ok", "ok"]
    assert measured.sources[0].detail == (
        "users fell from 30,000 to 30, a hundredth or less, since last time"
    )
    assert measured.figures.statuses == server.status_count()
    assert measured.figures.active_month == server.active_users()
    assert measured.up


async def test_a_plausible_change_is_believed(world: SimFediverse, client: FediverseClient) -> None:
    """Ordinary growth since last time leaves every figure and source as served."""
    server = _populate(world.add_instance("server", peers=40))
    previous = InstanceFigures(users=2, statuses=300, domains=35, peers=35, active_month=1)
    measured = await client.measure_instance(server.address, previous=previous)
    assert _statuses(measured) == ["ok"] * 5
    assert measured.figures.peers == 40


async def test_closed_registrations_are_read(world: SimFediverse, client: FediverseClient) -> None:
    """openRegistrations false comes through as False."""
    server = _populate(world.add_instance("server", open_registrations=False))
    assert (await client.measure_instance(server.address)).open_registrations is False


async def test_the_ssrf_guard_is_not_a_source_failure(world: SimFediverse) -> None:
    """A loopback server refused by the SSRF guard raises AddressRefused, nothing is sent."""
    server = _populate(world.add_instance("server"))
    strict = load_settings(database_url="sqlite:///:memory:", allow_private_addresses=False)
    async with world.serving(), sim_client(strict, world) as guarded:
        with pytest.raises(AddressRefused):
            await guarded.measure_instance(server.address)
    assert world.count(instance="server") == 0


async def test_a_halted_client_measures_nothing(
    world: SimFediverse, client: FediverseClient
) -> None:
    """While a round stops, Halted propagates instead of a measurement that says down."""
    server = _populate(world.add_instance("server"))
    client.halt()
    with pytest.raises(Halted):
        await client.measure_instance(server.address)
    assert world.count(instance="server") == 0


async def test_sources_are_listed_in_a_fixed_order(
    world: SimFediverse, client: FediverseClient
) -> None:
    """One result per source, in SOURCE_NAMES order, whatever answered first."""
    server = _populate(world.add_instance("server", software="pleroma", version="2.6.0"))
    measured = await client.measure_instance(server.address)
    assert tuple(s.source for s in measured.sources) == SOURCE_NAMES
    assert all(s.detail == "" for s in measured.sources if s.status == "ok")
    assert all(s.detail for s in measured.sources if s.status != "ok")
