"""Hashtags, the pure parts: names as people type them, and what servers answer."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from fedimeter.cli import app
from fedimeter.config import normalise_database_url
from fedimeter.domain.models import InstanceAddress
from fedimeter.domain.tags import (
    InvalidTag,
    TagDay,
    TagName,
    TagReading,
    TrendingTag,
    parse_tag_name,
    tag_key,
)
from fedimeter.errors import BadResponse
from fedimeter.fediverse.parse import parse_tag, parse_trending_tags
from fedimeter.storage.database import Database
from fedimeter.storage.tags import TagStore

# Real response bodies from the Mastodon documentation (see fixtures/mastodon/SOURCES.md).
EXAMPLES = Path(__file__).parent / "fixtures" / "mastodon"
DAY = 86_400
# 2026-03-01 00:00 UTC
MIDNIGHT = 1_772_323_200


def _history(*days: tuple[int, int, int]) -> list[dict[str, str]]:
    """Mastodon's history entries (strings), newest first, from (day offset, uses, accounts)."""
    return [
        {"day": str(MIDNIGHT + offset * DAY), "uses": str(uses), "accounts": str(accounts)}
        for offset, uses, accounts in sorted(days, reverse=True)
    ]


@pytest.mark.parametrize(
    ("typed", "name", "key"),
    [
        ("#Caturday", "Caturday", "caturday"),
        ("caturday", "caturday", "caturday"),
        ("  #FediTips ", "FediTips", "feditips"),
        ("#Café", "Café", "cafe"),
        ("#Straße", "Straße", "strasse"),
        ("\uff03\uff23\uff21\uff26\uff25", "\uff23\uff21\uff26\uff25", "cafe"),
        ("#日本語", "日本語", "日本語"),
        ("#a·b", "a·b", "a·b"),
        ("#_under_score", "_under_score", "_under_score"),
        ("#2024election", "2024election", "2024election"),
    ],
)
def test_names_as_typed_and_their_keys(typed: str, name: str, key: str) -> None:
    """``#`` (or its full-width form) is dropped; keys fold case, width and Latin accents."""
    tag = parse_tag_name(typed)
    assert (tag.name, tag.key) == (name, key)
    assert str(tag) == f"#{name}"


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("", "empty"),
        ("#", "empty"),
        ("#2024", "needs a letter"),
        ("#hello world", "a space cannot be part of one"),
        ("#foo-bar", "'-' cannot be part of one"),
        ("#·dot", "cannot begin or end"),
        ("#dot·", "cannot begin or end"),
        ("#a\u0000b", "U+0000 cannot be part of one"),
        ("#" + "a" * 201, "longer than 200"),
    ],
)
def test_what_is_not_a_hashtag(typed: str, why: str) -> None:
    """Everything Mastodon would not take as a hashtag gets one line that says why."""
    with pytest.raises(InvalidTag, match=re.escape(why)) as caught:
        parse_tag_name(typed)
    assert "\n" not in str(caught.value)


@given(st.text(max_size=60))
def test_parsing_never_crashes_and_is_idempotent(text: str) -> None:
    """Any text is a tag or an InvalidTag; a tag parsed again from ``#name`` is the same tag."""
    try:
        tag = parse_tag_name(text)
    except InvalidTag:
        return
    again = parse_tag_name(str(tag))
    assert again == tag
    assert tag_key(tag.key) == tag.key


def test_the_documented_answer() -> None:
    """The real answer of ``/api/v1/tags/caturday``: 7 days oldest first, the newest going on."""
    data = json.loads((EXAMPLES / "tag_get_caturday.json").read_text())
    tag = parse_tag(data, host="mastodon.example")
    assert tag.name == "Caturday"
    assert tag.url == "http://mastodon.example/tags/caturday"
    assert [d.day for d in tag.days] == [date(2022, 11, day) for day in range(10, 17)]
    assert [d.complete for d in tag.days] == [True] * 6 + [False]
    assert tag.days[3] == TagDay(date(2022, 11, 13), 1, 1, complete=True)


