"""mastodon-meter's API served by fedimeter: its documented requests, shapes and errors.

The server runs in-process (``TestClient``) against the simulated fediverse, on SQLite and on
PostgreSQL. The simulated clock starts on 2026-01-05 12:00 UTC, so every timestamp is exact.
"""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from fedimeter.api.app import create_app
from fedimeter.api.compat_params import previous_sample, previous_samples
from fedimeter.config import Settings
from fedimeter.domain.mmreport import (
    Counts,
    ReportEntry,
    metering_id,
    mm_timestamp,
    render_report,
    report_line,
    report_title,
)
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.simfedi import SimFediverse, SimInstance
from fedimeter.storage.database import Database
from fedimeter.storage.records import NewSample, RunProgress
from fedimeter.storage.repository import Repository

TOKEN = "compat-test-token-0123456789"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")
START = "2026-01-05 12:00:00.000000"  # the simulated clock's start, microseconds zero
NEXT_DAY = "2026-01-06 12:00:00.000000"
UUID_ID = "1447ab4fd6924e4cb11038bb487a761d"  # an id in mastodon-meter's own form

# -- the pure report module ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("latest", "previous", "line"),
    [
        (Counts(102, 2000), None, "a@h: 102 subscribers, 2000 statuses"),
        (Counts(102, 2000), Counts(102, 2000), "a@h: 102 subscribers, 2000 statuses"),
        (Counts(102, 2000), Counts(102, 1998), "a@h: 102 subscribers, 2000 (+2) statuses"),
        (Counts(102, 2000), Counts(99, 2000), "a@h: 102 (+3) subscribers, 2000 statuses"),
        (Counts(102, 2000), Counts(104, 2000), "a@h: 102 (-2) subscribers, 2000 statuses"),
        (Counts(102, 2000), Counts(100, 2005), "a@h: 102 (+2) subscribers, 2000 (-5) statuses"),
        (Counts(0, 0), Counts(7, 3), "a@h: 0 (-7) subscribers, 0 (-3) statuses"),
        (
            Counts(10**9, 10**6),
            Counts(0, 0),
            "a@h: 1000000000 (+1000000000) subscribers, 1000000 (+1000000) statuses",
        ),
    ],
)
def test_report_line_shows_only_nonzero_changes(
    latest: Counts, previous: Counts | None, line: str
) -> None:
    """A change appears in parentheses, signed, only when there is one."""
    assert report_line(ReportEntry("a@h", latest, previous)) == line


def test_report_line_without_samples() -> None:
    """An account never measured gets mastodon-meter's 'No records' line."""
    entry = ReportEntry("carol@127.0.0.1:8080", None, None)
    assert report_line(entry) == "No records to display for carol@127.0.0.1:8080"


@pytest.mark.parametrize(
    ("moment", "title"),
    [
        (datetime(2021, 9, 1, 9, 0, tzinfo=UTC), "2021.09.01 09:00"),
        (datetime(2021, 9, 1, 9, 0, 59, 999999, tzinfo=UTC), "2021.09.01 09:00"),
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), "2026.12.31 23:59"),
        # An aware time elsewhere is written in UTC: here across a day and a year.
        (datetime(2027, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))), "2026.12.31 23:30"),
        (datetime(5, 1, 2, 3, 4, tzinfo=UTC), "0005.01.02 03:04"),
    ],
)
def test_report_title_format(moment: datetime, title: str) -> None:
    """The title is mastodon-meter's, in UTC, to the minute, zero-padded."""
    assert report_title(moment) == f"Mastodon-meter summary report generated on {title} UTC"


def test_render_report_layout() -> None:
    """Title, blank line, one line per account in the order given, no trailing newline."""
    at = datetime(2021, 9, 1, 9, 0, tzinfo=UTC)
    entries = [
        ReportEntry("account_name_1@mastodon.social", Counts(102, 2000), Counts(102, 1998)),
        ReportEntry("account_name_2@mastodon.social", Counts(94, 735), Counts(94, 735)),
        ReportEntry("account_name_3@mastodon.social", Counts(39, 4671), Counts(39, 4666)),
        ReportEntry("account_name_n@mastodon.social", Counts(45, 118)),
        ReportEntry("nobody@mastodon.social", None),
    ]
    assert render_report(entries, at) == (
        "Mastodon-meter summary report generated on 2021.09.01 09:00 UTC\n"
        "\n"
        "account_name_1@mastodon.social: 102 subscribers, 2000 (+2) statuses\n"
        "account_name_2@mastodon.social: 94 subscribers, 735 statuses\n"
        "account_name_3@mastodon.social: 39 subscribers, 4671 (+5) statuses\n"
        "account_name_n@mastodon.social: 45 subscribers, 118 statuses\n"
        "No records to display for nobody@mastodon.social"
    )


