"""Alerts delivered through the report channels: a webhook, e-mail, Mastodon; once each."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import text

from deliveryhelpers import no_sleep, with_settings
from fedimeter.alerting import alerts_after_round, check_alerts
from fedimeter.config import Settings
from fedimeter.delivery.alerts import pack_posts, webhook_alert_body
from fedimeter.domain.alerts import Occurrence, Subject
from fedimeter.domain.posts import mastodon_length
from fedimeter.simfedi import SimFediverse, SimInstance
from fedimeter.storage.alerts import RETRY_FOR, STALE_AFTER, AlertRecord, AlertStore
from fedimeter.storage.database import Database
from fedimeter.storage.records import NewSample, RunProgress
from peers import free_port, smtp_server, webhook_receiver
from test_alerts_days import Calendar, at

DROP = {"kind": "drop", "percent": 5}


async def dropped(days: Calendar, *accts: str) -> list[int]:
    """Track ``accts`` and measure them at 1,000 followers on day 1, ids in order."""
    ids = [await days.account(acct) for acct in accts]
    await days.round(at(1), dict.fromkeys(ids, 1000))
    return ids


# -- webhook -------------------------------------------------------------------------------


async def test_a_fired_alert_goes_to_the_webhook_as_an_alert_body(
    settings: Settings, db: Database
) -> None:
    """One POST, "type": "alert", the text for chat bridges, the figures for programs, signed."""
    with webhook_receiver() as hook:
        days = Calendar(settings, db, DROP, webhook_url=hook.url, webhook_secret="s3cret-signing")
        [alice] = await dropped(days, "alice@example.social")
        result = await days.round(at(2), {alice: 900})
    assert [(o.channel, o.status, o.alerts) for o in result.outcomes] == [
        ("webhook", "delivered", 1)
    ]
    [request] = hook.received
    body = json.loads(request.body)
    assert body["type"] == "alert"
    assert body["username"] == "fedimeter"
    text = "@alice@example.social lost 10.0% of their followers in a day: 1,000 \u2192 900"
    assert body["text"] == body["content"] == text
    [alert] = body["alerts"]
    assert alert["kind"] == "drop"
    assert alert["subject"] == "account:alice@example.social"
    assert alert["occurrence"] == "2026-04-02"
    assert alert["details"]["before"] == 1000
    assert alert["details"]["after"] == 900
    expected = hmac.new(b"s3cret-signing", request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-fedimeter-signature"] == f"sha256={expected}"
    [stored] = await AlertStore(db).recent()
    [delivery] = stored.deliveries
    assert (delivery.channel, delivery.status, delivery.attempts) == ("webhook", "delivered", 1)
    assert delivery.destination == f"127.0.0.1:{hook.port}"


async def test_a_failed_delivery_is_retried_next_round_without_firing_again(
    settings: Settings, db: Database
) -> None:
    """The webhook answers 400: failed; the next round (same drop still true) sends it once."""
    with webhook_receiver((400, {}, b"bad")) as hook:
        days = Calendar(settings, db, DROP, webhook_url=hook.url, delivery_retries=0)
        [alice] = await dropped(days, "alice@example.social")
        first = await days.round(at(2), {alice: 900})
        second = await days.round(at(2, 9), {alice: 890})
        third = await days.round(at(2, 15), {alice: 880})
    assert [o.status for o in first.outcomes] == ["failed"]
    assert "refused 1 alert (400 Bad Request: bad)" in first.outcomes[0].detail
    assert second.fired == []
    assert [o.status for o in second.outcomes] == ["delivered"]
    assert third.fired == []
    assert third.outcomes == []
    assert [json.loads(r.body)["alerts"][0]["id"] for r in hook.received] == [1, 1]
    [stored] = await AlertStore(db).recent()
    assert [(d.status, d.attempts, d.error) for d in stored.deliveries] == [("delivered", 2, None)]


async def test_several_alerts_of_a_round_go_in_one_request(
    settings: Settings, db: Database
) -> None:
    """Two accounts drop in the same round: one POST carrying both."""
    with webhook_receiver() as hook:
        days = Calendar(settings, db, DROP, webhook_url=hook.url)
        alice, bob = await dropped(days, "alice@example.social", "bob@example.social")
        await days.round(at(2), {alice: 900, bob: 800})
    [request] = hook.received
    body = json.loads(request.body)
    assert [a["subject"] for a in body["alerts"]] == [
        "account:alice@example.social",
        "account:bob@example.social",
    ]
    assert body["text"].count("\n") == 1


# -- e-mail --------------------------------------------------------------------------------


async def test_an_alert_by_e_mail(settings: Settings, db: Database) -> None:
    """One plain message whose subject is the alert, marked auto-generated."""
    with smtp_server() as server:
        days = Calendar(
            settings,
            db,
            DROP,
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="none",
            email_from="fedimeter <alerts@example.org>",
            email_to=["team@example.org"],
        )
        [alice] = await dropped(days, "alice@example.social")
        result = await days.round(at(2), {alice: 900})
    assert [(o.channel, o.status) for o in result.outcomes] == [("email", "delivered")]
    [envelope] = server.mailbox.messages
    assert isinstance(envelope.content, bytes)
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    assert message["Subject"] == (
        "fedimeter alert: @alice@example.social lost 10.0% of their followers in a day:"
        " 1,000 \u2192 900"
    )
    assert message["Auto-Submitted"] == "auto-generated"
    assert envelope.rcpt_tos == ["team@example.org"]
    body = message.get_body(("plain",))
    assert body is not None
    assert "lost 10.0% of their followers" in body.get_content()


async def test_one_failing_channel_does_not_stop_the_others(
    settings: Settings, db: Database
) -> None:
    """The webhook refuses (404), the e-mail goes out; each has its own state."""
    with webhook_receiver((404, {}, b"no such hook")) as hook, smtp_server() as server:
        days = Calendar(
            settings,
            db,
            DROP,
            webhook_url=hook.url,
            smtp_host="127.0.0.1",
            smtp_port=server.port,
            smtp_security="none",
            email_from="alerts@example.org",
            email_to=["team@example.org"],
        )
        [alice] = await dropped(days, "alice@example.social")
        result = await days.round(at(2), {alice: 900})
    assert [(o.channel, o.status) for o in result.outcomes] == [
        ("webhook", "failed"),
        ("email", "delivered"),
    ]
    assert len(server.mailbox.messages) == 1
    [stored] = await AlertStore(db).recent()
    assert [(d.channel, d.status) for d in stored.deliveries] == [
        ("webhook", "failed"),
        ("email", "delivered"),
    ]


# -- Mastodon ------------------------------------------------------------------------------


@pytest.fixture
async def mastodon() -> AsyncIterator[tuple[SimInstance, str]]:
    """A simulated Mastodon 4.3 server with a posting account and its token."""
    world = SimFediverse(seed=9)
    instance = world.add_instance("social", version="4.3.0", rate_limit=None)
    token = instance.add_token(instance.add_account("alerts"))
    async with world.serving():
        yield instance, token


async def test_alerts_are_posted_without_mentioning_anyone(
    settings: Settings, db: Database, mastodon: tuple[SimInstance, str]
) -> None:
    """Two alerts in one unlisted post, handles without the @ that would notify them."""
    instance, token = mastodon
    days = Calendar(settings, db, DROP, post_instance=instance.base_url, post_token=token)
    alice, bob = await dropped(days, "alice@example.social", "bob@example.social")
    result = await days.round(at(2), {alice: 900, bob: 800})
    [outcome] = result.outcomes
    assert outcome.status == "delivered", outcome.detail
    [status] = instance.statuses
    assert status.visibility == "unlisted"
    assert status.text == (
        "fedimeter alerts\n"
        "alice@example.social lost 10.0% of their followers in a day: 1,000 \u2192 900\n"
        "bob@example.social lost 20.0% of their followers in a day: 1,000 \u2192 800"
    )
    assert outcome.url == status.url
    [stored, _] = await AlertStore(db).recent()
    assert stored.deliveries[0].url == status.url


async def test_alerts_longer_than_a_post_are_split_over_posts(
    settings: Settings, db: Database, mastodon: tuple[SimInstance, str]
) -> None:
    """A 120-character server: one alert a post, each within the limit."""
    instance, token = mastodon
    instance.max_characters = 120
    days = Calendar(settings, db, DROP, post_instance=instance.base_url, post_token=token)
    ids = await dropped(days, *(f"user{i}@example.social" for i in range(3)))
    await days.round(at(2), dict.fromkeys(ids, 900))
    assert len(instance.statuses) == 3
    assert all(mastodon_length(s.text) <= 120 for s in instance.statuses)
    assert all(s.in_reply_to_id is None for s in instance.statuses)


def test_posts_are_packed_in_order_and_long_lines_cut() -> None:
    """Lines fill posts in order; a line too long for any post ends with an ellipsis."""
    posts = pack_posts(["a" * 30, "b" * 30, "c" * 30, "d" * 200], 80)
    assert [indexes for indexes, _ in posts] == [[0, 1], [2], [3]]
    assert posts[0][1] == "fedimeter alerts\n" + "a" * 30 + "\n" + "b" * 30
    assert all(mastodon_length(text) <= 80 for _, text in posts)
    assert posts[2][1].endswith("\u2026")


def test_an_outage_does_not_become_hundreds_of_posts() -> None:
    """Beyond max_posts, the last post counts the alerts left and carries them all."""
    posts = pack_posts(["x" * 50] * 10, 80, max_posts=3)
    assert [indexes for indexes, _ in posts] == [[0], [1], [2, 3, 4, 5, 6, 7, 8, 9]]
    assert posts[2][1] == "fedimeter alerts\n8 more alerts: see fedimeter alerts list"


def test_a_webhook_text_lists_a_hundred_alerts_and_counts_the_rest() -> None:
    """Chat services cut long messages: the text stops at 100, the data has every alert."""
    alerts = [
        AlertRecord(
            i, "r", "failing", f"account:u{i}@x.org", f"@u{i}@x.org", "t", f"u{i}", {}, at(2)
        )
        for i in range(1, 131)
    ]
    body = json.loads(webhook_alert_body(alerts))
    lines = body["text"].splitlines()
    assert lines[:2] == ["u1", "u2"]
    assert lines[-1] == "and 30 more: see fedimeter alerts list"
    assert len(lines) == 101
    assert len(body["alerts"]) == 130


# -- once, and never the round's failure -----------------------------------------------------


def occurrence(day: int = 2) -> Occurrence:
    """A drop of Alice's on ``day``."""
    subject = Subject("accounts", "alice@example.social", "@alice@example.social")
    return Occurrence("drop-5", "drop", subject, f"2026-04-0{day}", "Alice dropped", {})


