"""Prometheus metrics: the collector over hand-made snapshots, and ``GET /metrics``.

Values are checked with ``registry.get_sample_value``; the text format with the real
``promtool check metrics`` (skipped without it, except on CI) and prometheus_client's parser.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from apihelpers import REMOTE, api, api_settings
from fedimeter.config import Settings
from fedimeter.domain.handles import parse_account_ref
from fedimeter.domain.instances import (
    InstanceFigures,
    InstanceMeasurement,
    SourceResult,
    WeekActivity,
)
from fedimeter.domain.models import AccountState, Handle, InstanceAddress
from fedimeter.errors import InvalidInput
from fedimeter.metrics import (
    FedimeterCollector,
    InstanceRow,
    MetricsSnapshot,
    instance_rows,
    newest_closed_run,
    read_snapshot,
    render_metrics,
)
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.records import AccountRecord, RunRecord, SampleRecord
from fedimeter.storage.repository import Repository

NOW = datetime(2026, 4, 1, 3, 0, tzinfo=UTC)
HOST = "social.example"
TOKEN = "metrics-api-t0ken-0123456789abcdef"
READ_TOKEN = "metrics-read-t0ken-0123456789abc"


# --- building snapshots -----------------------------------------------------------------------


def account(
    account_id: int,
    username: str = "alice",
    *,
    host: str = HOST,
    state: AccountState = AccountState.ACTIVE,
    display_name: str = "",
) -> AccountRecord:
    """A stored account on ``host``."""
    return AccountRecord(
        id=account_id,
        handle=Handle(username, host),
        instance_id=1,
        instance_host=host,
        base_url=f"https://{host}",
        remote_id=str(account_id),
        display_name=display_name,
        url=f"https://{host}/@{username}",
        state=state,
        moved_to=None,
        added_at=NOW - timedelta(days=30),
        state_changed_at=None,
        last_error=None,
        last_error_code=None,
        last_error_at=None,
        consecutive_failures=0,
    )


def sample(
    account_id: int,
    *,
    followers: int = 120,
    following: int = 30,
    statuses: int = 400,
    last_status_at: date | None = date(2026, 3, 30),
    taken_at: datetime = NOW,
) -> SampleRecord:
    """A measurement of one account."""
    return SampleRecord(
        account_id=account_id,
        taken_at=taken_at,
        followers=followers,
        following=following,
        statuses=statuses,
        last_status_at=last_status_at,
        run_id=1,
    )


def run(
    run_id: int,
    status: str = "finished",
    *,
    started_at: datetime = NOW,
    seconds: float | None = 95.5,
) -> RunRecord:
    """A round that took ``seconds`` (None: no end recorded) with distinct totals."""
    return RunRecord(
        id=run_id,
        started_at=started_at,
        finished_at=None if seconds is None else started_at + timedelta(seconds=seconds),
        heartbeat_at=started_at,
        status=status,
        resumes_run_id=None,
        owner="host:1",
        accounts_planned=10,
        accounts_measured=8,
        accounts_failed=2,
        requests=31,
        rate_limited=3,
        rate_limit_wait_seconds=12.5,
        retries=4,
        error=None,
    )


def registry_of(snapshot: MetricsSnapshot, version: str = "9.8.7") -> CollectorRegistry:
    """A registry holding one collector over ``snapshot``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FedimeterCollector(snapshot, version=version))
    return registry


def labels(username: str = "alice", host: str = HOST) -> dict[str, str]:
    """The labels of an account's series."""
    return {"account": f"{username}@{host}", "instance": host}


def full_snapshot() -> MetricsSnapshot:
    """Accounts in every state, a running round after an ended one, two instances."""
    return MetricsSnapshot(
        accounts=[
            (account(1, "alice"), sample(1)),
            (account(2, "bob", state=AccountState.SUSPENDED), sample(2, followers=7)),
            (account(3, "carol", state=AccountState.MOVED), sample(3, last_status_at=None)),
            (account(4, "dan", host="other.example", state=AccountState.GONE), sample(4)),
            (account(5, "erin"), None),
        ],
        last_run=run(9, "running", seconds=None),
        last_finished_run=run(8),
        instances=[
            InstanceRow(
                host=HOST,
                software="mastodon",
                version="4.3.2",
                users=1200,
                statuses=56_000,
                domains=800,
                peers=950,
                active_month=300,
                active_halfyear=700,
                week_statuses=900,
                week_logins=250,
                week_registrations=12,
                measured_at=NOW,
            ),
            InstanceRow(host="other.example", up=False),
        ],
    )


