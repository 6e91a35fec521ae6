"""Backups, restores and checks of the database (``fedimeter db backup``, ``restore``, ``check``).

SQLite is copied with its online backup API in one step: one read transaction over the whole
file, so the copy is the database as of one commit even while a round writes (in WAL mode the
writer goes on meanwhile). PostgreSQL is dumped by ``pg_dump --format=custom``. Either way the
copy is written beside its destination under a hidden temporary name and renamed into place
once complete, so a crash never leaves a half-written file under the name asked for.

``check_database`` returns what it finds instead of raising, so the command, the restore and
the tests read the same list.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import sqlite3
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from sqlalchemy import URL, exists, func, make_url, select

from fedimeter import __version__
from fedimeter.clock import utc_now
from fedimeter.domain.models import AccountState
from fedimeter.errors import CheckFailed, ConfigError, InvalidInput, StorageError
from fedimeter.storage.database import Database, describe_url
from fedimeter.storage.deliveries import DeliveryStatus
from fedimeter.storage.tables import account_samples, accounts, deliveries, metadata, runs

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy import Column
    from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "RUN_STATUSES",
    "BackupResult",
    "Problem",
    "RestoreResult",
    "backup_database",
    "check_database",
    "pg_dump_command",
    "pg_restore_command",
    "restore_database",
    "row_counts",
    "sqlite_file",
    "sqlite_url",
]

#: The statuses a round can have (``tables.runs``).
RUN_STATUSES = ("running", "finished", "interrupted", "failed")

#: Values fedimeter writes into its enumerated columns; anything else is a problem.
_KNOWN_VALUES: tuple[tuple[Column[str], frozenset[str]], ...] = (
    (accounts.c.state, frozenset(state.value for state in AccountState)),
    (runs.c.status, frozenset(RUN_STATUSES)),
    (deliveries.c.status, frozenset(get_args(DeliveryStatus))),
)

#: What the summaries count: the table and the word for its rows.
_COUNTED = (("accounts", "accounts"), ("account_samples", "samples"), ("runs", "rounds"))

#: SQLite's result codes for a damaged file and for a file that is not a database.
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26
#: SQLite's result codes for a file another connection holds.
_SQLITE_BUSY = 5
_SQLITE_LOCKED = 6
#: ``PRAGMA integrity_check`` lists at most this many errors.
_INTEGRITY_LIMIT = 100
#: The files SQLite keeps beside a database.
_SIDECARS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a database; ``str()`` is the line a person reads.

    ``code`` says what kind: ``damaged`` (SQLite's integrity check failed: nothing else is
    read), ``orphans`` (rows that refer to rows that do not exist), ``schema`` (no fedimeter
    schema, or one this version does not know), ``schema_behind`` (a migration is pending),
    ``values`` (a value fedimeter never writes).
    """

    code: Literal["damaged", "orphans", "schema", "schema_behind", "values"]
    message: str

    def __str__(self) -> str:
        """The message."""
        return self.message


@dataclass(frozen=True, slots=True)
class BackupResult:
    """A backup written: where, its size, and what it holds (counted in SQLite copies only)."""

    path: Path
    size: int
    format: Literal["sqlite", "pg_dump"]
    #: Rows by kind (``accounts``, ``samples``, ``rounds``); None for a pg_dump archive.
    counts: dict[str, int] | None


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """A restore done: the database replaced, where its old file is kept, what it now holds."""

    path: Path
    #: The file the restore replaced, kept under a new name; None when there was none.
    previous: Path | None
    counts: dict[str, int]
    #: The backup's schema revision when it was older and was brought up to date.
    upgraded_from: str | None


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite database URL, or None for PostgreSQL.

    Raises:
        ConfigError: an SQLite database in memory or named by a ``file:`` URI.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise ConfigError(f"{describe_url(url)} is not an SQLite file that can be copied")
    return Path(database)


def sqlite_url(path: Path) -> str:
    """The database URL of an SQLite file."""
    return f"sqlite+aiosqlite:///{path.absolute()}"


# --- checking -----------------------------------------------------------------------------


