"""Prometheus collectors over what was read beforehand, and the text a scrape answers.

prometheus_client calls ``collect()`` synchronously while storage is async, so the caller reads
a snapshot first (``reading.read_snapshot``) and renders it with a fresh registry holding one
collector over it (``render_metrics``). Nothing is kept between scrapes.

``InstanceCollector`` exports instance rows alone, named as ``FedimeterCollector`` names them:
``fedimeter exporter`` serves it without a database; ``render`` renders any collectors.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from fedimeter import __version__
from fedimeter.domain.models import AccountState
from fedimeter.metrics.engagement import engagement_families
from fedimeter.metrics.snapshot import RUNNING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from fedimeter.metrics.snapshot import InstanceRow, MetricsSnapshot, TagRow
    from fedimeter.storage.records import AccountRecord, RunRecord, SampleRecord

__all__ = ["CONTENT_TYPE", "FedimeterCollector", "InstanceCollector", "render", "render_metrics"]

#: The media type of ``render_metrics``'s output: Prometheus's text format.
CONTENT_TYPE = CONTENT_TYPE_LATEST

#: States an account can be in while it is tracked (untracked ones are not exported).
TRACKED_STATES = tuple(s for s in AccountState if s is not AccountState.UNTRACKED)

_ACCOUNT = ("account", "instance")
_INSTANCE = ("instance",)
_TAG = ("tag", "instance")
#: Said in the HELP of every figure taken from a round.
_ROUND = "the newest round that ended (finished, failed or interrupted)"


def _day_start(day: date) -> float:
    """Unix time of 00:00 UTC on ``day``."""
    return datetime.combine(day, time(), UTC).timestamp()


class FedimeterCollector(Collector):
    """Metric families for accounts, instances, hashtags and fedimeter's rounds, from one snapshot.

    Args:
        snapshot: what to export, read by the caller.
        version: the fedimeter version ``fedimeter_build_info`` names.
    """

    def __init__(self, snapshot: MetricsSnapshot, *, version: str = __version__) -> None:
        """Export ``snapshot``."""
        self._snapshot = snapshot
        self._version = version

    def collect(self) -> Iterator[Metric]:
        """Every family, built from the snapshot (empty families are exported too)."""
        yield from _account_families(self._snapshot.accounts)
        yield from _instance_families(self._snapshot.instances)
        yield from _tracked_families(self._snapshot.accounts)
        yield from _tag_families(self._snapshot.tags)
        yield from engagement_families(self._snapshot.engagement)
        yield from _round_families(self._snapshot.last_run, self._snapshot.last_finished_run)
        yield _build_info(self._version)


class InstanceCollector(Collector):
    """The instance families and ``fedimeter_build_info``, as ``FedimeterCollector`` has them.

    Args:
        rows: the instances to export.
        version: the fedimeter version ``fedimeter_build_info`` names.
    """

    def __init__(self, rows: Sequence[InstanceRow], *, version: str = __version__) -> None:
        """Export ``rows``."""
        self._rows = rows
        self._version = version

    def collect(self) -> Iterator[Metric]:
        """The instance families (exported even when empty), then the build info."""
        yield from _instance_families(self._rows)
        yield _build_info(self._version)


def render(*collectors: Collector) -> bytes:
    """What ``collectors`` collect, in Prometheus's text format (``CONTENT_TYPE``), UTF-8."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry)


def render_metrics(snapshot: MetricsSnapshot, *, version: str = __version__) -> bytes:
    """``snapshot`` in Prometheus's text format (``CONTENT_TYPE``), UTF-8.

    CPU-bound (about 40 ms per 1,000 accounts): the server calls it in a worker thread.
    """
    return render(FedimeterCollector(snapshot, version=version))


def _build_info(version: str) -> Metric:
    build = InfoMetricFamily("fedimeter_build", "The fedimeter version serving these metrics.")
    build.add_metric([], {"version": version})
    return build


