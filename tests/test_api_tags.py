"""``/api/v1/tags`` and ``/api/v1/instances/{id}/trends`` on both backends.

Reads are seeded through ``TagStore`` (gaps and a day in progress exactly where a test wants
them); adding is tried against the simulated fediverse.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from apihelpers import REMOTE, api, api_settings
from fedimeter.config import Settings
from fedimeter.domain.models import InstanceAddress
from fedimeter.domain.tags import TagDay, TagName, TagReading, TrendingTag, parse_tag_name
from fedimeter.simfedi import Fault, SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.tags import TagRecord, TagStore
from test_graph import png_size, svg_root

NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
DAY0 = date(2026, 3, 1)
SOCIAL = InstanceAddress("social.example")
OTHER = InstanceAddress("other.example")
TOKEN = "t0ken-for-the-tag-tests-0123456789"
READ_TOKEN = "read-t0ken-for-the-tag-tests-987"


def day(n: int, uses: int, accounts: int, *, complete: bool = True) -> TagDay:
    """Day ``n`` after DAY0."""
    return TagDay(DAY0 + timedelta(days=n), uses, accounts, complete)


async def seed(db: Database, *, name: str = "Caturday") -> tuple[TagRecord, TagRecord]:
    """#caturday on two instances.

    On social.example: March 1 to 3 and 5 to 8 complete (the 4th never answered), the 9th in
    progress. On other.example: March 6 to 8 complete, nothing in progress.
    """
    store = TagStore(db)
    tag = parse_tag_name("Caturday")
    # A name other than the tag's own can only be stored by tracking (a server's spelling of
    # another key is refused): how a hostile one reaches the routes in these tests.
    social = await store.track(SOCIAL, TagName(name, tag.key), NOW - timedelta(days=9))
    first = TagReading(name, "https://social.example/tags/caturday", (day(0, 10, 4), day(1, 12, 5)))
    await store.store(social.id, first, NOW - timedelta(days=6))
    second = TagReading(
        name,
        "https://social.example/tags/caturday",
        (
            day(2, 30, 9),
            day(4, 40, 11),
            day(5, 50, 12),
            day(6, 60, 13),
            day(7, 70, 14),
            day(8, 7, 3, complete=False),
        ),
    )
    await store.store(social.id, second, NOW)
    other = await store.track(OTHER, tag, NOW - timedelta(days=3))
    reading = TagReading("caturday", None, (day(5, 1, 1), day(6, 2, 2), day(7, 3, 2)))
    await store.store(other.id, reading, NOW)
    return await store.get(social.id), await store.get(other.id)


def test_the_routes_are_in_the_openapi_document_with_examples(settings: Settings) -> None:
    """Every tag route is documented, with response models, examples and its error statuses."""
    with api(api_settings(settings)) as http:
        spec = http.get("/openapi.json").json()
    paths = spec["paths"]
    assert set(paths["/api/v1/tags"]) == {"get", "post"}
    assert set(paths["/api/v1/tags/{tag_id}"]) == {"get", "delete"}
    assert "get" in paths["/api/v1/tags/{tag_id}/history"]
    assert "get" in paths["/api/v1/tags/{tag_id}/graph.{fmt}"]
    assert "get" in paths["/api/v1/instances/{instance_id}/trends"]
    post = paths["/api/v1/tags"]["post"]
    assert {"201", "401", "409", "422", "502"} <= set(post["responses"])
    schemas = spec["components"]["schemas"]
    for name in ("TagPublic", "TagAddResult", "TagHistoryPublic", "TrendsPublic"):
        assert schemas[name]["examples"], name
    assert schemas["TagCreate"]["properties"]["hosts"]["examples"]
    history = paths["/api/v1/tags/{tag_id}/history"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(history)


async def test_the_list_and_one_tag_give_the_newest_complete_day_and_the_day_in_progress(
    db: Database, settings: Settings
) -> None:
    """Each tag on each instance: its last complete day and its day so far, apart."""
    social, _ = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        listed = http.get("/api/v1/tags").json()
        one = http.get(f"/api/v1/tags/{social.id}")
    assert [(t["name"], t["host"]) for t in listed] == [
        ("caturday", "other.example"),  # as each server spells it
        ("Caturday", "social.example"),
    ]
    assert one.status_code == 200
    body = one.json()
    assert body == listed[1]
    assert body["key"] == "caturday"
    assert body["instance_id"] == social.instance_id
    assert body["url"] == "https://social.example/tags/caturday"
    assert body["last_complete_day"] == {
        "day": "2026-03-08",
        "uses": 70,
        "accounts": 14,
        "complete": True,
    }
    assert body["day_in_progress"] == {
        "day": "2026-03-09",
        "uses": 7,
        "accounts": 3,
        "complete": False,
    }
    assert body["consecutive_failures"] == 0
    assert listed[0]["last_complete_day"]["day"] == "2026-03-08"
    assert listed[0]["day_in_progress"] is None


async def test_an_unknown_tag_is_404_and_a_bad_id_422(db: Database, settings: Settings) -> None:
    """No such tag: 404 with the not_tracked code on every route; an id that is no id: 422."""
    await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        for path in ("/api/v1/tags/99", "/api/v1/tags/99/history", "/api/v1/tags/99/graph.png"):
            answer = http.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["code"] == "not_tracked"
        assert http.delete("/api/v1/tags/99").status_code == 404
        assert http.get("/api/v1/tags/0").status_code == 422
        assert http.get("/api/v1/tags/caturday").status_code == 422


async def test_history_keeps_gaps_and_the_day_in_progress(db: Database, settings: Settings) -> None:
    """Days oldest first; the day never answered is absent, not zero; since/until are days."""
    social, _ = await seed(db)
    path = f"/api/v1/tags/{social.id}/history"
    with api(api_settings(settings), clock=lambda: NOW) as http:
        every = http.get(path).json()
        some = http.get(path, params={"since": "2026-03-03", "until": "2026-03-06"}).json()
        recent = http.get(path, params={"since": "2d"}).json()
        unreadable = http.get(path, params={"since": "soon"})
        backwards = http.get(path, params={"since": "2026-03-05", "until": "2026-03-01"})
        wrong_format = http.get(path, params={"format": "xml"})
    assert [d["day"] for d in every["days"]] == [
        "2026-03-01",
        "2026-03-02",
        "2026-03-03",
        "2026-03-05",
        "2026-03-06",
        "2026-03-07",
        "2026-03-08",
        "2026-03-09",
    ]
    assert [d["complete"] for d in every["days"]] == [True] * 7 + [False]
    assert (every["tag_id"], every["host"], every["since"], every["until"]) == (
        social.id,
        "social.example",
        None,
        None,
    )
    assert [(d["day"], d["uses"]) for d in some["days"]] == [
        ("2026-03-03", 30),
        ("2026-03-05", 40),
        ("2026-03-06", 50),
    ]
    assert (some["since"], some["until"]) == ("2026-03-03", "2026-03-06")
    assert [d["day"] for d in recent["days"]] == ["2026-03-07", "2026-03-08", "2026-03-09"]
    assert unreadable.status_code == backwards.status_code == wrong_format.status_code == 422
    assert unreadable.json()["code"] == "invalid_input"


async def test_history_as_csv_by_format_or_accept(db: Database, settings: Settings) -> None:
    """format=csv, or Accept: text/csv, gives a CSV download; JSON otherwise."""
    social, _ = await seed(db)
    path = f"/api/v1/tags/{social.id}/history"
    with api(api_settings(settings), clock=lambda: NOW) as http:
        by_format = http.get(path, params={"format": "csv", "since": "2026-03-07"})
        by_accept = http.get(path, params={"since": "2026-03-07"}, headers={"Accept": "text/csv"})
        json_wins = http.get(path, headers={"Accept": "text/csv, application/json"})
        forced = http.get(path, params={"format": "json"}, headers={"Accept": "text/csv"})
    assert by_format.headers["content-type"].startswith("text/csv")
    assert by_format.headers["content-disposition"] == (
        'attachment; filename="caturday-social.example.csv"'
    )
    rows = list(csv.reader(io.StringIO(by_format.text)))
    assert rows == [
        ["tag", "instance", "day", "uses", "accounts", "complete"],
        ["Caturday", "social.example", "2026-03-07", "60", "13", "true"],
        ["Caturday", "social.example", "2026-03-08", "70", "14", "true"],
        ["Caturday", "social.example", "2026-03-09", "7", "3", "false"],
    ]
    assert by_accept.text == by_format.text
    assert json_wins.headers["content-type"] == "application/json"
    assert forced.json()["days"][0]["day"] == "2026-03-01"


async def test_csv_cells_a_spreadsheet_would_run_are_defused(
    db: Database, settings: Settings
) -> None:
    """A tag name a server sent that starts like a formula is written with a leading quote."""
    social, _ = await seed(db, name='=HYPERLINK("https://evil.example","x")')
    with api(api_settings(settings), clock=lambda: NOW) as http:
        text = http.get(f"/api/v1/tags/{social.id}/history", params={"format": "csv"}).text
        as_json = http.get(f"/api/v1/tags/{social.id}").json()
    rows = list(csv.reader(io.StringIO(text)))
    assert {row[0] for row in rows[1:]} == {'\'=HYPERLINK("https://evil.example","x")'}
    assert as_json["name"] == '=HYPERLINK("https://evil.example","x")'


async def test_a_tag_spelled_in_another_script_downloads_under_an_ascii_name(
    db: Database, settings: Settings
) -> None:
    """Headers are Latin-1: a key in another script names the file by the tag's id."""
    store = TagStore(db)
    cat = await store.track(SOCIAL, parse_tag_name("#猫"), NOW)
    await store.store(cat.id, TagReading("猫", None, (day(7, 5, 2),)), NOW)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        answer = http.get(f"/api/v1/tags/{cat.id}/history", params={"format": "csv"})
    assert answer.status_code == 200
    assert f'filename="tag-{cat.id}-social.example.csv"' in answer.headers["content-disposition"]
    assert "猫,social.example,2026-03-08,5,2,true" in answer.text


