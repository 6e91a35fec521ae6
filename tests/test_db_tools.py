"""`fedimeter db backup`, `db restore` and `db check`, and the storage functions behind them."""

from __future__ import annotations

import asyncio
import os
import random
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Table, make_url, select, text
from typer.testing import CliRunner, Result

from conftest import fresh_database
from fedimeter.cli import app
from fedimeter.config import Settings, normalise_database_url
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.errors import CheckFailed, InvalidInput, StorageError
from fedimeter.storage.database import Database, _alembic_config
from fedimeter.storage.maintenance import (
    Problem,
    backup_database,
    check_database,
    restore_database,
    sqlite_file,
    sqlite_url,
)
from fedimeter.storage.records import NewSample, RunProgress, RunRecord
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import account_samples, accounts, instances, run_failures, runs
from pg import PostgresServer

T0 = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
PASSWORD = "s3cret"
#: The tables compared between a database and its copy, each ordered by its primary key.
TABLES: tuple[Table, ...] = (instances, accounts, runs, account_samples, run_failures)


def invoke(*args: str) -> Result:
    """Run ``fedimeter ARGS`` in-process."""
    return CliRunner().invoke(app, list(args))


def never_alive(_run: RunRecord) -> bool:
    """Every other round's owner is dead."""
    return False


def resolved(name: str) -> ResolvedAccount:
    """An account on a made-up server."""
    return ResolvedAccount(
        handle=Handle(name, "example.org"),
        home=InstanceAddress("social.example"),
        remote_id=name,
        display_name=name,
    )


async def populate(url: str, accounts_: int = 5, samples_each: int = 200) -> None:
    """Accounts, one finished round with a sample per account and hour, and a running one."""
    db = await Database.open(url)
    try:
        repo = Repository(db)
        ids = [(await repo.add_account(resolved(f"user{i}"), T0)).id for i in range(accounts_)]
        run, _ = await repo.start_run(T0, "test", never_alive)
        batch = [
            NewSample(a, T0 + timedelta(hours=h), 100 + h, 10, 1000 + h, date(2026, 2, 28))
            for a in ids
            for h in range(samples_each)
        ]
        progress = RunProgress(accounts_measured=len(batch))
        await repo.commit_batch(run.id, T0, progress, samples=batch)
        await repo.finish_run(run.id, T0, progress)
        # A round left running by a process that died is no problem: the next one resumes it.
        await repo.start_run(T0 + timedelta(days=1), "host:99999", never_alive)
    finally:
        await db.close()


async def contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the compared tables."""
    db = await Database.open(url, migrate=False)
    try:
        async with db.connect() as conn:
            return {
                table.name: [
                    tuple(row)
                    for row in await conn.execute(
                        select(table).order_by(*table.primary_key.columns)
                    )
                ]
                for table in TABLES
            }
    finally:
        await db.close()


def sqlite_path(settings: Settings) -> Path:
    """The SQLite file of the test's settings."""
    path = sqlite_file(settings.database_url)
    assert path is not None
    return path


def with_password(url: str) -> str:
    """``url`` with a password (the test server trusts everyone, so any will do)."""
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


def leftovers(folder: Path) -> list[str]:
    """Temporary files a backup or restore left behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def corrupt_the_middle(path: Path) -> None:
    """Overwrite the middle third of an SQLite file's pages with noise."""
    page_size = 4096
    pages = path.stat().st_size // page_size
    assert pages >= 9, pages
    noise = random.Random(7)
    with path.open("r+b") as file:
        for page in range(pages // 3, 2 * pages // 3):
            file.seek(page * page_size)
            file.write(noise.randbytes(page_size))


def add_orphan_sample(settings: Settings) -> None:
    """A sample of account 999, which does not exist, written with foreign keys off."""
    path = sqlite_file(settings.database_url)
    if path is not None:
        conn = sqlite3.connect(path)  # Python's sqlite3 leaves foreign keys off
        with conn:
            conn.execute(
                "INSERT INTO account_samples (account_id, taken_at, followers, following,"
                " statuses) VALUES (999, '2026-03-01 03:00:00.000000', 1, 2, 3)"
            )
        conn.close()
        return

    async def insert() -> None:
        db = await Database.open(settings.database_url, migrate=False)
        try:
            async with db.begin() as conn:
                # Constraints are triggers on PostgreSQL; a superuser may turn them off.
                await conn.execute(text("SET LOCAL session_replication_role = replica"))
                await conn.execute(
                    account_samples.insert().values(
                        account_id=999, taken_at=T0, followers=1, following=2, statuses=3
                    )
                )
        finally:
            await db.close()

    asyncio.run(insert())


async def set_revision(url: str, revision: str) -> None:
    """Pretend the schema is at ``revision``."""
    db = await Database.open(url, migrate=False)
    try:
        async with db.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        await db.close()


@pytest.fixture
def cli_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The CLI pointed at the test database."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", settings.database_url)
    return settings


