"""Settings: ``FEDIMETER_*`` environment variables over an optional TOML file over defaults.

Nothing is read at import time: call ``load_settings()``. The defaults work with no
configuration at all (an SQLite file in the XDG data directory).
"""

from __future__ import annotations

import json
import os
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    InstanceOf,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from fedimeter import __version__
from fedimeter.domain.alert_rules import AlertRule, parse_rules
from fedimeter.domain.mail import check_address
from fedimeter.domain.retention import retention_problem
from fedimeter.domain.schedule import DEFAULT_SCHEDULE, parse_schedule
from fedimeter.errors import ConfigError, InvalidInput

Channel = Literal["mastodon", "webhook", "email"]

__all__ = ["Channel", "Settings", "default_config_file", "default_database_url", "load_settings"]

_config_file: ContextVar[Path | None] = ContextVar("fedimeter_config_file", default=None)


def _xdg_dir(variable: str, fallback: str) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else Path.home() / fallback


def default_config_file() -> Path:
    """``$XDG_CONFIG_HOME/fedimeter/fedimeter.toml`` (read only when it exists)."""
    return _xdg_dir("XDG_CONFIG_HOME", ".config") / "fedimeter" / "fedimeter.toml"


def default_database_url() -> str:
    """An SQLite file in ``$XDG_DATA_HOME/fedimeter`` (``~/.local/share/fedimeter``)."""
    path = _xdg_dir("XDG_DATA_HOME", ".local/share") / "fedimeter" / "fedimeter.sqlite3"
    return f"sqlite+aiosqlite:///{path}"


def normalise_database_url(url: str) -> str:
    """Give a database URL the async driver fedimeter uses; refuse schemes it cannot use.

    A SQLite path that starts with ``~/`` is in the home folder.

    Raises:
        ValueError: the scheme is neither SQLite nor PostgreSQL.
    """
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(
            f"{url!r} is not a database URL (expected sqlite:///... or postgresql://...)"
        )
    base = scheme.split("+", 1)[0].lower()
    if base == "sqlite":
        # sqlite:///~/f.sqlite3 is a file in the home folder, as a person writing it means.
        if rest.startswith(("/~/", "/~?")) or rest == "/~":
            path, query, params = rest[1:].partition("?")
            rest = "/" + str(Path(path).expanduser()) + query + params
        return f"sqlite+aiosqlite://{rest}"
    if base in {"postgresql", "postgres"}:
        return f"postgresql+asyncpg://{rest}"
    raise ValueError(f"unsupported database {scheme!r}: use sqlite:///PATH or postgresql://...")


