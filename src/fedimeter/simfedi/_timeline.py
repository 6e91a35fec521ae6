"""Account timelines: statuses a test gives an account, and ``GET /api/v1/accounts/:id/statuses``.

Listing follows Mastodon's ``Api::V1::Accounts::StatusesController`` and
``AccountStatusesFilter``: the public sees public and unlisted statuses, the author everything;
``exclude_replies`` keeps replies to oneself (threads), ``exclude_reblogs`` drops boosts; pages
are ``limit`` statuses (default 20, at most 40) newest first, bounded by ``max_id``,
``since_id`` or ``min_id`` (``Paginable``), with a ``Link`` header to the older page
(``max_id`` = the oldest id shown, only when the page is full) and the newer one (``min_id`` =
the newest id shown).
"""

from __future__ import annotations

import bisect
import http
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fedimeter.simfedi import _entities as entities
from fedimeter.simfedi._faults import error_message
from fedimeter.simfedi._params import (
    last,
    limit_param,
    link_header,
    present,
    rails_truthy,
    ruby_to_i,
    to_query,
)
from fedimeter.simfedi._replies import Reply, error_reply, json_reply
from fedimeter.simfedi._statuses import (
    VISIBILITIES,
    Engagement,
    SimStatus,
    Visibility,
    can_see,
)

if TYPE_CHECKING:
    import random
    from collections.abc import Sequence

    from fedimeter.simfedi._accounts import SimAccount
    from fedimeter.simfedi._instance import SimInstance
    from fedimeter.simfedi._params import Query

__all__ = [
    "DEFAULT_STATUSES_LIMIT",
    "SeedMix",
    "account_statuses",
    "new_status",
    "seed_history",
]

#: Statuses per page without ``limit`` (Mastodon's DEFAULT_STATUSES_LIMIT); at most twice it.
DEFAULT_STATUSES_LIMIT = 20
#: Parameters a page's links repeat (``AccountStatusesFilter::KEYS`` and ``limit``).
_KEPT_PARAMS = ("limit", "pinned", "tagged", "only_media", "exclude_replies", "exclude_reblogs")
_SEEN_BY_ALL = frozenset({"public", "unlisted"})
_DEFAULT_TEXT = "A simulated post."


# Making statuses ------------------------------------------------------------------------------


def _check_source(
    instance: SimInstance, author: SimAccount, source: SimStatus, created_at: datetime, role: str
) -> None:
    if source.account.instance is not instance:
        raise ValueError(f"{role} must be a status of {instance.name!r}, where the author lives")
    if source.created_at > created_at:
        raise ValueError(f"a status cannot answer or boost one made after it ({role})")
    if (
        role == "boost_of"
        and source.visibility not in _SEEN_BY_ALL
        and source.account is not author
    ):
        raise ValueError(f"{author.username} cannot boost a {source.visibility} status of another")


def new_status(
    instance: SimInstance,
    author: SimAccount,
    *,
    text: str | None,
    created_at: datetime,
    reply_to: SimStatus | None,
    boost_of: SimStatus | None,
    engagement: Engagement,
    visibility: Visibility,
    spoiler_text: str,
    sensitive: bool,
    language: str,
) -> SimStatus:
    """Store a status ``author`` made at ``created_at`` and return it (see ``add_status``).

    Raises:
        ValueError: a moment without a time zone, in the future or before the account existed;
            a reply that also boosts; a replied or boosted status of another instance or made
            later; a boost of someone else's private or direct status; an unknown visibility;
            negative engagement.
    """
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware (UTC)")
    if created_at > instance.now:
        raise ValueError("a status cannot be made after the simulated now")
    if created_at < author.created_at:
        raise ValueError(f"{author.username}'s account did not exist at {created_at}")
    if reply_to is not None and boost_of is not None:
        raise ValueError("a status either replies or boosts, not both")
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {sorted(VISIBILITIES)}, got {visibility!r}")
    if min(engagement.favourites, engagement.reblogs, engagement.replies) < 0:
        raise ValueError("favourites, reblogs and replies cannot be negative")
    if boost_of is not None and boost_of.reblog is not None:
        boost_of = boost_of.reblog  # boosting a boost boosts the original, as Mastodon does
    for source, role in ((reply_to, "reply_to"), (boost_of, "boost_of")):
        if source is not None:
            _check_source(instance, author, source, created_at, role)
    boosting = boost_of is not None
    status = SimStatus(
        id=instance.posts.id_at(created_at),
        account=author,
        token="",
        text="" if boosting else (text if text is not None else _DEFAULT_TEXT),
        visibility=visibility,
        in_reply_to_id=reply_to.id if reply_to is not None else None,
        spoiler_text="" if boosting else spoiler_text,
        sensitive=False if boosting else sensitive or bool(spoiler_text.strip()),
        language="" if boosting else language,
        idempotency_key=None,
        created_at=created_at,
        reblog=boost_of,
        engagement=engagement,
    )
    instance.posts.add(status)
    return status


