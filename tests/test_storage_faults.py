"""A full disk and a read-only database: one clear line, nothing half-written, then resumed.

SQLite's file is put on a tmpfs mounted for the test and filled once a round has committed
its first samples; where mounting is not permitted, SQLite's ``max_page_count`` stops the file
growing instead (in-process only). A file system turning read-only under a running collector
is an ext4 image mounted with ``errors=remount-ro`` whose error is triggered through sysfs: a
tmpfs cannot be remounted read-only while a process has a file open for writing. A file the
user may not write is the real thing: the collector runs as ``nobody``. PostgreSQL gets a user
that may only read and a user whose rights are taken away mid-round; its disk filling up is
left to the server (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import pwd
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.pool import Pool

from conftest import fresh_database
from fedimeter.collect import collect_round
from fedimeter.config import Settings, load_settings, normalise_database_url
from fedimeter.errors import StorageError
from fedimeter.simfedi import SimAccount, SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.maintenance import check_database
from fedimeter.storage.records import RunProgress
from fedimeter.storage.repository import Repository
from pg import PostgresServer
from simhelpers import sim_client, track

HOSTS = ("north", "south", "east", "west")
PER_HOST = 25
ACCOUNTS = len(HOSTS) * PER_HOST
#: Per answer, one request at a time per host: a round takes about a second, so the writer
#: (which commits at once, then at most once a second) commits its first samples well before
#: the end, and the disk can be filled between two commits.
LATENCY = (0.04, 0.04)
FULL = (
    r"cannot write to the database {path}: it is full \(disk or file system:"
    r" [0-9.]+ (bytes|KiB|MiB|GiB|TiB) free on {mount}\);"
    r" free some space or move the database, then try again"
)


# -- the simulated fediverse and a database that tracks it ----------------------------------


@pytest.fixture(scope="module")
def world() -> Iterator[SimFediverse]:
    """Four hosts of 25 accounts each, served from a thread for the whole module."""
    sim = SimFediverse(seed=808)
    for name in HOSTS:
        host = sim.add_instance(name, version="4.1.0", rate_limit=None, latency=LATENCY)
        for i in range(PER_HOST):
            host.add_account(f"{name}{i}", followers=i)
    with sim.run_in_thread():
        yield sim


def _accounts(world: SimFediverse) -> list[SimAccount]:
    return [world.instance(h).account(f"{h}{i}") for h in HOSTS for i in range(PER_HOST)]


def _settings(url: str, **overrides: Any) -> Settings:
    return load_settings(
        database_url=url,
        allow_private_addresses=True,
        default_scheme="http",
        retry_base_delay=0.01,
        retry_max_delay=0.05,
        per_host_concurrency=1,
        **overrides,
    )


async def _track_all(url: str, world: SimFediverse) -> None:
    """Track every simulated account in the database at ``url`` (without the latency)."""
    settings = _settings(url)
    db = await Database.open(settings.database_url)
    try:
        for name in HOSTS:
            world.instance(name).latency = (0.0, 0.0)
        async with sim_client(settings, world) as client:
            await track(Repository(db), client, _accounts(world))
    finally:
        for name in HOSTS:
            world.instance(name).latency = LATENCY
        await db.close()


@pytest.fixture(scope="module")
def template(world: SimFediverse, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file tracking every simulated account, closed (no ``-wal``): copy it."""
    path = tmp_path_factory.mktemp("template") / "fedimeter.sqlite3"
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("FEDIMETER_")]:
            env.delenv(name)
        env.setenv("XDG_CONFIG_HOME", str(path.parent / "config"))
        asyncio.run(_track_all(f"sqlite:///{path}", world))
    assert not path.with_name(path.name + "-wal").exists()
    return path


# -- what the database holds ----------------------------------------------------------------


@dataclass
class Ledger:
    """Rounds, and what each of them stored."""

    runs: list[Any]
    samples_of_run: dict[int, int]
    failures_of_run: dict[int, int]
    samples_of_account: dict[int, int]

    def assert_consistent(self) -> None:
        """Each round's totals are what it stored, and no account was measured twice.

        (Twice would mean a round measured again what the round it resumed had stored.)
        """
        for run in self.runs:
            assert run.accounts_measured == self.samples_of_run.get(run.id, 0), run
            assert run.accounts_failed == self.failures_of_run.get(run.id, 0), run
        assert sum(self.samples_of_run.values()) == sum(self.samples_of_account.values())
        assert len(self.samples_of_account) == ACCOUNTS
        assert max(self.samples_of_account.values()) <= 1


