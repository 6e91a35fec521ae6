"""Turn the JSON servers send into domain values, strictly. Pure: no I/O.

Every function raises ``BadResponse`` (never ``KeyError``/``TypeError``) when the JSON does
not have the shape and values the Mastodon API documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fedimeter.domain.handles import parse_account_ref, parse_authority
from fedimeter.domain.models import AccountSnapshot, Handle, InstanceAddress
from fedimeter.errors import BadResponse, InvalidHandle
from fedimeter.fediverse.times import parse_day

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import date

__all__ = [
    "MAX_COUNT",
    "Lookup",
    "WebFinger",
    "account_id",
    "parse_account",
    "parse_account_list",
    "parse_lookup",
    "parse_nodeinfo",
    "parse_webfinger",
    "pick_nodeinfo_link",
]

#: Counts above this are not real (the largest accounts have a few million followers).
MAX_COUNT = 10**12
_MAX_ID_LENGTH = 200

_NODEINFO_REL = re.compile(r"https?://nodeinfo\.diaspora\.software/ns/schema/(\d+)\.(\d+)/?")
_PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
_ACTIVITY_TYPES = ("application/activity+json", "application/ld+json")


@dataclass(frozen=True, slots=True)
class Lookup:
    """What ``/api/v1/accounts/lookup`` told about an account."""

    remote_id: str
    username: str
    display_name: str
    url: str


@dataclass(frozen=True, slots=True)
class WebFinger:
    """What a WebFinger answer told: the canonical handle and where the account is served."""

    subject: Handle | None
    home: InstanceAddress | None


def account_id(data: object, *, host: str) -> str:
    """The ``id`` of an account object; ids are opaque text, numbers are accepted as text.

    Raises:
        BadResponse: no usable id.
    """
    value = _field(data, "id", host)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= _MAX_ID_LENGTH and value.isprintable():
        return value
    raise BadResponse(f"{host} sent an account without a usable id ({value!r})")


def parse_account(data: object, *, asked: str, host: str) -> AccountSnapshot:
    """An account object as a snapshot; its ``id`` must be the one we asked for.

    A ``moved`` account's target is given as ``user@domain``; a target local to ``host`` (an
    ``acct`` without a domain) gets ``host`` as its domain, which WebFinger resolves.

    Raises:
        BadResponse: wrong types, negative or absurd counts, a bad date, or another id.
    """
    got = account_id(data, host=host)
    if got != asked:
        raise BadResponse(f"{host} answered with account {got!r} when asked for {asked!r}")
    return AccountSnapshot(
        remote_id=got,
        followers=_count(data, "followers_count", host),
        following=_count(data, "following_count", host),
        statuses=_count(data, "statuses_count", host),
        last_status_at=_last_status(data, host),
        suspended=_flag(data, "suspended", host),
        moved_to=_moved_to(data, host),
    )


def parse_account_list(
    data: object, *, asked: Collection[str], host: str
) -> dict[str, AccountSnapshot | BadResponse]:
    """The answer of the batch call, by id, for the ids we asked for.

    Entries for ids we did not ask for, and entries without an id, are ignored; an asked-for
    entry with bad values gives a ``BadResponse`` for that id alone.

    Raises:
        BadResponse: the answer is not a list.
    """
    if not isinstance(data, list):
        raise BadResponse(f"{host} answered the accounts call with {_kind(data)}, not a list")
    found: dict[str, AccountSnapshot | BadResponse] = {}
    for entry in data:
        try:
            remote_id = account_id(entry, host=host)
        except BadResponse:
            continue
        if remote_id not in asked or isinstance(found.get(remote_id), AccountSnapshot):
            continue
        try:
            found[remote_id] = parse_account(entry, asked=remote_id, host=host)
        except BadResponse as exc:
            found[remote_id] = exc
    return found


def parse_lookup(data: object, *, host: str) -> Lookup:
    """The answer of ``/api/v1/accounts/lookup``.

    Raises:
        BadResponse: no id or user name.
    """
    username = _field(data, "username", host)
    if not isinstance(username, str) or not username:
        raise BadResponse(f"{host} sent an account without a user name")
    display_name = _optional_str(data, "display_name")
    return Lookup(
        remote_id=account_id(data, host=host),
        username=username,
        display_name=display_name,
        url=_optional_str(data, "url"),
    )


def parse_webfinger(data: object, *, host: str) -> WebFinger:
    """A WebFinger (JRD) answer: the ``acct:`` subject (or alias) and the home server.

    The home is the host of the ActivityPub ``self`` link, else of the profile page link.
    Links that are not http(s) URLs are ignored.

    Raises:
        BadResponse: the answer is not a JRD object.
    """
    if not isinstance(data, dict):
        raise BadResponse(f"{host} answered WebFinger with {_kind(data)}, not an object")
    candidates = [data.get("subject")]
    aliases = data.get("aliases")
    if isinstance(aliases, list):
        candidates.extend(aliases)
    subject = next(
        (handle for value in candidates if (handle := _acct_handle(value)) is not None), None
    )
    links = data.get("links")
    link_list = (
        [link for link in links if isinstance(link, dict)] if isinstance(links, list) else []
    )
    self_links = [
        link
        for link in link_list
        if link.get("rel") == "self"
        and isinstance(link.get("type"), str)
        and link["type"].startswith(_ACTIVITY_TYPES)
    ]
    profile_links = [link for link in link_list if link.get("rel") == _PROFILE_PAGE_REL]
    home = next(
        (
            address
            for link in [*self_links, *profile_links]
            if (address := _address_of(link.get("href"))) is not None
        ),
        None,
    )
    return WebFinger(subject=subject, home=home)


def pick_nodeinfo_link(data: object, *, host: str) -> str | None:
    """The ``href`` of the highest NodeInfo 2.x schema in a ``/.well-known/nodeinfo`` answer.

    Returns:
        The URL (maybe relative), or ``None`` when no 2.x link is offered.

    Raises:
        BadResponse: the answer is not a JRD object.
    """
    if not isinstance(data, dict):
        raise BadResponse(f"{host} answered NodeInfo discovery with {_kind(data)}")
    links = data.get("links")
    best: tuple[int, str] | None = None
    for link in links if isinstance(links, list) else []:
        if not isinstance(link, dict):
            continue
        rel, href = link.get("rel"), link.get("href")
        match = _NODEINFO_REL.fullmatch(rel) if isinstance(rel, str) else None
        if match is None or not isinstance(href, str) or not href.strip():
            continue
        major, minor = int(match.group(1)), int(match.group(2))
        if major == 2 and (best is None or minor > best[0]):  # noqa: PLR2004 - NodeInfo 2.x
            best = (minor, href.strip())
    return None if best is None else best[1]


def parse_nodeinfo(data: object, *, host: str) -> tuple[str | None, str | None]:
    """Software name (lower case) and version from a NodeInfo document.

    Returns:
        ``(name, version)``, each ``None`` when missing.

    Raises:
        BadResponse: the document is not an object.
    """
    if not isinstance(data, dict):
        raise BadResponse(f"{host} answered NodeInfo with {_kind(data)}, not an object")
    software = data.get("software")
    if not isinstance(software, dict):
        return None, None
    name, version = software.get("name"), software.get("version")
    return (
        name.strip().lower() if isinstance(name, str) and name.strip() else None,
        version.strip() if isinstance(version, str) and version.strip() else None,
    )


def _field(data: object, name: str, host: str) -> object:
    if not isinstance(data, dict):
        raise BadResponse(f"{host} sent {_kind(data)} where an account object belongs")
    if name not in data:
        raise BadResponse(f"{host} sent an account without {name}")
    return data[name]


def _count(data: object, name: str, host: str) -> int:
    value = _field(data, name, host)
    # bool is an int in Python, but `true` is not a count.
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadResponse(f"{host} sent {name} = {value!r}, not a whole number")
    if not 0 <= value <= MAX_COUNT:
        raise BadResponse(f"{host} sent {name} = {value}, which cannot be a real count")
    return value


def _flag(data: object, name: str, host: str) -> bool:
    if not isinstance(data, dict):  # pragma: no cover - _field checked already
        return False
    value = data.get(name)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadResponse(f"{host} sent {name} = {value!r}, not true or false")
    return value


def _last_status(data: object, host: str) -> date | None:
    if not isinstance(data, dict):  # pragma: no cover - _field checked already
        return None
    value = data.get("last_status_at")
    if value is None:
        return None
    day = parse_day(value) if isinstance(value, str) else None
    if day is None:
        raise BadResponse(f"{host} sent last_status_at = {value!r}, neither a date nor a time")
    return day


def _moved_to(data: object, host: str) -> str | None:
    if not isinstance(data, dict):  # pragma: no cover - _field checked already
        return None
    moved = data.get("moved")
    if moved is None or moved is False:
        return None
    if not isinstance(moved, dict):
        raise BadResponse(f"{host} sent moved = {moved!r}, not an account")
    acct = moved.get("acct")
    if not isinstance(acct, str) or not acct.strip("@"):
        raise BadResponse(f"{host} sent a moved account without acct")
    acct = acct.strip().removeprefix("@")
    return acct if "@" in acct else f"{acct}@{host}"


def _optional_str(data: object, name: str) -> str:
    value = data.get(name) if isinstance(data, dict) else None
    return value if isinstance(value, str) else ""


def _acct_handle(value: object) -> Handle | None:
    if not isinstance(value, str) or not value.lower().startswith("acct:"):
        return None
    try:
        return parse_account_ref(value).handle
    except InvalidHandle:
        return None


def _address_of(href: object) -> InstanceAddress | None:
    if not isinstance(href, str):
        return None
    try:
        parts = urlsplit(href.strip())
        return parse_authority(f"{parts.scheme}://{parts.netloc}") if parts.netloc else None
    except (ValueError, InvalidHandle):
        return None


def _kind(data: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if data is None:
        return "null"
    return names.get(type(data), "a number")
