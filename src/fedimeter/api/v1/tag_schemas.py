"""Request and response bodies of ``/api/v1/tags`` and ``/api/v1/instances/{id}/trends``."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from fedimeter.api.schemas import ErrorBody
from fedimeter.domain.tags import MAX_TAG_LENGTH
from fedimeter.storage.tags import TagDayRecord, TagRecord

if TYPE_CHECKING:
    from pydantic.config import JsonDict

__all__ = [
    "MAX_HOSTS",
    "TagAddError",
    "TagAddResult",
    "TagCreate",
    "TagDayPublic",
    "TagHistoryPublic",
    "TagOutcomePublic",
    "TagPublic",
    "TrendListPublic",
    "TrendTagPublic",
    "TrendsPublic",
]

#: Instances one request may track a tag on (each costs a request to that server).
MAX_HOSTS = 50

_TAG_EXAMPLE: JsonDict = {
    "id": 1,
    "name": "Caturday",
    "key": "caturday",
    "host": "mastodon.social",
    "instance_id": 3,
    "base_url": "https://mastodon.social",
    "url": "https://mastodon.social/tags/caturday",
    "added_at": "2026-03-01T09:00:00Z",
    "checked_at": "2026-03-09T03:00:12Z",
    "consecutive_failures": 0,
    "last_error": None,
    "last_error_code": None,
    "last_error_at": None,
    "last_complete_day": {"day": "2026-03-08", "uses": 1532, "accounts": 611, "complete": True},
    "day_in_progress": {"day": "2026-03-09", "uses": 96, "accounts": 54, "complete": False},
}


class TagCreate(BaseModel):
    """A hashtag to track on one or more instances."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=MAX_TAG_LENGTH + 2,
        description="The hashtag, with or without #.",
        examples=["Caturday"],
    )
    hosts: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        min_length=1,
        max_length=MAX_HOSTS,
        description="The instances to track it on: host, host:port or https://host. A server"
        " counts only the posts it has seen, so a tag is tracked on each instance apart.",
        examples=[["mastodon.social", "fosstodon.org"]],
    )


class TagDayPublic(BaseModel):
    """One UTC day of a tag on its instance; ``complete`` is false for the day in progress."""

    day: date
    uses: int = Field(description="Posts that used the tag that day (so far, if incomplete).")
    accounts: int = Field(description="Accounts that used it that day.")
    complete: bool

    @classmethod
    def of(cls, day: TagDayRecord) -> TagDayPublic:
        """From the stored day."""
        return cls(day=day.day, uses=day.uses, accounts=day.accounts, complete=day.complete)


class TagPublic(BaseModel):
    """A hashtag tracked on one instance, with its newest complete day and its day so far."""

    model_config = ConfigDict(json_schema_extra={"examples": [_TAG_EXAMPLE]})

    id: int
    name: str = Field(description="As the server spells it (as typed until it answered).")
    key: str = Field(description="What the name compares by: lower case, accents folded.")
    host: str = Field(description="The instance it is tracked on.")
    instance_id: int = Field(description="That instance's id (its trends: /instances/{id}/trends).")
    base_url: str
    url: str | None = Field(description="The tag's page on the instance, as the server says.")
    added_at: datetime
    checked_at: datetime | None = Field(description="When the server last answered about it.")
    consecutive_failures: int = Field(description="Reads that failed in a row (0: answering).")
    last_error: str | None
    last_error_code: str | None
    last_error_at: datetime | None
    last_complete_day: TagDayPublic | None = Field(description="The newest complete day.")
    day_in_progress: TagDayPublic | None = Field(
        description="The server's newest day when it last answered, still counting then:"
        " its figures are partial."
    )

    @classmethod
    def of(cls, tag: TagRecord, done: TagDayRecord | None, going: TagDayRecord | None) -> TagPublic:
        """From the stored tag and its newest days."""
        return cls(
            id=tag.id,
            name=tag.name,
            key=tag.key,
            host=tag.host,
            instance_id=tag.instance_id,
            base_url=tag.base_url,
            url=tag.url,
            added_at=tag.added_at,
            checked_at=tag.checked_at,
            consecutive_failures=tag.consecutive_failures,
            last_error=tag.last_error,
            last_error_code=tag.last_error_code,
            last_error_at=tag.last_error_at,
            last_complete_day=None if done is None else TagDayPublic.of(done),
            day_in_progress=None if going is None else TagDayPublic.of(going),
        )


