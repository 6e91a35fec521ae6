"""Instances tracked for themselves: storage, rounds, the CLI and the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from apihelpers import api, api_settings
from fedimeter.cli import app
from fedimeter.collect import collect_round
from fedimeter.config import Settings
from fedimeter.domain.instances import (
    InstanceFigures,
    InstanceMeasurement,
    SourceResult,
    WeekActivity,
)
from fedimeter.domain.models import InstanceAddress
from fedimeter.errors import AlreadyTracked, NotTracked
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.repository import Repository
from simhelpers import sim_client

T0 = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
HOST = InstanceAddress("social.example")


def measurement(
    at: datetime, users: int | None = 100, weeks: tuple[WeekActivity, ...] = ()
) -> InstanceMeasurement:
    """A measurement where every source answered."""
    return InstanceMeasurement(
        taken_at=at,
        software="mastodon",
        version="4.3.2",
        open_registrations=True,
        figures=InstanceFigures(users=users, statuses=5_000, domains=40, peers=41),
        weeks=weeks,
        sources=(SourceResult("nodeinfo", "ok"), SourceResult("activity", "ok")),
    )


def week(start: date, statuses: int, *, complete: bool = True) -> WeekActivity:
    """A week of activity."""
    return WeekActivity(start, statuses, statuses // 10, 1, complete)


# -- storage -------------------------------------------------------------------------------


async def test_tracking_an_instance_twice_is_refused(db: Database) -> None:
    """track makes the row tracked once; a second track raises AlreadyTracked."""
    store = InstanceStore(db)
    first = await store.track(HOST, T0)
    assert first.tracked_at == T0
    with pytest.raises(AlreadyTracked):
        await store.track(HOST, T0 + timedelta(hours=1))
    assert [i.host for i in await store.tracked()] == ["social.example"]


async def test_an_accounts_home_is_known_but_not_tracked(repo: Repository) -> None:
    """An instance row made for accounts is not a tracked instance until tracked."""
    await repo.ensure_instance(HOST, T0)
    store = InstanceStore(repo.db)
    assert await store.tracked() == []
    found = await store.find("social.example")
    assert found is not None
    assert found.tracked_at is None
    assert (await store.track(HOST, T0)).id == found.id


async def test_a_complete_week_is_final_and_the_week_in_progress_is_rewritten(
    db: Database,
) -> None:
    """Later answers never rewrite a complete week; the incomplete one follows the server."""
    store = InstanceStore(db)
    instance = await store.track(HOST, T0)
    monday, previous = date(2026, 3, 2), date(2026, 2, 23)
    await store.store(
        instance.id,
        measurement(T0, weeks=(week(previous, 700), week(monday, 100, complete=False))),
    )
    await store.store(
        instance.id,
        measurement(
            T0 + timedelta(days=1),
            weeks=(week(previous, 999), week(monday, 250, complete=False)),
        ),
    )
    stored = {w.week_start: (w.statuses, w.complete) for w in await store.weeks(instance.id)}
    assert stored == {previous: (700, True), monday: (250, False)}
    await store.store(instance.id, measurement(T0 + timedelta(days=7), weeks=(week(monday, 300),)))
    stored = {w.week_start: (w.statuses, w.complete) for w in await store.weeks(instance.id)}
    assert stored[monday] == (300, True)


async def test_latest_gives_the_newest_sample_and_complete_week(db: Database) -> None:
    """latest() pairs each tracked instance with its newest sample and newest complete week."""
    store = InstanceStore(db)
    instance = await store.track(HOST, T0)
    other = await store.track(InstanceAddress("quiet.example"), T0)
    monday = date(2026, 3, 2)
    await store.store(
        instance.id, measurement(T0, users=100, weeks=(week(monday - timedelta(7), 7),))
    )
    await store.store(
        instance.id,
        measurement(T0 + timedelta(days=1), users=110, weeks=(week(monday, 3, complete=False),)),
    )
    latest = {i.host: (s, w) for i, s, w in await store.latest()}
    sample, last_week = latest["social.example"]
    assert sample is not None
    assert (sample.figures.users, sample.taken_at) == (110, T0 + timedelta(days=1))
    assert sample.sources[0] == SourceResult("nodeinfo", "ok")
    assert last_week is not None
    assert (last_week.week_start, last_week.statuses) == (monday - timedelta(7), 7)
    assert latest[other.host] == (None, None)


async def test_previous_figures_skip_samples_that_were_down(db: Database) -> None:
    """The figures a new measurement is judged against come from the newest sample that was up."""
    store = InstanceStore(db)
    instance = await store.track(HOST, T0)
    await store.store(instance.id, measurement(T0, users=100))
    down = InstanceMeasurement(
        taken_at=T0 + timedelta(days=1),
        software=None,
        version=None,
        open_registrations=None,
        figures=InstanceFigures(),
        weeks=(),
        sources=(SourceResult("nodeinfo", "failed", "timed out"),),
    )
    await store.store(instance.id, down)
    previous = await store.previous_figures(instance.id)
    assert previous is not None
    assert previous.users == 100


async def test_untrack_keeps_history_and_purge_deletes_it(repo: Repository) -> None:
    """untrack keeps samples; purge deletes them, and the row unless accounts live there."""
    store = InstanceStore(repo.db)
    instance = await store.track(HOST, T0)
    await store.store(instance.id, measurement(T0, weeks=(week(date(2026, 2, 23), 5),)))
    assert await store.untrack(instance.id) == 0
    assert len(await store.samples(instance.id)) == 1
    with pytest.raises(NotTracked):
        await store.untrack(instance.id)
    await store.track(HOST, T0)
    assert await store.untrack(instance.id, purge=True) == 1
    assert await store.samples(instance.id) == []
    assert await store.weeks(instance.id) == []
    assert await store.find("social.example") is None


# -- against the simulated fediverse -------------------------------------------------------


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """A Mastodon server with accounts and activity, a Misskey, and one with endpoints off."""
    sim = SimFediverse(seed=11)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    for i in range(4):
        social.add_account(f"u{i}", followers=10 * i)
    sim.add_instance("misskey", software="misskey", version="2024.1.0", rate_limit=None)
    sim.add_instance(
        "off", version="4.2.0", rate_limit=None, disabled_endpoints=["activity", "peers"]
    )
    with sim.run_in_thread():
        yield sim


async def test_a_round_measures_tracked_instances(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """collect_round measures every tracked instance, stores samples and 12 weeks."""
    store = InstanceStore(repo.db)
    social = world.instance("social")
    for name in ("social", "misskey", "off"):
        await store.track(world.instance(name).address, T0)
    async with sim_client(settings, world) as client:
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert sorted(i.host for i, _ in result.instances) == sorted(
        world.instance(n).address.authority for n in ("social", "misskey", "off")
    )
    latest = {i.host: (s, w) for i, s, w in await store.latest()}
    sample, last_week = latest[social.address.authority]
    assert sample is not None
    assert sample.up
    assert sample.figures.users == 4
    assert last_week is not None
    tracked = next(i for i in await store.tracked() if i.host == social.address.authority)
    weeks = await store.weeks(tracked.id)
    assert len(weeks) == 12
    assert [w.complete for w in weeks] == [True] * 11 + [False]
    off_sample, off_week = latest[world.instance("off").address.authority]
    assert off_sample is not None
    assert {s.source: s.status for s in off_sample.sources}["activity"] == "missing"
    assert off_week is None


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
    }.items():
        monkeypatch.setenv(name, value)


def test_cli_instance_add_list_collect_remove(
    env: None, world: SimFediverse, tmp_path: Path
) -> None:
    """add measures at once; list, collect, samples and graph work; remove stops."""
    social = world.instance("social").address.authority
    added = invoke("instance", "add", social)
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == f"tracking {social} (mastodon 4.3.0, 4 users)"
    again = invoke("instance", "add", social)
    assert again.exit_code == 1
    assert again.stderr.strip() == f"error: {social}: {social} is already tracked"
    listed = json.loads(invoke("instance", "list", "--json").stdout)
    assert [(i["host"], i["latest"]["users"]) for i in listed] == [(social, 4)]
    collected = invoke("collect")
    assert collected.exit_code == 0, collected.output
    assert f"instance {social}: up, 4 users" in collected.stdout
    assert "Nothing to measure" not in collected.stdout
    drawn = invoke(
        "instance", "graph", social, "--metric", "activity", "-o", str(tmp_path / "a.svg")
    )
    assert drawn.exit_code == 0, drawn.output
    assert (tmp_path / "a.svg").read_text().lstrip().startswith("<?xml")
    weeks = json.loads(invoke("instance", "samples", social, "--weeks", "--json").stdout)
    assert len(weeks) == 12
    assert [w["complete"] for w in weeks].count(False) == 1
    assert len(json.loads(invoke("instance", "samples", social, "--json").stdout)) == 2
    removed = invoke("instance", "remove", social)
    assert removed.stdout.strip() == f"stopped tracking {social}; its history is kept"
    assert json.loads(invoke("instance", "list", "--json").stdout) == []


def test_cli_instance_add_refuses_what_answers_nothing(env: None) -> None:
    """A host where nothing answers is not tracked: one line, exit 1."""
    from peers import free_port

    result = invoke("instance", "add", f"127.0.0.1:{free_port()}")
    assert result.exit_code == 1
    assert "answered none of its sources" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    bad = invoke("instance", "add", "not a host")
    assert bad.exit_code == 2


def test_api_instances(settings: Settings, world: SimFediverse) -> None:
    """POST, GET list and one, samples, activity, graph, DELETE."""
    social = world.instance("social").address.authority
    with api(api_settings(settings)) as http:
        created = http.post("/api/v1/instances", json={"host": social})
        assert created.status_code == 201, created.text
        body = created.json()
        assert (body["host"], body["latest"]["users"], body["latest"]["up"]) == (social, 4, True)
        instance_id = body["id"]
        assert http.post("/api/v1/instances", json={"host": social}).status_code == 409
        assert [i["host"] for i in http.get("/api/v1/instances").json()] == [social]
        samples = http.get(f"/api/v1/instances/{instance_id}/samples").json()
        assert len(samples) == 1
        weeks = http.get(f"/api/v1/instances/{instance_id}/activity").json()
        assert len(weeks) == 12
        assert weeks[-1]["complete"] is False
        graph = http.get(f"/api/v1/instances/{instance_id}/graph.png?metric=activity")
        assert graph.status_code == 200
        assert graph.content.startswith(b"\x89PNG")
        users = http.get(f"/api/v1/instances/{instance_id}/graph.svg?metric=users")
        assert users.headers["content-type"] == "image/svg+xml"
        assert http.get("/api/v1/instances/999").status_code == 404
        assert http.post("/api/v1/instances", json={"host": "a b"}).status_code == 422
        assert http.delete(f"/api/v1/instances/{instance_id}").status_code == 204
        assert http.get(f"/api/v1/instances/{instance_id}").status_code == 404
