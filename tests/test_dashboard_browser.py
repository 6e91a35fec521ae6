"""The dashboard in headless Chromium against a real ``fedimeter serve`` and simulated servers.

Every page loads with no console error and no failed request, in light and dark, at desktop
and phone width, and is saved as a screenshot in ``artifacts/screenshots/`` (or
``$FEDIMETER_TEST_ARTIFACTS``) for people to look at. The account chart draws one point per
sample and follows the chosen period; adding an account through the form tracks it; removing
asks first; without the API token nothing can be changed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from browsers import CHROMIUM, require_chromium
from fedimeter.collect import collect_round
from fedimeter.config import load_settings
from fedimeter.instance_tracking import add_instances
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.repository import Repository
from fedimeter.storage.tags import TagStore
from fedimeter.tag_tracking import add_tags, add_trends
from peers import free_port
from simhelpers import sim_client, track
from test_engagement_rounds import turn_on

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.slow

TOKEN = "dashboard-test-token-0123456789"
DAYS = 40
HOUR = timedelta(hours=1)
#: What the machine's closed network needs (see the environment notes): no background calls.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
ARTIFACTS = Path(
    os.environ.get("FEDIMETER_TEST_ARTIFACTS", Path(__file__).parent.parent / "artifacts")
)


@dataclass
class Served:
    """The running server and the simulated world behind it."""

    url: str
    world: SimFediverse
    instance_id: int
    newcomer: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """Forty simulated days of five accounts and one instance, served by ``fedimeter serve``."""
    require_chromium()
    folder = tmp_path_factory.mktemp("dashboard")
    url = f"sqlite:///{folder / 'fedimeter.sqlite3'}"
    world = SimFediverse(seed=11)
    big = world.add_instance("big", rate_limit=None, title="Big <i>Town</i>", peers=250)
    small = world.add_instance("small", version="4.1.0", rate_limit=None)
    for i, (name, followers) in enumerate(
        [("alice", 1200), ("bob", 300), ("carol", 5400), ("dave", 80)]
    ):
        big.add_account(
            name,
            display_name=f"{name.title()} <script>x</script>",
            followers=followers,
            followers_per_day=3.0 * (i + 1) - 4,
            statuses_per_day=1.5,
        )
    small.add_account("erin", followers=950, followers_per_day=-1.0)
    small.add_account("newcomer", followers=12)
    port = free_port()
    with world.run_in_thread():
        instance_id = asyncio.run(_history(url, world, big.base_url))
        process = _serve(url, port, folder / "serve.log")
        try:
            _wait_for(f"http://127.0.0.1:{port}/healthz", process, folder / "serve.log")
            yield Served(
                f"http://127.0.0.1:{port}", world, instance_id, small.account("newcomer").acct
            )
        finally:
            process.terminate()
            process.wait(timeout=30)


async def _history(url: str, world: SimFediverse, instance_url: str) -> int:
    settings = load_settings(
        database_url=url, allow_private_addresses=True, default_scheme="http", retry_base_delay=0
    )
    db = await Database.open(settings.database_url)
    try:
        repo = Repository(db)
        async with sim_client(settings, world) as client:
            accounts = [
                acc
                for inst in world.instances.values()
                for acc in inst.accounts
                if acc.username != "newcomer"
            ]
            await track(repo, client, accounts)
            # Alice's engagement: a post a day, read back each round (her page shows it).
            alice = world.instance("big").account("alice")
            await turn_on(repo, alice)
            store = InstanceStore(db)
            [added] = await add_instances(store, client, [instance_url], default_scheme="http")
            assert added.instance is not None
            # A hashtag tracked on the big instance, and its trending list recorded.
            big = world.instance("big")
            big.trending_tags = ["caturday", "fediverse", "photography"]
            tags = TagStore(db)

            def now() -> datetime:
                return world.now

            [tagged] = await add_tags(
                tags, client, ["caturday"], [instance_url], default_scheme="http"
            )
            assert tagged.error is None, tagged.error
            [trends] = await add_trends(
                tags, client, [instance_url], default_scheme="http", clock=now
            )
            assert trends.error is None, trends.error
            for day in range(DAYS):
                world.advance(days=1)
                big.tag_uses("caturday", uses=40 + (day * 13) % 30, accounts=20 + day % 9)
                big.tag_uses("fediverse", uses=25, accounts=12)
                alice.add_status(
                    f"Day {day + 1}: <b>news</b> from the big town",
                    created_at=world.now - 3 * HOUR,
                    favourites=(day * 7) % 23,
                    reblogs=day % 5,
                    replies=day % 3,
                )
                await collect_round(repo, client, settings, clock=lambda: world.now)
            return added.instance.id
    finally:
        await db.close()


def _serve(url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        FEDIMETER_DATABASE_URL=url,
        FEDIMETER_API_TOKEN=TOKEN,
        FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
        FEDIMETER_DEFAULT_SCHEME="http",
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fedimeter", "serve", "--no-schedule", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not start:\n{log.read_text()}")


@pytest.fixture(scope="module")
def browser(served: Served) -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    from playwright.sync_api import sync_playwright

    del served
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Watched:
    """A page whose console errors and failed requests are collected."""

    def __init__(self, page: Page) -> None:
        """Watch ``page`` from now on."""
        self.page = page
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type in {"error", "warning"}:
            self.problems.append(f"console {message.type}: {message.text}")

    def _failed(self, request: Any) -> None:
        # Chromium cancels what it no longer needs (net::ERR_ABORTED): the icon fetched after
        # the page has loaded when a navigation follows, a <picture>'s other source that its
        # preload scanner began before the media queries chose. Not a failure of the page:
        # ``open`` checks that every image shown did load.
        aborted = "ERR_ABORTED" in (request.failure or "")
        if aborted and (request.url.endswith("/favicon.svg") or request.resource_type == "image"):
            return
        self.problems.append(f"failed: {request.url} ({request.failure})")

    def _response(self, response: Any) -> None:
        if response.status >= 400:
            self.problems.append(f"{response.status}: {response.url}")

    def open(self, url: str) -> None:
        """Go to ``url``, wait until the network is quiet; every image shown must have loaded."""
        self.page.goto(url, wait_until="networkidle")
        broken = self.page.evaluate(
            "Array.from(document.images)"
            ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.currentSrc || i.src)"
        )
        self.problems += [f"image not shown: {src}" for src in broken]

    def follow(self, selector: str) -> None:
        """Click what ``selector`` finds and wait until the next page's network is quiet.

        Clicking on before the page's scripts have arrived would cancel them (a failed
        request of the test's making, not the page's).
        """
        self.page.click(selector)
        self.page.wait_for_load_state("networkidle")


def _signed_in(browser: Browser, served: Served, **options: Any) -> Watched:
    page = browser.new_page(**options)
    watched = Watched(page)
    watched.open(f"{served.url}/login")
    page.fill("#token", TOKEN)
    page.click("form.stacked button[type=submit]")
    page.wait_for_url(f"{served.url}/")
    return watched


def test_every_page_loads_cleanly_in_every_look(browser: Browser, served: Served) -> None:
    """No console error, no failed request; a screenshot of each page in each look."""
    shots = ARTIFACTS / "screenshots"
    shutil.rmtree(shots, ignore_errors=True)
    shots.mkdir(parents=True)
    pages = {
        "accounts": "/",
        "account": "/accounts/1",
        "instances": "/instances",
        "tags": "/tags",
        "tag": "/tags/1?period=30d",
        "instance": f"/instances/{served.instance_id}?period=all",
        "rounds": "/runs",
        "add": "/manage",
        "sign-in": "/login",
    }
    for scheme in ("light", "dark"):
        for size, viewport in SIZES.items():
            watched = _signed_in(browser, served, viewport=viewport, color_scheme=scheme)
            for name, path in pages.items():
                watched.open(served.url + path)
                watched.page.screenshot(path=shots / f"{name}-{scheme}-{size}.png", full_page=True)
            assert watched.problems == [], (scheme, size, watched.problems)
            watched.page.close()
    assert len(list(shots.glob("*.png"))) == len(pages) * 4


def test_a_page_whose_image_did_not_load_is_a_problem(browser: Browser) -> None:
    """What ``Watched.open`` checks instead of counting the browser's own cancellations."""
    watched = Watched(browser.new_page())
    broken = "data:image/png;base64,AAAA"
    watched.open(f"data:text/html,<img src='{broken}' alt='a graph'>")
    assert watched.problems == [f"image not shown: {broken}"]
    watched.page.close()


def test_the_chart_draws_each_sample_and_follows_the_period(
    browser: Browser, served: Served
) -> None:
    """30 days: 31 points; 7 days: 8; another metric adds its own chart."""
    watched = Watched(browser.new_page())
    page = watched.page
    watched.open(f"{served.url}/accounts/1")
    assert page.evaluate("window.fedimeterCharts.followers.data[0].length") == 31
    page.click("nav.periods >> text=7d")
    page.wait_for_url("**period=7d")
    page.wait_for_function("window.fedimeterCharts && window.fedimeterCharts.followers")
    assert page.evaluate("window.fedimeterCharts.followers.data[0].length") == 8
    assert page.evaluate("'following' in window.fedimeterCharts") is False
    page.check("input[value=following]")
    assert page.evaluate("window.fedimeterCharts.following.data[0].length") == 8
    assert page.is_visible("figure[data-metric=following]")
    page.fill("#from", "2026-01-20")
    page.fill("#to", "2026-01-24")
    page.click("nav.periods form button")
    page.wait_for_url("**from=2026-01-20**")
    page.wait_for_function("window.fedimeterCharts && window.fedimeterCharts.followers")
    assert page.evaluate("window.fedimeterCharts.followers.data[0].length") == 5
    assert watched.problems == []


def test_adding_and_removing_accounts_through_the_forms(browser: Browser, served: Served) -> None:
    """Sign in, add a handle, see it listed; remove it after the confirmation page."""
    watched = _signed_in(browser, served)
    page = watched.page
    watched.open(f"{served.url}/manage")
    page.fill("#handles", f"@{served.newcomer}")
    page.click("form.stacked button[type=submit]")
    page.wait_for_selector("#result-title")
    assert "1 added" in page.inner_text("#result-title")
    watched.open(f"{served.url}/?q=newcomer")
    assert page.locator("td.num").first.inner_text() == "—"  # tracked, not measured yet
    watched.follow("a.name")
    watched.follow("text=Remove this account")
    page.wait_for_selector("h1:has-text('Remove')")
    page.check("input[name=purge][value=yes]")
    page.click("button.danger")
    page.wait_for_selector("text=is no longer tracked")
    watched.open(f"{served.url}/?q=newcomer")
    assert "No account matches" in page.inner_text("main")
    assert watched.problems == []


