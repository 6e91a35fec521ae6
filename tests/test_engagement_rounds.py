"""Engagement against the simulated fediverse: hand-made timelines, figures, requests, throttles.

Every round here runs on SQLite and PostgreSQL (the ``repo`` fixture). The simulated servers
count what they receive, so each test states the requests a reading must cost, computed by
hand: ``n`` statuses in the window cost ``n // 40 + 1`` requests, all but the first paging.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest

from conftest import fresh_database
from fedimeter.collect import RoundResult, collect_round
from fedimeter.config import Settings, load_settings, normalise_database_url
from fedimeter.engagement_tracking import engagement_view, measure_engagement, set_engagement
from fedimeter.simfedi import (
    Fault,
    RateLimit,
    SimAccount,
    SimFediverse,
    SimInstance,
    SimStatus,
)
from fedimeter.storage.database import Database
from fedimeter.storage.engagement import EngagementStore
from fedimeter.storage.repository import Repository
from fedimeter.worker import Worker
from pg import PostgresServer
from simhelpers import sim_client, stored, track

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def engagement_settings(settings: Settings, **changes: object) -> Settings:
    """The test settings with engagement's own (and any others) changed."""
    return settings.model_copy(update=changes)


def old(instance: SimInstance, name: str, followers: int = 0) -> SimAccount:
    """An account old enough for any history a test gives it."""
    return instance.add_account(name, followers=followers, created_days_ago=400)


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """One Mastodon 4.3 instance with no API limit, serving in a thread.

    It keeps Mastodon's paging throttle (300 per 15 minutes, far from reached here) so that
    the servers count paging requests.
    """
    sim = SimFediverse(seed=9)
    sim.add_instance("alpha", version="4.3.0", rate_limit=None)
    with sim.run_in_thread():
        yield sim


async def turn_on(repo: Repository, *accounts: SimAccount) -> None:
    """Turn engagement on for these (tracked) accounts; each must change."""
    changes = await set_engagement(
        repo, EngagementStore(repo.db), [f"@{a.acct}" for a in accounts], on=True
    )
    assert [c.status for c in changes] == ["on"] * len(accounts), [str(c.error) for c in changes]


def hand_made(world: SimFediverse) -> dict[str, SimStatus]:
    """Alice's week (engagement_days = 7), and what it must give, worked out by hand.

    In the window (the 7 days before now):

    ======  =====================  ====  =======  =======  ====================
    status  what                   favs  boosts   replies  replies received
    ======  =====================  ====  =======  =======  ====================
    p1      post, 6 days ago         10        2        1  1
    p2      post, 5 days ago          4        0   0 + p2b  0 (p2b is her own)
    p2b     her thread's part 2       1        0        0  0
    r1      reply to Bob, 4 days      2        1        0  0
    b1      boost of Bob's post       -        -        -  (not her post)
    p3      post, 2 days ago          6    3 + 1    2 + 1  3 (Bob replied too)
    ======  =====================  ====  =======  =======  ====================

    Posts 4 (p1, p2, p2b, p3), replies 1, boosts 1; own statuses 5. Received: favourites
    10+4+1+2+6 = 23, boosts 2+0+0+1+4 = 7, replies 1+0+0+0+3 = 4; interactions 34, 6.8 per
    post; 200 followers: rate 6.8 / 200 = 3.4 %. Best: p1 (13, 10 favourites), p3 (13, 6
    favourites), p2 (4). Outside: a post 9 days ago (not read) and a private one (not shown).
    """
    alpha = world.instance("alpha")
    alice, bob = old(alpha, "alice", followers=200), old(alpha, "bob", followers=10)
    now = world.now
    bobs = bob.add_status("Bob's news", created_at=now - 10 * DAY)
    made = {
        "old": alice.add_status("Long ago", created_at=now - 9 * DAY, favourites=50),
        "p1": alice.add_status(
            "First <b>bold</b> post", created_at=now - 6 * DAY, favourites=10, reblogs=2, replies=1
        ),
        "p2": alice.add_status("A thread, 1/2", created_at=now - 5 * DAY, favourites=4),
    }
    made["p2b"] = alice.add_status(
        "A thread, 2/2", created_at=now - 5 * DAY + HOUR, reply_to=made["p2"], favourites=1
    )
    made["r1"] = alice.add_status(
        "Congratulations!", created_at=now - 4 * DAY, reply_to=bobs, favourites=2, reblogs=1
    )
    made["b1"] = alice.add_status(created_at=now - 3 * DAY, boost_of=bobs)
    made["p3"] = alice.add_status(
        "Hot take", created_at=now - 2 * DAY, favourites=6, reblogs=3, replies=2
    )
    bob.add_status(created_at=now - 2 * DAY + HOUR, boost_of=made["p3"])
    bob.add_status("Indeed", created_at=now - 2 * DAY + 2 * HOUR, reply_to=made["p3"])
    made["private"] = alice.add_status(
        "Only followers", created_at=now - DAY, visibility="private", favourites=99
    )
    return made


