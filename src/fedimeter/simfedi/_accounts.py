"""Simulated accounts: counts that grow with simulated time, and the states accounts end in.

Counts follow ``base + floor(rate * days)`` from the moment they were last set, so tests can
predict them exactly after ``world.advance(...)``; setting a count or a rate starts a new segment
from the current value, which keeps the history continuous.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from fedimeter.domain.models import Handle
from fedimeter.simfedi._statuses import Engagement
from fedimeter.simfedi._timeline import SeedMix, new_status, seed_history

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from fedimeter.simfedi._instance import SimInstance
    from fedimeter.simfedi._statuses import SimStatus, Visibility

__all__ = ["Counter", "SimAccount"]

_DAY = timedelta(days=1)


def _days(delta: timedelta) -> float:
    return delta / _DAY


class Counter:
    """A count that changes by ``rate`` per simulated day from ``base`` at ``epoch``."""

    __slots__ = ("base", "epoch", "rate")

    def __init__(self, base: int, rate: float, epoch: datetime) -> None:
        """Start at ``base`` at ``epoch``, changing by ``rate`` per day."""
        self.base = base
        self.rate = rate
        self.epoch = epoch

    def growth(self, moment: datetime) -> int:
        """Whole units added between ``epoch`` and ``moment`` (negative before ``epoch``)."""
        return math.floor(self.rate * _days(moment - self.epoch))

    def value(self, moment: datetime) -> int:
        """The count at ``moment``; never below zero."""
        return max(0, self.base + self.growth(moment))

    def set_value(self, value: int, moment: datetime) -> None:
        """Make the count ``value`` at ``moment``; it keeps its rate from there."""
        self.base = value
        self.epoch = moment

    def set_rate(self, rate: float, moment: datetime) -> None:
        """Change the rate from ``moment`` on, keeping the current value."""
        self.base = self.value(moment)
        self.epoch = moment
        self.rate = rate


class SimAccount:
    """An account on a simulated instance.

    Counts (``followers``, ``following``, ``statuses``) read as their value at the world's
    current simulated time; assigning one sets the current value, assigning a ``*_per_day``
    rate changes the growth from now on. ``suspended``, ``deleted`` and ``moved_to`` change
    what the server answers for the account (see the package documentation).
    """

    def __init__(
        self,
        instance: SimInstance,
        account_id: str,
        username: str,
        *,
        clock: Callable[[], datetime],
        created_at: datetime,
        counts: tuple[int, int, int],
        rates: tuple[float, float, float],
        last_status_at: datetime | None,
        display_name: str,
        note: str,
        bot: bool,
        locked: bool,
        discoverable: bool,
        hide_collections: bool,
        fields: Sequence[tuple[str, str]],
    ) -> None:
        """Create the account; ``SimInstance.add_account`` is the public way."""
        now = clock()
        self._instance = instance
        self._id = account_id
        self._username = username
        self._clock = clock
        self.created_at = created_at
        self._followers = Counter(counts[0], rates[0], now)
        self._following = Counter(counts[1], rates[1], now)
        self._statuses = Counter(counts[2], rates[2], now)
        self._last_status = last_status_at
        self.display_name = display_name
        self.note = note
        self.bot = bot
        self.locked = locked
        self.discoverable = discoverable
        self.hide_collections = hide_collections
        self.fields: list[tuple[str, str]] = list(fields)
        #: Served as 200 with ``suspended: true`` and zeroed counts.
        self.suspended = False
        #: Served as 404 (or the instance's ``gone_status``) and left out of batch answers.
        self.deleted = False
        #: The account this one moved to: served as ``moved`` in its JSON.
        self.moved_to: SimAccount | None = None

    def __repr__(self) -> str:
        """``SimAccount('alice' on 'alpha', id='...')``."""
        return f"SimAccount({self._username!r} on {self._instance.name!r}, id={self._id!r})"

    @property
    def id(self) -> str:
        """The account's id on its instance, a string as every server serves it."""
        return self._id

    @property
    def username(self) -> str:
        """The username, in the case it was created with."""
        return self._username

    @property
    def instance(self) -> SimInstance:
        """The instance the account lives on."""
        return self._instance

    @property
    def acct(self) -> str:
        """``username@domain`` with the instance's account domain (needs a serving world)."""
        return f"{self._username}@{self._instance.domain}"

    @property
    def handle(self) -> Handle:
        """The account's handle as fedimeter's domain model spells it."""
        return Handle(self._username, self._instance.domain)

    @property
    def profile_url(self) -> str:
        """The profile page on the instance's web host, e.g. ``http://127.0.0.1:PORT/@alice``."""
        path = self._instance.profile.profile_path.format(self._username)
        return f"{self._instance.base_url}{path}"

    @property
    def actor_url(self) -> str:
        """The ActivityPub actor id, ``http://HOST:PORT/users/alice``."""
        return f"{self._instance.base_url}/users/{self._username}"

    @property
    def followers(self) -> int:
        """Followers now (simulated time)."""
        return self._followers.value(self._clock())

    @followers.setter
    def followers(self, value: int) -> None:
        self._followers.set_value(value, self._clock())

    @property
    def following(self) -> int:
        """Accounts followed now (simulated time)."""
        return self._following.value(self._clock())

    @following.setter
    def following(self, value: int) -> None:
        self._following.set_value(value, self._clock())

    @property
    def statuses(self) -> int:
        """Posts now (simulated time)."""
        return self._statuses.value(self._clock())

    @statuses.setter
    def statuses(self, value: int) -> None:
        now = self._clock()
        if value > self._statuses.value(now):
            # More posts than before means one was posted just now.
            self._last_status = now
        else:
            self._last_status = self._latest_post(now)
        self._statuses.set_value(value, now)

    @property
    def followers_per_day(self) -> float:
        """Followers gained per simulated day (may be negative)."""
        return self._followers.rate

    @followers_per_day.setter
    def followers_per_day(self, rate: float) -> None:
        self._followers.set_rate(rate, self._clock())

    @property
    def following_per_day(self) -> float:
        """Accounts followed per simulated day (may be negative)."""
        return self._following.rate

    @following_per_day.setter
    def following_per_day(self, rate: float) -> None:
        self._following.set_rate(rate, self._clock())

    @property
    def statuses_per_day(self) -> float:
        """Posts per simulated day."""
        return self._statuses.rate

    @statuses_per_day.setter
    def statuses_per_day(self, rate: float) -> None:
        now = self._clock()
        self._last_status = self._latest_post(now)
        self._statuses.set_rate(rate, now)

    @property
    def last_status_at(self) -> datetime | None:
        """When the latest post was made, or None if the account never posted."""
        return self._latest_post(self._clock())

    @last_status_at.setter
    def last_status_at(self, moment: datetime | None) -> None:
        now = self._clock()
        self._statuses.set_rate(self._statuses.rate, now)
        self._last_status = moment

    def _latest_post(self, now: datetime) -> datetime | None:
        counter = self._statuses
        posted = counter.growth(now)
        if counter.rate <= 0 or posted < 1:
            return self._last_status
        # The n-th post of the current segment happens when rate * days reaches n.
        latest = counter.epoch + _DAY * (posted / counter.rate)
        if self._last_status is None or latest > self._last_status:
            return latest
        return self._last_status

    def posts_between(self, start: datetime, end: datetime) -> int:
        """Posts made in ``[start, end)`` of simulated time, extrapolating the current rate."""
        counter = self._statuses
        return max(0, counter.growth(end) - counter.growth(start))

    # Statuses --------------------------------------------------------------------------

    def add_status(
        self,
        text: str | None = None,
        *,
        created_at: datetime | None = None,
        reply_to: SimStatus | None = None,
        boost_of: SimStatus | None = None,
        favourites: int = 0,
        reblogs: int = 0,
        replies: int = 0,
        visibility: Visibility = "public",
        spoiler_text: str = "",
        sensitive: bool = False,
        language: str = "en",
    ) -> SimStatus:
        """Give the account a status made at ``created_at`` (default: now) and return it.

        ``text`` is the source (served as HTML ``content``; default ``A simulated post.``).
        ``reply_to`` makes it a reply, ``boost_of`` a boost (no text of its own; boosting a
        boost boosts the original); both must be statuses of this instance, made earlier.
        ``favourites``, ``reblogs`` and ``replies`` are interactions from outside the
        simulation, kept in ``status.engagement`` (change them there later); replies and
        boosts made in the simulation add to the served counts. The status counts toward
        ``statuses`` like a post, and ``last_status_at`` becomes its moment if that is later.

        Raises:
            ValueError: see ``new_status``: a moment in the future or before the account
                existed, a reply that boosts, a status of another instance, and the like.
        """
        now = self._clock()
        status = new_status(
            self._instance,
            self,
            text=text,
            created_at=now if created_at is None else created_at,
            reply_to=reply_to,
            boost_of=boost_of,
            engagement=Engagement(favourites=favourites, reblogs=reblogs, replies=replies),
            visibility=visibility,
            spoiler_text=spoiler_text,
            sensitive=sensitive,
            language=language,
        )
        latest = self._latest_post(now)
        self._statuses.set_value(self._statuses.value(now) + 1, now)
        if latest is None or status.created_at > latest:
            latest = status.created_at
        self._last_status = latest
        return status

    def seed_statuses(
        self,
        count: int,
        *,
        days: float = 30.0,
        reply_share: float = 0.0,
        boost_share: float = 0.0,
        favourites: tuple[int, int] = (0, 10),
        reblogs: tuple[int, int] = (0, 3),
        replies: tuple[int, int] = (0, 2),
        visibility: Visibility = "public",
    ) -> list[SimStatus]:
        """Give the account ``count`` statuses drawn from the world's seeded RNG; oldest first.

        Their moments spread uniformly over the last ``days`` (no earlier than the account's
        creation). About ``reply_share`` of them reply to one of the account's earlier posts
        (threads) and ``boost_share`` boost an earlier public post of another account of the
        instance (or the account's own); the others are original posts. Posts and replies
        draw ``favourites``, ``reblogs`` and ``replies`` uniformly from the inclusive ranges;
        boosts have none. Equal seeds over equal worlds give equal histories.

        Raises:
            ValueError: a negative count, a non-positive ``days``, shares outside 0..1 or
                summing above 1, or an empty or negative range.
        """
        mix = SeedMix(
            reply_share=reply_share,
            boost_share=boost_share,
            favourites=favourites,
            reblogs=reblogs,
            replies=replies,
        )
        return seed_history(self, count, days=days, mix=mix, visibility=visibility)