class Settings(BaseSettings):
    """Everything fedimeter can be told; see docs/configuration.md."""

    model_config = SettingsConfigDict(
        env_prefix="FEDIMETER_",
        extra="forbid",
        validate_default=True,
        frozen=True,
    )

    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLite (default: a file in the XDG data directory) or postgresql://...",
    )
    user_agent: str = Field(
        default=f"fedimeter/{__version__}",
        description="User-Agent sent to every server; add a contact address for admins.",
    )
    connect_timeout: float = Field(default=10.0, gt=0, description="Seconds to open a connection.")
    read_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a server may stay silent (no byte of the answer, or taking none of "
        "the request).",
    )
    request_deadline: float = Field(
        default=60.0, gt=0, description="Seconds one request may take in all (stops slow drips)."
    )
    host_deadline: float = Field(
        default=1800.0,
        gt=0,
        description="Seconds one host may take in a round; its unmeasured accounts are recorded.",
    )
    host_retry_passes: int = Field(
        default=1,
        ge=0,
        description="Passes more over a host, within host_deadline, for accounts that failed "
        "for a passing reason (unreachable, 5xx, a 429 storm).",
    )
    host_retry_delay: float = Field(
        default=60.0,
        ge=0,
        description="Seconds to wait before such a pass (a host back from a restart).",
    )
    max_connections: int = Field(
        default=256,
        ge=1,
        description="Connections open at once, over all hosts (keep it at least hosts x "
        "per_host_concurrency for the hosts measured together, or connections are closed and "
        "opened again between requests).",
    )
    per_host_concurrency: int = Field(
        default=4, ge=1, description="Requests in flight at once to one host."
    )
    max_retries: int = Field(
        default=3, ge=0, description="Retries after a 5xx, timeout or reset, with jittered backoff."
    )
    retry_base_delay: float = Field(
        default=1.0, ge=0, description="First backoff delay in seconds; doubles each retry."
    )
    retry_max_delay: float = Field(default=60.0, ge=0, description="Longest backoff delay.")
    max_rate_limit_wait: float = Field(
        default=900.0,
        ge=0,
        description="Longest wait for one host's rate-limit reset before giving up on it.",
    )
    max_response_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1024, description="Larger answers are refused."
    )
    allow_private_addresses: bool = Field(
        default=False,
        description="Allow servers on loopback/private addresses (tests, the demo, a LAN).",
    )
    default_scheme: Literal["https", "http"] = Field(
        default="https",
        description="Scheme for servers named without one (http only for a LAN or the demo).",
    )
    batch_size: int = Field(
        default=40, ge=1, le=40, description="Accounts per batch call (Mastodon allows 40)."
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for write calls to the API; without it the server only"
        " listens on 127.0.0.1.",
    )
    read_token: SecretStr | None = Field(
        default=None,
        description="Bearer token for read calls; without it reads are open.",
    )
    schedule: str = Field(
        default=DEFAULT_SCHEDULE,
        description="When the server collects: a cron expression in UTC or an interval (6h).",
    )
    software_recheck_hours: float = Field(
        default=24.0, gt=0, description="How often a host's software and version are re-read."
    )

    # -- engagement (docs/engagement.md) ---------------------------------------------------
    engagement_days: int = Field(
        default=7,
        ge=1,
        le=365,
        description="Days of an engagement account's timeline read each round: a status's"
        " counts are updated for this long after it was posted.",
    )
    engagement_max_pages: int = Field(
        default=25,
        ge=1,
        le=1000,
        description="Most pages (40 statuses each) of one account's timeline read in a round.",
    )

    # -- workers sharing rounds over PostgreSQL (docs/scaling.md) -------------------------
    worker_lease_seconds: float = Field(
        default=600.0,
        ge=1,
        description="How long a worker holds a host between renewals; a dead worker's hosts"
        " are taken over after it. Keep it above the servers' rate-limit window (Mastodon:"
        " 300 s) plus request_deadline.",
    )
    worker_hosts: int = Field(default=32, ge=1, description="Hosts one worker measures at once.")

    # -- retention: downsampling old samples (domain/retention.py) -------------------------
    retention_daily_after_days: int | None = Field(
        default=None,
        ge=1,
        description="Days that ended this many days ago keep one sample per account and"
        " instance (the day's last); off when unset.",
    )
    retention_weekly_after_days: int | None = Field(
        default=None,
        ge=1,
        description="Weeks that ended this many days ago keep one sample (the week's last);"
        " more than retention_daily_after_days; off when unset.",
    )

    # -- report delivery (docs/delivery.md) ------------------------------------------------
    post_instance: str | None = Field(
        default=None,
        description="Server reports are posted to, e.g. https://mastodon.social.",
    )
    post_token: SecretStr | None = Field(
        default=None,
        description="Access token of the posting account (scope write:statuses).",
    )
    post_visibility: Literal["public", "unlisted", "private", "direct"] = Field(
        default="unlisted", description="Visibility of posted reports."
    )
    post_max_parts: int = Field(
        default=20,
        ge=1,
        le=100,
        description="Longest thread a report may become; longer ones are refused (use top).",
    )
    webhook_url: str | None = Field(
        default=None,
        description="URL reports are POSTed to as JSON (Slack, Discord, Matrix bridges...).",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Signs each webhook body: X-Fedimeter-Signature: sha256=HMAC(body).",
    )
    smtp_host: str | None = Field(default=None, description="SMTP server for e-mailed reports.")
    smtp_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="SMTP port; default 587 (starttls), 465 (tls) or 25 (none).",
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description="starttls (upgrade after connecting), tls (from the start) or none.",
    )
    smtp_user: str | None = Field(default=None, description="SMTP user name, if it asks.")
    smtp_password: SecretStr | None = Field(default=None, description="SMTP password.")
    smtp_ca_file: Path | None = Field(
        default=None,
        description="CA certificates to trust for the SMTP server (default: the system's).",
    )
    smtp_timeout: float = Field(default=30.0, gt=0, description="Seconds for each SMTP step.")
    email_from: str | None = Field(default=None, description="Sender of e-mailed reports.")
    email_to: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Recipients of e-mailed reports."
    )
    delivery_retries: int = Field(
        default=3, ge=0, le=10, description="Retries of a failed delivery, with backoff."
    )
    deliver: Literal["off", "daily", "weekly"] = Field(
        default="off",
        description="Deliver a report after collection rounds: daily, weekly, or off.",
    )
    deliver_weekday: Literal[
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"
    ] = Field(default="monday", description="The day (UTC) weekly reports are delivered.")
    deliver_to: Annotated[list[Channel], NoDecode] = Field(
        default_factory=list,
        description="Channels for scheduled reports; default every configured one.",
    )
    deliver_top: int | None = Field(
        default=None, ge=1, description="Scheduled reports show only the first N accounts."
    )
    deliver_sort: Literal["growth", "followers", "name"] = Field(
        default="growth", description="Order of accounts in scheduled reports."
    )

    # -- alerts (docs/alerts.md) -----------------------------------------------------------
    alerts: Annotated[list[InstanceOf[AlertRule]], NoDecode] = Field(
        default_factory=list,
        description="Alert rules checked after every round (TOML [[alerts]] tables, or a"
        " JSON list in the variable); none: alerts off.",
    )
    alert_to: Annotated[list[Channel], NoDecode] = Field(
        default_factory=list,
        description="Channels alerts are delivered by; default every configured one.",
    )

    @field_validator("alerts", mode="before")
    @classmethod
    def _alert_rules(cls, value: object) -> list[AlertRule]:
        return parse_rules(value)

    @model_validator(mode="after")
    def _alert_channels_configured(self) -> Settings:
        missing = [c for c in self.alert_to if c not in self.delivery_channels()]
        if missing:
            raise ValueError(
                f"alert_to names {', '.join(missing)}, which is not configured"
                " (see docs/delivery.md)"
            )
        return self

    @field_validator("api_token", "read_token")
    @classmethod
    def _strong_token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if len(value.get_secret_value()) < 16:  # noqa: PLR2004
            raise ValueError("use at least 16 characters, e.g. from `openssl rand -hex 32`")
        return value

    @field_validator("schedule")
    @classmethod
    def _valid_schedule(cls, value: str) -> str:
        try:
            return parse_schedule(value).text
        except InvalidInput as exc:
            raise ValueError(str(exc)) from None

    @field_validator("retention_weekly_after_days")
    @classmethod
    def _weekly_after_daily(cls, value: int | None, info: ValidationInfo) -> int | None:
        problem = retention_problem(info.data.get("retention_daily_after_days"), value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("post_token", "webhook_secret", "smtp_password")
    @classmethod
    def _empty_secret_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value() else None

    @field_validator("post_instance", "webhook_url", "smtp_host", "email_from", "smtp_user")
    @classmethod
    def _empty_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("post_instance", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        scheme, sep, rest = value.partition("://")
        if not sep or scheme.lower() not in {"http", "https"} or not rest.strip("/"):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @field_validator("email_from")
    @classmethod
    def _sender(cls, value: str | None) -> str | None:
        if value is not None:
            check_address(value)
        return value

    @field_validator("email_to", "deliver_to", "alert_to", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        # From a variable: one value, several separated by commas, or a JSON list.
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part for part in (p.strip() for p in text.split(",")) if part]
        return value

    @field_validator("email_to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        for address in value:
            check_address(address)
        return value

    @model_validator(mode="after")
    def _delivery_configured(self) -> Settings:
        configured = self.delivery_channels()
        missing = [c for c in self.deliver_to if c not in configured]
        if missing:
            raise ValueError(
                f"deliver_to names {', '.join(missing)}, which is not configured"
                " (see docs/delivery.md)"
            )
        if self.deliver != "off" and not configured:
            raise ValueError(
                f"deliver is {self.deliver!r} but no channel is configured: set post_instance"
                " and post_token, webhook_url, or smtp_host, email_from and email_to"
            )
        if self.smtp_password is not None and self.smtp_user is None:
            raise ValueError("smtp_password is set without smtp_user")
        return self

    def delivery_channels(self) -> list[Channel]:
        """The channels that are configured, in the order mastodon, webhook, email."""
        configured: list[Channel] = []
        if self.post_instance and self.post_token:
            configured.append("mastodon")
        if self.webhook_url:
            configured.append("webhook")
        if self.smtp_host and self.email_from and self.email_to:
            configured.append("email")
        return configured

    @field_validator("database_url")
    @classmethod
    def _normalise_url(cls, value: str) -> str:
        return normalise_database_url(value)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003 - no .env files
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit values, then environment variables, then the TOML file."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:  # noqa: ANN401
    """Build the settings from overrides, ``FEDIMETER_*`` variables and a TOML file.

    The file is ``config_file``, else ``$FEDIMETER_CONFIG``, else ``default_config_file()``
    when it exists.

    Raises:
        ConfigError: a named file is missing or unreadable, or a value is invalid.
    """
    explicit = config_file or (
        Path(os.environ["FEDIMETER_CONFIG"]) if os.environ.get("FEDIMETER_CONFIG") else None
    )
    if explicit is not None and not explicit.is_file():
        raise ConfigError(f"configuration file {explicit} does not exist")
    path = explicit or (default_config_file() if default_config_file().is_file() else None)
    token = _config_file.set(path)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        origin = f" (from {path})" if path else ""
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"invalid setting {where}{origin}: {message}") from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise ConfigError(f"cannot read configuration file {path}: {exc}") from None
    finally:
        _config_file.reset(token)