def test_render_report_without_accounts() -> None:
    """With no account the report is the title and one newline, as mastodon-meter's."""
    at = datetime(2021, 9, 1, 9, 0, tzinfo=UTC)
    expected = "Mastodon-meter summary report generated on 2021.09.01 09:00 UTC\n"
    assert render_report([], at) == expected
    assert render_report(iter([]), at) == expected


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2021, 1, 1, 12, 0, tzinfo=UTC), "2021-01-01 12:00:00.000000"),
        (datetime(2021, 1, 1, 12, 0, 5, 42, tzinfo=UTC), "2021-01-01 12:00:05.000042"),
        (
            datetime(2021, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
            "2020-12-31 23:30:00.000000",
        ),
        (datetime(7, 2, 3, 4, 5, 6, 7, tzinfo=UTC), "0007-02-03 04:05:06.000007"),
    ],
)
def test_mm_timestamp_always_has_microseconds(moment: datetime, text: str) -> None:
    """Timestamps are naive UTC with six fractional digits, even when they are zero."""
    assert mm_timestamp(moment) == text


def test_naive_datetimes_are_refused() -> None:
    """Every formatter refuses a naive datetime rather than guess its zone."""
    naive = datetime(2021, 1, 1, 12, 0)  # noqa: DTZ001 - the point of the test
    for call in (mm_timestamp, report_title, lambda m: metering_id(1, m)):
        with pytest.raises(ValueError, match="naive"):
            call(naive)
    with pytest.raises(ValueError, match="naive"):
        render_report([], naive)


def test_metering_id_is_account_and_unix_microseconds() -> None:
    """The metering id is '<account id>-<unix µs>', the same for the same sample."""
    at = datetime(2021, 1, 1, 12, 0, 0, 1, tzinfo=UTC)
    assert metering_id(12, at) == "12-1609502400000001"
    assert metering_id(12, at.astimezone(timezone(timedelta(hours=-5)))) == "12-1609502400000001"
    assert metering_id(12, at + timedelta(microseconds=1)) == "12-1609502400000002"
    assert metering_id(13, at) == "13-1609502400000001"
    assert metering_id(1, datetime(1970, 1, 1, tzinfo=UTC)) == "1-0"


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """Two simulated instances; alice grows 3 subscribers and 2 statuses a day."""
    sim = SimFediverse(seed=7)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    social.add_account(
        "alice", followers=100, statuses=1000, followers_per_day=3, statuses_per_day=2
    )
    social.add_account("bob", followers=5, statuses=20)
    other = sim.add_instance("other", version="4.2.0", rate_limit=None)
    other.add_account("carol", followers=7, statuses=9)
    with sim.run_in_thread():
        yield sim


@pytest.fixture
def compat_settings(settings: Settings) -> Settings:
    """The test database, servers named without a scheme reached over http."""
    return settings.model_copy(update={"default_scheme": "http"})


def _client(
    settings: Settings, world: SimFediverse, peer: tuple[str, int] = ("127.0.0.1", 50000)
) -> TestClient:
    """A test client for the server on the simulated clock, calling from ``peer``."""
    app = create_app(settings, schedule=False, clock=lambda: world.now)
    return TestClient(app, client=peer)


@pytest.fixture
def api(compat_settings: Settings, world: SimFediverse) -> Iterator[TestClient]:
    """The server, writes allowed (loopback, no API token)."""
    with _client(compat_settings, world) as client:
        yield client


def social(world: SimFediverse) -> SimInstance:
    """The instance holding alice and bob."""
    return world.instance("social")