async def test_graphs_of_one_instance_or_every_instance_compared(
    db: Database, settings: Settings
) -> None:
    """PNG and SVG of the stated size; compare=true draws something else; bad options 422."""
    social, _ = await seed(db)
    path = f"/api/v1/tags/{social.id}"
    with api(api_settings(settings), clock=lambda: NOW) as http:
        png = http.get(f"{path}/graph.png", params={"width": 640, "height": 320, "scale": 2})
        svg = http.get(f"{path}/graph.svg", params={"theme": "dark", "since": "2026-03-01"})
        compared = http.get(f"{path}/graph.png", params={"compare": "true", "width": 640})
        accounts = http.get(
            f"{path}/graph.png", params={"compare": "true", "metric": "accounts", "width": 640}
        )
        one_again = http.get(f"{path}/graph.png", params={"width": 640})
        bad_metric = http.get(f"{path}/graph.png", params={"metric": "followers"})
        bad_period = http.get(f"{path}/graph.png", params={"since": "2026-03-09", "until": "3d"})
        bad_format = http.get(f"{path}/graph.gif")
    assert png.status_code == 200
    assert png.headers["content-type"] == "image/png"
    assert png.headers["cache-control"] == "no-cache"
    assert png_size(png.content) == (1280, 640)
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg_root(svg.content).get("width") == "1000px"
    assert compared.status_code == accounts.status_code == 200
    assert len({compared.content, accounts.content, one_again.content}) == 3
    assert bad_metric.status_code == bad_period.status_code == bad_format.status_code == 422


