"""Names in any script: fallback fonts draw what DejaVu Sans lacks, and nothing floods the log.

Servers name hashtags in every script (``#日本語タグ``); matplotlib drew them as boxes and
warned once per missing glyph, some fifteen lines per graph in the server's log.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

import pytest
from matplotlib import font_manager

from fedimeter.graphs import (
    GraphOptions,
    Series,
    TagSeries,
    comparison_figure,
    drawing,
    encode,
    render_tag_comparison,
    render_tag_days,
    tag_days_figure,
)
from test_graph_axes import SINCE, UNTIL
from test_graph_tags import Day

if TYPE_CHECKING:
    from collections.abc import Iterator

# A missing glyph warns with a UserWarning: here that is a failure.
pytestmark = pytest.mark.filterwarnings("error::UserWarning")

NAME = "日本語タグ"
FIRST, LAST = date(2026, 11, 7), date(2026, 12, 7)
DAYS = [Day(FIRST + timedelta(days=n), 8, 2) for n in range(31)]
CJK = "Noto Sans CJK JP"


def installed(family: str) -> bool:
    """Whether matplotlib knows a font of ``family``."""
    return any(entry.name == family for entry in font_manager.fontManager.ttflist)


@pytest.fixture
def fresh() -> Iterator[None]:
    """The font choices computed again before and after the test."""
    drawing.font_families.cache_clear()
    drawing.covered.cache_clear()
    yield
    drawing.font_families.cache_clear()
    drawing.covered.cache_clear()


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_a_name_in_another_script_draws_without_a_warning(fmt: str) -> None:
    """Title, legend and note: no "Glyph ... missing" warning, whatever fonts are installed."""
    options = GraphOptions(fmt=fmt)  # type: ignore[arg-type]
    render_tag_days(NAME, "例え.example", DAYS, first=FIRST, last=LAST, options=options)
    render_tag_comparison(
        NAME, [TagSeries("例え.example", DAYS)], "uses", first=FIRST, last=LAST, options=options
    )
    render_tag_days(NAME, "例え.example", [], first=FIRST, last=LAST, options=options)
    encode(
        comparison_figure(
            [Series("@ユーザー@例え.example", [(SINCE, 1), (UNTIL, 2)])],
            title="フォロワー",
            indexed=False,
            since=SINCE,
            until=UNTIL,
            options=options,
        ),
        options,
    )


@pytest.mark.skipif(not installed(CJK), reason=f"{CJK} is not installed (fonts-noto-cjk)")
def test_a_cjk_font_installed_draws_the_glyphs() -> None:
    """With fonts-noto-cjk, the title falls back to Noto Sans CJK after DejaVu Sans."""
    fig = tag_days_figure(NAME, "x.example", DAYS, first=FIRST, last=LAST, options=GraphOptions())
    title = fig.texts[0]
    assert title.get_text().startswith(f"#{NAME} on x.example")
    families = title.get_fontfamily()
    assert families[0] == "DejaVu Sans", families  # Latin text looks as it always did
    assert CJK in families, families
    used = font_manager.fontManager._find_fonts_by_props(title.get_fontproperties())
    assert any("NotoSansCJK" in path for path in used), used


def test_only_installed_families_are_asked_for() -> None:
    """A family that is not installed would log "findfont: Font family ... not found" each time."""
    assert all(installed(family) for family in drawing.font_families())


def test_without_a_font_for_a_character_it_is_a_box_and_no_warning(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No fallback font at all (matplotlib before 3.10 has no Last Resort): a box, quietly."""
    monkeypatch.setattr(drawing, "FALLBACK_FAMILIES", ())
    monkeypatch.setattr(drawing, "LAST_RESORT", "No Such Font")
    assert drawing.font_families() == ("DejaVu Sans",)
    assert (
        drawing.drawable(f"#{NAME} on x.example") == "#\u25a1\u25a1\u25a1\u25a1\u25a1 on x.example"
    )
    fig = tag_days_figure(NAME, "x.example", DAYS, first=FIRST, last=LAST, options=GraphOptions())
    assert fig.texts[0].get_text().startswith("#\u25a1\u25a1\u25a1")
    encode(fig, GraphOptions())


def test_nothing_is_logged_for_a_bold_title_in_another_script(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Last Resort has no bold: matplotlib said so at every title size, in the server's log."""
    with caplog.at_level("DEBUG", logger="matplotlib.font_manager"):
        for width in (1000, 400, 250):
            options = GraphOptions(width_px=width)
            render_tag_days(
                NAME * width, "x.example", DAYS, first=FIRST, last=LAST, options=options
            )
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []
