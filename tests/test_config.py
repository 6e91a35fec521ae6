"""Settings from defaults, a TOML file and FEDIMETER_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedimeter.config import load_settings
from fedimeter.errors import ConfigError


def test_defaults_work_with_no_configuration(tmp_path: Path) -> None:
    """With nothing set, the database is an SQLite file in the XDG data folder."""
    settings = load_settings()
    assert settings.database_url == (
        f"sqlite+aiosqlite:///{tmp_path / 'data' / 'fedimeter' / 'fedimeter.sqlite3'}"
    )
    assert settings.allow_private_addresses is False
    assert settings.user_agent.startswith("fedimeter/")


def test_environment_overrides_the_toml_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FEDIMETER_* variables win over the file, which wins over defaults."""
    config = tmp_path / "fedimeter.toml"
    config.write_text('user_agent = "from-file"\nmax_retries = 7\n')
    monkeypatch.setenv("FEDIMETER_USER_AGENT", "from-env")
    settings = load_settings(config)
    assert settings.user_agent == "from-env"
    assert settings.max_retries == 7


def test_the_default_config_file_is_read_when_present(tmp_path: Path) -> None:
    """~/.config/fedimeter/fedimeter.toml (XDG) is read without being named."""
    folder = tmp_path / "config" / "fedimeter"
    folder.mkdir(parents=True)
    (folder / "fedimeter.toml").write_text("per_host_concurrency = 2\n")
    assert load_settings().per_host_concurrency == 2


def test_fedimeter_config_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """$FEDIMETER_CONFIG points at the file to read."""
    config = tmp_path / "elsewhere.toml"
    config.write_text("allow_private_addresses = true\n")
    monkeypatch.setenv("FEDIMETER_CONFIG", str(config))
    assert load_settings().allow_private_addresses is True


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p@db/fedimeter", "postgresql+asyncpg://u:p@db/fedimeter"),
        ("postgres://u@db/x", "postgresql+asyncpg://u@db/x"),
        ("sqlite:////var/lib/f.sqlite3", "sqlite+aiosqlite:////var/lib/f.sqlite3"),
    ],
)
def test_database_urls_get_the_async_driver(url: str, expected: str) -> None:
    """Plain URLs are given the drivers fedimeter uses."""
    assert load_settings(database_url=url).database_url == expected


def test_a_sqlite_path_in_the_home_folder_is_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    """``~/`` is the home folder (not a folder named ``~``); a query is kept."""
    monkeypatch.setenv("HOME", "/home/someone")
    expanded = load_settings(database_url="sqlite:///~/fm/f.sqlite3").database_url
    assert expanded == "sqlite+aiosqlite:////home/someone/fm/f.sqlite3"
    with_query = load_settings(database_url="sqlite:///~/f.sqlite3?timeout=5").database_url
    assert with_query == "sqlite+aiosqlite:////home/someone/f.sqlite3?timeout=5"
    relative = load_settings(database_url="sqlite:///data/~x.sqlite3").database_url
    assert relative == "sqlite+aiosqlite:///data/~x.sqlite3"


def test_an_unsupported_database_is_a_config_error() -> None:
    """A MySQL URL is refused with a message naming what works."""
    with pytest.raises(ConfigError, match="use sqlite:///PATH or postgresql://"):
        load_settings(database_url="mysql://u@db/x")


def test_a_typo_in_the_file_is_a_config_error(tmp_path: Path) -> None:
    """Unknown keys are refused instead of silently ignored."""
    config = tmp_path / "fedimeter.toml"
    config.write_text("max_retrys = 3\n")
    with pytest.raises(ConfigError, match="max_retrys"):
        load_settings(config)


def test_a_bad_value_is_a_config_error() -> None:
    """A negative timeout is refused with the setting's name."""
    with pytest.raises(ConfigError, match="connect_timeout"):
        load_settings(connect_timeout=-1)


def test_a_missing_named_file_is_a_config_error(tmp_path: Path) -> None:
    """Naming a file that does not exist is an error, not a silent default."""
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_malformed_toml_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not TOML gives one readable error."""
    config = tmp_path / "fedimeter.toml"
    config.write_text("this is = = not toml\n")
    with pytest.raises(ConfigError, match="cannot read configuration file"):
        load_settings(config)
