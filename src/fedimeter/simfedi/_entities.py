"""JSON bodies shaped like the real servers' (see ``shared/mastodon-api/examples``).

Field names, nesting and value types follow the examples: ids and activity values are strings,
counts are integers, ``last_status_at`` is a date on Mastodon 3.1+ and a timestamp elsewhere.
Builders take the instance that answers, because what a server shows (fields by version, the
``acct`` of a remote account) depends on the server, not only on the account.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from fedimeter.simfedi._software import parse_version
from fedimeter.simfedi._text import render_content

if TYPE_CHECKING:
    from fedimeter.simfedi._accounts import SimAccount
    from fedimeter.simfedi._instance import SimInstance
    from fedimeter.simfedi._statuses import SimStatus
    from fedimeter.simfedi._tags import SimTag

__all__ = [
    "PLEROMA_FAMILY",
    "account_json",
    "activity_json",
    "instance_v1_json",
    "instance_v2_json",
    "nodeinfo_discovery_json",
    "nodeinfo_json",
    "status_json",
    "tag_json",
    "webfinger_json",
]

JsonObject = dict[str, object]

_WEEK = timedelta(days=7)
_ACTIVITY_WEEKS = 12
_NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/{}"
PLEROMA_FAMILY = frozenset({"pleroma", "akkoma"})
#: Software whose ``/api/v1/instance`` also carries the limit as ``max_toot_chars``.
_MAX_TOOT_CHARS = PLEROMA_FAMILY | {"gotosocial"}


def timestamp(moment: datetime) -> str:
    """Format like Rails: ``2019-11-30T20:02:08.277Z`` (UTC, milliseconds)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _midnight(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime.combine(utc.date(), time(), tzinfo=UTC)


def _at_least(server: SimInstance, *version: int) -> bool:
    return server.software == "mastodon" and parse_version(server.version) >= version


def _last_status(account: SimAccount, server: SimInstance) -> str | None:
    posted = account.last_status_at
    if posted is None:
        return None
    if server.supports("date_last_status"):
        return posted.astimezone(UTC).date().isoformat()
    return timestamp(posted)


def _counts(account: SimAccount, server: SimInstance) -> tuple[int, int, int]:
    if account.suspended:
        return 0, 0, 0
    if account.hide_collections and server.software in PLEROMA_FAMILY:
        # Pleroma and Akkoma zero the counts a user hides; Mastodon only empties the lists.
        return 0, 0, account.statuses
    return account.followers, account.following, account.statuses


def account_json(account: SimAccount, server: SimInstance, *, nested: bool = False) -> JsonObject:
    """Return ``account`` as ``server`` serves it (REST::AccountSerializer's shape).

    A suspended account keeps its id, names and dates but shows zeroed counts, no profile and
    ``suspended: true``; a moved account carries ``moved`` (not nested further). The moved-to
    account is shown with its own id, which on a real server would be a local copy's id.
    """
    home = account.instance
    suspended = account.suspended
    followers, following, statuses = _counts(account, server)
    created = account.created_at
    media = server.base_url
    data: JsonObject = {
        "id": account.id,
        "username": account.username,
        "acct": account.username if home is server else account.acct,
        "display_name": "" if suspended else account.display_name,
        "locked": account.locked and not suspended,
        "bot": account.bot and not suspended,
        "discoverable": account.discoverable and not suspended,
    }
    if _at_least(server, 4, 2):
        data["indexable"] = account.discoverable and not suspended
    data["group"] = False
    data["created_at"] = timestamp(_midnight(created) if _at_least(server, 3, 5) else created)
    data["note"] = "" if suspended else account.note
    data["url"] = account.profile_url
    if _at_least(server, 4, 2):
        data["uri"] = account.actor_url
    data.update(
        {
            "avatar": f"{media}/avatars/original/missing.png",
            "avatar_static": f"{media}/avatars/original/missing.png",
            "header": f"{media}/headers/original/missing.png",
            "header_static": f"{media}/headers/original/missing.png",
            "followers_count": followers,
            "following_count": following,
            "statuses_count": statuses,
            "last_status_at": None if suspended else _last_status(account, server),
        }
    )
    if _at_least(server, 4, 3):
        data["hide_collections"] = account.hide_collections
    if _at_least(server, 4, 0):
        data["noindex"] = not account.discoverable
    data["emojis"] = []
    if _at_least(server, 4, 1):
        data["roles"] = []
    data["fields"] = [] if suspended else _fields(account)
    if suspended:
        data["suspended"] = True
    if account.moved_to is not None and not nested:
        data["moved"] = account_json(account.moved_to, server, nested=True)
    if server.software in PLEROMA_FAMILY:
        data["pleroma"] = {
            "is_admin": False,
            "is_moderator": False,
            "hide_followers_count": account.hide_collections,
            "hide_follows_count": account.hide_collections,
        }
    return data


def _fields(account: SimAccount) -> list[JsonObject]:
    return [{"name": name, "value": value, "verified_at": None} for name, value in account.fields]


def webfinger_json(account: SimAccount) -> JsonObject:
    """Return the JRD for ``account``: subject on the account domain, links on the web host."""
    instance = account.instance
    return {
        "subject": f"acct:{account.username}@{instance.domain}",
        "aliases": [account.profile_url, account.actor_url],
        "links": [
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": account.profile_url,
            },
            {"rel": "self", "type": "application/activity+json", "href": account.actor_url},
            {
                "rel": "http://ostatus.org/schema/1.0/subscribe",
                "template": f"{instance.base_url}/authorize_interaction?uri={{uri}}",
            },
        ],
    }


