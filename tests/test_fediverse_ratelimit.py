import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from fedimeter.domain.models import InstanceAddress
from fedimeter.errors import RateLimited
from fedimeter.fediverse import FediverseClient, Measurement
from fedimeter.fediverse.ratelimit import (
    RESET_MARGIN,
    HostPacer,
    Pacing,
    RateLimitInfo,
    read_rate_limit,
)
from test_fediverse_support import (
    START,
    FakeTime,
    Routes,
    account,
    fixture,
    http_date,
    iso_z,
    json_response,
    make_client,
)

HOST = InstanceAddress("social.example")


def headers(**values: str) -> httpx.Headers:
    """Headers from keyword arguments, ``_`` standing for ``-``."""
    return httpx.Headers({key.replace("_", "-"): value for key, value in values.items()})


# --- header parsing ---------------------------------------------------------------------


def test_mastodon_headers_are_read_against_the_servers_date() -> None:
    """Reset minus the server's Date gives the wait, whatever our own clock says."""
    server_now = START + timedelta(hours=3)  # our clock is three hours behind
    info = read_rate_limit(
        headers(
            X_RateLimit_Limit="300",
            X_RateLimit_Remaining="0",
            X_RateLimit_Reset=iso_z(server_now + timedelta(seconds=42.5)),
            Date=http_date(server_now),
        ),
        now=START,
    )
    assert info == RateLimitInfo(limit=300, remaining=0, reset_in=42.5, retry_after=None)
    assert info.has_budget


@pytest.mark.parametrize(
    ("reset", "seconds"),
    [
        ("2026-11-22T10:05:00.123456Z", 300.123456),
        ("2026-11-22T10:05:00Z", 300.0),
        ("2026-11-22T10:05:00.1Z", 300.1),
        ("2026-11-22T12:05:00+02:00", 300.0),
        ("2026-11-22T10:05:00", 300.0),
        ("2026-11-22 10:05:00.5+00:00", 300.5),
        ("2026-11-22T09:00:00Z", 0.0),
        ("60", 60.0),
        (str(int((START + timedelta(seconds=90)).timestamp())), 90.0),
    ],
)
def test_reset_formats_are_read_liberally(reset: str, seconds: float) -> None:
    """Microseconds or none, Z or offsets, naive UTC, a delay or a Unix time all work."""
    info = read_rate_limit(headers(X_RateLimit_Reset=reset), now=START)
    assert info.reset_in == pytest.approx(seconds)


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"X-RateLimit-Limit": "lots", "X-RateLimit-Remaining": "-3", "X-RateLimit-Reset": "soon"},
        {"X-RateLimit-Remaining": "1e3", "X-RateLimit-Reset": "NaN", "Retry-After": "later"},
        {"X-RateLimit-Remaining": "99999999999999", "Retry-After": "inf", "Date": "yesterday"},
        {"X-RateLimit-Reset": "2026-13-45T99:99:99Z", "Retry-After": "Mon, 99 Foo 2026"},
        {"X-RateLimit-Remaining": "٣".encode(), "X-RateLimit-Reset": "9999-12-31T23:59:59-23:59"},
    ],
)
def test_missing_or_garbage_headers_give_nothing_and_never_raise(
    values: dict[str, Any],
) -> None:
    """Headers that are absent or nonsense read as 'unknown' instead of crashing."""
    info = read_rate_limit(httpx.Headers(values), now=START)
    assert info.remaining is None
    assert info.retry_after is None
    assert not info.has_budget


def test_retry_after_in_seconds_and_as_a_date() -> None:
    """Retry-After is honoured as a number of seconds or an HTTP date (against Date)."""
    in_seconds = read_rate_limit(headers(Retry_After="120"), now=START)
    server_now = START + timedelta(days=1)
    as_date = read_rate_limit(
        headers(
            Retry_After=http_date(server_now + timedelta(seconds=30)), Date=http_date(server_now)
        ),
        now=START,
    )
    assert in_seconds.retry_after == 120
    assert as_date.retry_after == 30


# --- the pacer --------------------------------------------------------------------------


def pacer(time: FakeTime, max_wait: float = 900.0) -> HostPacer:
    """A pacer on fake time."""
    return HostPacer(
        "social.example", Pacing(max_wait=max_wait, sleep=time.sleep, monotonic=time.monotonic)
    )


def budget(remaining: int, reset_in: float, limit: int = 300) -> RateLimitInfo:
    """What an answer with a known budget says."""
    return RateLimitInfo(limit=limit, remaining=remaining, reset_in=reset_in)


async def test_unknown_budget_sends_one_request_then_waits_for_its_answer() -> None:
    """Before a host has answered once, a second request waits for the first answer."""
    time = FakeTime()
    limiter = pacer(time)
    await limiter.acquire()
    second = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert not second.done()
    limiter.answered(RateLimitInfo())
    await asyncio.wait_for(second, 1)
    assert limiter.in_flight == 1
    assert time.sleeps == []


async def test_spent_window_waits_until_reset_plus_margin() -> None:
    """With no requests left, acquire sleeps until the reset (plus a margin), then refills."""
    time = FakeTime()
    limiter = pacer(time)
    await limiter.acquire()
    limiter.answered(budget(remaining=0, reset_in=120, limit=300))
    await limiter.acquire()
    assert time.sleeps == [pytest.approx(120 + RESET_MARGIN)]
    assert limiter.remaining == 299


async def test_requests_in_flight_are_subtracted_from_the_servers_count() -> None:
    """An answer's Remaining is reduced by requests sent but not yet counted by the server."""
    time = FakeTime()
    limiter = pacer(time)
    await limiter.acquire()
    limiter.answered(budget(remaining=10, reset_in=300))
    for _ in range(3):
        await limiter.acquire()
    limiter.answered(budget(remaining=5, reset_in=300))
    assert limiter.remaining == 3  # 5 left, minus the 2 still in flight


async def test_late_answer_from_earlier_cannot_raise_the_budget() -> None:
    """An answer that arrives out of order with a higher Remaining is not believed."""
    time = FakeTime()
    limiter = pacer(time)
    await limiter.acquire()
    limiter.answered(budget(remaining=10, reset_in=300))
    await limiter.acquire()
    await limiter.acquire()
    limiter.answered(budget(remaining=2, reset_in=299.5))  # 2 left, 1 still in flight
    limiter.answered(budget(remaining=9, reset_in=299.7))  # older news, arriving late
    assert limiter.remaining == 1


async def test_wait_longer_than_the_limit_raises_rate_limited() -> None:
    """A reset further away than max_rate_limit_wait fails at once instead of sleeping."""
    time = FakeTime()
    limiter = pacer(time, max_wait=60)
    await limiter.acquire()
    limiter.answered(budget(remaining=0, reset_in=600))
    with pytest.raises(RateLimited, match=r"social\.example has used up its rate limit"):
        await limiter.acquire()
    assert time.sleeps == []


async def test_back_off_holds_every_request() -> None:
    """After back_off(s), the next request waits s seconds."""
    time = FakeTime()
    limiter = pacer(time)
    limiter.back_off(30)
    await limiter.acquire()
    assert time.sleeps == [30]


async def test_failed_request_keeps_its_budget_spent() -> None:
    """A request without an answer may have been counted: its budget is not given back."""
    time = FakeTime()
    limiter = pacer(time)
    await limiter.acquire()
    limiter.answered(budget(remaining=1, reset_in=60))
    await limiter.acquire()
    limiter.failed()
    await limiter.acquire()
    assert time.sleeps == [pytest.approx(60 + RESET_MARGIN)]


# --- through the client -----------------------------------------------------------------


class LimitedServer:
    """A Mastodon-like fixed window: ``limit`` per window, 429 with headers once spent."""

    def __init__(
        self,
        time: FakeTime,
        *,
        limit: int,
        remaining: int,
        window: float = 300,
        skew: timedelta = timedelta(0),
    ) -> None:
        """Start with ``remaining`` of ``limit``; the server's clock runs ``skew`` ahead."""
        self.time = time
        self.skew = skew
        self.limit = limit
        self.remaining = remaining
        self.window = window
        self.reset_at = self.now() + timedelta(seconds=window)
        self.log: list[tuple[float, int]] = []

    def now(self) -> datetime:
        """The server's own clock."""
        return self.time.now() + self.skew

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        """Count the request against the window; 429 once it is spent."""
        now = self.now()
        if now >= self.reset_at:
            self.remaining = self.limit
            self.reset_at = now + timedelta(seconds=self.window)
        status = 200 if self.remaining > 0 else 429
        self.remaining = max(0, self.remaining - 1)
        self.log.append((self.time.elapsed, status))
        limit_headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": iso_z(self.reset_at),
            "Date": http_date(now),
        }
        await asyncio.sleep(0.001)  # the answer takes a while: other requests interleave
        if status == 429:
            return json_response(fixture("error_429_too_many_requests.json"), 429, limit_headers)
        remote_id = request.url.path.rsplit("/", 1)[-1]
        return json_response(account(remote_id), 200, limit_headers)


async def measure_all(
    client: FediverseClient, ids: list[str], supports_batch: bool | None = False
) -> list[Measurement]:
    """Every measurement of one measure() call."""
    return [
        m async for batch in client.measure(HOST, ids, supports_batch=supports_batch) for m in batch
    ]


