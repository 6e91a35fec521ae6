"""Hashtags in storage, on SQLite and PostgreSQL: one row per day whatever the calls."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from fedimeter.domain.models import InstanceAddress
from fedimeter.domain.tags import TagDay, TagReading, TrendingTag, parse_tag_name
from fedimeter.errors import AlreadyTracked, NotTracked
from fedimeter.storage.database import Database
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import instances, tag_history
from fedimeter.storage.tags import TagStore
from test_storage import resolved

HOST = InstanceAddress("social.example")
OTHER = InstanceAddress("other.example")
DAY0 = date(2026, 3, 1)


def at(day: int, hour: int = 3) -> datetime:
    """``hour`` o'clock UTC on day ``day`` after DAY0."""
    return datetime(2026, 3, 1, hour, tzinfo=UTC) + timedelta(days=day)


def uses_on(day: date) -> tuple[int, int]:
    """The made-up final count of a day: uses and accounts."""
    n = (day - DAY0).days
    return 10 + n * 3, 5 + n


def answer(today: int, *, so_far: float = 0.5, name: str = "Caturday") -> TagReading:
    """What a server answers on day ``today``: 7 days, the last one ``so_far`` through."""
    days = []
    for n in range(today - 6, today + 1):
        day = DAY0 + timedelta(days=n)
        uses, accounts = uses_on(day)
        if n == today:
            uses, accounts = int(uses * so_far), int(accounts * so_far)
        days.append(TagDay(day, uses, accounts, complete=n != today))
    return TagReading(name, f"https://{HOST.authority}/tags/{name.lower()}", tuple(days))


@pytest.fixture
def store(db: Database) -> TagStore:
    """The tag store on the test database."""
    return TagStore(db)


async def test_tracking_is_per_instance_and_case_insensitive(store: TagStore) -> None:
    """One row per tag and instance: ``#CatURDAY`` on the same host is the same tag."""
    tag = await store.track(HOST, parse_tag_name("#Caturday"), at(0))
    assert (tag.name, tag.key, tag.host, tag.consecutive_failures) == (
        "Caturday",
        "caturday",
        "social.example",
        0,
    )
    with pytest.raises(AlreadyTracked, match=r"#CatURDAY is already tracked on social\.example"):
        await store.track(HOST, parse_tag_name("CatURDAY"), at(0))
    elsewhere = await store.track(OTHER, parse_tag_name("caturday"), at(0))
    assert elsewhere.id != tag.id
    assert [t.host for t in await store.find("caturday")] == ["other.example", "social.example"]
    assert [t.id for t in await store.find("caturday", "SOCIAL.example")] == [tag.id]
    assert await store.find("dogurday") == []
    assert [t.id for t in await store.tracked(HOST.authority)] == [tag.id]


async def test_daily_rounds_store_every_day_once(store: TagStore, db: Database) -> None:
    """Seven days from the first answer, then one more a day; the day in progress is finished."""
    tag = await store.track(HOST, parse_tag_name("Caturday"), at(0))
    assert await store.store(tag.id, answer(0), at(0)) == 7
    for today in range(1, 10):
        # Yesterday is finished (rewritten complete) and today is new: two rows change.
        assert await store.store(tag.id, answer(today), at(today)) == 2
    days = await store.history(tag.id)
    assert [d.day for d in days] == [DAY0 + timedelta(days=n) for n in range(-6, 10)]
    assert all(d.complete for d in days[:-1])
    assert not days[-1].complete
    for d in days[:-1]:
        assert (d.uses, d.accounts) == uses_on(d.day)
    async with db.connect() as conn:
        rows = (await conn.execute(select(func.count()).select_from(tag_history))).scalar()
    assert rows == 16


async def test_several_rounds_a_day_rewrite_only_the_day_in_progress(store: TagStore) -> None:
    """Four rounds on one day: the same seven rows, today's count growing, nothing doubled."""
    tag = await store.track(HOST, parse_tag_name("Caturday"), at(0))
    changed = [
        await store.store(tag.id, answer(3, so_far=share), at(3, hour))
        for share, hour in ((0.1, 1), (0.4, 7), (0.4, 13), (0.9, 19))
    ]
    assert changed == [7, 1, 0, 1]
    days = await store.history(tag.id)
    assert len(days) == 7
    assert (days[-1].uses, days[-1].complete) == (int(uses_on(days[-1].day)[0] * 0.9), False)


async def test_a_gap_leaves_days_absent_and_the_next_answer_fills_what_it_covers(
    store: TagStore,
) -> None:
    """Rounds on day 0 and day 10: days 1-3 were never answered and stay absent, not zero.

    The day that was in progress on day 0 is never seen again: it stays, marked incomplete.
    """
    tag = await store.track(HOST, parse_tag_name("Caturday"), at(0))
    await store.store(tag.id, answer(0), at(0))
    await store.store(tag.id, answer(10), at(10))
    days = {d.day: d for d in await store.history(tag.id)}
    stored = sorted((day - DAY0).days for day in days)
    assert stored == [*range(-6, 1), *range(4, 11)]
    assert not days[DAY0].complete
    assert days[DAY0].uses == int(uses_on(DAY0)[0] * 0.5)
    # A gap of six days misses nothing: 7 days of history cover it.
    other = await store.track(OTHER, parse_tag_name("Caturday"), at(0))
    await store.store(other.id, answer(0), at(0))
    await store.store(other.id, answer(6), at(6))
    assert [(d.day - DAY0).days for d in await store.history(other.id)] == list(range(-6, 7))
    assert all(d.complete for d in (await store.history(other.id))[:-1])


