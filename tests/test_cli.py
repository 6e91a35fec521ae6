"""The command line, in-process with Typer's CliRunner, against the simulated fediverse."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from fedimeter.cli import app
from fedimeter.simfedi import Fault, SimAccount, SimFediverse

DOCS = Path(__file__).parent.parent / "docs"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings for the CLI: an SQLite file, loopback allowed, plain http, quick retries."""
    values = {
        "FEDIMETER_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "FEDIMETER_ALLOW_PRIVATE_ADDRESSES": "true",
        "FEDIMETER_DEFAULT_SCHEME": "http",
        "FEDIMETER_RETRY_BASE_DELAY": "0.01",
        "FEDIMETER_MAX_RETRIES": "1",
        "FEDIMETER_READ_TIMEOUT": "1",
        "FEDIMETER_HOST_RETRY_DELAY": "0.05",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def world() -> Iterator[SimFediverse]:
    """A small simulated fediverse served from a thread while the test runs."""
    sim = SimFediverse(seed=21)
    host = sim.add_instance("social", version="4.3.0", rate_limit=None)
    host.add_account("alice", followers=100, following=10, statuses=1000, followers_per_day=10)
    host.add_account("bob", followers=5, following=50, statuses=20)
    old = sim.add_instance("old", version="4.0.0", rate_limit=None)
    old.add_account("carol", followers=7, following=8, statuses=9)
    with sim.run_in_thread():
        yield sim


def account(world: SimFediverse, instance: str, name: str) -> SimAccount:
    """A simulated account by instance and user name."""
    return world.instance(instance).account(name)


def invoke(*args: str, input_: str | None = None) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args), input=input_)


def test_track_add_resolves_and_stores(env: dict[str, str], world: SimFediverse) -> None:
    """Adding a handle prints where it was found and exits 0."""
    alice = account(world, "social", "alice")
    result = invoke("track", "add", f"@{alice.acct}")
    assert result.exit_code == 0, result.output
    assert (
        f"tracking @{alice.acct} (id {alice.id} on {alice.instance.address.authority})"
        in result.output
    )


def test_duplicate_add_is_reported_not_doubled(env: dict[str, str], world: SimFediverse) -> None:
    """A second add of the same account is one error line, exit 1, and no second row."""
    alice = account(world, "social", "alice")
    assert invoke("track", "add", f"@{alice.acct}").exit_code == 0
    result = invoke("track", "add", alice.acct.upper().replace("ALICE", "Alice"))
    assert result.exit_code == 1
    assert result.stderr.strip().endswith(f"@{alice.acct} is already tracked")
    assert len(result.stderr.strip().splitlines()) == 1
    listed = json.loads(invoke("track", "list", "--json").stdout)
    assert [a["acct"] for a in listed] == [alice.acct]


def test_invalid_handle_is_exit_2_with_one_line(env: dict[str, str], world: SimFediverse) -> None:
    """Text that is no handle gives one readable line and exit code 2."""
    result = invoke("track", "add", "not a handle")
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: not a handle:")
    assert "Traceback" not in result.output


def test_unknown_account_is_an_error(env: dict[str, str], world: SimFediverse) -> None:
    """An account the server does not have is reported and exits 1."""
    domain = world.instance("social").domain
    result = invoke("track", "add", f"nobody@{domain}")
    assert result.exit_code == 1
    assert "nobody" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_server_is_an_error(env: dict[str, str], world: SimFediverse) -> None:
    """A server that refuses connections is one error line, exit 1."""
    import socket

    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = invoke("track", "add", f"someone@127.0.0.1:{port}")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"127.0.0.1:{port}" in result.stderr