def nodeinfo_discovery_json(instance: SimInstance) -> JsonObject:
    """Return ``/.well-known/nodeinfo``: one link per NodeInfo document the software serves."""
    return {
        "links": [
            {"rel": _NODEINFO_SCHEMA.format(schema), "href": f"{instance.base_url}{path}"}
            for schema, path in instance.profile.nodeinfo
        ]
    }


def nodeinfo_json(instance: SimInstance, schema: str) -> JsonObject:
    """Return the NodeInfo document of ``schema`` version (``"2.0"`` or ``"2.1"``)."""
    software: JsonObject = {"name": instance.software, "version": instance.version}
    if schema != "2.0" and instance.profile.repository:
        software["repository"] = instance.profile.repository
        software["homepage"] = instance.profile.homepage
    # Misskey leaves the activity figures out (null), which collectors must tolerate.
    misskey = instance.software == "misskey"
    users: JsonObject = {
        "total": instance.user_count(),
        "activeMonth": None if misskey else instance.active_users(),
        "activeHalfyear": None if misskey else instance.active_users(halfyear=True),
    }
    return {
        "version": schema,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"outbound": [], "inbound": []},
        "usage": {"users": users, "localPosts": instance.status_count()},
        "openRegistrations": instance.open_registrations,
        "metadata": {"nodeName": instance.title},
    }


def version_string(instance: SimInstance) -> str:
    """Return ``version`` as instance endpoints show it: ``2.7.2 (compatible; Pleroma X)``."""
    name = instance.profile.compatible_name
    if name is None:
        return instance.version
    return f"{instance.profile.compatible_version} (compatible; {name} {instance.version})"


def _contact(instance: SimInstance) -> JsonObject | None:
    for account in instance.accounts:
        if not account.deleted:
            return account_json(account, instance)
    return None


def _configuration(instance: SimInstance) -> JsonObject:
    return {
        "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
        "statuses": {
            "max_characters": instance.max_characters,
            "max_media_attachments": 4,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": {
            "supported_mime_types": ["image/jpeg", "image/png", "image/gif", "video/mp4"],
            "image_size_limit": 16777216,
            "image_matrix_limit": 33177600,
            "video_size_limit": 103809024,
            "video_frame_rate_limit": 120,
            "video_matrix_limit": 8294400,
        },
        "polls": {
            "max_options": 4,
            "max_characters_per_option": 50,
            "min_expiration": 300,
            "max_expiration": 2629746,
        },
    }


_RULES = [{"id": "1", "text": "Be kind.", "hint": ""}]


def instance_v1_json(instance: SimInstance) -> JsonObject:
    """Return ``/api/v1/instance`` (V1::Instance shape; Pleroma's ``uri`` is a full URL)."""
    pleroma = instance.software in PLEROMA_FAMILY
    data: JsonObject = {
        "uri": instance.base_url if pleroma else instance.domain,
        "title": instance.title,
        "short_description": f"The simulated instance {instance.name}.",
        "description": "",
        "email": f"admin@{instance.host}",
        "version": version_string(instance),
        "urls": {"streaming_api": f"ws://{instance.web_domain}"},
        "stats": {
            "user_count": instance.user_count(),
            "status_count": instance.status_count(),
            "domain_count": len(instance.peers),
        },
        "thumbnail": f"{instance.base_url}/packs/media/images/preview.png",
        "languages": ["en"],
        "registrations": instance.open_registrations,
        "approval_required": False,
        "invites_enabled": True,
        "configuration": _configuration(instance),
        "contact_account": _contact(instance),
        "rules": list(_RULES),
    }
    if instance.software in _MAX_TOOT_CHARS:
        data["max_toot_chars"] = instance.max_characters
    if pleroma:
        data["pleroma"] = {"metadata": {"features": ["mastodon_api"], "account_activation": True}}
    return data


def instance_v2_json(instance: SimInstance) -> JsonObject:
    """Return ``/api/v2/instance`` (Instance shape, ``usage.users.active_month``)."""
    configuration = _configuration(instance)
    configuration["urls"] = {"streaming": f"ws://{instance.web_domain}", "status": None}
    configuration["translation"] = {"enabled": False}
    return {
        "domain": instance.domain,
        "title": instance.title,
        "version": version_string(instance),
        "source_url": instance.profile.repository,
        "description": f"The simulated instance {instance.name}.",
        "usage": {"users": {"active_month": instance.active_users()}},
        "thumbnail": {"url": f"{instance.base_url}/packs/media/images/preview.png"},
        "icon": [],
        "languages": ["en"],
        "configuration": configuration,
        "registrations": {
            "enabled": instance.open_registrations,
            "approval_required": False,
            "message": None,
        },
        "api_versions": {"mastodon": 2 if _at_least(instance, 4, 3) else 0},
        "contact": {"email": f"admin@{instance.host}", "account": _contact(instance)},
        "rules": list(_RULES),
    }


