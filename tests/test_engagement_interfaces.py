"""Engagement through the API, the CLI and reports, against the simulated fediverse."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner, Result

from apihelpers import api, api_settings
from fedimeter.cli import app
from fedimeter.cli.engagement import _coverage
from fedimeter.collect import collect_round
from fedimeter.config import Settings
from fedimeter.domain.engagement import EngagementFigures
from fedimeter.metrics import FedimeterCollector, read_snapshot
from fedimeter.metrics.engagement import EngagementRow, engagement_rows
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.repository import Repository
from simhelpers import sim_client, track
from test_engagement_rounds import hand_made, turn_on
from test_graph import png_size

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=UTC)


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """Alice's hand-made week (test_engagement_rounds.hand_made) on one instance."""
    sim = SimFediverse(seed=9)
    sim.add_instance("alpha", version="4.3.0", rate_limit=None)
    hand_made(sim)
    with sim.run_in_thread():
        yield sim


def run_round(http: TestClient) -> dict[str, Any]:
    """Start a round through the API and wait for it to end."""
    run = http.post("/api/v1/runs").json()
    for _ in range(1000):
        current: dict[str, Any] = http.get(f"/api/v1/runs/{run['id']}").json()
        if current["status"] != "running":
            return current
        time.sleep(0.01)
    raise AssertionError("the round did not finish")


def engaged(http: TestClient, world: SimFediverse) -> str:
    """Track Alice, turn engagement on and run a round; the URL of her engagement."""
    alice = world.instance("alpha").account("alice")
    account = http.post("/api/v1/accounts", json={"handle": f"@{alice.acct}"}).json()
    base = f"/api/v1/accounts/{account['id']}/engagement"
    assert http.put(base).status_code == 200
    assert run_round(http)["status"] == "finished"
    return base


def test_the_api_turns_it_on_and_gives_the_hand_computed_figures(
    settings: Settings, world: SimFediverse
) -> None:
    """PUT on (idempotent), a round, GET the figures of Alice's hand-made week, by day, week."""
    alice = world.instance("alpha").account("alice")
    with api(api_settings(settings), clock=lambda: world.now) as http:
        account = http.post("/api/v1/accounts", json={"handle": f"@{alice.acct}"}).json()
        base = f"/api/v1/accounts/{account['id']}/engagement"
        assert http.get(base).status_code == 404  # never on
        assert http.put("/api/v1/accounts/999/engagement").status_code == 404
        on = http.put(base)
        assert on.status_code == 200, on.text
        assert (on.json()["enabled"], on.json()["read_at"]) == (True, None)
        assert http.put(base).status_code == 200  # idempotent
        assert http.get(base).json()["partial"] is True  # not read yet
        assert run_round(http)["status"] == "finished"
        view = http.get(base, params={"period": "7d", "by": "day", "top": 2})
        assert view.status_code == 200, view.text
        body = view.json()
        weekly = http.get(base, params={"since": "2025-12-29", "by": "week"}).json()
        assert http.get(base, params={"period": "nonsense"}).status_code == 422
    period = body["period"]
    assert (period["posts"], period["replies"], period["boosts"]) == (4, 1, 1)
    received = ("favourites_received", "boosts_received", "replies_received")
    assert tuple(period[name] for name in received) == (23, 7, 4)
    assert period["interactions_per_post"] == pytest.approx(6.8)
    assert period["engagement_rate"] == pytest.approx(3.4)
    assert period["followers"] == 200
    assert [b["interactions"] for b in body["best"]] == [13, 13]
    assert body["best"][0]["excerpt"] == "First <b>bold</b> post"
    assert len(body["buckets"]) == 8  # 7 days back from noon: 8 UTC days
    assert sum(b["posts"] for b in body["buckets"]) == 4
    assert body["state"]["last_requests"] == 1
    assert body["partial"] is False
    assert [b["since"][:10] for b in weekly["buckets"]] == ["2025-12-29", "2026-01-05"]
    assert world.count("alpha", "account_statuses") == 1


def test_the_api_gives_statuses_graphs_report_lines_and_turns_it_off(
    settings: Settings, world: SimFediverse
) -> None:
    """Stored statuses (JSON, CSV), graphs, the report's lines; DELETE keeps, purge deletes."""
    alice = world.instance("alpha").account("alice")
    with api(api_settings(settings), clock=lambda: world.now) as http:
        base = engaged(http, world)
        statuses = http.get(f"{base}/statuses").json()
        as_csv = http.get(f"{base}/statuses", params={"format": "csv"})
        png = http.get(f"{base}/graph.png", params={"period": "7d"})
        svgs = [
            http.get(f"{base}/graph.svg", params={"metric": metric, "by": "week"})
            for metric in ("rate", "activity")
        ]
        assert http.get(f"{base}/graph.png", params={"metric": "nope"}).status_code == 422
        report = http.get("/api/v1/report", params={"period": "7d"}).json()
        assert http.delete(base).status_code == 204
        off = http.get(base).json()
        off_report = http.get("/api/v1/report", params={"period": "7d"}).json()
        assert http.delete(base, params={"purge": "true"}).status_code == 204
        assert http.get(f"{base}/statuses").status_code == 404
    assert len(statuses["statuses"]) == 6
    assert {s["kind"] for s in statuses["statuses"]} == {"post", "reply", "boost"}
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert len(rows) == 6
    assert {r["excerpt"] for r in rows} >= {"First <b>bold</b> post", "A thread, 2/2"}
    assert png.status_code == 200, png.text
    assert png.content.startswith(b"\x89PNG")
    assert all(svg.status_code == 200 and b"<svg" in svg.content for svg in svgs)
    (line,) = report["engagement"]
    assert (line["handle"], line["posts"], line["interactions"]) == (alice.acct, 4, 34)
    assert (off["state"]["enabled"], off["period"]["posts"]) == (False, 4)  # figures kept
    assert off_report["engagement"] == []


def invoke(*args: str) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CLI settings: an SQLite file, loopback allowed, plain http, quick retries."""
    for name, value in {
        "FEDIMETER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "FEDIMETER_ALLOW_PRIVATE_ADDRESSES": "true",
        "FEDIMETER_DEFAULT_SCHEME": "http",
        "FEDIMETER_RETRY_BASE_DELAY": "0.01",
        "FEDIMETER_MAX_RETRIES": "0",
        # Tables as wide as their rows, whatever terminal the test runner has.
        "COLUMNS": "200",
    }.items():
        monkeypatch.setenv(name, value)


def test_the_account_page_shows_engagement_while_it_is_on_and_after(
    settings: Settings, world: SimFediverse
) -> None:
    """Alice's page: the week's figures, her graph from the API, best posts linked, escaped.

    Bob, never on, has no such section; once off, Alice's says so and keeps the figures.
    """
    bob = world.instance("alpha").account("bob")
    with api(api_settings(settings), clock=lambda: world.now) as http:
        base = engaged(http, world)
        alice_id = base.split("/")[4]
        bob_id = http.post("/api/v1/accounts", json={"handle": f"@{bob.acct}"}).json()["id"]
        page = http.get(f"/accounts/{alice_id}", params={"period": "7d"})
        found = re.search(r'<img src="([^"]*/engagement/graph\.svg[^"]*)"', page.text)
        assert found is not None, page.text
        graph = http.get(html.unescape(found.group(1)))
        bobs = http.get(f"/accounts/{bob_id}")
        assert http.delete(base).status_code == 204
        off = http.get(f"/accounts/{alice_id}", params={"period": "7d"})
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.text))
    assert "Engagement (own posts from " in text
    assert "Posts and replies 5 (4 posts, 1 reply)" in text
    assert "Boosts made 1" in text
    assert "Received 23 favourites, 7 boosts, 4 replies" in text
    assert "Per post 6.8" in text
    assert "Engagement rate 3.40% of 200 followers" in text
    # Best posts: the server's text escaped, linked to the post.
    assert "First &lt;b&gt;bold&lt;/b&gt; post" in page.text
    assert "<b>bold</b>" not in page.text
    assert page.text.count('<ol class="best">') == 1
    assert re.search(
        r'<a href="https?://[^"]+" rel="noopener noreferrer nofollow">First', page.text
    )
    assert graph.status_code == 200, graph.text
    assert graph.headers["content-type"].startswith("image/svg+xml")
    assert "by=day" in found.group(1)
    assert bobs.status_code == 200
    assert "engagement-title" not in bobs.text
    assert "Engagement is off for this account" in off.text
    assert "Posts and replies" in off.text


def _draws_graphs(acct: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``engagement graph`` writes an SVG, a PNG of the asked size, and refuses a .gif."""
    picture = tmp_path / "alice.svg"
    drawn = invoke("engagement", "graph", f"@{acct}", "-o", str(picture))
    assert drawn.exit_code == 0, drawn.output
    assert picture.read_bytes().lstrip().startswith(b"<?xml")
    # The look options every graph command has; the default file is named after the
    # account (its port's colon made safe) and the metric.
    monkeypatch.chdir(tmp_path)
    sized = invoke("engagement", "graph", f"@{acct}", "--width", "640", "--scale", "2")
    assert sized.exit_code == 0, sized.output
    default = tmp_path / f"{acct.replace(':', '_')}-engagement-interactions.png"
    assert f"wrote {default.name} (" in sized.stdout
    assert png_size(default.read_bytes()) == (1280, 1000)
    wrong = invoke("engagement", "graph", f"@{acct}", "-o", "alice.gif")
    assert wrong.exit_code == 2
    assert wrong.stderr.strip() == "error: alice.gif must end in .png or .svg"


