"""``fedimeter demo``: the whole pipeline against the simulated fediverse, in a few seconds.

Starts simulated instances on loopback (a Mastodon 4.3 server with the batch call, an older one
without, one whose accounts live under another domain, one that fails now and then), tracks a
handful of accounts in a separate demo database, and collects one round per simulated day.
Then it posts the period's report from a reporting account on the 4.3 server, as
``fedimeter report --post`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from fedimeter.collect import collect_round
from fedimeter.config import Settings
from fedimeter.delivery import Deliverer, Outcome
from fedimeter.reporting import make_report
from fedimeter.simfedi import Fault, RateLimit, SimAccount, SimFediverse
from fedimeter.storage.deliveries import DeliveryLog
from fedimeter.tracking import add_accounts
from fedimeter.wiring import make_client, open_repository

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from fedimeter.collect import RoundResult
    from fedimeter.storage.records import AccountRecord, SampleRecord
    from fedimeter.storage.repository import Repository
    from fedimeter.tracking import AddOutcome

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo did: who it tracked, each round, and every account's samples."""

    database: Path
    added: list[AddOutcome]
    rounds: list[RoundResult]
    accounts: list[tuple[AccountRecord, list[SampleRecord]]]
    #: The week's report posted on the simulated Mastodon server, and the posts it became.
    posted: Outcome
    thread: list[str]


def build_world(seed: int = 7) -> tuple[SimFediverse, list[SimAccount]]:
    """The demo's simulated fediverse and the accounts it tracks (addresses come with serving)."""
    world = SimFediverse(seed=seed)
    latency = (0.005, 0.03)
    modern = world.add_instance(
        "mastodon-4.3", version="4.3.2", latency=latency, rate_limit=RateLimit(300, 300.0)
    )
    older = world.add_instance("mastodon-4.1", version="4.1.9", latency=latency)
    aliased = world.add_instance(
        "aliased", version="4.2.10", account_domain="alias", latency=latency
    )
    flaky = world.add_instance("flaky", version="4.3.0", latency=latency)
    # Fails twice, then answers: the client's retries carry the round through.
    flaky.faults.append(Fault(kind="status", status=503, endpoint="batch", times=2))
    accounts = [
        modern.add_account(
            "alice",
            followers=1_180,
            following=210,
            statuses=5_400,
            followers_per_day=23.0,
            statuses_per_day=6.0,
        ),
        modern.add_account(
            "bob",
            followers=312,
            following=95,
            statuses=880,
            followers_per_day=2.5,
            statuses_per_day=1.0,
            following_per_day=0.5,
        ),
        modern.add_account(
            "carol",
            followers=48_900,
            following=12,
            statuses=21_000,
            followers_per_day=140.0,
            statuses_per_day=11.0,
        ),
        older.add_account(
            "dave",
            followers=77,
            following=130,
            statuses=2_100,
            followers_per_day=0.4,
            statuses_per_day=0.3,
            last_status_days_ago=9,
        ),
        older.add_account(
            "erin",
            followers=5_020,
            following=400,
            statuses=9_800,
            followers_per_day=-3.0,
            statuses_per_day=4.0,
        ),
        aliased.add_account(
            "frank",
            followers=640,
            following=640,
            statuses=1_500,
            followers_per_day=8.0,
            statuses_per_day=2.0,
        ),
        flaky.add_account(
            "grace",
            followers=2_300,
            following=180,
            statuses=7_700,
            followers_per_day=12.0,
            statuses_per_day=3.0,
        ),
    ]
    return world, accounts


async def run_demo(
    database: Path,
    *,
    days: int = 7,
    on_round: Callable[[int, RoundResult], None] | None = None,
) -> DemoResult:
    """Run the demo into a fresh SQLite database at ``database`` (replaced if it exists).

    Raises:
        StorageError: the database cannot be written.
    """
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    settings = Settings(
        database_url=f"sqlite:///{database}",
        allow_private_addresses=True,  # the simulated servers live on 127.0.0.1
        default_scheme="http",
        retry_base_delay=0.05,
        retry_max_delay=0.2,
    )
    world, sim_accounts = build_world()
    rounds: list[RoundResult] = []

    def clock() -> datetime:
        return world.now

    async with world.serving(), open_repository(settings) as repo:
        async with make_client(settings, clock=clock) as client:
            handles = [f"@{a.acct}" for a in sim_accounts]
            added = await add_accounts(repo, client, handles, default_scheme="http")
            for day in range(days):
                if day == days // 2:
                    # Mid-week the older server suspends erin: kept, no longer measured.
                    world.instance("mastodon-4.1").account("erin").suspended = True
                result = await collect_round(repo, client, settings, clock=clock)
                rounds.append(result)
                if on_round is not None:
                    on_round(day + 1, result)
                world.advance(days=1)
        listed = await repo.list_accounts(states=None)
        accounts = [(account, await repo.samples(account.id)) for account, _ in listed]
        posted, thread = await _post_report(world, settings, repo, clock(), days)
    return DemoResult(
        database=database,
        added=added,
        rounds=rounds,
        accounts=accounts,
        posted=posted,
        thread=thread,
    )


async def _post_report(
    world: SimFediverse, settings: Settings, repo: Repository, now: datetime, days: int
) -> tuple[Outcome, list[str]]:
    """Post the period's report from a reporting account on the 4.3 server, as a user would."""
    home = world.instance("mastodon-4.3")
    token = home.add_token(home.add_account("fedimeter", display_name="fedimeter reports"))
    posting = Settings(
        **{**settings.model_dump(), "post_instance": home.base_url, "post_token": token}
    )
    report = await make_report(repo, since=now - timedelta(days=days), until=now, now=now)
    deliverer = Deliverer(posting, DeliveryLog(repo.db), clock=lambda: now)
    (outcome,) = await deliverer.deliver(report, ["mastodon"])
    return outcome, [status.text for status in home.statuses]
