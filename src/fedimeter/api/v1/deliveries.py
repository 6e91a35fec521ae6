"""``/api/v1/deliveries``: deliver a report now (Mastodon, webhook, e-mail), and the log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from fedimeter.api.deps import ReadAccess, ServicesDep, WriteAccess
from fedimeter.api.schemas import MAX_ID, READ_ERRORS, WRITE_ERRORS, ErrorBody
from fedimeter.delivery import Outcome, selection_key
from fedimeter.errors import ConfigError, InvalidInput
from fedimeter.reporting import make_report, report_period
from fedimeter.storage.deliveries import DeliveryLog, DeliveryRecord

router = APIRouter(prefix="/deliveries", tags=["deliveries"], responses=READ_ERRORS)

ChannelName = Literal["mastodon", "webhook", "email"]


class DeliveryCreate(BaseModel):
    """A report to deliver now: its period, accounts and order, and the channels."""

    model_config = ConfigDict(extra="forbid")

    channels: list[ChannelName] = Field(
        min_length=1, description="Where to: mastodon, webhook, email (each configured)."
    )
    period: str | None = Field(default=None, description="1d, 7d, 30d... ending at until.")
    since: str | None = Field(default=None, description="Start: a date, datetime or age.")
    until: str | None = Field(default=None, description="End (default now).")
    account_id: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=10_000, description="Accounts to report on; default all."
    )
    sort: Literal["growth", "followers", "name"] = "growth"
    top: int | None = Field(default=None, ge=1, le=100_000)
    silent_days: int = Field(default=30, ge=0, le=36_500)


class OutcomePublic(BaseModel):
    """What happened on one channel."""

    channel: ChannelName
    destination: str = Field(description="A host, or the recipients.")
    status: Literal["delivered", "skipped", "failed"]
    detail: str
    url: str | None = Field(description="The first post of a Mastodon thread.")

    @classmethod
    def of(cls, outcome: Outcome) -> OutcomePublic:
        """From the service's outcome."""
        return cls(
            channel=outcome.channel,
            destination=outcome.destination,
            status=outcome.status,
            detail=outcome.detail,
            url=outcome.url,
        )


class DeliveryResult(BaseModel):
    """Every channel's outcome; ``delivered`` is true when none failed."""

    delivered: bool
    outcomes: list[OutcomePublic]


class DeliveryPublic(BaseModel):
    """One entry of the delivery log."""

    id: int
    channel: str
    destination: str
    since: datetime
    until: datetime
    status: Literal["sending", "delivered", "failed"]
    attempts: int
    posts: int | None = Field(description="Posts in the thread (Mastodon), else null.")
    posts_sent: int | None
    url: str | None
    error: str | None
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, record: DeliveryRecord) -> DeliveryPublic:
        """From the stored record."""
        threaded = record.parts is not None
        return cls(
            id=record.id,
            channel=record.channel,
            destination=record.destination_label,
            since=record.period_start,
            until=record.period_end,
            status=record.status,
            attempts=record.attempts,
            posts=len(record.parts) if record.parts is not None else None,
            posts_sent=record.parts_sent if threaded else None,
            url=record.url,
            error=record.error,
            created_at=record.created_at,
            delivered_at=record.delivered_at,
        )


@router.post(
    "",
    dependencies=[WriteAccess],
    responses={
        **WRITE_ERRORS,
        404: {"model": ErrorBody, "description": "An account id that is not tracked."},
        422: {"model": ErrorBody, "description": "A bad period, or a channel not configured."},
    },
)
async def deliver_report(body: DeliveryCreate, services: ServicesDep) -> DeliveryResult:
    """Build the report and deliver it by each channel, once per period and place.

    A report delivered already for the same period (UTC days) and accounts is skipped; a
    channel that fails does not stop the others. Every outcome is in the answer.
    """
    try:
        services.deliverer.check(body.channels)
    except ConfigError as exc:
        raise InvalidInput(str(exc)) from None
    now = services.clock()
    start, end = report_period(now, body.period, body.since, body.until)
    accounts = None
    if body.account_id:
        accounts = [await services.repo.get_account(i) for i in dict.fromkeys(body.account_id)]
    report = await make_report(
        services.repo,
        since=start,
        until=end,
        now=now,
        accounts=accounts,
        sort=body.sort,
        top=body.top,
        silent_after_days=body.silent_days,
    )
    selection = selection_key(None if accounts is None else [a.handle.acct for a in accounts])
    outcomes = await services.deliverer.deliver(report, body.channels, selection=selection)
    return DeliveryResult(
        delivered=all(o.status != "failed" for o in outcomes),
        outcomes=[OutcomePublic.of(o) for o in outcomes],
    )


@router.get("", dependencies=[ReadAccess])
async def list_deliveries(
    services: ServicesDep, limit: Annotated[int, Query(ge=1, le=500)] = 20
) -> list[DeliveryPublic]:
    """The most recent deliveries, newest first, with what failed."""
    return [DeliveryPublic.of(r) for r in await DeliveryLog(services.db).recent(limit)]