def add(api: TestClient, world: SimFediverse, name: str, instance: str = "social") -> str:
    """Track an account through the compat route; its internal id."""
    inst = world.instance(instance)
    response = api.post(
        "/api/accounts/add",
        json={"instance": inst.address.base_url, "username": name},
    )
    assert response.status_code == 200, response.text
    internal_id: str = response.json()["account_internal_id"]
    return internal_id


def gather(api: TestClient) -> dict[str, Any]:
    """Run a round through /api/gather-data."""
    response = api.get("/api/gather-data")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_error(response: httpx.Response, code: int, *fragments: str) -> None:
    """An error envelope with this status whose message holds each fragment."""
    assert response.status_code == code, response.text
    body = response.json()
    assert set(body) == {"status", "message"}
    assert body["status"] is False
    assert isinstance(body["message"], str)
    for fragment in fragments:
        assert fragment in body["message"], body["message"]


def get_with_body(api: TestClient, url: str, body: Any) -> httpx.Response:
    """A GET request with a JSON body, as mastodon-meter's documentation sends."""
    response: httpx.Response = api.request("GET", url, json=body)
    return response


# -- /api/accounts/add -----------------------------------------------------------------------


def test_add_documented_example(api: TestClient, world: SimFediverse) -> None:
    """The documented add request (instance URL, instance_id, username) tracks the account."""
    alice = social(world).account("alice")
    response = api.post(
        "/api/accounts/add",
        json={
            "instance": social(world).address.base_url,
            "instance_id": alice.id,
            "username": "alice",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "message", "account_internal_id"}
    assert body["status"] is True
    assert isinstance(body["message"], str)
    assert body["message"]
    assert isinstance(body["account_internal_id"], str)
    assert body["account_internal_id"].isdigit()
    listed = api.get("/api/accounts/tracked").json()["tracked_accounts"]
    assert [a["internal_id"] for a in listed] == [body["account_internal_id"]]


def test_add_forms_of_instance_and_username(api: TestClient, world: SimFediverse) -> None:
    """instance may lack its scheme or end in /; username may carry @ or its own host."""
    inst = social(world)
    first = api.post(
        "/api/accounts/add",
        json={"instance": inst.address.authority + "/", "username": "@alice"},
    )
    assert first.status_code == 200, first.text
    second = api.post(
        "/api/accounts/add",
        json={
            "instance": inst.address.base_url,
            "username": f"bob@{inst.domain}",
            "instance_id": int(inst.account("bob").id),
        },
    )
    assert second.status_code == 200, second.text
    names = [a["username"] for a in api.get("/api/accounts/tracked").json()["tracked_accounts"]]
    assert names == ["alice", "bob"]


def test_add_with_a_wrong_instance_id_is_refused(api: TestClient, world: SimFediverse) -> None:
    """An instance_id that is not the account's id tracks nothing and says the real id."""
    alice = social(world).account("alice")
    response = api.post(
        "/api/accounts/add",
        json={
            "instance": social(world).address.base_url,
            "instance_id": "000000",
            "username": "alice",
        },
    )
    assert_error(response, 422, "instance_id '000000'", repr(alice.id))
    assert api.get("/api/accounts/tracked").json()["tracked_accounts"] == []


def test_add_errors(api: TestClient, world: SimFediverse) -> None:
    """Already tracked is 409, an unknown user 404, bad input 422: all envelopes."""
    inst = social(world)
    internal_id = add(api, world, "alice")
    again = api.post(
        "/api/accounts/add", json={"instance": inst.address.base_url, "username": "ALICE"}
    )
    assert_error(again, 409, "already tracked", internal_id)
    unknown = api.post(
        "/api/accounts/add", json={"instance": inst.address.base_url, "username": "nobody"}
    )
    assert_error(unknown, 404)
    assert_error(
        api.post("/api/accounts/add", json={"instance": "not a host!", "username": "x"}), 422
    )
    assert_error(
        api.post("/api/accounts/add", json={"instance": inst.address.base_url}),
        422,
        "username",
    )
    assert_error(
        api.post(
            "/api/accounts/add",
            json={"instance": inst.address.base_url, "username": "carol@other.example"},
        ),
        422,
        "other.example",
    )
    assert_error(
        api.post(
            "/api/accounts/add", content=b"{nope", headers={"Content-Type": "application/json"}
        ),
        422,
    )
    assert len(api.get("/api/accounts/tracked").json()["tracked_accounts"]) == 1


def test_add_when_the_server_is_down_is_502(api: TestClient) -> None:
    """A server that refuses connections is a 502 envelope."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    response = api.post(
        "/api/accounts/add", json={"instance": f"http://127.0.0.1:{port}", "username": "alice"}
    )
    assert_error(response, 502)


# -- /api/accounts/remove and /api/accounts/tracked ----------------------------------------


def test_tracked_documented_shape(api: TestClient, world: SimFediverse) -> None:
    """Each tracked account has mastodon-meter's five string fields, in the order added."""
    bob_id = add(api, world, "bob")
    carol_id = add(api, world, "carol", instance="other")
    alice_id = add(api, world, "alice")
    response = api.get("/api/accounts/tracked")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "message", "tracked_accounts"}
    assert body["status"] is True
    assert body["message"] == "Gathered 3 tracked accounts."
    carol = world.instance("other").account("carol")
    assert body["tracked_accounts"] == [
        {
            "internal_id": bob_id,
            "username": "bob",
            "instance": social(world).address.base_url,
            "instance_id": social(world).account("bob").id,
            "added_on": START,
        },
        {
            "internal_id": carol_id,
            "username": "carol",
            "instance": world.instance("other").address.base_url,
            "instance_id": carol.id,
            "added_on": START,
        },
        {
            "internal_id": alice_id,
            "username": "alice",
            "instance": social(world).address.base_url,
            "instance_id": social(world).account("alice").id,
            "added_on": START,
        },
    ]


