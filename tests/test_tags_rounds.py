"""Hashtags against the simulated fediverse: adding, rounds over simulated days, the CLI."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from conftest import fresh_database
from fedimeter.cli import app
from fedimeter.collect import collect_round
from fedimeter.config import Settings, load_settings, normalise_database_url
from fedimeter.domain.models import InstanceAddress
from fedimeter.domain.tags import TagName
from fedimeter.errors import EndpointMissing
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository
from fedimeter.storage.tags import TagStore
from fedimeter.tag_tracking import add_tags, add_trends, remove_tags
from fedimeter.worker import Worker
from pg import PostgresServer
from simhelpers import sim_client


def at_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def counts(day: date) -> tuple[int, int]:
    """The uses and accounts the simulated server has for a day: different every day."""
    n = day.toordinal() % 97
    return 20 + n, 5 + n // 3


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """Mastodon 4.3 with #Caturday each day, Mastodon 3.5 (no hashtag API), trends off.

    The days ahead are set too: simulated time moves on.
    """
    sim = SimFediverse(seed=5)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    today = sim.now.date()
    days = [today + timedelta(days=n) for n in range(-60, 30)]
    social.tag_history("Caturday", {day: counts(day) for day in days})
    social.tag_uses("FediTips", uses=3, accounts=2)
    social.trending_tags = ["FediTips", "Caturday"]
    sim.add_instance("old", version="3.5.0", rate_limit=None)
    sim.add_instance("quiet", version="4.2.0", rate_limit=None, trends=False)
    with sim.run_in_thread():
        yield sim


def host(world: SimFediverse, name: str) -> str:
    """The authority of a simulated instance."""
    return world.instance(name).address.authority


async def test_adding_reads_seven_days_in_one_request(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """The first answer fills the 7 days before; a server without the API is refused."""
    store = TagStore(repo.db)
    async with sim_client(settings, world) as client:
        outcomes = await add_tags(
            store,
            client,
            ["#caturday"],
            [host(world, "social"), host(world, "old")],
            default_scheme="http",
            clock=lambda: world.now,
        )
    assert [o.status for o in outcomes] == ["added", "failed"]
    added, refused = outcomes
    assert added.tag is not None
    assert (added.tag.name, added.days) == ("Caturday", 7)
    assert isinstance(refused.error, EndpointMissing)
    assert "answered 404 Not Found for /api/v1/tags/caturday" in str(refused.error)
    assert "hashtag API" in str(refused.error)
    assert world.count("social", "tag") == 1
    today = world.now.date()
    days = await store.history(added.tag.id)
    assert [d.day for d in days] == [today - timedelta(days=n) for n in range(6, -1, -1)]
    assert [(d.uses, d.accounts) for d in days] == [counts(d.day) for d in days]
    assert [d.complete for d in days] == [True] * 6 + [False]
    assert [t.host for t in await store.tracked()] == [host(world, "social")]


async def test_daily_rounds_store_each_day_once_across_gaps(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """Rounds on simulated days 1-3, 5 (one skipped), 15 (nine skipped), 16.

    Each round costs one request per tag. Day 4 is filled by day 5's answer; days 6-8 are
    beyond every answer (7 days back from day 15 is day 9) and stay absent; day 5, in progress
    at its round and never answered again, stays incomplete with its count so far.
    """
    social = world.instance("social")
    store = TagStore(repo.db)
    start = world.now.date()
    async with sim_client(settings, world) as client:
        await add_tags(store, client, ["Caturday"], [host(world, "social")], default_scheme="http")
        day5_so_far = None
        for offset in (1, 2, 3, 5, 15, 16):
            world.advance(days=offset - (world.now.date() - start).days)
            today = world.now.date()
            # The day in progress: half its final count so far.
            uses, accounts = counts(today)
            social.tag_uses("Caturday", uses=uses // 2, accounts=accounts // 2)
            if offset == 5:
                day5_so_far = (uses // 2, accounts // 2)
            before = world.count("social", "tag")
            result = await collect_round(repo, client, settings, clock=lambda: world.now)
            assert world.count("social", "tag") - before == 1
            assert result.tags.measured == 1
            assert result.tags.failed == []
            # The day in progress gets its final count after the round.
            social.tag_uses("Caturday", uses=uses, accounts=accounts)
    (tag,) = await store.tracked()
    stored = {(d.day - start).days: d for d in await store.history(tag.id)}
    assert sorted(stored) == [*range(-6, 6), *range(9, 17)]
    for offset, day in stored.items():
        if offset in {5, 16}:
            continue
        assert (day.uses, day.accounts, day.complete) == (*counts(day.day), True), offset
    assert day5_so_far is not None
    assert (stored[5].uses, stored[5].accounts, stored[5].complete) == (*day5_so_far, False)
    assert (stored[16].uses, stored[16].complete) == (counts(stored[16].day)[0] // 2, False)


async def test_a_failing_tag_is_recorded_and_others_go_on(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """A host gone down: its tag fails (counted in a row), the other host's tag is read."""
    store = TagStore(repo.db)
    async with sim_client(settings, world) as client:
        await add_tags(
            store,
            client,
            ["Caturday"],
            [host(world, "social"), host(world, "quiet")],
            default_scheme="http",
        )
        world.take_down("quiet")
        for _ in range(2):
            result = await collect_round(repo, client, settings, clock=lambda: world.now)
        world.bring_up("quiet")
        assert result.tags.measured == 1
        assert [(t.host, e.code) for t, e in result.tags.failed] == [
            (host(world, "quiet"), "unavailable")
        ]
        failing = (await store.find("caturday", host(world, "quiet")))[0]
        assert failing.consecutive_failures == 2
        assert failing.last_error
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert result.tags.measured == 2
    assert (await store.get(failing.id)).consecutive_failures == 0
    removed = await remove_tags(store, ["CATURDAY"])
    assert sorted(r.host or "" for r in removed) == sorted(
        [host(world, "social"), host(world, "quiet")]
    )
    assert await store.tracked() == []


