"""Prometheus metrics: a snapshot read from storage per scrape, rendered by a custom collector.

``read_snapshot(repo)`` reads what to export; ``render_metrics(snapshot)`` turns it into
Prometheus's text format (``CONTENT_TYPE``) through a fresh registry holding one
``FedimeterCollector``. ``fedimeter exporter`` has no storage: it renders ``measured_row``s
of its own measurements with ``InstanceCollector`` (and ``CompatCollector`` for the Mastodon
exporter's names). See docs/metrics.md for every metric.
"""

from fedimeter.metrics.collector import (
    CONTENT_TYPE,
    FedimeterCollector,
    InstanceCollector,
    render,
    render_metrics,
)
from fedimeter.metrics.compat import COMPAT_NAMES, CompatCollector
from fedimeter.metrics.reading import instance_rows, read_snapshot, tag_rows
from fedimeter.metrics.snapshot import (
    InstanceRow,
    MetricsSnapshot,
    TagRow,
    measured_row,
    newest_closed_run,
)

__all__ = [
    "COMPAT_NAMES",
    "CONTENT_TYPE",
    "CompatCollector",
    "FedimeterCollector",
    "InstanceCollector",
    "InstanceRow",
    "MetricsSnapshot",
    "TagRow",
    "instance_rows",
    "measured_row",
    "newest_closed_run",
    "read_snapshot",
    "render",
    "render_metrics",
    "tag_rows",
]