def test_remove_keeps_history_by_default(api: TestClient, world: SimFediverse) -> None:
    """remove_associated_data false untracks; the meterings stay readable and come back."""
    internal_id = add(api, world, "alice")
    gather(api)
    response = api.post(
        "/api/accounts/remove",
        json={"account_internal_id": internal_id, "remove_associated_data": False},
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": True,
        "message": f"Removed account {internal_id} from the list of tracked; its meterings"
        " are kept",
    }
    assert api.get("/api/accounts/tracked").json()["tracked_accounts"] == []
    assert len(api.get(f"/api/{internal_id}/data").json()["data"]) == 1
    assert "0 meterings" in gather(api)["message"]
    again = api.post(
        "/api/accounts/remove",
        json={"account_internal_id": internal_id, "remove_associated_data": False},
    )
    assert_error(again, 404, "not tracked")
    assert add(api, world, "alice") == internal_id  # the same account, its history continued
    assert len(api.get(f"/api/{internal_id}/data").json()["data"]) == 1


def test_remove_with_associated_data_purges(api: TestClient, world: SimFediverse) -> None:
    """remove_associated_data true deletes the account and every metering."""
    internal_id = add(api, world, "alice")
    gather(api)
    response = api.post(
        "/api/accounts/remove",
        json={"account_internal_id": int(internal_id), "remove_associated_data": True},
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] is True
    assert "deleted its 1 meterings" in response.json()["message"]
    assert_error(api.get(f"/api/{internal_id}/data"), 404)
    assert api.get("/api/accounts/tracked").json()["tracked_accounts"] == []


def test_remove_unknown_id_is_404(api: TestClient) -> None:
    """An internal id that names no account, whatever its form, is a 404 envelope."""
    for bad_id in (UUID_ID, "999", 999, "0", "-1", "99999999999999999999", " ", "1e3"):
        response = api.post(
            "/api/accounts/remove",
            json={"account_internal_id": bad_id, "remove_associated_data": False},
        )
        assert_error(response, 404, "no account with internal id")


def test_remove_invalid_body_is_422(api: TestClient) -> None:
    """A body without the id, or with a non-boolean flag, is a 422 envelope."""
    assert_error(api.post("/api/accounts/remove", json={}), 422, "account_internal_id")
    assert_error(
        api.post(
            "/api/accounts/remove",
            json={"account_internal_id": "1", "remove_associated_data": [1]},
        ),
        422,
        "remove_associated_data",
    )


# -- /api/gather-data ----------------------------------------------------------------------