def test_without_the_api_token_nothing_can_be_changed(browser: Browser, served: Served) -> None:
    """A visitor sees no way to change things, and a forged form changes nothing."""
    watched = Watched(browser.new_page())
    page = watched.page
    watched.open(served.url + "/")
    assert page.locator("nav >> text=Add").count() == 0
    before = page.locator("tbody tr").count()
    watched.open(served.url + "/manage")
    assert page.url.startswith(f"{served.url}/login?next=")
    watched.open(served.url + "/accounts/1/remove")
    assert page.url.startswith(f"{served.url}/login?next=")
    forged = page.request.post(
        f"{served.url}/accounts/1/remove", form={"purge": "yes"}, max_redirects=0
    )
    assert forged.status == 303
    watched.open(served.url + "/")
    assert page.locator("tbody tr").count() == before


UNLABELLED = """
[...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
  .filter((e) => !e.labels || e.labels.length === 0)
  .map((e) => e.name || e.id || e.outerHTML)
"""


def test_keyboard_and_screen_reader_basics(browser: Browser, served: Served) -> None:
    """Tab first reaches "Skip to content"; every field has a label, every chart a name."""
    watched = _signed_in(browser, served)
    page = watched.page
    for path in ("/", "/accounts/1", f"/instances/{served.instance_id}", "/manage", "/runs"):
        watched.open(served.url + path)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content", path
        page.keyboard.press("Enter")
        # Playwright learns of a fragment navigation by an event: wait for it, not read at once.
        page.wait_for_url("**#main", timeout=5_000)
        assert page.evaluate("location.hash") == "#main", path
        assert page.evaluate(UNLABELLED) == [], path
        unnamed = page.evaluate(
            "[...document.querySelectorAll('[role=img]')].filter((e) => !e.getAttribute"
            "('aria-label')).length"
        )
        assert unnamed == 0, path
    # Sorting from the keyboard: focus a column heading's link and press Enter.
    watched.open(served.url + "/")
    page.focus("thead th >> text=Posts")
    page.keyboard.press("Enter")
    page.wait_for_url("**sort=statuses**")
    assert watched.problems == []