async def test_an_alert_being_sent_is_not_claimed_twice_until_stale(db: Database) -> None:
    """A second claim gets nothing while the first sender may be at it; a dead one's is taken."""
    store = AlertStore(db)
    [fired] = await store.record([occurrence()], ["webhook"], at(2))
    assert await store.record([occurrence()], ["webhook"], at(2, 9)) == []
    [claimed] = await store.claim("webhook", at(2))
    assert claimed.id == fired.id
    assert await store.claim("webhook", at(2) + timedelta(minutes=1)) == []
    assert await store.claim("email", at(2)) == []  # not a channel of this alert
    [again] = await store.claim("webhook", at(2) + STALE_AFTER + timedelta(seconds=1))
    assert again.deliveries[0].attempts == 2
    await store.delivered([again.id], "webhook", at(2, 4), destination="hooks.example.org")
    assert await store.claim("webhook", at(3) + STALE_AFTER * 2) == []


async def test_an_undelivered_alert_is_given_up_after_a_while(db: Database) -> None:
    """Failed, and still failing after RETRY_FOR: it is old news, no longer sent."""
    store = AlertStore(db)
    [fired] = await store.record([occurrence()], ["webhook"], at(2))
    [claimed] = await store.claim("webhook", at(2))
    await store.failed([claimed.id], "webhook", at(2), destination="x", error="404")
    assert await store.claim("webhook", at(2) + RETRY_FOR + timedelta(minutes=1)) == []
    [kept] = await store.recent()
    assert (kept.id, kept.deliveries[0].status) == (fired.id, "failed")


