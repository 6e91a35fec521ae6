"""The dashboard's uPlot charts (web/static/charts.js) in headless Chromium, without a server.

A page holding one chart's figure and data loads uPlot and charts.js as the dashboard does;
the test reads what the chart drew: its axis labels and its legend.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from browsers import CHROMIUM, require_chromium

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Page

pytestmark = pytest.mark.slow

STATIC = Path(__file__).parent.parent / "src" / "fedimeter" / "web" / "static"
START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    """A headless Chromium page."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 800})
        finally:
            browser.close()


def chart(page: Page, data: dict[str, Any], *, source: str = "chart-data") -> None:
    """Draw one followers chart of ``data`` the way the account or instance page does."""
    figure = "" if source == "chart-data" else f' data-source="{source}"'
    page.set_content(
        f'<figure class="chart" data-metric="followers"{figure}><figcaption>Followers'
        f'</figcaption><div class="plot"></div></figure>'
        f'<script type="application/json" id="{source}">{json.dumps(data)}</script>'
    )
    page.add_style_tag(path=STATIC / "vendor" / "uplot" / "uPlot.min.css")
    page.add_script_tag(path=STATIC / "vendor" / "uplot" / "uPlot.iife.min.js")
    page.add_script_tag(path=STATIC / "charts.js")
    page.wait_for_function("window.fedimeterCharts && window.fedimeterCharts.followers")


def axis_labels(page: Page, axis: int) -> list[str]:
    """The labels uPlot drew on an axis (0: time, 1: values)."""
    labels = page.evaluate(f"fedimeterCharts.followers.axes[{axis}]._values")
    return [str(label) for label in labels if label is not None]


def legend_time(page: Page, index: int) -> str:
    """The legend's time while the cursor is on sample ``index``."""
    return str(
        page.evaluate(
            f"""() => {{
              const u = fedimeterCharts.followers;
              u.setCursor({{left: u.valToPos(u.data[0][{index}], "x"), top: 10}});
              return u.root.querySelector(".u-legend .u-series:first-child .u-value").textContent;
            }}"""
        )
    )


def daily(count: int, start: datetime = START, values: list[int] | None = None) -> dict[str, Any]:
    """``count`` daily samples from ``start``."""
    times = [int((start + timedelta(days=n)).timestamp()) for n in range(count)]
    return {"t": times, "followers": values or [100 + n for n in range(count)]}


def test_the_time_axis_names_months_and_the_legend_is_iso(page: Page) -> None:
    """2026-11-24 to 12-07: ``Nov 24`` ... ``Dec 7``, the year once; the legend ISO, in UTC."""
    chart(page, daily(14))
    labels = axis_labels(page, 0)
    assert labels, labels
    assert all("/" not in label for label in labels), labels
    assert any(label.startswith("Nov ") for label in labels), labels
    assert any(label.startswith("Dec ") for label in labels), labels
    assert "2026" in labels[0], labels
    assert legend_time(page, 0) == "2026-11-24 03:00"
    assert legend_time(page, 13) == "2026-12-07 03:00"


def test_weeks_show_their_first_day_in_iso(page: Page) -> None:
    """The instance page's weekly chart: ``2026-11-23`` for the week from that Monday."""
    monday = datetime(2026, 11, 23, tzinfo=UTC)
    times = [int((monday + timedelta(weeks=n)).timestamp()) for n in range(4)]
    chart(page, {"t": times, "followers": [5, 6, 7, 8]}, source="weeks-data")
    assert legend_time(page, 0) == "2026-11-23"


def test_a_small_count_has_whole_ticks_only(page: Page) -> None:
    """Followers of 0 and 1: ticks at 0 and 1, never 0.2."""
    chart(page, daily(14, values=[n % 2 for n in range(14)]))
    labels = axis_labels(page, 1)
    assert labels, labels
    assert all(label.lstrip("-").isdigit() for label in labels), labels
    assert len(labels) == len(set(labels)), labels