async def test_delete_stops_tracking_and_deletes_the_days(db: Database, settings: Settings) -> None:
    """204, then the tag is gone everywhere and the other instance keeps its own."""
    social, other = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        assert http.delete(f"/api/v1/tags/{social.id}").status_code == 204
        assert http.get(f"/api/v1/tags/{social.id}").status_code == 404
        assert http.delete(f"/api/v1/tags/{social.id}").status_code == 404
        assert [t["id"] for t in http.get("/api/v1/tags").json()] == [other.id]
    assert await TagStore(db).history(social.id) == []
    assert len(await TagStore(db).history(other.id)) == 3


async def test_trends_newest_first_within_since_until_and_limit(
    db: Database, settings: Settings
) -> None:
    """One list per reading, newest first, in rank order; still readable once no longer recorded."""
    store = TagStore(db)
    instance_id, _ = await store.track_trends(SOCIAL, NOW - timedelta(days=2))
    for back, names in ((2, ["Caturday", "Art"]), (1, ["Art", "Caturday", "Cats"]), (0, ["Rain"])):
        taken = NOW - timedelta(days=back)
        trending = [
            TrendingTag(rank, name, taken.date(), 100 - rank, 50 - rank)
            for rank, name in enumerate(names, start=1)
        ]
        await store.store_trends(instance_id, taken, trending)
    path = f"/api/v1/instances/{instance_id}/trends"
    with api(api_settings(settings), clock=lambda: NOW) as http:
        every = http.get(path).json()
        newest = http.get(path, params={"limit": 1}).json()
        older = http.get(path, params={"until": "1d"}).json()
        too_many = http.get(path, params={"limit": 0})
        nothing = http.get("/api/v1/instances/999/trends")
        await store.untrack_trends("social.example")
        stopped = http.get(path).json()
    assert (every["instance_id"], every["host"], every["recording"]) == (
        instance_id,
        "social.example",
        True,
    )
    assert [[t["name"] for t in lst["tags"]] for lst in every["lists"]] == [
        ["Rain"],
        ["Art", "Caturday", "Cats"],
        ["Caturday", "Art"],
    ]
    assert every["lists"][1]["tags"][0] == {
        "rank": 1,
        "name": "Art",
        "day": "2026-03-08",
        "uses": 99,
        "accounts": 49,
    }
    assert [lst["taken_at"] for lst in newest["lists"]] == ["2026-03-09T15:00:00Z"]
    assert [len(lst["tags"]) for lst in older["lists"]] == [3, 2]
    assert too_many.status_code == 422
    assert nothing.status_code == 404
    assert nothing.json()["code"] == "not_tracked"
    assert stopped["recording"] is False
    assert len(stopped["lists"]) == 3


