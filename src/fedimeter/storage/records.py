"""Rows as the rest of fedimeter sees them: frozen dataclasses, no SQLAlchemy types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime  # noqa: TC003 - dataclass fields are resolved at runtime
from urllib.parse import urlsplit

from fedimeter.domain.models import AccountState, Handle, InstanceAddress

__all__ = [
    "AccountRecord",
    "AccountStateChange",
    "FailureRecord",
    "InstanceRecord",
    "NewFailure",
    "NewSample",
    "RunProgress",
    "RunRecord",
    "SampleRecord",
]


def address_from_base_url(base_url: str) -> InstanceAddress:
    """Rebuild the ``InstanceAddress`` stored as ``scheme://authority``."""
    parts = urlsplit(base_url)
    return InstanceAddress(host=parts.hostname or "", scheme=parts.scheme, port=parts.port)


@dataclass(frozen=True, slots=True)
class InstanceRecord:
    """A server we measure accounts on (and, later, measure itself)."""

    id: int
    host: str
    base_url: str
    software: str | None
    version: str | None
    supports_batch: bool | None
    info_checked_at: datetime | None
    added_at: datetime
    #: When tracking the instance itself began; None when it is only accounts' home.
    tracked_at: datetime | None = None
    #: Since when its trending hashtags are recorded each round; None when they are not.
    trends_tracked_at: datetime | None = None
    #: When its trending hashtags were last read, an empty answer included (None: never).
    trends_checked_at: datetime | None = None

    @property
    def address(self) -> InstanceAddress:
        """Where to reach it."""
        return address_from_base_url(self.base_url)


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """A tracked (or formerly tracked) account."""

    id: int
    handle: Handle
    instance_id: int
    instance_host: str
    base_url: str
    remote_id: str
    display_name: str
    url: str
    state: AccountState
    moved_to: str | None
    added_at: datetime
    state_changed_at: datetime | None
    last_error: str | None
    last_error_code: str | None
    last_error_at: datetime | None
    consecutive_failures: int

    @property
    def home(self) -> InstanceAddress:
        """The server that holds the account's true counts."""
        return address_from_base_url(self.base_url)


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """One measurement of one account."""

    account_id: int
    taken_at: datetime
    followers: int
    following: int
    statuses: int
    last_status_at: date | None
    run_id: int | None


@dataclass(frozen=True, slots=True)
class NewSample:
    """A measurement to store."""

    account_id: int
    taken_at: datetime
    followers: int
    following: int
    statuses: int
    last_status_at: date | None


@dataclass(frozen=True, slots=True)
class NewFailure:
    """Why an account was not measured in a round."""

    account_id: int
    code: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class AccountStateChange:
    """An account found suspended, moved or gone (or back to active)."""

    account_id: int
    state: AccountState
    at: datetime
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class RunProgress:
    """Running totals of a round, saved with every batch."""

    accounts_measured: int = 0
    accounts_failed: int = 0
    requests: int = 0
    rate_limited: int = 0
    rate_limit_wait_seconds: float = 0.0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A collection round and what it did."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    heartbeat_at: datetime
    status: str
    resumes_run_id: int | None
    owner: str
    accounts_planned: int
    accounts_measured: int
    accounts_failed: int
    requests: int
    rate_limited: int
    rate_limit_wait_seconds: float
    retries: int
    error: str | None

    @property
    def duration_seconds(self) -> float | None:
        """Seconds from start to finish, None while running."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """A failure recorded in a round, with the account's handle."""

    run_id: int
    account_id: int
    handle: Handle
    code: str
    reason: str
    at: datetime
