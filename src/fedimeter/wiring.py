"""Building the collaborators an interface needs from the settings, and closing them after."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from fedimeter.clock import Clock, utc_now
from fedimeter.fediverse import FediverseClient
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fedimeter.config import Settings

__all__ = ["make_client", "open_repository"]


@contextlib.asynccontextmanager
async def open_repository(settings: Settings) -> AsyncIterator[Repository]:
    """The repository over the configured database, migrated; closed on exit.

    Raises:
        StorageError: the database cannot be opened or migrated.
    """
    db = await Database.open(settings.database_url)
    try:
        yield Repository(db)
    finally:
        await db.close()


def make_client(settings: Settings, *, clock: Clock = utc_now) -> FediverseClient:
    """A fediverse client configured from the settings."""
    return FediverseClient(settings, clock=clock)
