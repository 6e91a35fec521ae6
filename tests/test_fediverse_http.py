import asyncio
import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from fedimeter.errors import (
    AccessDenied,
    AddressRefused,
    BadResponse,
    RemoteUnavailable,
)
from fedimeter.fediverse.body import MAX_JSON_DEPTH, decode_json
from fedimeter.fediverse.http import Fetcher
from test_fediverse_support import (
    AsyncHandler,
    FakeTime,
    Handler,
    fixture,
    json_response,
    make_settings,
)

URL = "https://social.example/api/v1/accounts/1"


def make_fetcher(
    handler: Handler | AsyncHandler,
    time: FakeTime | None = None,
    *,
    jitter: float = 1.0,
    **settings: Any,
) -> Fetcher:
    """A Fetcher over a MockTransport, fake time and a fixed jitter factor."""
    time = time or FakeTime()
    return Fetcher(
        make_settings(**settings),
        httpx.MockTransport(handler),
        sleep=time.sleep,
        clock=time.now,
        monotonic=time.monotonic,
        jitter=lambda: jitter,
    )


class scripted:  # noqa: N801 - reads as a function: scripted(answer, ...)
    """A handler that gives these answers (or raises these errors) in turn."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        """Queue the answers; ``seen`` collects the requests."""
        self.queue = list(answers)
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """The next answer."""
        self.seen.append(request)
        answer = self.queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    """A streamed body in these parts (not read ahead, unlike ``content=bytes``)."""
    for part in parts:
        yield part


# --- retries ----------------------------------------------------------------------------


async def test_5xx_is_retried_with_exponential_backoff_then_succeeds() -> None:
    """Two 503s then a 200: two retries, sleeping 1 then 2 s (jitter at its maximum)."""
    time = FakeTime()
    handler = scripted(httpx.Response(503), httpx.Response(502), json_response({"id": "1"}))
    reply = await make_fetcher(handler, time).get_json(URL)
    assert reply.data == {"id": "1"}
    assert time.sleeps == [1.0, 2.0]


async def test_backoff_is_jittered_below_the_exponential_bound() -> None:
    """Full jitter: each delay is a random fraction of base * 2**attempt."""
    time = FakeTime()
    handler = scripted(httpx.Response(500), httpx.Response(500), json_response({}))
    await make_fetcher(handler, time, jitter=0.25).get_json(URL)
    assert time.sleeps == [0.25, 0.5]


async def test_backoff_is_capped_at_retry_max_delay() -> None:
    """The exponential bound stops growing at retry_max_delay."""
    time = FakeTime()
    handler = scripted(*[httpx.Response(500)] * 5, json_response({}))
    await make_fetcher(handler, time, max_retries=5, retry_max_delay=3).get_json(URL)
    assert time.sleeps == [1, 2, 3, 3, 3]


async def test_5xx_exhausted_gives_remote_unavailable_with_the_count() -> None:
    """After max_retries retries the error says what the server answered, and how often."""
    time = FakeTime()
    handler = scripted(*[httpx.Response(503)] * 4)
    fetcher = make_fetcher(handler, time, max_retries=3)
    with pytest.raises(RemoteUnavailable) as caught:
        await fetcher.get_json(URL)
    assert str(caught.value) == "social.example answered 503 Service Unavailable 4 times"
    assert len(handler.seen) == 4
    assert fetcher.stats.retries == 3
    assert fetcher.stats.responses_by_class["5xx"] == 4


async def test_timeouts_are_retried_and_reported() -> None:
    """Read timeouts are retried; the final error says how long we waited."""
    handler = scripted(*[httpx.ReadTimeout("slow")] * 2)
    with pytest.raises(RemoteUnavailable, match=r"^social\.example timed out after 30 s twice$"):
        await make_fetcher(handler, max_retries=1).get_json(URL)


async def test_connection_reset_then_success() -> None:
    """A reset or truncated answer is retried like a 5xx."""
    handler = scripted(
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ConnectError("[Errno 104] Connection reset by peer"),
        json_response({"ok": 1}),
    )
    fetcher = make_fetcher(handler)
    reply = await fetcher.get_json(URL)
    assert reply.data == {"ok": 1}
    assert fetcher.stats.failures == 2


async def test_mixed_failures_name_the_last_one() -> None:
    """Different failures in a row are summed up by the last one and the attempt count."""
    handler = scripted(httpx.ConnectTimeout("x"), httpx.Response(500), httpx.Response(502))
    with pytest.raises(RemoteUnavailable) as caught:
        await make_fetcher(handler, max_retries=2).get_json(URL)
    assert str(caught.value) == (
        "social.example answered 502 Bad Gateway (failed 3 attempts in all)"
    )


async def test_no_retries_when_max_retries_is_zero() -> None:
    """max_retries = 0 means one attempt only."""
    handler = scripted(httpx.Response(500))
    with pytest.raises(RemoteUnavailable, match="answered 500 Internal Server Error once"):
        await make_fetcher(handler, max_retries=0).get_json(URL)


@pytest.mark.parametrize("status", [401, 403])
async def test_401_and_403_are_access_denied_without_retry(status: int) -> None:
    """A server that wants a token gives AccessDenied at once, mentioning limited federation."""
    handler = scripted(json_response(fixture("error_401_authenticated_user_required.json"), status))
    with pytest.raises(AccessDenied, match="limited federation mode or authorized fetch"):
        await make_fetcher(handler).get_json(URL)
    assert len(handler.seen) == 1


async def test_other_4xx_is_returned_with_its_error_text() -> None:
    """A 404 comes back to the caller, with Mastodon's error text readable."""
    handler = scripted(json_response(fixture("error_404_record_not_found.json"), 404))
    reply = await make_fetcher(handler).get_json(URL)
    assert (reply.status, reply.ok, reply.error_text) == (404, False, "Record not found")


