"""Report renderers: exact text, Markdown, CSV and JSON for a small fixed report."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest

from fedimeter.domain.report import AccountHistory, Report, build_report
from fedimeter.domain.report_render import (
    CSV_COLUMNS,
    csv_safe,
    escape_markdown,
    render_csv,
    render_json,
    render_markdown,
    render_text,
)
from fedimeter.storage.records import SampleRecord

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=UTC)  # --until 2026-03-31
NOW = datetime(2026, 4, 1, 3, tzinfo=UTC)


def sample(
    taken_at: datetime,
    followers: int,
    following: int,
    statuses: int,
    last_status_at: date | None,
) -> SampleRecord:
    """A stored sample."""
    return SampleRecord(1, taken_at, followers, following, statuses, last_status_at, None)


def day(month: int, day_: int, hour: int = 0) -> datetime:
    """A moment in 2026, UTC."""
    return datetime(2026, month, day_, hour, tzinfo=UTC)


# alice: +300 over 30 days, trend 10/day -> 2,500 in 120 days (30 July).
ALICE = AccountHistory(
    "@alice@example.org",
    [
        sample(day(3, 1), 1000, 89, 5000, date(2026, 2, 27)),
        sample(day(3, 16), 1150, 89, 5006, date(2026, 3, 15)),
        sample(day(3, 31), 1300, 89, 5012, date(2026, 3, 30)),
    ],
    display_name="Alice",
)
# bob: added on 10 March from 0 followers (no percentage), never posted, trend 0.4/day.
BOB = AccountHistory(
    "bob_smith@example.org",
    [sample(day(3, 10), 0, 5, 0, None), sample(day(3, 20), 4, 3, 0, None)],
    display_name="Bob | *the* [builder]",
)
# carol: one old sample, silent for 76 days, a name and handle built to inject formulas.
CAROL = AccountHistory(
    "=carol@evil.example",
    [sample(day(2, 1, 12), 50, 1, 10, date(2026, 1, 15))],
    display_name='=HYPERLINK("x")',
)
DAVE = AccountHistory("dave@example.org", [])


def fixed_report(**options: object) -> Report:
    """The four accounts above, over March, sorted by growth."""
    return build_report(
        [DAVE, CAROL, BOB, ALICE],
        since=SINCE,
        until=UNTIL,
        now=NOW,
        **options,  # type: ignore[arg-type]
    )


def test_text() -> None:
    """Title, one line per account with non-zero deltas, milestones, totals, silent."""
    assert render_text(fixed_report()) == (
        "fedimeter report for 2026-03-01 \u2013 2026-03-31 (generated 2026-04-01 03:00 UTC)\n"
        "\n"
        "@alice@example.org: 1,300 (+300, +30.0%) followers, 89 following, 5,012 (+12) posts\n"
        "  next: 2,500 followers around 2026-07-30\n"
        "@bob_smith@example.org: 4 (+4) followers, 3 (-2) following, 0 posts"
        " (measured from 2026-03-10)\n"
        "  next: 10 followers around 2026-04-16\n"
        "@=carol@evil.example: 50 followers, 1 following, 10 posts\n"
        "@dave@example.org: no data\n"
        "\n"
        "Total: 4 accounts, 1,354 (+304) followers\n"
        "\n"
        "Silent (no post for more than 30 days):\n"
        "  @bob_smith@example.org: never posted\n"
        "  @=carol@evil.example: last post 2026-01-15 (76 days ago)\n"
    )


def test_text_says_when_top_cut_the_list() -> None:
    """With top=1 the total notes how many accounts are shown."""
    text = render_text(fixed_report(top=1, silent_after_days=1000))
    assert text == (
        "fedimeter report for 2026-03-01 \u2013 2026-03-31 (generated 2026-04-01 03:00 UTC)\n"
        "\n"
        "@alice@example.org: 1,300 (+300, +30.0%) followers, 89 following, 5,012 (+12) posts\n"
        "  next: 2,500 followers around 2026-07-30\n"
        "\n"
        "Total: 4 accounts, 1,354 (+304) followers (top 1 shown)\n"
        "\n"
        "Silent (no post for more than 1000 days):\n"
        "  @bob_smith@example.org: never posted\n"
    )


def test_text_of_an_empty_report() -> None:
    """No accounts: the title and a zero total."""
    empty = build_report([], since=SINCE, until=UNTIL, now=NOW)
    assert render_text(empty) == (
        "fedimeter report for 2026-03-01 \u2013 2026-03-31 (generated 2026-04-01 03:00 UTC)\n"
        "\n"
        "Total: 0 accounts, 0 followers\n"
    )


def test_text_shows_falls_with_a_minus_and_big_numbers_with_separators() -> None:
    """A fall of 12,345 reads ``-12,345`` and ``-1.0%``; one account is singular."""
    history = AccountHistory(
        "big@example.org",
        [
            sample(day(2, 1), 1_234_567, 0, 0, date(2026, 3, 31)),
            sample(day(3, 31), 1_222_222, 0, 0, date(2026, 3, 31)),
        ],
    )
    text = render_text(build_report([history], since=SINCE, until=UNTIL, now=NOW))
    assert "@big@example.org: 1,222,222 (-12,345, -1.0%) followers, 0 following, 0 posts\n" in text
    assert "Total: 1 account, 1,222,222 (-12,345) followers\n" in text


def test_text_writes_one_of_a_thing_in_the_singular() -> None:
    """1 follower, 1 post, (+1) follower: never ``1 followers``."""
    history = AccountHistory(
        "one@example.org",
        [sample(day(3, 1), 0, 1, 0, None), sample(day(3, 31), 1, 1, 1, date(2026, 3, 31))],
    )
    text = render_text(build_report([history], since=SINCE, until=UNTIL, now=NOW))
    assert "@one@example.org: 1 (+1) follower, 1 following, 1 (+1) post\n" in text
    assert "Total: 1 account, 1 (+1) follower\n" in text


def test_markdown() -> None:
    """A table with escaped names, empty cells for unknowns, then the silent list."""
    assert render_markdown(fixed_report()) == (
        "# fedimeter report for 2026-03-01 \u2013 2026-03-31\n"
        "\n"
        "Generated 2026-04-01 03:00 UTC. 4 accounts, 1,354 (+304) followers.\n"
        "\n"
        "| Account | Followers | Change | % | Per day | Following | Posts | Next |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n"
        "| Alice (@alice@example.org) | 1,300 | +300 | +30.0% | +10.0 | 89 | 5,012"
        " | 2,500 (~2026-07-30) |\n"
        "| Bob \\| \\*the\\* \\[builder\\] (@bob\\_smith@example.org) (from 2026-03-10)"
        " | 4 | +4 |  | +0.4 | 3 | 0 | 10 (~2026-04-16) |\n"
        '| =HYPERLINK("x") (@=carol@evil.example) | 50 | 0 | 0.0% |  | 1 | 10 | 100 |\n'
        "| @dave@example.org | no data |  |  |  |  |  |  |\n"
        "\n"
        "## Silent accounts\n"
        "\n"
        "No post for more than 30 days:\n"
        "\n"
        "- @bob\\_smith@example.org: never posted\n"
        "- @=carol@evil.example: last post 2026-01-15 (76 days ago)\n"
    )


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("plain name", "plain name"),
        ("a|b", "a\\|b"),
        ("*bold* _it_ `code`", "\\*bold\\* \\_it\\_ \\`code\\`"),
        ("[link](http://x)", "\\[link\\](http://x)"),
        ("<script>&amp;", "\\<script\\>\\&amp;"),
        ("~~gone~~ $x$ back\\slash", "\\~\\~gone\\~\\~ \\$x\\$ back\\\\slash"),
        ("two\nlines\r\nthree", "two lines three"),
    ],
)
def test_markdown_escaping(text: str, escaped: str) -> None:
    """Inline specials get a backslash; line breaks become spaces."""
    assert escape_markdown(text) == escaped


def test_markdown_rows_survive_hostile_names() -> None:
    """A name with pipes and newlines still gives one row of eight cells."""
    history = AccountHistory("x@y.org", [sample(day(3, 2), 1, 1, 1, None)], "a|b\n| c |")
    markdown = render_markdown(build_report([history], since=SINCE, until=UNTIL, now=NOW))
    row = next(line for line in markdown.splitlines() if line.startswith("| a"))
    assert row.replace("\\|", "").count("|") == 9


CSV_EXPECTED = (
    ",".join(CSV_COLUMNS) + "\n"
    "alice@example.org,Alice,2026-03-31T00:00:00Z,2026-03-01T00:00:00Z,false,"
    "1300,300,30.0,10.0,89,0,0.0,0.0,5012,12,0.24,0.4,10.0,2500,2026-07-30T00:00:00Z,"
    "2026-03-30,2,false\n"
    "bob_smith@example.org,Bob | *the* [builder],2026-03-20T00:00:00Z,2026-03-10T00:00:00Z,"
    "true,4,4,,0.4,3,-2,-40.0,-0.2,0,0,,0.0,0.4,10,2026-04-16T00:00:00Z,,,true\n"
    '\'=carol@evil.example,"\'=HYPERLINK(""x"")",2026-02-01T12:00:00Z,2026-02-01T12:00:00Z,'
    "false,50,0,0.0,,1,0,0.0,,10,0,0.0,,,100,,2026-01-15,76,true\n"
    "dave@example.org,,,,false,,,,,,,,,,,,,,,,,,false\n"
)


def test_csv() -> None:
    """A header, then one row per account: plain numbers, ISO times, empty for unknown."""
    assert render_csv(fixed_report()) == CSV_EXPECTED


def test_csv_rows_have_one_cell_per_column() -> None:
    """Every row parses back with as many cells as the header."""
    rows = list(csv.reader(io.StringIO(render_csv(fixed_report()))))
    assert rows[0] == list(CSV_COLUMNS)
    assert {len(row) for row in rows} == {len(CSV_COLUMNS)}
    assert len(rows) == 5


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("alice@example.org", "alice@example.org"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_csv_formula_injection(text: str, safe: str) -> None:
    """Cells a spreadsheet would evaluate start with a quote; others are unchanged."""
    assert csv_safe(text) == safe


def test_json() -> None:
    """Numbers stay numbers, times are ISO with Z, unknowns are null."""
    data = render_json(fixed_report())
    assert {k: v for k, v in data.items() if k != "accounts"} == {
        "since": "2026-03-01T00:00:00Z",
        "until": "2026-03-31T23:59:59.999999Z",
        "generated_at": "2026-04-01T03:00:00Z",
        "sort": "growth",
        "silent_after_days": 30,
        "totals": {
            "accounts": 4,
            "accounts_with_data": 3,
            "followers": 1354,
            "followers_change": 304,
        },
        "silent": ["bob_smith@example.org", "=carol@evil.example"],
        "instances": [],
        "tags": [],
        "engagement": [],
    }
    assert isinstance(data["accounts"], list)
    alice, bob, _, dave = data["accounts"]
    assert alice == {
        "handle": "alice@example.org",
        "display_name": "Alice",
        "has_data": True,
        "measured_at": "2026-03-31T00:00:00Z",
        "base_at": "2026-03-01T00:00:00Z",
        "partial": False,
        "followers": {
            "start": 1000,
            "current": 1300,
            "change": 300,
            "percent": 30.0,
            "per_day": 10.0,
        },
        "following": {"start": 89, "current": 89, "change": 0, "percent": 0.0, "per_day": 0.0},
        "statuses": {"start": 5000, "current": 5012, "change": 12, "percent": 0.24, "per_day": 0.4},
        "trend_per_day": 10.0,
        "next_milestone": {"followers": 2500, "eta": "2026-07-30T00:00:00Z"},
        "last_status_at": "2026-03-30",
        "days_since_post": 2,
        "silent": False,
    }
    assert isinstance(bob, dict)
    assert bob["followers"] == {
        "start": 0,
        "current": 4,
        "change": 4,
        "percent": None,
        "per_day": 0.4,
    }
    assert (bob["partial"], bob["last_status_at"], bob["silent"]) == (True, None, True)
    assert isinstance(dave, dict)
    assert dave["has_data"] is False
    assert dave["followers"] is None
    assert dave["next_milestone"] is None


def test_json_round_trips_through_json_dumps() -> None:
    """``json.dumps`` accepts the dict and ``json.loads`` gives it back unchanged."""
    data = render_json(fixed_report())
    assert json.loads(json.dumps(data, allow_nan=False)) == data
