"""A simulated instance: its configuration, its accounts, and where it listens.

Everything a test may change while the world is serving (version, limited federation, disabled
endpoints, faults, accounts) is a plain attribute read on every request, so a change applies to
the next request.
"""

from __future__ import annotations

import ipaddress
import string
from datetime import date, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Literal

from fedimeter.domain.models import InstanceAddress
from fedimeter.simfedi._accounts import SimAccount
from fedimeter.simfedi._ratelimit import RateLimit, RateWindow
from fedimeter.simfedi._software import IdStyle, SoftwareProfile, profile_for
from fedimeter.simfedi._statuses import SimStatus, StatusStore
from fedimeter.simfedi._tags import SimTag, TagStore, as_day

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Collection, Mapping, Sequence

    from fedimeter.simfedi._faults import Fault

__all__ = ["DISABLEABLE", "SimInstance"]

#: Endpoint names accepted in ``disabled_endpoints``. ``nodeinfo`` turns off discovery and
#: the document; ``activity`` and ``peers`` answer 404 with an empty body, as Mastodon does
#: when the admin turns them off; the others answer 404 ``{"error":"Record not found"}``.
DISABLEABLE = frozenset(
    {"webfinger", "nodeinfo", "lookup", "account", "batch", "instance", "instance_v2"}
    | {"activity", "peers"}
)

_ACTIVE_MONTH = timedelta(days=30)
_ACTIVE_HALFYEAR = timedelta(days=180)
_GONE_STATUSES = frozenset({404, 410})
_LOOPBACK = ipaddress.ip_network("127.0.0.0/8")
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_BASE36 = string.digits + string.ascii_lowercase
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_MASTODON_EPOCH_BITS = 16
#: Access tokens look like Doorkeeper's: 43 URL-safe base64 characters.
_TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"
_TOKEN_LENGTH = 43


def _encode(number: int, alphabet: str, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, len(alphabet))
        digits.append(alphabet[digit])
    return "".join(reversed(digits))


def new_id(style: IdStyle, created_at: datetime, rng: random.Random) -> str:
    """Return an id in ``style`` for an account created at ``created_at``.

    Ids embed their creation time like the real schemes do, so they sort roughly by age and are
    large: a collector that treats them as small integers fails here as it would in the wild.
    """
    millis = int(created_at.timestamp() * 1000)
    match style:
        case "snowflake":
            return str((millis << _MASTODON_EPOCH_BITS) | rng.getrandbits(16))
        case "flake":
            return _encode((millis << 64) | rng.getrandbits(64), _BASE62, 18)
        case "aid":
            return _encode(millis, _BASE36, 8) + _encode(rng.getrandbits(10), _BASE36, 2)
        case "ulid":
            return _encode((millis << 80) | rng.getrandbits(80), _CROCKFORD, 26)
    raise AssertionError(style)  # pragma: no cover


