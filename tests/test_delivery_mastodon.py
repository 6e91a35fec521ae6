"""Posting reports to the simulated Mastodon: limits, threads, once per period, resumption."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from deliveryhelpers import Clock, make_report, no_sleep, with_settings
from fedimeter.config import Settings
from fedimeter.delivery import Deliverer
from fedimeter.domain.posts import mastodon_length
from fedimeter.simfedi import Fault, RateLimit, SimFediverse, SimInstance
from fedimeter.storage.database import Database
from fedimeter.storage.deliveries import DeliveryLog

NUMBERING = re.compile(r"\n\((\d+)/(\d+)\)$")


@dataclass
class Server:
    """The simulated server reports are posted to, and a token for it."""

    world: SimFediverse
    instance: SimInstance
    token: str


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """A Mastodon 4.3 server with a reporting account and its token."""
    world = SimFediverse(seed=7)
    instance = world.add_instance("social", version="4.3.0", rate_limit=None)
    me = instance.add_account("reports")
    token = instance.add_token(me)
    async with world.serving():
        yield Server(world, instance, token)


def poster(
    settings: Settings, db: Database, server: Server, clock: Clock | None = None, **values: object
) -> Deliverer:
    """A deliverer that posts to the simulated server."""
    configured = with_settings(
        settings,
        post_instance=server.instance.base_url,
        post_token=server.token,
        **values,
    )
    return Deliverer(configured, DeliveryLog(db), clock=clock or Clock(), sleep=no_sleep)


async def test_a_short_report_is_one_unlisted_post_that_mentions_nobody(
    settings: Settings, db: Database, server: Server
) -> None:
    """One post, unlisted by default, handles without the @ that would notify them."""
    (outcome,) = await poster(settings, db, server).deliver(make_report(2), ["mastodon"])
    assert outcome.status == "delivered", outcome.detail
    (status,) = server.instance.statuses
    assert status.visibility == "unlisted"
    assert status.in_reply_to_id is None
    assert status.text.startswith("fedimeter report for 2026-03-25")
    assert "user1@example.org: 1,102 (+101, +10.1%) followers" in status.text
    assert "@user1@example.org" not in status.text
    assert outcome.url == status.url
    assert outcome.detail == f"posted as 1 post: {status.url}"


async def test_a_long_report_becomes_a_thread_within_the_server_limit(
    settings: Settings, db: Database, server: Server
) -> None:
    """With a 300-character server, a 12-account report is a numbered thread of replies."""
    server.instance.max_characters = 300
    (outcome,) = await poster(settings, db, server).deliver(make_report(12), ["mastodon"])
    posts = server.instance.statuses
    assert outcome.status == "delivered", outcome.detail
    assert len(posts) > 2
    assert outcome.detail.startswith(f"posted as a thread of {len(posts)} posts")
    assert posts[0].in_reply_to_id is None
    for previous, post in itertools.pairwise(posts):
        assert post.in_reply_to_id == previous.id
    for index, post in enumerate(posts, start=1):
        assert mastodon_length(post.text) <= 300
        match = NUMBERING.search(post.text)
        assert match is not None
        assert (int(match.group(1)), int(match.group(2))) == (index, len(posts))
    assert outcome.url == posts[0].url


async def test_the_same_period_is_never_posted_twice(
    settings: Settings, db: Database, server: Server
) -> None:
    """A second --post of the same period posts nothing and says where the first went."""
    clock = Clock()
    await poster(settings, db, server, clock).deliver(make_report(), ["mastodon"])
    clock.now = clock.now.replace(hour=22)
    (again,) = await poster(settings, db, server, clock).deliver(make_report(), ["mastodon"])
    assert again.status == "skipped"
    assert server.instance.statuses[0].url in again.detail
    assert len(server.instance.statuses) == 1


async def test_a_refused_token_is_a_clear_failure(
    settings: Settings, db: Database, server: Server
) -> None:
    """A revoked token: failed, saying which setting to check, nothing posted."""
    server.instance.revoke_token(server.token)
    (outcome,) = await poster(settings, db, server).deliver(make_report(), ["mastodon"])
    assert outcome.status == "failed"
    assert "refused the access token (401 Unauthorized): check post_token" in outcome.detail
    assert server.instance.statuses == []


async def test_a_thread_cut_short_is_finished_not_restarted(
    settings: Settings, db: Database, server: Server
) -> None:
    """The second post fails for good; the next attempt posts the rest as replies."""
    server.instance.max_characters = 300
    fault = Fault(kind="status", status=500, endpoint="post")

    class BreakAfterFirstPost(DeliveryLog):
        async def part_sent(
            self, delivery_id: int, remote_ids: list[str], url: str | None, now: datetime
        ) -> None:
            await super().part_sent(delivery_id, remote_ids, url, now)
            server.instance.faults.append(fault)  # the server fails from the second post on

    configured = with_settings(
        settings,
        post_instance=server.instance.base_url,
        post_token=server.token,
        delivery_retries=0,
    )
    deliverer = Deliverer(configured, BreakAfterFirstPost(db), clock=Clock(), sleep=no_sleep)
    (first,) = await deliverer.deliver(make_report(12), ["mastodon"])
    assert first.status == "failed"
    assert len(server.instance.statuses) == 1
    (record,) = await DeliveryLog(db).recent()
    assert record.parts is not None
    assert (record.status, record.parts_sent) == ("failed", 1)

    server.instance.faults.remove(fault)
    (second,) = await poster(settings, db, server).deliver(make_report(12), ["mastodon"])
    assert second.status == "delivered", second.detail
    posts = server.instance.statuses
    assert [p.text for p in posts] == list(record.parts)
    for previous, post in itertools.pairwise(posts):
        assert post.in_reply_to_id == previous.id


async def test_a_lost_answer_does_not_make_a_second_post(
    settings: Settings, db: Database, server: Server
) -> None:
    """The post is stored but its answer is broken; the retry's Idempotency-Key finds it."""
    server.instance.faults.append(Fault(kind="truncated", endpoint="post", times=1))
    (outcome,) = await poster(settings, db, server).deliver(make_report(), ["mastodon"])
    assert outcome.status == "delivered", outcome.detail
    assert len(server.instance.statuses) == 1
    posts = [r for r in server.world.requests if r.method == "POST"]
    assert len(posts) == 2