def _account_families(
    accounts: Sequence[tuple[AccountRecord, SampleRecord | None]],
) -> Iterator[Metric]:
    followers = GaugeMetricFamily(
        "fedimeter_account_followers",
        "Followers of the account on its home server, at its latest sample.",
        labels=_ACCOUNT,
    )
    following = GaugeMetricFamily(
        "fedimeter_account_following",
        "Accounts the account follows, at its latest sample.",
        labels=_ACCOUNT,
    )
    statuses = GaugeMetricFamily(
        "fedimeter_account_statuses",
        "Posts of the account, at its latest sample.",
        labels=_ACCOUNT,
    )
    last_status = GaugeMetricFamily(
        "fedimeter_account_last_status_timestamp_seconds",
        "00:00 UTC of the day of the account's last post, at its latest sample"
        " (servers tell the day only); absent when it never posted.",
        labels=_ACCOUNT,
    )
    taken = GaugeMetricFamily(
        "fedimeter_account_sample_timestamp_seconds",
        "When the account's latest sample was taken.",
        labels=_ACCOUNT,
    )
    state = GaugeMetricFamily(
        "fedimeter_account_state",
        "1 for the account's current state: active, suspended, moved or gone (suspended, moved"
        " and gone accounts are no longer measured and keep their last sample).",
        labels=(*_ACCOUNT, "state"),
    )
    for account, sample in accounts:
        if sample is None or account.state is AccountState.UNTRACKED:
            continue
        labels = (account.handle.acct, account.instance_host)
        followers.add_metric(labels, sample.followers)
        following.add_metric(labels, sample.following)
        statuses.add_metric(labels, sample.statuses)
        if sample.last_status_at is not None:
            last_status.add_metric(labels, _day_start(sample.last_status_at))
        taken.add_metric(labels, sample.taken_at.timestamp())
        state.add_metric((*labels, account.state.value), 1)
    yield from (followers, following, statuses, last_status, taken, state)


def _instance_families(rows: Sequence[InstanceRow]) -> Iterator[Metric]:
    up = GaugeMetricFamily(
        "fedimeter_instance_up",
        "1 when the server answered its latest measurement, 0 when it did not.",
        labels=_INSTANCE,
    )
    users = GaugeMetricFamily(
        "fedimeter_instance_users", "Users the server reports.", labels=_INSTANCE
    )
    statuses = GaugeMetricFamily(
        "fedimeter_instance_statuses", "Posts the server reports.", labels=_INSTANCE
    )
    peers = GaugeMetricFamily(
        "fedimeter_instance_known_peers",
        "Servers this one knows: its peer list, else the domain count it reports.",
        labels=_INSTANCE,
    )
    active = GaugeMetricFamily(
        "fedimeter_instance_active_users",
        "Users active in the last month or half year, as the server reports them.",
        labels=(*_INSTANCE, "period"),
    )
    week_statuses = GaugeMetricFamily(
        "fedimeter_instance_week_statuses",
        "Posts made on the server in the last complete week.",
        labels=_INSTANCE,
    )
    week_logins = GaugeMetricFamily(
        "fedimeter_instance_week_logins",
        "Users who logged in to the server in the last complete week.",
        labels=_INSTANCE,
    )
    week_registrations = GaugeMetricFamily(
        "fedimeter_instance_week_registrations",
        "New users of the server in the last complete week.",
        labels=_INSTANCE,
    )
    info = InfoMetricFamily(
        "fedimeter_instance", "The software and version the server reports.", labels=_INSTANCE
    )
    measured = GaugeMetricFamily(
        "fedimeter_instance_sample_timestamp_seconds",
        "When the server was last measured.",
        labels=_INSTANCE,
    )
    for row in rows:
        labels = (row.host,)
        up.add_metric(labels, 1 if row.up else 0)
        for family, value in (
            (users, row.users),
            (statuses, row.statuses),
            (peers, row.known_peers),
            (week_statuses, row.week_statuses),
            (week_logins, row.week_logins),
            (week_registrations, row.week_registrations),
        ):
            if value is not None:
                family.add_metric(labels, value)
        for period, value in (("month", row.active_month), ("halfyear", row.active_halfyear)):
            if value is not None:
                active.add_metric((*labels, period), value)
        if row.software is not None or row.version is not None:
            info.add_metric(labels, {"software": row.software or "", "version": row.version or ""})
        if row.measured_at is not None:
            measured.add_metric(labels, row.measured_at.timestamp())
    yield from (up, users, statuses, peers, active, week_statuses, week_logins)
    yield from (week_registrations, info, measured)


def _tracked_families(
    accounts: Sequence[tuple[AccountRecord, SampleRecord | None]],
) -> Iterator[Metric]:
    counts = Counter(account.state for account, _ in accounts)
    tracked = GaugeMetricFamily(
        "fedimeter_tracked_accounts",
        "Tracked accounts by state, measured or not (0 for a state no account is in).",
        labels=("state",),
    )
    for state in TRACKED_STATES:
        tracked.add_metric((state.value,), counts[state])
    yield tracked


