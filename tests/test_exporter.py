"""``fedimeter exporter`` in process: its ASGI app and cache against the simulated fediverse.

Figures are compared with what the simulated servers serve; costs are counted in the
simulated world's request log; the text format is checked with the real promtool.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from fedimeter import __version__
from fedimeter.cli import app
from fedimeter.config import Settings, load_settings
from fedimeter.domain.models import InstanceAddress
from fedimeter.exporter import SCRAPE_TIMEOUT_HEADER, Exporter, create_app
from fedimeter.metrics import COMPAT_NAMES, CONTENT_TYPE
from fedimeter.simfedi import Fault, SimFediverse, SimInstance
from test_metrics import check_metrics, promtool  # noqa: F401 - promtool is a fixture

TTL = 60.0
READ_TOKEN = "exporter-read-t0ken-0123456789ab"
API_TOKEN = "exporter-api-t0ken-0123456789abc"
#: Requests one measurement costs: NodeInfo discovery and document, then /api/v1/instance,
#: /api/v2/instance, /api/v1/instance/peers and /api/v1/instance/activity.
MASTODON_REQUESTS = 6
#: Misskey has no Mastodon API: NodeInfo only.
MISSKEY_REQUESTS = 2

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class FakeMonotonic:
    """A monotonic clock that moves only when told."""

    def __init__(self) -> None:
        """Start at an arbitrary time."""
        self.now = 1000.0

    def __call__(self) -> float:
        """The time now."""
        return self.now


def exporter_settings(**overrides: Any) -> Settings:
    """Settings for the simulated fediverse: loopback allowed, short timeouts and backoff."""
    values: dict[str, Any] = {
        "allow_private_addresses": True,
        "retry_base_delay": 0.01,
        "retry_max_delay": 0.05,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "request_deadline": 5.0,
    }
    return load_settings(**(values | overrides))


def parse(text: bytes) -> Samples:
    """Every sample of ``text``, by name and labels."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample called ``name`` with exactly ``labels``, or None."""
    return samples.get((name, frozenset(labels.items())))


def names(samples: Samples) -> set[str]:
    """The names that have at least one sample."""
    return {name for name, _ in samples}


def unused_address() -> InstanceAddress:
    """A loopback address nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return InstanceAddress("127.0.0.1", "http", port)


@pytest.fixture
async def world() -> AsyncIterator[SimFediverse]:
    """A Mastodon, a Pleroma and a Misskey server, two weeks into simulated time."""
    sim = SimFediverse(seed=41)
    for name, software, version in (
        ("mastodon", "mastodon", "4.3.2"),
        ("pleroma", "pleroma", "2.6.0"),
        ("misskey", "misskey", "2024.5.0"),
    ):
        server = sim.add_instance(name, software=software, version=version, peers=5)
        server.add_account("alice", followers=40, statuses=300, statuses_per_day=3.0)
        server.add_account("bob", followers=4, statuses=20, last_status_days_ago=40)
    # Two weeks on, at Monday noon: the week in progress has half a day of posts.
    sim.advance(days=14)
    async with sim.serving():
        yield sim


@pytest.fixture
def clock() -> FakeMonotonic:
    """The exporter's cache clock."""
    return FakeMonotonic()


@asynccontextmanager
async def exporting(
    *addresses: InstanceAddress, settings: Settings | None = None, **options: Any
) -> AsyncIterator[Exporter]:
    """An exporter of ``addresses``, closed at the end."""
    exporter = Exporter(settings or exporter_settings(), addresses, **options)
    try:
        yield exporter
    finally:
        await exporter.aclose()


