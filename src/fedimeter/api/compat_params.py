"""Reading what mastodon-meter's clients send: ids, periods, account lists, handles.

Its documentation puts ``since``, ``to`` and ``accounts`` in a JSON body even on GET requests;
these helpers accept them there and in the query string (the query wins).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from fedimeter.api.schemas import MAX_ID
from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.mmreport import Counts
from fedimeter.domain.models import InstanceAddress
from fedimeter.domain.when import parse_when
from fedimeter.errors import InvalidHandle, InvalidInput, NotTracked

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fastapi import Request

    from fedimeter.storage.records import AccountRecord, SampleRecord
    from fedimeter.storage.repository import Repository

#: Largest JSON body read on a GET request.
MAX_GET_BODY: Final = 64 * 1024
#: Values of since/to meaning "no bound", besides JSON null and an absent parameter.
NO_BOUND: Final = frozenset({"", "null", "none"})
ONE_MICROSECOND: Final = timedelta(microseconds=1)
#: Accounts whose latest sample is this close to the newest have their previous samples read
#: together for the report (see ``previous_samples``).
BATCH_WINDOW: Final = timedelta(days=3)


def parse_internal_id(value: str | int) -> int:
    """The fedimeter account id in what a script sent.

    Raises:
        NotTracked: not a whole number an account could have (mastodon-meter's own ids were
            32 hexadecimal digits: they name no fedimeter account).
    """
    text = str(value).strip()
    if text.isascii() and text.isdigit() and len(text) <= len(str(MAX_ID)):
        number = int(text)
        if 1 <= number <= MAX_ID:
            return number
    raise NotTracked(
        f"no account with internal id {str(value)[:100]!r}: fedimeter's internal ids are"
        " whole numbers such as '12' (see /api/accounts/tracked)"
    )


async def find_account(repo: Repository, value: str | int) -> AccountRecord:
    """The account an internal id names, in any state.

    Raises:
        NotTracked: no such account.
    """
    number = parse_internal_id(value)
    try:
        return await repo.get_account(number)
    except NotTracked:
        raise NotTracked(f"no account with internal id '{number}'") from None


async def read_body_params(request: Request) -> dict[str, Any]:
    """The JSON object sent as the body of a GET request; empty when there is none.

    Raises:
        InvalidInput: the body is not JSON, not an object, or too large.
    """
    raw = bytearray()
    async for chunk in request.stream():  # stop reading at the limit: no body is kept whole
        raw += chunk
        if len(raw) > MAX_GET_BODY:
            raise InvalidInput(f"the request body is larger than {MAX_GET_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are both
        raise InvalidInput(
            'the request body is not valid JSON: send e.g. {"since": "2021-01-01 12:00",'
            ' "to": null}, or the same as query parameters'
        ) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput(
            f"the request body must be a JSON object, not {type(value).__name__}:"
            ' e.g. {"since": "2021-01-01 12:00", "to": null}'
        )
    return value


def time_param(name: str, query: str | None, body: dict[str, Any]) -> str | None:
    """The text of since or to, from the query (which wins) or the body; None: no bound.

    Raises:
        InvalidInput: the body holds something other than a string or null.
    """
    value: Any = query if query is not None else body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInput(f'{name} must be a string such as "2021-01-01 12:00", or null')
    if value.strip().lower() in NO_BOUND:
        return None
    return value


def parse_moment(
    name: str, text: str | None, now: datetime, *, end_of_day: bool
) -> datetime | None:
    """Parse one bound.

    Raises:
        InvalidInput: not a date, a datetime or an age.
    """
    if text is None:
        return None
    try:
        return parse_when(text, now, end_of_day=end_of_day)
    except (InvalidInput, ValueError, OverflowError):
        raise InvalidInput(
            f"{name} {text[:100]!r} is not a time: use 2021-01-01 12:00, an ISO date or"
            " datetime, or null for no bound"
        ) from None


async def read_period(
    request: Request, since: str | None, to: str | None, now: datetime
) -> tuple[datetime | None, datetime | None]:
    """The period asked, from the query parameters or the JSON body.

    Raises:
        InvalidInput: a bound is not a time, or since is after to.
    """
    body = await read_body_params(request)
    start = parse_moment("since", time_param("since", since, body), now, end_of_day=False)
    end = parse_moment("to", time_param("to", to, body), now, end_of_day=True)
    if start is not None and end is not None and start > end:
        raise InvalidInput("since is after to")
    return start, end


def split_ids(values: Sequence[Any]) -> list[str]:
    """Ids from a list whose items may hold several, separated by commas.

    Raises:
        InvalidInput: an item is neither a string nor a whole number.
    """
    ids: list[str] = []
    for value in values:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidInput('accounts must be a list of internal ids such as ["12", "15"]')
        ids += [part.strip() for part in str(value).split(",") if part.strip()]
    return ids


async def read_report_ids(request: Request, query: list[str] | None) -> list[str] | None:
    """The internal ids asked for the report; None for every tracked account.

    Raises:
        InvalidInput: the body is not JSON, or ``accounts`` is not a list of ids.
    """
    body = await read_body_params(request)
    if query is not None:
        ids = split_ids(query)
        if ids:
            return ids
    value = body.get("accounts")
    if value is None:
        return None
    if isinstance(value, str):
        return split_ids([value])
    if not isinstance(value, list):
        raise InvalidInput('accounts must be a list of internal ids such as ["12", "15"], or null')
    return split_ids(value)


def local_username(text: str, instance: InstanceAddress) -> str:
    """The bare user name; ``name@host`` is accepted when the host is the instance's.

    Raises:
        InvalidInput: the name names an account on another server.
    """
    name = text.strip().removeprefix("@")
    if "@" not in name:
        return name
    try:
        handle = parse_account_ref(name).handle
    except InvalidHandle as exc:
        raise InvalidInput(f"username {text[:100]!r}: {exc}") from None
    if handle.domain != instance.authority:
        raise InvalidInput(
            f"username {text[:100]!r} names an account on {handle.domain}, not on"
            f" {instance.authority}: send the user name alone, and its server as instance"
        )
    return handle.username


def normalise_instance_id(value: str | int | None) -> str | None:
    """The instance_id a script sent, as a string; None when absent or empty."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