async def test_trending_tags_are_recorded_each_round(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """The list in order with today's uses; an instance with trends off records nothing."""
    store = TagStore(repo.db)
    async with sim_client(settings, world) as client:
        changes = await add_trends(
            store,
            client,
            [host(world, "social"), host(world, "quiet"), host(world, "old")],
            default_scheme="http",
            clock=lambda: world.now,
        )
        assert [c.status for c in changes] == ["added", "added", "added"]
        world.advance(hours=6)
        world.instance("social").trending_tags = ["Caturday", "FediTips"]
        before = world.count("social", "trends")
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert world.count("social", "trends") - before == 1
    assert result.tags.trends == 3
    social_id = next(i for i, h, _ in await store.trend_instances() if h == host(world, "social"))
    trends = await store.trends(social_id)
    assert [(t.taken_at == trends[0].taken_at, t.rank, t.name) for t in trends[:2]] == [
        (True, 1, "FediTips"),
        (True, 2, "Caturday"),
    ]
    assert [(t.rank, t.name, t.uses) for t in await store.latest_trends(social_id)] == [
        (1, "Caturday", counts(world.now.date())[0]),
        (2, "FediTips", 3),
    ]
    quiet_id = next(i for i, h, _ in await store.trend_instances() if h == host(world, "quiet"))
    assert await store.trends(quiet_id) == []


def invoke(*args: str) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI settings: an SQLite file, loopback allowed, plain http, quick retries."""
    for name, value in {
        "FEDIMETER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "FEDIMETER_ALLOW_PRIVATE_ADDRESSES": "true",
        "FEDIMETER_DEFAULT_SCHEME": "http",
        "FEDIMETER_RETRY_BASE_DELAY": "0.01",
        "FEDIMETER_MAX_RETRIES": "0",
        # Tables as wide as their rows, whatever terminal the test runner has.
        "COLUMNS": "200",
    }.items():
        monkeypatch.setenv(name, value)


def test_cli_tags(env: None, world: SimFediverse) -> None:
    """add, list, history, collect, trends, remove — as a person would use them."""
    social, old = host(world, "social"), host(world, "old")
    added = invoke("tag", "add", "#Caturday", "--on", social)
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == f"tracking #Caturday on {social} (7 days of history)"
    again = invoke("tag", "add", "caturday", "--on", social, "--on", old)
    assert again.exit_code == 1
    errors = again.stderr.strip().splitlines()
    assert errors[0] == f"error: #caturday on {social}: #caturday is already tracked on {social}"
    assert errors[1].startswith(f"error: #caturday on {old}: {old} answered 404 Not Found")
    bad = invoke("tag", "add", "2024", "--on", social)
    assert bad.exit_code == 2
    assert "is not a hashtag: it needs a letter" in bad.stderr
    listed = json.loads(invoke("tag", "list", "--json").stdout)
    assert [(t["name"], t["host"], t["consecutive_failures"]) for t in listed] == [
        ("Caturday", social, 0)
    ]
    yesterday = world.now.date() - timedelta(days=1)
    assert listed[0]["last_complete_day"] == {
        "day": yesterday.isoformat(),
        "uses": counts(yesterday)[0],
        "accounts": counts(yesterday)[1],
        "complete": True,
    }
    table = invoke("tag", "list")
    assert "#Caturday" in table.stdout
    assert f"{counts(yesterday)[0]:,}" in table.stdout
    history = json.loads(invoke("tag", "history", "caturday", "--json").stdout)
    assert len(history[0]["days"]) == 7
    assert invoke("tag", "history", "nope").exit_code == 1
    assert invoke("tag", "trends", "add", social).exit_code == 0
    collected = invoke("collect")
    assert collected.exit_code == 0, collected.output
    assert "hashtags read: 1" in collected.stdout
    assert "trending hashtags stored: 1 list" in collected.stdout
    shown = json.loads(invoke("tag", "trends", "show", "--json").stdout)
    assert [t["name"] for t in shown[0]["tags"]] == ["FediTips", "Caturday"]
    assert invoke("tag", "trends", "show", old).exit_code == 1
    assert invoke("tag", "trends", "remove", social).exit_code == 0
    assert invoke("tag", "trends", "remove", social).exit_code == 1
    report = invoke("report", "--format", "text")
    assert report.exit_code == 0, report.output
    assert f"#Caturday on {social}:" in report.stdout
    removed = invoke("tag", "remove", "CATURDAY")
    assert removed.stdout.strip() == f"stopped tracking #Caturday on {social}; 7 days deleted"
    assert json.loads(invoke("tag", "list", "--json").stdout) == []


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database (workers need PostgreSQL), dropped after the test."""
    with fresh_database(postgres_server) as url:
        yield normalise_database_url(url)


async def test_workers_read_each_tag_once_under_their_host_lease(
    pg_url: str, world: SimFediverse
) -> None:
    """Two workers share a round: every tag and trend list is read once, by one of them.

    The hosts with tags (and trends) but no account get a lease of their own.
    """
    settings = load_settings(
        database_url=pg_url,
        allow_private_addresses=True,
        default_scheme="http",
        retry_base_delay=0.01,
        connect_timeout=2.0,
        read_timeout=2.0,
        request_deadline=5.0,
        worker_hosts=1,
    )
    db = await Database.open(settings.database_url)
    try:
        repo = Repository(db)
        store = TagStore(db)
        async with sim_client(settings, world) as c1, sim_client(settings, world) as c2:
            await add_tags(
                store,
                c1,
                ["Caturday", "FediTips"],
                [host(world, "social"), host(world, "quiet")],
                default_scheme="http",
                clock=lambda: world.now,
            )
            await add_trends(
                store,
                c1,
                [host(world, "social")],
                default_scheme="http",
                clock=lambda: world.now,
            )
            world.clear_requests()
            world.advance(days=1)
            w1 = Worker(repo, c1, settings, name="w1", clock=lambda: world.now)
            w2 = Worker(repo, c2, settings, name="w2", clock=lambda: world.now)
            runs = await asyncio.gather(w1.run_once(), w2.run_once())
        finished = [r for r in runs if r is not None]
        assert finished
        assert (await repo.get_run(finished[0].id)).status == "finished"
        assert world.count(endpoint="tag") == 4
        assert world.count("social", "trends") == 1
        tomorrow = world.now.date()
        for tag in await store.tracked():
            assert tag.consecutive_failures == 0
            days = await store.history(tag.id)
            assert days[-1].day == tomorrow
            assert len(days) == 8
    finally:
        await db.close()


def test_cli_prints_what_servers_send_as_text(env: None, tmp_path: Path) -> None:
    """Rich markup in a stored tag name or error prints as it is, in every table."""

    async def seed() -> None:
        db = await Database.open(normalise_database_url(f"sqlite:///{tmp_path / 'cli.sqlite3'}"))
        try:
            store = TagStore(db)
            tag = await store.track(InstanceAddress("evil.example"), TagName("x[/]", "x"), at_now())
            reason = "[link=https://evil]click[/link] [/]"
            await store.record_failure(tag.id, "bad_response", reason, at_now())
        finally:
            await db.close()

    asyncio.run(seed())
    listed = invoke("tag", "list")
    assert listed.exit_code == 0, listed.output
    assert "#x[/]" in listed.stdout
    assert "[link=https://evil]click[/link] [/]" in listed.stdout.replace("\n", "")
    history = invoke("tag", "history", "x")
    assert history.exit_code == 0, history.output
    assert "#x[/] on evil.example" in history.stdout