@asynccontextmanager
async def http(
    exporter: Exporter, settings: Settings | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to the exporter's app in process."""
    app_ = create_app(exporter, settings or exporter_settings())
    transport = httpx.ASGITransport(app=app_)
    async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
        yield client


def everything(world: SimFediverse) -> list[InstanceAddress]:
    """The address of every simulated server."""
    return [server.address for server in world.instances.values()]


async def activity(server: SimInstance) -> list[dict[str, str]]:
    """The server's ``/api/v1/instance/activity`` buckets, newest (incomplete) first."""
    async with httpx.AsyncClient() as client:
        answer = await client.get(f"{server.base_url}/api/v1/instance/activity")
    answer.raise_for_status()
    buckets: list[dict[str, str]] = answer.json()
    return buckets


# --- figures ------------------------------------------------------------------------------


async def test_figures_are_what_each_server_serves(world: SimFediverse) -> None:
    """Mastodon, Pleroma and Misskey are exported with the users, posts and peers they serve."""
    async with exporting(*everything(world)) as exporter:
        samples = parse(await exporter.scrape())
    for name, server in world.instances.items():
        host = server.address.authority
        assert value(samples, "fedimeter_instance_up", instance=host) == 1, name
        assert value(samples, "fedimeter_instance_users", instance=host) == server.user_count()
        statuses = value(samples, "fedimeter_instance_statuses", instance=host)
        assert statuses == server.status_count(), name
        info = value(
            samples,
            "fedimeter_instance_info",
            instance=host,
            software=server.software,
            version=server.version,
        )
        assert info == 1, name
    mastodon, pleroma, misskey = (world.instance(n).address.authority for n in world.instances)
    assert value(samples, "fedimeter_instance_known_peers", instance=mastodon) == 5
    assert value(samples, "fedimeter_instance_known_peers", instance=pleroma) == 5
    # Misskey has no peer list and no activity figures: left out, not exported as 0.
    assert value(samples, "fedimeter_instance_known_peers", instance=misskey) is None
    assert (
        value(samples, "fedimeter_instance_active_users", instance=misskey, period="month") is None
    )
    active = world.instance("mastodon").active_users()
    assert value(samples, "fedimeter_instance_active_users", instance=mastodon, period="month") == (
        active
    )
    assert value(samples, "fedimeter_build_info", version=__version__) == 1


async def test_week_figures_are_the_last_complete_week(world: SimFediverse) -> None:
    """The week figures are the second bucket of /activity, not the week in progress."""
    server = world.instance("mastodon")
    current, last, *_ = await activity(server)
    assert current["statuses"] != last["statuses"]  # or the test could not tell them apart
    async with exporting(server.address, compat_names=True) as exporter:
        samples = parse(await exporter.scrape())
    host = server.address.authority
    for fedimeter_name, old_name, field in (
        ("fedimeter_instance_week_statuses", "mastodon_weekly_statuses", "statuses"),
        ("fedimeter_instance_week_logins", "mastodon_weekly_login", "logins"),
        ("fedimeter_instance_week_registrations", "mastodon_weekly_registrations", "registrations"),
    ):
        assert value(samples, fedimeter_name, instance=host) == int(last[field]), field
        assert value(samples, old_name, instance=host) == int(last[field]), field


async def test_only_instance_and_exporter_families_are_exported(world: SimFediverse) -> None:
    """No account, tracked-account or round family: the exporter has no database to read."""
    async with exporting(world.instance("mastodon").address) as exporter:
        samples = parse(await exporter.scrape())
    exported = names(samples)
    assert exported, "nothing exported"
    unexpected = {
        name
        for name in exported
        if not name.startswith(("fedimeter_instance_", "fedimeter_exporter_"))
        and name != "fedimeter_build_info"
    }
    assert unexpected == set()
    assert {
        "fedimeter_exporter_measure_duration_seconds",
        "fedimeter_exporter_cache_age_seconds",
    } <= (exported)


async def test_compat_names_only_with_the_flag(world: SimFediverse) -> None:
    """The six old names appear with --compat-names, mirroring fedimeter's, and not without."""
    host = world.instance("mastodon").address.authority
    async with exporting(world.instance("mastodon").address) as plain:
        without = parse(await plain.scrape())
    assert names(without) & set(COMPAT_NAMES) == set()
    async with exporting(world.instance("mastodon").address, compat_names=True) as compat:
        with_ = parse(await compat.scrape())
    assert set(COMPAT_NAMES) <= names(with_)
    assert "rmastodon_domain_count" in COMPAT_NAMES  # the old exporter's spelling, kept
    for old, new in (
        ("mastodon_user_count", "fedimeter_instance_users"),
        ("mastodon_status_count", "fedimeter_instance_statuses"),
        ("rmastodon_domain_count", "fedimeter_instance_known_peers"),
        ("mastodon_weekly_login", "fedimeter_instance_week_logins"),
        ("mastodon_weekly_statuses", "fedimeter_instance_week_statuses"),
        ("mastodon_weekly_registrations", "fedimeter_instance_week_registrations"),
    ):
        mirrored = value(with_, new, instance=host)
        assert mirrored is not None, new
        assert value(with_, old, instance=host) == mirrored, old


# --- failures -----------------------------------------------------------------------------


async def test_an_unreachable_instance_is_down_and_the_others_exported(world: SimFediverse) -> None:
    """Nothing listening: up 0 and none of its figures; every other server is still exported."""
    nowhere = unused_address()
    async with exporting(nowhere, *everything(world), compat_names=True) as exporter:
        samples = parse(await exporter.scrape())
    down = nowhere.authority
    assert value(samples, "fedimeter_instance_up", instance=down) == 0
    figures = {
        name
        for name, labels in samples
        if ("instance", down) in labels
        and name not in {"fedimeter_instance_up", "fedimeter_instance_sample_timestamp_seconds"}
        and not name.startswith("fedimeter_exporter_")
    }
    assert figures == set()
    for server in world.instances.values():
        host = server.address.authority
        assert value(samples, "fedimeter_instance_up", instance=host) == 1
        assert value(samples, "fedimeter_instance_users", instance=host) == server.user_count()


async def test_a_refused_address_is_down_and_costs_no_request(world: SimFediverse) -> None:
    """Without allow_private_addresses a loopback server is refused: up 0, nothing sent."""
    server = world.instance("mastodon")
    settings = exporter_settings(allow_private_addresses=False)
    async with exporting(server.address, settings=settings) as exporter:
        samples = parse(await exporter.scrape())
    assert value(samples, "fedimeter_instance_up", instance=server.address.authority) == 0
    assert world.count(instance="mastodon") == 0


async def test_a_server_that_fails_every_source_is_down_over_http(world: SimFediverse) -> None:
    """500 on every request is an answer of 200 from the exporter, with that instance up 0."""
    broken = world.instance("pleroma")
    broken.faults.append(Fault(kind="status", status=500))
    async with exporting(*everything(world)) as exporter, http(exporter) as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    samples = parse(answer.content)
    assert value(samples, "fedimeter_instance_up", instance=broken.address.authority) == 0
    mastodon = world.instance("mastodon").address.authority
    assert value(samples, "fedimeter_instance_up", instance=mastodon) == 1


async def test_previous_figures_feed_the_plausibility_checks(
    world: SimFediverse, clock: FakeMonotonic
) -> None:
    """A server whose users drop from 5,000 to 0 between measurements has its users left out."""
    server = world.instance("mastodon")
    host = server.address.authority
    server.users_total = 5000
    server.active_month = 1
    async with exporting(server.address, cache_seconds=TTL, monotonic=clock) as exporter:
        first = parse(await exporter.scrape())
        server.users_total = 0
        clock.now += TTL
        second = parse(await exporter.scrape())
    assert value(first, "fedimeter_instance_users", instance=host) == 5000
    assert value(second, "fedimeter_instance_up", instance=host) == 1
    assert value(second, "fedimeter_instance_users", instance=host) is None
    assert value(second, "fedimeter_instance_statuses", instance=host) == server.status_count()


# --- cost, cache and concurrency ----------------------------------------------------------


async def test_scrapes_within_the_cache_time_cost_one_measurement(
    world: SimFediverse, clock: FakeMonotonic
) -> None:
    """Ten scrapes within the cache time send one measurement's requests; after it, one more."""
    server = world.instance("mastodon")
    async with exporting(server.address, cache_seconds=TTL, monotonic=clock) as exporter:
        for _ in range(10):
            await exporter.scrape()
            clock.now += (TTL - 1) / 10
        assert world.count(instance="mastodon") == MASTODON_REQUESTS
        clock.now += 1
        await exporter.scrape()
        assert world.count(instance="mastodon") == 2 * MASTODON_REQUESTS
    assert world.count(instance="misskey") == 0


async def test_a_misskey_measurement_costs_two_requests(world: SimFediverse) -> None:
    """Misskey is asked for NodeInfo only: its Mastodon API does not exist."""
    async with exporting(world.instance("misskey").address) as exporter:
        await exporter.scrape()
    assert world.count(instance="misskey") == MISSKEY_REQUESTS


async def test_concurrent_scrapes_share_one_measurement(world: SimFediverse) -> None:
    """Twenty scrapes at once over HTTP: one measurement, and every answer carries its figures."""
    server = world.instance("mastodon")
    server.latency = (0.05, 0.05)
    async with exporting(server.address) as exporter, http(exporter) as client:
        answers = await asyncio.gather(*(client.get("/metrics") for _ in range(20)))
    assert world.count(instance="mastodon") == MASTODON_REQUESTS
    host = server.address.authority
    for answer in answers:
        assert answer.status_code == 200
        users = value(parse(answer.content), "fedimeter_instance_users", instance=host)
        assert users == server.user_count()


async def test_instances_are_measured_at_the_same_time(world: SimFediverse) -> None:
    """Two slow servers: the second's first request starts before the first's has ended."""
    first, second = world.instance("mastodon"), world.instance("pleroma")
    for server in (first, second):
        server.latency = (0.2, 0.2)
    async with exporting(first.address, second.address) as exporter:
        await exporter.scrape()
    opening = {
        name: min((r for r in world.requests if r.instance == name), key=lambda r: r.started)
        for name in ("mastodon", "pleroma")
    }
    assert opening["mastodon"].finished is not None
    assert opening["pleroma"].finished is not None
    assert opening["pleroma"].started < opening["mastodon"].finished
    assert opening["mastodon"].started < opening["pleroma"].finished


async def test_a_slow_measurement_is_waited_for_briefly_then_the_cached_one_served(
    world: SimFediverse, clock: FakeMonotonic
) -> None:
    """A due measurement that is slow: the scrape serves the old figures, the next ones join it."""
    server = world.instance("mastodon")
    host = server.address.authority
    async with exporting(server.address, cache_seconds=TTL, monotonic=clock) as exporter:
        await exporter.scrape()
        users = server.user_count()
        server.add_account("carol")
        server.latency = (1.0, 1.0)
        clock.now += TTL + 30
        started = time.monotonic()
        stale = parse(await exporter.scrape(wait=0.2))
        assert time.monotonic() - started < 0.9
        assert value(stale, "fedimeter_instance_users", instance=host) == users
        assert value(stale, "fedimeter_exporter_cache_age_seconds", instance=host) == TTL + 30
        fresh = parse(await exporter.scrape(wait=10))
    assert value(fresh, "fedimeter_instance_users", instance=host) == users + 1
    assert value(fresh, "fedimeter_exporter_cache_age_seconds", instance=host) == 0
    assert world.count(instance="mastodon") == 2 * MASTODON_REQUESTS


async def test_the_scrape_timeout_prometheus_announces_bounds_the_wait(
    world: SimFediverse,
) -> None:
    """With a 0.7 s scrape timeout a 1 s server is left out; the fast ones are exported in time."""
    slow, fast = world.instance("mastodon"), world.instance("pleroma")
    slow.latency = (1.0, 1.0)
    async with exporting(slow.address, fast.address, wait=30) as exporter, http(exporter) as client:
        started = time.monotonic()
        answer = await client.get("/metrics", headers={SCRAPE_TIMEOUT_HEADER: "0.7"})
        elapsed = time.monotonic() - started
    assert answer.status_code == 200
    assert elapsed < 0.7
    samples = parse(answer.content)
    assert value(samples, "fedimeter_instance_up", instance=slow.address.authority) is None
    assert value(samples, "fedimeter_instance_up", instance=fast.address.authority) == 1


# --- HTTP ---------------------------------------------------------------------------------


async def test_the_pages_of_the_app(world: SimFediverse) -> None:
    """/ links to /metrics, /healthz answers ok, /metrics is Prometheus's text format."""
    async with exporting(world.instance("mastodon").address) as exporter, http(exporter) as client:
        index = await client.get("/")
        health = await client.get("/healthz")
        metrics = await client.get("/metrics")
    assert index.status_code == 200
    assert "href='metrics'" in index.text
    assert world.instance("mastodon").address.authority in index.text
    assert health.json() == {"status": "ok"}
    assert metrics.status_code == 200
    assert metrics.headers["content-type"] == CONTENT_TYPE


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        (f"Bearer {READ_TOKEN}x", 401),
        (f"Basic {READ_TOKEN}", 401),
        (f"Bearer {READ_TOKEN}", 200),
        (f"bearer {API_TOKEN}", 200),
    ],
)
async def test_a_read_token_guards_the_metrics(
    world: SimFediverse, authorization: str | None, status: int
) -> None:
    """With FEDIMETER_READ_TOKEN, /metrics needs it or the API token, as fedimeter serve does."""
    settings = exporter_settings(read_token=READ_TOKEN, api_token=API_TOKEN)
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        exporting(world.instance("mastodon").address, settings=settings) as exporter,
        http(exporter, settings) as client,
    ):
        answer = await client.get("/metrics", headers=headers)
        health = await client.get("/healthz")
    assert answer.status_code == status
    assert health.status_code == 200
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
        assert world.count(instance="mastodon") == 0  # refused before anything was measured