async def previous_sample(repo: Repository, latest: SampleRecord) -> SampleRecord | None:
    """The sample taken just before ``latest``, if any."""
    return await repo.sample_at_or_before(latest.account_id, latest.taken_at - ONE_MICROSECOND)


async def previous_samples(
    repo: Repository, latest: Sequence[SampleRecord]
) -> dict[int, SampleRecord | None]:
    """The sample taken just before each of ``latest`` (the newest of every tracked account).

    The accounts measured within ``BATCH_WINDOW`` of the newest of them (every account a
    running schedule measures) are read together, two queries in all: each one's samples since
    the oldest of their latest plus its last before, of which the one before its latest is
    the answer. The others (accounts no longer measured, whose latest may be years old) are
    asked one by one, so they do not make everybody's history be read. The query per account
    of ``previous_sample`` made mastodon-meter's report of 10,000 accounts take 5 s on SQLite;
    this, 0.2 s (bench/api.py).
    """
    if not latest:
        return {}
    newest = max(s.taken_at for s in latest)
    recent = [s for s in latest if s.taken_at >= newest - BATCH_WINDOW]
    found: dict[int, SampleRecord | None] = {}
    since = min(s.taken_at for s in recent)
    # Every account but the untracked: those list_accounts lists, with no id list to send.
    histories = await repo.histories(None, since, newest)
    for sample in recent:
        history = histories.get(sample.account_id, [])
        # Its latest is in the history, at the end unless a round wrote a newer one since.
        at = next(
            (i for i in range(len(history) - 1, -1, -1) if history[i].taken_at == sample.taken_at),
            None,
        )
        if at is not None:
            found[sample.account_id] = history[at - 1] if at > 0 else None
    for sample in latest:
        if sample.account_id not in found:
            found[sample.account_id] = await previous_sample(repo, sample)
    return found


def report_counts(sample: SampleRecord | None) -> Counts | None:
    """The counts a report line shows, from a sample."""
    return None if sample is None else Counts(sample.followers, sample.statuses)


# -- accounts ----------------------------------------------------------------------------------
