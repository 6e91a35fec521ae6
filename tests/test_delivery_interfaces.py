"""Delivery through the CLI and the API, against the simulated fediverse and local peers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from apihelpers import REMOTE, api, api_settings
from fedimeter.cli import app
from fedimeter.config import Settings
from fedimeter.simfedi import SimFediverse
from peers import webhook_receiver


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """Two tracked-to-be accounts, and a server with a reporting account to post as."""
    sim = SimFediverse(seed=5)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    social.add_account("alice", followers=100, followers_per_day=10)
    social.add_account("bob", followers=5)
    social.add_account("reports")
    with sim.run_in_thread():
        yield sim


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, world: SimFediverse) -> dict[str, str]:
    """CLI settings: an SQLite file, loopback allowed, posting to the simulated server."""
    social = world.instance("social")
    values = {
        "FEDIMETER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "FEDIMETER_ALLOW_PRIVATE_ADDRESSES": "true",
        "FEDIMETER_DEFAULT_SCHEME": "http",
        "FEDIMETER_RETRY_BASE_DELAY": "0.01",
        "FEDIMETER_DELIVERY_RETRIES": "1",
        "FEDIMETER_POST_INSTANCE": social.base_url,
        "FEDIMETER_POST_TOKEN": social.add_token(social.account("reports")),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


def invoke(*args: str) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args))


def track_and_collect(world: SimFediverse) -> None:
    """Track alice and bob and measure them once."""
    social = world.instance("social")
    accounts = [social.account("alice").acct, social.account("bob").acct]
    assert invoke("track", "add", *accounts).exit_code == 0
    assert invoke("collect").exit_code == 0


def test_report_post_posts_once_per_period(env: dict[str, str], world: SimFediverse) -> None:
    """--post posts the report; the same command again posts nothing and says why."""
    track_and_collect(world)
    first = invoke("report", "--post")
    assert first.exit_code == 0, first.output
    (status,) = world.instance("social").statuses
    assert first.stdout.strip() == f"mastodon: delivered: posted as 1 post: {status.url}"
    assert f"{world.instance('social').account('alice').acct}: 100 followers" in status.text
    again = invoke("report", "--post")
    assert again.exit_code == 0
    assert again.stdout.startswith("mastodon: skipped: delivered already on ")
    assert len(world.instance("social").statuses) == 1
    listed = json.loads(invoke("deliveries", "--json").stdout)
    assert [(d["channel"], d["status"], d["posts"]) for d in listed] == [
        ("mastodon", "delivered", 1)
    ]
    assert env["FEDIMETER_POST_TOKEN"] not in invoke("deliveries").stdout


def test_report_on_some_accounts_is_another_report(
    env: dict[str, str], world: SimFediverse
) -> None:
    """The report on alice alone is delivered even after the report on everyone."""
    track_and_collect(world)
    assert invoke("report", "--post").exit_code == 0
    alice = world.instance("social").account("alice").acct
    result = invoke("report", alice, "--post")
    assert result.exit_code == 0
    assert result.stdout.startswith("mastodon: delivered")
    assert len(world.instance("social").statuses) == 2


def test_report_email_without_settings_stops_before_anything(
    env: dict[str, str], world: SimFediverse
) -> None:
    """An unconfigured channel: one line naming the settings, exit 3, nothing posted."""
    track_and_collect(world)
    result = invoke("report", "--post", "--email")
    assert result.exit_code == 3
    assert result.stderr.strip() == (
        "error: cannot deliver by email: set smtp_host, email_from and email_to"
        " (see docs/delivery.md)"
    )
    assert world.instance("social").statuses == []


def test_a_failed_delivery_exits_1_after_trying_the_others(
    env: dict[str, str], world: SimFediverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook refuses (404), the post still goes out; stderr says why; exit 1."""
    track_and_collect(world)
    with webhook_receiver((404, {}, b"no such hook")) as hook:
        monkeypatch.setenv("FEDIMETER_WEBHOOK_URL", hook.url)
        result = invoke("report", "--webhook", "--post")
    assert result.exit_code == 1
    assert "webhook: FAILED: the webhook at 127.0.0.1" in result.stderr
    assert result.stdout.startswith("mastodon: delivered")