async def test_an_error_page_in_html_is_no_crash() -> None:
    """A 404 with an HTML body is returned with no data rather than failing to parse."""
    handler = scripted(httpx.Response(404, html="<html><body>Not here</body></html>"))
    reply = await make_fetcher(handler).get_json(URL)
    assert (reply.status, reply.data) == (404, None)


# --- bodies -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (
            httpx.Response(200, html="<!DOCTYPE html><html><title>Maintenance</title></html>"),
            "social.example answered with an HTML page instead of JSON",
        ),
        (
            httpx.Response(200, content=b"<html>oops</html>"),
            "answered with an HTML page instead of JSON",
        ),
        (
            httpx.Response(
                200, content=b'{"id": "1",', headers={"Content-Type": "application/json"}
            ),
            "answered with malformed JSON",
        ),
        (
            httpx.Response(200, text="just text"),
            "answered with text/plain instead of JSON",
        ),
        (
            httpx.Response(
                200,
                content=b"<?xml version='1.0'?><a/>",
                headers={"Content-Type": "application/xml"},
            ),
            "answered with XML",
        ),
        (httpx.Response(200, content=b""), "answered with an empty body"),
        (
            httpx.Response(
                200,
                content=b'{"followers_count": NaN}',
                headers={"Content-Type": "application/json"},
            ),
            "malformed JSON",
        ),
        (
            httpx.Response(200, content=b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1)),
            "nested deeper than 64 levels",
        ),
        (
            httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000),
            "nested too deeply",
        ),
        (
            httpx.Response(200, content=b'{"n": 1' + b"0" * 5000 + b"}"),
            "malformed JSON",
        ),
        (
            httpx.Response(200, content=b'{"name": "\xff\xfe"}'),
            "malformed JSON",
        ),
    ],
)
async def test_non_json_answers_are_bad_responses(response: httpx.Response, message: str) -> None:
    """HTML, XML, text, empty, malformed, NaN, invalid UTF-8 and too-deep JSON are refused."""
    with pytest.raises(BadResponse, match=message.replace("(", r"\(").replace(")", r"\)")):
        await make_fetcher(scripted(response)).get_json(URL)