async def test_an_empty_answer_after_a_list_shows_in_checked_at(
    db: Database, settings: Settings
) -> None:
    """Trends read as [] after yesterday's list: checked_at is later than the list's time."""
    store = TagStore(db)
    instance_id, _ = await store.track_trends(SOCIAL, NOW - timedelta(days=1))
    yesterday = NOW - timedelta(days=1)
    await store.store_trends(
        instance_id, yesterday, [TrendingTag(1, "Art", yesterday.date(), 9, 4)]
    )
    await store.store_trends(instance_id, NOW, [])
    with api(api_settings(settings), clock=lambda: NOW) as http:
        one = http.get(f"/api/v1/instances/{instance_id}/trends").json()
        (every,) = http.get("/api/v1/trends").json()
    assert one["checked_at"] == every["checked_at"] == "2026-03-09T15:00:00Z"
    assert [lst["taken_at"] for lst in one["lists"]] == ["2026-03-08T15:00:00Z"]
    assert every["latest"]["taken_at"] == "2026-03-08T15:00:00Z"


async def test_trends_of_a_known_instance_never_recorded_are_404(
    db: Database, settings: Settings
) -> None:
    """An instance that only holds tracked tags has no trending lists to show."""
    social, _ = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        answer = http.get(f"/api/v1/instances/{social.instance_id}/trends")
    assert answer.status_code == 404
    assert "fedimeter tag trends add" in answer.json()["detail"]


