"""Report delivery by webhook and e-mail against real local peers, and the delivery log."""

from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path

import pytest
from sqlalchemy import text

from deliveryhelpers import NOW, Clock, make_report, no_sleep, with_settings
from fedimeter.config import Settings, load_settings
from fedimeter.delivery import (
    Deliverer,
    deliver_after_round,
    deliver_safely,
    report_key,
    selection_key,
)
from fedimeter.delivery.webhook import DISCORD_LIMIT
from fedimeter.errors import ConfigError
from fedimeter.storage.database import Database
from fedimeter.storage.deliveries import STALE_AFTER, DeliveryLog
from fedimeter.storage.repository import Repository
from peers import make_certificates, smtp_server, webhook_receiver


@pytest.fixture
def clock() -> Clock:
    """The time deliveries are stamped with."""
    return Clock()


def deliverer(settings: Settings, db: Database, clock: Clock) -> Deliverer:
    """A deliverer whose retries do not sleep."""
    return Deliverer(settings, DeliveryLog(db), clock=clock, sleep=no_sleep)


# -- webhook -------------------------------------------------------------------------------


async def test_webhook_gets_text_content_and_report_data(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """One POST with text (Slack, Matrix), content (Discord) and the report as JSON."""
    with webhook_receiver() as hook:
        configured = with_settings(settings, webhook_url=f"{hook.url}/hooks/secret-path")
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
    assert [(o.channel, o.status) for o in outcomes] == [("webhook", "delivered")]
    assert outcomes[0].destination == f"127.0.0.1:{hook.port}"
    assert "secret-path" not in outcomes[0].detail
    (request,) = hook.received
    assert request.path == "/hooks/secret-path"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("fedimeter/")
    body = json.loads(request.body)
    assert body["text"].startswith("fedimeter report for 2026-03-25")
    assert "@user1@example.org: 1,102 (+101, +10.1%) followers" in body["text"]
    assert body["content"] == body["text"]
    assert body["username"] == "fedimeter"
    assert body["report"]["accounts"][0]["handle"] == "user1@example.org"
    assert "X-Fedimeter-Signature".lower() not in request.headers


async def test_webhook_content_is_cut_for_discord(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """A long report keeps all its text but a content of at most 2,000 characters."""
    with webhook_receiver() as hook:
        configured = with_settings(settings, webhook_url=hook.url)
        await deliverer(configured, db, clock).deliver(make_report(60), ["webhook"])
    body = json.loads(hook.received[0].body)
    assert len(body["text"]) > DISCORD_LIMIT
    assert len(body["content"]) == DISCORD_LIMIT
    assert body["content"].endswith("\u2026")


async def test_webhook_body_is_signed_with_the_secret(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """X-Fedimeter-Signature is the HMAC-SHA256 of the exact body."""
    secret = "s3cret-for-signing"
    with webhook_receiver() as hook:
        configured = with_settings(settings, webhook_url=hook.url, webhook_secret=secret)
        await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
    request = hook.received[0]
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-fedimeter-signature"] == f"sha256={expected}"


async def test_webhook_is_retried_after_5xx_and_429(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """503 then 429 (Retry-After) then 200: delivered on the third attempt."""
    answers = [
        (503, {}, b"down"),
        (429, {"Retry-After": "1"}, b"slow down"),
    ]
    with webhook_receiver(*answers) as hook:
        configured = with_settings(settings, webhook_url=hook.url, delivery_retries=3)
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
    assert outcomes[0].status == "delivered"
    assert len(hook.received) == 3
    assert hook.received[0].body == hook.received[2].body


async def test_webhook_that_keeps_failing_is_recorded_failed(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """Every attempt 502: failed after 1 + retries attempts, with the reason."""
    with webhook_receiver(*[(502, {}, b"")] * 5) as hook:
        configured = with_settings(settings, webhook_url=hook.url, delivery_retries=2)
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
    assert outcomes[0].status == "failed"
    assert "502 Bad Gateway (tried 3 times)" in outcomes[0].detail
    assert len(hook.received) == 3
    (record,) = await DeliveryLog(db).recent()
    assert record.status == "failed"
    assert record.error == outcomes[0].detail


async def test_webhook_4xx_is_not_retried(settings: Settings, db: Database, clock: Clock) -> None:
    """A 404 is final: one attempt, the receiver's words in the reason."""
    with webhook_receiver((404, {}, b"no such hook")) as hook:
        configured = with_settings(settings, webhook_url=hook.url)
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
    assert outcomes[0].status == "failed"
    assert "refused the report (404 Not Found: no such hook)" in outcomes[0].detail
    assert len(hook.received) == 1


async def test_webhook_redirect_is_not_followed(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """A 301 is reported with advice, and the POST is not re-sent elsewhere."""
    with webhook_receiver((301, {"Location": "http://127.0.0.2/x"}, b"")) as hook:
        configured = with_settings(settings, webhook_url=hook.url)
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
    assert outcomes[0].status == "failed"
    assert "set webhook_url to the address it redirects to" in outcomes[0].detail


async def test_webhook_on_a_private_address_is_refused_without_the_switch(
    database_url: str, db: Database, clock: Clock
) -> None:
    """The SSRF guard covers webhooks: loopback is refused unless allowed."""
    with webhook_receiver() as hook:
        configured = load_settings(database_url=database_url, webhook_url=hook.url)
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
    assert outcomes[0].status == "failed"
    assert "loopback" in outcomes[0].detail
    assert hook.received == []


# -- the delivery log ----------------------------------------------------------------------


async def test_the_same_report_is_delivered_once(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """A second delivery of the same period is skipped and says when it went out."""
    with webhook_receiver() as hook:
        configured = with_settings(settings, webhook_url=hook.url)
        first = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
        clock.now += timedelta(hours=2)  # same days: the same report
        second = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
    assert first[0].status == "delivered"
    assert second[0].status == "skipped"
    assert "delivered already on 2026-04-01 03:05 UTC" in second[0].detail
    assert len(hook.received) == 1


async def test_a_failed_delivery_is_tried_again_next_time(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """Failed, then delivered by the next attempt; the log counts two attempts."""
    with webhook_receiver((400, {}, b"bad")) as hook:
        configured = with_settings(settings, webhook_url=hook.url)
        first = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
        second = await deliverer(configured, db, clock).deliver(make_report(), ["webhook"])
    assert [first[0].status, second[0].status] == ["failed", "delivered"]
    (record,) = await DeliveryLog(db).recent()
    assert (record.status, record.attempts, record.error) == ("delivered", 2, None)


async def test_a_delivery_in_progress_is_not_claimed_twice_until_stale(db: Database) -> None:
    """A fresh 'sending' row blocks a second claim; after STALE_AFTER it is taken over."""
    log = DeliveryLog(db)
    options = {
        "channel": "webhook",
        "destination": "d" * 64,
        "label": "example.org",
        "report_key": "2026-03-25/2026-04-01/all",
        "period": (NOW - timedelta(days=7), NOW),
    }
    first = await log.claim(**options, now=NOW)  # type: ignore[arg-type]
    second = await log.claim(**options, now=NOW + timedelta(minutes=1))  # type: ignore[arg-type]
    third = await log.claim(**options, now=NOW + STALE_AFTER + timedelta(seconds=1))  # type: ignore[arg-type]
    assert (first.won, second.won, third.won) == (True, False, True)
    assert second.record.status == "sending"
    assert third.record.attempts == 2


async def test_different_selections_are_different_reports(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """The report on all accounts and the one on a few are delivered separately."""
    with webhook_receiver() as hook:
        configured = with_settings(settings, webhook_url=hook.url)
        sender = deliverer(configured, db, clock)
        await sender.deliver(make_report(), ["webhook"], selection=selection_key(None))
        await sender.deliver(
            make_report(), ["webhook"], selection=selection_key(["@user0@example.org"])
        )
    assert len(hook.received) == 2


def test_report_key_is_the_period_days_and_the_selection() -> None:
    """Same days, same key; the selection fingerprint ignores order, case and a leading @."""
    key = report_key(make_report(), selection_key(["@B@x.org", "a@x.org"]))
    assert key == report_key(make_report(), selection_key(["a@x.org", "b@x.org"]))
    assert key.startswith("2026-03-25/2026-04-01/accounts-")
    assert report_key(make_report(), "all") == "2026-03-25/2026-04-01/all"


async def test_an_unconfigured_channel_is_refused_before_anything_is_sent(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """Asking for e-mail without SMTP settings: a ConfigError naming what to set."""
    with pytest.raises(ConfigError, match="set smtp_host, email_from and email_to"):
        await deliverer(settings, db, clock).deliver(make_report(), ["email"])
    assert await DeliveryLog(db).recent() == []


# -- e-mail --------------------------------------------------------------------------------


def parse(raw: bytes | str | None) -> Message:
    """A received message."""
    assert isinstance(raw, bytes)
    return email.message_from_bytes(raw, policy=email.policy.default)


def mail_settings(base: Settings, port: int, **values: object) -> Settings:
    """E-mail settings for the local server."""
    return with_settings(
        base,
        smtp_host="127.0.0.1",
        smtp_port=port,
        email_from="fedimeter <reports@example.org>",
        email_to=["alice@example.org", "bob@example.org"],
        **values,
    )


async def test_email_over_starttls_with_login(
    settings: Settings, db: Database, clock: Clock, tmp_path: Path
) -> None:
    """STARTTLS, a login, and a message with text, HTML and the CSV attached."""
    certs = make_certificates(tmp_path)
    with smtp_server(starttls=certs.server_context, users={"me": "pw-123"}) as server:
        configured = mail_settings(
            settings,
            server.port,
            smtp_user="me",
            smtp_password="pw-123",
            smtp_ca_file=certs.ca_file,
        )
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["email"])
    assert outcomes[0].status == "delivered", outcomes[0].detail
    assert outcomes[0].destination == "alice@example.org, bob@example.org"
    assert server.mailbox.logins == ["me"]
    (envelope,) = server.mailbox.messages
    assert envelope.rcpt_tos == ["alice@example.org", "bob@example.org"]
    message = parse(envelope.original_content)
    assert message["Subject"] == "fedimeter report 2026-03-25 \u2013 2026-04-01"
    assert message["Auto-Submitted"] == "auto-generated"
    kinds = [part.get_content_type() for part in message.walk()]
    assert kinds == [
        "multipart/mixed",
        "multipart/alternative",
        "text/plain",
        "text/html",
        "text/csv",
    ]
    text_part = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = text_part.get_payload(decode=True)
    assert isinstance(payload, bytes)
    assert "@user1@example.org: 1,102 (+101, +10.1%) followers" in payload.decode()
    csv_part = next(p for p in message.walk() if p.get_content_type() == "text/csv")
    assert csv_part.get_filename() == "fedimeter-2026-03-25-2026-04-01.csv"


async def test_email_over_implicit_tls(
    settings: Settings, db: Database, clock: Clock, tmp_path: Path
) -> None:
    """smtp_security = tls speaks TLS from the first byte."""
    certs = make_certificates(tmp_path)
    with smtp_server(implicit_tls=certs.server_context) as server:
        configured = mail_settings(
            settings, server.port, smtp_security="tls", smtp_ca_file=certs.ca_file
        )
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["email"])
    assert outcomes[0].status == "delivered", outcomes[0].detail
    assert len(server.mailbox.messages) == 1


async def test_email_refuses_a_certificate_it_cannot_verify(
    settings: Settings, db: Database, clock: Clock, tmp_path: Path
) -> None:
    """Without the CA, STARTTLS fails with advice and nothing is sent."""
    certs = make_certificates(tmp_path)
    with smtp_server(starttls=certs.server_context) as server:
        configured = mail_settings(settings, server.port)
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["email"])
    assert outcomes[0].status == "failed"
    assert "set smtp_ca_file" in outcomes[0].detail
    assert server.mailbox.messages == []


async def test_email_refuses_to_send_in_clear_when_starttls_is_missing(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """A server without STARTTLS, with starttls asked: refused, not downgraded."""
    with smtp_server() as server:
        configured = mail_settings(settings, server.port)
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["email"])
    assert outcomes[0].status == "failed"
    assert "does not offer STARTTLS" in outcomes[0].detail
    assert server.mailbox.messages == []


async def test_email_with_no_security_on_loopback(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """smtp_security = none is fine for a relay on this machine."""
    with smtp_server() as server:
        configured = mail_settings(settings, server.port, smtp_security="none")
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["email"])
    assert outcomes[0].status == "delivered"
    assert len(server.mailbox.messages) == 1


async def test_email_wrong_password_is_a_clear_failure(
    settings: Settings, db: Database, clock: Clock, tmp_path: Path
) -> None:
    """A refused login says so; it is not retried."""
    certs = make_certificates(tmp_path)
    with smtp_server(starttls=certs.server_context, users={"me": "right"}) as server:
        configured = mail_settings(
            settings,
            server.port,
            smtp_user="me",
            smtp_password="wrong",
            smtp_ca_file=certs.ca_file,
        )
        outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["email"])
    assert outcomes[0].status == "failed"
    assert "refused the user name or password (535)" in outcomes[0].detail


async def test_email_password_in_clear_to_another_host_is_refused(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """smtp_security none with a login to a remote host: a ConfigError, nothing sent."""
    configured = with_settings(
        settings,
        smtp_host="mail.example.org",
        smtp_security="none",
        smtp_user="me",
        smtp_password="pw",
        email_from="reports@example.org",
        email_to=["alice@example.org"],
    )
    with pytest.raises(ConfigError, match="in clear"):
        await deliverer(configured, db, clock).deliver(make_report(), ["email"])


async def test_email_server_down_is_retried_then_failed(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """Nothing listens: retried, then failed with the reason."""
    from peers import free_port

    configured = mail_settings(settings, free_port(), smtp_security="none", delivery_retries=1)
    outcomes = await deliverer(configured, db, clock).deliver(make_report(), ["email"])
    assert outcomes[0].status == "failed"
    assert "ConnectionRefusedError" in outcomes[0].detail
    assert "(tried 2 times)" in outcomes[0].detail


# -- several channels, scheduled delivery --------------------------------------------------


async def test_one_failing_channel_does_not_stop_the_others(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """E-mail fails (nothing listens), the webhook is still delivered."""
    from peers import free_port

    with webhook_receiver() as hook:
        configured = mail_settings(
            settings,
            free_port(),
            smtp_security="none",
            delivery_retries=0,
            webhook_url=hook.url,
        )
        outcomes = await deliverer(configured, db, clock).deliver(
            make_report(), ["email", "webhook"]
        )
    assert [(o.channel, o.status) for o in outcomes] == [
        ("email", "failed"),
        ("webhook", "delivered"),
    ]


async def test_daily_delivery_after_rounds_goes_out_once_a_day(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """Rounds at 03:05 and 09:05 send one report; the next day's round sends the next."""
    with webhook_receiver() as hook:
        configured = with_settings(settings, webhook_url=hook.url, deliver="daily")
        sender = deliverer(configured, db, clock)
        repo = Repository(db)
        first = await deliver_after_round(configured, repo, sender, now=clock.now)
        clock.now += timedelta(hours=6)
        second = await deliver_after_round(configured, repo, sender, now=clock.now)
        clock.now += timedelta(hours=18)
        third = await deliver_after_round(configured, repo, sender, now=clock.now)
    assert [o.status for o in first + second + third] == ["delivered", "skipped", "delivered"]
    periods = [json.loads(r.body)["report"] for r in hook.received]
    assert len(periods) == 2
    assert hook.received[0].body != hook.received[1].body


async def test_weekly_delivery_only_on_its_weekday(
    settings: Settings, db: Database, clock: Clock
) -> None:
    """Weekly on Wednesday: nothing after Tuesday's round, the 7-day report after Wednesday's."""
    with webhook_receiver() as hook:
        configured = with_settings(
            settings, webhook_url=hook.url, deliver="weekly", deliver_weekday="wednesday"
        )
        sender = deliverer(configured, db, clock)
        repo = Repository(db)
        tuesday = datetime(2026, 3, 31, 3, 5, tzinfo=UTC)
        assert await deliver_after_round(configured, repo, sender, now=tuesday) == []
        outcomes = await deliver_after_round(
            configured, repo, sender, now=tuesday + timedelta(days=1)
        )
    assert [o.status for o in outcomes] == ["delivered"]
    text = json.loads(hook.received[0].body)["text"]
    assert text.startswith("fedimeter report for 2026-03-25 \u2013 2026-04-01")


def test_scheduled_delivery_needs_a_channel(database_url: str) -> None:
    """deliver = daily with nothing configured is refused when settings load."""
    with pytest.raises(ConfigError, match="no channel is configured"):
        load_settings(database_url=database_url, deliver="daily")


def test_deliver_to_must_name_configured_channels(database_url: str) -> None:
    """deliver_to = email without SMTP settings is refused."""
    with pytest.raises(ConfigError, match="deliver_to names email"):
        load_settings(
            database_url=database_url, webhook_url="https://hooks.example.org/x", deliver_to="email"
        )


def test_recipients_from_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """FEDIMETER_EMAIL_TO takes addresses separated by commas; a bad one is refused."""
    monkeypatch.setenv("FEDIMETER_EMAIL_TO", "a@example.org, Bob <b@example.org>")
    assert load_settings().email_to == ["a@example.org", "Bob <b@example.org>"]
    monkeypatch.setenv("FEDIMETER_EMAIL_TO", "a@example.org, not-an-address")
    with pytest.raises(ConfigError, match="not-an-address"):
        load_settings()


def test_a_header_injection_in_an_address_is_refused() -> None:
    """A line break in email_from cannot add headers."""
    with pytest.raises(ConfigError, match="control characters"):
        load_settings(email_from="a@example.org\r\nBcc: x@evil.example")


async def test_scheduled_delivery_failures_are_logged_not_raised(
    settings: Settings, database_url: str, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """deliver_safely: a refused webhook is a warning; a failing database is a warning too."""
    with webhook_receiver((404, {}, b"nope")) as hook:
        configured = with_settings(settings, webhook_url=hook.url, deliver="daily")
        db = await Database.open(configured.database_url)
        sender = deliverer(configured, db, clock)
        repo = Repository(db)
        outcomes = await deliver_safely(configured, repo, sender, now=clock.now)
        async with db.begin() as conn:  # a database that no longer answers as it should
            await conn.execute(text("ALTER TABLE accounts RENAME TO accounts_gone"))
        broken = await deliver_safely(configured, repo, sender, now=clock.now)
        await db.close()
    assert [o.status for o in outcomes] == ["failed"]
    assert broken == []
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("daily report by webhook" in w and "failed" in w for w in warnings)
    assert any(w.startswith("the daily report was not delivered: ") for w in warnings)
