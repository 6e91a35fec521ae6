"""The database schema, as SQLAlchemy Core tables; migrations in ``migrations/`` create it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "UTCDateTime",
    "account_samples",
    "accounts",
    "alert_deliveries",
    "alerts",
    "deliveries",
    "engagement_accounts",
    "engagement_statuses",
    "host_leases",
    "instance_activity",
    "instance_samples",
    "instances",
    "metadata",
    "retention_marks",
    "run_failures",
    "runs",
    "tag_history",
    "tags",
    "trend_tags",
]

# Stable constraint names, so later migrations can alter them on SQLite and PostgreSQL alike.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _utc(value: Any) -> datetime | None:  # noqa: ANN401 - whatever the driver gives
    """``value`` as an aware UTC datetime: naive ones are UTC, aware ones are converted."""
    if value is None:
        return None
    if not isinstance(value, datetime):  # pragma: no cover - drivers give datetimes
        msg = f"expected a datetime from the database, got {type(value).__name__}"
        raise TypeError(msg)
    if value.tzinfo is UTC:  # asyncpg's timestamptz: nothing to convert
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _utc_from_text(value: Any) -> datetime | None:  # noqa: ANN401 - whatever the driver gives
    """An aware UTC datetime from SQLite's naive UTC text, such as ``2026-04-01 03:12:45.000000``.

    Parsed with the offset appended, so ``fromisoformat`` makes the aware datetime at once:
    SQLAlchemy's parsing followed by ``replace(tzinfo=UTC)`` cost ten times as much, a third
    of a second in a report over 300,000 samples. Text that already has an offset (not
    written by fedimeter) is parsed and converted to UTC.
    """
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value + "+00:00")
        except ValueError:
            value = datetime.fromisoformat(value)
    return _utc(value)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as naive
    UTC text (which sorts correctly) and come back as aware UTC datetimes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store UTC (naive on SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None:
            msg = "naive datetime given to the database; use timezone-aware UTC values"
            raise ValueError(msg)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:  # noqa: ANN401, ARG002
        """Return an aware UTC datetime."""
        return _utc(value)

    def result_processor(
        self,
        dialect: Dialect,
        coltype: Any,  # noqa: ANN401 - the driver's type code
    ) -> Callable[[Any], datetime | None] | None:
        """On SQLite, one function from the stored text to an aware datetime.

        Elsewhere, the driver's datetime through ``process_result_value``.
        """
        if dialect.name == "sqlite":
            return _utc_from_text
        return super().result_processor(dialect, coltype)


instances = Table(
    "instances",
    metadata,
    Column("id", Integer, primary_key=True),
    # The web host that serves the API, as an authority (host or host:port): unique.
    Column("host", String(300), nullable=False, unique=True),
    Column("base_url", String(320), nullable=False),
    Column("software", String(100)),
    Column("version", String(100)),
    # Whether GET /api/v1/accounts?id[]= exists; NULL until known.
    Column("supports_batch", Boolean),
    Column("info_checked_at", UTCDateTime),
    Column("added_at", UTCDateTime, nullable=False),
    # Set while the instance itself is tracked (measured each round); NULL when it is only
    # the home of tracked accounts.
    Column("tracked_at", UTCDateTime),
    # Set while the instance's trending hashtags are recorded each round.
    Column("trends_tracked_at", UTCDateTime),
    # When they were last read, an empty answer included (which stores no list).
    Column("trends_checked_at", UTCDateTime),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    # Lower-case canonical acct (user@domain): one row per account, whatever case was typed.
    Column("acct_key", String(600), nullable=False, unique=True),
    Column("username", String(300), nullable=False),
    Column("domain", String(300), nullable=False),
    Column("instance_id", ForeignKey("instances.id"), nullable=False, index=True),
    Column("remote_id", String(100), nullable=False),
    Column("display_name", Text, nullable=False, default=""),
    Column("url", Text, nullable=False, default=""),
    Column("state", String(20), nullable=False, default="active"),
    Column("moved_to", String(600)),
    Column("added_at", UTCDateTime, nullable=False),
    Column("state_changed_at", UTCDateTime),
    Column("last_error", Text),
    Column("last_error_code", String(40)),
    Column("last_error_at", UTCDateTime),
    Column("consecutive_failures", Integer, nullable=False, default=0),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    # Updated as batches are committed: a running round whose heartbeat stopped has died.
    Column("heartbeat_at", UTCDateTime, nullable=False),
    # running | finished | interrupted | failed
    Column("status", String(20), nullable=False),
    # The interrupted round this one finished, if any.
    Column("resumes_run_id", ForeignKey("runs.id", ondelete="SET NULL")),
    Column("owner", String(200), nullable=False, default=""),
    Column("accounts_planned", Integer, nullable=False, default=0),
    Column("accounts_measured", Integer, nullable=False, default=0),
    Column("accounts_failed", Integer, nullable=False, default=0),
    Column("requests", Integer, nullable=False, default=0),
    Column("rate_limited", Integer, nullable=False, default=0),
    Column("rate_limit_wait_seconds", Float, nullable=False, default=0.0),
    Column("retries", Integer, nullable=False, default=0),
    Column("error", Text),
    Index("ix_runs_status_started", "status", "started_at"),
)

account_samples = Table(
    "account_samples",
    metadata,
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("taken_at", UTCDateTime, primary_key=True),
    Column("followers", BigInteger, nullable=False),
    Column("following", BigInteger, nullable=False),
    Column("statuses", BigInteger, nullable=False),
    Column("last_status_at", Date),
    Column("run_id", ForeignKey("runs.id", ondelete="SET NULL"), index=True),
)

run_failures = Table(
    "run_failures",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("code", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Reports delivered (or being delivered): one row per channel, destination and report, so the
# same report is never sent twice and a thread cut short by a crash is finished, not restarted.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    # mastodon | webhook | email
    Column("channel", String(20), nullable=False),
    # A fingerprint of where it goes (webhook URLs and tokens are secrets: never stored).
    Column("destination", String(64), nullable=False),
    # Where it goes, for people, without secrets: a host, or the number of recipients.
    Column("destination_label", Text, nullable=False),
    # The period's UTC days and the accounts it covers: the same report has the same key.
    Column("report_key", String(200), nullable=False),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    # sending | delivered | failed
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=1),
    # The posts of a thread as planned (JSON list), how many went out, and their ids.
    Column("parts", Text),
    Column("parts_sent", Integer, nullable=False, default=0),
    Column("remote_ids", Text),
    Column("url", Text),
    Column("error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    UniqueConstraint("channel", "destination", "report_key", name="uq_deliveries_report"),
    Index("ix_deliveries_created", "created_at"),
)

# One measurement of a tracked instance: None where a source was off, refused, failed or
# served values that could not be believed (``sources`` says which and why, as JSON).
instance_samples = Table(
    "instance_samples",
    metadata,
    Column("instance_id", ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True),
    Column("taken_at", UTCDateTime, primary_key=True),
    Column("up", Boolean, nullable=False),
    Column("software", String(100)),
    Column("version", String(100)),
    Column("users", BigInteger),
    Column("statuses", BigInteger),
    Column("domains", BigInteger),
    Column("peers", BigInteger),
    Column("active_month", BigInteger),
    Column("active_halfyear", BigInteger),
    Column("sources", Text, nullable=False),
    Column("run_id", ForeignKey("runs.id", ondelete="SET NULL"), index=True),
)

# Weekly activity (``/api/v1/instance/activity``), one row per instance and week. A week is
# final once stored complete; the week in progress is rewritten until it is.
instance_activity = Table(
    "instance_activity",
    metadata,
    Column("instance_id", ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True),
    Column("week_start", Date, primary_key=True),
    Column("statuses", BigInteger, nullable=False),
    Column("logins", BigInteger, nullable=False),
    Column("registrations", BigInteger, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# A round shared by ``fedimeter worker`` processes is split by host: one row per host with
# work in it. A worker holds a host while ``expires_at`` is ahead and renews it as it goes;
# ``token`` grows with every claim, and a worker writes results only while the token it was
# given is still the row's, so a worker that lost its host (paused, cut off) cannot store
# anything after another took the host over.
host_leases = Table(
    "host_leases",
    metadata,
    Column("run_id", ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    Column("instance_id", ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True),
    # Accounts planned on this host, and whether the instance itself is measured too.
    Column("accounts", Integer, nullable=False),
    Column("measure_instance", Boolean, nullable=False),
    # The worker holding it (NULL before the first claim), until when, and the fencing token.
    Column("holder", String(200)),
    Column("expires_at", UTCDateTime),
    Column("token", Integer, nullable=False, default=0),
    # How many times it was claimed: more than once means a worker died holding it.
    Column("claims", Integer, nullable=False, default=0),
    Column("done_at", UTCDateTime),
    Index("ix_host_leases_open", "run_id", "done_at"),
)

# How far retention has thinned each sample table: every sample taken before ``thinned_before``
# is down to one per ``period`` (day or week; see domain/retention.py), so the pass after a
# round only looks at the samples since. ``fedimeter db downsample`` looks at everything.
retention_marks = Table(
    "retention_marks",
    metadata,
    Column("sample_table", String(40), primary_key=True),
    Column("period", String(10), primary_key=True),
    Column("thinned_before", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# A hashtag tracked on one instance (``fedimeter tag add NAME --on HOST``): one row per tag and
# instance, since every server counts only the posts it has seen.
tags = Table(
    "tags",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("instance_id", ForeignKey("instances.id", ondelete="CASCADE"), nullable=False),
    # The name in lower case, without ``#``: Mastodon's hashtags are case-insensitive.
    Column("name_key", String(200), nullable=False),
    # The name as the server spells it (as typed until the server has answered).
    Column("name", String(200), nullable=False),
    Column("url", Text),
    Column("added_at", UTCDateTime, nullable=False),
    # The last time the server answered with the tag's history.
    Column("checked_at", UTCDateTime),
    Column("last_error", Text),
    Column("last_error_code", String(40)),
    Column("last_error_at", UTCDateTime),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    UniqueConstraint("instance_id", "name_key", name="uq_tags_instance_name"),
)

# A tag's daily use on its instance (``/api/v1/tags/:name`` answers the last 7 days): one row
# per tag and UTC day, whatever calls covered it. The server's newest day is still going on:
# stored incomplete and rewritten until a later call shows it over.
tag_history = Table(
    "tag_history",
    metadata,
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("uses", BigInteger, nullable=False),
    Column("accounts", BigInteger, nullable=False),
    Column("complete", Boolean, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("run_id", ForeignKey("runs.id", ondelete="SET NULL"), index=True),
)

# An instance's trending hashtags (``/api/v1/trends/tags``) as one round saw them, in order,
# with the uses and accounts of the server's newest day.
trend_tags = Table(
    "trend_tags",
    metadata,
    Column("instance_id", ForeignKey("instances.id", ondelete="CASCADE"), primary_key=True),
    Column("taken_at", UTCDateTime, primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("day", Date, nullable=False),
    Column("uses", BigInteger, nullable=False),
    Column("accounts", BigInteger, nullable=False),
    Column("run_id", ForeignKey("runs.id", ondelete="SET NULL"), index=True),
)

# Alerts that fired (docs/alerts.md): one row per occurrence of a rule on a subject, so an
# occurrence judged again in later rounds, or by a second process, is recorded (and sent) once.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    # The rule's name, its kind, and the subject: ``account:user@host`` or ``instance:host``.
    Column("rule", String(100), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("subject", String(700), nullable=False),
    Column("subject_label", String(700), nullable=False),
    # What tells this occurrence apart: the day of a drop, a streak's start, a milestone.
    Column("occurrence", String(100), nullable=False),
    Column("text", Text, nullable=False),
    # The figures behind the text, as JSON.
    Column("details", Text, nullable=False),
    Column("fired_at", UTCDateTime, nullable=False),
    UniqueConstraint("rule", "subject", "occurrence", name="uq_alerts_occurrence"),
    Index("ix_alerts_fired", "fired_at"),
)

# Each alert's delivery by each channel chosen when it fired. A delivery is claimed (with a
# token of its own) before anything is sent, so two processes never both send it; a failed
# one is claimed again by the next round.
alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("alert_id", ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True),
    # mastodon | webhook | email
    Column("channel", String(20), primary_key=True),
    # pending | sending | delivered | failed
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("claim", String(40)),
    # Where it went, for people, without secrets: a host, or the recipients.
    Column("destination", Text),
    Column("url", Text),
    Column("error", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    Index("ix_alert_deliveries_open", "channel", "status"),
)

# Accounts whose engagement is read (``fedimeter track engagement``, docs/engagement.md): one
# row per account, kept when turned off (``enabled_at`` NULL) so its statuses keep their meaning.
engagement_accounts = Table(
    "engagement_accounts",
    metadata,
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    # Set while its timeline is read each round.
    Column("enabled_at", UTCDateTime),
    # The last reading that answered, and every status posted from ``covered_since`` on was
    # seen by an unbroken chain of readings (each reaching back to the one before).
    Column("read_at", UTCDateTime),
    Column("covered_since", UTCDateTime),
    # What the last reading cost, and the statuses it found.
    Column("last_requests", Integer, nullable=False, default=0),
    Column("last_paging_requests", Integer, nullable=False, default=0),
    Column("last_statuses", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("last_error_code", String(40)),
    Column("last_error_at", UTCDateTime),
    Column("consecutive_failures", Integer, nullable=False, default=0),
)

# The statuses of those accounts' timelines, one row per status, with the counts it showed
# when last read (rewritten by every reading that sees it; see storage/engagement.py).
engagement_statuses = Table(
    "engagement_statuses",
    metadata,
    Column("account_id", ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True),
    Column("status_id", String(200), primary_key=True),
    Column("created_at", UTCDateTime, nullable=False),
    # A post, a reply or a boost (domain/engagement.py says which is which).
    Column("kind", String(10), nullable=False),
    Column("favourites", BigInteger, nullable=False),
    Column("reblogs", BigInteger, nullable=False),
    Column("replies", BigInteger, nullable=False),
    Column("in_reply_to_id", String(200)),
    Column("visibility", String(20), nullable=False),
    Column("url", Text),
    Column("excerpt", Text, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    # A reading that covered its moment no longer found it (deleted, or no longer public).
    Column("gone_at", UTCDateTime),
    Index("ix_engagement_statuses_posted", "account_id", "created_at"),
)