# --- promtool ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def promtool() -> str:
    """The promtool binary (CI must have it; locally the test skips without it)."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing on CI (scripts/test installs Debian's prometheus)")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def check_metrics(promtool: str, text: bytes) -> None:
    """``promtool check metrics`` accepts ``text`` without a complaint."""
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr).decode()
    assert result.stdout.strip() == b""
    assert result.stderr.strip() == b""


# --- accounts ---------------------------------------------------------------------------------


def test_an_account_exports_its_latest_counts_by_account_and_home_instance() -> None:
    """Followers, following, posts and the sample's time, labelled user@domain and home host."""
    registry = registry_of(MetricsSnapshot(accounts=[(account(1), sample(1))]))
    get = registry.get_sample_value
    assert get("fedimeter_account_followers", labels()) == 120
    assert get("fedimeter_account_following", labels()) == 30
    assert get("fedimeter_account_statuses", labels()) == 400
    assert get("fedimeter_account_sample_timestamp_seconds", labels()) == NOW.timestamp()
    assert get("fedimeter_account_state", {**labels(), "state": "active"}) == 1


def test_the_account_label_is_the_handle_and_the_instance_label_where_it_is_measured() -> None:
    """An account whose handle domain differs from its web host: account=handle, instance=host."""
    record = replace(account(1, "Alice", host="example.com"), instance_host="social.example.com")
    registry = registry_of(MetricsSnapshot(accounts=[(record, sample(1))]))
    expected = {"account": "Alice@example.com", "instance": "social.example.com"}
    assert registry.get_sample_value("fedimeter_account_followers", expected) == 120


def test_the_last_post_is_midnight_utc_of_its_day_and_absent_when_it_never_posted() -> None:
    """last_status_at is a day: its 00:00 UTC; an account that never posted has no series."""
    registry = registry_of(
        MetricsSnapshot(
            accounts=[
                (account(1, "alice"), sample(1, last_status_at=date(2026, 3, 30))),
                (account(2, "bob"), sample(2, last_status_at=None)),
            ]
        )
    )
    name = "fedimeter_account_last_status_timestamp_seconds"
    assert (
        registry.get_sample_value(name, labels("alice"))
        == datetime(2026, 3, 30, tzinfo=UTC).timestamp()
    )
    assert registry.get_sample_value(name, labels("bob")) is None
    assert registry.get_sample_value("fedimeter_account_followers", labels("bob")) == 120


def test_accounts_without_a_sample_and_untracked_ones_are_not_exported() -> None:
    """Never measured: counted as tracked, no series; untracked: neither."""
    registry = registry_of(
        MetricsSnapshot(
            accounts=[
                (account(1, "alice"), None),
                (account(2, "bob", state=AccountState.UNTRACKED), sample(2)),
            ]
        )
    )
    for name in ("fedimeter_account_followers", "fedimeter_account_sample_timestamp_seconds"):
        assert registry.get_sample_value(name, labels("alice")) is None
        assert registry.get_sample_value(name, labels("bob")) is None
    assert registry.get_sample_value("fedimeter_tracked_accounts", {"state": "active"}) == 1
    assert registry.get_sample_value("fedimeter_tracked_accounts", {"state": "untracked"}) is None


@pytest.mark.parametrize(
    "state", [AccountState.SUSPENDED, AccountState.MOVED, AccountState.GONE], ids=str
)
def test_accounts_no_longer_measured_keep_their_last_sample_and_say_their_state(
    state: AccountState,
) -> None:
    """A suspended, moved or gone account: its last counts, and state=<its state> 1 alone."""
    registry = registry_of(MetricsSnapshot(accounts=[(account(1, state=state), sample(1))]))
    assert registry.get_sample_value("fedimeter_account_followers", labels()) == 120
    for other in AccountState:
        value = registry.get_sample_value("fedimeter_account_state", {**labels(), "state": other})
        assert value == (1 if other is state else None)


def test_tracked_accounts_counts_every_state_with_a_zero_for_the_empty_ones() -> None:
    """fedimeter_tracked_accounts{state}: measured or not, each tracked state present."""
    registry = registry_of(full_snapshot())
    counts = {
        state: registry.get_sample_value("fedimeter_tracked_accounts", {"state": state})
        for state in ("active", "suspended", "moved", "gone")
    }
    assert counts == {"active": 2, "suspended": 1, "moved": 1, "gone": 1}
    empty = registry_of(MetricsSnapshot())
    assert empty.get_sample_value("fedimeter_tracked_accounts", {"state": "gone"}) == 0


