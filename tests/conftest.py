"""Shared fixtures: a real PostgreSQL server per session, a database per test on each backend."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from fedimeter.config import Settings, load_settings
from fedimeter.storage.database import Database
from fedimeter.storage.repository import Repository
from pg import PostgresServer, find_bindir, start_postgres

BACKENDS = ["sqlite", "postgresql"]
_db_numbers = itertools.count(1)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep every test away from the developer's own configuration and data."""
    for name in list(os.environ):
        if name.startswith("FEDIMETER_") and not name.startswith("FEDIMETER_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole session (CI must have it; locally it may skip)."""
    if find_bindir() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries are missing on CI")
        pytest.skip("PostgreSQL server binaries not installed")
    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()


async def _admin(server: PostgresServer, statement: str) -> None:
    """Run one statement on the server's ``postgres`` database."""
    conn = await asyncpg.connect(server.url().replace("postgresql://", "postgres://"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.contextmanager
def fresh_database(server: PostgresServer) -> Iterator[str]:
    """The URL of a new, empty database on ``server``, dropped again when the block ends.

    Each database is a copy of template1 (some 7 MB in about 300 files) and a full run makes
    about two hundred: left in place, they would pile up until the session's end, where deleting
    the cluster's gigabytes took some 15 s of the last test's teardown. ``FORCE`` ends any
    connection a killed process (a SIGKILLed collector or worker) may have left behind.
    """
    name = f"fedimeter_test_{os.getpid()}_{next(_db_numbers)}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield server.url(name)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database URL: an SQLite file, then a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'fedimeter.sqlite3'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with fresh_database(server) as url:
        yield url


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings for tests: the test database, loopback allowed, no real backoff sleeps."""
    return load_settings(
        database_url=database_url,
        allow_private_addresses=True,
        retry_base_delay=0.01,
        retry_max_delay=0.05,
        connect_timeout=2.0,
        read_timeout=2.0,
        request_deadline=5.0,
        host_retry_delay=0.05,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """The test database, migrated."""
    database = await Database.open(settings.database_url)
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def repo(db: Database) -> Repository:
    """A repository over the test database."""
    return Repository(db)
