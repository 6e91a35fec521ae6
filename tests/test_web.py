"""The dashboard's pages through the app (no browser): content, escaping, sessions, CSRF."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from apihelpers import REMOTE, api, api_settings
from fedimeter.config import Settings
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.instance_tracking import add_instances
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.records import NewSample, RunProgress
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import accounts
from simhelpers import sim_client

NOW = datetime(2026, 3, 31, 3, 0, 30, tzinfo=UTC)
DAY = timedelta(days=1)
TOKEN = "a-write-token-0123456789"
READ = "a-read-token-0123456789"


async def _seed(repo: Repository, n: int = 3, display: str = "") -> None:
    """``n`` accounts with 31 days of samples; user0 gains 2 followers a day, user1 loses 1."""
    run, _ = await repo.start_run(NOW - 40 * DAY, "test:1", lambda _r: False)
    for i in range(n):
        resolved = ResolvedAccount(
            handle=Handle(f"user{i}", "example.org"),
            home=InstanceAddress("social.example" if i % 2 == 0 else "other.example"),
            remote_id=str(i),
            display_name=display if (display and i == 0) else f"User {i}",
        )
        account = await repo.add_account(resolved, NOW - 40 * DAY)
        slope = {0: 2, 1: -1}.get(i, 0)
        samples = [
            NewSample(account.id, NOW - d * DAY, 100 + slope * (30 - d), 10, 500, None)
            for d in range(31)
        ]
        await repo.commit_batch(run.id, NOW, RunProgress(), samples=samples)
    await repo.finish_run(run.id, NOW, RunProgress())


#: The session cookie is Secure: browsers send it on https and on loopback, httpx on https.
HTTPS = "https://testserver"


def _settings(settings: Settings, **overrides: object) -> Settings:
    return api_settings(settings, **overrides)


async def test_the_overview_shows_counts_changes_and_sparklines(
    repo: Repository, settings: Settings
) -> None:
    """Latest followers, coloured changes over 1/7/30 days, a sparkline per account."""
    await _seed(repo)
    with api(_settings(settings), clock=lambda: NOW) as http:
        page = http.get("/")
    assert page.status_code == 200
    html = page.text
    assert "user0@example.org" in html
    assert '<span class="up"><span class="sr">up </span>+2</span>' in html  # 1 day
    assert "+14" in html  # 7 days
    assert "+60" in html  # 30 days
    assert '<span class="down"><span class="sr">down </span>-7</span>' in html
    assert html.count('<svg class="spark') == 3
    assert "default-src 'none'" in page.headers["content-security-policy"]
    cookie = page.headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=strict"):
        assert flag.lower() in cookie.lower()


async def test_remote_text_is_escaped(repo: Repository, settings: Settings) -> None:
    """A display name is text a remote server controls: never markup."""
    await _seed(repo, n=1, display='<script>alert("x")</script>')
    with api(_settings(settings), clock=lambda: NOW) as http:
        html = http.get("/").text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


async def test_sorting_filtering_and_pages(repo: Repository, settings: Settings) -> None:
    """Column links sort; the search box and server list filter; pages move on."""
    await _seed(repo, n=7)
    with api(_settings(settings), clock=lambda: NOW) as http:
        by_name = http.get("/", params={"sort": "account", "order": "asc", "per": 25}).text
        handles = re.findall(r'class="handle">([^<]+)<', by_name)
        assert handles == sorted(handles)
        assert len(handles) == 7
        found = http.get("/", params={"q": "USER3"}).text
        assert re.findall(r'class="handle">([^<]+)<', found) == ["user3@example.org"]
        assert "1 of 7 accounts match" in found
        other = http.get("/", params={"server": "other.example"}).text
        assert len(re.findall(r'class="handle">', other)) == 3
        first = http.get("/", params={"per": 25, "sort": "followers"}).text
        assert re.findall(r'class="handle">([^<]+)<', first)[0] == "user0@example.org"
        many = http.get("/", params={"per": 999}).text  # not a choice: the default
        assert 'value="50" selected' in many


async def test_reads_need_signing_in_when_a_read_token_is_set(
    repo: Repository, settings: Settings
) -> None:
    """With a read token: redirected to sign in; a wrong token is refused; the right one works."""
    await _seed(repo, n=1)
    config = _settings(settings, api_token=TOKEN, read_token=READ)
    with api(config, clock=lambda: NOW, base_url=HTTPS) as http:
        away = http.get("/?q=user", follow_redirects=False)
        assert away.status_code == 303
        assert away.headers["location"] == "/login?next=%2F%3Fq%3Duser"
        form = http.get("/login?next=/")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        wrong = http.post("/login", data={"token": "nope", "csrf": csrf[1], "next": "/"})
        assert wrong.status_code == 401
        assert "neither the API token nor the read token" in wrong.text
        right = http.post(
            "/login",
            data={"token": READ, "csrf": csrf[1], "next": "/?q=user"},
            follow_redirects=False,
        )
        assert right.status_code == 303
        assert right.headers["location"] == "/?q=user"
        page = http.get("/")
        assert page.status_code == 200
        assert "read only" in page.text


async def test_forms_need_their_csrf_token_and_the_same_site(settings: Settings) -> None:
    """No token, a token of another session, or another site's Origin: refused."""
    with api(_settings(settings, api_token=TOKEN), base_url=HTTPS) as http:
        http.get("/login")
        assert http.post("/login", data={"token": TOKEN}).status_code == 403
        assert http.post("/login", data={"token": TOKEN, "csrf": "0" * 64}).status_code == 403
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
        assert csrf is not None
        other_site = http.post(
            "/login",
            data={"token": TOKEN, "csrf": csrf[1]},
            headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
        )
        assert other_site.status_code == 403
        ok = http.post("/login", data={"token": TOKEN, "csrf": csrf[1]}, follow_redirects=False)
        assert ok.status_code == 303


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "\\\\evil", "x"])
def test_sign_in_never_redirects_off_site(settings: Settings, target: str) -> None:
    """``next`` is a path on this site or nothing."""
    with api(_settings(settings, api_token=TOKEN), client=REMOTE, base_url=HTTPS) as http:
        csrf = re.search(r'name="csrf" value="([^"]+)"', http.get("/login").text)
        assert csrf is not None
        done = http.post(
            "/login",
            data={"token": TOKEN, "csrf": csrf[1], "next": target},
            follow_redirects=False,
        )
    assert done.status_code == 303
    assert done.headers["location"] == "/"