def test_display_names_are_not_exported() -> None:
    """Only the handle names an account: display names (free text) appear nowhere."""
    record = account(1, display_name='Alice "the" \\ writer\nsecond line')
    text = render_metrics(MetricsSnapshot(accounts=[(record, sample(1))])).decode()
    assert "writer" not in text
    assert "Alice" not in text


@pytest.mark.parametrize("text", ['@a"b@social.example', "@a\\b@social.example", "@a\nb@x.example"])
def test_handles_cannot_carry_characters_a_label_would_escape(text: str) -> None:
    """Quotes, backslashes and newlines never reach a handle, so account labels need none."""
    with pytest.raises(InvalidInput):
        parse_account_ref(text)


# --- instances --------------------------------------------------------------------------------


def test_an_instance_exports_its_figures_and_skips_what_it_did_not_say() -> None:
    """Up, users, posts, peers, active users by period, the week, info; None: no series."""
    registry = registry_of(full_snapshot())
    get = registry.get_sample_value
    social = {"instance": HOST}
    assert get("fedimeter_instance_up", social) == 1
    assert get("fedimeter_instance_users", social) == 1200
    assert get("fedimeter_instance_statuses", social) == 56_000
    assert get("fedimeter_instance_known_peers", social) == 950
    assert get("fedimeter_instance_active_users", {**social, "period": "month"}) == 300
    assert get("fedimeter_instance_active_users", {**social, "period": "halfyear"}) == 700
    assert get("fedimeter_instance_week_statuses", social) == 900
    assert get("fedimeter_instance_week_logins", social) == 250
    assert get("fedimeter_instance_week_registrations", social) == 12
    assert get("fedimeter_instance_sample_timestamp_seconds", social) == NOW.timestamp()
    info = {**social, "software": "mastodon", "version": "4.3.2"}
    assert get("fedimeter_instance_info", info) == 1
    other = {"instance": "other.example"}
    assert get("fedimeter_instance_up", other) == 0
    for name in (
        "fedimeter_instance_users",
        "fedimeter_instance_statuses",
        "fedimeter_instance_known_peers",
        "fedimeter_instance_week_statuses",
        "fedimeter_instance_week_logins",
        "fedimeter_instance_week_registrations",
        "fedimeter_instance_sample_timestamp_seconds",
    ):
        assert get(name, other) is None, name
    assert get("fedimeter_instance_active_users", {**other, "period": "month"}) is None
    families = {f.name: f for f in registry.collect()}
    assert [s.labels["instance"] for s in families["fedimeter_instance"].samples] == [HOST]


def test_known_peers_falls_back_to_the_domain_count() -> None:
    """Without a peer list, the domain count the server reports."""
    registry = registry_of(MetricsSnapshot(instances=[InstanceRow(host=HOST, domains=640)]))
    assert registry.get_sample_value("fedimeter_instance_known_peers", {"instance": HOST}) == 640


def test_an_instance_with_software_but_no_version_has_an_info_series() -> None:
    """The unknown half of the info is an empty label, which Prometheus drops."""
    registry = registry_of(MetricsSnapshot(instances=[InstanceRow(host=HOST, software="misskey")]))
    labels_ = {"instance": HOST, "software": "misskey", "version": ""}
    assert registry.get_sample_value("fedimeter_instance_info", labels_) == 1


async def test_instance_rows_are_the_latest_measurements(repo: Repository) -> None:
    """instance_rows maps each measured tracked instance to a row; unmeasured ones are left out."""
    store = InstanceStore(repo.db)
    measured = await store.track(InstanceAddress("social.example"), NOW)
    await store.track(InstanceAddress("new.example"), NOW)
    assert await instance_rows(repo) == []
    await store.store(
        measured.id,
        InstanceMeasurement(
            taken_at=NOW,
            software="mastodon",
            version="4.3.2",
            open_registrations=True,
            figures=InstanceFigures(users=120, statuses=9_000, peers=33, active_month=40),
            weeks=(WeekActivity(date(2026, 2, 23), 700, 50, 3, complete=True),),
            sources=(SourceResult("nodeinfo", "ok"),),
        ),
    )
    assert await instance_rows(repo) == [
        InstanceRow(
            host="social.example",
            software="mastodon",
            version="4.3.2",
            up=True,
            users=120,
            statuses=9_000,
            peers=33,
            active_month=40,
            week_statuses=700,
            week_logins=50,
            week_registrations=3,
            measured_at=NOW,
        )
    ]


