"""The hashtag pages' layout in headless Chromium: long names wrap, a phone keeps the meaning.

The pages come from the app (no server process); the browser lays them out with the
dashboard's stylesheet at desktop and phone width, images left unloaded (their size is in
the markup).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from apihelpers import api, api_settings
from browsers import CHROMIUM, require_chromium
from fedimeter.config import Settings
from fedimeter.domain.tags import TagReading, parse_tag_name
from fedimeter.storage.database import Database
from fedimeter.storage.tags import TagStore
from test_web_tags import NOW, SOCIAL, day, seed

pytestmark = pytest.mark.slow

STYLESHEET = Path(__file__).parent.parent / "src" / "fedimeter" / "web" / "static" / "app.css"
LONG = "A" * 196 + "long"  # the longest name a hashtag may have
WIDTHS = (1280, 400)


async def pages(db: Database, settings: Settings) -> tuple[dict[str, str], int]:
    """The hashtags page and the long-named tag's page, with two other tags tracked."""
    await seed(db)
    store = TagStore(db)
    tag = await store.track(SOCIAL, parse_tag_name(LONG), NOW - timedelta(days=10))
    days = (day(2, 1, 1), day(1, 0, 0), day(0, 1, 1, complete=False))
    await store.store(tag.id, TagReading(LONG, None, days), NOW)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        found = {path: http.get(path).text for path in ("/tags", f"/tags/{tag.id}")}
    return found, tag.id


async def layout(html: str, width: int, script: str) -> Any:
    """Lay ``html`` out at ``width`` pixels and evaluate ``script`` on it."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.set_content(html)
            await page.add_style_tag(path=STYLESHEET)
            return await page.evaluate(script)
        finally:
            await browser.close()


OVERFLOW = """() => ({
  width: document.documentElement.scrollWidth,
  wider: [...document.querySelectorAll("body *")]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1
      && !e.closest(".table-wrap"))
    .map((e) => e.tagName + "." + e.className).slice(0, 5),
  hidden: [...document.querySelectorAll("table th, table td")]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
    .map((e) => e.textContent.trim().slice(0, 30)).slice(0, 5),
})"""


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the page is the same
@pytest.mark.parametrize("width", WIDTHS)
async def test_a_name_of_200_letters_wraps_and_every_column_stays_on_screen(
    db: Database, settings: Settings, width: int
) -> None:
    """No page wider than the screen, no heading cut, no table cell off to the right."""
    require_chromium()
    found, _ = await pages(db, settings)
    for path, html in found.items():
        measured = await layout(html, width, OVERFLOW)
        assert measured["width"] <= width, (path, measured)
        assert measured["wider"] == [], (path, measured)
        assert measured["hidden"] == [], (path, measured)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_phone_still_says_which_day_the_uses_are_of(
    db: Database, settings: Settings
) -> None:
    """At 400 pixels the "Last full day" column is hidden: the uses say their day instead."""
    require_chromium()
    found, tag_id = await pages(db, settings)
    shown = await layout(
        found["/tags"],
        400,
        f"""() => {{
          const visible = (e) => e.getClientRects().length > 0;
          const heads = [...document.querySelectorAll("table.tags thead th")].filter(visible);
          const uses = heads.findIndex((e) => e.textContent.trim().startsWith("Uses"));
          const row = document.querySelector('a[href="/tags/{tag_id}"]').closest("tr");
          const cells = [...row.children].filter(visible);
          return {{heads: heads.map((e) => e.innerText.trim()), uses: cells[uses].innerText}};
        }}""",
    )
    assert not any(head.startswith("Last full day") for head in shown["heads"]), shown
    uses = next(head for head in shown["heads"] if head.startswith("Uses"))
    assert "last full day" in uses.lower() or "2026-03-08" in shown["uses"], shown
    assert "03-08" in shown["uses"] or "Mar 8" in shown["uses"], shown
