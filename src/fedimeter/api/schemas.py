"""Request and response bodies of ``/api/v1``: separate shapes for what comes in and goes out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fedimeter.domain.analytics import Change
from fedimeter.storage.records import AccountRecord, FailureRecord, RunRecord, SampleRecord

#: Ids are 32-bit integers in the database; larger numbers can name nothing.
MAX_ID = 2_147_483_647

__all__ = [
    "MAX_ID",
    "READ_ERRORS",
    "WRITE_ERRORS",
    "AccountCreate",
    "AccountDetail",
    "AccountPage",
    "AccountPublic",
    "ChangePublic",
    "ErrorBody",
    "RunDetail",
    "RunPublic",
    "SamplePublic",
    "SamplesPublic",
]


class ErrorBody(BaseModel):
    """An error: one sentence (a list for request validation errors) and a machine code."""

    detail: str | list[Any]
    code: str | None = None


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


#: Responses every read route may give when a read token is set.
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("A read token is set and was not sent.")
}
#: Responses every write route may give.
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The body is not JSON."),
    401: _error("The API token is missing or wrong."),
    403: _error("No API token is set and the call does not come from this machine."),
}


class AccountCreate(BaseModel):
    """An account to track."""

    model_config = ConfigDict(extra="forbid")

    handle: str = Field(
        min_length=1,
        max_length=2000,
        description="@user@host, user@host, or a profile URL such as https://host/@user.",
        examples=["@Gargron@mastodon.social"],
    )


class SamplePublic(BaseModel):
    """One measurement."""

    taken_at: datetime
    followers: int
    following: int
    statuses: int
    last_status_at: date | None

    @classmethod
    def of(cls, sample: SampleRecord) -> SamplePublic:
        """From a stored sample."""
        return cls(
            taken_at=sample.taken_at,
            followers=sample.followers,
            following=sample.following,
            statuses=sample.statuses,
            last_status_at=sample.last_status_at,
        )


class AccountPublic(BaseModel):
    """A tracked account and its latest sample."""

    id: int
    handle: str = Field(examples=["@Gargron@mastodon.social"])
    acct: str
    home: str = Field(description="The server that holds the account's true counts.")
    remote_id: str = Field(description="The account's id on its home server.")
    display_name: str
    url: str
    state: str = Field(description="active, suspended, moved, gone or untracked.")
    moved_to: str | None
    added_at: datetime
    last_error: str | None
    last_error_at: datetime | None
    latest: SamplePublic | None

    @classmethod
    def of(cls, account: AccountRecord, latest: SampleRecord | None) -> AccountPublic:
        """From a stored account and its latest sample."""
        return cls(
            id=account.id,
            handle=str(account.handle),
            acct=account.handle.acct,
            home=account.base_url,
            remote_id=account.remote_id,
            display_name=account.display_name,
            url=account.url,
            state=account.state.value,
            moved_to=account.moved_to,
            added_at=account.added_at,
            last_error=account.last_error,
            last_error_at=account.last_error_at,
            latest=None if latest is None else SamplePublic.of(latest),
        )


class ChangePublic(BaseModel):
    """How the counts changed over a period; null where history is too short."""

    followers: int
    following: int
    statuses: int

    @classmethod
    def of(cls, change: Change | None) -> ChangePublic | None:
        """From a computed change."""
        if change is None:
            return None
        return cls(followers=change.followers, following=change.following, statuses=change.statuses)


class AccountDetail(AccountPublic):
    """An account with the change of its counts over the last 1, 7 and 30 days."""

    change_1d: ChangePublic | None
    change_7d: ChangePublic | None
    change_30d: ChangePublic | None


class AccountPage(BaseModel):
    """One page of accounts."""

    items: list[AccountPublic]
    total: int
    limit: int
    offset: int


class SamplesPublic(BaseModel):
    """An account's samples in a period, oldest first."""

    account_id: int
    handle: str
    since: datetime | None
    until: datetime | None
    samples: list[SamplePublic]


class RunPublic(BaseModel):
    """A collection round and its figures."""

    id: int
    status: str = Field(description="running, finished, interrupted or failed.")
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    resumes_run_id: int | None
    accounts_planned: int
    accounts_measured: int
    accounts_failed: int
    requests: int
    retries: int
    rate_limited: int
    rate_limit_wait_seconds: float
    error: str | None

    @classmethod
    def of(cls, run: RunRecord) -> RunPublic:
        """From a stored round."""
        return cls(
            id=run.id,
            status=run.status,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=run.duration_seconds,
            resumes_run_id=run.resumes_run_id,
            accounts_planned=run.accounts_planned,
            accounts_measured=run.accounts_measured,
            accounts_failed=run.accounts_failed,
            requests=run.requests,
            retries=run.retries,
            rate_limited=run.rate_limited,
            rate_limit_wait_seconds=run.rate_limit_wait_seconds,
            error=run.error,
        )


class FailurePublic(BaseModel):
    """Why one account was not measured in a round."""

    account_id: int
    handle: str
    code: str
    reason: str

    @classmethod
    def of(cls, failure: FailureRecord) -> FailurePublic:
        """From a stored failure."""
        return cls(
            account_id=failure.account_id,
            handle=str(failure.handle),
            code=failure.code,
            reason=failure.reason,
        )


class RunDetail(RunPublic):
    """A round with the reason for each account it could not measure."""

    failures: list[FailurePublic]
