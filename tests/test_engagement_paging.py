"""Paging requests and Mastodon's second throttle: telling budgets apart, pacing by the paging one.

Fake time throughout: a sleep moves the clocks on and is recorded, so a wait is asserted as
the number of seconds slept, not measured.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from fedimeter.fediverse.http import Fetcher
from fedimeter.fediverse.paging import PagingPacer, Shown, is_paging
from fedimeter.fediverse.ratelimit import RESET_MARGIN, HostPacer, Pacing, RateLimitInfo
from test_fediverse_support import FakeTime, http_date, iso_z, json_response, make_settings

HOST = "social.example"
FIRST = f"https://{HOST}/api/v1/accounts/1/statuses?limit=40"
NEXT = f"https://{HOST}/api/v1/accounts/1/statuses?limit=40&max_id=100"
ACCOUNT = f"https://{HOST}/api/v1/accounts/1"


@pytest.mark.parametrize(
    ("target", "paging"),
    [
        (b"/api/v1/accounts/1/statuses?limit=40", False),
        (b"/api/v1/accounts/1/statuses?limit=40&max_id=100", True),
        (b"/api/v1/accounts/1/statuses?min_id=5", True),
        (b"/api/v1/accounts/1/statuses?since_id=5", True),
        (b"/api/v1/trends/tags?page=2", True),
        (b"/api/v1/accounts/1/statuses?max_id=", False),
        (b"/api/v1/accounts/1/statuses?max_id=%20", False),
        (b"/api/v1/accounts/1/statuses?max_id=1&max_id=", False),
        (b"/api/v1/accounts/1/statuses?max_id[]=", True),
        (b"/api/v1/accounts/1/statuses?max%5Fid=3", True),
        (b"/api/v1/accounts?id[]=1&id[]=2", False),
        (b"/api/v1/accounts/1", False),
        (b"/api/v1/statuses/max_id", False),
    ],
)
def test_paging_requests_are_told_by_mastodons_rule(target: bytes, paging: bool) -> None:
    """max_id, min_id, since_id or page present and not blank (the last one), or an array."""
    assert is_paging(target) is paging


def _pacers(time: FakeTime) -> tuple[HostPacer, PagingPacer]:
    pacing = Pacing(max_wait=3600, sleep=time.sleep, monotonic=time.monotonic)
    api = HostPacer(HOST, pacing)
    paging = PagingPacer(HOST, api, pacing)
    return api, paging


def _figures(limit: int, remaining: int, reset_in: float) -> RateLimitInfo:
    return RateLimitInfo(limit=limit, remaining=remaining, reset_in=reset_in)


async def _api_window(api: HostPacer, reset_in: float = 300.0) -> None:
    """One answer that does not page: the API window ends in ``reset_in`` seconds."""
    await api.acquire()
    api.answered(_figures(300, 290, reset_in))


async def test_figures_with_another_window_end_are_the_paging_budget() -> None:
    """Exact paging figures: spend them all, then wait for the paging reset and refill."""
    time = FakeTime()
    api, paging = _pacers(time)
    await _api_window(api)
    await paging.acquire()
    assert paging.answered(_figures(5, 2, 900.0)) is Shown.PAGING
    assert (paging.remaining, paging.exact) == (2, True)
    for _ in range(2):
        await paging.acquire()
        paging.answered(RateLimitInfo())  # answers without figures: the count goes on
    assert time.sleeps == []
    await paging.acquire()
    assert time.sleeps == [pytest.approx(900.0 + RESET_MARGIN)]
    assert paging.remaining == 4  # the limit of 5, one of it just taken


async def test_figures_of_the_api_window_keep_one_request_in_reserve() -> None:
    """SAME: a lower bound whose reset may be the API's; one is kept, then one probe goes."""
    time = FakeTime()
    api, paging = _pacers(time)
    await _api_window(api, reset_in=120.0)
    await paging.acquire()
    assert paging.answered(_figures(300, 3, 120.4)) is Shown.SAME
    assert (paging.remaining, paging.exact) == (3, False)
    await paging.acquire()
    await paging.acquire()  # 3 -> 1: the reserve is left
    assert time.sleeps == []
    paging.failed()
    paging.failed()
    await paging.acquire()  # waits for the window the figures named, then probes
    assert time.sleeps == [pytest.approx(120.4 + RESET_MARGIN)]
    assert paging.remaining is None  # unknown: the probe's answer will tell
    probe_answered = False

    async def second() -> None:
        await paging.acquire()
        assert probe_answered  # one request at a time while the budget is unknown

    waiting = asyncio.create_task(second())
    await asyncio.sleep(0)
    assert not waiting.done()
    probe_answered = True
    await _api_window(api, reset_in=300.0)  # the host's next answer that does not page
    assert paging.answered(_figures(300, 200, 600.0)) is Shown.PAGING
    await waiting