def test_static_files_and_the_vendored_chart_library(settings: Settings) -> None:
    """The stylesheet and uPlot come from this server, with uPlot's licence beside it."""
    with api(_settings(settings)) as http:
        assert http.get("/static/app.css").status_code == 200
        script = http.get("/static/vendor/uplot/uPlot.iife.min.js")
        assert script.status_code == 200
        assert "uPlot" in script.text
        assert "MIT" in http.get("/static/vendor/uplot/LICENSE").text
        assert http.get("/static/../pyproject.toml").status_code == 404


def test_an_empty_database_says_how_to_start(settings: Settings) -> None:
    """No account yet: a sentence with the command, not an empty table."""
    with api(_settings(settings)) as http:
        html = http.get("/").text
    assert "No account is tracked yet" in html
    assert "<table" not in html


def _chart(html: str) -> dict[str, list[int]]:
    found = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert found is not None
    data: dict[str, list[int]] = json.loads(found[1])
    return data


async def test_an_accounts_page_charts_the_chosen_period(
    repo: Repository, settings: Settings
) -> None:
    """The chart's points follow the period links and custom dates; bad dates say why."""
    await _seed(repo, n=1)
    with api(_settings(settings), clock=lambda: NOW) as http:
        month = http.get("/accounts/1")
        assert month.status_code == 200
        data = _chart(month.text)
        assert len(data["t"]) == 31  # the period's 30 days, both ends included
        assert data["followers"][-1] == 160
        assert "+60" in month.text  # the period's report: 100 -> 160
        week = _chart(http.get("/accounts/1?period=7d").text)
        assert len(week["t"]) == 8
        assert len(_chart(http.get("/accounts/1?period=all").text)["t"]) == 31
        custom = http.get("/accounts/1", params={"from": "2026-03-20", "to": "2026-03-25"})
        assert [datetime.fromtimestamp(t, UTC).day for t in _chart(custom.text)["t"]] == [
            20,
            21,
            22,
            23,
            24,
            25,
        ]
        bad = http.get("/accounts/1", params={"from": "March"})
        assert bad.status_code == 422
        assert "Dates are written 2026-03-01." in bad.text
        backwards = http.get("/accounts/1", params={"from": "2026-03-25", "to": "2026-03-20"})
        assert "The start is after the end." in backwards.text
        for far in ({"from": "0001-01-01", "to": "0001-01-02"}, {"to": "9999-12-31"}):
            # Before anything was measured, or where a period's last moment leaves the
            # calendar: said, not a server error.
            refused = http.get("/accounts/1", params=far)
            assert refused.status_code == 422, far
            assert "Dates run from 1970-01-01 to 2999-12-31." in refused.text
        links = month.text
        assert (
            "/api/v1/accounts/1/samples?since=2026-03-01&amp;until=2026-03-31&amp;format=csv"
            in links
        )
        assert "/api/v1/accounts/1/graph.svg?" in links
        missing = http.get("/accounts/999")
        assert missing.status_code == 404
        assert "No tracked account has the id 999." in missing.text


