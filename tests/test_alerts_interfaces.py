"""Alerts where rounds end (collect, the server's rounds, workers), in the CLI and the API."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from apihelpers import REMOTE, api, api_settings
from conftest import fresh_database
from deliveryhelpers import with_settings
from fedimeter.cli import app
from fedimeter.clock import utc_now
from fedimeter.config import Settings, normalise_database_url
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.domain.tags import TagName
from fedimeter.rounds import RoundManager
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.alerts import AlertStore
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository
from fedimeter.storage.tags import TagStore
from peers import webhook_receiver
from pg import PostgresServer
from simhelpers import sim_client, track
from test_alerts_days import Calendar, at

DROP = '[{"kind": "drop", "percent": 5}]'


def invoke(*args: str) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """A server with alice (1,000 followers) and bob, served from a thread."""
    sim = SimFediverse(seed=13)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    social.add_account("alice", followers=1000)
    social.add_account("bob", followers=50)
    with sim.run_in_thread():
        yield sim


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """CLI settings: an SQLite file, loopback allowed, plain http; the file's path."""
    path = tmp_path / "cli.sqlite3"
    values = {
        "FEDIMETER_DATABASE_URL": f"sqlite:///{path}",
        "FEDIMETER_ALLOW_PRIVATE_ADDRESSES": "true",
        "FEDIMETER_DEFAULT_SCHEME": "http",
        "FEDIMETER_RETRY_BASE_DELAY": "0.01",
        "FEDIMETER_DELIVERY_RETRIES": "0",
        # Tables as wide as their rows, whatever terminal the test runner has.
        "COLUMNS": "200",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return path


def fire_one(settings: Settings, *, today: bool = False, **values: object) -> None:
    """Alice drops 10 % on day 2 (or today): one alert, sent by ``values``' channels."""
    second = utc_now() if today else at(2)

    async def go() -> None:
        db = await Database.open(settings.database_url)
        try:
            days = Calendar(settings, db, {"kind": "drop", "percent": 5}, **values)
            alice = await days.account("alice@example.social")
            await days.round(second - timedelta(days=1), {alice: 1000})
            await days.round(second, {alice: 900})
        finally:
            await db.close()

    asyncio.run(go())


# -- fedimeter collect -----------------------------------------------------------------------


def test_collect_checks_alerts_after_the_round(
    env: Path,
    world: SimFediverse,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Alice loses 10 % between two collects: the second says so and sends it, once."""
    alice = world.instance("social").account("alice")
    with webhook_receiver() as hook:
        monkeypatch.setenv("FEDIMETER_ALERTS", DROP)
        monkeypatch.setenv("FEDIMETER_WEBHOOK_URL", hook.url)
        assert invoke("track", "add", alice.acct).exit_code == 0
        first = invoke("collect")
        alice.followers = 900
        second = invoke("collect")
        third = invoke("collect", "--json")
    assert first.exit_code == second.exit_code == third.exit_code == 0, second.output
    assert "alert:" not in first.stdout
    assert f"alert: @{alice.acct} lost 10.0% of their followers in a day: 1,000 \u2192 900" in (
        second.stdout
    )
    assert "alerts by webhook: delivered: sent 1 alert to the webhook at 127.0.0.1" in (
        second.stdout
    )
    # Said once, on stdout: not again by a log line (on a terminal, Python prints a
    # warning nobody handles to stderr).
    assert second.stderr == ""
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert json.loads(third.stdout)["alerts"] == {"fired": [], "deliveries": [], "error": None}
    assert len(hook.received) == 1


def test_collect_does_not_fail_when_an_alert_cannot_be_sent(
    env: Path, world: SimFediverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The webhook refuses: a line on stderr, exit 0; the next collect sends it."""
    alice = world.instance("social").account("alice")
    with webhook_receiver((400, {}, b"nope")) as hook:
        monkeypatch.setenv("FEDIMETER_ALERTS", DROP)
        monkeypatch.setenv("FEDIMETER_WEBHOOK_URL", hook.url)
        assert invoke("track", "add", alice.acct).exit_code == 0
        assert invoke("collect").exit_code == 0
        alice.followers = 900
        failed = invoke("collect")
        retried = invoke("collect")
    assert failed.exit_code == 0
    assert "alerts by webhook: failed: the webhook at 127.0.0.1" in failed.stderr
    assert "refused 1 alert (400 Bad Request: nope)" in failed.stderr
    assert failed.stderr.count("refused 1 alert") == 1
    assert "alert:" not in retried.stdout
    assert "alerts by webhook: delivered: sent 1 alert" in retried.stdout
    assert len(hook.received) == 2


# -- the server's rounds and the workers -----------------------------------------------------


async def test_the_servers_rounds_check_alerts(repo: Repository, settings: Settings) -> None:
    """RoundManager (the scheduler's and the API's rounds) checks alerts after each round."""
    ruled = with_settings(settings, default_scheme="http", alerts=[{"kind": "drop", "percent": 5}])
    world = SimFediverse(seed=17)
    alice = world.add_instance("social", version="4.3.0", rate_limit=None).add_account(
        "alice", followers=1000
    )
    async with world.serving(), sim_client(ruled, world) as client:
        await track(repo, client, [alice])
        rounds = RoundManager(repo, client, ruled, clock=lambda: world.now)
        await rounds.run()
        world.advance(hours=6)
        alice.followers = 900
        await rounds.run()
        world.advance(hours=6)
        await rounds.run()
    [alert] = await AlertStore(repo.db).recent()
    assert alert.text.startswith(f"@{alice.acct} lost 10.0% of their followers")


@pytest.mark.usefixtures("postgres_server")
def test_a_worker_that_finishes_a_round_checks_alerts(
    postgres_server: PostgresServer, world: SimFediverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fedimeter worker --once` on PostgreSQL: the round's end checks and sends alerts."""
    alice = world.instance("social").account("alice")
    with fresh_database(postgres_server) as url, webhook_receiver() as hook:
        for name, value in {
            "FEDIMETER_DATABASE_URL": normalise_database_url(url),
            "FEDIMETER_ALLOW_PRIVATE_ADDRESSES": "true",
            "FEDIMETER_DEFAULT_SCHEME": "http",
            "FEDIMETER_ALERTS": DROP,
            "FEDIMETER_WEBHOOK_URL": hook.url,
        }.items():
            monkeypatch.setenv(name, value)
        assert invoke("track", "add", alice.acct).exit_code == 0
        assert invoke("worker", "--once").exit_code == 0
        alice.followers = 900
        done = invoke("worker", "--once")
        assert done.exit_code == 0, done.output
        listed = json.loads(invoke("alerts", "list", "--json").stdout)
    assert [a["text"] for a in listed] == [
        f"@{alice.acct} lost 10.0% of their followers in a day: 1,000 \u2192 900"
    ]
    assert [d["status"] for d in listed[0]["deliveries"]] == ["delivered"]
    assert len(hook.received) == 1


# -- fedimeter alerts ------------------------------------------------------------------------


def test_alerts_list_and_check_without_rules_say_how_to_start(env: Path) -> None:
    """No rules, no alerts: both commands say so and exit 0."""
    listed = invoke("alerts", "list")
    checked = invoke("alerts", "check")
    assert listed.exit_code == checked.exit_code == 0
    assert listed.stdout.startswith("No alert has fired. No alert rules are configured")
    assert checked.stdout.startswith("No alert rules are configured: add [[alerts]]")
    assert json.loads(invoke("alerts", "list", "--json").stdout) == []


def test_alerts_list_shows_each_alert_with_its_delivery(
    env: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newest first, the text, and the delivery state by channel; --json for scripts."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", settings.database_url)
    with webhook_receiver((404, {}, b"gone")) as hook:
        fire_one(settings, webhook_url=hook.url, delivery_retries=0)
    table = invoke("alerts", "list")
    assert table.exit_code == 0
    assert "@alice@example.social lost 10.0% of their followers" in table.stdout
    assert "webhook failed (the webhook at 127.0.0.1" in table.stdout
    [listed] = json.loads(invoke("alerts", "list", "--limit", "1", "--json").stdout)
    assert listed["rule"] == "drop-accounts-followers-5%-1d"
    assert listed["occurrence"] == "2026-04-02"
    assert [(d["channel"], d["status"], d["attempts"]) for d in listed["deliveries"]] == [
        ("webhook", "failed", 1)
    ]


def test_alerts_check_fires_delivers_and_then_has_nothing_to_do(
    env: Path, world: SimFediverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--dry-run shows what would fire; check fires and sends it; again: nothing."""
    alice = world.instance("social").account("alice")
    assert invoke("track", "add", alice.acct).exit_code == 0
    assert invoke("collect").exit_code == 0
    alice.followers = 940
    assert invoke("collect").exit_code == 0
    monkeypatch.setenv("FEDIMETER_ALERTS", DROP)
    with webhook_receiver() as hook:
        monkeypatch.setenv("FEDIMETER_WEBHOOK_URL", hook.url)
        dry = invoke("alerts", "check", "--dry-run")
        dry_json = json.loads(invoke("alerts", "check", "--dry-run", "--json").stdout)
        assert hook.received == []
        fired = invoke("alerts", "check")
        again = invoke("alerts", "check", "--json")
    text = f"@{alice.acct} lost 6.0% of their followers in a day: 1,000 \u2192 940"
    assert dry.stdout == f"would fire: {text}\n"
    assert [o["text"] for o in dry_json["would_fire"]] == [text]
    assert fired.exit_code == 0
    assert fired.stdout.splitlines() == [
        f"alert: {text}",
        f"alerts by webhook: delivered: sent 1 alert to the webhook at 127.0.0.1:{hook.port}",
    ]
    assert json.loads(again.stdout) == {"fired": [], "deliveries": [], "error": None}
    assert len(hook.received) == 1


def test_alerts_check_exits_1_when_a_delivery_failed(
    env: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A waiting alert that fails again: stderr says why, exit code 1."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("FEDIMETER_ALERTS", DROP)
    with webhook_receiver(*[(403, {}, b"forbidden")] * 2) as hook:
        monkeypatch.setenv("FEDIMETER_WEBHOOK_URL", hook.url)
        fire_one(settings, today=True, webhook_url=hook.url)
        result = invoke("alerts", "check")
    assert result.exit_code == 1
    assert "alerts by webhook: failed: the webhook at 127.0.0.1" in result.stderr
    assert len(hook.received) == 2


# -- GET /api/v1/alerts ----------------------------------------------------------------------


def test_the_api_lists_alerts_a_page_at_a_time(settings: Settings) -> None:
    """Newest first, with total, limit and offset; in the OpenAPI document."""
    with webhook_receiver() as hook:
        fire_one(settings, webhook_url=hook.url)

    async def more() -> None:
        db = await Database.open(settings.database_url)
        try:
            days = Calendar(settings, db, {"kind": "milestone", "values": [100]})
            bob = await days.account("bob@example.social")
            await days.round(at(3), {bob: 90})
            await days.round(at(4), {bob: 101})
        finally:
            await db.close()

    asyncio.run(more())
    with api(api_settings(settings)) as http:
        first = http.get("/api/v1/alerts", params={"limit": 1})
        second = http.get("/api/v1/alerts", params={"limit": 1, "offset": 1})
        spec = http.get("/openapi.json").json()
        bad = http.get("/api/v1/alerts", params={"limit": 0})
    assert first.status_code == 200
    page = first.json()
    assert (page["total"], page["limit"], page["offset"]) == (2, 1, 0)
    [newest] = page["items"]
    assert newest["kind"] == "milestone"
    assert newest["text"] == "@bob@example.social reached 100 followers (now 101)"
    assert newest["occurrence"] == "100"
    assert newest["deliveries"] == []
    [older] = second.json()["items"]
    assert older["subject"] == "account:alice@example.social"
    assert older["details"]["percent"] == -10.0
    assert [(d["channel"], d["status"]) for d in older["deliveries"]] == [("webhook", "delivered")]
    assert "/api/v1/alerts" in spec["paths"]
    assert "AlertPage" in spec["components"]["schemas"]
    assert bad.status_code == 422


def test_the_api_needs_the_read_token_when_one_is_set(settings: Settings) -> None:
    """Alerts are read like everything else: with the read token when one is set."""
    guarded = api_settings(settings, read_token="r" * 20, api_token="w" * 20)
    with api(guarded, client=REMOTE) as http:
        refused = http.get("/api/v1/alerts")
        allowed = http.get("/api/v1/alerts", headers={"Authorization": f"Bearer {'r' * 20}"})
    assert refused.status_code == 401
    assert allowed.status_code == 200
    assert allowed.json() == {"items": [], "total": 0, "limit": 20, "offset": 0}


# ISO 8601 UTC with a Z, as every --json writes a moment.
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def test_alerts_list_json_writes_every_time_in_iso_utc(
    env: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fired_at and each delivery's delivered_at end in Z, like runs' and accounts' times."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", settings.database_url)
    with webhook_receiver() as hook:
        fire_one(settings, webhook_url=hook.url, delivery_retries=0)
    [listed] = json.loads(invoke("alerts", "list", "--json").stdout)
    assert ISO_Z.match(listed["fired_at"]), listed["fired_at"]
    [delivery] = listed["deliveries"]
    assert delivery["status"] == "delivered"
    assert ISO_Z.match(delivery["delivered_at"]), delivery["delivered_at"]


def test_only_entries_that_match_nothing_tracked_are_warned_of(
    env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in only watches nothing: check (and list, with nothing fired) says so per entry.

    Entries that match something tracked (a handle, a tag anywhere, a tag's host) are not.
    """

    async def seed() -> None:
        db = await Database.open(normalise_database_url(f"sqlite:///{env}"))
        try:
            host = "example.social"
            resolved = ResolvedAccount(Handle("alice", host), InstanceAddress(host), remote_id="1")
            await Repository(db).add_account(resolved, utc_now())
            await TagStore(db).track(
                InstanceAddress("one.example"), TagName("Caturday", "caturday"), utc_now()
            )
        finally:
            await db.close()

    asyncio.run(seed())
    rules = [
        {"name": "people", "kind": "drop", "percent": 5,
         "only": ["@alice@example.social", "@nobody@example.social"]},
        {"name": "tags", "kind": "rise", "percent": 100, "scope": "tags",
         "only": ["#Caturday", "#nosuchtag", "one.example", "caturday@two.example"]},
        {"name": "servers", "kind": "failing", "scope": "instances", "only": ["gone.example"]},
    ]  # fmt: skip
    monkeypatch.setenv("FEDIMETER_ALERTS", json.dumps(rules))
    expected = [
        f"warning: rule {rule}: only names {entry}, which matches no tracked {noun}:"
        " the rule watches nothing there"
        for rule, entry, noun in [
            ("people", "nobody@example.social", "account"),
            ("tags", "#nosuchtag", "hashtag"),
            ("tags", "caturday@two.example", "hashtag"),
            ("servers", "gone.example", "instance"),
        ]
    ]
    for args in (("alerts", "check"), ("alerts", "check", "--dry-run"), ("alerts", "list")):
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        assert result.stderr.splitlines() == expected, args
    assert json.loads(invoke("alerts", "check", "--json").stdout)["fired"] == []


def test_alerts_list_never_cuts_a_rule_name_and_reads_at_80_columns(
    env: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rule's name whole, fired in UTC; at 80 columns an alert takes a few lines."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", settings.database_url)
    name = "drop-accounts-followers-5%-1d-alice@example.social"

    async def go() -> None:
        db = await Database.open(settings.database_url)
        try:
            rule = {"kind": "drop", "percent": 5, "name": name}
            days = Calendar(settings, db, rule, webhook_url="http://127.0.0.1:9/x")
            alice = await days.account("alice@example.social")
            await days.round(at(1), {alice: 1000})
            await days.round(at(2), {alice: 900})
        finally:
            await db.close()

    asyncio.run(go())
    wide = invoke("alerts", "list")
    assert wide.exit_code == 0, wide.output
    assert "fired (UTC)" in wide.stdout
    assert name in wide.stdout
    assert "…" not in wide.stdout
    monkeypatch.setenv("COLUMNS", "80")
    narrow = invoke("alerts", "list")
    assert narrow.exit_code == 0, narrow.output
    lines = narrow.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert "…" not in narrow.stdout
    assert name in narrow.stdout
    assert "@alice@example.social lost 10.0% of their followers" in narrow.stdout
    # The title, a blank line, the heading and its rule, five lines, a blank one.
    assert len(lines) <= 10, narrow.stdout