async def _ledger(url: str) -> Ledger:
    db = await Database.open(normalise_database_url(url), migrate=False)
    try:
        async with db.connect() as conn:

            async def counts(sql: str) -> dict[int, int]:
                return {row[0]: row[1] for row in await conn.execute(text(sql))}

            runs = list(await conn.execute(text("SELECT * FROM runs ORDER BY id")))
            by_run = await counts("SELECT run_id, count(*) FROM account_samples GROUP BY run_id")
            failures = await counts("SELECT run_id, count(*) FROM run_failures GROUP BY run_id")
            per_account = await counts(
                "SELECT a.id, count(s.account_id) FROM accounts a"
                " LEFT JOIN account_samples s ON s.account_id = a.id GROUP BY a.id"
            )
    finally:
        await db.close()
    return Ledger(runs, by_run, failures, per_account)


async def _assert_sound(url: str) -> Ledger:
    """The database passes ``db check`` and every round's totals match what it stored."""
    assert await check_database(normalise_database_url(url)) == []
    ledger = await _ledger(url)
    ledger.assert_consistent()
    return ledger


async def _assert_resumed_and_complete(url: str, first_run: int) -> None:
    ledger = await _assert_sound(url)
    assert set(ledger.samples_of_account.values()) == {1}
    last = ledger.runs[-1]
    assert (last.status, last.resumes_run_id) == ("finished", first_run)
    assert sum(run.accounts_measured for run in ledger.runs) == ACCOUNTS


def _sqlite_samples(path: Path) -> int:
    """Samples in the SQLite file, read by another connection (read-only, like a reader)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as c:
        try:
            return int(c.execute("SELECT count(*) FROM account_samples").fetchone()[0])
        except sqlite3.OperationalError:  # the collector has not created its schema yet
            return 0


# -- disks ------------------------------------------------------------------------------------


class Disk(Protocol):
    """Where a test database lives, and a way to fill that place up and to make room again."""

    folder: Path

    def fill(self) -> None:
        """Leave no room for the database to grow."""

    def make_room(self) -> None:
        """Give the database room again."""


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


def _unmount(point: Path) -> None:
    """Unmount, waiting for processes that are still closing their files; lazily at worst."""
    for _ in range(50):
        if subprocess.run(["umount", str(point)], capture_output=True, check=False).returncode:
            time.sleep(0.1)
            continue
        return
    subprocess.run(["umount", "--lazy", str(point)], capture_output=True, check=False)


def _write_until_refused(descriptor: int, block: bytes) -> int | None:
    """Append ``block`` until the system refuses; its errno."""
    while True:
        try:
            os.write(descriptor, block)
        except OSError as exc:
            return exc.errno


@dataclass
class Tmpfs:
    """A tmpfs mounted for one test."""

    folder: Path

    def remount(self, options: str) -> None:
        """``mount -o remount,OPTIONS``."""
        result = _mount("-o", f"remount,{options}", str(self.folder))
        assert result.returncode == 0, result.stderr

    def fill(self) -> None:
        """Write a file until the file system refuses another page."""
        descriptor = os.open(self.folder / "filler", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            for size in (1 << 20, 1 << 12):
                assert _write_until_refused(descriptor, b"\0" * size) == errno.ENOSPC
        finally:
            os.close(descriptor)
        assert os.statvfs(self.folder).f_bavail == 0

    def make_room(self) -> None:
        """Grow the file system, as an administrator would grow a volume."""
        self.remount("size=64m")


@contextlib.contextmanager
def tmpfs(tmp_path: Path, size: str = "16m") -> Iterator[Tmpfs]:
    """A tmpfs of ``size`` at a new folder under ``tmp_path``, unmounted after the block.

    Skips the test when mounting is not permitted here (not root, or a container without
    CAP_SYS_ADMIN).
    """
    point = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    point.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "fedimeter-test", str(point))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield Tmpfs(point)
    finally:
        _unmount(point)


class PageLimit:
    """SQLite's ``max_page_count``, set on every connection taken from any pool.

    While ``full``, the file may not grow by a single page: SQLite refuses as it does on a full
    disk (SQLITE_FULL). Set at each checkout rather than at connect, so that it applies to the
    connections a running round already holds.
    """

    def __init__(self, folder: Path) -> None:
        """Databases go in ``folder``; the limit holds for every SQLite database opened."""
        self.folder = folder
        self.full = False

    def fill(self) -> None:
        """Stop the file growing."""
        self.full = True

    def make_room(self) -> None:
        """Lift the limit."""
        self.full = False

    def _checkout(self, connection: Any, _record: Any, _proxy: Any) -> None:
        if "sqlite" not in type(connection).__module__:
            return
        cursor = connection.cursor()
        try:
            pages = 0xFFFFFFFE  # SQLite's default
            if self.full:
                cursor.execute("PRAGMA page_count")
                pages = cursor.fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count = {pages}")
        finally:
            cursor.close()

    @contextlib.contextmanager
    def installed(self) -> Iterator[PageLimit]:
        """Listen to every pool while the block runs."""
        event.listen(Pool, "checkout", self._checkout)
        try:
            yield self
        finally:
            event.remove(Pool, "checkout", self._checkout)


@pytest.fixture(params=["tmpfs", "max_page_count"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    """A small tmpfs, or SQLite's own page limit (which needs no mount)."""
    if request.param == "tmpfs":
        with tmpfs(tmp_path) as mounted:
            yield mounted
        return
    with PageLimit(tmp_path).installed() as limit:
        yield limit


