"""The HTML report: content, structure, self-containment, escaping, sparklines, CLI and API."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apihelpers import api, api_settings
from fedimeter.cli import app
from fedimeter.config import Settings
from fedimeter.domain.report import AccountHistory, Report, build_report
from fedimeter.domain.report_html import (
    SPARKLINE_HEIGHT,
    SPARKLINE_WIDTH,
    render_html,
    sparkline_points,
)
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.records import SampleRecord

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 4, 1, tzinfo=UTC)
NOW = datetime(2026, 4, 1, 3, tzinfo=UTC)
#: The sparkline keeps 3 px free at each edge: x runs 3..117, y runs 3 (top) ..25 (bottom).
TOP, MIDDLE, BOTTOM = 3.0, 14.0, 25.0

HOSTILE = "<script>alert(\"x\")</script> & 'Bobby' </td></tr></table>"

# Each line's samples are exact, so every number below is worked out by hand in its comment.


def at(month: int, day: int) -> datetime:
    """Midnight UTC of a day in 2026."""
    return datetime(2026, month, day, tzinfo=UTC)


def sample(
    taken_at: datetime,
    followers: int,
    following: int,
    statuses: int,
    last_status_at: date | None = date(2026, 3, 31),
) -> SampleRecord:
    """A stored sample."""
    return SampleRecord(1, taken_at, followers, following, statuses, last_status_at, None)


# alice: base 28 Feb (1,200; the 20 Feb sample is older and not charted), a gap from 10 to
# 31 March. +310 (+25.8%) over 31 days: +10.0 a day. Trend over 2, 10, 31 March: exactly 10 a
# day, so 2,500 is 99 days after 1 April: 9 July. Posts 500 -> 520: +20 (+4.0%).
ALICE = AccountHistory(
    "alice@example.org",
    [
        sample(at(2, 20), 900, 80, 490),
        sample(at(2, 28), 1200, 80, 500),
        sample(at(3, 2), 1220, 80, 505),
        sample(at(3, 10), 1300, 80, 510),
        sample(at(3, 31), 1510, 80, 520),
    ],
    display_name="Alice",
)
# bob: first measured on 11 March (partial), 40 -> 45: +5 (+12.5%) over 10 days, +0.5 a day;
# the trend's 0.5 a day reaches 50 ten days after 1 April. Never posted: silent.
BOB = AccountHistory(
    "@bob@example.org",
    [sample(at(3, 11), 40, 10, 7, None), sample(at(3, 21), 45, 12, 7, None)],
)
# carol: one sample, before the period: no change, no pace, a dot. Last post 71 days ago.
CAROL = AccountHistory("carol@example.org", [sample(at(2, 10), 30, 4, 3, date(2026, 1, 20))])
# dave: never measured.
DAVE = AccountHistory("dave@example.org", [])
# erin: falling from 2,000 at since to 1,940 at until: -60 (-3.0%), -1.9 a day; no milestone date.
ERIN = AccountHistory(
    "erin@example.org",
    [
        sample(at(3, 1), 2000, 100, 900),
        sample(at(3, 16), 1970, 100, 915),
        sample(at(4, 1), 1940, 100, 930),
    ],
    display_name="Erin",
)


def fixture_report(*histories: AccountHistory, **options: object) -> Report:
    """A report over March 2026 (since 1 March, until 1 April), generated 1 April 03:00."""
    chosen = histories or (DAVE, CAROL, ERIN, BOB, ALICE)
    return build_report(chosen, since=SINCE, until=UNTIL, now=NOW, **options)  # type: ignore[arg-type]


# --- reading the document back ---------------------------------------------------------------

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
#: Where a person sees a break: block elements, and the spans the page's CSS shows as blocks.
BLOCK_TAGS = frozenset({"h1", "h2", "p", "li", "tr", "th", "td", "title", "svg", "section"})
BLOCK_CLASSES = frozenset({"name", "handle", "sub", "delta", "tag"})


@dataclass
class Element:
    """An element as parsed: its tag, attributes (names in lower case), text and children."""

    tag: str
    attrs: dict[str, str]
    raw: list[str] = field(default_factory=list)
    children: list[Element] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The text inside as it reads: whitespace collapsed, a space between blocks."""
        return " ".join("".join(self.raw).split())

    @property
    def is_block(self) -> bool:
        """Whether the page shows this element on its own line or in its own cell."""
        classes = set(self.attrs.get("class", "").split())
        return self.tag in BLOCK_TAGS or not classes.isdisjoint(BLOCK_CLASSES)

    def find_all(self, tag: str, cls: str | None = None) -> list[Element]:
        """Descendants with ``tag`` (and the class ``cls``), in document order."""
        found = []
        for child in self.children:
            if child.tag == tag and (cls is None or cls in child.attrs.get("class", "").split()):
                found.append(child)
            found += child.find_all(tag, cls)
        return found


