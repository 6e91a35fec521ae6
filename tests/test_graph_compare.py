"""Comparisons: the figure's cap and legend, and comparison graphs through the CLI and the API."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from matplotlib.colors import to_rgba
from typer.testing import CliRunner, Result

from apihelpers import api, api_settings
from fedimeter.cli import app
from fedimeter.config import Settings
from fedimeter.errors import InvalidInput
from fedimeter.graphing import MAX_COMPARED, distinct_compared
from fedimeter.graphs import MAX_SERIES, GraphOptions, Series, comparison_figure
from fedimeter.simfedi import SimFediverse
from test_graph import END, START, data_lines, drawn, png_size, svg_root, ys

# A legend pushed out of the figure warns; here that is a failure.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")


def growing(n: int, days: int = 90, *, name: str = "@user{n}@instance{n}.example.social") -> Series:
    """Series ``n``: a sample a day from START, starting at 1,000 x (n + 1), rising by n + 1."""
    return Series(
        name.format(n=n),
        [(START + timedelta(days=d), 1_000 * (n + 1) + (n + 1) * d) for d in range(days)],
    )


def legend_rows(fig_series: list[Series], *, width: int = 1000, height: int = 500) -> list[str]:
    """The legend texts of a comparison of ``fig_series`` in an image of that size."""
    options = GraphOptions(width_px=width, height_px=height)
    fig = comparison_figure(fig_series, indexed=False, since=START, until=END, options=options)
    return [text.get_text() for text in fig.legends[0].get_texts()]


def test_a_comparison_draws_at_most_max_series_lines() -> None:
    """Twenty series are drawn, each with its own colour and line style; twenty-one are refused."""
    series = [growing(n) for n in range(MAX_SERIES)]
    fig = comparison_figure(series, indexed=False, since=START, until=END, options=GraphOptions())
    firsts = [line for line in data_lines(fig.axes[0]) if str(line.get_gid()).endswith("-0")]
    assert len(firsts) == MAX_SERIES == 20
    looks = {(to_rgba(line.get_color()), line.get_linestyle()) for line in firsts}
    assert len(looks) == 20
    with pytest.raises(ValueError, match="at most 20 series fit on one graph, not 21"):
        comparison_figure(
            [*series, growing(20)], indexed=False, since=START, until=END, options=GraphOptions()
        )


@pytest.mark.parametrize(
    ("count", "width", "height"),
    [(2, 1000, 500), (5, 1000, 500), (20, 1000, 500), (20, 2000, 1000), (5, 400, 300)],
)
def test_the_legend_fits_inside_the_figure(count: int, width: int, height: int) -> None:
    """However many accounts and whatever the size, no legend row runs off the image."""
    series = [growing(n) for n in range(count)]
    fig = drawn(
        comparison_figure(
            series,
            indexed=True,
            since=START,
            until=END,
            options=GraphOptions(width_px=width, height_px=height),
        )
    )
    (legend,) = fig.legends
    box, page = legend.get_window_extent(), fig.bbox
    assert page.x0 <= box.x0 < box.x1 <= page.x1
    assert page.y0 <= box.y0
    assert box.y1 <= fig.axes[0].get_window_extent().y0  # below the axes, never over the lines
    assert len(legend.get_texts()) == count
    assert fig.axes[0].get_window_extent().height > height * 0.25  # the lines keep their room


def test_a_legend_uses_columns_when_they_fit() -> None:
    """Two short labels sit side by side; twenty long ones take several columns, not one."""
    short = [growing(n, name="@u{n}@a.example") for n in range(2)]
    fig = drawn(
        comparison_figure(short, indexed=False, since=START, until=END, options=GraphOptions())
    )
    first, second = (text.get_window_extent() for text in fig.legends[0].get_texts())
    assert first.y0 == second.y0
    many = drawn(
        comparison_figure(
            [growing(n) for n in range(20)],
            indexed=False,
            since=START,
            until=END,
            options=GraphOptions(),
        )
    )
    lefts = {round(text.get_window_extent().x0) for text in many.legends[0].get_texts()}
    assert len(lefts) >= 2


def test_names_too_long_for_the_width_lose_their_middle_not_their_value() -> None:
    """In a narrow image a very long handle is shortened with an ellipsis; its count stays."""
    name = "@someone.with.a.very.long.name@a.very.long.instance.name.example.social"
    rows = legend_rows([growing(0, name=name)], width=260, height=300)
    (row,) = rows
    assert "…" in row
    assert row.startswith("@some")
    assert row.endswith(".social: 1,089")
    assert len(row) < len(f"{name}: 1,089")


def test_short_names_are_never_shortened() -> None:
    """Labels that fit are shown whole."""
    rows = legend_rows([growing(n, name="@u{n}@a.example") for n in range(3)])
    assert rows == ["@u0@a.example: 1,089", "@u1@a.example: 2,178", "@u2@a.example: 3,267"]


def test_an_indexed_comparison_draws_the_base_line_at_100() -> None:
    """Indexed comparisons carry a dotted line at 100 and the index in the title."""
    fig = comparison_figure(
        [growing(0), growing(1)],
        indexed=True,
        since=START,
        until=datetime(2026, 2, 1, tzinfo=UTC),
        options=GraphOptions(),
    )
    (base,) = [line for line in fig.axes[0].get_lines() if line.get_gid() == "index-base"]
    assert ys(base) == [100.0, 100.0]
    assert fig.get_suptitle().endswith("indexed (first sample = 100)")


# -- the service's rule for what one graph can compare ------------------------------------------


def test_distinct_compared_keeps_first_order_and_refuses_none_or_too_many() -> None:
    """Repeats go, order stays; nothing or more than 20 distinct items is invalid input."""
    assert distinct_compared([3, 1, 3, 2, 1]) == [3, 1, 2]
    assert distinct_compared([7] * 50) == [7]
    assert len(distinct_compared(range(MAX_COMPARED))) == 20
    with pytest.raises(InvalidInput, match="at least one account"):
        distinct_compared([])
    with pytest.raises(InvalidInput, match="at most 20 accounts, not 21"):
        distinct_compared(range(21))


# -- through the CLI and the API -------------------------------------------------------------


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """Three accounts on one simulated server that grow at different paces."""
    sim = SimFediverse(seed=44)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    social.add_account("alice", followers=1_000, followers_per_day=50, statuses_per_day=3)
    social.add_account("bob", followers=10, followers_per_day=5, statuses_per_day=1)
    social.add_account("carol", followers=3, statuses=7)
    with sim.run_in_thread():
        yield sim


def acct(world: SimFediverse, name: str) -> str:
    """The ``user@host`` of a simulated account."""
    return world.instance("social").account(name).acct


def svg_texts(data: bytes) -> list[str]:
    """Every text an SVG graph shows (matplotlib writes each as a comment before its glyphs)."""
    return [text.decode() for text in re.findall(rb"<!-- (.*?) -->", data)]


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI on an SQLite file, speaking plain http to the simulated server on loopback."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("FEDIMETER_ALLOW_PRIVATE_ADDRESSES", "true")
    monkeypatch.setenv("FEDIMETER_DEFAULT_SCHEME", "http")
    monkeypatch.chdir(tmp_path)


def invoke(*args: str) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def tracked(env: None, world: SimFediverse) -> list[str]:
    """Alice, Bob and Carol tracked by the CLI, with two rounds of samples a day apart."""
    handles = [acct(world, name) for name in ("alice", "bob", "carol")]
    assert invoke("track", "add", *handles).exit_code == 0
    assert invoke("collect").exit_code == 0
    world.advance(days=1)
    assert invoke("collect").exit_code == 0
    return handles


def test_cli_compares_several_accounts_on_one_graph(tracked: list[str], tmp_path: Path) -> None:
    """Two handles draw one comparison: its title counts them, its legend gives their counts."""
    alice, bob, _ = tracked
    result = invoke("graph", alice, f"@{bob}", "-o", "both.svg")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("wrote both.svg (")
    data = (tmp_path / "both.svg").read_bytes()
    assert (svg_root(data).get("width"), svg_root(data).get("height")) == ("1000px", "500px")
    texts = svg_texts(data)
    assert any(text.startswith("Followers of 2 accounts, ") for text in texts), texts
    assert f"@{alice}: 1,050" in texts  # 1,000 and 50 a day
    assert any(text.startswith(f"@{bob}: ") for text in texts)


def test_cli_indexed_comparison_with_a_default_file_name(
    tracked: list[str], tmp_path: Path
) -> None:
    """--indexed rebases every account to 100 and names the file comparison-METRIC-indexed.png."""
    result = invoke("graph", *tracked, "--indexed", "--metric", "statuses", "--scale", "2")
    assert result.exit_code == 0, result.output
    png = tmp_path / "comparison-statuses-indexed.png"
    assert png_size(png.read_bytes()) == (2000, 1000)
    invoke("graph", *tracked, "--indexed", "-o", "indexed.svg")
    texts = svg_texts((tmp_path / "indexed.svg").read_bytes())
    assert any(text.endswith("indexed (first sample = 100)") for text in texts), texts
    assert sum(bool(re.fullmatch(r"@\S+: \d+\.\d \([\d,]+\)", text)) for text in texts) == 3


def test_cli_the_same_account_twice_is_one_account(tracked: list[str], tmp_path: Path) -> None:
    """A handle given twice (any spelling) draws that account's own graph, as with one handle."""
    alice = tracked[0]
    result = invoke("graph", alice, f"@{alice.upper()}")
    assert result.exit_code == 0, result.output
    assert (tmp_path / f"{alice.replace(':', '_')}-followers.png").exists()
    refused = invoke("graph", alice, f"@{alice}", "--indexed")
    assert refused.exit_code == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{alice}", "{bob}", "--metric", "combined"], "--metric combined draws one account"),
        (["{alice}", "--indexed"], "--indexed compares accounts: give two or more handles"),
        ([f"user{n}@social.example" for n in range(21)], "at most 20 accounts, not 21"),
        (["{alice}", "{bob}", "-o", "both.gif"], "both.gif must end in .png or .svg"),
    ],
    ids=["combined", "indexed alone", "21 accounts", "format"],
)
def test_cli_refuses_what_a_comparison_cannot_draw(
    tracked: list[str], args: list[str], message: str
) -> None:
    """Combined for several, --indexed for one, more than 20: one line on stderr, exit 2."""
    alice, bob, _ = tracked
    result = invoke("graph", *(arg.format(alice=alice, bob=bob) for arg in args))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list(Path().glob("comparison-*"))