async def test_local_budget_is_never_exceeded_with_requests_in_flight() -> None:
    """Limit 5 with 3 left, 10 accounts, 4 at a time: only the budget goes out before the reset."""
    time = FakeTime()
    server = LimitedServer(time, limit=5, remaining=3)
    client = make_client(server, time, per_host_concurrency=4)
    measurements = await measure_all(client, [str(i) for i in range(10)])
    before_reset = [entry for entry in server.log if entry[0] < 300]
    assert len(before_reset) == 3
    assert all(status == 200 for _, status in server.log)
    assert client.stats.rate_limited == 0
    assert all(m.snapshot is not None for m in measurements)
    assert len(measurements) == 10


async def test_429_waits_until_the_reset_then_succeeds() -> None:
    """A 429 without Retry-After waits for X-RateLimit-Reset (measured on fake time)."""
    time = FakeTime()
    server = LimitedServer(time, limit=300, remaining=0, window=75)
    client = make_client(server, time)
    [measurement] = await measure_all(client, ["7"])
    assert measurement.snapshot is not None
    assert time.sleeps == [pytest.approx(75 + RESET_MARGIN)]
    assert [status for _, status in server.log] == [429, 200]
    assert client.stats.rate_limited == 1
    assert client.stats.rate_limit_waits == 1
    assert client.stats.rate_limit_wait_seconds == pytest.approx(75 + RESET_MARGIN)
    assert client.stats.retries == 0


async def test_429_wait_uses_the_servers_clock_not_ours() -> None:
    """With our clock an hour off, the wait is still Reset minus the server's Date."""
    time = FakeTime()
    server = LimitedServer(time, limit=300, remaining=0, window=60, skew=timedelta(hours=1))
    client = make_client(server, time)
    await measure_all(client, ["7"])
    assert time.sleeps == [pytest.approx(60 + RESET_MARGIN)]


@pytest.mark.parametrize("retry_after", ["17", "Sun, 22 Nov 2026 10:00:17 GMT"])
async def test_429_honours_retry_after(retry_after: str) -> None:
    """Retry-After (seconds or HTTP date) sets the wait when a proxy sends it."""
    time = FakeTime()
    answers = [
        json_response(
            {"error": "Too many requests"},
            429,
            {"Retry-After": retry_after, "Date": http_date(START)},
        ),
        json_response(account("7")),
    ]
    client = make_client(lambda _request: answers.pop(0), time)
    [measurement] = await measure_all(client, ["7"])
    assert measurement.snapshot is not None
    assert time.sleeps == [pytest.approx(17)]


async def test_429_without_any_header_backs_off_exponentially_then_gives_up() -> None:
    """Bare 429s back off 1, 2, 4, 8, 8... s and after ten of them fail with RateLimited."""
    time = FakeTime()
    client = make_client(lambda _request: httpx.Response(429), time, retry_max_delay=8)
    [measurement] = await measure_all(client, ["7"])
    assert isinstance(measurement.error, RateLimited)
    assert "answered 429 Too Many Requests 11 times in a row" in str(measurement.error)
    assert time.sleeps == [1, 2, 4, 8, 8, 8, 8, 8, 8, 8]
    assert client.stats.retries == 0


async def test_reset_beyond_max_rate_limit_wait_fails_those_accounts() -> None:
    """When the reset is further than max_rate_limit_wait, accounts fail with RateLimited."""
    time = FakeTime()
    server = LimitedServer(time, limit=300, remaining=0, window=3600)
    client = make_client(server, time, max_rate_limit_wait=600)
    measurements = await measure_all(client, ["1", "2", "3"])
    assert all(isinstance(m.error, RateLimited) for m in measurements)
    assert "max_rate_limit_wait (600 s)" in str(measurements[0].error)
    assert time.sleeps == []


async def test_garbage_rate_limit_headers_do_not_break_measuring() -> None:
    """Nonsense X-RateLimit values are ignored; the account is still measured."""
    time = FakeTime()
    garbage = {"X-RateLimit-Remaining": "none", "X-RateLimit-Reset": "whenever", "Date": "?"}
    client = make_client(lambda _request: json_response(account("7"), headers=garbage), time)
    [measurement] = await measure_all(client, ["7"])
    assert measurement.snapshot is not None


async def test_well_known_requests_are_not_held_by_a_spent_budget() -> None:
    """WebFinger and NodeInfo are outside the API limit: a spent budget does not delay them."""
    time = FakeTime()
    routes = Routes()
    spent = {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": iso_z(START + timedelta(seconds=300)),
        "Date": http_date(START),
    }
    routes.add(
        "social.example",
        "/api/v1/accounts/7",
        lambda _r: json_response(account("7"), headers=spent),
    )
    routes.add("social.example", "/.well-known/nodeinfo", fixture("nodeinfo_discovery.json"))
    routes.add("example.org", "/nodeinfo/2.0", fixture("nodeinfo_2_0_mastodon.json"))
    client = make_client(routes, time)
    await measure_all(client, ["7"])
    info = await client.server_info(HOST)
    assert info.software == "mastodon"
    assert time.sleeps == []
