"""What the routes share for the lifetime of the app: settings, repository, client, rounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedimeter.api.worker import ReadWorker
    from fedimeter.clock import Clock
    from fedimeter.config import Settings
    from fedimeter.delivery import Deliverer
    from fedimeter.fediverse import FediverseClient
    from fedimeter.rounds import RoundManager
    from fedimeter.scheduler import Scheduler
    from fedimeter.storage.database import Database
    from fedimeter.storage.repository import Repository

__all__ = ["Services"]


@dataclass
class Services:
    """The collaborators built at start-up (in the app's lifespan) and closed at shutdown."""

    settings: Settings
    db: Database
    repo: Repository
    client: FediverseClient
    rounds: RoundManager
    clock: Clock
    deliverer: Deliverer
    #: Where reports over many accounts are made, off the loop that answers requests.
    reads: ReadWorker
    scheduler: Scheduler | None = None