def test_cli_an_untracked_account_in_a_comparison_is_exit_1(tracked: list[str]) -> None:
    """One handle that is not tracked fails the whole graph with a line naming it."""
    result = invoke("graph", tracked[0], "ghost@social.example")
    assert result.exit_code == 1
    assert "@ghost@social.example is not tracked" in result.stderr
    assert not Path("comparison-followers.png").exists()


def test_api_compares_accounts_in_png_and_svg(settings: Settings, world: SimFediverse) -> None:
    """/api/v1/graph.{png,svg} draws the ids given, counted once each, at the asked size."""
    with api(api_settings(settings), clock=lambda: world.now) as http:
        ids = [
            http.post("/api/v1/accounts", json={"handle": acct(world, name)}).json()["id"]
            for name in ("alice", "bob", "carol")
        ]
        for _ in range(3):
            _round(http)
            world.advance(days=1)
        png = http.get(
            "/api/v1/graph.png",
            params={"account_id": ids, "indexed": True, "scale": 2, "width": 800, "height": 400},
        )
        assert png.status_code == 200
        assert png.headers["content-type"] == "image/png"
        assert png.headers["cache-control"] == "no-cache"
        assert png_size(png.content) == (1600, 800)
        svg = http.get(
            "/api/v1/graph.svg",
            params={"account_id": [ids[1], ids[0], ids[1]], "metric": "statuses", "theme": "dark"},
        )
        assert svg.status_code == 200
        assert svg.headers["content-type"].startswith("image/svg+xml")
        texts = svg_texts(svg.content)
        assert any(text.startswith("Statuses of 2 accounts, ") for text in texts), texts
        rows = [text for text in texts if text.startswith("@")]
        assert [row.rpartition(": ")[0] for row in rows] == [
            f"@{acct(world, 'bob')}",
            f"@{acct(world, 'alice')}",
        ]
        one = http.get("/api/v1/graph.svg", params={"account_id": ids[0], "since": "2020-01-01"})
        title = next(text for text in svg_texts(one.content) if " — followers, " in text)
        assert title.startswith(f"@{acct(world, 'alice')} — followers, 2020-01-01 00:00 to ")


