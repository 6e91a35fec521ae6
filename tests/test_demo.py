"""``fedimeter demo``: a week of the simulated fediverse, with everything fedimeter measures.

The demo's week is scripted (demo._week): erin is suspended and dave loses a fifth of his
followers mid-week, the flaky server is down on Friday and Saturday, carol passes 50,000
followers on Saturday, #caturday surges on Saturday, and Alice answers Bob every other day.
These tests hold the demo to what it promises a new user: each of those shows, once.
"""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from fedimeter.demo import DemoResult, run_demo


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> DemoResult:
    """One run of the demo's 7 days."""
    database = tmp_path_factory.mktemp("demo") / "demo.sqlite3"
    return asyncio.run(run_demo(database))


def test_every_round_measures_every_account_it_can(week: DemoResult) -> None:
    """Seven rounds; erin suspended from Thursday, grace's server down Friday and Saturday."""
    measured = [(r.run.accounts_measured, r.run.accounts_failed) for r in week.rounds]
    assert measured == [(7, 0), (7, 0), (7, 0), (6, 0), (5, 1), (5, 1), (6, 0)]
    assert [o.account is not None for o in week.added] == [True] * 7


def test_each_event_of_the_week_fires_one_alert(week: DemoResult) -> None:
    """Four things happen, four alerts, each on its day and posted as it fired."""
    fired = [(a.rule, a.subject_label.split(":")[0], a.fired_at.date()) for a in week.alerts]
    assert fired == [
        ("followers-drop", "@dave@127.0.0.1", date(2026, 1, 8)),
        ("not-measured", "@grace@127.0.0.1", date(2026, 1, 10)),
        ("followers-milestone", "@carol@127.0.0.1", date(2026, 1, 10)),
        ("hashtag-surge", "#caturday on 127.0.0.1", date(2026, 1, 11)),
    ]
    assert all([d.status for d in a.deliveries] == ["delivered"] for a in week.alerts), week.alerts
    assert "77 \u2192 62" in week.alerts[0].text
    assert "reached 50,000 followers" in week.alerts[2].text


def test_hashtags_are_stored_a_row_a_day_and_trends_recorded(week: DemoResult) -> None:
    """The week and the 7 days before it, once each; only the newest day in progress."""
    assert [t.name for t, _ in week.tags] == ["caturday", "FediTips"]
    for _, days in week.tags:
        assert [d.day for d in days] == [date(2025, 12, 30 + i) for i in range(2)] + [
            date(2026, 1, i) for i in range(1, 12)
        ]
        assert [d.complete for d in days] == [True] * 12 + [False]
    caturday = {d.day: d.uses for d in week.tags[0][1]}
    assert caturday[date(2026, 1, 10)] > 4 * caturday[date(2026, 1, 9)]  # a Saturday
    assert [t.name for t in week.trends] == ["caturday", "FediTips", "photography", "gardening"]


def test_alices_engagement_counts_her_replies_to_bob(week: DemoResult) -> None:
    """She answered Bob on days 2, 4 and 6: three replies; the rest are posts and boosts."""
    handle, view = week.engagement
    assert handle.startswith("@alice@")
    figures = view.figures
    assert figures.replies == 3
    assert figures.posts > 20
    assert figures.boosts > 0
    assert figures.rate is not None
    assert len(figures.best) == 3


def test_the_instances_are_measured_every_round(week: DemoResult) -> None:
    """Both tracked servers, a sample a day (the first day's is the one taken when added)."""
    assert [len(samples) for _, samples in week.instances] == [7, 7]
    assert all(s.up for _, samples in week.instances for s in samples)


def test_the_report_is_posted_without_mentions_or_hashtags(week: DemoResult) -> None:
    """The thread names accounts and tags as words: nobody notified, no use of #caturday."""
    assert week.posted.status == "delivered"
    thread = "\n".join(week.thread)
    assert thread.startswith("fedimeter report for 2026-01-05")
    assert "caturday on 127.0.0.1" in thread
    assert "#" not in thread.replace("#1", "")
    assert "@alice@" not in thread
    assert "alice@127.0.0.1" in thread
    assert "Engagement" in thread


def test_the_demo_replaces_its_database(week: DemoResult) -> None:
    """A second run into the same file starts over: two days, not nine."""
    again = asyncio.run(run_demo(week.database, days=2))
    assert len(again.rounds) == 2
    # Mid-way through two days (the second), erin is suspended: one sample.
    assert [len(samples) for _, samples in again.accounts] == [2, 2, 2, 2, 1, 2, 2]