def test_gather_data_runs_a_round(api: TestClient, world: SimFediverse) -> None:
    """gather-data measures every tracked account before it answers, as mastodon-meter's."""
    add(api, world, "alice")
    add(api, world, "carol", instance="other")
    body = gather(api)
    assert set(body) == {"status", "message"}
    assert body["status"] is True
    assert re.fullmatch(
        r"Gathered 2 meterings for the tracked accounts in \d+(\.\d{1,3})? s\.", body["message"]
    ), body["message"]


def test_gather_data_reports_failed_accounts(api: TestClient, world: SimFediverse) -> None:
    """Accounts a round could not measure are counted in the message."""
    add(api, world, "alice")
    add(api, world, "bob")
    social(world).account("bob").deleted = True
    message = gather(api)["message"]
    assert message.startswith("Gathered 1 meterings for the tracked accounts in ")
    assert "1 accounts could not be measured: see /api/v1/runs/" in message


def test_gather_data_while_another_process_collects_is_409(
    api: TestClient, world: SimFediverse, compat_settings: Settings
) -> None:
    """A round running in another (live) process makes gather-data a 409 envelope."""
    add(api, world, "alice")

    async def start_elsewhere() -> None:
        db = await Database.open(compat_settings.database_url)
        try:
            await Repository(db).start_run(world.now, "another-host:4242", lambda _run: True)
        finally:
            await db.close()

    asyncio.run(start_elsewhere())
    assert_error(api.get("/api/gather-data"), 409, "still running")
    assert api.get(f"/api/{add_id(api)}/data").json()["data"] == []


def add_id(api: TestClient) -> str:
    """The internal id of the only tracked account."""
    [account] = api.get("/api/accounts/tracked").json()["tracked_accounts"]
    internal_id: str = account["internal_id"]
    return internal_id


# -- /api/{id}/data ------------------------------------------------------------------------


def two_days(api: TestClient, world: SimFediverse) -> str:
    """Track alice, measure her on 2026-01-05 12:00 and a day later; her internal id."""
    internal_id = add(api, world, "alice")
    gather(api)
    world.advance(days=1)
    gather(api)
    return internal_id


def test_data_documented_example(api: TestClient, world: SimFediverse) -> None:
    """The documented GET body (since 2021-01-01 12:00, to null) gives every metering."""
    internal_id = two_days(api, world)
    response = get_with_body(
        api, f"/api/{internal_id}/data", {"since": "2021-01-01 12:00", "to": None}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "message", "account_internal_id", "data"}
    assert body["status"] is True
    assert body["account_internal_id"] == internal_id
    assert body["data"] == [
        {
            "toot_count": 1000,
            "subscribers_count": 100,
            "metering_id": f"{internal_id}-{1767614400 * 10**6}",
            "timestamp": START,
        },
        {
            "toot_count": 1002,
            "subscribers_count": 103,
            "metering_id": f"{internal_id}-{(1767614400 + 86400) * 10**6}",
            "timestamp": NEXT_DAY,
        },
    ]
    for metering in body["data"]:
        assert TIMESTAMP.fullmatch(metering["timestamp"])
    assert api.get(f"/api/{internal_id}/data").json() == body


PERIODS: list[tuple[str | None, Any, int]] = [
    ("since=2026-01-06%2000:00", None, 1),
    (None, {"since": "2026-01-06 00:00"}, 1),
    ("since=2026-01-06T00:00:00Z", None, 1),
    ("since=2026-01-06", None, 1),
    ("to=2026-01-05", None, 1),  # a bare date includes the whole day
    (None, {"to": "2026-01-05 12:00"}, 1),  # both bounds are inclusive
    ("since=2026-01-05%2012:00&to=2026-01-06%2012:00", None, 2),
    (None, {"since": None, "to": None}, 2),
    ("since=&to=null", None, 2),
    ("since=2026-01-07", None, 0),
    ("since=2026-01-01", {"since": "2026-01-07"}, 2),  # the query wins over the body
]