# -- running fedimeter --------------------------------------------------------------------------


def _environment(url: str, **more: str) -> dict[str, str]:
    return dict(
        os.environ,
        FEDIMETER_DATABASE_URL=url,
        FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
        FEDIMETER_DEFAULT_SCHEME="http",
        FEDIMETER_PER_HOST_CONCURRENCY="1",
        FEDIMETER_RETRY_BASE_DELAY="0.01",
        FEDIMETER_MAX_RETRIES="1",
        **more,
    )


def _start(
    url: str, *args: str, prefix: Sequence[str] = (), cwd: Path | None = None, **env: str
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*prefix, sys.executable, "-m", "fedimeter", *args],
        env=_environment(url, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
    )


@dataclass
class Ran:
    """How a fedimeter process ended."""

    code: int
    out: str
    err: str

    def error(self) -> str:
        """The one line of its error, without ``error: ``; no traceback, nothing else."""
        assert "Traceback" not in self.err, self.err
        lines = self.err.strip().splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("error: "), self.err
        return lines[0].removeprefix("error: ")


def _finish(process: subprocess.Popen[str], timeout: float = 120) -> Ran:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"fedimeter did not end within {timeout} s: {err}")
    return Ran(process.returncode, out, err)


def _fedimeter(url: str, *args: str, **kwargs: Any) -> Ran:
    return _finish(_start(url, *args, **kwargs))


def _when_samples(
    count: Callable[[], int], process: subprocess.Popen[str], at_least: int = 1
) -> None:
    """Wait until ``count()`` reaches ``at_least`` while ``process`` runs."""
    deadline = time.monotonic() + 60
    while count() < at_least:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the collector stored nothing"
        time.sleep(0.01)


async def _until(count: Callable[[], Awaitable[int]], task: asyncio.Task[Any]) -> None:
    """Wait until ``count()`` is positive while ``task`` runs."""
    async with asyncio.timeout(60):
        while await count() < 1:
            assert not task.done(), task
            await asyncio.sleep(0.01)


# -- a full disk ----------------------------------------------------------------------------


def _dead(_run: object) -> bool:
    return False