def test_json_at_the_depth_limit_is_accepted() -> None:
    """Nesting exactly MAX_JSON_DEPTH deep is fine."""
    body = b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH
    assert decode_json(body, content_type="application/json", host="h") == json.loads(body)


def test_json_with_a_charset_and_jrd_type_is_accepted() -> None:
    """application/jrd+json; charset=utf-8 is JSON."""
    assert decode_json(
        b'{"a": 1}', content_type="application/jrd+json; charset=utf-8", host="h"
    ) == {"a": 1}


async def test_announced_oversize_body_is_refused_before_reading() -> None:
    """A Content-Length above max_response_bytes is refused without reading the body."""
    response = httpx.Response(
        200,
        headers={"Content-Length": str(10**9), "Content-Type": "application/json"},
        content=chunks(b"{}"),
    )
    with pytest.raises(
        BadResponse,
        match=r"announced a 1,000,000,000-byte answer, larger than max_response_bytes "
        r"\(2,048 bytes\)",
    ):
        await make_fetcher(scripted(response), max_response_bytes=2048).get_json(URL)


async def test_streamed_oversize_body_is_cut_off() -> None:
    """A body without Content-Length is counted while streaming and refused past the cap."""
    read: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        for index in range(1000):
            read.append(index)
            yield b" " * 1024

    response = httpx.Response(200, headers={"Content-Type": "application/json"}, content=endless())
    with pytest.raises(BadResponse, match="larger than max_response_bytes"):
        await make_fetcher(scripted(response), max_response_bytes=4096).get_json(URL)
    assert len(read) <= 5


async def test_ready_made_oversize_body_is_refused() -> None:
    """An in-memory answer (as MockTransport gives) larger than the cap is refused too."""
    response = json_response({"padding": "x" * 5000})
    with pytest.raises(BadResponse, match="larger than max_response_bytes"):
        await make_fetcher(scripted(response), max_response_bytes=2048).get_json(URL)


async def test_gzip_bodies_are_decoded() -> None:
    """A gzip-encoded JSON answer is decompressed and parsed."""
    body = gzip.compress(json.dumps({"id": "1"}).encode())
    response = httpx.Response(
        200,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        content=chunks(body[:5], body[5:]),
    )
    reply = await make_fetcher(scripted(response)).get_json(URL)
    assert reply.data == {"id": "1"}


async def test_gzip_bomb_is_refused_while_decompressing() -> None:
    """A small compressed body that inflates past the cap is stopped, not inflated."""
    bomb = gzip.compress(b" " * 50_000_000)
    assert len(bomb) < 100_000
    response = httpx.Response(
        200,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        content=chunks(bomb),
    )
    with pytest.raises(BadResponse, match="decompresses larger than max_response_bytes"):
        await make_fetcher(scripted(response), max_response_bytes=1_000_000).get_json(URL)


async def test_truncated_gzip_body_is_retried_as_a_broken_answer() -> None:
    """A compressed body that ends early counts as a broken answer and is retried."""
    body = gzip.compress(json.dumps({"id": "1"}).encode())
    broken = httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=chunks(body[:-8]))
    whole = httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=chunks(body))
    reply = await make_fetcher(scripted(broken, whole)).get_json(URL)
    assert reply.data == {"id": "1"}


async def test_unknown_content_encoding_is_refused() -> None:
    """An encoding we never asked for (br) is a bad response, not garbage JSON."""
    response = httpx.Response(200, headers={"Content-Encoding": "br"}, content=chunks(b"\x1b\x00"))
    with pytest.raises(BadResponse, match="unsupported Content-Encoding 'br'"):
        await make_fetcher(scripted(response)).get_json(URL)


# --- redirects and requests -------------------------------------------------------------


