"""``fedimeter demo``: the whole pipeline against the simulated fediverse, in a few seconds.

Starts simulated instances on loopback (a Mastodon 4.3 server with the batch call, an older one
without, one whose accounts live under another domain, one that fails now and then), tracks a
handful of accounts, two of the instances, two hashtags and one account's engagement in a
separate demo database, with a few alert rules, and collects one round per simulated day.
Things happen during the week: a server suspends an account, an account loses a fifth of its
followers, a server goes down for two days, an account passes 50,000 followers, a hashtag
surges on Saturday. The alerts they raise are posted as they fire from a reporting account on
the 4.3 server, and at the end the period's report is posted there too, as
``fedimeter report --post`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING

from fedimeter.alerting import QUIET_LOG, AlertRun, alerts_after_round
from fedimeter.collect import collect_round
from fedimeter.config import Settings
from fedimeter.delivery import Deliverer, Outcome
from fedimeter.engagement_tracking import EngagementView, engagement_view, set_engagement
from fedimeter.instance_tracking import add_instances
from fedimeter.reporting import make_report
from fedimeter.simfedi import Fault, RateLimit, SimAccount, SimFediverse, SimInstance
from fedimeter.storage.alerts import AlertRecord, AlertStore
from fedimeter.storage.deliveries import DeliveryLog
from fedimeter.storage.engagement import EngagementStore
from fedimeter.storage.instances import InstanceSampleRecord, InstanceStore
from fedimeter.storage.tags import TagDayRecord, TagRecord, TagStore, TrendRecord
from fedimeter.tag_tracking import add_tags, add_trends
from fedimeter.tracking import add_accounts
from fedimeter.wiring import make_client, open_repository

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

    from fedimeter.collect import RoundResult
    from fedimeter.fediverse import FediverseClient
    from fedimeter.storage.records import AccountRecord, InstanceRecord, SampleRecord
    from fedimeter.storage.repository import Repository
    from fedimeter.tracking import AddOutcome

__all__ = ["DEMO_ALERTS", "DemoResult", "run_demo"]

#: The demo's alert rules, as a user would write them (docs/alerts.md).
DEMO_ALERTS: list[dict[str, object]] = [
    {"name": "followers-drop", "kind": "drop", "metric": "followers", "percent": 10},
    {"name": "not-measured", "kind": "failing", "rounds": 2},
    {"name": "followers-milestone", "kind": "milestone", "round_numbers": True},
    {"name": "hashtag-surge", "kind": "rise", "scope": "tags", "percent": 200},
]
#: The hashtags tracked on the 4.3 server, and what it trends.
DEMO_TAGS = ("caturday", "FediTips")
DEMO_TRENDS = ("caturday", "FediTips", "photography", "gardening")
#: The account whose engagement is read each round.
ENGAGED = "alice"

_DAY = timedelta(days=1)
_HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class DemoResult:
    """What the demo did: who and what it tracked, each round, and what it stored."""

    database: Path
    added: list[AddOutcome]
    rounds: list[RoundResult]
    accounts: list[tuple[AccountRecord, list[SampleRecord]]]
    #: Each tracked instance with its samples, oldest first.
    instances: list[tuple[InstanceRecord, list[InstanceSampleRecord]]]
    #: Each tracked hashtag with its stored days, oldest first.
    tags: list[tuple[TagRecord, list[TagDayRecord]]]
    #: The 4.3 server's newest trending list.
    trends: list[TrendRecord]
    #: The engagement of ``ENGAGED`` over the last 7 days: its handle and figures.
    engagement: tuple[str, EngagementView]
    #: The alerts that fired, oldest first; each was posted on the 4.3 server as it fired.
    alerts: list[AlertRecord]
    #: The week's report posted on the simulated Mastodon server, and the posts it became.
    posted: Outcome
    thread: list[str]


def build_world(seed: int = 7) -> tuple[SimFediverse, list[SimAccount]]:
    """The demo's simulated fediverse and the accounts it tracks (addresses come with serving)."""
    world = SimFediverse(seed=seed)
    latency = (0.005, 0.03)
    modern = world.add_instance(
        "mastodon-4.3", version="4.3.2", latency=latency, rate_limit=RateLimit(300, 300.0)
    )
    older = world.add_instance("mastodon-4.1", version="4.1.9", latency=latency)
    aliased = world.add_instance(
        "aliased", version="4.2.10", account_domain="alias", latency=latency
    )
    flaky = world.add_instance("flaky", version="4.3.0", latency=latency)
    # Fails twice, then answers: the client's retries carry the round through.
    flaky.faults.append(Fault(kind="status", status=503, endpoint="batch", times=2))
    alice = modern.add_account(
        "alice", followers=1_180, following=210, statuses=5_400, followers_per_day=23.0
    )
    bob = modern.add_account(
        "bob",
        followers=312,
        following=95,
        statuses=880,
        followers_per_day=2.5,
        following_per_day=0.5,
    )
    # Her posts are real statuses (engagement reads them): ten days of them before the demo.
    bob.seed_statuses(8, days=10)
    _alice_posts(alice, 40, days=10)
    accounts = [
        alice,
        bob,
        modern.add_account(
            "carol",
            followers=49_350,  # 50,000 on the sixth day: a milestone
            following=12,
            statuses=21_000,
            followers_per_day=140.0,
            statuses_per_day=11.0,
        ),
        older.add_account(
            "dave",
            followers=77,
            following=130,
            statuses=2_100,
            followers_per_day=0.4,
            statuses_per_day=0.3,
            last_status_days_ago=9,
        ),
        older.add_account(
            "erin",
            followers=5_020,
            following=400,
            statuses=9_800,
            followers_per_day=-3.0,
            statuses_per_day=4.0,
        ),
        aliased.add_account(
            "frank",
            followers=640,
            following=640,
            statuses=1_500,
            followers_per_day=8.0,
            statuses_per_day=2.0,
        ),
        flaky.add_account(
            "grace",
            followers=2_300,
            following=180,
            statuses=7_700,
            followers_per_day=12.0,
            statuses_per_day=3.0,
        ),
    ]
    _hashtags(modern, world.now.date(), days=3650)
    return world, accounts