async def test_read_snapshot_takes_instances_from_its_reader(repo: Repository) -> None:
    """read_snapshot calls the reader it is given for the instance rows."""
    rows = [InstanceRow(host=HOST, users=5)]

    async def reader(_repo: Repository) -> list[InstanceRow]:
        return rows

    snapshot = await read_snapshot(repo, instances=reader)
    assert snapshot == MetricsSnapshot(instances=rows)


# --- fedimeter's own rounds -------------------------------------------------------------------


def test_round_figures_come_from_the_newest_round_that_ended() -> None:
    """A running round counts as in progress; the figures are those of the last one that ended."""
    registry = registry_of(full_snapshot())
    get = registry.get_sample_value
    assert get("fedimeter_round_in_progress") == 1
    assert get("fedimeter_last_round_start_timestamp_seconds") == NOW.timestamp()
    assert get("fedimeter_last_round_duration_seconds") == 95.5
    for result, value in (("planned", 10), ("measured", 8), ("failed", 2)):
        assert get("fedimeter_last_round_accounts", {"result": result}) == value
    assert get("fedimeter_last_round_requests") == 31
    assert get("fedimeter_last_round_rate_limited") == 3
    assert get("fedimeter_last_round_retries") == 4
    assert get("fedimeter_last_round_rate_limit_wait_seconds") == 12.5
    assert get("fedimeter_last_round_success") == 1


@pytest.mark.parametrize(
    ("status", "success"), [("finished", 1), ("failed", 0), ("interrupted", 0)]
)
def test_the_last_round_succeeded_only_when_it_finished(status: str, success: int) -> None:
    """fedimeter_last_round_success: 1 for finished, 0 for failed or interrupted."""
    ended = run(1, status)
    registry = registry_of(MetricsSnapshot(last_run=ended, last_finished_run=ended))
    assert registry.get_sample_value("fedimeter_last_round_success") == success
    assert registry.get_sample_value("fedimeter_round_in_progress") == 0


def test_a_round_whose_end_was_not_recorded_has_no_duration() -> None:
    """A round marked interrupted by the next one has no end time: no duration series."""
    ended = run(1, "interrupted", seconds=None)
    registry = registry_of(MetricsSnapshot(last_run=ended, last_finished_run=ended))
    assert registry.get_sample_value("fedimeter_last_round_duration_seconds") is None
    assert registry.get_sample_value("fedimeter_last_round_start_timestamp_seconds") is not None


def test_before_any_round_only_in_progress_is_exported() -> None:
    """No round yet: in progress 0, no last-round figures."""
    registry = registry_of(MetricsSnapshot())
    names = {f.name for f in registry.collect() if f.samples}
    assert names == {"fedimeter_tracked_accounts", "fedimeter_round_in_progress", "fedimeter_build"}
    assert registry.get_sample_value("fedimeter_round_in_progress") == 0
    assert registry.get_sample_value("fedimeter_last_round_success") is None


def test_newest_closed_run_skips_running_rounds() -> None:
    """The first round, newest first, that is not running; None when all are."""
    assert newest_closed_run([run(3, "running"), run(2, "failed"), run(1)]) == run(2, "failed")
    assert newest_closed_run([run(1, "running")]) is None
    assert newest_closed_run([]) is None


def test_build_info_names_the_version() -> None:
    """fedimeter_build_info{version} 1."""
    registry = registry_of(MetricsSnapshot(), version="1.2.3")
    assert registry.get_sample_value("fedimeter_build_info", {"version": "1.2.3"}) == 1


# --- the text format --------------------------------------------------------------------------


def test_every_family_has_help_and_no_gauge_ends_in_total() -> None:
    """Prometheus naming: a HELP on each family, fedimeter_ prefix, _total left to counters."""
    for family in registry_of(full_snapshot()).collect():
        assert family.documentation, family.name
        assert family.name.startswith("fedimeter_")
        assert family.type in {"gauge", "info"}
        assert not family.name.endswith("_total")


def test_label_values_with_quotes_backslashes_and_newlines_are_escaped(promtool: str) -> None:
    """Software and version come from the servers: escaped in the text, read back intact."""
    software, version = 'mast"odon\\fork', '4.3.0\n# HELP fake "x"'
    row = InstanceRow(host=HOST, software=software, version=version)
    text = render_metrics(MetricsSnapshot(instances=[row]))
    assert b'software="mast\\"odon\\\\fork"' in text
    assert b'version="4.3.0\\n# HELP fake \\"x\\""' in text
    [info] = [
        f
        for f in text_string_to_metric_families(text.decode())
        if f.name == "fedimeter_instance_info"
    ]
    assert [(s.labels["software"], s.labels["version"]) for s in info.samples] == [
        (software, version)
    ]
    check_metrics(promtool, text)


def test_promtool_accepts_a_full_snapshot(promtool: str) -> None:
    """Accounts in every state, rounds and instances pass promtool's checks."""
    check_metrics(promtool, render_metrics(full_snapshot()))


def test_promtool_accepts_an_empty_snapshot(promtool: str) -> None:
    """Nothing tracked, no round: still a valid exposition."""
    check_metrics(promtool, render_metrics(MetricsSnapshot()))


# --- GET /metrics -----------------------------------------------------------------------------


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """One simulated server with three accounts, served from a thread."""
    sim = SimFediverse(seed=53)
    social = sim.add_instance("social", version="4.3.0", rate_limit=None)
    for name, followers in [("alice", 100), ("bob", 20), ("carol", 3)]:
        social.add_account(name, followers=followers, following=5, statuses=40)
    with sim.run_in_thread():
        yield sim


def _wait_for_round(http: object) -> dict[str, object]:
    post = getattr(http, "post")  # noqa: B009 - keeps the helper free of test-client types
    get = getattr(http, "get")  # noqa: B009
    started = post("/api/v1/runs").json()
    for _ in range(1000):
        current = get(f"/api/v1/runs/{started['id']}").json()
        if current["status"] != "running":
            return dict(current)
        time.sleep(0.01)
    raise AssertionError("the round did not finish")


def test_metrics_on_an_empty_database_pass_promtool(settings: Settings, promtool: str) -> None:
    """A fresh database: 200 in the text format, zero accounts, no round, promtool happy."""
    with api(api_settings(settings)) as http:
        answer = http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert 'fedimeter_tracked_accounts{state="active"} 0.0' in answer.text
    assert "fedimeter_last_round_success" not in answer.text
    check_metrics(promtool, answer.content)


def test_metrics_export_accounts_suspensions_and_rounds(
    settings: Settings, world: SimFediverse, promtool: str
) -> None:
    """After two rounds, one finding bob suspended: counts, bob's last sample, round figures."""
    social = world.instance("social")
    with api(api_settings(settings), clock=lambda: world.now) as http:
        for name in ("alice", "bob", "carol"):
            handle = f"@{social.account(name).acct}"
            assert http.post("/api/v1/accounts", json={"handle": handle}).status_code == 201
        assert _wait_for_round(http)["status"] == "finished"
        social.account("bob").suspended = True
        world.advance(hours=1)
        assert _wait_for_round(http)["status"] == "finished"
        answer = http.get("/metrics")
    assert answer.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(answer.text)}

    def value(name: str, **wanted: str) -> float:
        [found] = [s.value for s in families[name].samples if s.labels.items() >= wanted.items()]
        return found

    host = social.web_domain
    for name, followers in (("alice", 100), ("bob", 20), ("carol", 3)):
        acct = social.account(name).acct
        assert value("fedimeter_account_followers", account=acct, instance=host) == followers
    bob = social.account("bob").acct
    assert value("fedimeter_account_state", account=bob, state="suspended") == 1
    assert value("fedimeter_account_followers", account=bob) == 20  # its last sample
    assert value("fedimeter_tracked_accounts", state="active") == 2
    assert value("fedimeter_tracked_accounts", state="suspended") == 1
    assert value("fedimeter_last_round_success") == 1
    assert value("fedimeter_last_round_accounts", result="measured") == 2
    check_metrics(promtool, answer.content)


def test_metrics_need_the_read_token_when_one_is_set(settings: Settings) -> None:
    """With a read token: 401 without a token, 200 with the read token or the API token."""
    secured = api_settings(settings, api_token=TOKEN, read_token=READ_TOKEN)
    with api(secured, client=REMOTE) as http:
        refused = http.get("/metrics")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        wrong = http.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        assert wrong.status_code == 401
        for token in (READ_TOKEN, TOKEN):
            answer = http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            assert answer.status_code == 200
            assert "fedimeter_build_info" in answer.text


def test_metrics_are_open_without_a_read_token(settings: Settings) -> None:
    """No read token: any client reads /metrics, as every other read."""
    with api(api_settings(settings, api_token=TOKEN), client=REMOTE) as http:
        assert http.get("/metrics").status_code == 200


def test_metrics_are_in_the_openapi_document_as_text(settings: Settings) -> None:
    """GET /metrics is documented, answering text/plain."""
    with api(api_settings(settings)) as http:
        operation = http.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert "text/plain" in operation["responses"]["200"]["content"]
    assert "401" in operation["responses"]
