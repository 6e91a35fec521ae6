"""Request and response bodies of mastodon-meter's API, as ``api/compat.py`` serves them.

Every answer is an envelope ``{"status": bool, "message": str, ...}``: ``status`` is true on
success (HTTP 200) and false on an error (a 4xx/5xx status, see ``docs/compat-mastodon-meter.md``).
Ids and timestamps are strings, as mastodon-meter sent them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

__all__ = [
    "AddAccountRequest",
    "AddAccountResponse",
    "ErrorEnvelope",
    "Metering",
    "OkEnvelope",
    "RawDataResponse",
    "RemoveAccountRequest",
    "ReportResponse",
    "TrackedAccount",
    "TrackedAccountsResponse",
]

_TIMESTAMP = Field(
    description="UTC, naive, always with microseconds.",
    examples=["2021-01-01 12:00:00.000000"],
)


class _Request(BaseModel):
    # mastodon-meter ignored keys it did not know; scripts may still send some.
    model_config = ConfigDict(extra="ignore")


class AddAccountRequest(_Request):
    """An account to track, named as mastodon-meter named it."""

    instance: StrictStr = Field(
        min_length=1,
        max_length=2000,
        description="The account's server: https://host, host, or host:port.",
        examples=["https://mastodon.social"],
    )
    username: StrictStr = Field(
        min_length=1,
        max_length=400,
        description="The account's user name on that server (a leading @ is ignored).",
        examples=["example"],
    )
    instance_id: StrictStr | StrictInt | None = Field(
        default=None,
        description="Optional: the account's id on that server. When given, it must be the id"
        " the server reports for the account, or the request is refused.",
        examples=["000000"],
    )


class RemoveAccountRequest(_Request):
    """An account to stop tracking."""

    account_internal_id: StrictStr | StrictInt = Field(
        description="The id /api/accounts/add answered.", examples=["12"]
    )
    remove_associated_data: StrictBool = Field(
        default=False,
        description="Also delete every metering of the account (cannot be undone); false keeps"
        " them readable through /api/{account_internal_id}/data.",
    )


class ErrorEnvelope(BaseModel):
    """What went wrong; the HTTP status tells the kind."""

    status: Literal[False] = False
    message: str


class OkEnvelope(BaseModel):
    """Done."""

    status: Literal[True] = True
    message: str


class AddAccountResponse(OkEnvelope):
    """The account is tracked."""

    account_internal_id: str = Field(description="fedimeter's id of the account, as a string.")


class TrackedAccount(BaseModel):
    """One tracked account."""

    internal_id: str = Field(examples=["12"])
    username: str = Field(examples=["example"])
    instance: str = Field(
        description="Base URL of the account's home server.", examples=["https://mastodon.social"]
    )
    instance_id: str = Field(description="The account's id on its home server.")
    added_on: str = _TIMESTAMP


class TrackedAccountsResponse(OkEnvelope):
    """Every tracked account, in the order they were added."""

    tracked_accounts: list[TrackedAccount]


class Metering(BaseModel):
    """One measurement of an account."""

    toot_count: int
    subscribers_count: int
    metering_id: str = Field(
        description="<account id>-<unix time of the sample in microseconds>: stable.",
        examples=["12-1609502400000000"],
    )
    timestamp: str = _TIMESTAMP


class RawDataResponse(OkEnvelope):
    """An account's meterings in the period asked, oldest first."""

    account_internal_id: str
    data: list[Metering]


class ReportResponse(OkEnvelope):
    """mastodon-meter's plain-text summary report."""

    report: str = Field(
        examples=[
            (
                "Mastodon-meter summary report generated on 2021.09.01 09:00 UTC\n\n"
                "example@mastodon.social: 102 subscribers, 2000 (+2) statuses"
            )
        ]
    )