only_sqlite = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
only_postgresql = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


# --- check --------------------------------------------------------------------------------


def test_check_on_a_sound_database_is_exit_0(cli_env: Settings) -> None:
    """A populated database, with a round left running by a dead process, has no problem."""
    asyncio.run(populate(cli_env.database_url))
    assert asyncio.run(check_database(cli_env.database_url)) == []
    result = invoke("db", "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(": no problems (5 accounts, 1,000 samples, 2 rounds)")
    as_json = invoke("db", "check", "--json")
    assert as_json.exit_code == 0
    assert '"ok": true' in as_json.stdout


def test_check_finds_rows_that_point_nowhere(cli_env: Settings) -> None:
    """A sample of an account that does not exist is one line, the same on both backends."""
    asyncio.run(populate(cli_env.database_url, samples_each=2))
    add_orphan_sample(cli_env)
    problem = Problem("orphans", "account_samples: 1 row whose account_id is missing from accounts")
    assert asyncio.run(check_database(cli_env.database_url)) == [problem]
    result = invoke("db", "check")
    assert result.exit_code == 5
    assert result.stdout.splitlines()[0] == f"problem: {problem}"
    assert result.stdout.splitlines()[1].endswith(": 1 problem")
    assert result.stderr == ""


def test_check_reports_a_schema_behind_or_unknown(cli_env: Settings) -> None:
    """A pending migration says to upgrade; a revision this version never wrote says so."""
    asyncio.run(populate(cli_env.database_url, samples_each=1))
    asyncio.run(set_revision(cli_env.database_url, "0001"))
    [behind] = asyncio.run(check_database(cli_env.database_url))
    assert behind.code == "schema_behind"
    assert "run `fedimeter db upgrade`" in behind.message
    asyncio.run(set_revision(cli_env.database_url, "9999_from_the_future"))
    [unknown] = asyncio.run(check_database(cli_env.database_url))
    assert unknown.code == "schema"
    assert "9999_from_the_future is unknown" in unknown.message
    assert invoke("db", "check").exit_code == 5


def test_check_reports_values_fedimeter_never_writes(cli_env: Settings) -> None:
    """An account state fedimeter does not know is a problem."""
    asyncio.run(populate(cli_env.database_url, samples_each=1))

    async def freeze() -> None:
        db = await Database.open(cli_env.database_url, migrate=False)
        try:
            async with db.begin() as conn:
                await conn.execute(accounts.update().values(state="frozen"))
        finally:
            await db.close()

    asyncio.run(freeze())
    assert asyncio.run(check_database(cli_env.database_url)) == [
        Problem("values", "accounts.state: 5 rows hold 'frozen', which fedimeter never writes")
    ]


@only_sqlite
def test_check_on_a_damaged_sqlite_file_is_one_line_and_exit_5(cli_env: Settings) -> None:
    """Noise over pages in the middle of the file: one problem line, a summary, no traceback."""
    asyncio.run(populate(cli_env.database_url))
    corrupt_the_middle(sqlite_path(cli_env))
    [problem] = asyncio.run(check_database(cli_env.database_url))
    assert problem.code == "damaged"
    result = invoke("db", "check")
    assert result.exit_code == 5
    lines = result.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("problem: the file is damaged: ")
    assert lines[1].endswith(": 1 problem")
    assert result.stderr == ""
    assert "Traceback" not in result.output


@only_sqlite
def test_check_of_a_missing_sqlite_file_is_exit_3_and_creates_nothing(
    cli_env: Settings,
) -> None:
    """No database file: one line, exit 3, and no empty database left behind."""
    result = invoke("db", "check")
    assert result.exit_code == 3
    assert result.stderr.strip() == f"error: there is no database at {sqlite_path(cli_env)}"
    assert not sqlite_path(cli_env).exists()


# --- backup -------------------------------------------------------------------------------


@only_sqlite
async def test_backup_of_a_populated_sqlite_database_equals_it(
    settings: Settings, tmp_path: Path
) -> None:
    """Every row is copied; the copy is one self-contained file that passes the check."""
    await populate(settings.database_url)
    target = tmp_path / "backups" / "copy.sqlite3"
    target.parent.mkdir()
    result = await backup_database(settings.database_url, target)
    assert result.path == target
    assert result.size == target.stat().st_size
    assert result.counts == {"accounts": 5, "samples": 1000, "rounds": 2}
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.sqlite3"]
    conn = sqlite3.connect(target)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()
    assert await contents(sqlite_url(target)) == await contents(settings.database_url)
    assert await check_database(sqlite_url(target)) == []


@only_sqlite
def test_backup_command_says_what_it_wrote(cli_env: Settings, tmp_path: Path) -> None:
    """One line: from where, to where, the size and what the copy holds."""
    asyncio.run(populate(cli_env.database_url))
    target = tmp_path / "copy.sqlite3"
    result = invoke("db", "backup", str(target))
    assert result.exit_code == 0, result.output
    size = target.stat().st_size
    assert result.stdout.strip().endswith(
        f" to {target} ({size / 1000:.1f} kB: 5 accounts, 1,000 samples, 2 rounds)"
    )


class Writer:
    """Another connection committing in a thread, one sample per commit, as a round does.

    Each commit adds one sample of the account ``writer`` (followers = its number) and sets
    the round's total to the number written so far: a copy that holds both from different
    moments is not one commit's state.
    """

    def __init__(self, url: str) -> None:
        """Write into the database at ``url`` once started."""
        self.url = url
        self.started = 0  # commits begun: none later can be in a copy
        self.done = 0  # commits finished: all of them must be in a later copy
        self.failures: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Self:
        """Start writing."""
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        """Stop writing."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            asyncio.run(self._write())
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.failures.append(exc)

    async def _write(self) -> None:
        db = await Database.open(self.url)
        try:
            repo = Repository(db)
            account = (await repo.add_account(resolved("writer"), T0)).id
            run, _ = await repo.start_run(T0 + timedelta(days=2), "writer", never_alive)
            while not self._stop.is_set():
                n = self.started = self.started + 1
                sample = NewSample(account, T0 + timedelta(seconds=n), n, 0, 0, None)
                progress = RunProgress(accounts_measured=n)
                await repo.commit_batch(run.id, T0, progress, samples=[sample])
                self.done = n
        finally:
            await db.close()


async def written(url: str) -> tuple[list[int], int]:
    """The writer's samples (their numbers) and its round's total, in the database at ``url``."""
    db = await Database.open(url, migrate=False)
    try:
        async with db.connect() as conn:
            numbers = (
                await conn.execute(
                    select(account_samples.c.followers)
                    .join(accounts, accounts.c.id == account_samples.c.account_id)
                    .where(accounts.c.username == "writer")
                    .order_by(account_samples.c.followers)
                )
            ).scalars()
            total = await conn.execute(
                select(runs.c.accounts_measured).where(runs.c.owner == "writer")
            )
            return list(numbers), total.scalar_one()
    finally:
        await db.close()


@only_sqlite
async def test_backup_while_writing_holds_exactly_the_commits_before_it(
    settings: Settings, tmp_path: Path
) -> None:
    """Backups taken while another connection commits: each is one commit's state, whole.

    A backup holds the writer's first k samples, with k between the commits finished before
    it started and those begun before it ended, and a round total of k. Restored, it passes
    the check and holds exactly those rows.
    """
    url = settings.database_url
    await populate(url, samples_each=400)  # a file of some hundred pages: copying takes a while
    bounds: list[tuple[int, int, Path]] = []
    with Writer(url) as writer:
        while writer.done < 5 and not writer.failures:
            await asyncio.sleep(0.01)
        for i in range(5):
            before = writer.done
            target = tmp_path / f"during-{i}.sqlite3"
            await backup_database(url, target)
            bounds.append((before, writer.started, target))
            await asyncio.sleep(0.02)
    assert writer.failures == []
    assert bounds[-1][1] > bounds[0][0], "the writer made no progress during the backups"
    for before, after, target in bounds:
        numbers, total = await written(sqlite_url(target))
        k = len(numbers)
        assert before <= k <= after
        assert numbers == list(range(1, k + 1))
        assert total == k

    last = bounds[-1][2]
    restored = tmp_path / "restored" / "fedimeter.sqlite3"
    result = await restore_database(sqlite_url(restored), last)
    assert result.previous is None
    assert await check_database(sqlite_url(restored)) == []
    assert await contents(sqlite_url(restored)) == await contents(sqlite_url(last))


@only_sqlite
def test_backup_refuses_to_overwrite_a_file_without_force(
    cli_env: Settings, tmp_path: Path
) -> None:
    """An existing FILE is kept (exit 2, one line) unless --force."""
    asyncio.run(populate(cli_env.database_url, samples_each=1))
    target = tmp_path / "copy.sqlite3"
    target.write_bytes(b"precious")
    result = invoke("db", "backup", str(target))
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {target} exists: use --force to replace it"
    assert target.read_bytes() == b"precious"
    forced = invoke("db", "backup", str(target), "--force")
    assert forced.exit_code == 0, forced.output
    assert target.read_bytes().startswith(b"SQLite format 3\0")
    assert leftovers(tmp_path) == []


@only_sqlite
@pytest.mark.parametrize("suffix", ["", "-wal"])
def test_backup_refuses_the_database_itself(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    """The live database (or its log), by any name, is refused even with --force."""
    asyncio.run(populate(cli_env.database_url, samples_each=1))
    path = sqlite_path(cli_env)
    before = path.read_bytes()
    monkeypatch.chdir(path.parent)
    for name in (f"{path}{suffix}", f"./{path.name}{suffix}"):
        result = invoke("db", "backup", name, "--force")
        assert result.exit_code == 2
        assert "is the database itself" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before
    assert leftovers(path.parent) == []


@only_sqlite
async def test_backup_refuses_a_folder_or_a_missing_folder(
    settings: Settings, tmp_path: Path
) -> None:
    """Nothing is written where the destination cannot be a file."""
    await populate(settings.database_url, samples_each=1)
    with pytest.raises(InvalidInput, match="is a folder"):
        await backup_database(settings.database_url, tmp_path)
    with pytest.raises(InvalidInput, match="does not exist"):
        await backup_database(settings.database_url, tmp_path / "nowhere" / "copy.sqlite3")


@only_sqlite
def test_backup_of_a_damaged_database_writes_nothing(cli_env: Settings, tmp_path: Path) -> None:
    """The copy fails the integrity check: exit 5, one line, no FILE and no temporary file."""
    asyncio.run(populate(cli_env.database_url))
    corrupt_the_middle(sqlite_path(cli_env))
    target = tmp_path / "out" / "copy.sqlite3"
    target.parent.mkdir()
    result = invoke("db", "backup", str(target))
    assert result.exit_code == 5
    assert len(result.stderr.strip().splitlines()) == 1
    assert "is damaged" in result.stderr
    assert list(target.parent.iterdir()) == []


# --- restore ------------------------------------------------------------------------------


@only_sqlite
def test_restore_replaces_the_database_and_keeps_the_old_one(
    cli_env: Settings, tmp_path: Path
) -> None:
    """The backup's rows replace the database's; the replaced file stays beside it."""
    url = cli_env.database_url
    asyncio.run(populate(url, samples_each=3))
    backup = tmp_path / "backup.sqlite3"
    assert invoke("db", "backup", str(backup)).exit_code == 0
    saved = asyncio.run(contents(url))
    add_orphan_sample(cli_env)  # what happened after the backup, to be undone
    result = invoke("db", "restore", str(backup))
    assert result.exit_code == 0, result.output
    assert asyncio.run(contents(url)) == saved
    assert asyncio.run(check_database(url)) == []
    path = sqlite_path(cli_env)
    [kept] = sorted(path.parent.glob(f"{path.name}.*.bak"))
    assert result.stdout.splitlines() == [
        f"restored {backup} into {path} (5 accounts, 15 samples, 2 rounds)",
        f"the database it replaced is kept as {kept}",
    ]
    assert asyncio.run(check_database(sqlite_url(kept)))[0].code == "orphans"
    assert leftovers(path.parent) == []


@only_sqlite
def test_restore_refuses_a_database_in_use(cli_env: Settings, tmp_path: Path) -> None:
    """Another process holding the database open, idle, makes restore refuse (exit 3)."""
    url = cli_env.database_url
    asyncio.run(populate(url, samples_each=1))
    backup = tmp_path / "backup.sqlite3"
    assert invoke("db", "backup", str(backup)).exit_code == 0
    path = sqlite_path(cli_env)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sqlite3, sys, time\n"
                "c = sqlite3.connect(sys.argv[1])\n"
                "c.execute('PRAGMA journal_mode=WAL')\n"
                "c.execute('SELECT count(*) FROM accounts').fetchall()\n"
                "print('open', flush=True)\n"
                "time.sleep(60)\n"
            ),
            str(path),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"open\n"
        result = invoke("db", "restore", str(backup))
        assert result.exit_code == 3
        assert "is in use by another process" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    finally:
        holder.kill()
        holder.wait()
    assert sorted(p.name for p in path.parent.iterdir() if ".bak" in p.name) == []
    assert leftovers(path.parent) == []
    assert invoke("db", "restore", str(backup)).exit_code == 0


@only_sqlite
def test_restore_refuses_a_damaged_backup(cli_env: Settings, tmp_path: Path) -> None:
    """A backup that fails the check changes nothing: exit 5, one line."""
    url = cli_env.database_url
    asyncio.run(populate(url))
    backup = tmp_path / "backup.sqlite3"
    assert invoke("db", "backup", str(backup)).exit_code == 0
    corrupt_the_middle(backup)
    before = asyncio.run(contents(url))
    result = invoke("db", "restore", str(backup))
    assert result.exit_code == 5
    assert len(result.stderr.strip().splitlines()) == 1
    assert "nothing was changed" in result.stderr
    assert asyncio.run(contents(url)) == before
    assert leftovers(sqlite_path(cli_env).parent) == []
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("hello " * 1000)
    assert invoke("db", "restore", str(not_sqlite)).exit_code == 2


@only_sqlite
async def test_restore_brings_an_older_backup_to_the_newest_schema(
    settings: Settings, tmp_path: Path
) -> None:
    """A backup from before the last migration is upgraded as it is restored."""
    head = Database.head_revision()
    assert head is not None
    previous = ScriptDirectory.from_config(_alembic_config()).get_revision(head).down_revision
    assert isinstance(previous, str)
    old = tmp_path / "old.sqlite3"
    db = await Database.open(sqlite_url(old), migrate=False)
    try:
        await db.upgrade(previous)
    finally:
        await db.close()
    result = await restore_database(settings.database_url, old)
    assert result.upgraded_from == previous
    assert await check_database(settings.database_url) == []


@only_sqlite
async def test_restore_refuses_the_database_itself(settings: Settings) -> None:
    """Restoring the database onto itself is refused before anything happens."""
    await populate(settings.database_url, samples_each=1)
    with pytest.raises(InvalidInput, match="is the database itself"):
        await restore_database(settings.database_url, sqlite_path(settings))


# --- PostgreSQL ---------------------------------------------------------------------------


@only_postgresql
def test_postgresql_backup_runs_pg_dump_and_pg_restore_restores_it(
    settings: Settings,
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """`db backup` writes pg_dump's custom format, password through the environment only."""
    asyncio.run(populate(settings.database_url))
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", with_password(settings.database_url))
    target = tmp_path / "fedimeter.dump"
    result = invoke("db", "backup", str(target))
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert f" to {target} (" in result.stdout
    assert "pg_dump's custom format" in result.stdout
    assert target.read_bytes().startswith(b"PGDMP")
    assert leftovers(tmp_path) == []
    with fresh_database(postgres_server) as other:
        subprocess.run(
            ["pg_restore", "--no-owner", f"--dbname={other}", str(target)],
            check=True,
            capture_output=True,
        )
        restored = normalise_database_url(other)
        assert asyncio.run(contents(restored)) == asyncio.run(contents(settings.database_url))
        assert asyncio.run(check_database(restored)) == []


@only_postgresql
def test_postgresql_backup_without_pg_dump_prints_the_command(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """No pg_dump on PATH: one line with the command to run, password masked, exit 3."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", with_password(cli_env.database_url))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    target = tmp_path / "fedimeter.dump"
    result = invoke("db", "backup", str(target))
    assert result.exit_code == 3
    [line] = result.stderr.strip().splitlines()
    plain = make_url(cli_env.database_url)
    shown = f"postgresql://postgres:***@{plain.host}:{plain.port}/{plain.database}"
    assert line.endswith(f"back up with: pg_dump --format=custom --file={target} '{shown}'")
    assert PASSWORD not in result.output
    assert not target.exists()


@only_postgresql
def test_postgresql_backup_failing_is_one_line_and_leaves_nothing(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """pg_dump's own error, first line only, exit 3; no file and no temporary file."""
    missing = make_url(cli_env.database_url).set(database="no_such_database")
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", missing.render_as_string(hide_password=False))
    result = invoke("db", "backup", str(tmp_path / "fedimeter.dump"))
    assert result.exit_code == 3
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: pg_dump could not back up ")
    assert "no_such_database" in line
    assert list(tmp_path.iterdir()) == []


@only_postgresql
def test_postgresql_restore_points_to_pg_restore(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`db restore` is for SQLite: on PostgreSQL it names the pg_restore command, exit 3."""
    monkeypatch.setenv("FEDIMETER_DATABASE_URL", with_password(cli_env.database_url))
    backup = tmp_path / "fedimeter.dump"
    backup.write_bytes(b"PGDMP")
    result = invoke("db", "restore", str(backup))
    assert result.exit_code == 3
    [line] = result.stderr.strip().splitlines()
    assert "pg_restore --clean --if-exists --no-owner '--dbname=postgresql://postgres:***@" in line
    assert PASSWORD not in line


# --- errors -------------------------------------------------------------------------------


def test_check_failed_is_a_storage_error_with_its_own_exit_code() -> None:
    """Exit code 5 is CheckFailed's, and the API still treats it as a storage error."""
    from fedimeter.cli.context import exit_code

    assert exit_code(CheckFailed("x")) == 5
    assert exit_code(StorageError("x")) == 3
    assert issubclass(CheckFailed, StorageError)


def test_in_memory_sqlite_cannot_be_backed_up(tmp_path: Path) -> None:
    """An in-memory database has no file to copy: a configuration error."""
    with pytest.raises(Exception, match="is not an SQLite file"):
        asyncio.run(backup_database("sqlite+aiosqlite:///:memory:", tmp_path / "x"))


def test_same_file_ignores_unrelated_names(tmp_path: Path) -> None:
    """Only the database and SQLite's own files beside it count as the database."""
    from fedimeter.storage.maintenance import _same_file

    db = tmp_path / "f.sqlite3"
    db.write_bytes(b"")
    assert _same_file(db, db)
    assert _same_file(tmp_path / "f.sqlite3-journal", db)
    assert not _same_file(tmp_path / "f.sqlite3.bak", db)
    os.link(db, tmp_path / "hard")
    assert _same_file(tmp_path / "hard", db)
