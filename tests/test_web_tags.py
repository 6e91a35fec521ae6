"""The dashboard's hashtag pages through the app (no browser): content, gaps, escaping, access."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from apihelpers import api, api_settings
from fedimeter.config import Settings
from fedimeter.domain.models import InstanceAddress
from fedimeter.domain.tags import TagDay, TagName, TagReading, TrendingTag, parse_tag_name
from fedimeter.storage.database import Database
from fedimeter.storage.tags import TagDayRecord, TagRecord, TagStore
from fedimeter.web.tagview import DayRow, WeekTotal, day_rows, week_total

NOW = datetime(2026, 3, 9, 15, 0, tzinfo=UTC)
TODAY = NOW.date()
SOCIAL = InstanceAddress("social.example")
OTHER = InstanceAddress("other.example")
TOKEN = "a-write-token-for-tag-pages-0123"
READ = "a-read-token-for-tag-pages-0123"
HOSTILE = '<script>alert("x")</script>'


def day(back: int, uses: int, accounts: int, *, complete: bool = True) -> TagDay:
    """``back`` days before today."""
    return TagDay(TODAY - timedelta(days=back), uses, accounts, complete)


async def seed(db: Database) -> tuple[TagRecord, TagRecord]:
    """#Caturday on social.example (day 3 back never answered, today so far) and on other.example.

    The one on other.example was last read two days ago and has failed twice since.
    """
    store = TagStore(db)
    social = await store.track(SOCIAL, parse_tag_name("Caturday"), NOW - timedelta(days=10))
    days = tuple(day(b, 100 + b, 40 + b) for b in range(8, 0, -1) if b != 3)
    reading = TagReading("Caturday", "https://social.example/tags/caturday", days)
    await store.store(social.id, reading, NOW - timedelta(hours=1))
    newest = (day(1, 101, 41), day(0, 9, 4, complete=False))
    await store.store(social.id, TagReading("Caturday", reading.url, newest), NOW)
    other = await store.track(OTHER, parse_tag_name("caturday"), NOW - timedelta(days=5))
    old = (day(4, 5, 3), day(3, 6, 3), day(2, 2, 1, complete=False))
    await store.store(other.id, TagReading("caturday", None, old), NOW - timedelta(days=2))
    for _ in range(2):
        await store.record_failure(other.id, "unavailable", "other.example answered 503", NOW)
    return await store.get(social.id), await store.get(other.id)


def _cells(html: str, tag_id: int) -> list[str]:
    """The text of the cells of one tag's row on the hashtags page."""
    row = re.search(
        rf'<tr>\s*<th [^>]*><a class="name" href="/tags/{tag_id}">.*?</tr>', html, re.DOTALL
    )
    assert row is not None, html
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row[0], re.DOTALL)
    return [" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in cells]


async def test_the_hashtags_page_lists_each_tag_on_each_instance(
    db: Database, settings: Settings
) -> None:
    """Last full day, uses, accounts, today so far, the week (with its gaps said), the state."""
    social, other = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        page = http.get("/tags")
    assert page.status_code == 200
    assert "default-src 'none'" in page.headers["content-security-policy"]
    # #Caturday and #caturday are one hashtag (one key), tracked on two instances.
    assert "1 hashtag, tracked 2 times, on 2 instances." in page.text
    assert _cells(page.text, social.id) == [
        "#Caturday on social.example",
        "2026-03-08",
        "101 on 2026-03-08",  # the day is shown with the uses on a phone only
        "41",
        "9",
        "625 (6 of 7 days)",  # 107+106+105+104+102+101: the 6th of March was not answered
        "ok",
    ]
    assert _cells(page.text, other.id) == [
        "#caturday on other.example",
        "2026-03-06",
        "6 on 2026-03-06",
        "3",
        "2 on 2026-03-07",  # not read since: not today's
        "11 (2 of 7 days)",
        "failing the last 2 reads failed: other.example answered 503",
    ]
    assert page.text.index(f'href="/tags/{other.id}"') < page.text.index(
        f'href="/tags/{social.id}"'
    )


async def test_the_hashtags_page_counts_hashtags_not_rows(db: Database, settings: Settings) -> None:
    """Two hashtags in three rows: one is tracked on two instances ("7 hashtags" counted rows)."""
    await seed(db)
    await TagStore(db).track(SOCIAL, parse_tag_name("FediTips"), NOW)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        text = http.get("/tags").text
        assert "2 hashtags, tracked 3 times, on 2 instances." in text
        assert "1 hashtag on 1 instance." in http.get("/tags", params={"q": "feditips"}).text


async def test_the_hashtags_page_shows_each_recorded_trending_list(
    db: Database, settings: Settings
) -> None:
    """The newest list of each instance, by rank, tracked tags linked, names escaped.

    An instance whose list is recorded but not read yet says so; a search hides the lists.
    """
    social, _ = await seed(db)
    store = TagStore(db)
    social_id, _ = await store.track_trends(SOCIAL, NOW)
    await store.track_trends(InstanceAddress("quiet.example"), NOW)
    older = [TrendingTag(1, "Dogs", TODAY, 1, 1)]
    await store.store_trends(social_id, NOW - timedelta(days=1), older)
    newest = [
        TrendingTag(1, "caturday", TODAY, 320, 120),
        TrendingTag(2, HOSTILE, TODAY, 1, 1),
        *(TrendingTag(rank, f"tag{rank}", TODAY, 10, 5) for rank in range(3, 13)),
    ]
    await store.store_trends(social_id, NOW, newest)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        page = http.get("/tags").text
        searched = http.get("/tags", params={"q": "catur"}).text
    assert 'id="trending-title">Trending</h2>' in page
    lists = re.findall(r'<ol class="trending-list">(.*?)</ol>', page, re.DOTALL)
    assert len(lists) == 1
    items = [
        " ".join(re.sub(r"<[^>]+>", " ", i).split())
        for i in re.findall(r"<li>(.*?)</li>", lists[0], re.DOTALL)
    ]
    assert items[0] == "#caturday 320 uses, 120 accounts"
    assert items[1] == "#&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; 1 use, 1 account"
    assert len(items) == 10  # of 12: the API has them all
    assert "#Dogs" not in page  # an older list
    assert f'<a href="/tags/{social.id}">#caturday</a>' in lists[0]  # tracked there: linked
    assert "<script>alert" not in page
    assert 'social.example <span class="muted">(2026-03-09 15:00 UTC)</span>' in page
    assert "quiet.example" in page
    assert "Nothing recorded yet: the next round reads it." in page
    assert "trending-title" not in searched


async def test_an_empty_answer_is_said_not_hidden_behind_the_last_list(
    db: Database, settings: Settings
) -> None:
    """Trends read as [] after a list: said with when; never read: "nothing recorded yet".

    One instance answered [] from its first reading, one stopped trending after a list.
    """
    await seed(db)
    store = TagStore(db)
    stopped, _ = await store.track_trends(SOCIAL, NOW - timedelta(days=1))
    await store.store_trends(
        stopped, NOW - timedelta(days=1), [TrendingTag(1, "Dogs", TODAY, 1, 1)]
    )
    await store.store_trends(stopped, NOW, [])
    quiet, _ = await store.track_trends(InstanceAddress("quiet.example"), NOW)
    await store.store_trends(quiet, NOW, [])
    await store.track_trends(InstanceAddress("new.example"), NOW)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        page = " ".join(http.get("/tags").text.split())
    said = (
        "The server answered an empty list at 2026-03-09 15:00 UTC: trends turned off there,"
        " or nothing trending."
    )
    assert page.count(said) == 2  # social (with its last list after it) and quiet
    assert said + " Its last list:" in page
    assert "#Dogs" in page
    assert page.count("Nothing recorded yet: the next round reads it.") == 1  # new.example


async def test_the_navigation_links_to_the_hashtags(db: Database, settings: Settings) -> None:
    """Every page has the link; on the hashtag pages it is the current one."""
    social, _ = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        accounts = http.get("/").text
        tags = http.get("/tags").text
        one = http.get(f"/tags/{social.id}").text
    assert '<a href="/tags">Hashtags</a>' in accounts
    for html in (tags, one):
        assert '<a href="/tags" aria-current="page">Hashtags</a>' in html


async def test_finding_a_tag_by_name_or_instance(db: Database, settings: Settings) -> None:
    """The search box matches the name (with or without #) and the instance."""
    social, other = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        by_host = http.get("/tags", params={"q": "OTHER"}).text
        by_name = http.get("/tags", params={"q": "#catur"}).text
        nothing = http.get("/tags", params={"q": "dogs"}).text
    assert f'href="/tags/{other.id}"' in by_host
    assert f'href="/tags/{social.id}"' not in by_host
    assert by_name.count('<a class="name" href="/tags/') == 2
    assert "No hashtag matches" in nothing


async def test_a_tag_page_shows_its_graph_its_days_and_its_gaps(
    db: Database, settings: Settings
) -> None:
    """The graph (dark too), newest day first, the gap as not recorded, today as so far."""
    social, other = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        page = http.get(f"/tags/{social.id}", params={"period": "7d"})
        graph = re.search(r'<img src="([^"]+)"', page.text)
        assert graph is not None
        image = http.get(graph[1].replace("&amp;", "&"))
    assert page.status_code == 200
    html = page.text
    assert "<title>#Caturday on social.example · fedimeter</title>" in html
    span = "since=2026-03-02&amp;until=2026-03-09"
    assert f'<img src="/api/v1/tags/{social.id}/graph.svg?{span}"' in html
    assert (
        f'<source srcset="/api/v1/tags/{social.id}/graph.svg?{span}&amp;theme=dark"'
        ' media="(prefers-color-scheme: dark)">'
    ) in html
    narrow = f"{span}&amp;theme=dark&amp;width=400&amp;height=360"
    assert f'srcset="/api/v1/tags/{social.id}/graph.svg?{narrow}"' in html
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/svg+xml"
    days = re.findall(r'<tr(?: class="gap")?><th scope="row">(\d{4}-\d\d-\d\d)</th>', html)
    assert days == [(TODAY - timedelta(days=n)).isoformat() for n in range(8)]
    gap = re.search(r'<tr class="gap"><th scope="row">([\d-]+)</th>.*?</tr>', html)
    assert gap is not None
    assert gap[1] == "2026-03-06"
    assert "not recorded" in gap[0]
    today = re.search(r'<th scope="row">2026-03-09</th>(.*?)</tr>', html)
    assert today is not None
    assert "so far" in today[1]
    assert "<dd>101 uses</dd>" in html
    assert "Today so far" in html
    assert f'<a href="/tags/{other.id}">other.example</a>' in html
    assert f"/api/v1/tags/{social.id}/graph.svg?{span}&amp;compare=true" in html
    assert f"/api/v1/tags/{social.id}/history?{span}&amp;format=csv" in html
    assert 'href="https://social.example/tags/caturday"' in html


async def test_a_tag_not_read_today_says_which_day_its_figures_are(
    db: Database, settings: Settings
) -> None:
    """Its day in progress is an older one: named, not called today."""
    _, other = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        html = http.get(f"/tags/{other.id}", params={"period": "all"}).text
    assert "2026-03-07, incomplete (read until 15:00 UTC)" in html
    assert "Today so far" not in html
    assert '<span class="badge failing">failing</span> the last 2 reads failed' in html
    assert "its page on" not in html  # the server gave no URL


async def test_a_tag_not_read_lately_shows_the_period_up_to_its_last_day(
    db: Database, settings: Settings
) -> None:
    """As an account's page ends at its newest sample: 7 days up to the 7th, not today."""
    _, other = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        html = http.get(f"/tags/{other.id}", params={"period": "7d"}).text
    days = re.findall(r"<tr[^>]*>\s*<th[^>]*>(\d{4}-\d\d-\d\d)</th>", html)
    assert days[0] == "2026-03-07"  # the newest day read, not the 9th
    assert days[-1] == "2026-02-28"
    assert "2026-02-28 to 2026-03-07" in html


async def test_remote_text_on_the_hashtag_pages_is_escaped(
    db: Database, settings: Settings
) -> None:
    """Names, errors and URLs come from servers: never markup, never a script link."""
    store = TagStore(db)
    # A server's spelling of another key is refused, so the hostile name is stored by tracking.
    tag = await store.track(SOCIAL, TagName(HOSTILE, "caturday"), NOW)
    reading = TagReading(
        HOSTILE, "javascript:alert(1)", (day(1, 5, 2), day(0, 1, 1, complete=False))
    )
    await store.store(tag.id, reading, NOW)
    await store.record_failure(tag.id, "bad_response", f"social.example sent {HOSTILE}", NOW)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        pages = [http.get("/tags").text, http.get(f"/tags/{tag.id}").text]
    escaped = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;"
    for html in pages:
        assert "<script>alert" not in html
        assert f"#{escaped}" in html
        assert f"social.example sent {escaped}" in html
        assert "javascript:" not in html
    assert f"<title>#{escaped} on social.example · fedimeter</title>" in pages[1]


async def test_unknown_tags_and_bad_dates(db: Database, settings: Settings) -> None:
    """No such tag: 404 page; custom dates that cannot be read: 422 with a sentence."""
    social, _ = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        missing = http.get("/tags/999")
        bad = http.get(f"/tags/{social.id}", params={"from": "2026-13-01"})
        backwards = http.get(
            f"/tags/{social.id}", params={"from": "2026-03-05", "to": "2026-03-01"}
        )
    assert missing.status_code == 404
    assert "No tracked hashtag has the id 999." in missing.text
    assert bad.status_code == backwards.status_code == 422
    assert "Dates are written 2026-03-01." in bad.text
    assert "The start is after the end." in backwards.text


async def test_a_custom_period_bounds_the_days_and_the_graph(
    db: Database, settings: Settings
) -> None:
    """From and to: only those days, in the table and in the graph's address."""
    social, _ = await seed(db)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        html = http.get(
            f"/tags/{social.id}", params={"from": "2026-03-04", "to": "2026-03-06"}
        ).text
    days = re.findall(r'<tr(?: class="gap")?><th scope="row">(\d{4}-\d\d-\d\d)</th>', html)
    assert days == ["2026-03-06", "2026-03-05", "2026-03-04"]
    assert "graph.svg?since=2026-03-04&amp;until=2026-03-06" in html


async def test_with_a_read_token_the_pages_need_signing_in(
    db: Database, settings: Settings
) -> None:
    """Both pages send a visitor without a session to sign in first."""
    social, _ = await seed(db)
    config = api_settings(settings, api_token=TOKEN, read_token=READ)
    with api(config, clock=lambda: NOW, base_url="https://testserver") as http:
        for path in ("/tags", f"/tags/{social.id}"):
            away = http.get(path, follow_redirects=False)
            assert away.status_code == 303, path
            assert away.headers["location"].startswith("/login?next=%2Ftags")


async def test_no_tag_tracked_says_how_to_add_one(settings: Settings) -> None:
    """An empty list explains itself."""
    with api(api_settings(settings), clock=lambda: NOW) as http:
        html = http.get("/tags").text
    assert "No hashtag is tracked yet" in html
    assert "fedimeter tag add" in html


# --- the pure pieces ----------------------------------------------------------------------------


def record(back: int, uses: int, *, complete: bool = True) -> TagDayRecord:
    """A stored day ``back`` days before today."""
    return TagDayRecord(1, TODAY - timedelta(days=back), uses, uses // 2, complete, NOW)


def test_day_rows_fill_gaps_with_rows_without_figures() -> None:
    """Newest first; a day not stored has no figures; the limit keeps the newest."""
    days = [record(4, 40), record(2, 20), record(0, 3, complete=False)]
    rows = day_rows(days, TODAY - timedelta(days=4), TODAY, limit=10, today=TODAY)
    assert rows == [
        DayRow(TODAY, 3, 1, complete=False, in_progress=True, read_at=NOW),
        DayRow(TODAY - timedelta(days=1)),
        DayRow(TODAY - timedelta(days=2), 20, 10, complete=True, read_at=NOW),
        DayRow(TODAY - timedelta(days=3)),
        DayRow(TODAY - timedelta(days=4), 40, 20, complete=True, read_at=NOW),
    ]
    assert [r.recorded for r in rows] == [True, False, True, False, True]
    assert [r.note for r in rows] == ["so far", "not recorded", "", "not recorded", ""]
    assert [r.day for r in day_rows(days, date.min, TODAY, limit=2, today=TODAY)] == [
        TODAY,
        TODAY - timedelta(days=1),
    ]
    assert [r.day for r in day_rows([], date.min, date(1, 1, 2), limit=5, today=TODAY)] == [
        date(1, 1, 2),
        date(1, 1, 1),
    ]
    assert day_rows(days, TODAY, TODAY - timedelta(days=1), limit=5, today=TODAY) == []


def test_an_old_incomplete_day_is_not_in_progress() -> None:
    """A day read once mid-day before the server went away stays incomplete, not "so far".

    Only today can still be counting; an older day stopped where it was last read, and says
    when — even the newest stored one, when the server has not answered since.
    """
    read = datetime(2026, 3, 4, 3, 0, tzinfo=UTC)
    left = TagDayRecord(1, TODAY - timedelta(days=5), 2, 2, complete=False, updated_at=read)
    days = [left, record(1, 10), record(0, 4, complete=False)]
    rows = day_rows(days, TODAY - timedelta(days=5), TODAY, limit=10, today=TODAY)
    notes = {r.day: r.note for r in rows}
    assert notes[TODAY] == "so far"
    assert notes[TODAY - timedelta(days=5)] == "incomplete: read until 03:00 UTC"
    assert notes[TODAY - timedelta(days=3)] == "not recorded"
    # The server went quiet after that day: its newest day is no longer in progress either.
    stale = day_rows([left], TODAY - timedelta(days=5), TODAY, limit=10, today=TODAY)
    assert stale[-1].note == "incomplete: read until 03:00 UTC"


@pytest.mark.parametrize(
    ("days", "total"),
    [
        ([record(b, 10) for b in range(1, 8)], WeekTotal(70, 7)),
        ([record(b, 10) for b in range(1, 9)], WeekTotal(70, 7)),  # the 8th day back is out
        ([record(1, 10), record(5, 2), record(0, 99, complete=False)], WeekTotal(12, 2)),
        ([record(0, 99, complete=False)], None),
        ([], None),
    ],
    ids=["a whole week", "older days left out", "gaps and today left out", "only today", "none"],
)
def test_week_total_adds_the_complete_days_of_the_last_seven(
    days: list[TagDayRecord], total: WeekTotal | None
) -> None:
    """Seven days before today, complete ones only; how many it adds is kept."""
    assert week_total(days, TODAY) == total
    if total is not None:
        assert total.whole == (total.days == 7)