def test_private_address_refused_without_the_setting(
    env: dict[str, str], world: SimFediverse, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default settings a loopback server is refused, naming the setting to change."""
    monkeypatch.delenv("FEDIMETER_ALLOW_PRIVATE_ADDRESSES")
    alice = account(world, "social", "alice")
    result = invoke("track", "add", alice.acct)
    assert result.exit_code == 1
    assert "allow_private_addresses" in result.stderr
    assert world.requests == []


def test_collect_then_list_and_samples(env: dict[str, str], world: SimFediverse) -> None:
    """collect stores a sample per account; list and samples show the served numbers."""
    handles = [
        f"@{account(world, i, n).acct}"
        for i, n in [("social", "alice"), ("social", "bob"), ("old", "carol")]
    ]
    assert invoke("track", "add", *handles).exit_code == 0
    result = invoke("collect")
    assert result.exit_code == 0, result.output
    assert re.search(r"measured\s+│\s+3 │", result.stdout)
    world.advance(days=1)
    assert invoke("collect").exit_code == 0
    listed = json.loads(invoke("track", "list", "--json").stdout)
    alice = next(a for a in listed if a["acct"].startswith("alice@"))
    assert alice["latest"]["followers"] == 110
    assert alice["state"] == "active"
    table = invoke("track", "list").stdout
    assert "110" in table
    assert "carol" in table
    samples = json.loads(invoke("samples", handles[0], "--json").stdout)
    assert [s["followers"] for s in samples["samples"]] == [100, 110]


def test_collect_with_nothing_tracked_says_what_to_do(env: dict[str, str]) -> None:
    """An empty round exits 0 and tells how to add an account."""
    result = invoke("collect")
    assert result.exit_code == 0
    assert "fedimeter track add" in result.stdout


def test_collect_json_reports_failures(env: dict[str, str], world: SimFediverse) -> None:
    """A failing host shows up in collect --json with a code and reason per account."""
    carol = account(world, "old", "carol")
    assert invoke("track", "add", carol.acct).exit_code == 0
    world.instance("old").faults.append(Fault(kind="status", status=503))
    result = invoke("collect", "--json")
    assert result.exit_code == 0
    payload = json.loads(result.stdout)
    assert payload["accounts_failed"] == 1
    assert payload["failures"] == [
        {
            "account": f"@{carol.acct}",
            "code": "unavailable",
            "reason": payload["failures"][0]["reason"],
        }
    ]
    assert "503" in payload["failures"][0]["reason"]
    listed = invoke("track", "list").stdout
    assert "failing" in listed


def test_samples_csv_and_period(env: dict[str, str], world: SimFediverse) -> None:
    """samples --csv prints a header and one row per sample; --since filters."""
    alice = account(world, "social", "alice")
    invoke("track", "add", alice.acct)
    invoke("collect")
    rows = list(csv.reader(io.StringIO(invoke("samples", alice.acct, "--csv").stdout)))
    assert rows[0] == ["taken_at", "followers", "following", "statuses", "last_status_at"]
    assert rows[1][1:4] == ["100", "10", "1000"]
    future = invoke("samples", alice.acct, "--since", "2999-01-01").stdout
    assert "No samples" in future
    bad = invoke("samples", alice.acct, "--since", "yesterday")
    assert bad.exit_code == 2
    assert "YYYY-MM-DD" in bad.stderr


def test_samples_of_an_untracked_account_is_an_error(
    env: dict[str, str], world: SimFediverse
) -> None:
    """Asking for an account nobody tracks says so in one line."""
    result = invoke("samples", "ghost@social.example")
    assert result.exit_code == 1
    assert "@ghost@social.example is not tracked" in result.stderr


def test_remove_keeps_history_and_purge_deletes_it(
    env: dict[str, str], world: SimFediverse
) -> None:
    """remove keeps the samples (re-adding continues them); --purge deletes them."""
    alice = account(world, "social", "alice")
    invoke("track", "add", alice.acct)
    invoke("collect")
    removed = invoke("track", "remove", alice.acct)
    assert removed.exit_code == 0
    assert "history kept" in removed.stdout
    assert json.loads(invoke("track", "list", "--json").stdout) == []
    assert "tracking again" in invoke("track", "add", alice.acct).stdout
    assert len(json.loads(invoke("samples", alice.acct, "--json").stdout)["samples"]) == 1
    purged = invoke("track", "remove", "--purge", alice.acct)
    assert "and its 1 samples" in purged.stdout
    assert invoke("samples", alice.acct).exit_code == 1
    again = invoke("track", "remove", alice.acct)
    assert again.exit_code == 1
    assert "is not tracked" in again.stderr


def test_import_reads_mastodons_follows_export(
    env: dict[str, str], world: SimFediverse, tmp_path: Path
) -> None:
    """A follows CSV adds every account; bad rows are reported, the rest added."""
    alice, carol = account(world, "social", "alice"), account(world, "old", "carol")
    export = tmp_path / "following_accounts.csv"
    export.write_text(
        "Account address,Show boosts,Notify on new posts,Languages\n"
        f"{alice.acct},true,false,\n"
        f"{carol.acct},true,false,en\n"
        "not a handle,true,false,\n"
    )
    result = invoke("track", "import", str(export))
    assert result.exit_code == 1
    assert "3 accounts" in result.stdout
    assert "2 added" in result.stdout
    assert "1 failed" in result.stdout
    assert "not a handle" in result.stderr
    again = invoke("track", "import", str(export))
    assert "2 already tracked" in again.stdout


def test_import_of_a_missing_file_is_exit_2(env: dict[str, str], tmp_path: Path) -> None:
    """A file that does not exist is one line and exit code 2."""
    result = invoke("track", "import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "nope.csv" in result.output


def test_runs_lists_rounds_and_shows_one(env: dict[str, str], world: SimFediverse) -> None:
    """runs lists recent rounds; runs --id shows one with its failures."""
    carol = account(world, "old", "carol")
    invoke("track", "add", carol.acct)
    world.instance("old").faults.append(Fault(kind="malformed", times=10))
    invoke("collect")
    listed = json.loads(invoke("runs", "--json").stdout)
    assert [r["status"] for r in listed] == ["finished"]
    one = json.loads(invoke("runs", "--id", str(listed[0]["id"]), "--json").stdout)
    assert one["failures"][0]["code"] == "bad_response"
    assert invoke("runs", "--id", "99").exit_code == 1


def test_db_status_and_upgrade(env: dict[str, str]) -> None:
    """db upgrade brings the schema to the newest revision; db status says it is current."""
    assert invoke("db", "status").exit_code == 1
    upgraded = invoke("db", "upgrade")
    assert upgraded.exit_code == 0
    assert "newest" in upgraded.stdout
    status = invoke("db", "status")
    assert status.exit_code == 0
    assert "current" in status.stdout


def test_a_bad_setting_is_exit_3(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid setting gives one line naming it, exit code 3."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", "mysql://x@y/z")
    result = invoke("track", "list")
    assert result.exit_code == 3
    assert "database_url" in result.stderr


def test_every_command_has_help_and_is_documented() -> None:
    """Each command prints help and appears in docs/cli.md."""
    documented = (DOCS / "cli.md").read_text()
    root = get_command(app)
    names: list[str] = []
    for name, command in getattr(root, "commands", {}).items():
        subcommands = getattr(command, "commands", None)
        names += [f"{name} {sub}" for sub in subcommands] if subcommands else [name]
    assert len(names) >= 10
    for name in names:
        result = invoke(*name.split(), "--help")
        assert result.exit_code == 0, name
        assert f"fedimeter {name}" in documented, name


@pytest.mark.slow
def test_the_installed_command_runs_the_demo(tmp_path: Path) -> None:
    """`fedimeter demo` works as a real process, measures every account, posts the report."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fedimeter",
            "demo",
            "--days",
            "3",
            "--database",
            str(tmp_path / "d.sqlite3"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "day 1: measured 7 of 7 accounts" in result.stdout
    assert "read 2 instances, 2 hashtags, trends, " in result.stdout
    assert "day 3: measured 6 of 6 accounts" in result.stdout  # one was suspended
    # dave lost a fifth of his followers on day 2 (of 3): one alert, printed once.
    assert result.stdout.count("lost 19.5% of their followers in a day") == 1
    assert "Hashtags on 127.0.0.1:" in result.stdout
    assert "Engagement of @alice@127.0.0.1:" in result.stdout
    assert "Posted the report for these 3 days on the simulated mastodon-4.3 server" in (
        result.stdout
    )
    assert "  | fedimeter report for " in result.stdout
    assert result.stderr == ""


@pytest.mark.slow
@pytest.mark.parametrize(
    "args",
    [
        ["track", "add", "@@"],
        ["report", "--format", "xml"],  # a usage error: click's box would be 5 lines
        ["alerts", "list", "--limit", "abc"],
    ],
)
def test_the_installed_command_prints_one_line_errors(tmp_path: Path, args: list[str]) -> None:
    """A real process given a bad handle or option prints one line and no traceback."""
    result = subprocess.run(
        ["fedimeter", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            "PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin",
            "HOME": str(tmp_path),
            "COLUMNS": "80",
        },
    )
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["report", "--format", "xml"],
            (
                "error: Invalid value for '--format' / '-f': 'xml' is not one of 'text',"
                " 'markdown', 'csv', 'json', 'html'. (fedimeter report -h for help)"
            ),
        ),
        (
            ["alerts", "list", "--limit", "abc"],
            (
                "error: Invalid value for '--limit' / '-n': expected a whole number"
                " (fedimeter alerts list -h for help)"
            ),
        ),
        (
            ["alerts", "list", "--limit", "0"],
            (
                "error: Invalid value for '--limit' / '-n': must be at least 1"
                " (fedimeter alerts list -h for help)"
            ),
        ),
        (["nosuch"], "error: No such command 'nosuch'. (fedimeter -h for help)"),
        (["track", "add"], "error: Missing argument 'handles'. (fedimeter track add -h for help)"),
    ],
)
def test_usage_errors_are_one_line(args: list[str], line: str) -> None:
    """What click says of a bad option or command, in one line with where to read more."""
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.stderr == line + "\n"
    assert result.stdout == ""