async def test_the_limit_comes_from_v1_when_v2_is_missing(settings: Settings, db: Database) -> None:
    """A Pleroma server (no /api/v2/instance): max_toot_chars decides the cut."""
    world = SimFediverse(seed=3)
    pleroma = world.add_instance("pleroma", software="pleroma", version="2.6.0", rate_limit=None)
    pleroma.max_characters = 250
    token = pleroma.add_token(pleroma.add_account("reports"))
    async with world.serving():
        deliverer = poster(settings, db, Server(world, pleroma, token))
        (outcome,) = await deliverer.deliver(make_report(12), ["mastodon"])
    assert outcome.status == "delivered", outcome.detail
    assert len(pleroma.statuses) > 1
    assert all(mastodon_length(s.text) <= 250 for s in pleroma.statuses)
    assert max(mastodon_length(s.text) for s in pleroma.statuses) > 200


async def test_a_thread_longer_than_post_max_parts_is_refused(
    settings: Settings, db: Database, server: Server
) -> None:
    """Over post_max_parts: failed with advice, nothing posted."""
    server.instance.max_characters = 100
    (outcome,) = await poster(settings, db, server, post_max_parts=3).deliver(
        make_report(12), ["mastodon"]
    )
    assert outcome.status == "failed"
    assert "more than post_max_parts (3): report on fewer accounts (--top)" in outcome.detail
    assert server.instance.statuses == []


async def test_a_rate_limited_post_waits_and_goes_through(
    settings: Settings, db: Database, server: Server
) -> None:
    """429 with a reset a moment away: the post waits for it instead of failing."""
    server.instance.rate_limit = RateLimit(limit=2, window=1.0)
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(seconds)

    configured = with_settings(
        settings,
        post_instance=server.instance.base_url,
        post_token=server.token,
        delivery_retries=5,
    )
    server.instance.max_characters = 300
    deliverer = Deliverer(configured, DeliveryLog(db), clock=Clock(), sleep=record)
    (outcome,) = await deliverer.deliver(make_report(12), ["mastodon"])
    assert outcome.status == "delivered", outcome.detail
    assert waits, "no 429 was met: the test did not exercise the limit"
    assert all(w <= 1.5 for w in waits)


async def test_visibility_is_configurable(settings: Settings, db: Database, server: Server) -> None:
    """post_visibility = private posts followers-only."""
    await poster(settings, db, server, post_visibility="private").deliver(
        make_report(), ["mastodon"]
    )
    assert server.instance.statuses[0].visibility == "private"
