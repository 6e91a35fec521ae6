"""Workers sharing rounds over PostgreSQL: leases, fencing, takeover, and the real thing.

The last test starts three ``fedimeter worker`` processes against a real PostgreSQL and the
simulated fediverse and kills one with SIGKILL mid-round: every account is measured exactly
once in the round, and no host sees more requests in a rate-limit window than its limit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import func, select

from conftest import fresh_database
from fedimeter.clock import utc_now
from fedimeter.collect import collect_round
from fedimeter.config import Settings, load_settings, normalise_database_url
from fedimeter.domain.schedule import parse_schedule
from fedimeter.errors import ConfigError, LeaseLost, RoundInProgress
from fedimeter.instance_tracking import add_instances
from fedimeter.simfedi import RateLimit, SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.leases import WORKERS_OWNER, LeaseStore
from fedimeter.storage.records import NewSample, RunProgress
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import account_samples, host_leases, run_failures
from fedimeter.worker import Worker, lease_warning
from simhelpers import sim_client, track

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from pg import PostgresServer

pytestmark = pytest.mark.usefixtures("postgres_server")


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database (workers need PostgreSQL), dropped after the test."""
    with fresh_database(postgres_server) as url:
        yield normalise_database_url(url)


def _settings(url: str, **overrides: Any) -> Settings:
    return load_settings(
        database_url=url,
        allow_private_addresses=True,
        default_scheme="http",
        retry_base_delay=0.01,
        retry_max_delay=0.05,
        connect_timeout=2.0,
        read_timeout=2.0,
        request_deadline=5.0,
        **overrides,
    )


@pytest.fixture
async def pg_repo(pg_url: str) -> AsyncIterator[Repository]:
    """A repository over a fresh PostgreSQL database."""
    db = await Database.open(pg_url)
    try:
        yield Repository(db)
    finally:
        await db.close()


def _world(
    hosts: int, accounts_per_host: int, *, batch: bool | None = None, **instance_options: object
) -> SimFediverse:
    """Hosts with and without the batch call (every second one), or all one kind."""
    world = SimFediverse(seed=hosts * 100 + accounts_per_host)
    for h in range(hosts):
        with_batch = h % 2 == 0 if batch is None else batch
        inst = world.add_instance(
            f"h{h}",
            version="4.3.2" if with_batch else "4.1.0",
            **instance_options,  # type: ignore[arg-type]
        )
        for a in range(accounts_per_host):
            inst.add_account(f"u{a}", followers=10 * a + h, statuses=a)
    return world


async def _track_all(repo: Repository, settings: Settings, world: SimFediverse) -> int:
    accounts = [acc for inst in world.instances.values() for acc in inst.accounts]
    async with sim_client(settings, world) as client:
        await track(repo, client, accounts)
    return len(accounts)


def _always(_newest: object) -> bool:
    return True


def _alive(_run: object) -> bool:
    return True


async def test_workers_need_postgresql(tmp_path: Path) -> None:
    """On SQLite the lease store refuses with one clear sentence."""
    db = await Database.open(normalise_database_url(f"sqlite:///{tmp_path / 'f.sqlite3'}"))
    try:
        with pytest.raises(ConfigError, match="needs PostgreSQL"):
            LeaseStore(Repository(db))
    finally:
        await db.close()