async def check_database(url: str) -> list[Problem]:
    """Every problem found in the database at ``url``: an empty list when it is sound.

    On SQLite, ``PRAGMA integrity_check`` (a damaged file is one problem, and nothing else is
    read from it) and ``PRAGMA foreign_key_check``; on PostgreSQL, whose constraints keep such
    rows out unless someone turned them off, the same rows found by queries. On both, that the
    schema is this version's newest and that enumerated columns hold values fedimeter writes.
    A round left ``running`` by a dead process is no problem: the next round resumes it.
    Reads only; safe while fedimeter runs.

    Raises:
        StorageError: the database cannot be reached, or its SQLite file does not exist.
    """
    path = sqlite_file(url)
    problems: list[Problem] = []
    if path is not None:
        problems = await asyncio.to_thread(_sqlite_file_problems, path)
        if any(problem.code == "damaged" for problem in problems):
            return problems
    db = await Database.open(url, migrate=False)
    try:
        schema = await _schema_problem(db)
        if schema is not None:
            return [*problems, schema]
        async with db.connect() as conn:
            if path is None:
                problems += await _orphan_problems(conn)
            problems += await _value_problems(conn)
    finally:
        await db.close()
    return problems


async def row_counts(url: str) -> dict[str, int]:
    """How many accounts, samples and rounds the database at ``url`` holds.

    Raises:
        StorageError: the database cannot be read.
    """
    db = await Database.open(url, migrate=False)
    try:
        async with db.connect() as conn:
            return {
                word: (await conn.execute(select(func.count()).select_from(table))).scalar_one()
                for table, word in (
                    (accounts, "accounts"),
                    (account_samples, "samples"),
                    (runs, "rounds"),
                )
            }
    finally:
        await db.close()


def _rows(count: int) -> str:
    return "1 row" if count == 1 else f"{count:,} rows"


def _orphans(table: str, column: str, parent: str, count: int) -> Problem:
    return Problem("orphans", f"{table}: {_rows(count)} whose {column} is missing from {parent}")


def _damage(errors: list[str]) -> Problem:
    return Problem("damaged", f"the file is damaged: {_first_error(errors)}")


def _first_error(errors: list[str]) -> str:
    """The first error SQLite listed, and how many more there are."""
    more = len(errors) - 1
    if not more:
        return errors[0]
    at_least = "at least " if len(errors) >= _INTEGRITY_LIMIT else ""
    return f"{errors[0]} (and {at_least}{more} more errors)"


