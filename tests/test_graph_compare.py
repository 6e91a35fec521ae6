"""Comparisons: the figure's cap and legend, and comparison graphs through the CLI and the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.colors import to_rgba

from fedimeter.graphs import MAX_SERIES, GraphOptions, Series, comparison_figure
from test_graph import END, START, data_lines, drawn, ys

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