def test_data_since_and_to_in_query_or_body(api: TestClient, world: SimFediverse) -> None:
    """since and to bound the meterings, from the query string or the JSON body."""
    internal_id = two_days(api, world)
    for query, body, count in PERIODS:
        url = f"/api/{internal_id}/data" + (f"?{query}" if query else "")
        response = api.get(url) if body is None else get_with_body(api, url, body)
        assert response.status_code == 200, (query, body, response.text)
        assert len(response.json()["data"]) == count, (query, body)


BAD_PERIODS: list[tuple[str | None, bytes | None, str]] = [
    ("since=yesterday", None, "since 'yesterday' is not a time"),
    ("to=2026-13-01", None, "to '2026-13-01' is not a time"),
    ("since=999999w", None, "is not a time"),
    ("since=2026-01-07&to=2026-01-05", None, "since is after to"),
    (None, b'{"since": "2021-01-01 12:00"', "not valid JSON"),
    (None, b"\xff\xfe\x00", "not valid JSON"),
    (None, b"[1, 2]", "must be a JSON object"),
    (None, b'{"since": 5}', "since must be a string"),
    (None, b'{"to": ["2021-01-01"]}', "to must be a string"),
    (None, b'{"since": "' + b"x" * 70_000 + b'"}', "larger than 65536 bytes"),
]


def test_data_invalid_period_is_422(api: TestClient, world: SimFediverse) -> None:
    """A bound that is not a time, or a body that is not a JSON object, is a 422 envelope."""
    internal_id = add(api, world, "alice")
    for query, content, fragment in BAD_PERIODS:
        url = f"/api/{internal_id}/data" + (f"?{query}" if query else "")
        assert_error(api.request("GET", url, content=content), 422, fragment)


def test_data_unknown_id_is_404(api: TestClient) -> None:
    """An id that is not a number, out of range, or unknown is a 404 envelope, never a 500."""
    for bad_id in (UUID_ID, "abc", "0", "2147483648", "99999999999999999999", "12", "%20", "1.0"):
        assert_error(api.get(f"/api/{bad_id}/data"), 404, "no account with internal id")


# -- graphs --------------------------------------------------------------------------------


def test_graphs_are_png_images_of_the_period(api: TestClient, world: SimFediverse) -> None:
    """Graph routes answer a PNG, with the period as query or JSON body; errors as envelopes."""
    internal_id = add(api, world, "alice")
    gather(api)
    for kind in ("subscribers", "toots", "common"):
        answer = api.get(f"/api/{internal_id}/graph/{kind}")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "image/png"
        assert answer.content.startswith(b"\x89PNG\r\n\x1a\n")
        documented = get_with_body(
            api, f"/api/{internal_id}/graph/{kind}", {"since": "2021-01-01 12:00", "to": None}
        )
        assert documented.status_code == 200
        assert documented.content.startswith(b"\x89PNG")
        assert_error(api.get(f"/api/{UUID_ID}/graph/{kind}"), 404)
        assert_error(api.get(f"/api/{internal_id}/graph/{kind}?since=soon"), 422)


# -- /api/report ---------------------------------------------------------------------------


def report_world(api: TestClient, world: SimFediverse) -> tuple[str, str, str]:
    """alice grows, bob loses 2 subscribers, carol is added after both rounds."""
    alice_id = add(api, world, "alice")
    bob_id = add(api, world, "bob")
    gather(api)
    world.advance(days=1)
    bob = social(world).account("bob")
    bob.followers -= 2
    gather(api)
    carol_id = add(api, world, "carol", instance="other")
    return alice_id, bob_id, carol_id


def test_report_end_to_end(api: TestClient, world: SimFediverse) -> None:
    """After two rounds the report is mastodon-meter's text, with the day's changes."""
    report_world(api, world)
    response = get_with_body(api, "/api/report", {"accounts": None})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"status", "message", "report"}
    assert body["status"] is True
    social_domain = social(world).domain
    assert body["report"] == (
        "Mastodon-meter summary report generated on 2026.01.06 12:00 UTC\n"
        "\n"
        f"alice@{social_domain}: 103 (+3) subscribers, 1002 (+2) statuses\n"
        f"bob@{social_domain}: 3 (-2) subscribers, 20 statuses\n"
        f"No records to display for carol@{world.instance('other').domain}"
    )
    assert api.get("/api/report").json()["report"] == body["report"]