async def test_a_complete_day_is_never_rewritten(store: TagStore) -> None:
    """A server that lost its counters answers zeros for old days: the stored days stay."""
    tag = await store.track(HOST, parse_tag_name("Caturday"), at(0))
    await store.store(tag.id, answer(5), at(5))
    lost = answer(6)
    zeros = TagReading(
        lost.name,
        lost.url,
        tuple(TagDay(d.day, 0, 0, complete=d.complete) for d in lost.days),
    )
    # Day 5 was in progress: it takes the zeros (the server's word); days -1..4 stay.
    assert await store.store(tag.id, zeros, at(6)) == 2
    days = {(d.day - DAY0).days: d for d in await store.history(tag.id)}
    for n in range(-1, 5):
        assert (days[n].uses, days[n].accounts) == uses_on(DAY0 + timedelta(days=n))
    assert (days[5].uses, days[5].complete) == (0, True)


async def test_name_and_failures(store: TagStore) -> None:
    """The server's spelling replaces what was typed; failures count up until an answer."""
    tag = await store.track(HOST, parse_tag_name("caturday"), at(0))
    await store.record_failure(tag.id, "unavailable", "social.example answered 503", at(1))
    await store.record_failure(tag.id, "unavailable", "social.example answered 502", at(2))
    failing = await store.get(tag.id)
    assert (failing.consecutive_failures, failing.last_error, failing.last_error_at) == (
        2,
        "social.example answered 502",
        at(2),
    )
    assert failing.reached_since(at(2))
    assert not failing.reached_since(at(2, 4))
    await store.store(tag.id, answer(3, name="CatUrday"), at(3))
    read = await store.get(tag.id)
    assert (read.name, read.consecutive_failures, read.last_error, read.checked_at) == (
        "CatUrday",
        0,
        None,
        at(3),
    )
    assert read.url == "https://social.example/tags/caturday"


async def test_latest_gives_the_newest_complete_day_and_today(store: TagStore) -> None:
    """``latest``: every tracked tag, its newest complete day and its day in progress."""
    read = await store.track(HOST, parse_tag_name("Caturday"), at(0))
    unread = await store.track(HOST, parse_tag_name("Dogurday"), at(0))
    await store.store(read.id, answer(4), at(4))
    latest = {t.id: (done, going) for t, done, going in await store.latest()}
    done, going = latest[read.id]
    assert done is not None
    assert going is not None
    assert (done.day, done.complete, going.day, going.complete) == (
        DAY0 + timedelta(days=3),
        True,
        DAY0 + timedelta(days=4),
        False,
    )
    assert latest[unread.id] == (None, None)
    histories = await store.histories([read.id, unread.id], since=DAY0 + timedelta(days=3))
    assert [len(histories[read.id]), len(histories[unread.id])] == [2, 0]


async def test_untracking_deletes_the_history_and_an_instance_nothing_else_keeps(
    store: TagStore, db: Database, repo: Repository
) -> None:
    """The instance row goes with the last tag, unless an account or tracking keeps it."""
    tag = await store.track(HOST, parse_tag_name("Caturday"), at(0))
    await store.store(tag.id, answer(0), at(0))
    kept = await store.track(OTHER, parse_tag_name("Caturday"), at(0))
    await repo.add_account(resolved("alice", home=OTHER), at(0))
    assert await store.untrack(tag.id) == 7
    assert await store.untrack(kept.id) == 0
    with pytest.raises(NotTracked):
        await store.untrack(tag.id)
    async with db.connect() as conn:
        hosts = (await conn.execute(select(instances.c.host))).scalars().all()
    assert hosts == ["other.example"]
    assert await InstanceStore(db).find("social.example") is None


async def test_trends_are_recorded_in_order_per_round(store: TagStore) -> None:
    """Recording trends is switched per instance; each reading keeps its order; empty is none."""
    instance_id, added = await store.track_trends(HOST, at(0))
    assert added
    assert await store.track_trends(HOST, at(1)) == (instance_id, False)
    assert [h for _, h, _ in await store.trend_instances()] == ["social.example"]
    first = [TrendingTag(1, "Alpha", DAY0, 40, 30), TrendingTag(2, "Beta", DAY0, 9, 8)]
    second = [TrendingTag(1, "Beta", DAY0, 90, 60), TrendingTag(2, "Alpha", DAY0, 41, 30)]
    await store.store_trends(instance_id, at(0), first)
    await store.store_trends(instance_id, at(0, 9), second)
    await store.store_trends(instance_id, at(0, 15), [])
    assert [(t.rank, t.name, t.uses) for t in await store.latest_trends(instance_id)] == [
        (1, "Beta", 90),
        (2, "Alpha", 41),
    ]
    assert len(await store.trends(instance_id)) == 4
    assert len(await store.trends(instance_id, since=at(0, 9))) == 2
    assert await store.untrack_trends("SOCIAL.example")
    assert not await store.untrack_trends("social.example")
    assert await store.trend_instances() == []
    assert len(await store.trends(instance_id)) == 4


async def test_a_server_cannot_rename_a_tag_into_another(store: TagStore) -> None:
    """The server's spelling is kept only when it is the same tag; a missing URL keeps ours."""
    tag = await store.track(HOST, parse_tag_name("caturday"), at(0))
    await store.store(tag.id, answer(1, name="CatURDAY"), at(1))
    hostile = answer(2, name="<b>dogurday</b>")
    await store.store(tag.id, TagReading(hostile.name, None, hostile.days), at(2))
    read = await store.get(tag.id)
    assert (read.name, read.key) == ("CatURDAY", "caturday")
    assert read.url == "https://social.example/tags/caturday"
    assert read.checked_at == at(2)