async def test_alerts_wait_only_for_the_channels_of_when_they_fired(
    settings: Settings, db: Database
) -> None:
    """Fired with no channel configured: a webhook set up later does not get old alerts."""
    days = Calendar(settings, db, DROP)
    [alice] = await dropped(days, "alice@example.social")
    result = await days.round(at(2), {alice: 900})
    assert len(result.fired) == 1
    assert result.outcomes == []
    with webhook_receiver() as hook:
        later = with_settings(days.settings, webhook_url=hook.url)
        again = await check_alerts(later, db, clock=lambda: at(2, 9), sleep=no_sleep)
    assert again.fired == []
    assert again.outcomes == []
    assert hook.received == []
    [stored] = await AlertStore(db).recent()
    assert stored.deliveries == ()


async def test_alert_to_picks_the_channels(settings: Settings, db: Database) -> None:
    """alert_to = webhook: the configured e-mail does not get alerts."""
    with webhook_receiver() as hook:
        days = Calendar(
            settings,
            db,
            DROP,
            webhook_url=hook.url,
            smtp_host="127.0.0.1",
            smtp_port=free_port(),
            smtp_security="none",
            email_from="alerts@example.org",
            email_to=["team@example.org"],
            alert_to=["webhook"],
        )
        [alice] = await dropped(days, "alice@example.social")
        result = await days.round(at(2), {alice: 900})
    assert [(o.channel, o.status) for o in result.outcomes] == [("webhook", "delivered")]
    [stored] = await AlertStore(db).recent()
    assert [d.channel for d in stored.deliveries] == ["webhook"]


async def test_after_a_round_nothing_is_raised_whatever_fails(
    settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook down is a warning; a database that refuses is logged too; neither raises."""
    days = Calendar(settings, db, DROP)
    [alice] = await dropped(days, "alice@example.social")
    await days.round(at(2), {alice: 1000})
    ruled = with_settings(
        days.settings, webhook_url=f"http://127.0.0.1:{free_port()}/hook", delivery_retries=0
    )
    await days.repo.commit_batch(
        (await days.repo.list_runs(1))[0].id,
        at(2, 9),
        RunProgress(),
        samples=[NewSample(alice, at(2, 9), 900, 10, 100, None)],
    )
    caplog.set_level(logging.INFO, logger="fedimeter.alerts")
    run = await alerts_after_round(ruled, db, clock=lambda: at(2, 9), sleep=no_sleep)
    assert len(run.fired) == 1
    assert [o.status for o in run.outcomes] == ["failed"]
    assert "alert drop-accounts-followers-5%-1d: @alice@example.social lost 10.0%" in caplog.text
    assert "alerts by webhook to 127.0.0.1" in caplog.text
    async with db.begin() as conn:
        await conn.execute(text("DROP TABLE alert_deliveries"))
    broken = await alerts_after_round(ruled, db, clock=lambda: at(2, 10), sleep=no_sleep)
    assert broken.error is not None
    assert "alerts were not checked" in caplog.text
