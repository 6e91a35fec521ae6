"""Turn the JSON servers send into domain values, strictly. Pure: no I/O.

Every function raises ``BadResponse`` (never ``KeyError``/``TypeError``) when the JSON does
not have the shape and values the Mastodon API documents. The instance parsers read figures
as the server gives them (a negative count included): judging them is
``fedimeter.domain.instances.plausible``'s job; ``null`` or a missing figure is ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fedimeter.domain.handles import parse_account_ref, parse_authority
from fedimeter.domain.instances import WeekActivity
from fedimeter.domain.models import AccountSnapshot, Handle, InstanceAddress
from fedimeter.domain.tags import TagDay, TagReading, TrendingTag
from fedimeter.errors import BadResponse, InvalidHandle
from fedimeter.fediverse.times import parse_day

if TYPE_CHECKING:
    from collections.abc import Collection
    from datetime import date

__all__ = [
    "MAX_COUNT",
    "MAX_TAG_DAYS",
    "InstanceFacts",
    "Lookup",
    "NodeInfoFacts",
    "WebFinger",
    "account_id",
    "parse_account",
    "parse_account_list",
    "parse_activity",
    "parse_instance_v1",
    "parse_instance_v2",
    "parse_lookup",
    "parse_nodeinfo",
    "parse_nodeinfo_facts",
    "parse_peers",
    "parse_tag",
    "parse_trending_tags",
    "parse_webfinger",
    "pick_nodeinfo_link",
    "split_compatible",
]

#: Counts above this are not real (the largest accounts have a few million followers).
MAX_COUNT = 10**12
_MAX_ID_LENGTH = 200
_MAX_TAG_NAME = 200
_SHOWN_LIMIT = 60

_NODEINFO_REL = re.compile(r"https?://nodeinfo\.diaspora\.software/ns/schema/(\d+)\.(\d+)/?")
_PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"
_ACTIVITY_TYPES = ("application/activity+json", "application/ld+json")
# "2.7.2 (compatible; Pleroma 2.6.0)": the Mastodon API level, then the real software.
_COMPATIBLE = re.compile(
    r"\s*[^\s(]*\s*\(compatible;\s*(?P<name>[^()]*?)\s+v?(?P<version>[^\s()]+)\s*\)\s*"
)
# Activity and tag values are decimal strings; kept within a signed 64-bit column.
_DECIMAL = re.compile(r"\d{1,19}")
_DECIMAL_LIMIT = 2**63
_ACTIVITY_FIELDS = ("week", "statuses", "logins", "registrations")
_TAG_DAY_FIELDS = ("day", "uses", "accounts")
#: Days of history accepted in one tag (Mastodon sends 7).
MAX_TAG_DAYS = 31
_DAY_SECONDS = 86_400


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


@dataclass(frozen=True, slots=True)
class NodeInfoFacts:
    """What a NodeInfo 2.x document says; ``None`` where it says nothing."""

    software: str | None = None
    version: str | None = None
    users: int | None = None
    active_month: int | None = None
    active_halfyear: int | None = None
    local_posts: int | None = None
    open_registrations: bool | None = None


@dataclass(frozen=True, slots=True)
class InstanceFacts:
    """What ``/api/v1/instance`` or ``/api/v2/instance`` says; ``None`` where it says nothing.

    ``software`` is known only from a ``"2.7.2 (compatible; Pleroma 2.6.0)"`` version, whose
    ``version`` is then the software's own (``"2.6.0"``).
    """

    software: str | None = None
    version: str | None = None
    users: int | None = None
    statuses: int | None = None
    domains: int | None = None
    active_month: int | None = None
    open_registrations: bool | None = None


def parse_nodeinfo_facts(data: object, *, host: str) -> NodeInfoFacts:
    """Software, user figures, local posts and registrations from a NodeInfo document.

    Misskey's ``activeMonth``/``activeHalfyear`` are ``null``: ``None``, not 0.

    Raises:
        BadResponse: the document is not an object, or a figure is not a whole number.
    """
    name, version = parse_nodeinfo(data, host=host)
    usage = _section(data, "usage", host, "NodeInfo")
    users = _section(usage, "users", host, "NodeInfo usage")
    return NodeInfoFacts(
        software=name,
        version=version,
        users=_figure(users, "total", host, "usage.users.total"),
        active_month=_figure(users, "activeMonth", host, "usage.users.activeMonth"),
        active_halfyear=_figure(users, "activeHalfyear", host, "usage.users.activeHalfyear"),
        local_posts=_figure(usage, "localPosts", host, "usage.localPosts"),
        open_registrations=_optional_flag(data, "openRegistrations", host),
    )


def parse_instance_v1(data: object, *, host: str) -> InstanceFacts:
    """``/api/v1/instance``: version, ``stats`` and ``registrations``.

    Raises:
        BadResponse: the answer is not an object, or a figure is not a whole number.
    """
    if not isinstance(data, dict):
        raise BadResponse(f"{host} answered /api/v1/instance with {_kind(data)}, not an object")
    software, version = _software_of(data.get("version"))
    stats = _section(data, "stats", host, "/api/v1/instance")
    return InstanceFacts(
        software=software,
        version=version,
        users=_figure(stats, "user_count", host, "stats.user_count"),
        statuses=_figure(stats, "status_count", host, "stats.status_count"),
        domains=_figure(stats, "domain_count", host, "stats.domain_count"),
        open_registrations=_optional_flag(data, "registrations", host),
    )


def parse_instance_v2(data: object, *, host: str) -> InstanceFacts:
    """``/api/v2/instance``: version, ``usage.users.active_month``, ``registrations.enabled``.

    Raises:
        BadResponse: the answer is not an object, or a figure is not a whole number.
    """
    if not isinstance(data, dict):
        raise BadResponse(f"{host} answered /api/v2/instance with {_kind(data)}, not an object")
    software, version = _software_of(data.get("version"))
    usage = _section(data, "usage", host, "/api/v2/instance")
    users = _section(usage, "users", host, "/api/v2/instance usage")
    registrations = _section(data, "registrations", host, "/api/v2/instance")
    return InstanceFacts(
        software=software,
        version=version,
        active_month=_figure(users, "active_month", host, "usage.users.active_month"),
        open_registrations=_optional_flag(registrations, "enabled", host),
    )


def parse_peers(data: object, *, host: str) -> int:
    """How many domains ``/api/v1/instance/peers`` lists.

    Raises:
        BadResponse: the answer is not a list of strings.
    """
    if not isinstance(data, list):
        raise BadResponse(f"{host} answered /api/v1/instance/peers with {_kind(data)}, not a list")
    if not all(isinstance(peer, str) for peer in data):
        raise BadResponse(f"{host} listed peers that are not domain names")
    return len(data)


def parse_activity(data: object, *, host: str) -> tuple[WeekActivity, ...]:
    """``/api/v1/instance/activity``: weekly buckets (newest first, values strings), oldest first.

    The newest bucket is the week in progress, marked incomplete. Whole numbers are accepted
    where strings belong.

    Raises:
        BadResponse: not a list of buckets, a value that is not a non-negative whole number, or
            two buckets for the same week.
    """
    if not isinstance(data, list):
        raise BadResponse(
            f"{host} answered /api/v1/instance/activity with {_kind(data)}, not a list"
        )
    buckets: dict[int, tuple[int, int, int]] = {}
    for bucket in data:
        if not isinstance(bucket, dict):
            raise BadResponse(f"{host} sent an activity bucket that is {_kind(bucket)}")
        week, statuses, logins, registrations = (
            _decimal(bucket, name, host) for name in _ACTIVITY_FIELDS
        )
        if week in buckets:
            raise BadResponse(f"{host} sent two activity buckets for the week of {week}")
        buckets[week] = (statuses, logins, registrations)
    newest = max(buckets, default=None)
    weeks = []
    for week in sorted(buckets):
        try:
            start = datetime.fromtimestamp(week, UTC).date()
        except (OverflowError, OSError, ValueError):
            raise BadResponse(f"{host} sent activity for week {week}, not a time") from None
        statuses, logins, registrations = buckets[week]
        weeks.append(WeekActivity(start, statuses, logins, registrations, week != newest))
    return tuple(weeks)


def parse_tag(data: object, *, host: str) -> TagReading:
    """``/api/v1/tags/:name``: the tag's name, URL and daily history, oldest day first.

    The newest day is the one in progress, marked incomplete. Whole numbers are accepted where
    strings belong; a tag without history has no days.

    Raises:
        BadResponse: not a tag object, no name, a history that is not a list of days, a value
            that is not a whole number or not a count, a day that is not a UTC midnight, two
            entries for one day, or more than ``MAX_TAG_DAYS`` days.
    """
    if not isinstance(data, dict):
        raise BadResponse(f"{host} answered /api/v1/tags with {_kind(data)}, not a tag")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > _MAX_TAG_NAME:
        raise BadResponse(f"{host} sent a tag whose name is {_shown(name)}")
    url = data.get("url")
    return TagReading(
        name=name,
        url=url if isinstance(url, str) and url else None,
        days=_tag_days(data.get("history"), host, f"#{name}"),
    )


def parse_trending_tags(data: object, *, host: str) -> tuple[TrendingTag, ...]:
    """``/api/v1/trends/tags``: the tags in trend order, each with its newest day's use.

    Tags without history are left out (nothing to record); ranks count from 1 in the order
    answered.

    Raises:
        BadResponse: not a list of tag objects, or a tag as ``parse_tag`` refuses.
    """
    if not isinstance(data, list):
        raise BadResponse(f"{host} answered /api/v1/trends/tags with {_kind(data)}, not a list")
    trending = []
    for rank, item in enumerate(data, start=1):
        tag = parse_tag(item, host=host)
        if tag.days:
            newest = tag.days[-1]
            trending.append(TrendingTag(rank, tag.name, newest.day, newest.uses, newest.accounts))
    return tuple(trending)


def _tag_days(history: object, host: str, tag: str) -> tuple[TagDay, ...]:
    if history is None:
        return ()
    if not isinstance(history, list):
        raise BadResponse(f"{host} sent {tag}'s history as {_kind(history)}, not a list")
    if len(history) > MAX_TAG_DAYS:
        raise BadResponse(f"{host} sent {len(history)} days of {tag}'s history (at most 31)")
    days: dict[int, tuple[int, int]] = {}
    for entry in history:
        day, uses, accounts = _tag_day(entry, host, tag)
        if day in days:
            raise BadResponse(f"{host} sent {tag}'s history for the day {day} twice")
        days[day] = (uses, accounts)
    newest = max(days, default=None)
    out = []
    for day in sorted(days):
        try:
            when = datetime.fromtimestamp(day, UTC).date()
        except (OverflowError, OSError, ValueError):
            raise BadResponse(f"{host} sent {tag}'s history for {day}, not a time") from None
        uses, accounts = days[day]
        out.append(TagDay(when, uses, accounts, complete=day != newest))
    return tuple(out)


def _tag_day(entry: object, host: str, tag: str) -> tuple[int, int, int]:
    """One day of a tag's history: its Unix midnight, uses and accounts."""
    if not isinstance(entry, dict):
        raise BadResponse(f"{host} sent a day of {tag}'s history that is {_kind(entry)}")
    day, uses, accounts = (_decimal(entry, name, host, tag) for name in _TAG_DAY_FIELDS)
    if day % _DAY_SECONDS:
        raise BadResponse(f"{host} sent {tag}'s history for {day}, not a UTC midnight")
    if uses > MAX_COUNT or accounts > MAX_COUNT:
        raise BadResponse(f"{host} sent {tag} uses {uses}, accounts {accounts}: not counts")
    return day, uses, accounts


