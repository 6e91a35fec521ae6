"""Collection rounds against the simulated fediverse over real sockets, on both backends."""

from __future__ import annotations

import asyncio
import math
import socket

import pytest

from fedimeter.collect import collect_round
from fedimeter.config import Settings
from fedimeter.domain.models import AccountState
from fedimeter.errors import AddressRefused, StorageError
from fedimeter.simfedi import Fault, RateLimit, SimFediverse
from fedimeter.storage.repository import Repository
from fedimeter.tracking import add_accounts
from simhelpers import sim_client, stored, track


async def test_stored_values_equal_the_served_values(repo: Repository, settings: Settings) -> None:
    """Each sample holds exactly the counts and last post day the home server served."""
    world = SimFediverse(seed=1)
    modern = world.add_instance("modern", version="4.3.2")
    older = world.add_instance("older", version="4.1.9")
    # Pleroma serves last_status_at as a full timestamp, Mastodon 3.1+ as a date.
    ancient = world.add_instance("ancient", software="pleroma", version="2.6.0")
    accounts = [
        modern.add_account("alice", followers=1234, following=56, statuses=7890),
        modern.add_account("bob", followers=0, following=0, statuses=0),
        older.add_account("carol", followers=10**9, following=1, statuses=42),
        ancient.add_account("dan", followers=5, following=6, statuses=7),
    ]
    async with world.serving(), sim_client(settings, world) as client:
        await track(repo, client, accounts)
        world.advance(days=3)
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert result.run.status == "finished"
    assert (result.run.accounts_planned, result.run.accounts_measured) == (4, 4)
    assert result.failures == []
    for sim in accounts:
        [sample] = await repo.samples((await stored(repo, sim)).id)
        served = (sim.followers, sim.following, sim.statuses)
        assert (sample.followers, sample.following, sample.statuses) == served
        expected_day = None if sim.last_status_at is None else sim.last_status_at.date()
        assert sample.last_status_at == expected_day
        assert sample.taken_at == world.now


@pytest.mark.parametrize(("version", "batch"), [("4.3.2", True), ("4.2.10", False)])
async def test_requests_per_round_are_the_minimum(
    repo: Repository, settings: Settings, version: str, batch: bool
) -> None:
    """N accounts cost ceil(N/40) requests on a 4.3+ host and N on an older one."""
    world = SimFediverse(seed=2)
    host = world.add_instance("host", version=version, rate_limit=None)
    accounts = [host.add_account(f"user{i}", followers=i) for i in range(95)]
    async with world.serving(), sim_client(settings, world) as client:
        await track(repo, client, accounts)
        world.clear_requests()
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
        world.clear_requests()
        # A second round no longer needs NodeInfo: only measurement requests.
        world.advance(hours=1)
        second = await collect_round(repo, client, settings, clock=lambda: world.now)
        measuring = world.count(endpoint="batch") + world.count(endpoint="account")
    expected = math.ceil(95 / 40) if batch else 95
    assert result.run.accounts_measured == 95
    assert second.run.accounts_measured == 95
    assert measuring == expected
    assert world.count(endpoint="batch" if batch else "account") == expected
    assert second.run.requests == expected


async def test_no_request_goes_into_an_exhausted_window(
    repo: Repository, settings: Settings
) -> None:
    """With 8 requests per second allowed, 24 requests are paced: no 429, all measured."""
    world = SimFediverse(seed=3)
    host = world.add_instance("tight", version="4.2.0", rate_limit=RateLimit(limit=8, window=1.0))
    accounts = [host.add_account(f"u{i}") for i in range(12)]
    async with world.serving(), sim_client(settings, world) as client:
        await track(repo, client, accounts)
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert world.count_over_limit(instance="tight") == 0
    assert world.count(instance="tight", status=429) == 0
    assert result.run.accounts_measured == 12
    assert result.run.rate_limited == 0