def test_numbers_as_numbers_are_taken_and_a_tag_without_history_has_no_days() -> None:
    """Whole numbers where strings belong are fine; ``history`` missing or null is no days."""
    data = {
        "name": "x",
        "history": [{"day": MIDNIGHT, "uses": 3, "accounts": 2}],
    }
    assert parse_tag(data, host="h").days == (TagDay(date(2026, 3, 1), 3, 2, complete=False),)
    assert parse_tag({"name": "x"}, host="h").days == ()
    assert parse_tag({"name": "x", "history": None}, host="h").days == ()


def _one(uses: object) -> dict[str, object]:
    """A tag whose one day has ``uses`` as given and one account."""
    return {"name": "x", "history": [{"day": str(MIDNIGHT), "uses": uses, "accounts": "1"}]}


@pytest.mark.parametrize(
    ("data", "why"),
    [
        ([], "not a tag"),
        ({"history": []}, "name is None"),
        ({"name": "", "history": []}, "name is ''"),
        ({"name": "x", "history": {}}, "not a list"),
        ({"name": "x", "history": ["1"]}, "that is a string"),
        ({"name": "x", "history": [{"day": "1", "uses": "1", "accounts": "1"}]}, "UTC midnight"),
        (
            _one("-1"),
            "not a whole number",
        ),
        (
            _one("1.5"),
            "not a whole number",
        ),
        (
            _one(True),
            "not a whole number",
        ),
        ({"name": "x", "history": [{"day": str(MIDNIGHT), "accounts": "1"}]}, "uses = None"),
        (
            {
                "name": "x",
                "history": [{"day": str(MIDNIGHT), "uses": str(10**13), "accounts": "1"}],
            },
            "not counts",
        ),
        (
            _one(str(2**63)),
            "not a whole number",
        ),
        ({"name": "x", "history": _history((0, 1, 1), (0, 2, 2))}, "twice"),
        ({"name": "x", "history": _history(*((i, 1, 1) for i in range(32)))}, "32 days"),
        ({"name": "x", "history": [{"day": "9" * 19, "uses": "1", "accounts": "1"}]}, "not a"),
    ],
)
def test_answers_that_are_refused(data: object, why: str) -> None:
    """Malformed, negative, huge or duplicated values are refused, never stored as truth."""
    with pytest.raises(BadResponse, match=why):
        parse_tag(data, host="h")


def test_trending_tags_in_order_with_their_newest_day() -> None:
    """Ranks follow the answer's order; a trending tag without history is left out."""
    data = [
        {"name": "Alpha", "history": _history((0, 40, 30), (-1, 10, 9))},
        {"name": "Beta", "history": []},
        {"name": "Gamma", "history": _history((0, 7, 5))},
    ]
    trending = parse_trending_tags(data, host="h")
    assert [(t.rank, t.name, t.uses, t.accounts) for t in trending] == [
        (1, "Alpha", 40, 30),
        (3, "Gamma", 7, 5),
    ]
    assert trending[0].day == date(2026, 3, 1)
    assert parse_trending_tags([], host="h") == ()
    with pytest.raises(BadResponse, match="not a list"):
        parse_trending_tags({"tags": []}, host="h")


# -- the CLI, on a database seeded directly ----------------------------------------------------

# 2026-12-07 03:00 UTC: a round's time.
ROUND = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """CLI settings on an SQLite file; its database URL, for seeding."""
    path = tmp_path / "cli.sqlite3"
    for name, value in {
        "FEDIMETER_DATABASE_URL": f"sqlite:///{path}",
        # Tables as wide as their rows, whatever terminal the test runner has.
        "COLUMNS": "200",
    }.items():
        monkeypatch.setenv(name, value)
    return normalise_database_url(f"sqlite:///{path}")


