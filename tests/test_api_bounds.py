"""The API's bounds: moments within 1970..2999, bounded engagement buckets, bodies and echoes.

Each of these was a 500, or an answer of hundreds of megabytes, on a server with data in it
(an audit of ``fedimeter serve`` on SQLite). The data is written through the stores, so every
route reaches the arithmetic behind its dates.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from apihelpers import api, api_settings
from fedimeter.config import Settings
from fedimeter.domain.engagement import SeenStatus, bucket_starts, engagement_buckets, known_span
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.domain.tags import TagDay, TagReading, TrendingTag, parse_tag_name
from fedimeter.fediverse.statuses import StatusesRead
from fedimeter.storage.database import Database
from fedimeter.storage.engagement import EngagementStore
from fedimeter.storage.records import NewSample, RunProgress
from fedimeter.storage.repository import Repository
from fedimeter.storage.tags import TagStore

NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOME = InstanceAddress("social.example")


@dataclass(frozen=True)
class Seeded:
    """The ids of what ``seed`` wrote."""

    account: int
    plain_account: int
    tag: int
    trends_instance: int


async def seed(db: Database) -> Seeded:
    """An account with samples and engagement read, one without engagement, a tag, trends."""
    repo = Repository(db)
    alice = await repo.add_account(
        ResolvedAccount(Handle("alice", "social.example"), HOME, "1"), NOW - 40 * DAY
    )
    bob = await repo.add_account(
        ResolvedAccount(Handle("bob", "social.example"), HOME, "2"), NOW - 40 * DAY
    )
    run, _ = await repo.start_run(NOW - 10 * DAY, "test", lambda _run: False)
    await repo.commit_batch(
        run.id,
        NOW - 10 * DAY,
        RunProgress(),
        samples=[NewSample(alice.id, NOW - n * DAY, 100 + n, 5, 50, None) for n in range(10)],
    )
    store = EngagementStore(db)
    await store.enable(alice.id, NOW - 20 * DAY)
    statuses = tuple(
        SeenStatus(str(n), NOW - n * DAY, "post", n, 0, 0, excerpt=f"post {n}") for n in range(10)
    )
    await store.store_read(
        alice.id, StatusesRead(statuses, 1, 0, covered_since=NOW - 12 * DAY), NOW - DAY
    )
    tags = TagStore(db)
    tag = await tags.track(HOME, parse_tag_name("Caturday"), NOW - 9 * DAY)
    days = tuple(TagDay(date(2026, 3, 1) + n * DAY, 10 + n, 5, True) for n in range(8))
    await tags.store(tag.id, TagReading("Caturday", None, days), NOW)
    instance_id, _ = await tags.track_trends(InstanceAddress("other.example"), NOW - DAY)
    await tags.store_trends(
        instance_id, NOW, [TrendingTag(1, "Caturday", NOW.date(), 10, 5)], run_id=None
    )
    return Seeded(alice.id, bob.id, tag.id, instance_id)


@pytest.fixture
async def seeded(db: Database) -> Seeded:
    """The seeded ids."""
    return await seed(db)


@pytest.fixture
def http(settings: Settings, seeded: Seeded) -> Iterator[TestClient]:
    """The API over the seeded database (``seeded`` writes it first), at NOW."""
    assert seeded.account
    with api(api_settings(settings), clock=lambda: NOW) as client:
        yield client


def _paths(ids: Seeded) -> list[str]:
    """Every read that takes since/until (the comparison graph's ids go in ``_params``)."""
    account = f"/api/v1/accounts/{ids.account}"
    return [
        f"/api/v1/tags/{ids.tag}/history",
        f"/api/v1/tags/{ids.tag}/graph.png",
        f"{account}/samples",
        f"{account}/graph.png",
        f"{account}/engagement",
        f"{account}/engagement/statuses",
        f"{account}/engagement/graph.png",
        f"/api/v1/instances/{ids.trends_instance}/trends",
        "/api/v1/report",
        "/api/v1/graph.png",
    ]


def _params(path: str, ids: Seeded, query: dict[str, str]) -> dict[str, str | int]:
    extra = {"account_id": ids.account} if path == "/api/v1/graph.png" else {}
    return {**query, **extra}


OUTSIDE = [
    ({"since": "0001-01-01T00:00:00+01:00"}, "is before 1970-01-01"),
    ({"since": "0001-01-01"}, "is before 1970-01-01"),
    ({"since": "0002-01-01"}, "is before 1970-01-01"),
    ({"since": "99999d"}, "reaches back before 1970-01-01"),
    ({"since": "740000d"}, "reaches back before 1970-01-01"),
    ({"until": "9999-12-31T23:59:59-12:00"}, "is after 2999-12-31"),
    ({"until": "9999-12-31"}, "is after 2999-12-31"),
    ({"since": "2026-03-01", "until": "3000-01-01"}, "is after 2999-12-31"),
]


@pytest.mark.parametrize(("query", "fragment"), OUTSIDE, ids=[str(q) for q, _ in OUTSIDE])
def test_moments_outside_1970_to_2999_are_a_one_line_422_on_every_route(
    http: TestClient, seeded: Seeded, query: dict[str, str], fragment: str
) -> None:
    """Every route that reads since/until refuses the same moments with the same words."""
    for path in _paths(seeded):
        answer = http.get(path, params=_params(path, seeded, query))
        assert answer.status_code == 422, (path, query, answer.text[:300])
        body = answer.json()
        assert body["code"] == "invalid_input", (path, body)
        assert fragment in body["detail"], (path, body)
        assert "1970-01-01" in body["detail"]
        assert "\n" not in body["detail"]


def test_the_widest_accepted_period_is_answered(http: TestClient, seeded: Seeded) -> None:
    """1970-01-01 to 2999-12-31: every route answers.

    A report compares with the period before it; engagement cuts its buckets to its data;
    none overflows.
    """
    wide = {"since": "1970-01-01", "until": "2999-12-31"}
    for path in _paths(seeded):
        query = {**wide, "by": "week"} if "engagement" in path else wide
        answer = http.get(path, params=_params(path, seeded, query))
        assert answer.status_code == 200, (path, answer.text[:300])
    report = http.get("/api/v1/report", params=wide).json()
    assert report["tags"], "the tag's line is in the report"


@pytest.mark.parametrize("path", ["/engagement", "/engagement/graph.png"])
def test_engagement_until_the_last_day_does_not_overflow(
    http: TestClient, seeded: Seeded, path: str
) -> None:
    """The last bucket ends at until, never a day after the calendar's last one."""
    answer = http.get(
        f"/api/v1/accounts/{seeded.account}{path}",
        params={"since": "2999-12-20", "until": "2999-12-31", "by": "day"},
    )
    assert answer.status_code == 200, answer.text[:300]
    if path == "/engagement":
        buckets = answer.json()["buckets"]
        assert buckets == [], "no data that late: no buckets"


# --- engagement buckets ------------------------------------------------------------------------


def test_engagement_since_1970_by_day_gives_the_days_read_not_one_per_day_since_1970(
    http: TestClient, seeded: Seeded
) -> None:
    """Buckets run from the first day anything was read to the last: small and quick."""
    base = f"/api/v1/accounts/{seeded.account}/engagement"
    answer = http.get(base, params={"since": "1970-01-01", "by": "day"})
    assert answer.status_code == 200
    assert len(answer.content) < 50_000
    body = answer.json()
    days = [b["since"][:10] for b in body["buckets"]]
    assert days[0] == "2026-02-17"  # engagement was turned on 20 days before NOW
    assert days[-1] == "2026-03-09"
    assert len(days) == 21
    assert body["period"]["since"] == "1970-01-01T00:00:00Z"  # the period is as asked
    assert body["period"]["posts"] == sum(b["posts"] for b in body["buckets"]) == 9  # < NOW
    graph = http.get(f"{base}/graph.svg", params={"since": "1970-01-01", "by": "day"})
    assert graph.status_code == 200
    assert graph.headers["content-type"].startswith("image/svg+xml")
    # Drawn over the days read, as the buckets are, not over 56 years with bars at the end.
    assert "2026-02-17" in graph.text
    assert "1970" not in graph.text


async def test_more_than_a_thousand_buckets_is_a_422_saying_what_to_do(
    db: Database, settings: Settings, seeded: Seeded
) -> None:
    """Three years of statuses by day is too many buckets: use by=week, which answers."""
    store = EngagementStore(db)
    await store.enable(seeded.plain_account, NOW - 1100 * DAY)
    old = SeenStatus("1", NOW - 1100 * DAY, "post", 1, 0, 0)
    new = SeenStatus("2", NOW - DAY, "post", 1, 0, 0)
    await store.store_read(
        seeded.plain_account,
        StatusesRead((old, new), 1, 0, covered_since=NOW - 1100 * DAY),
        NOW - DAY,
    )
    base = f"/api/v1/accounts/{seeded.plain_account}/engagement"
    with api(api_settings(settings), clock=lambda: NOW) as http:
        daily = http.get(base, params={"since": "1970-01-01", "by": "day"})
        graph = http.get(f"{base}/graph.png", params={"since": "1970-01-01", "by": "day"})
        weekly = http.get(base, params={"since": "1970-01-01", "by": "week"})
    for refused in (daily, graph):
        assert refused.status_code == 422
        assert refused.json() == {
            "detail": "by=day makes 1,100 buckets from 2023-03-05 to 2026-03-09, more than"
            " 1,000: use by=week or a shorter period",
            "code": "invalid_input",
        }
    assert weekly.status_code == 200
    assert len(weekly.json()["buckets"]) == 158


def test_bucket_starts_never_step_past_the_calendar() -> None:
    """The last day of the year 9999 is a bucket; the day after it is no datetime."""
    since = datetime(9999, 12, 30, tzinfo=UTC)
    until = datetime.max.replace(tzinfo=UTC)
    assert bucket_starts(since, until, "day") == [since, since + DAY]
    buckets = engagement_buckets([], [], since=since, until=until, by="week")
    assert (buckets[-1].since, buckets[-1].until) == (since, until)


def test_known_span_keeps_the_buckets_that_meet_something_read() -> None:
    """Whole buckets from the first moment known to the last, within the period."""
    since, until = datetime(1970, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, tzinfo=UTC)
    wednesday = datetime(2026, 3, 4, 15, tzinfo=UTC)
    friday = datetime(2026, 3, 6, 3, tzinfo=UTC)
    assert known_span(since, until, "day", [None, friday, wednesday]) == (
        datetime(2026, 3, 4, tzinfo=UTC),
        datetime(2026, 3, 7, tzinfo=UTC),
    )
    assert known_span(since, until, "week", [wednesday]) == (
        datetime(2026, 3, 2, tzinfo=UTC),
        datetime(2026, 3, 9, tzinfo=UTC),
    )
    inside = (datetime(2026, 3, 5, 12, tzinfo=UTC), datetime(2026, 3, 5, 18, tzinfo=UTC))
    assert known_span(*inside, "day", [wednesday, friday]) == inside  # as asked
    assert known_span(since, until, "day", [None]) is None
    assert known_span(datetime(2027, 1, 1, tzinfo=UTC), until, "day", [friday]) is None


# --- what a 422 echoes -------------------------------------------------------------------------

TOKEN = "t0ken-for-the-bounds-tests-0123456789"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/v1/tags", b'{"name":"\\ud800x","hosts":["10.0.0.1"]}', ["body", "name"]),
        ("/api/v1/tags", b'{"name":"x","hosts":["\\udfff.example"]}', ["body", "hosts", 0]),
        ("/api/v1/accounts", b'{"handle":"\\ud800x"}', ["body", "handle"]),
        ("/api/v1/trends", b'{"host":"\\ud800x"}', ["body", "host"]),
    ],
)
def test_a_lone_surrogate_in_a_body_is_a_422_not_a_500(
    settings: Settings, path: str, body: bytes, field: list[str | int]
) -> None:
    """JSON can spell a lone surrogate; pydantic refuses it, and the answer can show it."""
    with api(api_settings(settings, api_token=TOKEN)) as http:
        answer = http.post(
            path,
            content=body,
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/json"
    error = answer.json()["detail"][0]
    assert error["loc"] == field
    assert error["msg"] == (
        "Input should be a valid string, unable to parse raw data as a unicode string"
    )
    assert "\\ud" in error["input"] or "\\udfff" in error["input"]


def test_the_compat_routes_answer_a_lone_surrogate_with_their_envelope(settings: Settings) -> None:
    """mastodon-meter's add: a 422 envelope in one line."""
    with api(api_settings(settings)) as http:
        answer = http.post(
            "/api/accounts/add",
            content=b'{"username":"\\ud800","instance":"a.example"}',
            headers={"Content-Type": "application/json"},
        )
    assert answer.status_code == 422
    assert answer.json() == {
        "status": False,
        "message": "invalid request: body.username: Input should be a valid string, unable to"
        " parse raw data as a unicode string",
    }


def test_a_422_never_echoes_a_large_input(settings: Settings) -> None:
    """A long text is cut to 100 characters; a long list is not echoed at all."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with api(api_settings(settings, api_token=TOKEN)) as http:
        long_name = http.post(
            "/api/v1/tags", json={"name": "x" * 300_000, "hosts": ["a.example"]}, headers=headers
        )
        many_hosts = http.post(
            "/api/v1/tags", json={"name": "x", "hosts": ["a.example"] * 20_000}, headers=headers
        )
        long_key = http.post("/api/v1/accounts", json={"y" * 300_000: 1}, headers=headers)
    for answer in (long_name, many_hosts, long_key):
        assert answer.status_code == 422
        assert len(answer.content) < 2_000, answer.text[:300]
    name = long_name.json()["detail"][0]
    assert name["input"] == "x" * 99 + "\u2026"
    assert name["ctx"] == {"max_length": 202}
    hosts = many_hosts.json()["detail"][0]
    assert hosts["loc"] == ["body", "hosts"]
    assert "input" not in hosts
    assert all(len(str(part)) <= 100 for e in long_key.json()["detail"] for part in e["loc"])


# --- body size --------------------------------------------------------------------------------


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    """A JSON body of ``total`` bytes sent in chunks, with no Content-Length."""
    yield b'{"name": "'
    left = total - len(b'{"name": "') - len(b'", "hosts": ["a.example"]}')
    while left > 0:
        yield b"x" * min(size, left)
        left -= size
    yield b'", "hosts": ["a.example"]}'


def test_a_body_over_1_mib_is_a_413_in_one_line(settings: Settings, seeded: Seeded) -> None:
    """Declared, or chunked with no length: 413 before the whole body is read or echoed."""
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    detail = "the request body is larger than 1048576 bytes, more than any API call needs"
    big = b'{"name": "' + b"x" * (3 * 1024 * 1024) + b'", "hosts": ["a.example"]}'
    with api(api_settings(settings, api_token=TOKEN)) as http:
        declared = http.post("/api/v1/tags", content=big, headers=headers)
        chunked = http.post("/api/v1/tags", content=_chunks(2 * 1024 * 1024), headers=headers)
        hosts = http.post(
            "/api/v1/tags",
            json={"name": "x", "hosts": ["10.0.0.1"] * 200_000},
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        compat = http.post(
            "/api/accounts/add", content=big, headers={"Content-Type": "application/json"}
        )
        compat_get = http.request(
            "GET", f"/api/{seeded.account}/data", content=_chunks(2 * 1024 * 1024), headers=headers
        )
        just_under = http.post("/api/v1/tags", content=_chunks(1024 * 1024 - 1000), headers=headers)
    for answer in (declared, chunked, hosts):
        assert answer.status_code == 413, answer.text[:300]
        assert answer.json() == {"detail": detail, "code": "too_large"}
    for answer in (compat, compat_get):
        assert answer.status_code == 413, answer.text[:300]
        assert answer.json() == {"status": False, "message": detail}
    assert just_under.status_code == 422  # read and validated: a name that long is no tag
    assert len(just_under.content) < 2_000


def test_the_dashboard_upload_of_a_large_follows_export_is_not_limited(
    settings: Settings,
) -> None:
    """The 1 MiB is the API's: /manage/add reads its 2 MB export and answers for itself."""
    export = b"Account address,Show boosts\n" + b"someone@social.example,true\n" * 70_000
    assert len(export) > 1024 * 1024
    with api(api_settings(settings)) as http:
        answer = http.post(
            "/manage/add",
            data={"csrf": "wrong", "handles": ""},
            files={"follows": ("following_accounts.csv", export, "text/csv")},
        )
    assert answer.status_code == 403  # read whole, then refused by its CSRF check, not 413
    assert "The form expired" in answer.text


# --- the same answer for the same question ------------------------------------------------------


@pytest.mark.parametrize("kind", ["samples", "engagement/statuses"])
def test_csv_by_accept_on_every_route_that_has_csv(
    http: TestClient, seeded: Seeded, kind: str
) -> None:
    """As a tag's history: Accept: text/csv gives CSV; format, or JSON named too, wins."""
    path = f"/api/v1/accounts/{seeded.account}/{kind}"
    by_accept = http.get(path, headers={"Accept": "text/csv"})
    by_format = http.get(path, params={"format": "csv"})
    json_wins = http.get(path, headers={"Accept": "text/csv, application/json"})
    forced = http.get(path, params={"format": "json"}, headers={"Accept": "text/csv"})
    plain = http.get(path)
    assert by_accept.headers["content-type"] == "text/csv; charset=utf-8"
    assert by_accept.text == by_format.text
    assert by_accept.text.count("\n") == 11  # a header and 10 rows
    for answer in (json_wins, forced, plain):
        assert answer.headers["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("method", "suffix"),
    [
        ("GET", ""),
        ("GET", "/statuses"),
        ("GET", "/graph.png"),
        ("GET", "/graph.svg"),
        ("DELETE", ""),
        ("PUT", ""),
    ],
)
def test_an_unknown_account_is_no_account_on_every_engagement_route(
    http: TestClient, seeded: Seeded, method: str, suffix: str
) -> None:
    """No such account: 404 'no account with id 99'; known, never on: how to turn it on."""
    unknown = http.request(method, f"/api/v1/accounts/99/engagement{suffix}")
    assert unknown.status_code == 404
    assert unknown.json() == {"detail": "no account with id 99", "code": "not_tracked"}
    if method == "PUT":
        return
    known = http.request(method, f"/api/v1/accounts/{seeded.plain_account}/engagement{suffix}")
    assert known.status_code == 404
    assert known.json() == {
        "detail": f"engagement was never on for account {seeded.plain_account} (turn it on"
        f" with PUT /api/v1/accounts/{seeded.plain_account}/engagement)",
        "code": "not_tracked",
    }
