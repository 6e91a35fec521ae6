"""Adding, removing and importing tracked accounts."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from fedimeter.clock import Clock, utc_now
from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.models import AccountState
from fedimeter.errors import AlreadyTracked, FedimeterError, InvalidInput, NotTracked

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from fedimeter.domain.models import AccountRef
    from fedimeter.fediverse import FediverseClient
    from fedimeter.storage.records import AccountRecord
    from fedimeter.storage.repository import Repository

__all__ = [
    "AddOutcome",
    "RemoveOutcome",
    "add_accounts",
    "find_tracked",
    "parse_follows_csv",
    "remove_accounts",
]

#: Resolutions in flight at once during an import; the client paces each host on top.
RESOLVE_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """What happened to one handle given to ``add_accounts``."""

    text: str
    status: Literal["added", "retracked", "already", "failed"]
    account: AccountRecord | None = None
    error: FedimeterError | None = None


@dataclass(frozen=True, slots=True)
class RemoveOutcome:
    """What happened to one handle given to ``remove_accounts``."""

    text: str
    account: AccountRecord | None
    samples_deleted: int = 0
    error: FedimeterError | None = None


async def add_accounts(
    repo: Repository,
    client: FediverseClient,
    texts: Sequence[str],
    *,
    default_scheme: str = "https",
    clock: Clock = utc_now,
) -> list[AddOutcome]:
    """Resolve each handle or profile URL on its home server and track it.

    Every input gets an outcome, in order; one bad handle never stops the others. Handles
    already tracked are recognised before any request is sent.
    """
    semaphore = asyncio.Semaphore(RESOLVE_CONCURRENCY)

    async def add_one(text: str) -> AddOutcome:
        try:
            ref = parse_account_ref(text, default_scheme=default_scheme)
            known = await find_tracked(repo, ref)
            if known is not None and known.state is not AccountState.UNTRACKED:
                error = AlreadyTracked(f"{known.handle} is already tracked")
                return AddOutcome(text, "already", account=known, error=error)
            async with semaphore:
                resolved = await client.resolve(ref)
            retracked = await repo.find_account(resolved.handle)
            account = await repo.add_account(resolved, clock())
        except AlreadyTracked as exc:  # known under its canonical handle only
            return AddOutcome(text, "already", error=exc)
        except FedimeterError as exc:
            return AddOutcome(text, "failed", error=exc)
        status: Literal["added", "retracked"] = "retracked" if retracked else "added"
        return AddOutcome(text, status, account=account)

    return list(await asyncio.gather(*(add_one(t) for t in texts)))


async def find_tracked(repo: Repository, ref: AccountRef) -> AccountRecord | None:
    """The stored account a parsed handle or profile URL names, in any state, or None.

    A profile URL names the web host, whose accounts may live under another domain
    (``user@example.com`` served by ``social.example.com``): match on the host then.
    """
    found = await repo.find_account(ref.handle)
    if found is not None or ref.web is None:
        return found
    username = ref.handle.username.lower()
    for account, _ in await repo.list_accounts(states=list(AccountState)):
        if (
            account.instance_host == ref.web.authority
            and account.handle.username.lower() == username
        ):
            return account
    return None


async def remove_accounts(
    repo: Repository,
    texts: Sequence[str],
    *,
    purge: bool = False,
    default_scheme: str = "https",
    clock: Clock = utc_now,
) -> list[RemoveOutcome]:
    """Stop tracking each handle; keep its history unless ``purge``.

    Every input gets an outcome; unknown handles carry ``NotTracked``, invalid ones
    ``InvalidHandle``.
    """
    outcomes: list[RemoveOutcome] = []
    for text in texts:
        try:
            ref = parse_account_ref(text, default_scheme=default_scheme)
            account = await find_tracked(repo, ref)
            if account is None or (account.state is AccountState.UNTRACKED and not purge):
                raise NotTracked(f"{ref.handle} is not tracked")
            deleted = 0
            if purge:
                deleted = await repo.delete_account(account.id)
            else:
                await repo.untrack_account(account.id, clock())
            outcomes.append(RemoveOutcome(text, account, deleted))
        except FedimeterError as exc:
            outcomes.append(RemoveOutcome(text, None, error=exc))
    return outcomes


def parse_follows_csv(content: str) -> list[str]:
    """The handles in a Mastodon "follows" export (first column ``Account address``).

    Also accepts a plain list, one handle per line; blank lines and ``#`` comments are
    skipped, duplicates kept once.

    Raises:
        InvalidInput: the text is not CSV, or holds no handle at all.
    """
    content = content.removeprefix("\ufeff")
    try:
        rows = list(csv.reader(io.StringIO(content)))
    except csv.Error as exc:
        raise InvalidInput(f"the file is not valid CSV: {exc}") from None
    handles: list[str] = []
    seen: set[str] = set()
    for number, row in enumerate(rows):
        cell = row[0].strip() if row else ""
        if not cell or cell.startswith("#"):
            continue
        if number == 0 and cell.lower() == "account address":
            continue
        if cell.lower() not in seen:
            seen.add(cell.lower())
            handles.append(cell)
    if not handles:
        raise InvalidInput(
            "no account found in the file: expected Mastodon's follows export"
            " (first column 'Account address') or one handle per line"
        )
    return handles


def summarise(outcomes: Iterable[AddOutcome]) -> dict[str, int]:
    """Counts of outcomes by status."""
    counts = {"added": 0, "retracked": 0, "already": 0, "failed": 0}
    for outcome in outcomes:
        counts[outcome.status] += 1
    return counts