async def test_without_a_known_api_window_the_figures_are_not_trusted_as_paging() -> None:
    """UNKNOWN: the host never said its API window; the figures are a lower bound only."""
    time = FakeTime()
    _, paging = _pacers(time)
    await paging.acquire()
    assert paging.answered(_figures(5, 4, 3.0)) is Shown.UNKNOWN
    assert (paging.remaining, paging.exact) == (4, False)


async def test_a_lower_bound_does_not_lower_an_exact_paging_estimate() -> None:
    """Once the paging throttle showed itself, the API's smaller figures do not hold paging."""
    time = FakeTime()
    api, paging = _pacers(time)
    await _api_window(api)
    await paging.acquire()
    paging.answered(_figures(300, 250, 800.0))
    await paging.acquire()
    assert paging.answered(_figures(300, 3, 300.0)) is Shown.SAME
    assert (paging.remaining, paging.exact) == (249, True)


async def test_a_late_older_answer_does_not_raise_the_budget() -> None:
    """Answers of one window take the smaller count: a late one cannot give budget back."""
    time = FakeTime()
    api, paging = _pacers(time)
    await _api_window(api)
    await paging.acquire()
    paging.answered(_figures(5, 4, 600.0))
    await paging.acquire()
    await paging.acquire()
    paging.answered(_figures(5, 2, 600.0))  # one still in flight: 1 left for sure
    paging.answered(_figures(5, 3, 600.0))  # the older answer, arriving last
    assert paging.remaining == 1


def _paging_headers(time: FakeTime, limit: int, remaining: int, reset_in: float) -> dict[str, str]:
    now = time.now()
    return {
        "Date": http_date(now),
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": iso_z(now + timedelta(seconds=reset_in)),
    }


def _fetcher(time: FakeTime, handler: httpx.MockTransport) -> Fetcher:
    return Fetcher(
        make_settings(max_rate_limit_wait=3600),
        handler,
        sleep=time.sleep,
        clock=time.now,
        monotonic=time.monotonic,
    )


async def test_a_spent_paging_budget_holds_paging_requests_only() -> None:
    """The paging window's figures go to the paging pacer; the API pacer never sees them."""
    time = FakeTime()
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(str(request.url))
        if "max_id" in str(request.url):
            return json_response([], headers=_paging_headers(time, 2, 0, 600.0))
        return json_response([], headers=_paging_headers(time, 300, 250, 120.0))

    fetcher = _fetcher(time, httpx.MockTransport(handler))
    await fetcher.get_json(FIRST)
    await fetcher.get_json(NEXT)  # paging budget: 0 left until 600 s from now
    for _ in range(3):
        await fetcher.get_json(ACCOUNT)  # the API budget is untouched by the paging figures
    assert time.sleeps == []
    # Counted down from the first answer's 250 by the four requests since; the paging
    # answer's "0 left" never reached the API budget.
    assert fetcher.pacers.api(HOST).remaining == 250 - 4
    await fetcher.get_json(NEXT)
    assert time.sleeps == [pytest.approx(600.0 + RESET_MARGIN, abs=1.0)]
    assert len(sent) == 6
    assert fetcher.stats.rate_limited == 0


async def test_a_paging_429_of_the_paging_throttle_holds_paging_requests_only() -> None:
    """A 429 with paging figures: paging requests wait for its reset, others go on."""
    time = FakeTime()
    answers = iter(
        [
            json_response([], headers=_paging_headers(time, 300, 250, 120.0)),
            json_response(
                {"error": "Too many requests"},
                429,
                headers=_paging_headers(time, 2, 0, 700.0),
            ),
            json_response([], headers=_paging_headers(time, 300, 249, 120.0)),
        ]
    )
    paging_answers = iter(
        [json_response([], headers=_paging_headers(time, 2, 1, 900.0))],
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if "max_id" in str(request.url) and time.sleeps:
            return next(paging_answers)
        return next(answers)

    fetcher = _fetcher(time, httpx.MockTransport(handler))
    await fetcher.get_json(FIRST)

    async def page() -> None:
        await fetcher.get_json(NEXT)

    paging = asyncio.create_task(page())
    while fetcher.stats.rate_limited == 0:
        await asyncio.sleep(0)
    await fetcher.get_json(ACCOUNT)  # not held by the paging 429
    await paging
    # One wait, the paging request's for its throttle's reset; the other request had none.
    assert time.sleeps == [pytest.approx(700.0 + RESET_MARGIN, abs=1.0)]
    assert fetcher.stats.requests == 4