def _shown(value: object) -> str:
    """A short rendering of a value a server sent, for an error message."""
    text = repr(value)
    return text if len(text) <= _SHOWN_LIMIT else f"{text[: _SHOWN_LIMIT - 3]}..."


def split_compatible(version: str) -> tuple[str | None, str]:
    """``"2.7.2 (compatible; Pleroma 2.6.0)"`` → ``("pleroma", "2.6.0")``.

    Returns:
        The software named in a ``(compatible; ...)`` version (lower case) and its version;
        ``(None, version)`` for a plain version such as ``"4.3.2"``.
    """
    match = _COMPATIBLE.fullmatch(version)
    if match is None or not match.group("name"):
        return None, version.strip()
    return match.group("name").lower(), match.group("version")


def _software_of(version: object) -> tuple[str | None, str | None]:
    if not isinstance(version, str) or not version.strip():
        return None, None
    return split_compatible(version)


def _section(data: object, name: str, host: str, where: str) -> dict[str, object]:
    """The object at ``data[name]``; empty when missing or null."""
    value = data.get(name) if isinstance(data, dict) else None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadResponse(f"{host} sent {where} {name} as {_kind(value)}, not an object")
    return value


def _figure(data: dict[str, object], name: str, host: str, where: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    # bool is an int in Python, but `true` is not a count.
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadResponse(f"{host} sent {where} = {value!r}, not a whole number")
    return value


def _optional_flag(data: object, name: str, host: str) -> bool | None:
    value = data.get(name) if isinstance(data, dict) else None
    if value is None or isinstance(value, bool):
        return value
    raise BadResponse(f"{host} sent {name} = {value!r}, not true or false")


def _decimal(bucket: dict[str, object], name: str, host: str, where: str = "activity") -> int:
    value = bucket.get(name)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _DECIMAL_LIMIT:
        return value
    raise BadResponse(f"{host} sent {where} {name} = {value!r}, not a whole number")


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
