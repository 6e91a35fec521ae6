"""Opening the database: engine set-up per backend, migrations, and readable errors."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from fedimeter.errors import StorageError
from fedimeter.storage.faults import cannot_open, explain

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from sqlalchemy.engine import Connection

__all__ = ["Database", "describe_url", "translate_errors"]

# Any constant works; it only has to be the same in every fedimeter process.
_MIGRATION_LOCK = 0x666D6D67


#: Connections kept open to PostgreSQL, and how many more may open under a burst.
POOL_SIZE = 20
POOL_OVERFLOW = 20


def describe_url(url: str) -> str:
    """The database URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL we cannot parse is shown as a placeholder
        return "<database>"


def _reason(exc: BaseException) -> str:
    original = getattr(exc, "orig", None) or exc
    text_ = (
        str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    )
    return text_.removeprefix("(sqlite3.OperationalError) ")


@contextlib.asynccontextmanager
async def translate_errors(action: str, url: str) -> AsyncIterator[None]:
    """Turn driver errors into ``StorageError`` with one readable line.

    Raises:
        StorageError: the database refused or could not be reached.
    """
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        if isinstance(exc, SQLAlchemyError) and not isinstance(exc, DBAPIError):
            raise
        # A full disk, a read-only file or mount, a user without rights: said as such.
        message = explain(exc, url, action)
        if message is None:
            message = f"cannot {action} {describe_url(url)}: {_reason(exc)}"
        raise StorageError(message) from exc


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", "fedimeter.storage:migrations")
    return config


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:  # noqa: ANN401 - DB-API objects
    cursor = dbapi_connection.cursor()
    # WAL lets readers (the API, reports) run while a round writes; NORMAL is durable in WAL
    # mode except for the last transactions on power loss, never corrupting the file.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """An open database: the async engine, plus migration helpers."""

    def __init__(self, engine: AsyncEngine, url: str) -> None:
        """Wrap an engine made by ``Database.open``."""
        self.engine = engine
        self.url = url

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Database:
        """Connect, and bring the schema up to date unless ``migrate`` is false.

        Raises:
            StorageError: the database cannot be reached, created or migrated.
        """
        parsed = make_url(url)
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            database = parsed.database
            if database and database != ":memory:" and not database.startswith("file:"):
                try:
                    # Once, at start-up, before anything else runs on the loop.
                    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240
                except OSError as exc:
                    raise StorageError(
                        f"cannot create the folder for {describe_url(url)}: {exc.strerror}"
                    ) from exc
                # A file SQLite cannot open fails in aiosqlite's thread, which may then report
                # it to an event loop already closed: a traceback after the error. Said first.
                problem = cannot_open(Path(database))
                if problem is not None:
                    raise StorageError(problem)
            kwargs["connect_args"] = {"timeout": 30}
        else:
            kwargs["pool_pre_ping"] = True
            # The server answers many requests at once: with SQLAlchemy's default of 5 kept
            # connections, 16 concurrent requests opened a new one for most of them (30-day
            # samples at 16 connections: 319 -> 522 requests/s, p99 131 -> 43 ms with 20).
            kwargs["pool_size"] = POOL_SIZE
            kwargs["max_overflow"] = POOL_OVERFLOW
        engine = create_async_engine(url, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        db = cls(engine, url)
        try:
            if migrate:
                await db.upgrade()
            else:
                async with translate_errors("connect to", url), engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except BaseException:
            await engine.dispose()
            raise
        return db

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()

    async def upgrade(self, revision: str = "head") -> None:
        """Apply migrations up to ``revision``; safe when several processes start at once.

        Raises:
            StorageError: the database refused.
        """
        async with translate_errors("migrate", self.url), self.engine.begin() as conn:
            if self.dialect == "postgresql":
                await conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
                )
            await conn.run_sync(_run_upgrade, revision)

    async def current_revision(self) -> str | None:
        """The revision the database is at, or None for an empty database.

        Raises:
            StorageError: the database cannot be reached.
        """
        async with translate_errors("read", self.url), self.engine.connect() as conn:
            return await conn.run_sync(_current_revision)

    @staticmethod
    def head_revision() -> str | None:
        """The newest revision this version of fedimeter knows.

        Read once per process: a server keeps running the code it started with, so a newer
        version installed beside it (with a newer migration) does not make it "not ready".
        """
        return _head_revision()

    @staticmethod
    def known_revisions() -> set[str]:
        """Every revision this version of fedimeter knows, the newest included."""
        script = ScriptDirectory.from_config(_alembic_config())
        return {revision.revision for revision in script.walk_revisions()}

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction that commits on success, with readable errors.

        Raises:
            StorageError: the database refused.
        """
        async with translate_errors("write to", self.url), self.engine.begin() as conn:
            yield conn

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reading, with readable errors.

        Raises:
            StorageError: the database refused.
        """
        async with translate_errors("read", self.url), self.engine.connect() as conn:
            yield conn


def insert_ignore(dialect: str, table: Any) -> Any:  # noqa: ANN401 - dialect insert constructs
    """INSERT that skips rows whose key exists: ``rowcount`` tells whether it inserted."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


@functools.cache
def _head_revision() -> str | None:
    return ScriptDirectory.from_config(_alembic_config()).get_current_head()


def _run_upgrade(connection: Connection, revision: str) -> None:
    config = _alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