def activity_json(instance: SimInstance, now: datetime) -> list[JsonObject]:
    """Return 12 weekly buckets, newest first, every value a string.

    The first bucket is the current week (from Monday 00:00 UTC) up to ``now``, incomplete like
    on a real server. Values follow the accounts: posts made in the week at each account's
    rate, accounts that posted (logins), accounts created (registrations).
    """
    today = _midnight(now)
    week_start = today - timedelta(days=today.weekday())
    live = [account for account in instance.accounts if not account.deleted]
    buckets: list[JsonObject] = []
    for number in range(_ACTIVITY_WEEKS):
        start = week_start - number * _WEEK
        end = min(start + _WEEK, now)
        statuses = logins = registrations = 0
        for account in live:
            posts = 0 if account.suspended else account.posts_between(start, end)
            statuses += posts
            posted = account.last_status_at
            if posts or (posted is not None and start <= posted < end):
                logins += 1
            if start <= account.created_at < end:
                registrations += 1
        buckets.append(
            {
                "week": str(int(start.timestamp())),
                "statuses": str(statuses),
                "logins": str(logins),
                "registrations": str(registrations),
            }
        )
    return buckets


def status_json(status: SimStatus, server: SimInstance, *, viewer: SimAccount | None) -> JsonObject:
    """Return ``status`` as ``server`` shows it to ``viewer`` (REST::StatusSerializer's shape).

    The fields about the viewer's own relation to the status (``favourited`` and the like)
    appear only for a request with a valid token, as in Mastodon; ``pinned`` only on the
    viewer's own public or unlisted statuses that are not boosts. The counts add the
    status's ``engagement`` (interactions from outside the simulation) to the replies and
    boosts stored on ``server``; a boost carries the boosted status in ``reblog``.
    """
    parent = server.find_status(status.in_reply_to_id) if status.in_reply_to_id else None
    posts = server.posts
    engagement = status.engagement
    data: JsonObject = {
        "id": status.id,
        "created_at": timestamp(status.created_at),
        "in_reply_to_id": status.in_reply_to_id,
        "in_reply_to_account_id": parent.account.id if parent is not None else None,
        "sensitive": status.sensitive,
        "spoiler_text": status.spoiler_text,
        "visibility": status.visibility,
        "language": status.language or None,
        "uri": status.uri,
        "url": status.url,
        "replies_count": engagement.replies + posts.replies_to(status.id),
        "reblogs_count": engagement.reblogs + posts.reblogs_of(status.id),
        "favourites_count": engagement.favourites,
        "edited_at": None,
    }
    if viewer is not None:
        data.update({"favourited": False, "reblogged": False, "muted": False, "bookmarked": False})
        pinnable = status.visibility in {"public", "unlisted"} and status.reblog is None
        if viewer is status.account and pinnable:
            data["pinned"] = False
    data["content"] = render_content(status.text)
    if viewer is not None and (server.software != "mastodon" or _at_least(server, 4, 0)):
        data["filtered"] = []
    reblog = status.reblog
    data.update(
        {
            "reblog": None if reblog is None else status_json(reblog, server, viewer=viewer),
            "application": {"name": "simfedi", "website": None},
            "account": account_json(status.account, server),
            "media_attachments": [],
            "mentions": [],
            "tags": [],
            "emojis": [],
            "card": None,
            "poll": None,
        }
    )
    if server.software in PLEROMA_FAMILY:
        data["pleroma"] = {
            "local": True,
            "content": {"text/plain": status.text},
            "spoiler_text": {"text/plain": status.spoiler_text},
            "in_reply_to_account_acct": parent.account.username if parent is not None else None,
            "expires_at": None,
        }
    return data


def tag_json(
    tag: SimTag, history: list[tuple[date, int, int]], server: SimInstance, *, viewer: bool
) -> JsonObject:
    """Return ``tag`` as Mastodon's REST::TagSerializer shows it, with ``history`` (newest first).

    ``url`` uses the normalized name, ``name`` the first spelling; every history figure is a
    string and ``day`` is the Unix time of the day's UTC midnight. ``following`` and
    ``featuring`` appear only for a request with a valid token (``viewer``), as in Mastodon.
    """
    data: JsonObject = {
        "id": tag.id,
        "name": tag.name,
        "url": f"{server.base_url}/tags/{quote(tag.normalized, safe='')}",
        "history": [
            {
                "day": str(int(datetime.combine(day, time(), tzinfo=UTC).timestamp())),
                "accounts": str(accounts),
                "uses": str(uses),
            }
            for day, uses, accounts in history
        ],
    }
    if viewer:
        data["following"] = False
        data["featuring"] = False
    return data