def test_report_shows_changes_over_the_period(env: dict[str, str], world: SimFediverse) -> None:
    """report prints each account's change; formats and a selection work; bad input is exit 2."""
    alice, carol = account(world, "social", "alice"), account(world, "old", "carol")
    assert invoke("track", "add", alice.acct, carol.acct).exit_code == 0
    assert invoke("collect").exit_code == 0
    text = invoke("report")
    assert text.exit_code == 0
    assert text.stdout.startswith("fedimeter report for ")
    assert f"@{alice.acct}: 100 followers" in text.stdout
    as_json = json.loads(invoke("report", "--format", "json", alice.acct).stdout)
    assert [line["handle"] for line in as_json["accounts"]] == [alice.acct]
    assert invoke("report", "--format", "csv").stdout.count("\n") == 3
    assert invoke("report", "--period", "fortnight").exit_code == 2
    assert invoke("report", "--period", "7d", "--since", "2026-01-01").exit_code == 2
    unknown = invoke("report", "ghost@social.example")
    assert unknown.exit_code == 1
    assert "is not tracked" in unknown.stderr


def test_graph_writes_a_png_or_svg(
    env: dict[str, str], world: SimFediverse, tmp_path: Path
) -> None:
    """graph writes the file named by -o in the format of its extension."""
    alice = account(world, "social", "alice")
    invoke("track", "add", alice.acct)
    invoke("collect")
    png = tmp_path / "alice.png"
    result = invoke("graph", alice.acct, "--metric", "combined", "-o", str(png))
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    svg = tmp_path / "alice.svg"
    assert invoke("graph", alice.acct, "-o", str(svg), "--theme", "dark").exit_code == 0
    assert b"<svg" in svg.read_bytes()
    bad = invoke("graph", alice.acct, "-o", str(tmp_path / "alice.gif"))
    assert bad.exit_code == 2
    assert "must end in .png or .svg" in bad.stderr
    assert invoke("graph", "ghost@social.example", "-o", str(png)).exit_code == 1


def test_export_streams_every_sample(
    env: dict[str, str], world: SimFediverse, tmp_path: Path
) -> None:
    """export writes all samples as CSV to stdout or as a JSON array to a file."""
    alice, carol = account(world, "social", "alice"), account(world, "old", "carol")
    invoke("track", "add", alice.acct, carol.acct)
    invoke("collect")
    world.advance(days=1)
    invoke("collect")
    rows = list(csv.reader(io.StringIO(invoke("export").stdout)))
    assert rows[0] == [
        "account",
        "taken_at",
        "followers",
        "following",
        "statuses",
        "last_status_at",
    ]
    assert [(r[0], r[2]) for r in rows[1:]] == [
        (alice.acct, "100"),
        (alice.acct, "110"),
        (carol.acct, "7"),
        (carol.acct, "7"),
    ]
    target = tmp_path / "all.json"
    written = invoke("export", "--format", "json", "-o", str(target))
    assert written.exit_code == 0
    assert "wrote 4 samples" in written.stderr
    assert len(json.loads(target.read_text())) == 4
    assert json.loads(invoke("export", "-f", "json", "--since", "2999-01-01").stdout) == []
    assert invoke("export", "--since", "soon").exit_code == 2