class SeedMix:
    """How ``SimAccount.seed_statuses`` draws a history.

    The shares of replies and boosts, and the inclusive ranges engagement figures come from.
    """

    __slots__ = ("boost_share", "favourites", "reblogs", "replies", "reply_share")

    def __init__(
        self,
        *,
        reply_share: float,
        boost_share: float,
        favourites: tuple[int, int],
        reblogs: tuple[int, int],
        replies: tuple[int, int],
    ) -> None:
        """Check and keep the mix.

        Raises:
            ValueError: shares outside 0..1 or summing above 1, or a range that is empty or
                negative.
        """
        if not (0 <= reply_share <= 1 and 0 <= boost_share <= 1 and reply_share + boost_share <= 1):
            raise ValueError("reply_share and boost_share must be within 0..1 and sum to 1 at most")
        for low, high in (favourites, reblogs, replies):
            if not 0 <= low <= high:
                raise ValueError(f"a range must be (low, high), 0 <= low <= high: {(low, high)}")
        self.reply_share = reply_share
        self.boost_share = boost_share
        self.favourites = favourites
        self.reblogs = reblogs
        self.replies = replies

    def engagement(self, rng: random.Random) -> Engagement:
        """Draw the engagement of one original post or reply."""
        return Engagement(
            favourites=rng.randint(*self.favourites),
            reblogs=rng.randint(*self.reblogs),
            replies=rng.randint(*self.replies),
        )


def seed_history(
    account: SimAccount, count: int, *, days: float, mix: SeedMix, visibility: Visibility
) -> list[SimStatus]:
    """Give ``account`` ``count`` statuses spread over the last ``days`` (see ``seed_statuses``).

    Raises:
        ValueError: a negative count or a non-positive span.
    """
    if count < 0 or not days > 0:
        raise ValueError(f"seed needs count >= 0 and days > 0, got {count} and {days}")
    instance = account.instance
    rng = instance.rng
    now = instance.now
    span = min(timedelta(days=days), now - account.created_at)
    moments = sorted(now - span * rng.random() for _ in range(count))
    # Others' public posts made so far, oldest first, are what the account may boost.
    others = sorted(
        (
            status
            for status in instance.statuses
            if status.account is not account
            and status.reblog is None
            and status.visibility in _SEEN_BY_ALL
            and not (status.account.deleted or status.account.suspended)
        ),
        key=lambda status: status.created_at,
    )
    others_times = [status.created_at for status in others]
    own: list[SimStatus] = []
    made: list[SimStatus] = []
    for number, moment in enumerate(moments, start=1):
        roll = rng.random()
        boostable = others[: bisect.bisect_right(others_times, moment)] or own
        if boostable and roll < mix.boost_share:
            status = account.add_status(
                created_at=moment, boost_of=rng.choice(boostable), visibility=visibility
            )
        else:
            thread = bool(own) and roll < mix.boost_share + mix.reply_share
            engagement = mix.engagement(rng)
            status = account.add_status(
                f"Post {number} of {count} by {account.username}.",
                created_at=moment,
                reply_to=rng.choice(own) if thread else None,
                visibility=visibility,
                favourites=engagement.favourites,
                reblogs=engagement.reblogs,
                replies=engagement.replies,
            )
            own.append(status)
        made.append(status)
    return made


