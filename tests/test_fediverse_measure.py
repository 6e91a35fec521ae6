import asyncio
import math
from collections.abc import Iterable, Sequence
from datetime import date

import httpx
import pytest

from fedimeter.domain.models import InstanceAddress
from fedimeter.errors import AccessDenied, AccountNotFound, BadResponse, RemoteUnavailable
from fedimeter.fediverse import FediverseClient, Measurement
from test_fediverse_support import START, FakeTime, account, fixture, json_response, make_client

HOST = InstanceAddress("social.example")


class Server:
    """A fake Mastodon host: which ids exist, whether the batch call exists, what it logs."""

    def __init__(
        self, ids: Iterable[str], *, batch: bool = True, hidden: frozenset[str] = frozenset()
    ) -> None:
        """Serve accounts with these ids (followers = 10 x id)."""
        self.accounts = {
            remote_id: account(remote_id, followers_count=int(remote_id) * 10) for remote_id in ids
        }
        self.batch = batch
        self.hidden = hidden  # left out of batch answers, yet served one by one
        self.batch_calls: list[list[str]] = []
        self.single_calls: list[str] = []
        self.overrides: dict[str, httpx.Response] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Answer the batch and single account calls."""
        path = request.url.path
        if path == "/api/v1/accounts":
            if not self.batch:
                return json_response({"error": "Record not found"}, 404)
            ids = request.url.params.get_list("id[]")
            self.batch_calls.append(ids)
            if len(ids) > 40:
                return json_response({"error": "Too many ids requested, at most 40 allowed"}, 422)
            found = [self.accounts[i] for i in ids if i in self.accounts and i not in self.hidden]
            return json_response(found)
        remote_id = path.rsplit("/", 1)[-1]
        self.single_calls.append(remote_id)
        if remote_id in self.overrides:
            return self.overrides[remote_id]
        if remote_id not in self.accounts:
            return json_response(fixture("error_404_record_not_found.json"), 404)
        return json_response(self.accounts[remote_id])


async def collect(
    client: FediverseClient, ids: Sequence[str], supports_batch: bool | None
) -> list[list[Measurement]]:
    """All lists yielded by measure()."""
    return [batch async for batch in client.measure(HOST, ids, supports_batch=supports_batch)]


def flat(batches: list[list[Measurement]]) -> dict[str, Measurement]:
    """Measurements by id."""
    return {m.remote_id: m for batch in batches for m in batch}


def ids(count: int, start: int = 1) -> list[str]:
    """``count`` numeric ids as text."""
    return [str(n) for n in range(start, start + count)]


@pytest.mark.parametrize("count", [1, 40, 41, 100])
async def test_batch_calls_take_40_ids_each(count: int) -> None:
    """N ids on a 4.3+ server cost ceil(N/40) calls and all are measured."""
    server = Server(ids(count))
    client = make_client(server, FakeTime())
    measured = flat(await collect(client, ids(count), supports_batch=True))
    assert len(server.batch_calls) == math.ceil(count / 40)
    assert all(len(call) <= 40 for call in server.batch_calls)
    assert server.single_calls == []
    assert set(measured) == set(ids(count))
    assert measured["1"].snapshot is not None
    assert measured["1"].snapshot.followers == 10


async def test_batch_support_unknown_probes_with_the_first_batch() -> None:
    """With support unknown, the first batch probes; success makes the rest batches too."""
    server = Server(ids(90))
    client = make_client(server, FakeTime())
    measured = flat(await collect(client, ids(90), supports_batch=None))
    assert len(server.batch_calls) == 3
    assert len(measured) == 90
    assert client.batch_support(HOST) is True


async def test_missing_batch_endpoint_falls_back_to_one_call_each() -> None:
    """A 404 on the batch call (Mastodon < 4.3) means one call per account, remembered."""
    server = Server(ids(50), batch=False)
    client = make_client(server, FakeTime())
    measured = flat(await collect(client, ids(50), supports_batch=None))
    assert len(server.single_calls) == 50
    assert all(m.snapshot is not None for m in measured.values())
    assert client.batch_support(HOST) is False
    server.single_calls.clear()
    await collect(client, ids(3), supports_batch=True)
    assert server.single_calls == ["1", "2", "3"]


async def test_claimed_support_that_is_wrong_falls_back_too() -> None:
    """A server claimed to be 4.3+ that answers 405 is measured one by one."""
    server = Server(ids(5))
    client = make_client(
        lambda r: httpx.Response(405) if r.url.path == "/api/v1/accounts" else server(r), FakeTime()
    )
    measured = flat(await collect(client, ids(5), supports_batch=True))
    assert all(m.snapshot is not None for m in measured.values())
    assert client.batch_support(HOST) is False


async def test_without_batch_support_each_account_is_one_call() -> None:
    """supports_batch=False goes straight to one call per account."""
    server = Server(ids(7))
    client = make_client(server, FakeTime())
    await collect(client, ids(7), supports_batch=False)
    assert server.batch_calls == []
    assert sorted(server.single_calls, key=int) == ids(7)


async def test_ids_missing_from_a_batch_are_checked_one_by_one() -> None:
    """Ids left out of a batch answer are asked singly: gone ones get AccountNotFound."""
    server = Server(["1", "2", "4"], hidden=frozenset({"4"}))
    client = make_client(server, FakeTime())
    measured = flat(await collect(client, ["1", "2", "3", "4"], supports_batch=True))
    assert sorted(server.single_calls) == ["3", "4"]
    assert isinstance(measured["3"].error, AccountNotFound)
    assert (
        str(measured["3"].error) == "social.example says account 3 does not exist (404 Not Found)"
    )
    assert measured["4"].snapshot is not None


async def test_410_is_account_not_found_too() -> None:
    """Older servers answer 410 Gone for deleted accounts."""
    server = Server(["1"])
    server.overrides["1"] = httpx.Response(410)
    client = make_client(server, FakeTime())
    [measurement] = flat(await collect(client, ["1"], supports_batch=False)).values()
    assert isinstance(measurement.error, AccountNotFound)


async def test_too_many_ids_422_halves_the_batch() -> None:
    """A 422 about too many ids splits the batch instead of giving up on batching."""
    server = Server(ids(40))
    original = server.__call__

    def strict(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/accounts" and len(request.url.params.get_list("id[]")) > 20:
            return json_response({"error": "Too many ids, maximum is 20"}, 422)
        return original(request)

    client = make_client(strict, FakeTime())
    measured = flat(await collect(client, ids(40), supports_batch=True))
    assert all(m.snapshot is not None for m in measured.values())
    assert [len(call) for call in server.batch_calls] == [20, 20]
    assert client.batch_support(HOST) is True


async def test_other_422_falls_back_to_single_calls() -> None:
    """A 422 that is not about the number of ids means the batch call is not usable."""
    server = Server(ids(3))
    original = server.__call__

    def odd(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/accounts":
            return json_response({"error": "Validation failed: id is invalid"}, 422)
        return original(request)

    client = make_client(odd, FakeTime())
    measured = flat(await collect(client, ids(3), supports_batch=None))
    assert all(m.snapshot is not None for m in measured.values())
    assert client.batch_support(HOST) is False


async def test_suspended_moved_and_dates_come_through() -> None:
    """Suspended, moved, null, date and timestamp last_status_at all end up in snapshots."""
    server = Server(["1", "2", "3", "4"])
    server.accounts["1"] = fixture("account_suspended.json") | {"id": "1"}
    server.accounts["2"] = account("2", moved=account("9", acct="alice@new.example"))
    server.accounts["3"] = account("3", last_status_at="2024-05-06")
    server.accounts["4"] = account("4", last_status_at="2024-05-06T23:59:00-01:00")
    client = make_client(server, FakeTime())
    measured = flat(await collect(client, ["1", "2", "3", "4"], supports_batch=True))
    snapshots = {key: m.snapshot for key, m in measured.items()}
    suspended, moved, day, timestamp = (snapshots[key] for key in ["1", "2", "3", "4"])
    assert suspended is not None
    assert suspended.suspended
    assert suspended.last_status_at is None
    assert moved is not None
    assert moved.moved_to == "alice@new.example"
    assert day is not None
    assert day.last_status_at == date(2024, 5, 6)
    assert timestamp is not None
    assert timestamp.last_status_at == date(2024, 5, 7)


async def test_one_bad_account_does_not_spoil_the_batch() -> None:
    """An account with a string count gets BadResponse; its neighbours are measured."""
    server = Server(ids(3))
    server.accounts["2"]["followers_count"] = "lots"
    client = make_client(server, FakeTime())
    measured = flat(await collect(client, ids(3), supports_batch=True))
    assert isinstance(measured["2"].error, BadResponse)
    assert measured["1"].snapshot is not None
    assert measured["3"].snapshot is not None


async def test_single_answer_for_another_id_is_a_bad_response() -> None:
    """An answer about an account we did not ask for is refused."""
    server = Server(["1"])
    server.overrides["1"] = json_response(account("2"))
    client = make_client(server, FakeTime())
    [measurement] = flat(await collect(client, ["1"], supports_batch=False)).values()
    assert isinstance(measurement.error, BadResponse)
    assert "answered with account '2' when asked for '1'" in str(measurement.error)


async def test_failing_batch_gives_every_account_the_error() -> None:
    """When a batch call fails for good, each of its accounts carries the error."""
    client = make_client(lambda _r: httpx.Response(503), FakeTime(), max_retries=1)
    measured = flat(await collect(client, ids(45), supports_batch=True))
    assert len(measured) == 45
    assert all(isinstance(m.error, RemoteUnavailable) for m in measured.values())
    assert str(measured["1"].error) == "social.example answered 503 Service Unavailable twice"


class RefusingBatch(Server):
    """A server whose batch call answers ``refusal`` (for the first ``times`` calls)."""

    def __init__(self, ids: Iterable[str], refusal: httpx.Response, times: int = 10**9) -> None:
        """Serve single calls normally; refuse the batch call ``times`` times."""
        super().__init__(ids)
        self.refusal = refusal
        self.times = times

    def __call__(self, request: httpx.Request) -> httpx.Response:
        """Refuse the batch call while refusals last."""
        if request.url.path == "/api/v1/accounts" and self.times > 0:
            self.times -= 1
            self.batch_calls.append(request.url.params.get_list("id[]"))
            return self.refusal
        return super().__call__(request)


REFUSALS = {
    "401": httpx.Response(401, json={"error": "This API requires an authenticated user"}),
    "403": httpx.Response(403, json={"error": "This action is not allowed"}),
    "html 200": httpx.Response(200, html="<html><body>Checking your browser</body></html>"),
    "truncated json": httpx.Response(
        200, content=b'[{"id": "1", "followers', headers={"content-type": "application/json"}
    ),
    "not a list of accounts": httpx.Response(200, json=[{"hello": "world"}]),
}


@pytest.mark.parametrize("supports_batch", [True, None])
@pytest.mark.parametrize("refusal", list(REFUSALS))
async def test_a_refused_batch_call_falls_back_to_one_call_each(
    refusal: str, supports_batch: bool | None
) -> None:
    """401, 403 or a garbled answer to the batch call: each account is asked for alone.

    Two refusals in a row end batching for the pass (the rest go one by one at once); the
    refusal is not learned as "no batch call" for later rounds. (One request at a time, so
    that no third batch call is already in flight when the second refusal comes.)
    """
    server = RefusingBatch(ids(200), REFUSALS[refusal])
    client = make_client(server, FakeTime(), per_host_concurrency=1)
    measured = flat(await collect(client, ids(200), supports_batch=supports_batch))
    assert len(measured) == 200
    assert all(m.snapshot is not None for m in measured.values())
    assert measured["7"].snapshot is not None
    assert measured["7"].snapshot.followers == 70
    assert len(server.batch_calls) == 2
    assert sorted(server.single_calls, key=int) == ids(200)
    assert client.batch_support(HOST) is None


async def test_a_passing_refusal_costs_one_batch_of_single_calls() -> None:
    """One refused batch call: its 40 ids go one by one, the other batches still batch."""
    server = RefusingBatch(ids(200), REFUSALS["html 200"], times=1)
    client = make_client(server, FakeTime())
    measured = flat(await collect(client, ids(200), supports_batch=True))
    assert len(measured) == 200
    assert all(m.snapshot is not None for m in measured.values())
    assert len(server.batch_calls) == 5
    assert len(server.single_calls) == 40
    assert client.batch_support(HOST) is True


async def test_when_single_calls_are_refused_too_each_account_carries_the_error() -> None:
    """A host that refuses both calls: every account gets AccessDenied, none is dropped."""
    refusal = httpx.Response(401, json={"error": "This API requires an authenticated user"})
    client = make_client(lambda _r: refusal, FakeTime())
    measured = flat(await collect(client, ids(45), supports_batch=True))
    assert len(measured) == 45
    assert all(isinstance(m.error, AccessDenied) for m in measured.values())


async def test_a_host_found_down_three_times_in_a_row_is_not_asked_further() -> None:
    """Three requests in a row meet an unavailable host: the rest fail unasked, with the reason."""
    calls: list[str] = []

    def down(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(503)

    client = make_client(down, FakeTime(), max_retries=0, per_host_concurrency=1)
    measured = flat(await collect(client, ids(100), supports_batch=False))
    assert len(calls) == 3
    assert len(measured) == 100
    assert all(isinstance(m.error, RemoteUnavailable) for m in measured.values())
    unasked = [m for m in measured.values() if "not asked" in str(m.error)]
    assert len(unasked) == 97
    assert "3 requests in a row found social.example unavailable" in str(unasked[0].error)


async def test_a_host_failing_now_and_then_is_asked_for_every_account() -> None:
    """Failures with answers in between are the accounts' own: nothing is given up."""
    server = Server(ids(30))
    count = 0

    def flaky(request: httpx.Request) -> httpx.Response:
        nonlocal count
        count += 1
        return httpx.Response(503) if count % 3 else server(request)

    client = make_client(flaky, FakeTime(), max_retries=0, per_host_concurrency=1)
    measured = flat(await collect(client, ids(30), supports_batch=False))
    assert count == 30
    assert sum(m.snapshot is not None for m in measured.values()) == 10
    assert not any("not asked" in str(m.error) for m in measured.values())