async def test_a_429_storm_delays_the_host_and_the_round_completes(
    repo: Repository, settings: Settings
) -> None:
    """Behind a proxy that strips rate-limit headers, 429s with Retry-After slow the host down."""
    world = SimFediverse(seed=4)
    host = world.add_instance(
        "stormy",
        version="4.2.0",
        rate_limit=RateLimit(limit=3, window=1.0, retry_after=True, send_headers=False),
    )
    calm = world.add_instance("calm", version="4.3.0", rate_limit=None)
    accounts = [host.add_account(f"u{i}") for i in range(6)]
    others = [calm.add_account(f"c{i}") for i in range(3)]
    async with world.serving(), sim_client(settings, world) as client:
        await track(repo, client, accounts + others)
        world.clear_requests()
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert result.run.status == "finished"
    assert result.run.accounts_measured == 9
    assert result.failures == []
    assert result.run.rate_limited >= 1
    assert world.count(instance="stormy", status=429) == result.run.rate_limited


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(kind="status", status=503), "unavailable"),
        (Fault(kind="status", status=500), "unavailable"),
        (Fault(kind="timeout"), "unavailable"),
        (Fault(kind="malformed"), "bad_response"),
        (Fault(kind="html"), "bad_response"),
        (Fault(kind="status", status=401), "access_denied"),
    ],
    ids=["503", "500", "timeout", "malformed", "html", "401"],
)
async def test_a_failing_host_gives_reasons_and_the_rest_is_measured(
    repo: Repository, settings: Settings, fault: Fault, code: str
) -> None:
    """Every account of a failing host gets a recorded reason; other hosts are measured."""
    quick = settings.model_copy(update={"read_timeout": 0.3, "max_retries": 1})
    world = SimFediverse(seed=5)
    bad = world.add_instance("bad", version="4.3.0", rate_limit=None)
    good = world.add_instance("good", version="4.1.0", rate_limit=None)
    victims = [bad.add_account(f"v{i}") for i in range(3)]
    fine = [good.add_account(f"f{i}") for i in range(3)]
    async with world.serving(), sim_client(quick, world) as client:
        await track(repo, client, victims + fine)
        bad.faults.append(fault)
        result = await collect_round(repo, client, quick, clock=lambda: world.now)
    assert result.run.status == "finished"
    assert result.run.accounts_measured == 3
    assert result.run.accounts_failed == 3
    failed = {f.handle.username: f for f in result.failures}
    assert set(failed) == {"v0", "v1", "v2"}
    assert {f.code for f in failed.values()} == {code}
    assert all(f.reason for f in failed.values())
    for sim in victims:
        record = await stored(repo, sim)
        assert record.state is AccountState.ACTIVE  # failing is not gone: measured next round
        assert record.last_error_code == code
        assert await repo.samples(record.id) == []
    for sim in fine:
        assert len(await repo.samples((await stored(repo, sim)).id)) == 1


@pytest.mark.parametrize("passes", [1, 0])
async def test_a_host_back_from_an_outage_is_measured_by_another_pass(
    repo: Repository, settings: Settings, passes: int
) -> None:
    """A host down when the round reaches it and back a moment later is measured in the round.

    Its accounts are asked for again after host_retry_delay (not with no pass more).
    """
    quick = settings.model_copy(
        update={"max_retries": 1, "host_retry_delay": 1.0, "host_retry_passes": passes}
    )
    world = SimFediverse(seed=15)
    flaky = world.add_instance("flaky", version="4.1.0", rate_limit=None)
    good = world.add_instance("good", version="4.1.0", rate_limit=None)
    victims = [flaky.add_account(f"v{i}") for i in range(5)]
    fine = [good.add_account(f"f{i}") for i in range(3)]
    async with world.serving(), sim_client(quick, world) as client:
        await track(repo, client, victims + fine)
        world.take_down("flaky")
        asyncio.get_running_loop().call_later(0.5, world.bring_up, "flaky")
        result = await collect_round(repo, client, quick, clock=lambda: world.now)
    assert result.run.status == "finished"
    if passes:
        assert result.run.accounts_measured == 8
        assert result.failures == []
        for sim in victims:
            assert len(await repo.samples((await stored(repo, sim)).id)) == 1
    else:
        assert result.run.accounts_measured == 3
        assert {f.handle.username for f in result.failures} == {f"v{i}" for i in range(5)}
        assert {f.code for f in result.failures} == {"unavailable"}


async def test_a_lasting_refusal_is_not_asked_again(repo: Repository, settings: Settings) -> None:
    """401 is no passing trouble: one pass over the host, then the reasons are recorded."""
    world = SimFediverse(seed=16)
    host = world.add_instance("closed", version="4.1.0", rate_limit=None)
    victims = [host.add_account(f"v{i}") for i in range(4)]
    async with world.serving(), sim_client(settings, world) as client:
        await track(repo, client, victims)
        world.clear_requests()
        host.faults.append(Fault(kind="status", status=401))
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert {f.code for f in result.failures} == {"access_denied"}
    assert world.count(instance="closed", endpoint="account") == 4


