"""Engagement: what an account posts and what its posts receive, per period. Pure, no I/O.

The figures come from the account's public timeline (``/api/v1/accounts/:id/statuses``) as
the collector stored it: one row per status seen, with the counts it showed when last read.

Definitions (all times UTC; a period is ``[since, until)``: a status posted at exactly
``until`` belongs to the next one, so days and weeks tile without overlap):

- **posts**: the account's own statuses that answer nobody, or answer the account itself (the
  later parts of a thread: Mastodon shows them on the profile's Posts tab too).
- **replies**: its statuses that answer another account.
- **boosts made**: its boosts of any status. A boost is not the account's own post: it
  receives nothing and no boost counts in the figures below.
- **own statuses**: posts and replies.
- **favourites, boosts and replies received**: summed over the own statuses posted in the
  period, each with the counts it showed when last read. Replies received leave out the
  account's own replies to it (a thread's next part is not an answer from the audience).
- **per post**: each of those sums divided by the number of own statuses.
- **interactions**: favourites + boosts + replies received.
- **engagement rate**: interactions per own status divided by the followers at the period's
  end, in percent: the share of the audience that, on average, interacted with one status.
  The followers are those of the account's latest sample at or before ``until`` (its first
  sample after, when it was first measured later); no rate without followers or own statuses.
- **best posts**: own statuses of the period by interactions received, most first (then by
  favourites, then newest first).

Counts keep growing after a status is posted, mostly in its first days. A status's counts
are those of its last reading, and a status is read every round for ``engagement_days``
after it was posted: a period's figures are thus attributed to the period the statuses were
posted in, not to when the interactions happened, and a period with own statuses that the
account's latest reading found (they are read again next round) is **provisional**: its
figures may still grow. Statuses the server stopped showing (deleted, or
no longer public) are left out once a reading that covered their moment no longer found them.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Literal, Protocol, get_args
from urllib.parse import urlsplit

from fedimeter.domain.when import later

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "EXCERPT_LENGTH",
    "KINDS",
    "MAX_BUCKETS",
    "OWN_KINDS",
    "BestPost",
    "Bucket",
    "EngagementFigures",
    "FollowerSample",
    "SeenStatus",
    "StatusKind",
    "StatusLike",
    "bucket_starts",
    "engagement_buckets",
    "engagement_figures",
    "followers_at",
    "known_span",
    "plain_excerpt",
    "safe_url",
    "status_kind",
]

StatusKind = Literal["post", "reply", "boost"]
KINDS: tuple[StatusKind, ...] = get_args(StatusKind)
#: The kinds that are the account's own statuses (they receive interactions).
OWN_KINDS: frozenset[str] = frozenset({"post", "reply"})
Bucket = Literal["day", "week"]

#: The most days (or weeks) one answer splits a period into: 2.7 years by day, 19 by week.
MAX_BUCKETS = 1000
#: Characters of a status's text kept as its excerpt.
EXCERPT_LENGTH = 120
_MAX_URL = 2000
_SPACES = re.compile(r"\s+")
# Bidirectional overrides and isolates could reorder what a terminal or page shows around them.
_BIDI = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")


@dataclass(frozen=True, slots=True)
class SeenStatus:
    """One status of an account's timeline as its server showed it."""

    id: str
    created_at: datetime
    kind: StatusKind
    favourites: int
    reblogs: int
    replies: int
    #: The status it answers, for posts and replies that answer one.
    in_reply_to_id: str | None = None
    #: Its page (for a boost: the boosted status's page); None when the server gave none.
    url: str | None = None
    #: Its text, plain and short (for a boost: the boosted status's); see ``plain_excerpt``.
    excerpt: str = ""
    visibility: str = "public"