async def test_all_of_an_account_added_after_its_newest_sample(
    repo: Repository, settings: Settings
) -> None:
    """Samples older than the account's tracking show from the first one, not as an error.

    A database can hold them: imported, restored, or the demo's simulated clock.
    """
    await _seed(repo, n=1)
    async with repo.db.connect() as conn:
        await conn.execute(update(accounts).values(added_at=NOW + 300 * DAY))
        await conn.commit()
    with api(_settings(settings), clock=lambda: NOW + 300 * DAY) as http:
        page = http.get("/accounts/1?period=all")
    assert page.status_code == 200
    assert len(_chart(page.text)["t"]) == 31
    assert "+60" in page.text  # the report covers the samples: 100 -> 160


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None
    return found[1]


async def test_adding_accounts_from_the_form_and_a_follows_export(settings: Settings) -> None:
    """Handles typed and a follows CSV are tracked; each line says what happened."""
    world = SimFediverse(seed=7)
    home = world.add_instance("home", rate_limit=None)
    alice, bob, carol = (home.add_account(n) for n in ("alice", "bob", "carol"))
    async with world.serving():
        export = f"Account address,Show boosts\n{bob.acct},true\n{carol.acct},true\n"
        with api(_settings(settings), base_url=HTTPS) as http:
            csrf = _csrf(http.get("/manage").text)
            done = await asyncio.to_thread(
                http.post,
                "/manage/add",
                data={"csrf": csrf, "handles": f"@{alice.acct}, nobody@{home.domain}"},
                files={"follows": ("following_accounts.csv", export, "text/csv")},
            )
            assert done.status_code == 200
            assert "3 added, 1 failed" in done.text
            assert f"nobody@{home.domain}:" in done.text
            listed = http.get("/").text
            assert all(a.acct.split("@")[0] in listed for a in (alice, bob, carol))
            again = await asyncio.to_thread(
                http.post, "/manage/add", data={"csrf": csrf, "handles": f"@{bob.acct}"}
            )
            assert "0 added, 1 already tracked" in again.text
            nothing = http.post("/manage/add", data={"csrf": csrf, "handles": " , "})
            assert nothing.status_code == 422
            assert "Type at least one handle" in nothing.text
            forged = http.post("/manage/add", data={"handles": "@x@example.org"})
            assert forged.status_code == 403


async def test_removing_asks_first_and_keeps_or_deletes_the_history(
    repo: Repository, settings: Settings
) -> None:
    """A confirmation page; then untracked with history, or deleted with it."""
    await _seed(repo, n=2)
    with api(_settings(settings), clock=lambda: NOW, base_url=HTTPS) as http:
        assert 'href="/accounts/1/remove"' in http.get("/accounts/1").text
        confirm = http.get("/accounts/1/remove")
        assert "Remove @user0@example.org?" in confirm.text
        assert "31 samples" in confirm.text
        csrf = _csrf(confirm.text)
        assert http.post("/accounts/1/remove", data={}).status_code == 403
        kept = http.post("/accounts/1/remove", data={"csrf": csrf})
        assert "its history is kept" in kept.text
        gone = http.post("/accounts/2/remove", data={"csrf": csrf, "purge": "yes"})
        assert "its 31 samples were deleted" in gone.text
        assert "No account is tracked yet" in http.get("/").text
    assert len(await repo.samples(1, None, None)) == 31
    assert await repo.samples(2, None, None) == []


async def test_without_the_api_token_nothing_can_be_changed(
    repo: Repository, settings: Settings
) -> None:
    """From another machine, not signed in: every change leads to signing in, none happens."""
    await _seed(repo, n=1)
    config = _settings(settings, api_token=TOKEN)
    with api(config, clock=lambda: NOW, client=REMOTE, base_url=HTTPS) as http:
        page = http.get("/")
        assert 'href="/manage"' not in page.text
        assert "/remove" not in http.get("/accounts/1").text
        csrf = _csrf(http.get("/login").text)
        for path, data in (
            ("/manage/add", {"csrf": csrf, "handles": "@x@example.org"}),
            ("/accounts/1/remove", {"csrf": csrf, "purge": "yes"}),
        ):
            answer = http.post(path, data=data, follow_redirects=False)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/login?next=")
        assert http.get("/manage", follow_redirects=False).status_code == 303
        assert http.get("/accounts/1/remove", follow_redirects=False).status_code == 303
    # Signed in with the read token: still no change.
    config = _settings(settings, api_token=TOKEN, read_token=READ)
    with api(config, clock=lambda: NOW, client=REMOTE, base_url=HTTPS) as http:
        csrf = _csrf(http.get("/login").text)
        signed = http.post("/login", data={"token": READ, "csrf": csrf}, follow_redirects=False)
        assert signed.status_code == 303
        csrf = _csrf(http.get("/").text)  # the sign-out form of the new session
        refused = http.post(
            "/accounts/1/remove", data={"csrf": csrf, "purge": "yes"}, follow_redirects=False
        )
        assert refused.status_code == 303
        assert refused.headers["location"].startswith("/login?next=")
    assert len(await repo.samples(1, None, None)) == 31
    assert (await repo.get_account(1)).state.value == "active"