def seed(url: str, fill: Callable[[TagStore], Awaitable[None]]) -> None:
    """Run ``fill`` on the tag store of the database at ``url``."""

    async def go() -> None:
        db = await Database.open(url)
        try:
            await fill(TagStore(db))
        finally:
            await db.close()

    asyncio.run(go())


def invoke(*args: str) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args))


def test_trends_turned_off_later_do_not_show_the_last_list_as_current(cli_db: str) -> None:
    """A server that trended on Monday and answers [] from Tuesday: said, with its last list.

    An empty answer stores no list; the instance keeps when it was read (migration 0009).
    """
    later = ROUND + timedelta(days=1)

    async def fill(store: TagStore) -> None:
        quiet, _ = await store.track_trends(InstanceAddress("quiet.example"), ROUND)
        await store.store_trends(quiet, ROUND, [TrendingTag(1, "Caturday", ROUND.date(), 12, 5)])
        await store.store_trends(quiet, later, [])

    seed(cli_db, fill)
    shown = invoke("tag", "trends", "show")
    assert shown.exit_code == 0, shown.output
    assert (
        "Trending on quiet.example: the server answered an empty list at 2026-12-08 03:00 UTC"
        " (trends turned off there, or nothing trending); its last list, of 2026-12-07 03:00"
        " UTC:"
    ) in shown.stdout
    assert "Last list on quiet.example, 2026-12-07 03:00 UTC" in shown.stdout
    assert "#Caturday" in shown.stdout
    (quiet,) = json.loads(invoke("tag", "trends", "show", "--json").stdout)
    assert (quiet["checked_at"], quiet["taken_at"]) == (
        "2026-12-08T03:00:00Z",
        "2026-12-07T03:00:00Z",
    )


def test_trends_show_says_an_empty_answer_and_draws_no_empty_table(cli_db: str) -> None:
    """Trends turned off: one line saying the server answered [] and when, no table.

    ``--json`` gives every time in ISO 8601 UTC with a Z.
    """

    async def fill(store: TagStore) -> None:
        quiet, _ = await store.track_trends(InstanceAddress("quiet.example"), ROUND)
        loud, _ = await store.track_trends(InstanceAddress("loud.example"), ROUND)
        await store.store_trends(quiet, ROUND, [])
        await store.store_trends(loud, ROUND, [TrendingTag(1, "Caturday", ROUND.date(), 12, 5)])

    seed(cli_db, fill)
    shown = invoke("tag", "trends", "show")
    assert shown.exit_code == 0, shown.output
    assert "nothing recorded yet" not in shown.stdout
    assert (
        "Trending on quiet.example: the server answered an empty list at 2026-12-07 03:00 UTC"
        " (trends turned off there, or nothing trending)\n"
    ) in shown.stdout
    assert "Trending on loud.example, 2026-12-07 03:00 UTC" in shown.stdout
    # One table: loud's; quiet has none.
    assert shown.stdout.count("uses today") == 1
    loud, quiet = json.loads(invoke("tag", "trends", "show", "--json").stdout)
    assert (loud["host"], loud["taken_at"], loud["recording_since"]) == (
        "loud.example",
        "2026-12-07T03:00:00Z",
        "2026-12-07T03:00:00Z",
    )
    assert (quiet["taken_at"], quiet["recording_since"], quiet["tags"]) == (
        None,
        "2026-12-07T03:00:00Z",
        [],
    )


def _days(*offsets: int, today: date) -> tuple[TagDay, ...]:
    """Complete days ``today - offset`` (uses 10 + offset), and today so far (uses 3)."""
    done = [TagDay(today - timedelta(days=n), 10 + n, 2, complete=True) for n in offsets]
    return (*sorted(done, key=lambda d: d.day), TagDay(today, 3, 1, complete=False))