class TagOutcomePublic(BaseModel):
    """What happened on one instance given to ``POST /api/v1/tags``."""

    host: str
    status: Literal["added", "already", "failed"]
    tag: TagPublic | None = Field(description="The tag tracked there, when added.")
    days: int = Field(description="Days stored from the first answer.")
    detail: str | None = Field(description="Why it was not added.")
    code: str | None = Field(description="The error's machine code, as in error bodies.")


class TagAddResult(BaseModel):
    """Every instance's outcome; ``added`` counts those where the tag is now tracked."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Caturday",
                    "added": 1,
                    "outcomes": [
                        {
                            "host": "mastodon.social",
                            "status": "added",
                            "tag": _TAG_EXAMPLE,
                            "days": 7,
                            "detail": None,
                            "code": None,
                        },
                        {
                            "host": "old.example",
                            "status": "failed",
                            "tag": None,
                            "days": 0,
                            "detail": "old.example answered 404 Not Found for /api/v1/tags/"
                            "Caturday: no hashtag API there (Mastodon has one since 4.0)",
                            "code": "endpoint_missing",
                        },
                    ],
                }
            ]
        }
    )

    name: str
    added: int
    outcomes: list[TagOutcomePublic]


class TagAddError(ErrorBody):
    """Nothing was added: the worst reason, and every instance's outcome."""

    outcomes: list[TagOutcomePublic] = Field(default_factory=list)


class TagHistoryPublic(BaseModel):
    """A tag's recorded days in a period, oldest first; a day never recorded is absent."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tag_id": 1,
                    "name": "Caturday",
                    "host": "mastodon.social",
                    "since": "2026-03-07",
                    "until": "2026-03-09",
                    "days": [
                        {"day": "2026-03-07", "uses": 2210, "accounts": 903, "complete": True},
                        {"day": "2026-03-08", "uses": 1532, "accounts": 611, "complete": True},
                        {"day": "2026-03-09", "uses": 96, "accounts": 54, "complete": False},
                    ],
                }
            ]
        }
    )

    tag_id: int
    name: str
    host: str
    since: date | None
    until: date | None
    days: list[TagDayPublic]


class TrendTagPublic(BaseModel):
    """One tag of a trending list, with its use on the server's newest day."""

    rank: int
    name: str = Field(description="As the server spells it.")
    day: date
    uses: int
    accounts: int


class TrendListPublic(BaseModel):
    """An instance's trending tags as one round saw them, in order."""

    taken_at: datetime
    tags: list[TrendTagPublic]


class TrendsPublic(BaseModel):
    """An instance's recorded trending lists, newest first."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "instance_id": 3,
                    "host": "mastodon.social",
                    "recording": True,
                    "lists": [
                        {
                            "taken_at": "2026-03-09T03:00:05Z",
                            "tags": [
                                {
                                    "rank": 1,
                                    "name": "Caturday",
                                    "day": "2026-03-09",
                                    "uses": 96,
                                    "accounts": 54,
                                }
                            ],
                        }
                    ],
                }
            ]
        }
    )

    instance_id: int
    host: str
    recording: bool = Field(description="Whether each round still records them.")
    checked_at: datetime | None = Field(
        default=None,
        description="When they were last read, an empty answer (trends turned off, or nothing"
        " trending) included; later than the newest list's taken_at when the server has"
        " answered [] since. Null when not known (read before fedimeter 0.1).",
    )
    lists: list[TrendListPublic]


class TrendsCreate(BaseModel):
    """An instance whose trending hashtags to record each round."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        min_length=1,
        max_length=300,
        description="host, host:port or https://host",
        examples=["mastodon.social"],
    )


class TrendsRecorded(BaseModel):
    """An instance whose trending hashtags are recorded, with its newest list."""

    instance_id: int
    host: str
    latest: TrendListPublic | None = Field(description="The newest list; null before any.")
    checked_at: datetime | None = Field(
        default=None,
        description="When the trends were last read, an empty answer included: later than"
        " latest.taken_at when the server has answered an empty list since.",
    )
