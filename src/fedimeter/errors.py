"""Every error fedimeter raises on purpose, in one tree.

Interfaces translate these once at their edge: the CLI turns them into one line on stderr and
an exit code, the API (later) into a status code with ``{"detail": ...}``. Anything that is
not a ``FedimeterError`` is a bug.

    FedimeterError
    ├── ConfigError                  settings that cannot work (bad URL, unreadable file)
    ├── InvalidInput                 something a person typed that we cannot use
    │   └── InvalidHandle            not @user@host, user@host or a profile URL
    ├── NotTracked                   an account or instance we do not track
    ├── AlreadyTracked               adding what is tracked already
    ├── RoundInProgress              another collection round holds the database
    ├── LeaseLost                    a worker's host was taken over by another worker
    ├── StorageError                 the database refused (unreachable, read-only, full)
    │   └── CheckFailed              a database failed `fedimeter db check` (damaged, orphans)
    ├── DeliveryError                a report could not be delivered (post, webhook, e-mail)
    └── FediverseError               a remote server did not give us what we asked for
        ├── AddressRefused           SSRF guard: a private/loopback/... address
        ├── AccountNotFound          the server says this account does not exist (404, 410)
        ├── RemoteUnavailable        5xx, timeouts, resets after every retry
        ├── RateLimited              the host's budget ran out and its deadline came first
        ├── AccessDenied             401/403: the server wants a token (limited federation)
        ├── EndpointMissing          the server does not offer this endpoint (404/405 on a route)
        ├── BadResponse              not JSON, malformed, too large, or values that make no sense
        └── Halted                   not asked: the round was stopping (not a failure)
"""

from __future__ import annotations

import errno
import re

__all__ = [
    "AccessDenied",
    "AccountNotFound",
    "AddressRefused",
    "AlreadyTracked",
    "BadResponse",
    "CheckFailed",
    "ConfigError",
    "DeliveryError",
    "EndpointMissing",
    "FedimeterError",
    "FediverseError",
    "Halted",
    "InvalidHandle",
    "InvalidInput",
    "LeaseLost",
    "NotTracked",
    "RateLimited",
    "RemoteUnavailable",
    "RoundInProgress",
    "StorageError",
    "network_reason",
]


class FedimeterError(Exception):
    """Base of every error fedimeter raises on purpose; ``str()`` is one readable sentence."""

    #: Short machine-readable code, stored with failures and shown in ``--json`` output.
    code = "error"


class ConfigError(FedimeterError):
    """The settings cannot work as given."""

    code = "config"


class InvalidInput(FedimeterError):
    """Input from a person or a program that fedimeter cannot use."""

    code = "invalid_input"


class InvalidHandle(InvalidInput):
    """Text that is not an account handle or profile URL."""

    code = "invalid_handle"


class NotTracked(FedimeterError):
    """The account or instance named is not tracked."""

    code = "not_tracked"


class AlreadyTracked(FedimeterError):
    """The account or instance is tracked already."""

    code = "already_tracked"


class RoundInProgress(FedimeterError):
    """Another collection round is running against the same database."""

    code = "round_in_progress"


class LeaseLost(FedimeterError):
    """A worker no longer holds a host of a shared round: its lease expired and was taken."""

    code = "lease_lost"


class StorageError(FedimeterError):
    """The database could not be reached or refused a write."""

    code = "storage"


class CheckFailed(StorageError):
    """A database or backup failed the check: damaged file, orphan rows, unknown schema."""

    code = "check_failed"


class DeliveryError(FedimeterError):
    """A report could not be posted, sent to a webhook or e-mailed."""

    code = "delivery"


class FediverseError(FedimeterError):
    """A remote server did not give us what we asked for."""

    code = "remote"


class AddressRefused(FediverseError):
    """The address is private, loopback, link-local or otherwise not public (SSRF guard)."""

    code = "address_refused"


class AccountNotFound(FediverseError):
    """The account's home server says it does not exist (404 or 410)."""

    code = "not_found"


class RemoteUnavailable(FediverseError):
    """The server failed (5xx, timeout, reset) after every retry."""

    code = "unavailable"


class RateLimited(FediverseError):
    """The host's rate-limit budget was spent and its deadline came before the reset."""

    code = "rate_limited"


class AccessDenied(FediverseError):
    """The server wants authentication (401/403), e.g. in limited federation mode."""

    code = "access_denied"


class EndpointMissing(FediverseError):
    """The server does not offer this endpoint (turned off, or too old)."""

    code = "endpoint_missing"


class BadResponse(FediverseError):
    """The answer is not JSON, is malformed, too large, or holds values that make no sense."""

    code = "bad_response"


class Halted(FediverseError):
    """The request was not sent because the round is stopping; the account was not failed."""

    code = "halted"


#: What a person reads for the network errors a server's address gives most.
_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EHOSTUNREACH: "no route to the host",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.EPIPE: "connection closed while sending",
}
_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\]")


def network_reason(exc: BaseException) -> str:
    """A network failure in words: ``connection refused``, not ``[Errno 111] Connect call ...``.

    Other failures are as they say themselves. Looks through the exceptions ``exc`` was
    raised from for the operating system's error.
    """
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[seen.errno]
        seen = seen.__cause__ or seen.__context__
    text = " ".join(str(exc).split())
    found = _ERRNO_TEXT.search(text)
    if found is not None and int(found[1]) in _ERRNO_WORDS:
        return _ERRNO_WORDS[int(found[1])]
    return text or type(exc).__name__