def test_tag_list_json_has_the_week_and_the_state_the_table_shows(cli_db: str) -> None:
    """The 7-day total (and how many days it adds up) and ok/failing, as the table has them."""
    today = datetime.now(UTC).date()

    async def fill(store: TagStore) -> None:
        good = await store.track(
            InstanceAddress("one.example"), TagName("Caturday", "caturday"), ROUND
        )
        bad = await store.track(InstanceAddress("two.example"), TagName("Gone", "gone"), ROUND)
        # Days 1, 2 and 5 before today: three of the week's seven.
        await store.store(good.id, TagReading("Caturday", None, _days(1, 2, 5, today=today)), ROUND)
        await store.record_failure(bad.id, "unreachable", "two.example did not answer", ROUND)

    seed(cli_db, fill)
    good, bad = json.loads(invoke("tag", "list", "--json").stdout)
    assert good["week"] == {"uses": 11 + 12 + 15, "days": 3}
    assert good["state"] == "ok"
    assert good["added_at"] == "2026-12-07T03:00:00Z"
    assert (bad["week"], bad["state"], bad["consecutive_failures"]) == (None, "failing", 1)
    table = invoke("tag", "list").stdout
    assert f"{11 + 12 + 15:,}" in table
    assert "failing (1x): two.example did not answer" in table


def test_tag_history_names_its_note_column_and_shows_days_never_read(cli_db: str) -> None:
    """Days between stored ones that no answer covered are rows "not recorded", never absent."""
    today = datetime.now(UTC).date()

    async def fill(store: TagStore) -> None:
        tag = await store.track(
            InstanceAddress("one.example"), TagName("Caturday", "caturday"), ROUND
        )
        # Days 5 and 2 before today, and today so far: days 4 and 3, and 1, were never read.
        await store.store(tag.id, TagReading("Caturday", None, _days(5, 2, today=today)), ROUND)

    seed(cli_db, fill)
    shown = invoke("tag", "history", "caturday")
    assert shown.exit_code == 0, shown.output
    cells = [
        [cell.strip() for cell in re.split("[│┃]", line)[1:-1]]
        for line in shown.stdout.splitlines()
        if line.startswith(("│", "┃"))
    ]
    assert cells[0] == ["day", "uses", "accounts", "note"]
    assert cells[1:] == [
        [(today - timedelta(days=5)).isoformat(), "15", "2", ""],
        [(today - timedelta(days=4)).isoformat(), "—", "—", "not recorded"],
        [(today - timedelta(days=3)).isoformat(), "—", "—", "not recorded"],
        [(today - timedelta(days=2)).isoformat(), "12", "2", ""],
        [(today - timedelta(days=1)).isoformat(), "—", "—", "not recorded"],
        [today.isoformat(), "3", "1", "so far"],
    ]
    [found] = json.loads(invoke("tag", "history", "caturday", "--json").stdout)
    assert len(found["days"]) == 3
    assert found["not_recorded"] == [(today - timedelta(days=n)).isoformat() for n in (4, 3, 1)]


def test_tag_list_reads_at_80_columns_and_cuts_nothing(
    cli_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At 80 columns: no line wider, no "…", the tag, its instance and its day whole."""
    today = datetime.now(UTC).date()

    async def fill(store: TagStore) -> None:
        tag = await store.track(
            InstanceAddress("mastodon.example.social"), TagName("Caturday", "caturday"), ROUND
        )
        await store.store(tag.id, TagReading("Caturday", None, _days(1, 2, today=today)), ROUND)
        bad = await store.track(InstanceAddress("127.0.0.1"), TagName("Gone", "gone"), ROUND)
        await store.record_failure(bad.id, "unreachable", "127.0.0.1 did not answer", ROUND)

    seed(cli_db, fill)
    wide = invoke("tag", "list").stdout
    assert "read (UTC)" in wide
    monkeypatch.setenv("COLUMNS", "80")
    listed = invoke("tag", "list")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in listed.stdout
    for whole in ("#Caturday", "mastodon.example.social", "127.0.0.1", "failing (1x)"):
        assert whole in listed.stdout
    assert (today - timedelta(days=1)).isoformat() in listed.stdout
    assert "read 2026-12-07 03:00 UTC" in listed.stdout
