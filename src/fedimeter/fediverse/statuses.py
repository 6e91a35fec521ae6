"""Read an account's recent public statuses: its timeline, newest first, back to a moment.

``GET /api/v1/accounts/:id/statuses?limit=40`` gives the newest 40 (Mastodon's most); the
``Link`` header's ``rel="next"`` URL (``max_id`` = the oldest shown) gives the 40 before. The
first page carries no paging parameter, so only the pages after it meet Mastodon's paging
throttle (the client paces those by its own budget: ``paging.py``). Paging stops at the first
page that reaches past the moment asked for, at a short page (no ``next``), or after
``max_pages``: ``n`` statuses since the moment cost ``n // 40 + 1`` requests at most.

Statuses are parsed strictly enough for the figures (ids, times and counts must be what the
API documents; a bad one fails the reading with ``BadResponse``) and leniently where only the
reports care (a missing URL or text stays empty).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from fedimeter.domain.engagement import SeenStatus, plain_excerpt, safe_url, status_kind
from fedimeter.errors import AccountNotFound, BadResponse
from fedimeter.fediverse.paging import is_paging
from fedimeter.fediverse.parse import MAX_COUNT
from fedimeter.fediverse.times import parse_timestamp

if TYPE_CHECKING:
    from datetime import datetime

    from fedimeter.domain.models import InstanceAddress
    from fedimeter.fediverse.http import Fetcher, Reply

__all__ = ["PAGE_LIMIT", "StatusesRead", "next_link", "parse_statuses", "read_statuses"]

#: Statuses asked for per page: Mastodon's most.
PAGE_LIMIT = 40
_GONE = frozenset({404, 410})
_MAX_ID_LENGTH = 200
_MAX_VISIBILITY = 20
# One link of a Link header: <URL> followed by its parameters.
_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_REL = re.compile(r"""(?:^|;)\s*rel\s*=\s*"?([^";,]*)"?""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class StatusesRead:
    """What one reading of a timeline found, and what it cost."""

    #: The statuses posted at or after the moment asked for, newest first.
    statuses: tuple[SeenStatus, ...]
    #: Requests sent for it (pages asked; a page retried after a failure counts once), and
    #: of those, the ones that paged (all but the first, when the server pages by id).
    requests: int
    paging_requests: int
    #: Every status from this moment on was seen: the moment asked for, unless ``max_pages``
    #: cut the reading short (then the oldest status seen).
    covered_since: datetime
    #: Whether ``max_pages`` cut the reading short.
    capped: bool = False


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, or None."""
    if not header:
        return None
    for match in _LINK.finditer(header):
        rels = _REL.search(match.group(2))
        if rels is not None and "next" in rels.group(1).lower().split():
            return match.group(1).strip() or None
    return None


async def read_statuses(
    fetcher: Fetcher,
    address: InstanceAddress,
    remote_id: str,
    *,
    since: datetime,
    max_pages: int,
) -> StatusesRead:
    """The account's statuses posted at or after ``since``, newest first, page by page.

    Raises:
        AccountNotFound: 404 or 410: the server has no such account (any more).
        BadResponse: another answer that is not 2xx, a status that cannot be read, or a next
            page on another server or path.
        AddressRefused, AccessDenied, RateLimited, RemoteUnavailable, Halted: as
            ``Fetcher.get_json``.
    """
    path = f"/api/v1/accounts/{quote(remote_id, safe='')}/statuses"
    url = f"{address.base_url}{path}?limit={PAGE_LIMIT}"
    found: list[SeenStatus] = []
    requests = paging = 0
    oldest = since
    while True:
        reply = await fetcher.get_json(url)
        requests += 1
        paging += is_paging(url.encode("utf-8", "replace"))
        _check(reply, path)
        page = parse_statuses(reply.data, own_id=remote_id, host=reply.host)
        found += [status for status in page if status.created_at >= since]
        if not page:
            break
        oldest = min(status.created_at for status in page)
        if oldest < since:
            break
        following = next_link(reply.link)
        if following is None:
            break
        if requests >= max_pages:
            return StatusesRead(tuple(found), requests, paging, covered_since=oldest, capped=True)
        url = _same_place(following, reply, path)
    return StatusesRead(tuple(found), requests, paging, covered_since=since)


def _check(reply: Reply, path: str) -> None:
    if reply.ok:
        return
    asked = f"{reply.host} answered {reply.describe()} for {path}"
    if reply.status in _GONE:
        raise AccountNotFound(f"{asked}: the account is not there (any more)")
    error = f" ({reply.error_text})" if reply.error_text else ""
    raise BadResponse(f"{asked}{error}")


def _same_place(link: str, reply: Reply, path: str) -> str:
    """The next page's URL, when it stays on the same server and path.

    A server must not send us elsewhere: the guard would refuse a private address, but not
    another public server.

    Raises:
        BadResponse: it points elsewhere, or is not a URL.
    """
    current = reply.target
    try:
        parts = urlsplit(link)
        port = parts.port
    except ValueError:
        raise BadResponse(f"{current.authority} sent a next page that is not a URL") from None
    same = (
        parts.scheme == current.scheme
        and (parts.hostname or "").lower() == current.host.lower()
        and (port or {"http": 80, "https": 443}.get(parts.scheme)) == current.port
        and parts.path == path
    )
    if not same:
        raise BadResponse(
            f"{current.authority} sent a next page elsewhere ({link[:200]!r}), not on {path}"
        )
    return link


def parse_statuses(data: object, *, own_id: str, host: str) -> list[SeenStatus]:
    """A page of an account's timeline (the account whose id is ``own_id``).

    Raises:
        BadResponse: not a list, or a status without a usable id, time or counts.
    """
    if not isinstance(data, list):
        raise BadResponse(f"{host} answered the statuses call with {_kind(data)}, not a list")
    return [_status(entry, own_id, host) for entry in data]


def _status(entry: object, own_id: str, host: str) -> SeenStatus:
    if not isinstance(entry, dict):
        raise BadResponse(f"{host} sent {_kind(entry)} where a status belongs")
    status_id = _id(entry.get("id"), "id", host)
    created = entry.get("created_at")
    created_at = parse_timestamp(created) if isinstance(created, str) else None
    if created_at is None:
        raise BadResponse(f"{host} sent status {status_id} with created_at = {created!r}")
    reblog = entry.get("reblog")
    if reblog is not None and not isinstance(reblog, dict):
        raise BadResponse(f"{host} sent status {status_id} with reblog = {_kind(reblog)}")
    reply_to = _optional_id(entry.get("in_reply_to_id"), "in_reply_to_id", host)
    reply_to_account = _optional_id(
        entry.get("in_reply_to_account_id"), "in_reply_to_account_id", host
    )
    shown = reblog if reblog is not None else entry
    url = safe_url(shown.get("url")) or safe_url(shown.get("uri"))
    content, spoiler = shown.get("content"), shown.get("spoiler_text")
    visibility = entry.get("visibility")
    return SeenStatus(
        id=status_id,
        created_at=created_at,
        kind=status_kind(
            boost=reblog is not None, in_reply_to_account_id=reply_to_account, own_id=own_id
        ),
        favourites=_count(entry, "favourites_count", status_id, host),
        reblogs=_count(entry, "reblogs_count", status_id, host),
        replies=_count(entry, "replies_count", status_id, host),
        in_reply_to_id=None if reblog is not None else reply_to,
        url=url,
        excerpt=plain_excerpt(
            content if isinstance(content, str) else "",
            spoiler if isinstance(spoiler, str) else "",
        ),
        visibility=visibility
        if isinstance(visibility, str) and 0 < len(visibility) <= _MAX_VISIBILITY
        else "public",
    )


def _id(value: object, name: str, host: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID_LENGTH and value.isprintable():
        return value
    raise BadResponse(f"{host} sent a status with {name} = {value!r}, not a usable id")


def _optional_id(value: object, name: str, host: str) -> str | None:
    return None if value is None else _id(value, name, host)


def _count(entry: dict[str, object], name: str, status_id: str, host: str) -> int:
    value = entry.get(name, 0)
    if value is None:
        return 0
    # bool is an int in Python, but `true` is not a count.
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_COUNT:
        raise BadResponse(f"{host} sent status {status_id} with {name} = {value!r}, not a count")
    return value


def _kind(data: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if data is None:
        return "null"
    return names.get(type(data), "a number")
