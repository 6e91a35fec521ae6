"""The client on uvloop: what ``fedimeter serve`` runs on when uvloop is installed.

uvicorn picks uvloop by itself when it is importable (``uvicorn[standard]`` installs it), and
the server's rounds then run on it. uvloop's transports are not ``asyncio.Transport``
subclasses: the client's connections must not assume they are.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fedimeter.collect import collect_round
from fedimeter.config import Settings
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository
from simhelpers import sim_client, track

uvloop = pytest.importorskip("uvloop")

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """A 4.3 server (the batch call) and a 4.1 one (one request per account)."""
    sim = SimFediverse(seed=21)
    for name, version in (("new", "4.3.2"), ("old", "4.1.0")):
        inst = sim.add_instance(name, version=version, rate_limit=None)
        for n in range(3):
            inst.add_account(f"u{n}", followers=10 + n)
    with sim.run_in_thread():
        yield sim


def test_a_round_on_uvloop(settings: Settings, world: SimFediverse) -> None:
    """Tracking (WebFinger, lookup) and a whole round work on uvloop, every account measured."""

    async def go() -> tuple[int, int, str]:
        db = await Database.open(settings.database_url)
        try:
            repo = Repository(db)
            async with sim_client(settings, world) as client:
                accounts = [a for inst in world.instances.values() for a in inst.accounts]
                await track(repo, client, accounts)
                result = await collect_round(repo, client, settings, clock=lambda: world.now)
            return result.run.accounts_measured, result.run.accounts_failed, result.run.status
        finally:
            await db.close()

    assert uvloop.run(go()) == (6, 0, "finished")