# Listing --------------------------------------------------------------------------------------


def _id_key(instance: SimInstance, status_id: str) -> tuple[int, str]:
    # Snowflakes compare as numbers (a parameter through String#to_i, as the database casts
    # it); the other styles are fixed-width strings that sort like their moments.
    if instance.profile.id_style == "snowflake":
        return ruby_to_i(status_id), ""
    return 0, status_id


def _visible(
    instance: SimInstance, account: SimAccount, query: Query, viewer: SimAccount | None
) -> list[SimStatus]:
    """The account's statuses ``viewer`` gets before paging (``AccountStatusesFilter``)."""
    if rails_truthy(last(query, "pinned")) or rails_truthy(last(query, "only_media")):
        return []  # the simulator has no pins and no media
    if present(last(query, "tagged")):
        return []  # nor hashtags in statuses
    no_replies = rails_truthy(last(query, "exclude_replies"))
    no_reblogs = rails_truthy(last(query, "exclude_reblogs"))
    shown: list[SimStatus] = []
    for status in instance.posts.of_account(account):
        if not can_see(status, viewer) or (no_reblogs and status.reblog is not None):
            continue
        if no_replies and status.in_reply_to_id is not None:
            parent = instance.find_status(status.in_reply_to_id)
            if parent is None or parent.account is not account:
                continue  # Status.without_replies keeps replies to oneself
        shown.append(status)
    return shown


def _page(
    instance: SimInstance, statuses: Sequence[SimStatus], query: Query, limit: int
) -> list[SimStatus]:
    """One page, newest first, as ``Paginable#to_a_paginated_by_id`` cuts it."""
    max_id, since_id, min_id = (last(query, name) for name in ("max_id", "since_id", "min_id"))
    ordered = sorted(statuses, key=lambda status: _id_key(instance, status.id))
    keys = [_id_key(instance, status.id) for status in ordered]
    low, high = 0, len(ordered)
    if present(max_id):
        high = bisect.bisect_left(keys, _id_key(instance, max_id or ""))
    if present(min_id):
        # The statuses right after min_id (since_id is ignored), shown newest first.
        low = bisect.bisect_right(keys, _id_key(instance, min_id or ""))
        return list(reversed(ordered[low:high][:limit]))
    if present(since_id):
        low = bisect.bisect_right(keys, _id_key(instance, since_id or ""))
    window = ordered[low:high]
    return list(reversed(window[max(0, len(window) - limit) :])) if limit else []


def account_statuses(
    instance: SimInstance, account_id: str, query: Query, viewer: SimAccount | None
) -> Reply:
    """``GET /api/v1/accounts/:id/statuses`` seen by ``viewer`` (None: no valid token)."""
    account = instance.find_id(account_id)
    if account is None:
        return error_reply(http.HTTPStatus.NOT_FOUND, error_message(http.HTTPStatus.NOT_FOUND))
    if account.deleted:
        return error_reply(instance.gone_status, error_message(instance.gone_status))
    if account.suspended:
        return json_reply([])  # Account#unavailable?: an empty list, no Link
    limit = limit_param(query, DEFAULT_STATUSES_LIMIT)
    page = _page(instance, _visible(instance, account, query, viewer), query, limit)
    kept = {name: value for name in _KEPT_PARAMS if (value := last(query, name)) is not None}
    base = f"{instance.base_url}/api/v1/accounts/{account.id}/statuses"
    # With limit=0 Mastodon fails (the next link reads the last of no statuses); no links here.
    next_url = (
        f"{base}?{to_query({**kept, 'max_id': page[-1].id})}"
        if page and len(page) == limit
        else None
    )
    prev_url = f"{base}?{to_query({**kept, 'min_id': page[0].id})}" if page else None
    body = [entities.status_json(status, instance, viewer=viewer) for status in page]
    return json_reply(body, headers=link_header(next_url, prev_url))