def test_worker_command_refuses_sqlite(tmp_path: Path) -> None:
    """``fedimeter worker`` on SQLite: one line, exit code 2 (configuration)."""
    env = dict(os.environ, FEDIMETER_DATABASE_URL=f"sqlite:///{tmp_path / 'f.sqlite3'}")
    done = subprocess.run(
        [sys.executable, "-m", "fedimeter", "worker", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, done.stderr
    assert "needs PostgreSQL" in errors[0]


async def test_a_round_is_planned_once_with_a_lease_per_host(pg_repo: Repository) -> None:
    """Hosts with due accounts and tracked instances get a lease; later workers join."""
    settings = _settings(pg_repo.db.url)
    world = _world(hosts=3, accounts_per_host=4)
    lonely = world.add_instance("lonely", version="4.3.2")
    async with world.serving(), sim_client(settings, world) as client:
        total = await _track_all(pg_repo, settings, world)
        added = await add_instances(
            InstanceStore(pg_repo.db), client, [lonely.base_url], default_scheme="http"
        )
        assert [a.status for a in added] == ["added"]
    store = LeaseStore(pg_repo)
    assert await store.open_round(world.now, is_due=lambda _n: False, is_alive=_alive) is None
    run = await store.open_round(world.now, is_due=_always, is_alive=_alive)
    assert run is not None
    assert run.owner == WORKERS_OWNER
    assert run.accounts_planned == total == 12
    again = await store.open_round(world.now, is_due=_always, is_alive=_alive)
    assert again is not None
    assert again.id == run.id  # joined, not a second round
    rows = await store.hosts(run.id)
    assert sorted((r.accounts, r.measure_instance) for r in rows) == [
        (0, True),
        (4, False),
        (4, False),
        (4, False),
    ]
    assert all(r.holder is None and r.claims == 0 and r.done_at is None for r in rows)
    # A one-process round cannot start meanwhile.
    with pytest.raises(RoundInProgress):
        await pg_repo.start_run(world.now, "someone:1", _alive)


async def test_claims_skip_held_hosts_and_take_expired_ones(pg_repo: Repository) -> None:
    """Two workers never hold one host; an expired lease passes on with a new token."""
    settings = _settings(pg_repo.db.url)
    world = _world(hosts=3, accounts_per_host=2)
    async with world.serving():
        await _track_all(pg_repo, settings, world)
    store = LeaseStore(pg_repo)
    run = await store.open_round(world.now, is_due=_always, is_alive=_alive)
    assert run is not None
    first = await store.claim(run.id, "a", limit=2, lease_seconds=60)
    second = await store.claim(run.id, "b", limit=5, lease_seconds=0.5)
    assert len(first) == 2
    assert len(second) == 1
    assert {x.instance_id for x in first}.isdisjoint({x.instance_id for x in second})
    assert await store.claim(run.id, "c", limit=5, lease_seconds=60) == []
    await asyncio.sleep(0.7)  # b's lease expires (database time)
    taken = await store.claim(run.id, "c", limit=5, lease_seconds=60)
    assert [t.instance_id for t in taken] == [second[0].instance_id]
    assert taken[0].taken_over
    assert taken[0].token == second[0].token + 1
    # b comes back: fenced out of writing, renewing and finishing.
    account = (await store.due_accounts(second[0]))[0]
    sample = NewSample(account.id, world.now, 1, 2, 3, None)
    with pytest.raises(LeaseLost):
        await store.commit(second[0], world.now, RunProgress(accounts_measured=1), samples=[sample])
    assert await store.renew(second, lease_seconds=60) == {second[0].instance_id}
    with pytest.raises(LeaseLost):
        await store.finish(second[0], world.now)
    async with pg_repo.db.connect() as conn:
        stored = (await conn.execute(select(func.count()).select_from(account_samples))).scalar()
    assert stored == 0
    # c writes, and the host's due accounts shrink accordingly.
    await store.commit(taken[0], world.now, RunProgress(accounts_measured=1), samples=[sample])
    assert account.id not in {a.id for a in await store.due_accounts(taken[0])}
    assert (await pg_repo.get_run(run.id)).accounts_measured == 1


async def test_the_last_host_done_finishes_the_round(pg_repo: Repository) -> None:
    """Two workers finishing their last hosts at once: exactly one finishes the round."""
    settings = _settings(pg_repo.db.url)
    world = _world(hosts=2, accounts_per_host=1)
    async with world.serving():
        await _track_all(pg_repo, settings, world)
    store = LeaseStore(pg_repo)
    run = await store.open_round(world.now, is_due=_always, is_alive=_alive)
    assert run is not None
    (a,) = await store.claim(run.id, "a", limit=1, lease_seconds=60)
    (b,) = await store.claim(run.id, "b", limit=1, lease_seconds=60)
    results = await asyncio.gather(store.finish(a, world.now), store.finish(b, world.now))
    finished = [r for r in results if r is not None]
    assert len(finished) == 1
    assert finished[0].status == "finished"
    assert await store.current_round() is None


async def test_an_empty_round_is_finished_at_once(pg_repo: Repository) -> None:
    """Nothing tracked: the round is recorded, finished, with no lease."""
    store = LeaseStore(pg_repo)
    run = await store.open_round(utc_now(), is_due=_always, is_alive=_alive)
    assert run is not None
    assert run.status == "finished"
    assert run.accounts_planned == 0
    assert await store.hosts(run.id) == []


async def test_two_workers_in_one_process_share_a_round(pg_repo: Repository) -> None:
    """Each account is measured once; totals add up over the workers; requests are minimal."""
    settings = _settings(pg_repo.db.url, worker_hosts=2)
    world = _world(hosts=4, accounts_per_host=6, latency=(0.01, 0.03))
    async with world.serving():
        total = await _track_all(pg_repo, settings, world)
        world.clear_requests()
        async with sim_client(settings, world) as c1, sim_client(settings, world) as c2:
            w1 = Worker(pg_repo, c1, settings, name="w1", clock=lambda: world.now)
            w2 = Worker(pg_repo, c2, settings, name="w2", clock=lambda: world.now)
            results = await asyncio.gather(w1.run_once(), w2.run_once())
    assert {r.id for r in results if r is not None} == {results[0].id}  # type: ignore[union-attr]
    run = await pg_repo.get_run(results[0].id)  # type: ignore[union-attr]
    assert run.status == "finished"
    assert run.accounts_measured == total
    assert run.accounts_failed == 0
    assert await _samples_per_account(pg_repo, run.id) == Counter({1: total})
    # Batch hosts: one request of 6 ids; others: one per account (all after NodeInfo).
    measuring = world.count(endpoint="batch") + world.count(endpoint="account")
    assert measuring == 2 * 1 + 2 * 6
    assert run.requests == len(world.requests)  # the two workers' figures add up
    assert w1.stats.hosts_done + w2.stats.hosts_done == 4
    assert w1.stats.hosts_done > 0
    assert w2.stats.hosts_done > 0


async def _samples_per_account(repo: Repository, run_id: int) -> Counter[int]:
    """How many accounts have 0, 1, 2... samples from round ``run_id``."""
    async with repo.db.connect() as conn:
        rows = await conn.execute(
            select(account_samples.c.account_id, func.count())
            .where(account_samples.c.run_id == run_id)
            .group_by(account_samples.c.account_id)
        )
        per_account: dict[int, int] = {row[0]: row[1] for row in rows}
        failed = (
            await conn.execute(
                select(func.count())
                .select_from(run_failures)
                .where(run_failures.c.run_id == run_id)
            )
        ).scalar_one()
    assert failed == 0
    return Counter(per_account.values())


async def test_a_worker_round_blocks_a_one_process_round_and_the_other_way(
    pg_repo: Repository,
) -> None:
    """``collect`` while workers run a round is refused, and workers wait for ``collect``."""
    settings = _settings(pg_repo.db.url)
    world = _world(hosts=1, accounts_per_host=2)
    async with world.serving(), sim_client(settings, world) as client:
        await _track_all(pg_repo, settings, world)
        run, _ = await pg_repo.start_run(world.now, "other-host:1", _alive)
        store = LeaseStore(pg_repo)
        with pytest.raises(RoundInProgress):
            await store.open_round(world.now, is_due=_always, is_alive=_alive)
        await pg_repo.finish_run(run.id, world.now, RunProgress())
        shared = await store.open_round(world.now, is_due=_always, is_alive=_alive)
        assert shared is not None
        with pytest.raises(RoundInProgress):
            await collect_round(pg_repo, client, settings, clock=lambda: world.now)
        worker = Worker(pg_repo, client, settings, name="w", clock=lambda: world.now)
        done = await worker.run_once()  # joins the planned round
        assert done is not None
        assert (done.id, done.status) == (shared.id, "finished")


async def test_a_stopped_worker_leaves_its_hosts_to_expire(pg_repo: Repository) -> None:
    """SIGTERM-like stop mid-host: answers are kept, the host stays open for another worker."""
    settings = _settings(pg_repo.db.url, worker_lease_seconds=1.0)
    world = _world(
        hosts=1, accounts_per_host=30, batch=False, rate_limit=RateLimit(limit=5, window=1.0)
    )
    async with world.serving():
        total = await _track_all(pg_repo, settings, world)
        await asyncio.sleep(1.0)  # tracking spent this window: start in a fresh one
        world.clear_requests()
        async with sim_client(settings, world) as c1, sim_client(settings, world) as c2:
            stop = asyncio.Event()
            first = Worker(pg_repo, c1, settings, name="first", stop=stop, clock=lambda: world.now)
            task = asyncio.create_task(first.run_once())
            while first.stats.accounts_measured < 5:
                await asyncio.sleep(0.05)
            stop.set()
            assert await task is None
            measured_first = first.stats.accounts_measured
            assert 0 < measured_first < total
            second = Worker(pg_repo, c2, settings, name="second", clock=lambda: world.now)
            result = await second.run_once()
    assert result is not None
    assert result.status == "finished"
    assert second.stats.hosts_taken_over == 1
    assert second.stats.accounts_measured == total - measured_first
    assert await _samples_per_account(pg_repo, result.id) == Counter({1: total})
    assert world.count_over_limit() == 0
    async with pg_repo.db.connect() as conn:
        claims = (await conn.execute(select(host_leases.c.claims))).scalars().all()
    assert claims == [2]


async def test_the_schedule_loop_plans_when_due_and_rests_between(pg_repo: Repository) -> None:
    """``run(schedule)``: one round when overdue, none while the next is not due; stops."""
    settings = _settings(pg_repo.db.url)
    world = _world(hosts=2, accounts_per_host=3)
    async with world.serving(), sim_client(settings, world) as client:
        total = await _track_all(pg_repo, settings, world)
        stop = asyncio.Event()
        finished: list[int] = []

        async def on_finished(run: object) -> None:
            finished.append(run.id)  # type: ignore[attr-defined]

        worker = Worker(
            pg_repo,
            client,
            settings,
            name="w",
            stop=stop,
            on_finished=on_finished,
            poll_seconds=0.1,
        )
        task = asyncio.create_task(worker.run(parse_schedule("1d")))
        for _ in range(200):
            if finished:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # a few idle polls: no second round
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    runs = await pg_repo.list_runs()
    assert [r.status for r in runs] == ["finished"]
    assert finished == [runs[0].id]
    assert runs[0].accounts_measured == total


# -- three worker processes, one killed --------------------------------------------------


def _start_worker(url: str, name: str, log: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        FEDIMETER_DATABASE_URL=url,
        FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
        FEDIMETER_DEFAULT_SCHEME="http",
        FEDIMETER_SCHEDULE="1d",
        # The lease outlasts a rate-limit window (2 s) plus a request's deadline (1.5 s), with
        # room for a busy machine.
        FEDIMETER_WORKER_LEASE_SECONDS="6",
        FEDIMETER_WORKER_HOSTS="2",
        FEDIMETER_REQUEST_DEADLINE="1.5",
        FEDIMETER_PER_HOST_CONCURRENCY="2",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fedimeter", "worker", "--name", name, "--log-level", "debug"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _round_state(repo: Repository) -> tuple[int, str | None, dict[str, int]]:
    """Samples stored, the shared round's status, and open hosts per holder."""
    async with repo.db.connect() as conn:
        samples = (await conn.execute(select(func.count()).select_from(account_samples))).scalar()
        held = await conn.execute(
            select(host_leases.c.holder, func.count())
            .where(host_leases.c.done_at.is_(None), host_leases.c.holder.is_not(None))
            .group_by(host_leases.c.holder)
        )
        holders: dict[str, int] = {row[0]: row[1] for row in held}
    runs = await repo.list_runs(1)
    return int(samples or 0), (runs[0].status if runs else None), holders


async def _kill_a_busy_worker(
    repo: Repository, workers: dict[str, subprocess.Popen[bytes]], total: int
) -> str:
    """Once an eighth of the accounts is measured, SIGKILL the worker holding most hosts."""
    deadline = time.monotonic() + 60
    while True:
        assert time.monotonic() < deadline, "no worker got going"
        samples, _status, holders = await _round_state(repo)
        if samples >= total // 8 and holders:
            victim = max(holders, key=lambda h: holders[h])
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait(timeout=10)
            return victim
        await asyncio.sleep(0.05)


async def _wait_until_finished(
    repo: Repository,
    workers: dict[str, subprocess.Popen[bytes]],
    logs: dict[str, Path],
    victim: str,
) -> None:
    """Wait for the survivors to finish the round (they must stay up meanwhile)."""
    alive = [n for n in workers if n != victim]
    deadline = time.monotonic() + 180
    while (await _round_state(repo))[1] != "finished":
        for n in alive:
            assert workers[n].poll() is None, logs[n].read_text()
        assert time.monotonic() < deadline, {n: logs[n].read_text()[-3000:] for n in alive}
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_three_workers_one_killed_every_account_once_no_host_over_its_limit(
    pg_repo: Repository, tmp_path: Path
) -> None:
    """The issue's test: SIGKILL one of three workers mid-round; the others finish it."""
    settings = _settings(pg_repo.db.url)
    world = _world(
        hosts=6,
        accounts_per_host=40,
        rate_limit=RateLimit(limit=10, window=2.0),
        latency=(0.02, 0.06),
    )
    async with world.serving():
        total = await _track_all(pg_repo, settings, world)
        await asyncio.sleep(2.0)  # tracking spent this window: start in a fresh one
        world.clear_requests()
        names = ["w1", "w2", "w3"]
        logs = {n: tmp_path / f"{n}.log" for n in names}
        workers = {n: _start_worker(pg_repo.db.url, n, logs[n]) for n in names}
        try:
            victim = await _kill_a_busy_worker(pg_repo, workers, total)
            await _wait_until_finished(pg_repo, workers, logs, victim)
        finally:
            for process in workers.values():
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in workers.values():
                process.wait(timeout=30)
    for n in names:  # shown only when the test fails
        print(f"--- {n}{' (killed)' if n == victim else ''}:\n{logs[n].read_text()[-4000:]}")  # noqa: T201
    for n in names:
        if n != victim:
            assert workers[n].returncode == 0, logs[n].read_text()[-3000:]
    (run,) = await pg_repo.list_runs()
    assert run.status == "finished"
    assert run.accounts_measured == total
    assert await _samples_per_account(pg_repo, run.id) == Counter({1: total})
    for name in world.instances:
        assert world.count_over_limit(instance=name) == 0, name
    assert world.count(status=429) == 0
    hosts = await LeaseStore(pg_repo).hosts(run.id)
    taken_over = [h for h in hosts if h.claims > 1]
    assert taken_over, "the killed worker held no host"
    assert all(h.done_at is not None for h in hosts)
    # Hosts the victim finished before it died stay its own; the rest went to the survivors.
    assert victim not in {h.holder for h in taken_over}


def test_short_leases_are_warned_about() -> None:
    """A lease shorter than Mastodon's window plus a request's deadline gets a warning."""
    url = "postgresql://x@127.0.0.1/x"
    assert lease_warning(_settings(url, worker_lease_seconds=600)) is None
    text = lease_warning(_settings(url, worker_lease_seconds=120))
    assert text is not None
    assert "(120 s)" in text
    assert "(305 s)" in text  # 300 + request_deadline 5
