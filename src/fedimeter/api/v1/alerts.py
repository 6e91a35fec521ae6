"""``/api/v1/alerts``: the alerts that fired, newest first, with their delivery by channel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from fedimeter.api.deps import ReadAccess, ServicesDep
from fedimeter.api.schemas import MAX_ID, READ_ERRORS
from fedimeter.storage.alerts import AlertDeliveryRecord, AlertRecord, AlertStore

router = APIRouter(prefix="/alerts", tags=["alerts"], responses=READ_ERRORS)


class AlertDeliveryPublic(BaseModel):
    """One alert's delivery by one channel."""

    channel: Literal["mastodon", "webhook", "email"]
    status: Literal["pending", "sending", "delivered", "failed"]
    attempts: int
    destination: str | None = Field(description="A host, or the recipients; null before sending.")
    url: str | None = Field(description="The Mastodon post that carried it.")
    error: str | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, record: AlertDeliveryRecord) -> AlertDeliveryPublic:
        """From the stored record."""
        return cls.model_validate(
            {
                "channel": record.channel,
                "status": record.status,
                "attempts": record.attempts,
                "destination": record.destination,
                "url": record.url,
                "error": record.error,
                "delivered_at": record.delivered_at,
            }
        )


class AlertPublic(BaseModel):
    """An alert that fired: one occurrence of a rule on an account or instance."""

    id: int
    rule: str = Field(description="The rule's name (see docs/alerts.md).")
    kind: Literal["drop", "rise", "failing", "milestone"]
    subject: str = Field(
        description="account:user@host, instance:host, or tag:name@host.",
        examples=["account:alice@example.social"],
    )
    subject_label: str = Field(description="@user@host, the host, or #Name on host.")
    occurrence: str = Field(
        description="What makes it one occurrence: the day of a drop or rise, the start of a"
        " failing streak, the milestone's value."
    )
    text: str = Field(description="One line for people.")
    details: dict[str, str | int | float | bool | None] = Field(
        description="The figures behind the text (before, after, percent, since...)."
    )
    fired_at: datetime
    deliveries: list[AlertDeliveryPublic]

    @classmethod
    def of(cls, record: AlertRecord) -> AlertPublic:
        """From the stored record."""
        return cls.model_validate(
            {
                "id": record.id,
                "rule": record.rule,
                "kind": record.kind,
                "subject": record.subject,
                "subject_label": record.subject_label,
                "occurrence": record.occurrence,
                "text": record.text,
                "details": dict(record.details),
                "fired_at": record.fired_at,
                "deliveries": [AlertDeliveryPublic.of(d) for d in record.deliveries],
            }
        )


class AlertPage(BaseModel):
    """One page of alerts, newest first."""

    items: list[AlertPublic]
    total: int
    limit: int
    offset: int


@router.get("", dependencies=[ReadAccess])
async def list_alerts(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 20,
    offset: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> AlertPage:
    """The alerts that fired, newest first, one page at a time, with their delivery state."""
    store = AlertStore(services.db)
    return AlertPage(
        items=[AlertPublic.of(a) for a in await store.recent(limit, offset)],
        total=await store.count(),
        limit=limit,
        offset=offset,
    )
