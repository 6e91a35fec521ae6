"""Fixed-window rate limiting the way Mastodon's Rack::Attack does it, on real time.

Mastodon counts every ``/api/*`` request per IP in fixed windows aligned to the epoch
(window index = floor(now / period)); the request that makes the count exceed the limit and
every later one in the window get 429. A second throttle counts *paging* requests (any request
with ``page``, ``min_id``, ``max_id`` or ``since_id``) in windows of its own. The simulator
keeps one counter per throttle and instance (all test traffic comes from 127.0.0.1) and uses
``time.time()`` so that the ``X-RateLimit-Reset`` it announces is a real moment a client can
wait for.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = [
    "PAGING_PARAMS",
    "RateLimit",
    "RateVerdict",
    "RateWindow",
    "Throttle",
    "is_paging",
    "shown_verdict",
]

#: Mastodon's throttles the simulator models: ``api`` (every ``/api/*`` request) and
#: ``paging`` (requests that page through a collection).
Throttle = Literal["api", "paging"]

#: Parameters that make a request a paging request (Rack::Attack's ``paging_request?``).
PAGING_PARAMS = ("page", "min_id", "max_id", "since_id")


@dataclass(frozen=True, slots=True)
class RateLimit:
    """An instance's API budget: ``limit`` requests per fixed window of ``window`` seconds.

    The defaults are Mastodon's budget for requests without a token (300 per 5 minutes).
    ``retry_after`` adds a ``Retry-After`` header to 429s, as some proxies do (Mastodon itself
    never sends one); ``send_headers=False`` drops the ``X-RateLimit-*`` headers, as proxies
    that strip them do, while the limit still applies.
    """

    limit: int = 300
    window: float = 300.0
    retry_after: bool = False
    send_headers: bool = True

    def __post_init__(self) -> None:
        """Refuse budgets that cannot work.

        Raises:
            ValueError: ``limit`` below 1 or ``window`` not positive.
        """
        if self.limit < 1:
            raise ValueError(f"RateLimit.limit must be at least 1, got {self.limit}")
        if not self.window > 0:
            raise ValueError(f"RateLimit.window must be positive, got {self.window}")


@dataclass(frozen=True, slots=True)
class RateVerdict:
    """What the limiter decided for one request, and the headers that announce it."""

    limit: RateLimit
    allowed: bool
    remaining: int
    #: End of the current window, seconds since the epoch.
    reset_at: float
    #: When the request arrived, seconds since the epoch.
    now: float
    #: The throttle that counted the request.
    throttle: Throttle = "api"

    def headers(self) -> list[tuple[str, str]]:
        """Return the rate-limit headers for the answer (none when the limit hides them)."""
        headers: list[tuple[str, str]] = []
        if self.limit.send_headers:
            headers += [
                ("X-RateLimit-Limit", str(self.limit.limit)),
                ("X-RateLimit-Remaining", str(self.remaining)),
                ("X-RateLimit-Reset", format_reset(self.reset_at)),
            ]
        if not self.allowed and self.limit.retry_after:
            # Proxies announce whole seconds, rounded up so that waiting that long is enough.
            headers.append(("Retry-After", str(max(1, math.ceil(self.reset_at - self.now)))))
        return headers


def is_paging(query: Mapping[str, list[str]]) -> bool:
    """Whether a request with ``query`` pages, by Rack::Attack's ``paging_request?`` rule.

    One of ``page``, ``min_id``, ``max_id``, ``since_id`` must be present in Rails' sense: a
    scalar that is not blank (Rack keeps the last of repeated values), or any array or hash
    form (``max_id[]=...``), which Rack builds whatever its values.
    """
    for name in PAGING_PARAMS:
        values = query.get(name)
        if values and values[-1].strip():
            return True
        if any(key.startswith(f"{name}[") and query[key] for key in query):
            return True
    return False


def shown_verdict(verdicts: Sequence[RateVerdict]) -> RateVerdict | None:
    """Return the verdict whose figures an answer shows: the throttle closest to its limit.

    Mastodon's ``RateLimitHeaders`` picks, among the throttles that counted the request, the
    one with the least ``limit - count``; on a tie the first one evaluated (the API throttle).
    """
    return min(verdicts, key=lambda verdict: verdict.remaining, default=None)


def format_reset(epoch_seconds: float) -> str:
    """Format a moment as Mastodon's ``X-RateLimit-Reset``: ISO 8601 UTC with microseconds."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RateWindow:
    """The request counter of one instance's current fixed window."""

    def __init__(self) -> None:
        """Start with no window open."""
        self._lock = threading.Lock()
        self._index: int | None = None
        self._count = 0

    def hit(self, limit: RateLimit, now: float, throttle: Throttle = "api") -> RateVerdict:
        """Count one request arriving at ``now`` (epoch seconds) and say whether it may pass.

        Like Rack::Attack, a refused request still counts; it changes nothing in a fixed window
        but keeps ``Remaining`` at 0 until the reset.
        """
        index = math.floor(now / limit.window)
        with self._lock:
            if index != self._index:
                self._index = index
                self._count = 0
            self._count += 1
            count = self._count
        return RateVerdict(
            limit=limit,
            allowed=count <= limit.limit,
            remaining=max(0, limit.limit - count),
            reset_at=(index + 1) * limit.window,
            now=now,
            throttle=throttle,
        )

    def reset(self) -> None:
        """Forget the current window's count, as if the budget had just renewed."""
        with self._lock:
            self._index = None
            self._count = 0