def test_collect_delivers_the_daily_report(
    env: dict[str, str], world: SimFediverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With deliver=daily, collect sends the report after the round, once per day."""
    with webhook_receiver() as hook:
        monkeypatch.setenv("FEDIMETER_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("FEDIMETER_DELIVER", "daily")
        monkeypatch.setenv("FEDIMETER_DELIVER_TO", "webhook")
        social = world.instance("social")
        assert invoke("track", "add", social.account("alice").acct).exit_code == 0
        first = invoke("collect", "--json")
        assert first.exit_code == 0, first.output
        second = invoke("collect")
        skipped = invoke("collect", "--no-deliver")
    deliveries = json.loads(first.stdout)["deliveries"]
    assert [(d["channel"], d["status"]) for d in deliveries] == [("webhook", "delivered")]
    assert "webhook: skipped: delivered already" in second.stdout
    assert "webhook:" not in skipped.stdout
    assert len(hook.received) == 1
    assert json.loads(hook.received[0].body)["report"]["accounts"][0]["handle"] == (
        social.account("alice").acct
    )
    assert world.instance("social").statuses == []  # deliver_to = webhook only


# -- API -----------------------------------------------------------------------------------


def test_api_delivers_and_lists(settings: Settings, world: SimFediverse) -> None:
    """POST /api/v1/deliveries sends the report; again it is skipped; GET lists it."""
    with webhook_receiver() as hook, api(api_settings(settings, webhook_url=hook.url)) as http:
        social = world.instance("social")
        assert (
            http.post("/api/v1/accounts", json={"handle": social.account("alice").acct}).status_code
            == 201
        )
        assert http.post("/api/v1/runs").status_code == 202
        body = {"channels": ["webhook"], "period": "7d"}
        first = http.post("/api/v1/deliveries", json=body)
        second = http.post("/api/v1/deliveries", json=body)
        listed = http.get("/api/v1/deliveries").json()
    assert first.status_code == 200
    assert first.json()["delivered"] is True
    assert [o["status"] for o in first.json()["outcomes"]] == ["delivered"]
    assert second.json()["outcomes"][0]["status"] == "skipped"
    assert [(d["channel"], d["status"], d["attempts"]) for d in listed] == [
        ("webhook", "delivered", 1)
    ]
    assert len(hook.received) == 1


def test_api_delivery_failures_are_in_the_answer(settings: Settings) -> None:
    """A refusing webhook: 200 with delivered false and the reason in the outcome."""
    with (
        webhook_receiver((410, {}, b"gone")) as hook,
        api(api_settings(settings, webhook_url=hook.url)) as http,
    ):
        answer = http.post("/api/v1/deliveries", json={"channels": ["webhook"]})
    assert answer.status_code == 200
    assert answer.json()["delivered"] is False
    assert "410 Gone" in answer.json()["outcomes"][0]["detail"]


def test_api_delivery_input_errors(settings: Settings) -> None:
    """Unconfigured channel 422, unknown account 404, unknown channel 422, bad period 422."""
    with api(api_settings(settings)) as http:
        unconfigured = http.post("/api/v1/deliveries", json={"channels": ["email"]})
        unknown = http.post("/api/v1/deliveries", json={"channels": ["email"], "account_id": [99]})
        bad_channel = http.post("/api/v1/deliveries", json={"channels": ["pigeon"]})
        empty = http.post("/api/v1/deliveries", json={"channels": []})
    assert unconfigured.status_code == 422
    assert unconfigured.json()["detail"].startswith("cannot deliver by email: set smtp_host")
    assert unknown.status_code == 422  # the channel is checked first: nothing is looked up
    assert bad_channel.status_code == 422
    assert empty.status_code == 422
    with webhook_receiver() as hook, api(api_settings(settings, webhook_url=hook.url)) as http:
        missing = http.post(
            "/api/v1/deliveries", json={"channels": ["webhook"], "account_id": [99]}
        )
        period = http.post("/api/v1/deliveries", json={"channels": ["webhook"], "period": "x"})
    assert missing.status_code == 404
    assert period.status_code == 422
    assert hook.received == []


def test_api_delivery_needs_the_token(settings: Settings) -> None:
    """Delivering is a write: refused from another machine without a token."""
    with api(api_settings(settings), client=REMOTE) as http:
        answer = http.post("/api/v1/deliveries", json={"channels": ["webhook"]})
    assert answer.status_code == 403