class Reader(HTMLParser):
    """Builds a tree and records every nesting error.

    An error is an end tag that does not close the innermost open element, an end tag for a
    void element, or self-closing syntax; ``open`` shows what was never closed.
    """

    def __init__(self) -> None:
        """An empty document."""
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.open: list[Element] = [self.root]
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Open an element (a void one closes at once)."""
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.open[-1].children.append(element)
        if tag not in VOID:
            self._break(element)
            self.open.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:  # noqa: ARG002 - the parser's signature
        """``<x/>``: the renderer writes end tags, so this is an error."""
        self.errors.append(f"<{tag}/>: self-closing syntax")

    def handle_endtag(self, tag: str) -> None:
        """Close the innermost element, which must be ``tag``."""
        if tag in VOID:
            self.errors.append(f"</{tag}> closes a void element")
        elif self.open[-1].tag != tag:
            self.errors.append(f"</{tag}> while <{self.open[-1].tag}> is open")
        else:
            self._break(self.open.pop())

    def handle_data(self, data: str) -> None:
        """Add text to every open element."""
        for element in self.open:
            element.raw.append(data)

    def _break(self, element: Element) -> None:
        """A space in the text around a block element, as a reader sees one.

        Inside a paragraph nothing is a block (the total's change runs on in the sentence).
        """
        if element.is_block and all(e.tag != "p" for e in self.open if e is not element):
            self.handle_data(" ")


def parse(document: str) -> Element:
    """The document's tree; fails the test if any element is not closed in order."""
    reader = Reader()
    reader.feed(document)
    reader.close()
    assert reader.errors == []
    assert [e.tag for e in reader.open] == ["#document"], "elements left open"
    return reader.root


def rows(document: str) -> list[list[str]]:
    """Every body row of the accounts' table as the text of its cells."""
    (tbody,) = parse(document).find_all("tbody")
    return [[cell.text for cell in tr.children] for tr in tbody.find_all("tr")]


def polylines(document: str) -> list[list[tuple[float, float]]]:
    """The points of every sparkline's polyline, in row order."""
    return [
        [(float(x), float(y)) for x, y in (p.split(",") for p in line.attrs["points"].split())]
        for line in parse(document).find_all("polyline")
    ]


# --- content ---------------------------------------------------------------------------------


def test_the_head_makes_a_standalone_page() -> None:
    """Doctype, UTF-8, viewport, the period in the title, one inline style, a final newline."""
    page = render_html(fixture_report())
    assert page.startswith('<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">')
    assert page.endswith("</html>\n")
    head = parse(page).find_all("head")[0]
    metas = {m.attrs.get("name"): m.attrs.get("content") for m in head.find_all("meta")}
    assert metas["viewport"] == "width=device-width, initial-scale=1"
    assert [t.text for t in head.find_all("title")] == [
        "fedimeter report for 2026-03-01 \u2013 2026-04-01"
    ]
    assert len(head.find_all("style")) == 1


def test_title_and_generation_time_open_the_page() -> None:
    """The heading names the period, the next line when it was generated."""
    body = parse(render_html(fixture_report())).find_all("main")[0]
    assert body.children[0].tag == "h1"
    assert body.children[0].text == "fedimeter report for 2026-03-01 \u2013 2026-04-01"
    assert body.children[1].text == "Generated 2026-04-01 03:00 UTC"


def test_every_account_row_by_hand() -> None:
    """Growth order; counts, moves, pace, milestone, date; partial; one sample; no data."""
    assert rows(render_html(fixture_report())) == [
        [
            "Alice @alice@example.org",
            "1,510 \u25b2 +310 (+25.8%)",
            "followers from 1,200 to 1,510 +10.0 a day",
            "80",
            "520 \u25b2 +20 (+4.0%)",
            "2,500 around 2026-07-09",
            "2026-03-31",
        ],
        [
            "@bob@example.org partial, from 2026-03-11",
            "45 \u25b2 +5 (+12.5%)",
            "followers from 40 to 45 +0.5 a day",
            "12 \u25b2 +2 (+20.0%)",
            "7",
            "50 around 2026-04-11",
            "2026-03-21",
        ],
        ["@carol@example.org", "30", "followers: 30", "4", "3", "50", "2026-02-10"],
        [
            "Erin @erin@example.org",
            "1,940 \u25bc -60 (-3.0%)",
            "followers from 2,000 to 1,940 -1.9 a day",
            "100",
            "930 \u25b2 +30 (+3.3%)",
            "2,500",
            "2026-04-01",
        ],
        ["@dave@example.org", "no data"],
    ]


def test_the_header_has_a_column_for_every_cell() -> None:
    """Seven headings; an account row has seven cells, a no-data row spans the last six."""
    root = parse(render_html(fixture_report()))
    (thead,) = root.find_all("thead")
    assert [th.text for th in thead.find_all("th")] == [
        "Account",
        "Followers",
        "Over the period",
        "Following",
        "Posts",
        "Next milestone",
        "Measured",
    ]
    (nodata,) = root.find_all("td", "nodata")
    assert nodata.attrs["colspan"] == "6"


def test_totals_and_the_silent_list() -> None:
    """Totals cover every account; never posted comes first among the silent."""
    root = parse(render_html(fixture_report()))
    (total,) = root.find_all("p", "total")
    # 1,510 + 45 + 30 + 1,940 followers; +310 + 5 + 0 - 60.
    assert total.text == "Total: 5 accounts, 3,525 followers \u25b2 +255."
    (silent,) = root.find_all("section", "silent")
    assert silent.find_all("p")[0].text == "No post for more than 30 days:"
    assert [li.text for li in silent.find_all("li")] == [
        "@bob@example.org: never posted",
        "@carol@example.org: last post 2026-01-20 (71 days ago)",
    ]


def test_top_is_noted_and_totals_still_cover_all() -> None:
    """With top=1 one row is shown and the total says so."""
    page = render_html(fixture_report(top=1))
    assert [row[0] for row in rows(page)] == ["Alice @alice@example.org"]
    (total,) = parse(page).find_all("p", "total")
    assert total.text == "Total: 5 accounts, 3,525 followers \u25b2 +255 (top 1 shown)."


def test_an_empty_report_has_no_table() -> None:
    """No accounts: title, a zero total, no table, no silent section."""
    root = parse(render_html(build_report([], since=SINCE, until=UNTIL, now=NOW)))
    assert root.find_all("table") == []
    assert root.find_all("section") == []
    assert [p.text for p in root.find_all("p", "total")] == ["Total: 0 accounts, 0 followers."]


def test_deltas_are_hidden_when_a_count_did_not_move() -> None:
    """Unchanged counts have no change, no percent, no arrow; a zero total has none either."""
    root = parse(render_html(fixture_report(CAROL, DAVE)))
    assert root.find_all("span", "delta") == []
    page = render_html(fixture_report(CAROL, DAVE))
    assert "\u25b2" not in page
    assert "\u25bc" not in page
    assert "%" not in page.split("</style>")[1]


def test_a_move_is_told_by_sign_and_arrow_not_only_colour() -> None:
    """Up: class up, ▲ and +; down: class down, ▼ and -; the arrow is hidden from readers."""
    root = parse(render_html(fixture_report(ERIN)))
    up, down = root.find_all("span", "up"), root.find_all("span", "down")
    assert [d.text for d in up] == ["\u25b2 +30 (+3.3%)"]
    assert [d.text for d in down] == ["\u25bc -60", "\u25bc -60 (-3.0%)"]  # total, then row
    arrows = [a for d in up + down for a in d.children]
    assert {a.attrs.get("aria-hidden") for a in arrows} == {"true"}


def test_a_zero_base_shows_the_change_without_percent() -> None:
    """From 0 followers there is no percentage to show, only the change."""
    start = AccountHistory(
        "new@example.org", [sample(at(2, 1), 0, 0, 0), sample(at(3, 5), 7, 0, 0)]
    )
    assert rows(render_html(fixture_report(start)))[0][1] == "7 \u25b2 +7"


# --- self-contained and safe ----------------------------------------------------------------


@pytest.mark.parametrize(
    "report",
    [fixture_report(), build_report([], since=SINCE, until=UNTIL, now=NOW)],
    ids=["accounts", "empty"],
)
def test_nothing_is_loaded_from_anywhere(report: Report) -> None:
    """No URL, protocol-relative reference, script, import, url() or linking attribute."""
    page = render_html(report)
    for needle in ("http:", "https:", "//", "<script", "@import", "url(", "<link", "<img"):
        assert needle not in page.lower()
    attributes = {name for e in _walk(parse(page)) for name in e.attrs}
    assert attributes.isdisjoint({"src", "href", "srcset", "action", "xlink:href", "style"})


def test_the_page_forbids_loading_anything() -> None:
    """A Content-Security-Policy meta allows inline style and nothing else."""
    head = parse(render_html(fixture_report())).find_all("head")[0]
    (policy,) = [m for m in head.find_all("meta") if "http-equiv" in m.attrs]
    assert policy.attrs["http-equiv"] == "Content-Security-Policy"
    assert policy.attrs["content"].startswith("default-src 'none'; style-src 'unsafe-inline';")


def _walk(element: Element) -> Iterator[Element]:
    """``element`` and all its descendants."""
    yield element
    for child in element.children:
        yield from _walk(child)


def test_hostile_display_names_and_handles_are_text() -> None:
    """Tags, quotes and ampersands in names come back as the same text, never as markup."""
    history = AccountHistory(
        "x<b>y@evil.example", [sample(at(2, 1), 5, 0, 0, None)], display_name=HOSTILE
    )
    page = render_html(fixture_report(history))
    assert "<script" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#x27;Bobby&#x27;" in page
    root = parse(page)
    (name,) = root.find_all("bdi", "name")
    assert name.text == " ".join(HOSTILE.split())
    assert root.find_all("b") == []
    assert [li.text for li in root.find_all("li")] == [
        f"{' '.join(HOSTILE.split())} (@x<b>y@evil.example): never posted"
    ]
    assert len(root.find_all("tr")) == 2  # the header and one account: no row was closed early


def test_names_are_isolated_from_their_neighbours() -> None:
    """A right-to-left override in a name stays inside its own bdi element."""
    history = AccountHistory(
        "r@example.org", [sample(at(2, 1), 5, 0, 0)], display_name="\u202eevil"
    )
    root = parse(render_html(fixture_report(history)))
    names = [e.text for e in root.find_all("bdi", "name")]
    assert names == ["\u202eevil"]


# --- sparklines ------------------------------------------------------------------------------


def test_the_sparkline_of_a_gappy_rise_by_hand() -> None:
    """Alice: 4 samples from the base on; x by time, the highest at the top, the lowest at 25."""
    (alice, *_) = polylines(render_html(fixture_report(ALICE)))
    # x = 3 + days/31 * 114 for days 0, 2, 10, 31; y = 3 + (1,510 - v)/310 * 22.
    assert alice == [(3.0, 25.0), (10.4, 23.6), (39.8, 17.9), (117.0, 3.0)]


def test_the_polyline_has_one_point_per_sample_in_the_period() -> None:
    """As many points as samples from base to current, across accounts and sizes."""
    counts = [len(points) for points in polylines(render_html(fixture_report()))]
    assert counts == [4, 2, 3]  # alice, bob, erin; carol has a dot, dave nothing


def test_a_falling_series_starts_at_the_top() -> None:
    """Erin's highest count is her first: top left; her lowest is last: bottom right."""
    (erin,) = polylines(render_html(fixture_report(ERIN)))
    assert erin[0] == (3.0, TOP)
    assert erin[-1] == (117.0, BOTTOM)


def test_a_flat_series_is_a_flat_line_in_the_middle() -> None:
    """Equal counts draw a horizontal line at half height."""
    flat = AccountHistory("flat@example.org", [sample(at(3, d), 77, 7, 7) for d in (2, 12, 22)])
    (points,) = polylines(render_html(fixture_report(flat)))
    assert [y for _, y in points] == [MIDDLE] * 3
    assert [x for x, _ in points] == [3.0, 60.0, 117.0]


def test_one_sample_is_a_dot_in_the_centre() -> None:
    """A single sample draws no line, one circle in the middle, labelled with the count."""
    root = parse(render_html(fixture_report(CAROL)))
    assert root.find_all("polyline") == []
    (svg,) = root.find_all("svg")
    (dot,) = svg.find_all("circle")
    assert (dot.attrs["cx"], dot.attrs["cy"]) == ("60", "14")
    assert svg.attrs["aria-label"] == "followers: 30"


def test_the_sparkline_is_an_image_with_a_name() -> None:
    """role=img, an aria-label and a title saying where followers went, the fixed viewBox."""
    (svg,) = parse(render_html(fixture_report(ALICE))).find_all("svg")
    assert svg.attrs["role"] == "img"
    assert svg.attrs["aria-label"] == "followers from 1,200 to 1,510"
    assert [t.text for t in svg.find_all("title")] == ["followers from 1,200 to 1,510"]
    assert svg.attrs["viewbox"] == f"0 0 {SPARKLINE_WIDTH} {SPARKLINE_HEIGHT}"
    (dot,) = svg.find_all("circle")
    assert (dot.attrs["cx"], dot.attrs["cy"]) == ("117", "3")  # the end dot is the latest


def test_no_data_has_no_sparkline() -> None:
    """An account without samples gets no chart at all."""
    assert parse(render_html(fixture_report(DAVE))).find_all("svg") == []


def test_sparkline_points_edge_cases() -> None:
    """No points: none; the same moment twice: spread evenly; values stay inside the box."""
    moment = at(3, 5)
    assert sparkline_points([]) == []
    assert sparkline_points([(moment, 1), (moment, 3)]) == [(3.0, 25.0), (117.0, 3.0)]
    many = [(moment + timedelta(hours=h), (h * 37) % 11) for h in range(50)]
    placed = sparkline_points(many)
    assert len(placed) == 50
    assert all(TOP <= y <= BOTTOM and 3.0 <= x <= 117.0 for x, y in placed)
    assert min(y for _, y in placed) == TOP
    assert max(y for _, y in placed) == BOTTOM


# --- CLI and API -----------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI settings: an SQLite file, loopback allowed, plain http, quick retries."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("FEDIMETER_ALLOW_PRIVATE_ADDRESSES", "true")
    monkeypatch.setenv("FEDIMETER_DEFAULT_SCHEME", "http")
    monkeypatch.setenv("FEDIMETER_RETRY_BASE_DELAY", "0.01")
    monkeypatch.setenv("FEDIMETER_MAX_RETRIES", "1")


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """One simulated server with an account whose display name tries to inject markup."""
    sim = SimFediverse(seed=41)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    social.add_account("alice", followers=1200, following=10, statuses=300, display_name=HOSTILE)
    with sim.run_in_thread():
        yield sim


def test_cli_report_format_html(cli_env: None, world: SimFediverse) -> None:
    """fedimeter report --format html prints the page, with the name escaped."""
    alice = world.instance("social").account("alice")
    runner = CliRunner()
    assert runner.invoke(app, ["track", "add", alice.acct]).exit_code == 0
    assert runner.invoke(app, ["collect"]).exit_code == 0
    result = runner.invoke(app, ["report", "--format", "html"])
    assert result.exit_code == 0, result.output
    page = result.stdout
    assert page.startswith("<!doctype html>")
    assert page.endswith("</html>\n")
    assert f"@{alice.acct.split('@')[0]}<wbr>@" in page
    assert "&lt;script&gt;" in page
    assert "<script" not in page
    assert [row[1] for row in rows(page)] == ["1,200"]


def test_api_report_format_html(settings: Settings, world: SimFediverse) -> None:
    """GET /report?format=html answers text/html in UTF-8 and OpenAPI lists that type."""
    alice = world.instance("social").account("alice")
    with api(api_settings(settings), clock=lambda: world.now) as http:
        assert http.post("/api/v1/accounts", json={"handle": f"@{alice.acct}"}).status_code == 201
        run = http.post("/api/v1/runs").json()
        while http.get(f"/api/v1/runs/{run['id']}").json()["status"] == "running":
            time.sleep(0.01)  # the test's timeout ends a round that never finishes
        answer = http.get("/api/v1/report", params={"format": "html", "period": "1d"})
        schema = http.get("/openapi.json").json()
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.text.startswith("<!doctype html>")
    assert [row[1] for row in rows(answer.text)] == ["1,200"]
    content = schema["paths"]["/api/v1/report"]["get"]["responses"]["200"]["content"]
    assert "text/html; charset=utf-8" in content
    assert "html" in str(schema["paths"]["/api/v1/report"]["get"]["parameters"])


def test_help_lists_html(monkeypatch: pytest.MonkeyPatch) -> None:
    """report --help offers html among the formats and says what it is."""
    monkeypatch.setenv("COLUMNS", "200")  # one option per line, however wide the terminal
    result = CliRunner().invoke(app, ["report", "--help"])
    assert result.exit_code == 0
    assert re.search(
        r"<text\|markdown\|csv\|json\|html>\s+text, markdown, csv, json or html", result.output
    )