async def test_html_answer_for_one_account_is_recorded_not_raised() -> None:
    """An HTML page for one account is its error; measuring goes on."""
    server = Server(ids(2))
    server.overrides["1"] = httpx.Response(200, html="<html>Oops</html>")
    client = make_client(server, FakeTime())
    measured = flat(await collect(client, ids(2), supports_batch=False))
    assert "HTML page instead of JSON" in str(measured["1"].error)
    assert measured["2"].snapshot is not None


async def test_every_id_gets_exactly_one_measurement() -> None:
    """Duplicates are measured once; every distinct id comes out once, none dropped."""
    server = Server(ids(60), hidden=frozenset({"5"}))
    client = make_client(server, FakeTime())
    batches = await collect(client, [*ids(60), "1", "2", "404"], supports_batch=True)
    every = [m.remote_id for batch in batches for m in batch]
    assert sorted(every, key=int) == sorted([*ids(60), "404"], key=int)


async def test_measurements_are_stamped_with_the_clock() -> None:
    """taken_at is the injected clock's time when the answer arrived."""
    client = make_client(Server(["1"]), FakeTime())
    [measurement] = flat(await collect(client, ["1"], supports_batch=False)).values()
    assert measurement.taken_at == START


async def test_results_are_yielded_per_request() -> None:
    """Each completed request yields its own list, so the caller can store as it goes."""
    client = make_client(Server(ids(100)), FakeTime())
    batches = await collect(client, ids(100), supports_batch=True)
    assert sorted(len(batch) for batch in batches) == [20, 40, 40]