def test_the_cli_as_a_person_uses_it(
    env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """track engagement, collect, engagement list/show/graph, report, then off with --purge.

    The CLI runs on the real clock: the world starts now, so Alice's week is this week.
    """
    world = SimFediverse(seed=9, start=datetime.now(UTC).replace(microsecond=0))
    world.add_instance("alpha", version="4.3.0", rate_limit=None)
    hand_made(world)
    alice = world.instance("alpha").account("alice")
    with world.run_in_thread():
        assert invoke("track", "add", f"@{alice.acct}").exit_code == 0
        unknown = invoke("track", "engagement", "@nobody@example.org")
        assert unknown.exit_code != 0
        assert "nobody@example.org is not tracked" in unknown.output
        on = invoke("track", "engagement", f"@{alice.acct}")
        assert on.exit_code == 0, on.output
        assert "engagement on for" in on.stdout
        collected = invoke("collect")
        assert collected.exit_code == 0, collected.output
        assert "engagement read: 1 timeline, 6 statuses, 1 request (0 paging)" in collected.stdout
        listed = invoke("engagement", "list", "--json")
        assert listed.exit_code == 0, listed.output
        (entry,) = json.loads(listed.stdout)
        assert (entry["handle"], entry["last_requests"], entry["last_statuses"]) == (
            alice.acct,
            1,
            6,
        )
        shown = invoke("engagement", "show", f"@{alice.acct}", "--period", "7d", "--json")
        assert shown.exit_code == 0, shown.output
        figures = json.loads(shown.stdout)["period"]
        assert (figures["posts"], figures["interactions"]) == (4, 34)
        assert figures["engagement_rate"] == pytest.approx(3.4)
        text = invoke("engagement", "show", f"@{alice.acct}", "--by", "week")
        assert text.exit_code == 0, text.output
        assert "engagement rate: 3.40% of 200 followers" in text.stdout
        assert "First <b>bold</b> post" in text.stdout
        _draws_graphs(alice.acct, tmp_path, monkeypatch)
        report = invoke("report", "--period", "7d")
        assert report.exit_code == 0, report.output
        assert "Engagement (posts of the period, counts as last read):" in report.stdout
        off = invoke("track", "engagement", f"@{alice.acct}", "--off", "--purge")
        assert off.exit_code == 0, off.output
        assert "6 statuses deleted" in off.stdout
        assert json.loads(invoke("engagement", "list", "--json").stdout) == []
        again = invoke("collect")
        assert "engagement read" not in again.stdout
    assert world.count("alpha", "account_statuses") == 1


async def test_metrics_export_the_last_7_days_per_account_with_engagement(
    settings: Settings, repo: Repository, world: SimFediverse
) -> None:
    """After a round: Alice's series hold the hand-computed week; Bob (not on) has none."""
    alpha = world.instance("alpha")
    alice, bob = alpha.account("alice"), alpha.account("bob")
    async with sim_client(settings, world) as client:
        await track(repo, client, [alice, bob])
        await turn_on(repo, alice)
        await collect_round(repo, client, settings, clock=lambda: world.now)

    async def rows(repo: Repository) -> list[EngagementRow]:
        return await engagement_rows(repo, clock=lambda: world.now)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(FedimeterCollector(await read_snapshot(repo, engagement=rows)))
    mine = {"account": alice.acct, "instance": alpha.address.authority}

    def value(name: str, labels: dict[str, str] = mine) -> float | None:
        return registry.get_sample_value(f"fedimeter_account_engagement_{name}", labels)

    assert value("posts") == 5
    assert value("interactions") == 34
    assert value("rate_percent") == pytest.approx(3.4)
    assert value("read_requests") == 1
    assert value("read_timestamp_seconds") == world.now.timestamp()
    assert value("consecutive_failures") == 0
    theirs = {"account": bob.acct, "instance": alpha.address.authority}
    assert value("posts", theirs) is None
    series = [
        s
        for family in registry.collect()
        if family.name.startswith("fedimeter_account_engagement")
        for s in family.samples
    ]
    assert len(series) == 6  # one per family, for Alice alone


# ISO 8601 UTC with a Z, as every --json writes a moment.
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def read_once(env: None) -> Iterator[SimFediverse]:
    """Alice's hand-made week on the real clock, read by one collect; Bob tracked, not on."""
    world = SimFediverse(seed=9, start=datetime.now(UTC).replace(microsecond=0))
    world.add_instance("alpha", version="4.3.0", rate_limit=None)
    hand_made(world)
    alpha = world.instance("alpha")
    with world.run_in_thread():
        alice, bob = alpha.account("alice"), alpha.account("bob")
        assert invoke("track", "add", f"@{alice.acct}", f"@{bob.acct}").exit_code == 0
        assert invoke("track", "engagement", f"@{alice.acct}").exit_code == 0
        collected = invoke("collect")
        assert collected.exit_code == 0, collected.output
        yield world


def test_engagement_json_writes_every_time_in_iso_utc(read_once: SimFediverse) -> None:
    """engagement list and show --json: the state's times end in Z, like the figures'."""
    acct = read_once.instance("alpha").account("alice").acct
    (entry,) = json.loads(invoke("engagement", "list", "--json").stdout)
    shown = json.loads(invoke("engagement", "show", f"@{acct}", "--json").stdout)
    for found in (entry, shown):
        for key in ("enabled_at", "read_at", "covered_since"):
            assert ISO_Z.match(found[key]), (key, found[key])
    assert ISO_Z.match(shown["period"]["since"])


def test_engagement_show_says_each_count_with_its_noun_agreeing(read_once: SimFediverse) -> None:
    """Alice made 1 reply and 1 boost; her best post got 1 reply: never "1 replies"."""
    acct = read_once.instance("alpha").account("alice").acct
    shown = invoke("engagement", "show", f"@{acct}")
    assert shown.exit_code == 0, shown.output
    assert "  4 posts, 1 reply, 1 boost made" in shown.stdout
    assert "(34 interactions on 5 posts)" in shown.stdout
    assert "13 interactions (10 favourites, 2 boosts, 1 reply)" in shown.stdout
    assert "1 replies" not in shown.stdout
    assert "1 boosts" not in shown.stdout
    assert "1 accounts with engagement" not in invoke("engagement", "list").stdout


def test_engagement_off_is_told_by_handle_with_how_to_turn_it_on(
    read_once: SimFediverse, tmp_path: Path
) -> None:
    """Bob is tracked, engagement never on: the error names him, not his internal id."""
    bob = read_once.instance("alpha").account("bob").acct
    said = (
        f"error: engagement is not on for @{bob}"
        f" (turn it on with: fedimeter track engagement @{bob})"
    )
    shown = invoke("engagement", "show", f"@{bob}")
    drawn = invoke("engagement", "graph", f"@{bob}", "-o", str(tmp_path / "bob.svg"))
    for result in (shown, drawn):
        assert result.exit_code == 1
        assert result.stderr.strip() == said


def test_a_week_that_starts_before_reading_began_is_marked_not_zero(
    read_once: SimFediverse,
) -> None:
    """Reading began mid-week: its row says from when, and --json flags it partial."""
    acct = read_once.instance("alpha").account("alice").acct
    args = ("engagement", "show", f"@{acct}", "--by", "week", "--period", "30d")
    data = json.loads(invoke(*args, "--json").stdout)
    covered = datetime.fromisoformat(data["covered_since"])
    first, *rest = data["buckets"]
    assert datetime.fromisoformat(first["since"]) < covered  # the week began before
    assert (first["partial"], first["coverage"]) == (True, "part")
    assert all((b["partial"], b["coverage"]) == (False, "all") for b in rest)
    text = invoke(*args).stdout
    assert f"only from {covered:%Y-%m-%d %H:%M}" in text


def test_a_bucket_none_of_whose_time_was_read_is_not_read() -> None:
    """Before covered_since entirely (or nothing read yet): "none", shown as "not read"."""
    week = EngagementFigures(NOW - 7 * DAY, NOW, 0, 0, 0, 0, 0, 0, None)
    assert _coverage(week, None) == "none"
    assert _coverage(week, NOW) == "none"
    assert _coverage(week, NOW - DAY) == "part"
    assert _coverage(week, NOW - 7 * DAY) == "all"