async def test_an_outage_past_the_host_deadline_keeps_the_accounts_own_reasons(
    repo: Repository, settings: Settings
) -> None:
    """Down for good: the host deadline ends the wait for another pass.

    Each account keeps the error it met rather than a bare "deadline".
    """
    quick = settings.model_copy(
        update={"max_retries": 0, "host_retry_delay": 30.0, "host_deadline": 1.0}
    )
    world = SimFediverse(seed=17)
    host = world.add_instance("gone", version="4.1.0", rate_limit=None)
    victims = [host.add_account(f"v{i}") for i in range(3)]
    async with world.serving(), sim_client(quick, world) as client:
        await track(repo, client, victims)
        world.take_down("gone")
        result = await collect_round(repo, client, quick, clock=lambda: world.now)
    assert result.run.status == "finished"
    assert {f.code for f in result.failures} == {"unavailable"}
    assert len(result.failures) == 3


async def test_suspended_moved_and_gone_accounts_are_marked_and_kept(
    repo: Repository, settings: Settings
) -> None:
    """Suspended, moved and deleted accounts change state, keep history, leave the rounds."""
    world = SimFediverse(seed=6)
    host = world.add_instance("host", version="4.3.0", rate_limit=None)
    new_home = world.add_instance("newhome", version="4.3.0", rate_limit=None)
    keep, suspended, mover, deleted = (host.add_account(n) for n in ("keep", "sus", "mover", "del"))
    target = new_home.add_account("mover")
    async with world.serving(), sim_client(settings, world) as client:
        await track(repo, client, [keep, suspended, mover, deleted])
        await collect_round(repo, client, settings, clock=lambda: world.now)
        world.advance(days=1)
        suspended.suspended = True
        mover.moved_to = target
        deleted.deleted = True
        second = await collect_round(repo, client, settings, clock=lambda: world.now)
        world.advance(days=1)
        third = await collect_round(repo, client, settings, clock=lambda: world.now)
    changes = {a.handle.username: s for a, s in second.state_changes}
    assert changes == {
        "sus": AccountState.SUSPENDED,
        "mover": AccountState.MOVED,
        "del": AccountState.GONE,
    }
    assert (await stored(repo, suspended)).state is AccountState.SUSPENDED
    assert len(await repo.samples((await stored(repo, suspended)).id)) == 1  # zeroes not stored
    moved = await stored(repo, mover)
    assert moved.state is AccountState.MOVED
    assert moved.moved_to == target.acct
    assert len(await repo.samples(moved.id)) == 2
    assert (await stored(repo, deleted)).state is AccountState.GONE
    assert third.run.accounts_planned == 1


async def test_handles_on_another_domain_resolve_through_webfinger(
    repo: Repository, settings: Settings
) -> None:
    """user@example.com served by social.example.com: stored under its domain, measured at home."""
    world = SimFediverse(seed=7)
    host = world.add_instance("social", version="4.3.0", account_domain="alias", rate_limit=None)
    alice = host.add_account("alice", followers=77)
    async with world.serving(), sim_client(settings, world) as client:
        await track(repo, client, [alice])
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
        record = await stored(repo, alice)
        assert record.handle.domain == host.domain
        assert record.instance_host == host.address.authority
        assert host.domain != host.address.authority
    assert result.run.accounts_measured == 1
    [sample] = await repo.samples(record.id)
    assert sample.followers == 77


async def test_profile_urls_are_tracked_under_their_canonical_handle(
    repo: Repository, settings: Settings
) -> None:
    """http://127.0.0.1:PORT/@user adds the same account as its handle would."""
    world = SimFediverse(seed=8)
    host = world.add_instance("social", version="4.3.0", rate_limit=None)
    alice = host.add_account("Alice")
    async with world.serving(), sim_client(settings, world) as client:
        [outcome] = await add_accounts(repo, client, [alice.profile_url])
        [again] = await add_accounts(repo, client, [f"@alice@{host.domain}"])
    assert outcome.status == "added"
    assert outcome.account is not None
    assert outcome.account.handle.acct == alice.acct
    assert again.status == "already"


async def test_private_addresses_are_refused_by_default(
    repo: Repository, settings: Settings
) -> None:
    """Without allow_private_addresses nothing is sent to 127.0.0.1 and the reason says why."""
    strict = settings.model_copy(update={"allow_private_addresses": False})
    world = SimFediverse(seed=9)
    host = world.add_instance("local", version="4.3.0")
    alice = host.add_account("alice")
    async with world.serving():
        async with sim_client(strict, world) as client:
            [outcome] = await add_accounts(repo, client, [f"@{alice.acct}"], default_scheme="http")
        assert outcome.status == "failed"
        assert isinstance(outcome.error, AddressRefused)
        assert "allow_private_addresses" in str(outcome.error)
        # An account tracked while the setting was on is not measured once it is off.
        async with sim_client(settings, world) as client:
            await track(repo, client, [alice])
        world.clear_requests()
        async with sim_client(strict, world) as client:
            result = await collect_round(repo, client, strict, clock=lambda: world.now)
        assert world.requests == []
    [failure] = result.failures
    assert failure.code == "address_refused"


