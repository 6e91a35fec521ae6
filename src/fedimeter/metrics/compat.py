"""The six names of the well-known Mastodon exporter, mirroring fedimeter's instance metrics.

``fedimeter exporter --compat-names`` adds them so that dashboards built on that exporter keep
working. They differ from it in two ways: each series has an ``instance`` label (the
server's host, so one exporter can serve several servers), and the weekly figures are those
of the last **complete** week, never the week in progress. ``rmastodon_domain_count`` is
spelt as that exporter spells it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from fedimeter.metrics.snapshot import InstanceRow

__all__ = ["COMPAT_NAMES", "CompatCollector"]

#: Each old name, the fedimeter metric it mirrors, what it is, and how to read it off a row.
_MIRRORS: tuple[tuple[str, str, str, Callable[[InstanceRow], int | None]], ...] = (
    (
        "mastodon_user_count",
        "fedimeter_instance_users",
        "users the server reports",
        lambda row: row.users,
    ),
    (
        "mastodon_status_count",
        "fedimeter_instance_statuses",
        "posts the server reports",
        lambda row: row.statuses,
    ),
    (
        "rmastodon_domain_count",
        "fedimeter_instance_known_peers",
        "servers it knows",
        lambda row: row.known_peers,
    ),
    (
        "mastodon_weekly_login",
        "fedimeter_instance_week_logins",
        "users who logged in during the last complete week",
        lambda row: row.week_logins,
    ),
    (
        "mastodon_weekly_statuses",
        "fedimeter_instance_week_statuses",
        "posts in the last complete week",
        lambda row: row.week_statuses,
    ),
    (
        "mastodon_weekly_registrations",
        "fedimeter_instance_week_registrations",
        "new users in the last complete week",
        lambda row: row.week_registrations,
    ),
)

#: The old names, in the order they are exported.
COMPAT_NAMES: tuple[str, ...] = tuple(mirror[0] for mirror in _MIRRORS)


class CompatCollector(Collector):
    """The old exporter's names for ``rows``; a figure a row lacks is left out, as fedimeter's.

    Args:
        rows: the instances to export (rows of instances that are down have no figures).
    """

    def __init__(self, rows: Sequence[InstanceRow]) -> None:
        """Export ``rows``."""
        self._rows = rows

    def collect(self) -> Iterator[Metric]:
        """One family per old name, labelled ``instance`` (exported even when empty)."""
        for name, mirrored, meaning, read in _MIRRORS:
            family = GaugeMetricFamily(
                name,
                f"The value of {mirrored} ({meaning}), under the Mastodon exporter's name.",
                labels=("instance",),
            )
            for row in self._rows:
                value = read(row)
                if value is not None:
                    family.add_metric((row.host,), value)
            yield family
