"""Why the database refused, said so that a person knows what to do about it.

SQLite tells little: a read-only mount, a file owned by another user and a folder where its
``-wal`` and ``-shm`` files cannot be created all come out as "unable to open database file"
or "attempt to write a readonly database", a file system turned read-only after an error as
"disk I/O error". When SQLite reports one of those, the file, its sidecars and its folder are
looked at to find the cause. The database file itself is never opened here: closing a second
descriptor of a file drops every POSIX lock this process holds on it, SQLite's included.

PostgreSQL says what is wrong in its own words; a user that may not write and a read-only
server (a standby, ``default_transaction_read_only``) get a hint about what to change. Its
disk filling up is its own business: the server refuses the transaction, whole, and says so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pwd
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import URL, make_url

__all__ = ["cannot_open", "explain"]

#: SQLite's primary result codes that may mean a read-only or a full database.
_SQLITE_PERM = 3
_SQLITE_READONLY = 8
_SQLITE_IOERR = 10
_SQLITE_FULL = 13
_SQLITE_CANTOPEN = 14
_MAYBE_READ_ONLY = frozenset({_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN})
#: Other codes a full disk may come as, and the free space below which they are taken for it.
_MAYBE_FULL = frozenset({_SQLITE_IOERR, _SQLITE_CANTOPEN})
_NEARLY_FULL = 1 << 20
#: With more, "database or disk is full" is about something else than the disk.
_ROOMY = 64 << 20
#: PostgreSQL's SQLSTATEs for a user without the rights and for a read-only transaction.
_PG_INSUFFICIENT_PRIVILEGE = "42501"
_PG_READ_ONLY_TRANSACTION = "25006"


@dataclass(frozen=True, slots=True)
class _Cause:
    """What is wrong, and what to do about it."""

    why: str
    what_to_do: str


def explain(exc: BaseException, url: str, action: str) -> str | None:
    """One line saying what is wrong and what to do, or None when the driver's words must do.

    ``action`` says what was being done: "write to", "migrate", "read".
    """
    original = getattr(exc, "orig", None) or exc
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL has nothing to look at
        return None
    if parsed.get_backend_name() == "postgresql":
        return _postgres(original, parsed, action)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite(original, parsed.database, action)
    return None


def cannot_open(database: Path) -> str | None:
    """Why SQLite could not open or create the file ``database`` at all; None when it can."""
    path = database.expanduser().absolute()
    user = _user_name(os.geteuid())
    try:
        if path.exists():
            if os.access(path, os.R_OK):
                return None
            stat = path.stat()
            owner = _user_name(stat.st_uid)
            return (
                f"cannot read the database {path}: it is not readable by user {user} (owner"
                f" {owner}, mode {stat.st_mode & 0o7777:04o}); run fedimeter as {owner}, or"
                f" give {user} read and write access to it"
            )
        folder = path.parent
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            cause = _read_only_mount(folder)
            return f"cannot create the database {path}: {cause.why}; {cause.what_to_do}"
        if not os.access(folder, os.W_OK | os.X_OK):
            return (
                f"cannot create the database {path}: user {user} may not create files in"
                f" {folder}; give {user} write access to it, or choose another place"
            )
    except OSError:  # a folder on the way that cannot be entered: SQLite says what it can
        return None
    return None


# -- SQLite ----------------------------------------------------------------------------------


def _sqlite(original: BaseException, database: str | None, action: str) -> str | None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    code = (getattr(original, "sqlite_errorcode", None) or 0) & 0xFF
    if code != _SQLITE_FULL and code not in _MAYBE_READ_ONLY:
        return None
    path = Path(database).expanduser().absolute()
    head = f"cannot {action} the database {path}"
    try:
        if code != _SQLITE_FULL:
            cause = _why_read_only(path)
            if cause is not None:
                return f"{head}: it is read-only ({cause.why}); {cause.what_to_do}"
            # Growing the -shm file, or creating it, on a full disk: an I/O error, or "unable
            # to open database file".
            if code not in _MAYBE_FULL or _free_bytes(path.parent) >= _NEARLY_FULL:
                return None
        return _full(head, path.parent)
    except OSError:  # the folder itself is gone or cannot be read: nothing better to say
        return None


def _full(head: str, folder: Path) -> str:
    free, mount = _free_bytes(folder), _mount_point(folder)
    if free >= _ROOMY:
        return (
            f"{head}: it is full, though {_size(free)} are free on {mount}: SQLite may not grow"
            " it (a limit set with PRAGMA max_page_count), or its temporary folder is full"
            " (TMPDIR)"
        )
    return (
        f"{head}: it is full (disk or file system: {_size(free)} free on {mount});"
        " free some space or move the database, then try again"
    )


def _why_read_only(path: Path) -> _Cause | None:
    """Why nothing can be written to the database at ``path``; None when no cause is found."""
    folder = path.parent
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return _read_only_mount(folder)
    user = _user_name(os.geteuid())
    for file in (path, *_sidecars(path)):
        if file.exists() and not os.access(file, os.W_OK):
            stat = file.stat()
            owner = _user_name(stat.st_uid)
            mode = f"{stat.st_mode & 0o7777:04o}"
            return _Cause(
                f"{file} is not writable by user {user}: owner {owner}, mode {mode}",
                f"run fedimeter as {owner}, or give {user} write access to it",
            )
    missing = " and ".join(file.name for file in _sidecars(path) if not file.exists())
    if missing and not os.access(folder, os.W_OK | os.X_OK):
        return _Cause(
            f"its folder {folder} is not writable by user {user}, and SQLite must create"
            f" {missing} there",
            f"give {user} write access to {folder}, or move the database",
        )
    return _probe(folder, user)


def _read_only_mount(folder: Path) -> _Cause:
    return _Cause(
        f"read-only file system on {_mount_point(folder)}",
        "remount it read-write, or move the database to a writable place",
    )


def _probe(folder: Path, user: str) -> _Cause | None:
    """Create and remove a file beside the database: the one test that sees every cause.

    A file system turned read-only after an error (ext4's ``errors=remount-ro``) need not say
    so in ``statvfs``, and access control lists and file attributes are not in the mode bits.
    """
    probe = folder / f".fedimeter-write-test-{os.getpid()}"
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        if exc.errno == errno.EROFS:
            return _read_only_mount(folder)
        if exc.errno in {errno.EACCES, errno.EPERM}:
            return _Cause(
                f"user {user} may not create files in its folder {folder}",
                f"give {user} write access to {folder}, or move the database",
            )
        return None
    os.close(descriptor)
    with contextlib.suppress(OSError):
        probe.unlink()
    return None


def _sidecars(path: Path) -> tuple[Path, Path]:
    return path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")


def _free_bytes(folder: Path) -> int:
    stat = os.statvfs(folder)
    return stat.f_bavail * stat.f_frsize


def _mount_point(folder: Path) -> Path:
    point = folder
    while not os.path.ismount(point) and point != point.parent:
        point = point.parent
    return point


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _size(count: int) -> str:
    """``0 bytes``, ``12.0 KiB``, ``3.5 GiB``."""
    if count < 1024:  # noqa: PLR2004 - a kibibyte
        return f"{count} bytes"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024:  # noqa: PLR2004
            return f"{value:.1f} {unit}"
    return f"{value / 1024:.1f} TiB"


# -- PostgreSQL ------------------------------------------------------------------------------


def _postgres(original: BaseException, url: URL, action: str) -> str | None:
    sqlstate = getattr(original, "sqlstate", None)
    text = str(original).strip()
    reason = text.splitlines()[0] if text else type(original).__name__
    head = f"cannot {action} {url.render_as_string(hide_password=True)}: {reason}"
    if sqlstate == _PG_INSUFFICIENT_PRIVILEGE:
        who = f"the database user {url.username}" if url.username else "this database user"
        return (
            f"{head} ({who} lacks rights fedimeter needs); grant it SELECT, INSERT, UPDATE and"
            " DELETE on fedimeter's tables and USAGE on their sequences, or connect as their"
            " owner"
        )
    if sqlstate == _PG_READ_ONLY_TRANSACTION:
        return (
            f"{head} (the database is read-only: a standby server, or"
            " default_transaction_read_only is on); connect to the primary server"
        )
    return None