async def test_a_round_resumes_one_whose_process_died(repo: Repository, settings: Settings) -> None:
    """After a dead round measured some accounts, the next measures only the rest."""
    world = SimFediverse(seed=10)
    host = world.add_instance("host", version="4.1.0", rate_limit=None)
    accounts = [host.add_account(f"u{i}") for i in range(5)]
    async with world.serving(), sim_client(settings, world) as client:
        await track(repo, client, accounts)
        first = await collect_round(repo, client, settings, clock=lambda: world.now)
        world.advance(days=1)
        # A round started by a process that no longer exists on this machine, having measured
        # two accounts before it died.
        dead_owner = f"{socket.gethostname()}:{2**22 + 12345}"
        dead, _ = await repo.start_run(world.now, dead_owner, lambda _: False)
        measured_ids = [(await stored(repo, a)).id for a in accounts[:2]]
        from fedimeter.storage.records import NewSample, RunProgress

        await repo.commit_batch(
            dead.id,
            world.now,
            RunProgress(accounts_measured=2),
            samples=[NewSample(i, world.now, 1, 1, 1, None) for i in measured_ids],
        )
        world.advance(minutes=5)
        world.clear_requests()
        resumed = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert resumed.resumed is not None
    assert resumed.resumed.id == dead.id
    assert (await repo.get_run(dead.id)).status == "interrupted"
    assert resumed.run.accounts_planned == 3
    assert world.count(endpoint="account") == 3
    for sim in accounts:
        assert len(await repo.samples((await stored(repo, sim)).id)) == 2
    assert first.run.accounts_measured == 5


async def test_two_crashes_in_a_row_still_measure_each_account_once(
    repo: Repository, settings: Settings
) -> None:
    """A chain of interrupted rounds is resumed from its first round's start."""
    world = SimFediverse(seed=11)
    host = world.add_instance("host", version="4.1.0", rate_limit=None)
    accounts = [host.add_account(f"u{i}") for i in range(6)]
    from fedimeter.storage.records import NewSample, RunProgress

    dead_owner = f"{socket.gethostname()}:{2**22 + 12345}"
    async with world.serving(), sim_client(settings, world) as client:
        await track(repo, client, accounts)
        ids = [(await stored(repo, a)).id for a in accounts]
        first, _ = await repo.start_run(world.now, dead_owner, lambda _: False)
        await repo.commit_batch(
            first.id,
            world.now,
            RunProgress(),
            samples=[NewSample(ids[0], world.now, 1, 1, 1, None)],
        )
        world.advance(minutes=1)
        second, resumed = await repo.start_run(world.now, dead_owner, lambda _: False)
        assert resumed is not None
        await repo.commit_batch(
            second.id,
            world.now,
            RunProgress(),
            samples=[NewSample(ids[1], world.now, 1, 1, 1, None)],
        )
        world.advance(minutes=1)
        third = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert third.resumed is not None
    assert third.resumed.id == second.id
    assert third.run.accounts_planned == 4
    for account_id in ids:
        assert len(await repo.samples(account_id)) == 1


async def test_a_slow_host_does_not_hold_up_the_others(
    repo: Repository, settings: Settings
) -> None:
    """A fast host is measured in full while a slow one is still answering."""
    world = SimFediverse(seed=14)
    slow = world.add_instance("slow", version="4.1.0", rate_limit=None, latency=(0.4, 0.4))
    fast = world.add_instance("fast", version="4.1.0", rate_limit=None)
    accounts = [slow.add_account(f"s{i}") for i in range(3)]
    accounts += [fast.add_account(f"f{i}") for i in range(8)]
    patient = settings.model_copy(update={"per_host_concurrency": 1, "read_timeout": 5.0})
    async with world.serving(), sim_client(patient, world) as client:
        await track(repo, client, accounts)
        world.clear_requests()
        result = await collect_round(repo, client, patient, clock=lambda: world.now)
    assert result.run.accounts_measured == 11
    measured = [r for r in world.requests if r.endpoint == "account"]
    finished = [(r.instance, r.finished) for r in measured if r.finished is not None]
    assert len(finished) == 11
    fast_done = max(t for name, t in finished if name == "fast")
    slow_done = max(t for name, t in finished if name == "slow")
    slow_started = min(r.started for r in measured if r.instance == "slow")
    assert fast_done < slow_started + 0.4  # all 8 fast answers within the first slow answer
    assert slow_done - slow_started >= 1.1  # the slow host really took its three answers' time


