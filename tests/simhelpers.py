"""Helpers shared by the tests that run against the simulated fediverse."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fedimeter.domain.models import Handle
from fedimeter.fediverse import FediverseClient
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository
from fedimeter.tracking import add_accounts

if TYPE_CHECKING:
    from fedimeter.config import Settings
    from fedimeter.simfedi import SimAccount, SimFediverse
    from fedimeter.storage.records import AccountRecord


def sim_client(settings: Settings, world: SimFediverse) -> FediverseClient:
    """A client on the simulated clock, speaking plain http to the simulated servers."""
    return FediverseClient(settings, clock=lambda: world.now, default_scheme="http")


def handle_of(account: SimAccount) -> Handle:
    """The handle fedimeter stores for a simulated account."""
    username, _, domain = account.acct.partition("@")
    return Handle(username, domain)


async def track(repo: Repository, client: FediverseClient, accounts: list[SimAccount]) -> None:
    """Track the simulated accounts; each one must be added."""
    outcomes = await add_accounts(
        repo, client, [f"@{a.acct}" for a in accounts], default_scheme="http"
    )
    assert [o.status for o in outcomes] == ["added"] * len(accounts), [
        str(o.error) for o in outcomes
    ]


async def stored(repo: Repository, account: SimAccount) -> AccountRecord:
    """The stored record of a simulated account."""
    record = await repo.find_account(handle_of(account))
    assert record is not None, account.acct
    return record


async def sample_count(url: str) -> int:
    """How many samples the database at ``url`` holds (opened without migrating)."""
    db = await Database.open(url, migrate=False)
    try:
        return await Repository(db).count_samples()
    finally:
        await db.close()