async def test_the_runs_page_lists_rounds_and_starts_one(
    repo: Repository, settings: Settings
) -> None:
    """Rounds with their figures; the button starts a round (with its CSRF token only)."""
    run, _ = await repo.start_run(NOW - DAY, "test:1", lambda _r: False)
    await repo.finish_run(run.id, NOW - DAY, RunProgress(requests=12, rate_limited=0))
    with api(_settings(settings), clock=lambda: NOW, base_url=HTTPS) as http:
        page = http.get("/runs")
        assert page.status_code == 200
        assert '<span class="badge ok">finished</span>' in page.text
        assert '<td class="num">12</td>' in page.text
        assert http.post("/runs", data={}).status_code == 403
        started = http.post("/runs", data={"csrf": _csrf(page.text)}, follow_redirects=False)
        assert started.status_code == 303
        assert started.headers["location"] == "/runs?started=2"
        assert "Round 2 started" in http.get(started.headers["location"]).text
    assert len(await repo.list_runs()) == 2


async def test_instances_list_and_page(settings: Settings) -> None:
    """Tracked instances with their figures; an instance's charts and weekly activity."""
    world = SimFediverse(seed=8)
    home = world.add_instance("home", rate_limit=None, title="Home <b>town</b>")
    for name in ("a", "b", "c"):
        home.add_account(name)
    config = _settings(settings)
    async with world.serving(), sim_client(config, world) as client:
        db = await Database.open(config.database_url)
        try:
            added = await add_instances(
                InstanceStore(db), client, [home.base_url], default_scheme="http"
            )
        finally:
            await db.close()
        assert [a.status for a in added] == ["added"]
    with api(config) as http:
        listing = http.get("/instances")
        assert listing.status_code == 200
        assert home.domain in listing.text
        assert '<span class="badge ok">up</span>' in listing.text
        assert "mastodon 4.3.2" in listing.text
        page = http.get("/instances/1?period=all")
        assert page.status_code == 200
        data = _chart(page.text)
        assert len(data["t"]) == 1
        assert data["users"] == [3]
        weeks = re.search(r'id="weeks-data">(.*?)</script>', page.text)
        assert weeks is not None
        assert len(json.loads(weeks[1])["t"]) >= 12  # the first measurement backfills 12 weeks
        assert http.get("/instances/99").status_code == 404
        assert http.get("/instances", params={"q": "nothing-like-it"}).text.count("<tr>") == 0


def test_a_bearer_token_opens_the_pages_to_scripts(settings: Settings) -> None:
    """curl with the read token gets the page; a wrong token is sent to sign in."""
    config = _settings(settings, api_token=TOKEN, read_token=READ)
    with api(config, base_url=HTTPS) as http:
        assert http.get("/", headers={"Authorization": f"Bearer {READ}"}).status_code == 200
        wrong = http.get("/", headers={"Authorization": "Bearer nope"}, follow_redirects=False)
        assert wrong.status_code == 303


async def test_download_links_work_for_a_signed_in_browser(
    repo: Repository, settings: Settings
) -> None:
    """With a read token, the API's reads accept the dashboard's session; writes never do."""
    await _seed(repo, n=1)
    config = _settings(settings, api_token=TOKEN, read_token=READ)
    with api(config, clock=lambda: NOW, base_url=HTTPS) as http:
        assert http.get("/api/v1/accounts/1/samples?format=csv").status_code == 401
        csrf = _csrf(http.get("/login").text)
        http.post("/login", data={"token": TOKEN, "csrf": csrf})
        csv = http.get("/api/v1/accounts/1/samples?format=csv")
        assert csv.status_code == 200
        assert csv.text.count("\n") == 32  # a header and 31 samples
        assert http.get("/api/v1/accounts/1/graph.svg").status_code == 200
        assert http.delete("/api/v1/accounts/1").status_code == 401  # a session is no token