class StatusLike(Protocol):
    """A stored status (``storage.engagement.StatusRecord``) or a ``SeenStatus``."""

    @property
    def id(self) -> str:
        """The server's id."""

    @property
    def created_at(self) -> datetime:
        """When it was posted (a boost: when it was boosted)."""

    @property
    def kind(self) -> str:
        """``post``, ``reply`` or ``boost``."""

    @property
    def favourites(self) -> int:
        """Favourites it showed when last read."""

    @property
    def reblogs(self) -> int:
        """Boosts it showed when last read."""

    @property
    def replies(self) -> int:
        """Replies it showed when last read (the account's own included)."""

    @property
    def in_reply_to_id(self) -> str | None:
        """The status it answers."""

    @property
    def url(self) -> str | None:
        """Its page."""

    @property
    def excerpt(self) -> str:
        """Its text, plain and short."""

    @property
    def last_seen_at(self) -> datetime:
        """When a reading last found it."""


class FollowerSample(Protocol):
    """An account sample (``storage.records.SampleRecord``): only its followers matter here."""

    @property
    def taken_at(self) -> datetime:
        """When it was taken."""

    @property
    def followers(self) -> int:
        """Followers then."""


@dataclass(frozen=True, slots=True)
class BestPost:
    """One of a period's best own statuses, with what it received."""

    id: str
    created_at: datetime
    kind: str
    url: str | None
    excerpt: str
    favourites: int
    boosts: int
    replies: int

    @property
    def interactions(self) -> int:
        """Favourites, boosts and replies received."""
        return self.favourites + self.boosts + self.replies


@dataclass(frozen=True, slots=True)
class EngagementFigures:
    """One period's engagement (see the module's definitions)."""

    since: datetime
    until: datetime
    posts: int
    replies: int
    boosts: int
    #: Received by the period's own statuses.
    favourites_received: int
    boosts_received: int
    replies_received: int
    #: Followers at the period's end; None when the account has no sample.
    followers: int | None
    best: tuple[BestPost, ...] = ()
    #: Some of the period's own statuses are still read each round: their counts may grow.
    provisional: bool = False

    @property
    def own(self) -> int:
        """Own statuses: posts and replies."""
        return self.posts + self.replies

    @property
    def interactions(self) -> int:
        """Favourites, boosts and replies received."""
        return self.favourites_received + self.boosts_received + self.replies_received

    def _per_post(self, total: int) -> float | None:
        return total / self.own if self.own else None

    @property
    def favourites_per_post(self) -> float | None:
        """Favourites received per own status; None without one."""
        return self._per_post(self.favourites_received)

    @property
    def boosts_per_post(self) -> float | None:
        """Boosts received per own status; None without one."""
        return self._per_post(self.boosts_received)

    @property
    def replies_per_post(self) -> float | None:
        """Replies received per own status; None without one."""
        return self._per_post(self.replies_received)

    @property
    def interactions_per_post(self) -> float | None:
        """Interactions received per own status; None without one."""
        return self._per_post(self.interactions)

    @property
    def rate(self) -> float | None:
        """Interactions per own status over followers, in percent; None without either."""
        per_post = self.interactions_per_post
        if per_post is None or not self.followers:
            return None
        return 100.0 * per_post / self.followers


def status_kind(*, boost: bool, in_reply_to_account_id: str | None, own_id: str) -> StatusKind:
    """The kind of a status of the account whose id is ``own_id``.

    A boost is a boost; a status answering another account is a reply; anything else (no
    answer, or an answer to the account itself: a thread) is a post.
    """
    if boost:
        return "boost"
    if in_reply_to_account_id is not None and in_reply_to_account_id != own_id:
        return "reply"
    return "post"


def followers_at(samples: Sequence[FollowerSample], moment: datetime) -> int | None:
    """Followers of the latest sample at or before ``moment``, else of the first one after.

    ``samples`` are oldest first. None when there is none.
    """
    if not samples:
        return None
    index = bisect_right([s.taken_at for s in samples], moment)
    return samples[index - 1].followers if index else samples[0].followers


def _self_replies(statuses: Iterable[StatusLike]) -> Counter[str]:
    """How many of the account's own statuses answer each status id."""
    return Counter(
        s.in_reply_to_id for s in statuses if s.in_reply_to_id is not None and s.kind != "boost"
    )