def _result_code(exc: sqlite3.Error) -> int:
    """SQLite's primary result code of an error (0 for errors raised by Python's module)."""
    return (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF


def _is_damage(exc: sqlite3.Error) -> bool:
    return _result_code(exc) in {_SQLITE_CORRUPT, _SQLITE_NOTADB}


def _connect(path: Path) -> sqlite3.Connection:
    """A connection to an existing SQLite file, in autocommit mode.

    Raises:
        StorageError: there is no file.
    """
    if not path.is_file():
        raise StorageError(f"there is no database at {path}")
    # 30 s, like fedimeter's own connections: a round's commit never makes this fail.
    return sqlite3.connect(path, timeout=30, isolation_level=None)


@contextlib.contextmanager
def _sqlite_errors(action: str, path: Path) -> Iterator[None]:
    """Turn sqlite3's and the system's errors into one readable ``StorageError`` line."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StorageError(f"cannot {action} {path}: {exc}") from exc
    except OSError as exc:
        raise StorageError(f"cannot {action} {path}: {exc.strerror or exc}") from exc


def _integrity_errors(conn: sqlite3.Connection) -> list[str]:
    """What ``PRAGMA integrity_check`` lists; none when the file is sound."""
    errors: list[str] = []
    for (row,) in conn.execute("PRAGMA integrity_check"):
        # The first row may start with a "*** in database main ***" line of its own.
        errors += [
            line for line in str(row).splitlines() if line and not line.startswith("*** in ")
        ]
    return [] if errors == ["ok"] else errors


def _foreign_key_problems(conn: sqlite3.Connection) -> list[Problem]:
    """``PRAGMA foreign_key_check``, one problem per table, column and parent table."""
    found: Counter[tuple[str, str, str]] = Counter()
    columns: dict[tuple[str, int], str] = {}
    for table, _rowid, parent, key_id in conn.execute("PRAGMA foreign_key_check").fetchall():
        if (table, key_id) not in columns:
            for key, column in conn.execute(
                'SELECT id, "from" FROM pragma_foreign_key_list(?)', (table,)
            ):
                columns[table, key] = column
        found[table, columns.get((table, key_id), "?"), parent] += 1
    return [_orphans(*key, count) for key, count in sorted(found.items())]


def _sqlite_file_problems(path: Path) -> list[Problem]:
    """SQLite's own checks of the file: integrity first, then foreign keys.

    Raises:
        StorageError: the file does not exist or cannot be opened.
    """
    with _sqlite_errors("check", path), contextlib.closing(_connect(path)) as conn:
        try:
            errors = _integrity_errors(conn)
            if errors:
                return [_damage(errors)]
            return _foreign_key_problems(conn)
        except sqlite3.Error as exc:
            if not _is_damage(exc):
                raise
            return [_damage([str(exc)])]


async def _schema_problem(db: Database) -> Problem | None:
    """Whether the schema is this version's newest; when it is not, nothing else is checked."""
    revision = await db.current_revision()
    head = Database.head_revision()
    if revision == head:
        return None
    if revision is None:
        return Problem("schema", "no fedimeter schema: the database is empty or not fedimeter's")
    if revision not in Database.known_revisions():
        return Problem(
            "schema",
            f"schema revision {revision} is unknown to fedimeter {__version__}"
            " (written by a newer version?)",
        )
    return Problem(
        "schema_behind",
        f"schema revision {revision} is behind the newest, {head}: run `fedimeter db upgrade`",
    )


async def _orphan_problems(conn: AsyncConnection) -> list[Problem]:
    """Rows whose foreign key names a row that does not exist, by table and column."""
    problems: list[Problem] = []
    for table in metadata.sorted_tables:
        for key in sorted(table.foreign_keys, key=lambda k: k.parent.name):
            # An alias, so a table referring to itself (runs.resumes_run_id) is not correlated.
            parent = key.column.table.alias("parent")
            child = key.parent
            missing = ~exists().where(parent.c[key.column.name] == child)
            count = (
                await conn.execute(
                    select(func.count()).select_from(table).where(child.is_not(None), missing)
                )
            ).scalar_one()
            if count:
                problems.append(_orphans(table.name, child.name, key.column.table.name, count))
    return problems


async def _value_problems(conn: AsyncConnection) -> list[Problem]:
    """Values fedimeter never writes in its enumerated columns."""
    problems: list[Problem] = []
    for column, known in _KNOWN_VALUES:
        found = await conn.execute(
            select(column, func.count())
            .where(column.not_in(sorted(known)))
            .group_by(column)
            .order_by(column)
        )
        problems += [
            Problem(
                "values",
                f"{column.table.name}.{column.name}: {_rows(count)} hold {value!r},"
                " which fedimeter never writes",
            )
            for value, count in found
        ]
    return problems


# --- backing up ---------------------------------------------------------------------------


async def backup_database(url: str, destination: Path, *, force: bool = False) -> BackupResult:
    """Write a consistent copy of the database at ``url`` to ``destination``.

    SQLite: the online backup API, then the copy's integrity check, while fedimeter may go on
    writing. PostgreSQL: ``pg_dump --format=custom`` (restore it with ``pg_restore``), with
    the password given through the environment, never on its command line.

    Raises:
        InvalidInput: ``destination`` exists (and not ``force``), is the database itself, is a
            folder, or is in a folder that does not exist.
        CheckFailed: the copy fails SQLite's integrity check: the database is damaged.
        ConfigError: the database is PostgreSQL and ``pg_dump`` is not installed.
        StorageError: the database cannot be read, or the backup cannot be written.
    """
    path = sqlite_file(url)
    await asyncio.to_thread(_check_destination, destination, path, force=force)
    if path is None:
        return await _pg_dump(url, destination)
    return await asyncio.to_thread(_backup_sqlite, path, destination)


def _same_file(one: Path, database: Path) -> bool:
    """Whether ``one`` is ``database`` or one of the files SQLite keeps beside it."""
    for other in (database, *(database.with_name(database.name + s) for s in _SIDECARS)):
        if one.resolve() == other.resolve():
            return True
        if one.exists() and other.exists() and one.samefile(other):
            return True
    return False


def _check_destination(destination: Path, database: Path | None, *, force: bool) -> None:
    """Refuse a destination that cannot or must not be written.

    Raises:
        InvalidInput: it is a folder, its folder is missing, it is the database, or it exists.
    """
    if destination.is_dir():
        raise InvalidInput(f"{destination} is a folder: name the backup file")
    if not destination.parent.exists():
        raise InvalidInput(f"cannot write {destination}: {destination.parent} does not exist")
    if not destination.parent.is_dir():
        raise InvalidInput(f"cannot write {destination}: {destination.parent} is not a folder")
    if database is not None and _same_file(destination, database):
        raise InvalidInput(
            f"{destination} is the database itself, or SQLite's file beside it:"
            " back it up to another file"
        )
    if destination.exists() and not force:
        raise InvalidInput(f"{destination} exists: use --force to replace it")


def _temporary(beside: Path) -> Path:
    """A new, empty, hidden file in the folder of ``beside``, readable by its owner only."""
    fd, name = tempfile.mkstemp(prefix=f".{beside.name}.", suffix=".tmp", dir=beside.parent)
    os.close(fd)
    return Path(name)


def _remove(path: Path) -> None:
    """Delete ``path`` and whatever SQLite left beside it."""
    for name in (path, *(path.with_name(path.name + s) for s in _SIDECARS)):
        with contextlib.suppress(OSError):
            name.unlink()


@contextlib.contextmanager
def _discarded_on_error(temporary: Path) -> Iterator[None]:
    """Delete ``temporary`` (and SQLite's files beside it) when the block fails."""
    try:
        yield
    except BaseException:
        _remove(temporary)
        raise


def _publish(temporary: Path, destination: Path) -> int:
    """Rename a complete file into place, durably; its size."""
    with temporary.open("rb") as file:
        os.fsync(file.fileno())
    size = temporary.stat().st_size
    temporary.replace(destination)
    _fsync_folder(destination.parent)
    return size


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` survive a power cut (where the system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _count_in(conn: sqlite3.Connection) -> dict[str, int]:
    present = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    return {
        word: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 - our names
        if table in present
        else 0
        for table, word in _COUNTED
    }


def _backup_sqlite(source: Path, destination: Path) -> BackupResult:
    """Copy ``source`` with SQLite's backup API into a checked file at ``destination``.

    Raises:
        CheckFailed: the copy is damaged, so the database is.
        StorageError: the database cannot be read or the copy cannot be written.
    """
    with _sqlite_errors("write", destination):
        temporary = _temporary(destination)
    counts: dict[str, int] = {}
    with _discarded_on_error(temporary):
        with (
            _sqlite_errors("back up", source),
            contextlib.closing(_connect(source)) as conn,
            contextlib.closing(sqlite3.connect(temporary, isolation_level=None)) as copy,
        ):
            try:
                # All pages in one step: one read transaction, so one consistent state. In
                # steps, each commit by the collector would start the copy over.
                conn.backup(copy)
                # One self-contained file: no write-ahead log beside it.
                copy.execute("PRAGMA journal_mode=DELETE")
                errors = _integrity_errors(copy)
                counts = _count_in(copy)
            except sqlite3.Error as exc:
                if not _is_damage(exc):
                    raise
                errors = [str(exc)]
            if errors:
                raise CheckFailed(
                    f"{source} is damaged (its copy fails SQLite's integrity check:"
                    f" {_first_error(errors)}); nothing was written, see `fedimeter db check`"
                )
        with _sqlite_errors("write", destination):
            size = _publish(temporary, destination)
    return BackupResult(destination, size, "sqlite", counts)


def _libpq(url: str) -> tuple[URL, str | None]:
    """The URL ``pg_dump`` understands (libpq's, no password) and the password apart."""
    parsed = make_url(url)
    query = dict(parsed.query)
    if "ssl" in query and "sslmode" not in query:  # asyncpg's name for libpq's sslmode
        query["sslmode"] = query.pop("ssl")
    plain = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=query,
    )
    return plain, parsed.password


def _shown(url: str) -> str:
    """The libpq URL with its password masked, as a person may copy it into a command."""
    plain, password = _libpq(url)
    return plain.set(password=password).render_as_string(hide_password=True)


def pg_dump_command(url: str, destination: Path) -> str:
    """The ``pg_dump`` command that backs up ``url`` to ``destination``, password masked."""
    return shlex.join(["pg_dump", "--format=custom", f"--file={destination}", _shown(url)])


def pg_restore_command(url: str, backup: Path) -> str:
    """The ``pg_restore`` command that restores ``backup`` into ``url``, password masked."""
    return shlex.join(
        [
            "pg_restore",
            "--clean",
            "--if-exists",
            "--no-owner",
            f"--dbname={_shown(url)}",
            str(backup),
        ]
    )


def _first_line(stderr: bytes) -> str:
    lines = [line.strip() for line in stderr.decode(errors="replace").splitlines()]
    first = next((line for line in lines if line), "no message")
    return first.removeprefix("pg_dump: error: ").removeprefix("pg_dump: ")


async def _pg_dump(url: str, destination: Path) -> BackupResult:
    """Dump a PostgreSQL database with ``pg_dump --format=custom`` into ``destination``.

    Raises:
        ConfigError: ``pg_dump`` is not installed.
        StorageError: ``pg_dump`` failed, or the backup cannot be written.
    """
    program = shutil.which("pg_dump")
    if program is None:
        raise ConfigError(
            "pg_dump is not installed (PostgreSQL's client tools); back up with: "
            + pg_dump_command(url, destination)
        )
    plain, password = _libpq(url)
    environment = dict(os.environ)
    if password:
        environment["PGPASSWORD"] = password
    try:
        temporary = await asyncio.to_thread(_temporary, destination)
    except OSError as exc:
        raise StorageError(f"cannot write {destination}: {exc.strerror or exc}") from exc
    with _discarded_on_error(temporary):
        process = await asyncio.create_subprocess_exec(
            program,
            "--format=custom",
            f"--file={temporary}",
            f"--dbname={plain.render_as_string(hide_password=False)}",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
        )
        try:
            _, stderr = await process.communicate()
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise
        if process.returncode != 0:
            raise StorageError(
                f"pg_dump could not back up {describe_url(url)}: {_first_line(stderr)}"
            )
        try:
            size = await asyncio.to_thread(_publish, temporary, destination)
        except OSError as exc:
            raise StorageError(f"cannot write {destination}: {exc.strerror or exc}") from exc
    return BackupResult(destination, size, "pg_dump", None)


# --- restoring ----------------------------------------------------------------------------


async def restore_database(url: str, backup: Path, *, force: bool = False) -> RestoreResult:
    """Replace the SQLite database at ``url`` by the backup, keeping the replaced file.

    The backup is copied beside the database, checked with ``check_database`` and brought to
    the newest schema before anything is replaced; the database it replaces is kept as
    ``NAME.YYYYMMDDTHHMMSSZ.bak``. No process may have the database open: in WAL mode each
    open connection holds a shared lock for as long as it is open, so leaving WAL mode (which
    needs the only connection) fails while any other process has it open, idle or not. A
    database too damaged for SQLite to open cannot be asked: ``force`` replaces it anyway.

    Raises:
        ConfigError: the database is PostgreSQL (``pg_restore`` restores its dumps).
        InvalidInput: the backup is missing, is not an SQLite file, or is the database itself.
        CheckFailed: the backup fails the check; nothing was changed.
        StorageError: the database is in use by another process, cannot be opened to find out
            (without ``force``), or cannot be written.
    """
    target = sqlite_file(url)
    if target is None:
        raise ConfigError(
            "`db restore` restores SQLite backups; restore a pg_dump archive with: "
            + pg_restore_command(url, backup)
        )
    await asyncio.to_thread(_check_backup, backup, target)
    await asyncio.to_thread(_ensure_free, target, force=force)
    temporary = await asyncio.to_thread(_stage, backup, target)
    with _discarded_on_error(temporary):
        copy = sqlite_url(temporary)
        problems = await check_database(copy)
        upgraded_from = None
        if [problem.code for problem in problems] == ["schema_behind"]:
            db = await Database.open(copy, migrate=False)
            try:
                upgraded_from = await db.current_revision()
                await db.upgrade()
            finally:
                await db.close()
            problems = await check_database(copy)
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise CheckFailed(f"{backup} fails the check: {problems[0]}{more}; nothing was changed")
        counts = await row_counts(copy)
        previous = await asyncio.to_thread(_swap_in, temporary, target, force=force)
    return RestoreResult(target, previous, counts, upgraded_from)


def _check_backup(backup: Path, target: Path) -> None:
    """Refuse a backup that is missing or is the database itself.

    Raises:
        InvalidInput: one of them.
    """
    if not backup.is_file():
        raise InvalidInput(f"{backup}: no such file")
    if _same_file(backup, target):
        raise InvalidInput(f"{backup} is the database itself")


def _take_over(target: Path, *, force: bool) -> sqlite3.Connection | None:
    """A connection holding the database at ``target`` alone, in rollback-journal mode.

    None when there is no file, or when it is too damaged to open and ``force`` is given.

    Raises:
        StorageError: another process has it open, or it cannot be opened (without ``force``).
    """
    if not target.exists():
        return None
    in_use = StorageError(
        f"{target} is in use by another process: stop fedimeter (serve, collect, worker)"
        " and try again; nothing was changed"
    )
    conn = sqlite3.connect(target, timeout=1, isolation_level=None)
    try:
        # Folds the write-ahead log into the file and removes it; fails while others have it.
        mode = conn.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
        if mode == "delete":
            conn.execute("BEGIN EXCLUSIVE")
    except sqlite3.Error as exc:
        conn.close()
        if _is_damage(exc) and force:
            return None
        if _is_damage(exc):
            raise StorageError(
                f"cannot tell whether another process uses {target}: it is damaged ({exc});"
                " stop fedimeter, then restore with --force"
            ) from exc
        if _result_code(exc) in {_SQLITE_BUSY, _SQLITE_LOCKED}:
            raise in_use from exc
        raise StorageError(f"cannot open {target}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    if mode != "delete":
        conn.close()
        raise in_use
    return conn


def _ensure_free(target: Path, *, force: bool) -> None:
    """Refuse early, before copying anything, when ``_take_over`` would.

    Raises:
        StorageError: as ``_take_over``.
    """
    _release(_take_over(target, force=force))


def _release(conn: sqlite3.Connection | None) -> None:
    if conn is not None:
        conn.close()


def _stage(backup: Path, target: Path) -> Path:
    """Copy the backup into a hidden file beside ``target`` with SQLite's backup API.

    Raises:
        InvalidInput: the backup is not an SQLite file.
        CheckFailed: it is too damaged to copy.
        StorageError: it cannot be read or the copy cannot be written.
    """
    with _sqlite_errors("write", target):
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = _temporary(target)
    with (
        _discarded_on_error(temporary),
        _sqlite_errors("read", backup),
        contextlib.closing(_connect(backup)) as conn,
        contextlib.closing(sqlite3.connect(temporary, isolation_level=None)) as copy,
    ):
        try:
            conn.backup(copy)
        except sqlite3.Error as exc:
            if _result_code(exc) == _SQLITE_NOTADB:
                raise InvalidInput(f"{backup} is not an SQLite database") from exc
            if _is_damage(exc):
                raise CheckFailed(
                    f"{backup} fails the check: {_damage([str(exc)])}; nothing was changed"
                ) from exc
            raise
    return temporary


def _backup_name(target: Path) -> Path:
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    candidate = target.with_name(f"{target.name}.{stamp}.bak")
    number = 1
    while candidate.exists():
        number += 1
        candidate = target.with_name(f"{target.name}.{stamp}-{number}.bak")
    return candidate


def _swap_in(temporary: Path, target: Path, *, force: bool) -> Path | None:
    """Put the checked copy in place of ``target``; where the replaced file is kept.

    The database is held exclusively from before its file is kept until the copy replaces it,
    and the path always names a whole database: the old one, then the new one.

    Raises:
        StorageError: another process opened the database meanwhile, or a rename failed.
    """
    with (
        _sqlite_errors("prepare", temporary),
        contextlib.closing(sqlite3.connect(temporary, isolation_level=None)) as copy,
    ):
        copy.execute("PRAGMA journal_mode=DELETE")  # the log folded in: one file to rename
    holder = _take_over(target, force=force)
    try:
        with _sqlite_errors("replace", target):
            previous = None
            if target.exists():
                previous = _backup_name(target)
                try:
                    os.link(target, previous)
                except OSError:
                    shutil.copy2(target, previous)
                # Only a database too damaged to open still has its log: it goes with it.
                for suffix in ("-wal", "-shm"):
                    log = target.with_name(target.name + suffix)
                    if log.exists():
                        log.replace(previous.with_name(previous.name + suffix))
                _same_owner(target, temporary)
            _publish(temporary, target)
    finally:
        _release(holder)
    return previous


def _same_owner(model: Path, path: Path) -> None:
    """Give ``path`` the permissions (and, where allowed, the owner) of ``model``."""
    status = model.stat()
    path.chmod(status.st_mode & 0o7777)
    if (status.st_uid, status.st_gid) != (os.getuid(), os.getgid()):
        with contextlib.suppress(OSError):
            os.chown(path, status.st_uid, status.st_gid)