async def test_reads_need_the_read_token_and_writes_the_api_token(
    db: Database, settings: Settings
) -> None:
    """With both tokens set: reads 401 without one, writes 401 with the read token only."""
    social, _ = await seed(db)
    secured = api_settings(settings, api_token=TOKEN, read_token=READ_TOKEN)
    reader = {"Authorization": f"Bearer {READ_TOKEN}"}
    with api(secured, clock=lambda: NOW, client=REMOTE) as http:
        assert http.get("/api/v1/tags").status_code == 401
        assert http.get(f"/api/v1/tags/{social.id}/history").status_code == 401
        assert http.get(f"/api/v1/instances/{social.instance_id}/trends").status_code == 401
        assert http.get("/api/v1/tags", headers=reader).status_code == 200
        denied = http.delete(f"/api/v1/tags/{social.id}", headers=reader)
        refused = http.post(
            "/api/v1/tags", json={"name": "x", "hosts": ["a.example"]}, headers=reader
        )
        assert denied.status_code == refused.status_code == 401
        assert http.get(f"/api/v1/tags/{social.id}", headers=reader).status_code == 200


# --- adding, on the simulated fediverse -------------------------------------------------------


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """A server with the hashtag API and a week of #Caturday, one too old for it, one failing."""
    sim = SimFediverse(seed=9)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    today = sim.now.date()
    social.tag_history(
        "Caturday",
        {today - timedelta(days=n): (100 + n, 40 + n) for n in range(1, 7)} | {today: (9, 4)},
    )
    sim.add_instance("old", version="3.5.0", rate_limit=None)
    sim.add_instance("broken", version="4.3.0", rate_limit=None).faults.append(
        Fault(kind="status", status=503)
    )
    with sim.run_in_thread():
        yield sim


def _url(world: SimFediverse, name: str) -> str:
    return world.instance(name).base_url


def test_adding_reads_a_week_at_once_and_answers_201(
    settings: Settings, world: SimFediverse
) -> None:
    """The first answer's 7 days are stored; Location points to the tag."""
    with api(api_settings(settings), clock=lambda: world.now) as http:
        answer = http.post(
            "/api/v1/tags", json={"name": "#CATURDAY", "hosts": [_url(world, "social")]}
        )
        assert answer.status_code == 201
        body = answer.json()
        history = http.get(f"{answer.headers['location']}/history").json()
    [outcome] = body["outcomes"]
    assert (body["name"], body["added"]) == ("#CATURDAY", 1)
    assert (outcome["status"], outcome["days"], outcome["detail"]) == ("added", 7, None)
    tag = outcome["tag"]
    assert answer.headers["location"] == f"/api/v1/tags/{tag['id']}"
    assert (tag["name"], tag["key"]) == ("Caturday", "caturday")
    yesterday = (world.now - timedelta(days=1)).date().isoformat()
    assert tag["last_complete_day"] == {
        "day": yesterday,
        "uses": 101,
        "accounts": 41,
        "complete": True,
    }
    assert tag["day_in_progress"]["uses"] == 9
    assert [d["uses"] for d in history["days"]] == [106, 105, 104, 103, 102, 101, 9]


def test_adding_twice_is_409_with_the_outcome(settings: Settings, world: SimFediverse) -> None:
    """Already tracked there: 409, the code already_tracked, nothing stored twice."""
    social = _url(world, "social")
    with api(api_settings(settings), clock=lambda: world.now) as http:
        assert (
            http.post("/api/v1/tags", json={"name": "caturday", "hosts": [social]}).status_code
            == 201
        )
        again = http.post("/api/v1/tags", json={"name": "Caturday", "hosts": [social, social]})
        listed = http.get("/api/v1/tags").json()
    assert again.status_code == 409
    body = again.json()
    assert body["code"] == "already_tracked"
    assert "already tracked" in body["detail"]
    assert [o["status"] for o in body["outcomes"]] == ["already"]
    assert len(listed) == 1