def _received_replies(status: StatusLike, own_answers: Counter[str]) -> int:
    return max(0, status.replies - own_answers.get(status.id, 0))


def engagement_figures(
    statuses: Sequence[StatusLike],
    samples: Sequence[FollowerSample],
    *,
    since: datetime,
    until: datetime,
    top: int = 5,
    read_at: datetime | None = None,
) -> EngagementFigures:
    """The figures of the statuses posted in ``[since, until)``.

    Args:
        statuses: the account's stored statuses (those no longer shown left out), at least
            every one posted from ``since`` on: a later reply to a status of the period is
            needed to count its replies right.
        samples: the account's samples, oldest first, for the followers at ``until``.
        since: the period's start (included).
        until: the period's end (excluded).
        top: how many best posts to give.
        read_at: the account's latest reading while engagement is on: the statuses it found
            are read again next round, so a period with own statuses among them is
            provisional. None when engagement is off (the counts are final).

    Raises:
        ValueError: ``since`` is not before ``until``, or ``top`` is negative.
    """
    if since >= until:
        raise ValueError(f"the period must start before it ends ({since} >= {until})")
    if top < 0:
        raise ValueError(f"top must not be negative, not {top}")
    return _figures(
        statuses,
        _self_replies(statuses),
        followers_at(samples, until),
        since=since,
        until=until,
        top=top,
        read_at=read_at,
    )


def _figures(
    statuses: Iterable[StatusLike],
    own_answers: Counter[str],
    followers: int | None,
    *,
    since: datetime,
    until: datetime,
    top: int,
    read_at: datetime | None,
) -> EngagementFigures:
    kinds: Counter[str] = Counter()
    favourites = boosts = replies = 0
    own: list[StatusLike] = []
    for status in statuses:
        if not since <= status.created_at < until:
            continue
        kinds[status.kind] += 1
        if status.kind in OWN_KINDS:
            own.append(status)
            favourites += status.favourites
            boosts += status.reblogs
            replies += _received_replies(status, own_answers)
    best = [
        BestPost(
            id=s.id,
            created_at=s.created_at,
            kind=s.kind,
            url=s.url,
            excerpt=s.excerpt,
            favourites=s.favourites,
            boosts=s.reblogs,
            replies=_received_replies(s, own_answers),
        )
        for s in own
    ]
    best.sort(key=lambda b: (b.interactions, b.favourites, b.created_at, b.id), reverse=True)
    provisional = read_at is not None and any(s.last_seen_at >= read_at for s in own)
    return EngagementFigures(
        since=since,
        until=until,
        posts=kinds["post"],
        replies=kinds["reply"],
        boosts=kinds["boost"],
        favourites_received=favourites,
        boosts_received=boosts,
        replies_received=replies,
        followers=followers,
        best=tuple(best[:top]),
        provisional=provisional,
    )