async def test_a_round_gives_the_hand_computed_figures_for_one_request(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """Alice's week read in one request (7 statuses < 40), figures as worked out by hand."""
    made = hand_made(world)
    alice = world.instance("alpha").account("alice")
    async with sim_client(settings, world) as client:
        await track(repo, client, [alice])
        await turn_on(repo, alice)
        world.clear_requests()
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    done = result.engagement
    assert (done.accounts, done.statuses, done.requests, done.paging_requests) == (1, 6, 1, 0)
    assert done.failed == []
    assert world.count("alpha", "account_statuses") == 1
    assert world.count("alpha", paging=True) == 0
    account = await stored(repo, alice)
    store = EngagementStore(repo.db)
    now = world.now
    view = await engagement_view(store, account.id, since=now - 7 * DAY, until=now, top=3)
    f = view.figures
    assert (f.posts, f.replies, f.boosts, f.own) == (4, 1, 1, 5)
    assert (f.favourites_received, f.boosts_received, f.replies_received) == (23, 7, 4)
    assert f.interactions == 34
    assert f.interactions_per_post == pytest.approx(6.8)
    assert (f.favourites_per_post, f.boosts_per_post, f.replies_per_post) == pytest.approx(
        (4.6, 1.4, 0.8)
    )
    assert f.followers == 200
    assert f.rate == pytest.approx(3.4)
    assert [b.id for b in f.best] == [made["p1"].id, made["p3"].id, made["p2"].id]
    assert [b.interactions for b in f.best] == [13, 13, 4]
    assert f.best[0].url == made["p1"].url
    # The text as its author typed it: the server escaped the "tags", we unescape them once.
    assert f.best[0].excerpt == "First <b>bold</b> post"
    assert f.provisional  # read this round: the counts are read again next round
    assert not view.partial
    assert view.state.last_requests == 1
    statuses = {s.id: s for s in await store.statuses(account.id)}
    assert set(statuses) == {made[k].id for k in ("p1", "p2", "p2b", "r1", "b1", "p3")}
    boosted = made["b1"].reblog
    assert boosted is not None
    assert statuses[made["b1"].id].kind == "boost"
    assert statuses[made["b1"].id].url == boosted.url  # a boost links the boosted post
    assert statuses[made["p2b"].id].kind == "post"  # her own thread
    assert statuses[made["r1"].id].kind == "reply"


async def test_counts_are_rewritten_while_read_and_days_add_up(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """A day and an hour later, p1's new favourites are not seen: it left the window.

    p1 (now past the window) got 5 more favourites: its counts stay as last read; a new post
    came; the day buckets add up to the period.
    """
    made = hand_made(world)
    alice = world.instance("alpha").account("alice")
    async with sim_client(settings, world) as client:
        await track(repo, client, [alice])
        await turn_on(repo, alice)
        await collect_round(repo, client, settings, clock=lambda: world.now)
        world.advance(days=1, hours=1)
        made["p1"].engagement.favourites += 5
        alice.add_status("Morning", created_at=world.now - HOUR, favourites=2)
        world.clear_requests()
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    # p2 .. p3 and the new post; p1, 7 days and an hour old, is no longer read.
    assert (result.engagement.requests, result.engagement.statuses) == (1, 6)
    assert world.count("alpha", "account_statuses") == 1
    account = await stored(repo, alice)
    store = EngagementStore(repo.db)
    now = world.now
    view = await engagement_view(store, account.id, since=now - 8 * DAY, until=now, by="day")
    f = view.figures
    assert (f.posts, f.replies, f.boosts) == (5, 1, 1)
    assert f.favourites_received == 23 + 2
    assert len(view.buckets) == 9  # the period's start is mid-day: 8 days touch 9 UTC days
    assert sum(b.posts for b in view.buckets) == 5
    assert sum(b.favourites_received for b in view.buckets) == 25
    assert sum(b.replies_received for b in view.buckets) == 4
    p1_day = next(b for b in view.buckets if b.since <= made["p1"].created_at < b.until)
    assert (p1_day.posts, p1_day.favourites_received) == (1, 10)
    # The old post was never in a window; it is not stored.
    assert made["old"].id not in {s.id for s in await store.statuses(account.id)}


@pytest.mark.parametrize(
    ("in_window", "older", "requests"),
    [
        (0, 0, 1),
        (7, 3, 1),
        (39, 5, 1),
        (40, 5, 2),
        (60, 0, 2),
        (79, 45, 2),
        (80, 0, 3),
        (95, 30, 3),
    ],
)
async def test_requests_are_one_per_40_statuses_in_the_window_plus_one(  # noqa: PLR0917
    settings: Settings,
    repo: Repository,
    world: SimFediverse,
    in_window: int,
    older: int,
    requests: int,
) -> None:
    """40 a page; paging stops at the first page past the window (or a short, last page).

    95 statuses in the window: pages of 40, 40 and 15 (+25 older): 3 requests, 2 paging. 80
    and none older: two full pages, then an empty one (a full page always has a next link).

    (The simulator cuts a last page of 21 to 39 statuses short, a bug of its own: the cases
    keep every last page at 20 statuses or fewer, or followed by 40 older ones.)
    """
    alice = old(world.instance("alpha"), "alice")
    now = world.now
    for n in range(in_window):
        alice.add_status(f"new {n}", created_at=now - (n + 1) * HOUR)
    for n in range(older):
        alice.add_status(f"old {n}", created_at=now - 8 * DAY - n * HOUR)
    async with sim_client(settings, world) as client:
        await track(repo, client, [alice])
        await turn_on(repo, alice)
        world.clear_requests()
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert requests == in_window // 40 + 1
    assert world.count("alpha", "account_statuses") == requests
    assert world.count("alpha", "account_statuses", paging=True) == requests - 1
    assert (result.engagement.requests, result.engagement.paging_requests) == (
        requests,
        requests - 1,
    )
    account = await stored(repo, alice)
    assert len(await EngagementStore(repo.db).statuses(account.id)) == in_window


async def test_accounts_without_engagement_cost_nothing(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """Carol and Dave are tracked, not engaged: no timeline request for them, ever."""
    alpha = world.instance("alpha")
    alice, carol, dave = (old(alpha, name) for name in ("alice", "carol", "dave"))
    for account in (alice, carol, dave):
        for n in range(50):
            account.add_status(f"post {n}", created_at=world.now - (n + 1) * HOUR)
    async with sim_client(settings, world) as client:
        await track(repo, client, [alice, carol, dave])
        world.clear_requests()
        nobody = await collect_round(repo, client, settings, clock=lambda: world.now)
        assert world.count("alpha", "account_statuses") == 0
        assert nobody.engagement.accounts == 0
        await turn_on(repo, alice)
        world.advance(days=1)
        world.clear_requests()
        one = await collect_round(repo, client, settings, clock=lambda: world.now)
    asked = [r.path for r in world.requests if r.endpoint == "account_statuses"]
    assert len(asked) == 2  # 50 in the window: 40, then 10
    assert all(f"/accounts/{alice.id}/statuses" in path for path in asked)
    assert (one.engagement.accounts, one.engagement.requests) == (1, 2)


async def test_a_reading_already_made_in_a_resumed_round_is_not_made_again(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """A round that resumes one that read the account reads it no more (measured_since)."""
    alice = old(world.instance("alpha"), "alice")
    alice.add_status("hello", created_at=world.now - HOUR)
    async with sim_client(settings, world) as client:
        await track(repo, client, [alice])
        await turn_on(repo, alice)
        store = EngagementStore(repo.db)
        started = world.now
        first = await measure_engagement(store, client, settings, clock=lambda: world.now)
        again = await measure_engagement(
            store, client, settings, measured_since=started, clock=lambda: world.now
        )
        world.advance(hours=1)
        later = await measure_engagement(
            store, client, settings, measured_since=world.now, clock=lambda: world.now
        )
    assert (first.accounts, again.accounts, later.accounts) == (1, 0, 1)
    assert world.count("alpha", "account_statuses") == 2


async def test_a_failing_timeline_is_recorded_and_read_again_next_round(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """The server errs for Alice's timeline: her reason is stored; Bob's reading goes on."""
    alpha = world.instance("alpha")
    alice, bob = old(alpha, "alice"), old(alpha, "bob")
    bob.add_status("fine", created_at=world.now - HOUR)
    async with sim_client(settings, world) as client:
        await track(repo, client, [alice, bob])
        await turn_on(repo, alice, bob)
        alpha.faults.append(
            Fault(kind="status", status=404, endpoint="account_statuses", account_ids=[alice.id])
        )
        result = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert result.engagement.accounts == 1
    assert [(h, e.code) for h, e in result.engagement.failed] == [(alice.acct, "not_found")]
    store = EngagementStore(repo.db)
    account = await stored(repo, alice)
    state = await store.get(account.id)
    assert state is not None
    assert (state.consecutive_failures, state.last_error_code, state.read_at) == (
        1,
        "not_found",
        None,
    )
    alpha.faults.clear()
    world.advance(days=1)
    async with sim_client(settings, world) as client:
        again = await collect_round(repo, client, settings, clock=lambda: world.now)
    assert (again.engagement.accounts, again.engagement.failed) == (2, [])
    state = await store.get(account.id)
    assert state is not None
    assert (state.consecutive_failures, state.last_error, state.read_at) == (0, None, world.now)


async def paged_round(
    settings: Settings,
    repo: Repository,
    world: SimFediverse,
    host: SimInstance,
    *,
    accounts: int,
    statuses: int,
) -> RoundResult:
    """One round over ``accounts`` accounts of ``host``, engagement on for all.

    Each has ``statuses`` posts an hour apart; the world's requests are counted from the
    round's first.
    """
    made = [old(host, f"user{n}") for n in range(accounts)]
    for account in made:
        for k in range(statuses):
            account.add_status(f"post {k}", created_at=world.now - (k + 1) * HOUR)
    with world.run_in_thread():
        async with sim_client(settings, world) as client:
            await track(repo, client, made)
            await turn_on(repo, *made)
            world.clear_requests()
            return await collect_round(repo, client, settings, clock=lambda: world.now)


async def test_many_accounts_on_one_host_never_meet_the_paging_throttle(
    settings: Settings, repo: Repository
) -> None:
    """8 accounts x 85 statuses: 24 requests, 16 of them paging, at 4 paging a second: no 429.

    The host's paging answers show its paging budget (the API one is far from spent), so the
    paging pacer knows it exactly and waits for each reset.
    """
    world = SimFediverse(seed=3)
    busy = world.add_instance(
        "busy",
        version="4.3.0",
        rate_limit=RateLimit(limit=10_000, window=3600.0),
        paging_limit=RateLimit(limit=4, window=1.0),
    )
    result = await paged_round(settings, repo, world, busy, accounts=8, statuses=85)
    assert world.count_over_limit() == 0
    assert world.count("busy", "account_statuses") == 24
    assert world.count("busy", paging=True) == 16
    done = result.engagement
    assert (done.accounts, done.statuses, done.requests, done.paging_requests) == (8, 680, 24, 16)
    assert done.failed == []


async def test_when_the_headers_show_the_api_budget_paging_still_meets_no_429(
    settings: Settings, repo: Repository
) -> None:
    """Mastodon's shape, compressed: both throttles 12, the API window 2 s, paging 6 s.

    The API budget is the smaller for most paging answers, so their figures may be either
    throttle's: the pacer keeps one paging request in reserve and probes after each API
    window. 6 accounts x 50 statuses: 12 requests, 6 paging; with the batch call, 13 API ones.
    """
    world = SimFediverse(seed=4)
    shaped = world.add_instance(
        "shaped",
        version="4.3.0",
        rate_limit=RateLimit(limit=12, window=2.0),
        paging_limit=RateLimit(limit=12, window=6.0),
    )
    result = await paged_round(settings, repo, world, shaped, accounts=6, statuses=50)
    assert world.count_over_limit() == 0
    assert world.count("shaped", "account_statuses") == 12
    assert world.count("shaped", paging=True) == 6
    assert result.engagement.accounts == 6


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh PostgreSQL database (workers need PostgreSQL), dropped after the test."""
    with fresh_database(postgres_server) as url:
        yield normalise_database_url(url)


async def test_workers_read_each_timeline_once_under_their_host_lease(
    pg_url: str, world: SimFediverse
) -> None:
    """Two workers share a round: each engaged account's timeline is read once, by one."""
    settings = load_settings(
        database_url=pg_url,
        allow_private_addresses=True,
        default_scheme="http",
        retry_base_delay=0.01,
        connect_timeout=2.0,
        read_timeout=2.0,
        request_deadline=5.0,
        worker_hosts=1,
    )
    beta = world.add_instance("beta", version="4.3.0", rate_limit=None)
    alice, bob = old(world.instance("alpha"), "alice"), old(beta, "bob")
    carol = old(beta, "carol")
    for account in (alice, bob, carol):
        for k in range(45):
            account.add_status(f"post {k}", created_at=world.now - (k + 1) * HOUR)
    db = await Database.open(settings.database_url)
    try:
        repo = Repository(db)
        async with sim_client(settings, world) as c1, sim_client(settings, world) as c2:
            await track(repo, c1, [alice, bob, carol])
            await turn_on(repo, alice, bob)
            world.clear_requests()
            world.advance(days=1)
            w1 = Worker(repo, c1, settings, name="w1", clock=lambda: world.now)
            w2 = Worker(repo, c2, settings, name="w2", clock=lambda: world.now)
            runs = await asyncio.gather(w1.run_once(), w2.run_once())
        assert any(r is not None and r.status == "finished" for r in runs)
        # 45 statuses, all in the window: pages of 40 and 5.
        assert world.count("alpha", "account_statuses") == 2
        assert world.count("beta", "account_statuses") == 2
        store = EngagementStore(db)
        for account in (alice, bob):
            state = await store.get((await stored(repo, account)).id)
            assert state is not None
            assert (state.last_requests, state.last_paging_requests, state.last_statuses) == (
                2,
                1,
                45,
            )
        assert await store.get((await stored(repo, carol)).id) is None
    finally:
        await db.close()


async def test_a_reading_stops_at_engagement_max_pages_and_says_so(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """100 statuses in the window, at most 2 pages: 2 requests (1 paging), 80 stored, capped.

    The reading covers the newest 80 only (back to 80 hours ago): the week is partial.
    """
    alice = old(world.instance("alpha"), "alice")
    now = world.now
    for n in range(100):
        alice.add_status(f"post {n}", created_at=now - (n + 1) * HOUR)
    capped = engagement_settings(settings, engagement_max_pages=2)
    async with sim_client(capped, world) as client:
        await track(repo, client, [alice])
        await turn_on(repo, alice)
        world.clear_requests()
        result = await collect_round(repo, client, capped, clock=lambda: world.now)
    done = result.engagement
    assert (done.requests, done.paging_requests, done.statuses) == (2, 1, 80)
    assert done.capped == [alice.acct]
    assert world.count("alpha", "account_statuses") == 2
    account = await stored(repo, alice)
    store = EngagementStore(repo.db)
    assert len(await store.statuses(account.id)) == 80
    view = await engagement_view(store, account.id, since=now - 7 * DAY, until=now)
    assert view.partial
    assert view.figures.posts == 80