# --- the text format ----------------------------------------------------------------------


async def test_promtool_accepts_the_output(world: SimFediverse, promtool: str) -> None:  # noqa: F811
    """Three servers and an unreachable one pass promtool's checks."""
    async with exporting(unused_address(), *everything(world)) as exporter:
        check_metrics(promtool, await exporter.scrape())


async def test_promtool_objects_only_to_the_old_count_names(
    world: SimFediverse,
    promtool: str,  # noqa: F811
) -> None:
    """With --compat-names promtool's only complaint is the old exporter's `_count` names."""
    async with exporting(*everything(world), compat_names=True) as exporter:
        text = await exporter.scrape()
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    complaints = sorted(line for line in result.stderr.decode().splitlines() if line.strip())
    assert complaints == [
        f'{name} non-histogram and non-summary metrics should not have "_count" suffix'
        for name in sorted(n for n in COMPAT_NAMES if n.endswith("_count"))
    ]


# --- the command --------------------------------------------------------------------------


def test_the_command_refuses_an_address_that_is_not_one() -> None:
    """A page URL is not an instance: exit 2 with one line saying so, and nothing listens."""
    result = CliRunner().invoke(app, ["exporter", "--instance", "https://social.example/about"])
    assert result.exit_code == 2, result.output
    assert "is a page, not an instance address" in result.output


def test_the_command_refuses_a_cache_below_five_seconds() -> None:
    """--cache-seconds 1 would let a fast scraper spend a server's rate limit: refused."""
    result = CliRunner().invoke(
        app, ["exporter", "--instance", "social.example", "--cache-seconds", "1"]
    )
    assert result.exit_code == 2, result.output