async def test_ids_are_escaped_in_the_path() -> None:
    """Opaque ids cannot walk the URL path."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.raw_path.decode())
        return httpx.Response(404)

    client = make_client(handler, FakeTime())
    await collect(client, ["../../admin"], supports_batch=False)
    assert seen == ["/api/v1/accounts/..%2F..%2Fadmin"]


async def test_per_host_concurrency_limits_requests_in_flight() -> None:
    """At most per_host_concurrency account calls run at once."""
    in_flight = 0
    peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.005)
        in_flight -= 1
        return json_response(account(request.url.path.rsplit("/", 1)[-1]))

    client = make_client(handler, FakeTime(), per_host_concurrency=3)
    measured = flat(await collect(client, ids(12), supports_batch=False))
    assert len(measured) == 12
    assert peak == 3


async def test_closing_the_iterator_early_cancels_requests_in_flight() -> None:
    """Breaking out of measure() leaves no request running."""
    started: list[str] = []
    cancelled: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        remote_id = request.url.path.rsplit("/", 1)[-1]
        started.append(remote_id)
        try:
            await asyncio.sleep(0 if remote_id == "1" else 10)
        except asyncio.CancelledError:
            cancelled.append(remote_id)
            raise
        return json_response(account(remote_id))

    client = make_client(handler, FakeTime(), per_host_concurrency=3)
    iterator = client.measure(HOST, ids(3), supports_batch=False)
    first = await anext(iterator)
    await iterator.aclose()
    assert [m.remote_id for m in first] == ["1"]
    assert sorted(cancelled) == ["2", "3"]


async def test_no_ids_means_no_requests() -> None:
    """Measuring nothing sends nothing and yields nothing."""
    server = Server([])
    client = make_client(server, FakeTime())
    assert await collect(client, [], supports_batch=None) == []
    assert client.stats.requests == 0


def test_measurement_holds_exactly_one_outcome() -> None:
    """A Measurement with both or neither of snapshot and error cannot be made."""
    with pytest.raises(ValueError, match="exactly one"):
        Measurement("1", START, None, None)


@pytest.mark.parametrize("supports_batch", [True, False, None])
async def test_measure_into_hands_over_what_measure_yields(supports_batch: bool | None) -> None:
    """The sink gets every id's measurement once, as the generator would have yielded them."""
    server = Server(ids(90), hidden=frozenset({"7"}))
    client = make_client(server, FakeTime())
    handed: list[list[Measurement]] = []
    await client.measure_into(HOST, [*ids(95), "3"], handed.append, supports_batch=supports_batch)
    measured = flat(handed)
    assert sorted(measured, key=int) == ids(95)
    assert sum(len(batch) for batch in handed) == 95
    assert measured["7"].snapshot is not None  # asked for alone after the batch left it out
    assert isinstance(measured["93"].error, AccountNotFound)
    expected = flat(await collect(make_client(Server(ids(90)), FakeTime()), ids(95), True))
    assert {i: m.snapshot for i, m in measured.items()} == {
        i: m.snapshot for i, m in expected.items()
    }


async def test_a_measurer_makes_one_pass_at_a_time() -> None:
    """A second pass on the same measurer while one runs is refused."""
    server = Server(ids(10))
    client = make_client(server, FakeTime())
    measurer = client._measurer(HOST, supports_batch=True)
    first = measurer.run(ids(10))
    assert len(await anext(first)) == 10
    await first.aclose()
    assert [len(b) async for b in measurer.run(ids(5))] == [5]
    running = measurer.run(ids(10))
    pending = asyncio.ensure_future(anext(running))
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="one pass at a time"):
        await anext(measurer.run(ids(3)))
    assert len(await pending) == 10
    await running.aclose()