def _tag_families(rows: Sequence[TagRow]) -> Iterator[Metric]:
    """Tracked hashtags: one series per tag and instance, never one per day or trending tag.

    The ``tag`` label is the tag's key, fixed when it was added: names a server sends (and
    trending lists, chosen by servers) would let anyone on the fediverse add series. Every
    tracked tag has a ``fedimeter_tag_consecutive_failures`` series, so counting those counts
    the tracked tags.
    """
    uses = GaugeMetricFamily(
        "fedimeter_tag_uses",
        "Posts that used the hashtag on its newest complete UTC day, as the instance counts them.",
        labels=_TAG,
    )
    accounts = GaugeMetricFamily(
        "fedimeter_tag_accounts",
        "Accounts that used the hashtag on its newest complete UTC day, as the instance counts"
        " them.",
        labels=_TAG,
    )
    day = GaugeMetricFamily(
        "fedimeter_tag_day_timestamp_seconds",
        "00:00 UTC of the hashtag's newest complete day, the day of fedimeter_tag_uses.",
        labels=_TAG,
    )
    so_far = GaugeMetricFamily(
        "fedimeter_tag_uses_so_far",
        "Posts that used the hashtag on the instance's day in progress, when it last answered"
        " (partial: it grows until the day is over).",
        labels=_TAG,
    )
    failures = GaugeMetricFamily(
        "fedimeter_tag_consecutive_failures",
        "Reads of the hashtag on the instance that failed in a row (0 when the last answered).",
        labels=_TAG,
    )
    read = GaugeMetricFamily(
        "fedimeter_tag_read_timestamp_seconds",
        "When the instance last answered about the hashtag.",
        labels=_TAG,
    )
    for row in rows:
        labels = (row.tag, row.instance)
        if row.day is not None and row.uses is not None and row.accounts is not None:
            uses.add_metric(labels, row.uses)
            accounts.add_metric(labels, row.accounts)
            day.add_metric(labels, _day_start(row.day))
        if row.uses_so_far is not None:
            so_far.add_metric(labels, row.uses_so_far)
        failures.add_metric(labels, row.consecutive_failures)
        if row.read_at is not None:
            read.add_metric(labels, row.read_at.timestamp())
    yield from (uses, accounts, day, so_far, failures, read)


def _round_families(last: RunRecord | None, ended: RunRecord | None) -> Iterator[Metric]:
    yield GaugeMetricFamily(
        "fedimeter_round_in_progress",
        "1 while the newest round is marked running, else 0.",
        value=1 if last is not None and last.status == RUNNING else 0,
    )
    if ended is None:
        return
    yield GaugeMetricFamily(
        "fedimeter_last_round_start_timestamp_seconds",
        f"When {_ROUND} started.",
        value=ended.started_at.timestamp(),
    )
    if ended.duration_seconds is not None:
        yield GaugeMetricFamily(
            "fedimeter_last_round_duration_seconds",
            f"How long {_ROUND} took (absent when its end was not recorded).",
            value=ended.duration_seconds,
        )
    accounts = GaugeMetricFamily(
        "fedimeter_last_round_accounts",
        f"Accounts {_ROUND} planned to measure, measured, and failed to measure.",
        labels=("result",),
    )
    accounts.add_metric(("planned",), ended.accounts_planned)
    accounts.add_metric(("measured",), ended.accounts_measured)
    accounts.add_metric(("failed",), ended.accounts_failed)
    yield accounts
    for name, help_text, value in (
        ("requests", f"HTTP requests {_ROUND} sent.", ended.requests),
        ("rate_limited", f"Rate-limited answers (429) {_ROUND} met.", ended.rate_limited),
        ("retries", f"Requests {_ROUND} retried.", ended.retries),
        (
            "rate_limit_wait_seconds",
            f"Time {_ROUND} spent waiting for rate limits to reset.",
            ended.rate_limit_wait_seconds,
        ),
        (
            "success",
            f"1 when {_ROUND} finished, 0 when it failed or was interrupted.",
            1 if ended.status == "finished" else 0,
        ),
    ):
        yield GaugeMetricFamily(f"fedimeter_last_round_{name}", help_text, value=value)