def _alice_posts(alice: SimAccount, count: int, days: float) -> None:
    """Alice posts ``count`` statuses over the last ``days``: threads, boosts, and replies.

    Seeded, so every demo is the same.
    """
    alice.seed_statuses(
        count,
        days=days,
        reply_share=0.25,
        boost_share=0.15,
        favourites=(2, 60),
        reblogs=(0, 12),
        replies=(0, 6),
    )


def _hashtags(instance: SimInstance, start: date, *, days: int) -> None:
    """Daily use of the demo's hashtags from a week before ``start`` on, and the trends.

    #caturday is a Saturday tag (six times its weekday use); #FediTips grows slowly.
    """
    caturday: dict[date, tuple[int, int]] = {}
    tips: dict[date, tuple[int, int]] = {}
    for offset in range(-7, days + 1):
        day = start + timedelta(days=offset)
        wobble = (day.toordinal() * 7) % 11
        saturday = day.weekday() == 5  # noqa: PLR2004 - Monday is 0
        uses = (240 if saturday else 34) + 3 * wobble
        caturday[day] = (uses, uses * 3 // 5)
        uses = 55 + offset // 2 + wobble
        tips[day] = (uses, uses * 4 // 5)
    instance.tag_history("caturday", caturday)
    instance.tag_history("FediTips", tips)
    instance.trending_tags = list(DEMO_TRENDS)


def _week(world: SimFediverse, day: int, days: int) -> None:
    """What happens on ``day`` (0 is the first) of a demo of ``days``, before its round."""
    modern = world.instance("mastodon-4.3")
    alice, bob = modern.account(ENGAGED), modern.account("bob")
    if day:
        _alice_posts(alice, 5, days=1)
        if day % 2:
            # Every other day Bob shows his bird feeder and Alice answers.
            now = world.now
            feeder = bob.add_status(f"Bird feeder, day {day}", created_at=now - 5 * _HOUR)
            alice.add_status(
                "Lovely! Which birds came?",
                reply_to=feeder,
                created_at=now - 4 * _HOUR,
                favourites=2 + day,
                replies=1,
            )
    if day == days // 2:
        # Mid-week the older server suspends erin (kept, no longer measured), and dave loses
        # a fifth of his followers to a spam purge.
        older = world.instance("mastodon-4.1")
        older.account("erin").suspended = True
        older.account("dave").followers = 62
    if days >= 7:  # noqa: PLR2004 - the outage needs a week to show
        if day == 4:  # noqa: PLR2004 - Friday and Saturday
            world.take_down("flaky")
        elif day == 6:  # noqa: PLR2004 - back on Sunday
            world.bring_up("flaky")


async def run_demo(
    database: Path,
    *,
    days: int = 7,
    on_round: Callable[[int, RoundResult, AlertRun], None] | None = None,
) -> DemoResult:
    """Run the demo into a fresh SQLite database at ``database`` (replaced if it exists).

    Raises:
        StorageError: the database cannot be written.
    """
    for suffix in ("", "-wal", "-shm"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)
    world, sim_accounts = build_world()
    home = world.instance("mastodon-4.3")
    reporter = home.add_account("fedimeter", display_name="fedimeter reports")
    token = home.add_token(reporter)
    rounds: list[RoundResult] = []

    def clock() -> datetime:
        return world.now

    async with world.serving():
        settings = Settings(
            database_url=f"sqlite:///{database}",
            allow_private_addresses=True,  # the simulated servers live on 127.0.0.1
            default_scheme="http",
            retry_base_delay=0.05,
            retry_max_delay=0.2,
            host_retry_passes=0,  # a server that is down stays down for the day
            alerts=DEMO_ALERTS,
            post_instance=home.base_url,
            post_token=token,
        )
        async with open_repository(settings) as repo, make_client(settings, clock=clock) as client:
            added = await _track(repo, client, world, sim_accounts, clock)
            for day in range(days):
                _week(world, day, days)
                result = await collect_round(repo, client, settings, clock=clock)
                alerted = await alerts_after_round(settings, repo.db, clock=clock, logger=QUIET_LOG)
                rounds.append(result)
                if on_round is not None:
                    on_round(day + 1, result, alerted)
                world.advance(days=1)
            now = clock()
            accounts = [(a, await repo.samples(a.id)) for a, _ in await repo.list_accounts(None)]
            instances, tags, trends = await _tags_and_instances(repo)
            engagement = await _engagement(repo, now)
            alerts = list(reversed(await AlertStore(repo.db).recent(limit=100)))
            posted, thread = await _post_report(settings, repo, now, days, home, token)
    return DemoResult(
        database=database,
        added=added,
        rounds=rounds,
        accounts=accounts,
        instances=instances,
        tags=tags,
        trends=trends,
        engagement=engagement,
        alerts=alerts,
        posted=posted,
        thread=thread,
    )


async def _track(
    repo: Repository,
    client: FediverseClient,
    world: SimFediverse,
    sim_accounts: list[SimAccount],
    clock: Callable[[], datetime],
) -> list[AddOutcome]:
    """Track what a user of the demo's world would: accounts, instances, tags, engagement."""
    handles = [f"@{a.acct}" for a in sim_accounts]
    added = await add_accounts(repo, client, handles, default_scheme="http", clock=clock)
    modern, older = world.instance("mastodon-4.3"), world.instance("mastodon-4.1")
    hosts = [modern.web_domain, older.web_domain]
    await add_instances(InstanceStore(repo.db), client, hosts, default_scheme="http", clock=clock)
    tags = TagStore(repo.db)
    await add_tags(tags, client, DEMO_TAGS, [modern.web_domain], default_scheme="http", clock=clock)
    await add_trends(tags, client, [modern.web_domain], default_scheme="http", clock=clock)
    engaged = modern.account(ENGAGED)
    await set_engagement(repo, EngagementStore(repo.db), [f"@{engaged.acct}"], on=True, clock=clock)
    return added


async def _tags_and_instances(
    repo: Repository,
) -> tuple[
    list[tuple[InstanceRecord, list[InstanceSampleRecord]]],
    list[tuple[TagRecord, list[TagDayRecord]]],
    list[TrendRecord],
]:
    """What the rounds stored of instances, hashtags and trends."""
    instances = InstanceStore(repo.db)
    measured = [(i, await instances.samples(i.id)) for i in await instances.tracked()]
    tags = TagStore(repo.db)
    histories = [(t, await tags.history(t.id)) for t in await tags.tracked()]
    trends: list[TrendRecord] = []
    for instance_id, _, _ in await tags.trend_instances():
        trends = await tags.latest_trends(instance_id)
    return measured, histories, trends


async def _engagement(repo: Repository, now: datetime) -> tuple[str, EngagementView]:
    """The engaged account's last 7 days."""
    store = EngagementStore(repo.db)
    (state,) = await store.accounts()
    account = state.account
    view = await engagement_view(store, account.id, since=now - 7 * _DAY, until=now, top=3)
    return str(account.handle), view


async def _post_report(  # noqa: PLR0917 - one call site
    settings: Settings,
    repo: Repository,
    now: datetime,
    days: int,
    home: SimInstance,
    token: str,
) -> tuple[Outcome, list[str]]:
    """Post the period's report from the reporting account on the 4.3 server, as a user would.

    Returns the outcome and the report's posts (the account posted the alerts before them).
    """

    def posted() -> list[str]:
        return [status.text for status in home.statuses if status.token == token]

    alerts = len(posted())
    report = await make_report(repo, since=now - timedelta(days=days), until=now, now=now)
    deliverer = Deliverer(settings, DeliveryLog(repo.db), clock=lambda: now)
    (outcome,) = await deliverer.deliver(report, ["mastodon"])
    return outcome, posted()[alerts:]