async def test_a_failed_round_is_resumed_once(repo: Repository) -> None:
    """The round after one that failed (a full disk, say) measures only what that one missed."""
    start = datetime(2026, 3, 1, 6, tzinfo=UTC)
    first, _ = await repo.start_run(start, "host:1", _dead)
    await repo.finish_run(first.id, start, RunProgress(), status="failed", error="disk full")
    second, resumed = await repo.start_run(start + timedelta(hours=1), "host:1", _dead)
    assert resumed is not None
    assert resumed.id == first.id
    assert second.resumes_run_id == first.id
    await repo.finish_run(second.id, start + timedelta(hours=1), RunProgress())
    _, again = await repo.start_run(start + timedelta(hours=2), "host:1", _dead)
    assert again is None


async def test_a_full_disk_stops_the_round_and_the_next_one_resumes_it(
    disk: Disk, template: Path, world: SimFediverse
) -> None:
    """Disk full mid-round: one StorageError, whole commits only, then resumed in full."""
    path = disk.folder / "fedimeter.sqlite3"
    shutil.copy(template, path)
    settings = _settings(f"sqlite:///{path}")
    db = await Database.open(settings.database_url)
    try:
        repo = Repository(db)
        async with sim_client(settings, world) as client:
            round_ = asyncio.create_task(
                collect_round(repo, client, settings, clock=lambda: world.now)
            )
            await _until(repo.count_samples, round_)
            disk.fill()
            with pytest.raises(StorageError) as stopped:
                await asyncio.wait_for(round_, 60)
    finally:
        await db.close()
    if isinstance(disk, Tmpfs):
        full = FULL.format(path=re.escape(str(path)), mount=re.escape(str(disk.folder)))
        assert re.fullmatch(full, str(stopped.value))
    else:  # the file system has room: the message does not blame it
        assert re.fullmatch(
            rf"cannot write to the database {re.escape(str(path))}: it is full, though [0-9.]+"
            r" [KMGT]iB are free on /\S*: SQLite may not grow it \(a limit set with PRAGMA"
            r" max_page_count\), or its temporary folder is full \(TMPDIR\)",
            str(stopped.value),
        )

    ledger = await _assert_sound(settings.database_url)
    [first] = ledger.runs
    assert 0 < first.accounts_measured < ACCOUNTS
    # Failed, or (when not even that could be written) still running: resumed either way.
    assert first.status in {"failed", "running"}
    if first.status == "failed":
        assert first.error == str(stopped.value)

    disk.make_room()
    db = await Database.open(settings.database_url)
    try:
        async with sim_client(settings, world) as client:
            # Later: a round left running by this (live) process has stopped its heartbeat.
            later = world.now + timedelta(minutes=10)
            result = await collect_round(Repository(db), client, settings, clock=lambda: later)
    finally:
        await db.close()
    assert result.resumed is not None
    assert result.resumed.id == first.id
    assert result.run.accounts_measured == ACCOUNTS - first.accounts_measured
    await _assert_resumed_and_complete(settings.database_url, first.id)


@pytest.mark.slow
def test_the_collector_on_a_full_disk_exits_3_with_one_line(
    tmp_path: Path, template: Path, world: SimFediverse
) -> None:
    """``fedimeter collect``: exit 3, one line, no traceback; after growing the disk it resumes."""
    with tmpfs(tmp_path) as disk:
        path = disk.folder / "fedimeter.sqlite3"
        url = f"sqlite:///{path}"
        shutil.copy(template, path)
        collector = _start(url, "collect")
        _when_samples(lambda: _sqlite_samples(path), collector)
        disk.fill()
        stopped = _finish(collector)
        assert stopped.code == 3, stopped.err
        full = FULL.format(path=re.escape(str(path)), mount=re.escape(str(disk.folder)))
        assert re.fullmatch(full, stopped.error())
        ledger = asyncio.run(_assert_sound(url))
        assert 0 < ledger.runs[0].accounts_measured < ACCOUNTS

        disk.make_room()
        resumed = _fedimeter(url, "collect")
        assert resumed.code == 0, resumed.err
        # Failed, or left running (and found dead) when not even that could be written.
        assert re.search(
            r"Round 1 was (stopped by an error \(fedimeter runs --id 1\)|interrupted); this"
            " round measured what it missed.",
            resumed.out,
        )
        asyncio.run(_assert_resumed_and_complete(url, ledger.runs[0].id))