def test_report_chosen_accounts(api: TestClient, world: SimFediverse) -> None:
    """accounts picks the ids, in the order given, from the body or the query."""
    alice_id, bob_id, _ = report_world(api, world)
    domain = social(world).domain
    alice = f"alice@{domain}: 103 (+3) subscribers, 1002 (+2) statuses"
    bob = f"bob@{domain}: 3 (-2) subscribers, 20 statuses"

    def lines(response: httpx.Response) -> list[str]:
        assert response.status_code == 200, response.text
        text: str = response.json()["report"]
        return text.split("\n")[2:]

    assert lines(get_with_body(api, "/api/report", {"accounts": [bob_id, alice_id]})) == [
        bob,
        alice,
    ]
    assert lines(get_with_body(api, "/api/report", {"accounts": [int(alice_id)]})) == [alice]
    assert lines(api.get(f"/api/report?accounts={bob_id}&accounts={alice_id}")) == [bob, alice]
    assert lines(api.get(f"/api/report?accounts={alice_id},{bob_id}")) == [alice, bob]
    assert lines(get_with_body(api, "/api/report", {"accounts": []})) == []
    # A removed account whose meterings were kept is still reported when asked for.
    api.post("/api/accounts/remove", json={"account_internal_id": bob_id})
    assert lines(api.get("/api/report")) == [
        alice,
        f"No records to display for carol@{world.instance('other').domain}",
    ]
    assert lines(api.get(f"/api/report?accounts={bob_id}")) == [bob]


async def test_previous_samples_read_together_match_one_query_per_account(
    repo: Repository,
) -> None:
    """The report's batched read finds each account's sample before its latest, as one by one.

    Recent accounts are read together, a stale one (no longer measured) alone; an account
    with one sample has none before it; a sample written after the listing changes nothing.
    """
    t0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
    home = InstanceAddress("social.example")
    days = {
        "daily": [0, 1, 2, 3, 4, 5],
        "gap": [0, 4, 5],  # its previous sample is older than the others' latest
        "single": [5],
        "stale": [-40, -31, -30],  # latest 35 days before the newest: asked alone
        "none": [],
    }
    ids: dict[str, int] = {}
    samples: list[NewSample] = []
    for number, (name, offsets) in enumerate(days.items(), start=1):
        handle = Handle(name, "example.org")
        account = await repo.add_account(
            ResolvedAccount(handle=handle, home=home, remote_id=str(number), display_name=name),
            t0,
        )
        ids[name] = account.id
        samples += [
            NewSample(account.id, t0 + timedelta(days=d, minutes=number), 10 + d, 5, 100 + d, None)
            for d in offsets
        ]
    run, _ = await repo.start_run(t0, "test", lambda _run: False)
    await repo.commit_batch(run.id, t0, RunProgress(), samples=samples)
    latest = [s for _, s in await repo.list_accounts() if s is not None]
    # A round writes a newer sample for "daily" after the listing, within the period read.
    later = NewSample(ids["daily"], t0 + timedelta(days=5, minutes=1, seconds=30), 99, 5, 199, None)
    await repo.commit_batch(run.id, t0, RunProgress(), samples=[later])

    found = await previous_samples(repo, latest)

    expected = {s.account_id: await previous_sample(repo, s) for s in latest}
    assert found == expected
    assert set(found) == {ids[n] for n in ("daily", "gap", "single", "stale")}
    assert found[ids["single"]] is None
    gap = found[ids["gap"]]
    assert gap is not None
    assert gap.taken_at == t0 + timedelta(days=4, minutes=2)
    stale = found[ids["stale"]]
    assert stale is not None
    assert stale.taken_at == t0 + timedelta(days=-31, minutes=4)
    assert await previous_samples(repo, []) == {}


def test_report_errors(api: TestClient, world: SimFediverse) -> None:
    """An unknown id in accounts is 404; accounts that is not a list of ids is 422."""
    alice_id = add(api, world, "alice")
    assert_error(get_with_body(api, "/api/report", {"accounts": [alice_id, UUID_ID]}), 404, UUID_ID)
    assert_error(api.get("/api/report?accounts=12345"), 404, "12345")
    assert_error(get_with_body(api, "/api/report", {"accounts": {"a": 1}}), 422, "accounts")
    assert_error(get_with_body(api, "/api/report", {"accounts": [True]}), 422, "accounts")
    assert_error(api.request("GET", "/api/report", content=b"accounts=1"), 422, "JSON")