async def test_redirects_are_followed_and_the_final_url_kept() -> None:
    """A 301 then a relative 302 are followed to the JSON answer."""
    handler = scripted(
        httpx.Response(301, headers={"Location": "https://www.social.example/x"}),
        httpx.Response(302, headers={"Location": "/y"}),
        json_response({"ok": True}),
    )
    reply = await make_fetcher(handler).get_json(URL)
    assert str(reply.url) == "https://www.social.example/y"
    assert [str(r.url) for r in handler.seen] == [
        URL,
        "https://www.social.example/x",
        "https://www.social.example/y",
    ]


async def test_redirect_loop_is_an_error() -> None:
    """A redirect back to a URL already visited is refused as a loop."""
    handler = scripted(
        httpx.Response(302, headers={"Location": "/b"}),
        httpx.Response(302, headers={"Location": URL}),
    )
    with pytest.raises(BadResponse, match="redirects in a loop"):
        await make_fetcher(handler).get_json(URL)


async def test_more_than_five_redirects_is_an_error() -> None:
    """At most five redirects are followed."""
    handler = scripted(*[httpx.Response(302, headers={"Location": f"/{n}"}) for n in range(6)])
    with pytest.raises(BadResponse, match="redirected more than 5 times"):
        await make_fetcher(handler).get_json(URL)
    assert len(handler.seen) == 6


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://social.example/", "ftp://x/"])
async def test_redirect_to_another_scheme_is_refused(location: str) -> None:
    """Only http and https redirect targets are followed."""
    handler = scripted(httpx.Response(302, headers={"Location": location}))
    with pytest.raises(BadResponse, match="not an http"):
        await make_fetcher(handler).get_json(URL)


async def test_redirect_without_location_is_an_error() -> None:
    """A redirect status with no Location is a bad response."""
    with pytest.raises(BadResponse, match="without a Location"):
        await make_fetcher(scripted(httpx.Response(302))).get_json(URL)


async def test_requests_carry_user_agent_and_accept() -> None:
    """Every request sends the configured User-Agent and asks for JSON."""
    handler = scripted(json_response({}))
    await make_fetcher(handler, user_agent="fedimeter-test (admin@example.org)").get_json(URL)
    [request] = handler.seen
    assert request.headers["User-Agent"] == "fedimeter-test (admin@example.org)"
    assert request.headers["Accept"] == "application/json"


async def test_stats_count_requests_answers_and_bytes() -> None:
    """RequestStats counts requests per host, answers by class and bytes received."""
    handler = scripted(httpx.Response(500), json_response({"a": 1}))
    fetcher = make_fetcher(handler)
    await fetcher.get_json(URL)
    stats = fetcher.stats
    assert stats.requests == 2
    assert stats.requests_by_host == {"social.example": 2}
    assert stats.responses_by_class == {"5xx": 1, "2xx": 1}
    assert stats.bytes_received == len(b'{"a":1}')


async def test_per_host_concurrency_is_respected() -> None:
    """No more than per_host_concurrency requests are in flight to one host at once."""
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return json_response({})

    fetcher = make_fetcher(handler, per_host_concurrency=2)
    await asyncio.gather(*(fetcher.get_json(f"https://social.example/{n}") for n in range(8)))
    assert peak == 2


@pytest.mark.parametrize("url", ["https://[::g]/", "ftp://social.example/", "/relative"])
async def test_urls_that_are_not_http_addresses_are_refused(url: str) -> None:
    """A malformed or non-http URL is refused before anything is sent."""
    handler = scripted()
    with pytest.raises(AddressRefused):
        await make_fetcher(handler).get_json(url)
    assert handler.seen == []


async def test_address_refused_is_not_retried() -> None:
    """An SSRF refusal from the transport is final: no retries, no sleeping."""
    time = FakeTime()
    handler = scripted(AddressRefused("10.0.0.1 is a private address; set allow_private_addresses"))
    with pytest.raises(AddressRefused):
        await make_fetcher(handler, time).get_json(URL)
    assert time.sleeps == []