def bucket_starts(since: datetime, until: datetime, by: Bucket) -> list[datetime]:
    """The starts of the UTC days (or ISO weeks, from Monday) that meet ``[since, until)``.

    The first start may lie before ``since``: its bucket is cut to the period.

    Raises:
        ValueError: ``by`` is neither day nor week, the period is empty, or it has more than
            ``MAX_BUCKETS`` buckets.
    """
    if by not in get_args(Bucket):
        raise ValueError(f"by must be day or week, not {by!r}")
    if since >= until:
        raise ValueError(f"the period must start before it ends ({since} >= {until})")
    step = _step(by)
    first = _bucket_of(since, by)
    # Counted, not stepped to: a bucket start after the year 9999's last day is no datetime.
    count = -((first - until) // step)  # whole buckets, the last one cut
    if count > MAX_BUCKETS:
        shorter = "a shorter period" if by == "week" else "by=week or a shorter period"
        raise ValueError(
            f"by={by} makes {count:,} buckets from {since.date()} to {until.date()}, more than"
            f" {MAX_BUCKETS:,}: use {shorter}"
        )
    return [first + n * step for n in range(count)]


def known_span(
    since: datetime,
    until: datetime,
    by: Bucket,
    known: Iterable[datetime | None],
) -> tuple[datetime, datetime] | None:
    """The part of ``[since, until)`` whose buckets meet something known; None if none does.

    ``known`` are the moments anything was read for the account (its coverage, its first
    and last stored statuses, its readings): buckets before the first one's or after the
    last one's hold nothing read, and are left out. The span starts at ``since`` or at a
    bucket's start, so the buckets left keep their bounds.
    """
    moments = [m for m in known if m is not None]
    if not moments:
        return None
    start = max(since, _bucket_of(min(moments), by))
    end = min(until, later(_bucket_of(max(moments), by), _step(by)))
    return (start, end) if start < end else None


def _step(by: Bucket) -> timedelta:
    return timedelta(days=1 if by == "day" else 7)


def _bucket_of(moment: datetime, by: Bucket) -> datetime:
    """The start of the UTC day (or ISO week) ``moment`` is in."""
    day = moment.astimezone(UTC).date()
    if by == "week":
        day -= timedelta(days=day.weekday())  # never before the year 1: its 1 January is a Monday
    return datetime.combine(day, time(), UTC)


def _bucket_end(start: datetime, step: timedelta, until: datetime) -> datetime:
    """The end of the bucket from ``start``, cut to ``until`` (never past the calendar)."""
    return until if until - start <= step else start + step


def engagement_buckets(
    statuses: Sequence[StatusLike],
    samples: Sequence[FollowerSample],
    *,
    since: datetime,
    until: datetime,
    by: Bucket = "day",
    read_at: datetime | None = None,
) -> list[EngagementFigures]:
    """The figures of each UTC day (or ISO week) of ``[since, until)``, oldest first.

    The first and last buckets are cut to the period; each has its own followers (at its
    end) and no best posts.

    Raises:
        ValueError: ``by`` is neither day nor week, the period is empty, or it has more than
            ``MAX_BUCKETS`` buckets.
    """
    starts = bucket_starts(since, until, by)
    own_answers = _self_replies(statuses)
    ordered = sorted(statuses, key=lambda s: s.created_at)
    moments = [s.created_at for s in ordered]
    buckets = []
    step = _step(by)
    for start in starts:
        low, high = max(start, since), _bucket_end(start, step, until)
        first, last = bisect_left(moments, low), bisect_left(moments, high)
        buckets.append(
            _figures(
                ordered[first:last],
                own_answers,
                followers_at(samples, high),
                since=low,
                until=high,
                top=0,
                read_at=read_at,
            )
        )
    return buckets


class _TextOf(HTMLParser):
    """The text of a status's HTML: paragraphs and line breaks become spaces."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002
        if tag in {"br", "p"}:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_excerpt(content: str, spoiler_text: str = "", limit: int = EXCERPT_LENGTH) -> str:
    """A status's text as one plain line of at most ``limit`` characters.

    ``content`` is the server's HTML; tags are dropped, entities decoded, white space folded,
    control and bidirectional-override characters removed, and a cut marked with ``…``. A
    status behind a content warning shows the warning (``CW: ...``), never its text.
    """
    if spoiler_text.strip():
        text = f"CW: {spoiler_text}"
    else:
        parser = _TextOf()
        parser.feed(content)
        parser.close()
        text = "".join(parser.parts)
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch not in _BIDI and (ch.isspace() or unicodedata.category(ch) != "Cc")
    )
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "\u2026"
    return text


def safe_url(value: object) -> str | None:
    """``value`` when it is a plain http(s) URL with a host, else None.

    Server-given links end up in reports and pages: a ``javascript:`` link, white space or a
    control character in one is refused rather than escaped.
    """
    if not isinstance(value, str) or not value or len(value) > _MAX_URL:
        return None
    if any(ch.isspace() or unicodedata.category(ch) in {"Cc", "Cf"} for ch in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in {"http", "https"} or not parts.netloc:
        return None
    return value