class SimInstance:
    """One simulated server. Create it with ``SimFediverse.add_instance``.

    Attributes a test may change at any time: ``version``, ``rate_limit``, ``paging_limit``,
    ``latency``, ``limited_federation``, ``disabled_endpoints``, ``gone_status``,
    ``users_total``, ``active_month``, ``open_registrations``, ``peers``, ``title``,
    ``max_characters``, ``trends_enabled``, ``trending_tags`` and the ``faults`` list.
    """

    def __init__(
        self,
        name: str,
        *,
        clock: Callable[[], datetime],
        rng: random.Random,
        software: str,
        version: str,
        rate_limit: RateLimit | None,
        latency: tuple[float, float],
        limited_federation: bool,
        account_domain: Literal["alias"] | None,
        alias_redirect: bool,
        disabled_endpoints: Collection[str],
        gone_status: int,
        users_total: int | None,
        active_month: int | None,
        open_registrations: bool,
        peers: int | Sequence[str],
        host: str,
        title: str | None,
        max_characters: int = 500,
        paging_limit: RateLimit | None = None,
        trends: bool = True,
    ) -> None:
        """Check and store the configuration; see ``SimFediverse.add_instance``."""
        if account_domain not in {None, "alias"}:
            raise ValueError(f"account_domain must be None or 'alias', got {account_domain!r}")
        if ipaddress.ip_address(host) not in _LOOPBACK:
            raise ValueError(f"the simulator only listens on 127.0.0.0/8, not {host}")
        self.name = name
        self._clock = clock
        self._rng = rng
        self._profile = profile_for(software)
        self.version = version
        self.rate_limit = rate_limit
        self.paging_limit = paging_limit
        self.latency = latency
        self.limited_federation = limited_federation
        self.disabled_endpoints = frozenset(disabled_endpoints)
        self.gone_status = gone_status
        self.users_total = users_total
        self.active_month = active_month
        self.open_registrations = open_registrations
        self.peers = (
            [f"peer{number}.{name}.example" for number in range(peers)]
            if isinstance(peers, int)
            else list(peers)
        )
        self.title = title or name.capitalize()
        self.max_characters = max_characters
        self.faults: list[Fault] = []
        self.host = host
        self.has_alias = account_domain == "alias"
        self.alias_redirect = alias_redirect
        self.rate_window = RateWindow()
        self.paging_window = RateWindow()
        #: Whether ``GET /api/v1/trends/tags`` lists the trending tags (else ``[]``).
        self.trends_enabled = trends
        #: Hashtags and their usage; see ``tag_uses`` and ``trending_tags``.
        self.tags = TagStore()
        self._accounts: list[SimAccount] = []
        self._by_id: dict[str, SimAccount] = {}
        self._position: dict[str, int] = {}
        self._by_username: dict[str, SimAccount] = {}
        #: Tokens and posted statuses; the server writes here, tests read ``statuses``.
        self.posts = StatusStore(partial(new_id, self._profile.id_style, rng=rng))
        self._web_port: int | None = None
        self._alias_port: int | None = None
        self._up = True
        self._check()

    def _check(self) -> None:
        unknown = self.disabled_endpoints - DISABLEABLE
        if unknown:
            raise ValueError(f"cannot disable {sorted(unknown)}; use some of {sorted(DISABLEABLE)}")
        if self.gone_status not in _GONE_STATUSES:
            raise ValueError(f"gone_status must be 404 or 410, got {self.gone_status}")
        low, high = self.latency
        if not 0 <= low <= high:
            raise ValueError(f"latency must be (min, max) with 0 <= min <= max, got {self.latency}")
        if self.max_characters < 1:
            raise ValueError(f"max_characters must be at least 1, got {self.max_characters}")

    def __repr__(self) -> str:
        """``SimInstance('alpha', mastodon 4.3.2)``."""
        return f"SimInstance({self.name!r}, {self.software} {self.version})"

    @property
    def software(self) -> str:
        """NodeInfo software name (``mastodon``, ``pleroma``, ...)."""
        return self._profile.name

    @property
    def profile(self) -> SoftwareProfile:
        """What this instance's software offers."""
        return self._profile

    def supports(self, feature: str) -> bool:
        """Whether this software at the current ``version`` offers ``feature``."""
        return self._profile.supports(feature, self.version)

    @property
    def now(self) -> datetime:
        """The world's simulated time."""
        return self._clock()

    @property
    def rng(self) -> random.Random:
        """The world's seeded RNG (for seeding histories deterministically)."""
        return self._rng

    # Addresses -------------------------------------------------------------------------

    def bind(self, web_port: int, alias_port: int | None) -> None:
        """Record the ports the world bound for this instance (the world calls this)."""
        self._web_port = web_port
        self._alias_port = alias_port

    @property
    def up(self) -> bool:
        """Whether the instance accepts connections (see ``SimFediverse.take_down``)."""
        return self._up

    def mark_up(self, up: bool) -> None:  # noqa: FBT001 - the state itself, not an option
        """Record whether the instance accepts connections (the world calls this).

        Changing it does not open or close anything: use ``SimFediverse.take_down`` and
        ``SimFediverse.bring_up``.
        """
        self._up = up

    def _port(self, port: int | None) -> int:
        if port is None:
            raise RuntimeError(
                f"instance {self.name!r} has no address yet: start the world with "
                "world.run_in_thread() or world.serving() first"
            )
        return port

    @property
    def address(self) -> InstanceAddress:
        """Where the instance's web and API are reached."""
        return InstanceAddress(host=self.host, scheme="http", port=self._port(self._web_port))

    @property
    def alias_address(self) -> InstanceAddress | None:
        """Where the account domain's WebFinger is reached, for instances with an alias."""
        if not self.has_alias:
            return None
        return InstanceAddress(host=self.host, scheme="http", port=self._port(self._alias_port))

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` of the web host."""
        return self.address.base_url

    @property
    def web_domain(self) -> str:
        """Authority of the web host, ``127.0.0.1:PORT``."""
        return self.address.authority

    @property
    def domain(self) -> str:
        """The account domain: the alias authority when there is one, else the web host's."""
        alias = self.alias_address
        return (alias or self.address).authority

    # Accounts --------------------------------------------------------------------------

    def add_account(
        self,
        username: str,
        *,
        followers: int = 0,
        following: int = 0,
        statuses: int = 0,
        followers_per_day: float = 0.0,
        following_per_day: float = 0.0,
        statuses_per_day: float = 0.0,
        last_status_days_ago: float | None = 0.0,
        created_days_ago: float | None = None,
        display_name: str | None = None,
        note: str | None = None,
        bot: bool = False,
        locked: bool = False,
        discoverable: bool = True,
        hide_collections: bool = False,
        fields: Sequence[tuple[str, str]] = (),
        account_id: str | None = None,
    ) -> SimAccount:
        """Create an account on this instance and return it.

        ``last_status_days_ago=None`` means the account never posted. ``created_days_ago``
        defaults to a seeded random age of 30 to 3,000 days. ``account_id`` fixes the id
        instead of generating one in the software's style.

        Raises:
            ValueError: the username or the id is taken on this instance.
        """
        if username.lower() in self._by_username:
            raise ValueError(f"{username!r} exists on {self.name!r} already")
        now = self._clock()
        age = created_days_ago if created_days_ago is not None else self._rng.uniform(30, 3000)
        created_at = now - timedelta(days=age)
        if account_id is None:
            account_id = new_id(self._profile.id_style, created_at, self._rng)
            while account_id in self._by_id:  # two accounts made in the same millisecond
                account_id = new_id(self._profile.id_style, created_at, self._rng)
        elif account_id in self._by_id:
            raise ValueError(f"id {account_id!r} exists on {self.name!r} already")
        last_status = (
            None if last_status_days_ago is None else now - timedelta(days=last_status_days_ago)
        )
        account = SimAccount(
            self,
            account_id,
            username,
            clock=self._clock,
            created_at=created_at,
            counts=(followers, following, statuses),
            rates=(followers_per_day, following_per_day, statuses_per_day),
            last_status_at=last_status,
            display_name=username.capitalize() if display_name is None else display_name,
            note=f"<p>Simulated account {username}.</p>" if note is None else note,
            bot=bot,
            locked=locked,
            discoverable=discoverable,
            hide_collections=hide_collections,
            fields=fields,
        )
        self._accounts.append(account)
        self._by_id[account_id] = account
        self._position[account_id] = len(self._position)
        self._by_username[username.lower()] = account
        return account

    @property
    def accounts(self) -> list[SimAccount]:
        """Every account, deleted ones included, in creation order."""
        return list(self._accounts)

    def account(self, username: str) -> SimAccount:
        """Return the account called ``username`` (case-insensitive).

        Raises:
            KeyError: no such account.
        """
        return self._by_username[username.lower()]

    def find_username(self, username: str) -> SimAccount | None:
        """Return the account called ``username`` (case-insensitive), or None."""
        return self._by_username.get(username.lower())

    def find_id(self, account_id: str) -> SimAccount | None:
        """Return the account with ``account_id``, or None."""
        return self._by_id.get(account_id)

    def creation_order(self, account: SimAccount) -> int:
        """Position of ``account`` among this instance's accounts, oldest first."""
        return self._position[account.id]

    # Tokens and statuses ---------------------------------------------------------------

    def add_token(self, account: SimAccount, token: str | None = None) -> str:
        """Return an access token that acts as ``account`` (``Authorization: Bearer TOKEN``).

        ``token`` fixes the value; by default it is 43 seeded random URL-safe characters.
        An account may have several tokens.

        Raises:
            ValueError: ``account`` lives on another instance, or ``token`` is empty.
        """
        if account.instance is not self:
            raise ValueError(f"{account!r} does not live on {self.name!r}")
        if token is None:
            token = "".join(self._rng.choice(_TOKEN_ALPHABET) for _ in range(_TOKEN_LENGTH))
        if not token.strip():
            raise ValueError("a token cannot be empty")
        self.posts.add_token(token, account)
        return token

    def revoke_token(self, token: str) -> None:
        """Invalidate ``token``: requests that use it answer 401 from now on."""
        self.posts.revoke_token(token)

    def token_account(self, token: str | None) -> SimAccount | None:
        """The account ``token`` acts as, or None (no, unknown or revoked token; deleted)."""
        return self.posts.account_for(token)

    @property
    def statuses(self) -> list[SimStatus]:
        """Every status, posted through the API or added by a test, in the order stored.

        A snapshot, safe from threads. ``SimAccount.add_status`` may add statuses made long
        ago, so this is not ``created_at`` order; ids sort like ``created_at``.
        """
        return self.posts.all()

    def find_status(self, status_id: str) -> SimStatus | None:
        """Return the status with ``status_id``, or None."""
        return self.posts.find(status_id)

    # Hashtags --------------------------------------------------------------------------

    def _day(self, day: date | None) -> date:
        return as_day(self._clock() if day is None else day)

    def tag_uses(self, name: str, *, day: date | None = None, uses: int, accounts: int) -> SimTag:
        """Set how often ``name`` was used on ``day`` (UTC; None: today) and by how many accounts.

        ``name`` is given without ``#``, in any case; the first spelling seen is the one served.
        Call it again to change a day, today included (a day in progress). Return the tag.

        Raises:
            ValueError: not a valid hashtag, negative figures, or more accounts than uses.
        """
        return self.tags.set_uses(name, {self._day(day): (uses, accounts)})

    def tag_history(self, name: str, days: Mapping[date, tuple[int, int]]) -> SimTag:
        """Set ``(uses, accounts)`` for each day in ``days``; other days keep theirs.

        Raises:
            ValueError: as ``tag_uses``.
        """
        return self.tags.set_uses(name, {as_day(day): counts for day, counts in days.items()})

    def add_tag_uses(
        self, name: str, *, uses: int = 1, accounts: int = 1, day: date | None = None
    ) -> SimTag:
        """Add ``uses`` and ``accounts`` to ``name`` on ``day`` (None: today, as time passes).

        Raises:
            ValueError: as ``tag_uses``.
        """
        return self.tags.add_uses(name, self._day(day), uses, accounts)

    def find_tag(self, name: str) -> SimTag | None:
        """Return the tag ``name`` stands for (any case, accents folded), or None."""
        return self.tags.find(name)

    @property
    def trending_tags(self) -> list[SimTag]:
        """The tags ``GET /api/v1/trends/tags`` lists, in trend order.

        Assign a list of names (without ``#``) to set them; unknown names become tags with no
        usage. Raises ValueError for a name that is not a valid hashtag.
        """
        return self.tags.trending()

    @trending_tags.setter
    def trending_tags(self, names: Sequence[str]) -> None:
        if isinstance(names, str):
            raise TypeError("trending_tags takes a list of names, not one string")
        self.tags.set_trending(names)

    # Statistics ------------------------------------------------------------------------

    def _live(self) -> list[SimAccount]:
        return [account for account in self._accounts if not account.deleted]

    def user_count(self) -> int:
        """Users the instance reports: ``users_total`` or the accounts not deleted."""
        return self.users_total if self.users_total is not None else len(self._live())

    def status_count(self) -> int:
        """Local posts: the posts of accounts neither deleted nor suspended."""
        return sum(account.statuses for account in self._live() if not account.suspended)

    def active_users(self, *, halfyear: bool = False) -> int:
        """Accounts that posted in the last 30 (or 180) simulated days."""
        if self.active_month is not None and not halfyear:
            return self.active_month
        since = self._clock() - (_ACTIVE_HALFYEAR if halfyear else _ACTIVE_MONTH)
        active = 0
        for account in self._live():
            posted = account.last_status_at
            if not account.suspended and posted is not None and posted >= since:
                active += 1
        if halfyear and self.active_month is not None:
            return max(active, self.active_month)
        return active

    def reset_rate_limit(self) -> None:
        """Give the instance fresh rate-limit windows (API and paging), as if both had renewed."""
        self.rate_window.reset()
        self.paging_window.reset()
