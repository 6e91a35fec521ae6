"""Plain values that travel between the layers: what we track and what we measured.

Nothing here does I/O. Times are timezone-aware UTC ``datetime`` values.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime  # noqa: TC003 - dataclass fields are resolved at runtime

__all__ = [
    "AccountRef",
    "AccountSnapshot",
    "AccountState",
    "Handle",
    "InstanceAddress",
    "ResolvedAccount",
    "ServerInfo",
]

DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class InstanceAddress:
    """Where a server's web and API are reached: scheme, host and an optional port.

    ``host`` is lower case and ASCII (internationalised names in their ``xn--`` form); ``port``
    is ``None`` when it is the scheme's default.
    """

    host: str
    scheme: str = "https"
    port: int | None = None

    @property
    def authority(self) -> str:
        """``host`` or ``host:port``; IPv6 literals in brackets."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``scheme://authority`` with no trailing slash."""
        return f"{self.scheme}://{self.authority}"

    def __str__(self) -> str:
        """The base URL."""
        return self.base_url


@dataclass(frozen=True, slots=True)
class Handle:
    """A fediverse account address: ``username@domain``.

    ``domain`` is the account's domain as an authority (``host`` or ``host:port``), normalised
    like ``InstanceAddress.authority``. Usernames keep their case for display but compare
    case-insensitively, as Mastodon does: use ``key`` for lookups.
    """

    username: str
    domain: str

    @property
    def acct(self) -> str:
        """``username@domain``, the form Mastodon's ``acct`` field and WebFinger use."""
        return f"{self.username}@{self.domain}"

    @property
    def key(self) -> str:
        """Case-insensitive identity of the account, used as the unique key in storage."""
        return self.acct.lower()

    def __str__(self) -> str:
        """``@username@domain``."""
        return f"@{self.acct}"


@dataclass(frozen=True, slots=True)
class AccountRef:
    """What a person typed, parsed: a handle, and the web host when they gave a profile URL.

    A profile URL names the server that serves the account (``web``), which may differ from the
    handle's domain; WebFinger settles the canonical handle.
    """

    handle: Handle
    web: InstanceAddress | None = None


@dataclass(frozen=True, slots=True)
class ResolvedAccount:
    """An account found on its home server: canonical handle, where to measure it, its id there."""

    handle: Handle
    home: InstanceAddress
    remote_id: str
    display_name: str = ""
    url: str = ""


class AccountState(enum.StrEnum):
    """Why an account is or is not measured in a round."""

    ACTIVE = "active"  # measured every round (a failing one keeps its last_error)
    SUSPENDED = "suspended"  # the home server suspended it: kept, no longer measured
    MOVED = "moved"  # the user migrated; ``moved_to`` names the new account
    GONE = "gone"  # the home server answers 404/410 for its id
    UNTRACKED = "untracked"  # removed by the user with its history kept

    @property
    def measured(self) -> bool:
        """Whether a collection round measures accounts in this state."""
        return self is AccountState.ACTIVE


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """One account's counts as its home server served them at one moment."""

    remote_id: str
    followers: int
    following: int
    statuses: int
    #: Day of the latest post. Mastodon 3.1+ serves a date; older servers a timestamp, which
    #: we reduce to its UTC day so both compare alike.
    last_status_at: date | None
    suspended: bool = False
    #: ``acct`` of the account it moved to, when the server says it moved.
    moved_to: str | None = None


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What a server says about itself (NodeInfo, ``/api/v1/instance``)."""

    software: str | None
    version: str | None
    #: Whether ``GET /api/v1/accounts?id[]=`` exists: True, False, or None when unknown.
    supports_batch: bool | None
    checked_at: datetime