@pytest.mark.slow
def test_a_disk_full_at_start_stops_fedimeter_before_anything(
    tmp_path: Path, template: Path, world: SimFediverse
) -> None:
    """No room to migrate a new database, or to open an existing one: exit 3, one line."""
    with tmpfs(tmp_path) as disk:
        existing = disk.folder / "fedimeter.sqlite3"
        new = disk.folder / "new.sqlite3"
        shutil.copy(template, existing)
        disk.fill()
        mount = re.escape(str(disk.folder))
        for path, command in (
            (new, ["collect"]),
            (existing, ["collect"]),
            (existing, ["track", "list"]),
        ):
            ran = _fedimeter(f"sqlite:///{path}", *command)
            assert ran.code == 3, ran.err
            expected = FULL.replace("write to", "migrate").format(
                path=re.escape(str(path)), mount=mount
            )
            assert re.fullmatch(expected, ran.error()), ran.err

        disk.make_room()
        fresh = _fedimeter(f"sqlite:///{new}", "collect")
        assert fresh.code == 0, fresh.err
        assert "Nothing to measure" in fresh.out
        assert asyncio.run(check_database(normalise_database_url(f"sqlite:///{new}"))) == []
        ran = _fedimeter(f"sqlite:///{existing}", "collect")
        assert ran.code == 0, ran.err
        ledger = asyncio.run(_assert_sound(f"sqlite:///{existing}"))
        assert set(ledger.samples_of_account.values()) == {1}
        assert [run.status for run in ledger.runs] == ["finished"]


# -- a read-only database -----------------------------------------------------------------------


def _read_only_mount(path: Path, action: str, mount: Path) -> str:
    return (
        f"cannot {action} the database {path}: it is read-only (read-only file system on"
        f" {mount}); remount it read-write, or move the database to a writable place"
    )


@pytest.mark.slow
def test_a_database_on_a_read_only_mount_is_refused_with_one_line(
    tmp_path: Path, template: Path, world: SimFediverse
) -> None:
    """Collecting, listing and reporting on a read-only mount say so; writable again, it works."""
    with tmpfs(tmp_path) as disk:
        path = disk.folder / "fedimeter.sqlite3"
        url = f"sqlite:///{path}"
        shutil.copy(template, path)
        disk.remount("ro")
        for command in (["collect"], ["track", "list"], ["report"]):
            ran = _fedimeter(url, *command)
            assert ran.code == 3, ran.err
            assert ran.error() == _read_only_mount(path, "migrate", disk.folder)
        new = disk.folder / "new.sqlite3"
        ran = _fedimeter(f"sqlite:///{new}", "collect")
        assert ran.code == 3, ran.err
        assert ran.error() == (
            f"cannot create the database {new}: read-only file system on {disk.folder};"
            " remount it read-write, or move the database to a writable place"
        )
        assert not new.exists()

        disk.remount("rw")
        ran = _fedimeter(url, "collect")
        assert ran.code == 0, ran.err
        ledger = asyncio.run(_assert_sound(url))
        assert set(ledger.samples_of_account.values()) == {1}


@dataclass
class Ext4:
    """An ext4 image, mounted from a loop device at ``folder``."""

    image: Path
    folder: Path

    def fail(self) -> None:
        """Make ext4 find an error: with ``errors=remount-ro`` it turns itself read-only."""
        _ext4_trigger(self.folder).write_text("fedimeter test: turn read-only\n")

    @contextlib.contextmanager
    def mounted(self, options: str) -> Iterator[Ext4]:
        """Mount the image with ``options``; unmount after the block."""
        result = _mount("-o", f"loop,{options}", str(self.image), str(self.folder))
        if result.returncode != 0:
            pytest.skip(f"cannot mount an ext4 image here: {result.stderr.strip()}")
        try:
            yield self
        finally:
            _unmount(self.folder)