# -- access --------------------------------------------------------------------------------


def test_writes_need_the_api_token(compat_settings: Settings, world: SimFediverse) -> None:
    """With an API token set, add, remove and gather-data answer 401 envelopes without it."""
    guarded = compat_settings.model_copy(update={"api_token": SecretStr(TOKEN)})
    inst = social(world)
    add_body = {"instance": inst.address.base_url, "username": "alice"}
    with _client(guarded, world) as client:
        for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"}):
            assert_error(client.post("/api/accounts/add", json=add_body, headers=headers), 401)
            assert_error(
                client.post(
                    "/api/accounts/remove", json={"account_internal_id": "1"}, headers=headers
                ),
                401,
            )
            response = client.get("/api/gather-data", headers=headers)
            assert_error(response, 401)
            assert response.headers["WWW-Authenticate"] == "Bearer"
        good = {"Authorization": f"Bearer {TOKEN}"}
        added = client.post("/api/accounts/add", json=add_body, headers=good)
        assert added.status_code == 200, added.text
        internal_id = added.json()["account_internal_id"]
        assert client.get("/api/gather-data", headers=good).status_code == 200
        # Reads stay open without a read token.
        assert client.get("/api/accounts/tracked").status_code == 200
        assert client.get(f"/api/{internal_id}/data").status_code == 200
        assert client.get("/api/report").status_code == 200
        assert client.get(f"/api/{internal_id}/graph/common").status_code == 200
        removed = client.post(
            "/api/accounts/remove", json={"account_internal_id": internal_id}, headers=good
        )
        assert removed.status_code == 200, removed.text


def test_reads_need_the_read_token_when_set(compat_settings: Settings, world: SimFediverse) -> None:
    """With a read token set, reads without it are 401 envelopes; with it they work."""
    guarded = compat_settings.model_copy(update={"read_token": SecretStr(TOKEN)})
    with _client(guarded, world) as client:
        for url in ("/api/accounts/tracked", "/api/1/data", "/api/report", "/api/1/graph/toots"):
            assert_error(client.get(url), 401, "read token")
        good = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/api/accounts/tracked", headers=good).status_code == 200


def test_writes_from_another_machine_are_403(
    compat_settings: Settings, world: SimFediverse
) -> None:
    """Without an API token, a write from another address is a 403 envelope."""
    with _client(compat_settings, world, peer=("203.0.113.9", 40000)) as client:
        assert_error(client.get("/api/gather-data"), 403, "FEDIMETER_API_TOKEN")
        response = client.post(
            "/api/accounts/add",
            json={"instance": social(world).address.base_url, "username": "alice"},
        )
        assert_error(response, 403)
        assert client.get("/api/accounts/tracked").status_code == 200


def test_openapi_declares_the_envelopes(api: TestClient) -> None:
    """The schema declares error envelopes, the PNG case, and no body on GET routes."""
    spec = api.get("/openapi.json").json()
    compat = {p: ops for p, ops in spec["paths"].items() if not p.startswith("/api/v1")}
    compat = {p: ops for p, ops in compat.items() if p.startswith("/api/")}
    assert set(compat) == {
        "/api/accounts/add",
        "/api/accounts/remove",
        "/api/accounts/tracked",
        "/api/gather-data",
        "/api/{account_internal_id}/data",
        "/api/{account_internal_id}/graph/subscribers",
        "/api/{account_internal_id}/graph/toots",
        "/api/{account_internal_id}/graph/common",
        "/api/report",
    }
    envelope = {"$ref": "#/components/schemas/ErrorEnvelope"}
    for path, ops in compat.items():
        for method, op in ops.items():
            if method == "get":
                assert "requestBody" not in op, path
            for code in ("401", "422"):
                assert op["responses"][code]["content"]["application/json"]["schema"] == envelope
    graph = compat["/api/{account_internal_id}/graph/toots"]["get"]["responses"]
    assert "image/png" in graph["200"]["content"]
    assert graph["404"]["content"]["application/json"]["schema"] == envelope