def _round(http: TestClient) -> None:
    """Run a collection round through the API and wait for it to end."""
    run = http.post("/api/v1/runs").json()
    for _ in range(500):
        if http.get(f"/api/v1/runs/{run['id']}").json()["status"] != "running":
            return
        time.sleep(0.01)
    raise AssertionError("the round did not finish")


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"account_id": [1, 999]}, 404),
        ({}, 422),
        ({"account_id": list(range(1, 22))}, 422),
        ({"account_id": 0}, 422),
        ({"account_id": 1, "metric": "combined"}, 422),
        ({"account_id": 1, "theme": "sepia"}, 422),
        ({"account_id": 1, "width": 5}, 422),
        ({"account_id": 1, "scale": 4, "width": 4000, "height": 4000}, 422),
        ({"account_id": 1, "since": "2030-01-01", "until": "2029-01-01"}, 422),
        ({"account_id": 1, "since": "soon"}, 422),
    ],
    ids=[
        "unknown id",
        "no id",
        "21 ids",
        "id 0",
        "combined",
        "theme",
        "width",
        "too many pixels",
        "since after until",
        "not a date",
    ],
)
def test_api_comparison_errors(
    settings: Settings, world: SimFediverse, params: dict[str, object], status: int
) -> None:
    """An unknown id is 404; no id, more than 20, or a bad metric, look or period is 422."""
    with api(api_settings(settings), clock=lambda: world.now) as http:
        http.post("/api/v1/accounts", json={"handle": acct(world, "alice")})
        answer = http.get("/api/v1/graph.png", params=params)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