async def test_a_host_past_its_deadline_gets_a_reason_and_the_round_ends(
    repo: Repository, settings: Settings
) -> None:
    """A host that hangs is cut off at host_deadline; its accounts say so; others are measured.

    3 s: long enough for the other host's one request on a machine busy with the whole suite
    (1 s was not, once, on PostgreSQL), far shorter than the 30 s read timeout.
    """
    bounded = settings.model_copy(
        update={"host_deadline": 3.0, "read_timeout": 30.0, "request_deadline": 30.0}
    )
    world = SimFediverse(seed=15)
    stuck = world.add_instance("stuck", version="4.3.0", rate_limit=None)
    fine = world.add_instance("fine", version="4.3.0", rate_limit=None)
    victims = [stuck.add_account(f"v{i}") for i in range(2)]
    others = [fine.add_account(f"o{i}") for i in range(2)]
    async with world.serving(), sim_client(bounded, world) as client:
        await track(repo, client, victims + others)
        stuck.faults.append(Fault(kind="timeout", endpoint="batch"))
        started = asyncio.get_running_loop().time()
        result = await collect_round(repo, client, bounded, clock=lambda: world.now)
        elapsed = asyncio.get_running_loop().time() - started
    assert {f.handle.username: f.code for f in result.failures} == {
        "v0": "deadline",
        "v1": "deadline",
    }, [(f.handle.username, f.reason) for f in result.failures]
    assert result.run.accounts_measured == 2
    assert "host deadline of 3 s" in result.failures[0].reason
    assert elapsed < 15  # the deadline ended the round, not the read timeout


class _FailingWrites(Repository):
    """A repository whose batch commits fail, as on a full disk."""

    async def commit_batch(self, *_args: object, **_kwargs: object) -> None:
        """Refuse every batch."""
        raise StorageError("cannot write to the database: database or disk is full")


async def test_a_storage_failure_stops_the_round_with_one_error(
    repo: Repository, settings: Settings
) -> None:
    """When batches cannot be stored the round stops at once with StorageError, marked failed."""
    world = SimFediverse(seed=16)
    host = world.add_instance("host", version="4.1.0", rate_limit=None, latency=(0.05, 0.05))
    accounts = [host.add_account(f"u{i}") for i in range(40)]
    slow = settings.model_copy(update={"per_host_concurrency": 1})
    async with world.serving(), sim_client(slow, world) as client:
        await track(repo, client, accounts)
        world.clear_requests()
        with pytest.raises(StorageError, match="disk is full"):
            await collect_round(_FailingWrites(repo.db), client, slow, clock=lambda: world.now)
        sent = world.count(endpoint="account")
    assert sent < 10  # measuring stopped instead of running through all 40 accounts
    [run] = await repo.list_runs()
    assert run.status == "failed"
    assert "disk is full" in (run.error or "")
    assert await repo.count_samples() == 0


async def test_a_stopped_round_commits_what_it_has_and_is_resumed(
    repo: Repository, settings: Settings
) -> None:
    """Stop: no new request, the one in flight finishes and is kept, the next round resumes."""
    world = SimFediverse(seed=17)
    host = world.add_instance("host", version="4.1.0", rate_limit=None, latency=(0.05, 0.05))
    accounts = [host.add_account(f"u{i}") for i in range(30)]
    one_at_a_time = settings.model_copy(update={"per_host_concurrency": 1})
    stop = asyncio.Event()
    async with world.serving(), sim_client(one_at_a_time, world) as client:
        await track(repo, client, accounts)
        world.clear_requests()
        round_task = asyncio.create_task(
            collect_round(repo, client, one_at_a_time, clock=lambda: world.now, stop=stop)
        )
        while await repo.count_samples() < 5:
            await asyncio.sleep(0.01)
        stop.set()
        stopped = await asyncio.wait_for(round_task, timeout=5)
        answered = world.count(endpoint="account", status=200)
        kept = await repo.count_samples()
        world.advance(minutes=1)
        resumed = await collect_round(repo, client, one_at_a_time, clock=lambda: world.now)
    assert stopped.run.status == "interrupted"
    # Nothing new is sent once stopping; the answer on the wire is let finish and kept.
    assert kept >= 5
    assert kept == answered
    assert kept == stopped.run.accounts_measured
    assert resumed.resumed is not None
    assert resumed.run.accounts_planned == 30 - kept
    assert await repo.count_samples() == 30