@pytest.mark.parametrize(
    ("name", "hosts", "status", "code"),
    [
        ("cat day", ["social"], 422, "invalid_input"),
        ("2026", ["social"], 422, "invalid_input"),
        ("caturday", ["not a host!"], 422, "invalid_handle"),
        ("caturday", ["old"], 502, "endpoint_missing"),
        ("caturday", ["broken"], 502, "unavailable"),
        ("caturday", ["old", "broken"], 502, "endpoint_missing"),
    ],
)
def test_nothing_added_answers_the_worst_reason_with_every_outcome(  # noqa: PLR0917 - pytest parameters
    settings: Settings, world: SimFediverse, name: str, hosts: list[str], status: int, code: str
) -> None:
    """Not a tag or not an address: 422; a server without the API or failing: 502."""
    urls = [_url(world, h) if h in {"social", "old", "broken"} else h for h in hosts]
    with api(api_settings(settings, max_retries=0), clock=lambda: world.now) as http:
        answer = http.post("/api/v1/tags", json={"name": name, "hosts": urls})
        listed = http.get("/api/v1/tags").json()
    assert answer.status_code == status
    body = answer.json()
    assert body["code"] == code
    assert body["detail"]
    assert [o["status"] for o in body["outcomes"]] == ["failed"] * len(hosts)
    assert all(o["code"] and o["detail"] for o in body["outcomes"])
    assert listed == []


def test_added_on_some_instances_is_201_with_the_others_reasons(
    settings: Settings, world: SimFediverse
) -> None:
    """One instance answers, one has no hashtag API: tracked where it can be, 201."""
    hosts = [_url(world, "old"), _url(world, "social")]
    with api(api_settings(settings, max_retries=0), clock=lambda: world.now) as http:
        answer = http.post("/api/v1/tags", json={"name": "Caturday", "hosts": hosts})
        listed = http.get("/api/v1/tags").json()
    assert answer.status_code == 201
    body = answer.json()
    assert body["added"] == 1
    failed, added = body["outcomes"]
    assert (failed["status"], failed["code"], failed["tag"]) == ("failed", "endpoint_missing", None)
    assert "no hashtag API" in failed["detail"]
    assert added["status"] == "added"
    assert answer.headers["location"] == f"/api/v1/tags/{added['tag']['id']}"
    assert [t["host"] for t in listed] == [added["tag"]["host"]]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": "caturday"},
        {"name": "caturday", "hosts": []},
        {"name": "", "hosts": ["a.example"]},
        {"name": "caturday", "hosts": ["a.example"], "extra": 1},
        {"name": "caturday", "hosts": [f"h{n}.example" for n in range(51)]},
        ["caturday"],
    ],
)
def test_a_bad_body_is_422(settings: Settings, body: object) -> None:
    """Missing, empty, too many or unexpected fields are refused before any server is asked."""
    with api(api_settings(settings)) as http:
        answer = http.post("/api/v1/tags", json=body)
    assert answer.status_code == 422
    assert isinstance(answer.json()["detail"], list)


def test_recording_trends_through_the_api(settings: Settings, world: SimFediverse) -> None:
    """POST /trends reads the list once (201); the list shows it; 409 twice; DELETE stops."""
    world.instance("social").trending_tags = ["Caturday"]
    with api(api_settings(settings), clock=lambda: world.now) as http:
        added = http.post("/api/v1/trends", json={"host": _url(world, "social")})
        assert added.status_code == 201, added.text
        body = added.json()
        assert body["host"] == world.instance("social").address.authority
        assert [t["name"] for t in body["latest"]["tags"]] == ["Caturday"]
        assert body["latest"]["tags"][0]["uses"] == 9
        again = http.post("/api/v1/trends", json={"host": _url(world, "social")})
        assert (again.status_code, again.json()["code"]) == (409, "already_tracked")
        broken = http.post("/api/v1/trends", json={"host": _url(world, "broken")})
        assert broken.status_code == 502, broken.text
        assert "503" in broken.json()["detail"]
        listed = http.get("/api/v1/trends").json()
        assert [(r["instance_id"], r["host"]) for r in listed] == [
            (body["instance_id"], body["host"])
        ]
        assert http.delete(f"/api/v1/trends/{body['instance_id']}").status_code == 204
        assert http.delete(f"/api/v1/trends/{body['instance_id']}").status_code == 404
        assert http.get("/api/v1/trends").json() == []
        kept = http.get(f"/api/v1/instances/{body['instance_id']}/trends").json()
        assert (kept["recording"], len(kept["lists"])) == (False, 1)
