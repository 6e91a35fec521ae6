"""Pace *paging* requests to each host by the budget of Mastodon's second throttle.

Mastodon counts requests without a token twice: every ``/api/*`` request against 300 per 5
minutes, and every request that pages (``max_id``, ``min_id``, ``since_id`` or ``page`` in its
query, on any path) again against 300 per 15 minutes, in windows of its own. An answer's
``X-RateLimit-*`` headers show only one throttle: among those that counted the request, the
one with the least left (the API one on a tie). So a request that does not page shows the API
budget, and a paging request shows either budget:

- when its figures name a window end other than the API window's (known from the host's
  ``HostPacer``, fed by the answers that do not page), they can only be the paging throttle's:
  its exact budget and reset (``PAGING``);
- when they name the API window's end, they are the API throttle's, or the paging throttle's
  whose window happens to end then too (``SAME``); and when the API window is not known they
  could be either (``UNKNOWN``).

Either way the figures are a lower bound of the paging budget (they are the smaller of the
two). ``PagingPacer`` keeps that budget: it counts paging requests down as they are sent and
takes in each paging answer's figures. With exact figures it waits for the paging reset as
``HostPacer`` does. With figures that may be the API's it may not refill at their reset (the
paging window may go on), so it keeps one request in reserve: it stops when one is left, and
once the window the figures named has ended, sends that one alone as a probe, whose answer
(the API budget then fresh, so the paging one shows if it is the smaller) says more. The
reserve is what makes the probe safe: the lower bound never reaches zero by our own
requests, so the paging throttle still has one when the API window renews.

The API pacer takes a paging answer's figures only when they are ``SAME``: figures of the
paging window (up to 15 minutes long) would otherwise hold every other request to the host
until the paging reset.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from fedimeter.fediverse.ratelimit import RESET_MARGIN, Pacer

if TYPE_CHECKING:
    from fedimeter.fediverse.ratelimit import HostPacer, Pacing, RateLimitInfo

__all__ = ["PAGING_PARAMS", "PagingPacer", "Shown", "is_paging"]

#: Query parameters that make a request a paging request (Mastodon's ``paging_request?``).
PAGING_PARAMS = ("max_id", "min_id", "since_id", "page")
_PAGING_BYTES = tuple(name.encode() for name in PAGING_PARAMS)
#: Two estimates of one window's end differ by the ``Date`` header's second and latency.
_SAME_WINDOW = 2 * RESET_MARGIN


class Shown(enum.Enum):
    """Whose budget a paging answer's figures show."""

    #: The paging throttle's: they name a window end other than the API window's.
    PAGING = "paging"
    #: The API window's end: the API throttle's, or the paging one's ending then too.
    SAME = "same"
    #: Not known (no figures, or the API window unknown): either throttle's.
    UNKNOWN = "unknown"


def is_paging(raw_path: bytes) -> bool:
    """Whether a request target pages, by Rack::Attack's rule (Mastodon's ``paging_request?``).

    One of ``max_id``, ``min_id``, ``since_id``, ``page`` must be present and not blank (the
    last of repeated values counts), or given in an array or hash form (``max_id[]=``).
    """
    mark = raw_path.find(b"?")
    if mark < 0:
        return False
    query = raw_path[mark + 1 :]
    # The quick answer for nearly every request; an escaped name (max%5Fid) is decoded below.
    if b"%" not in query and not any(name in query for name in _PAGING_BYTES):
        return False
    last: dict[str, str] = {}
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        base, bracket, _ = name.partition("[")
        if base in PAGING_PARAMS:
            if bracket:
                return True
            last[base] = value
    return any(value.strip() for value in last.values())


class PagingPacer(Pacer):
    """One host's paging budget, shared by every paging request to it.

    Call ``acquire()`` before sending a paging request (before taking the host's connection
    slot and API budget: a paging wait must not hold those), then exactly one of
    ``answered()`` or ``failed()``; ``back_off()`` holds paging requests (a 429).
    """

    budget_name = "budget for paging requests"

    def __init__(self, host: str, api: HostPacer, pacing: Pacing) -> None:
        """Pace paging requests to ``host``, whose API window ``api`` knows."""
        super().__init__(host, pacing)
        self._api = api
        #: Paging requests we may still send (a lower bound); None: unknown, one at a time.
        self._remaining: int | None = None
        #: When ``_remaining`` may be raised without an answer.
        self._reset_at: float | None = None
        #: Whether the estimate is the paging throttle's own (else: it may be the API's).
        self._exact = False
        self._limit: int | None = None

    @property
    def remaining(self) -> int | None:
        """Paging requests we may still send; ``None`` when not known."""
        return self._remaining

    @property
    def exact(self) -> bool:
        """Whether the estimate comes from the paging throttle's own figures."""
        return self._exact

    async def acquire(self) -> None:
        """Wait until a paging request may be sent to the host, then count it as sent.

        Raises:
            RateLimited: the wait would be longer than ``max_wait``.
        """
        while True:
            now = self._monotonic()
            if self._reset_at is not None and now >= self._reset_at + self._margin:
                # The paging window ended: its whole limit is ours. A window the figures may
                # have been the API's ended: the paging budget is unknown, the reserve probes.
                exact = self._exact and self._limit is not None
                self._remaining = self._limit if exact else None
                self._reset_at, self._exact = None, exact
            if now < self._blocked_until:
                await self._wait(self._blocked_until - now)
                continue
            floor = 0 if self._exact else 1
            if self._remaining is not None and self._remaining <= floor:
                if self._reset_at is not None:
                    await self._wait(self._reset_at + self._margin - now)
                    continue
                if self._in_flight > 0:
                    await self._answer.wait()
                    continue
                # Spent by requests that all failed: nothing will tell, start as unknown.
                self._remaining, self._exact = None, False
            if self._remaining is None and self._in_flight > 0:
                await self._answer.wait()
                continue
            break
        if self._remaining is not None:
            self._remaining -= 1
        self._in_flight += 1

    def answered(self, info: RateLimitInfo) -> Shown:
        """Take in a paging answer's headers; say whose budget they show."""
        self._in_flight = max(0, self._in_flight - 1)
        shown = Shown.UNKNOWN
        if info.has_budget and info.remaining is not None and info.reset_in is not None:
            now = self._monotonic()
            reset_at = now + info.reset_in
            api_reset = self._api.reset_at
            if api_reset is not None and api_reset > now:
                shown = Shown.SAME if abs(reset_at - api_reset) <= _SAME_WINDOW else Shown.PAGING
            # Requests in flight may not be counted yet: the estimate errs on the safe side.
            budget = max(0, info.remaining - self._in_flight)
            if shown is Shown.PAGING:
                if info.limit is not None:
                    self._limit = info.limit
                self._take(budget, reset_at, exact=True)
            elif not self._exact:
                # A lower bound adds nothing to an exact estimate; otherwise it is the estimate.
                self._take(budget, reset_at, exact=False)
        self._wake()
        return shown

    def _take(self, budget: int, reset_at: float, *, exact: bool) -> None:
        new = (
            self._remaining is None
            or self._reset_at is None
            or exact != self._exact
            or reset_at > self._reset_at + self._margin
        )
        if new:
            self._remaining, self._reset_at, self._exact = budget, reset_at, exact
        elif self._remaining is not None:
            # An older answer arriving late must not raise the budget again.
            self._remaining = min(self._remaining, budget)