def _ext4_trigger(folder: Path) -> Path:
    device = subprocess.run(
        ["findmnt", "-n", "-o", "SOURCE", str(folder)], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path("/sys/fs/ext4") / Path(device).name / "trigger_fs_error"


def _ext4(tmp_path: Path) -> Ext4:
    """A new 32 MiB ext4 image (not mounted); skips when mkfs.ext4 is missing."""
    if shutil.which("mkfs.ext4") is None:
        pytest.skip("mkfs.ext4 is not installed")
    name = f"ext4-{uuid.uuid4().hex[:8]}"
    image = tmp_path / f"{name}.img"
    with image.open("wb") as file:
        file.truncate(32 << 20)
    made = subprocess.run(
        ["mkfs.ext4", "-q", "-F", str(image)], capture_output=True, text=True, check=False
    )
    assert made.returncode == 0, made.stderr
    folder = tmp_path / name
    folder.mkdir()
    return Ext4(image, folder)


def _sync(path: Path) -> None:
    subprocess.run(["sync", "--file-system", str(path)], check=True)


@pytest.mark.slow
def test_a_file_system_turning_read_only_mid_round_stops_the_collector(
    tmp_path: Path, template: Path, world: SimFediverse
) -> None:
    """ext4 remounts itself read-only under a running collector: exit 3, one line, resumable."""
    disk = _ext4(tmp_path)
    path = disk.folder / "fedimeter.sqlite3"
    url = f"sqlite:///{path}"
    with disk.mounted("errors=remount-ro"):
        if not _ext4_trigger(disk.folder).exists():
            pytest.skip("this kernel has no ext4 trigger_fs_error")
        shutil.copy(template, path)
        _sync(path)  # ext4 drops what it has not written back when it turns read-only
        collector = _start(url, "collect")
        _when_samples(lambda: _sqlite_samples(path), collector)
        # What was committed so far reaches the disk (as the kernel would within seconds);
        # what the collector commits from here on may be lost with the error.
        _sync(path)
        disk.fail()
        stopped = _finish(collector)
    assert stopped.code == 3, stopped.err
    assert stopped.error() == _read_only_mount(path, "write to", disk.folder)

    with disk.mounted("errors=remount-ro"):  # again, as after a reboot
        ledger = asyncio.run(_assert_sound(url))  # what reached the disk is whole
        [first] = ledger.runs
        assert first.status == "running"  # nothing could record how it ended
        assert 0 < first.accounts_measured < ACCOUNTS
        ran = _fedimeter(url, "collect")
        assert ran.code == 0, ran.err
        assert "Round 1 was interrupted; this round measured what it missed." in ran.out
        asyncio.run(_assert_resumed_and_complete(url, first.id))


def _as_nobody() -> list[str]:
    """A command prefix that runs a program as ``nobody``, which may not write root's files.

    ``runuser`` when ``nobody`` can run this Python; when it lives under a private home (as
    with pyenv in /root), ``setpriv`` keeps one capability, CAP_DAC_READ_SEARCH, so that the
    interpreter can be read: it bypasses read and search checks, never write checks.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root, to run fedimeter as another user")
    candidates = [["runuser", "-u", "nobody", "--"]]
    if shutil.which("setpriv"):
        nobody = pwd.getpwnam("nobody")
        candidates.append(
            [
                "setpriv",
                f"--reuid={nobody.pw_uid}",
                f"--regid={nobody.pw_gid}",
                "--clear-groups",
                "--inh-caps=+dac_read_search",
                "--ambient-caps=+dac_read_search",
            ]
        )
    for prefix in candidates:
        tried = subprocess.run(
            [*prefix, sys.executable, "-c", _NOBODY_PROBE],
            capture_output=True,
            text=True,
            check=False,
        )
        if tried.returncode == 0 and tried.stdout.strip() == str(pwd.getpwnam("nobody").pw_uid):
            return prefix
    pytest.skip(
        "cannot run this Python and this checkout as nobody (runuser, setpriv): a checkout in"
        " a private folder (mktemp -d makes them 0700) hides fedimeter's migrations from it"
    )


#: What running fedimeter as ``nobody`` needs: the package, and its migrations folder, which
#: Alembic checks with access(2) (the capability kept by setpriv does not count there).
_NOBODY_PROBE = (
    "import os, fedimeter.storage.database as d; from pathlib import Path; "
    "m = Path(d.__file__).parent / 'migrations'; "
    "assert os.access(m, os.R_OK | os.X_OK), m; print(os.geteuid())"
)


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A root-owned folder (0755) under /tmp, which ``nobody`` can reach but not write."""
    folder = Path(tempfile.mkdtemp(prefix="fedimeter-nobody-", dir="/tmp"))
    try:
        folder.chmod(0o755)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_database_the_user_may_not_write_is_refused_with_one_line(
    shared_folder: Path, template: Path, world: SimFediverse
) -> None:
    """Run as ``nobody``: root's 0644 file, then a folder it may not write, then its own."""
    nobody = _as_nobody()
    path = shared_folder / "fedimeter.sqlite3"
    url = f"sqlite:///{path}"
    shutil.copy(template, path)
    path.chmod(0o644)
    home = shared_folder / "home"  # nobody's own settings and caches (matplotlib's)
    home.mkdir()
    shutil.chown(home, "nobody")
    as_nobody = {
        "prefix": nobody,
        "cwd": home,
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CACHE_HOME": str(home / "cache"),
        "MPLCONFIGDIR": str(home / "matplotlib"),
    }
    for command in (["collect"], ["track", "list"]):
        ran = _fedimeter(url, *command, **as_nobody)
        assert ran.code == 3, ran.err
        assert ran.error() == (
            f"cannot migrate the database {path}: it is read-only ({path} is not writable by"
            " user nobody: owner root, mode 0644); run fedimeter as root, or give nobody"
            " write access to it"
        )

    shutil.chown(path, "nobody")  # the file, but not its folder
    ran = _fedimeter(url, "collect", **as_nobody)
    assert ran.code == 3, ran.err
    assert ran.error() == (
        f"cannot migrate the database {path}: it is read-only (its folder {shared_folder} is"
        " not writable by user nobody, and SQLite must create fedimeter.sqlite3-wal and"
        f" fedimeter.sqlite3-shm there); give nobody write access to {shared_folder}, or move"
        " the database"
    )

    path.chmod(0o600)
    shutil.chown(path, "root")
    ran = _fedimeter(url, "track", "list", **as_nobody)
    assert ran.code == 3, ran.err
    assert ran.error() == (
        f"cannot read the database {path}: it is not readable by user nobody (owner root,"
        " mode 0600); run fedimeter as root, or give nobody read and write access to it"
    )
    new = shared_folder / "new.sqlite3"
    ran = _fedimeter(f"sqlite:///{new}", "collect", **as_nobody)
    assert ran.code == 3, ran.err
    assert ran.error() == (
        f"cannot create the database {new}: user nobody may not create files in"
        f" {shared_folder}; give nobody write access to it, or choose another place"
    )

    shutil.chown(path, "nobody")
    shutil.chown(shared_folder, "nobody")
    ran = _fedimeter(url, "collect", **as_nobody)
    assert ran.code == 0, ran.err
    ledger = asyncio.run(_assert_sound(url))
    assert set(ledger.samples_of_account.values()) == {1}


# -- PostgreSQL -------------------------------------------------------------------------------


@dataclass
class PgDatabase:
    """A database tracking every simulated account, and roles made for the test."""

    server: PostgresServer
    url: str
    roles: list[str]

    def as_user(self, role: str) -> str:
        """The URL for ``role`` (the test server trusts every local connection)."""
        return self.url.replace("postgres@", f"{role}@", 1)

    async def execute(self, *statements: str) -> None:
        """Run statements in this database as the superuser."""
        conn = await asyncpg.connect(self.url.replace("postgresql://", "postgres://"))
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def role(self, *grants: str) -> str:
        """A new login role with ``grants`` (``SELECT ON ALL TABLES IN SCHEMA public``...)."""
        name = f"fedimeter_faults_{uuid.uuid4().hex[:10]}"
        self.roles.append(name)
        await self.execute(
            f'CREATE ROLE "{name}" LOGIN',
            f'GRANT CONNECT ON DATABASE "{self.url.rsplit("/", 1)[1]}" TO "{name}"',
            f'GRANT USAGE ON SCHEMA public TO "{name}"',
            *(f'GRANT {grant} TO "{name}"' for grant in grants),
        )
        return name


async def _drop_roles(server: PostgresServer, roles: list[str]) -> None:
    conn = await asyncpg.connect(server.url().replace("postgresql://", "postgres://"))
    try:
        for role in roles:
            await conn.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await conn.close()


@pytest.fixture
def pg(postgres_server: PostgresServer, world: SimFediverse) -> Iterator[PgDatabase]:
    """A PostgreSQL database tracking every simulated account; its roles dropped after it."""
    roles: list[str] = []
    try:
        with fresh_database(postgres_server) as url:
            asyncio.run(_track_all(url, world))
            yield PgDatabase(postgres_server, url, roles)
    finally:
        asyncio.run(_drop_roles(postgres_server, roles))


READ_ONLY = "SELECT ON ALL TABLES IN SCHEMA public"
READ_WRITE = (
    "SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public",
    "USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public",
)


def _no_rights(url: str, table: str) -> str:
    user = url.split("//", 1)[1].split("@", 1)[0]
    return (
        f"cannot write to {url}: permission denied for table {table} (the database user"
        f" {user} lacks rights fedimeter needs); grant it SELECT, INSERT, UPDATE and DELETE on"
        " fedimeter's tables and USAGE on their sequences, or connect as their owner"
    )


@pytest.mark.postgres
@pytest.mark.slow
def test_postgres_a_user_who_may_only_read_can_read_but_not_collect(pg: PgDatabase) -> None:
    """SELECT only: collect exits 3 with one line and writes nothing; listing works."""
    reader = pg.as_user(asyncio.run(pg.role(READ_ONLY)))
    ran = _fedimeter(reader, "collect")
    assert ran.code == 3, ran.err
    shown = reader.replace("postgresql://", "postgresql+asyncpg://")
    assert ran.error() == _no_rights(shown, "runs")
    listed = _fedimeter(reader, "track", "list", "--json")
    assert listed.code == 0, listed.err
    assert listed.out.count('"handle"') == ACCOUNTS
    reported = _fedimeter(reader, "report", "--format", "csv")
    assert reported.code == 0, reported.err

    asyncio.run(
        pg.execute(
            f'ALTER DATABASE "{pg.url.rsplit("/", 1)[1]}" SET default_transaction_read_only = on'
        )
    )
    ran = _fedimeter(pg.url, "collect")
    assert ran.code == 3, ran.err
    shown = pg.url.replace("postgresql://", "postgresql+asyncpg://")
    assert ran.error() == (
        f"cannot write to {shown}: cannot execute INSERT in a read-only transaction (the"
        " database is read-only: a standby server, or default_transaction_read_only is on);"
        " connect to the primary server"
    )
    ledger = asyncio.run(_ledger(pg.url))
    assert ledger.runs == []
    assert sum(ledger.samples_of_account.values()) == 0


@pytest.mark.postgres
async def test_postgres_rights_taken_away_mid_round_stop_it_cleanly(
    pg: PgDatabase, world: SimFediverse
) -> None:
    """REVOKE INSERT mid-round: one StorageError, whole batches only; granted again, resumed."""
    writer = await pg.role(*READ_WRITE)
    settings = _settings(pg.as_user(writer))
    db = await Database.open(settings.database_url)
    try:
        repo = Repository(db)
        async with sim_client(settings, world) as client:
            round_ = asyncio.create_task(
                collect_round(repo, client, settings, clock=lambda: world.now)
            )
            await _until(repo.count_samples, round_)
            await pg.execute(f'REVOKE INSERT ON account_samples FROM "{writer}"')
            with pytest.raises(StorageError) as stopped:
                await asyncio.wait_for(round_, 60)
    finally:
        await db.close()
    shown = settings.database_url
    assert str(stopped.value) == _no_rights(shown, "account_samples")
    ledger = await _assert_sound(settings.database_url)
    [first] = ledger.runs
    assert first.status == "failed"
    assert first.error == str(stopped.value)
    assert 0 < first.accounts_measured < ACCOUNTS

    await pg.execute(f'GRANT INSERT ON account_samples TO "{writer}"')
    db = await Database.open(settings.database_url)
    try:
        async with sim_client(settings, world) as client:
            result = await collect_round(Repository(db), client, settings, clock=lambda: world.now)
    finally:
        await db.close()
    assert result.resumed is not None
    assert result.resumed.id == first.id
    await _assert_resumed_and_complete(settings.database_url, first.id)
