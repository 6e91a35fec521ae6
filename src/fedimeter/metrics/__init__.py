"""Prometheus metrics: a snapshot read from storage per scrape, rendered by a custom collector.

``read_snapshot(repo)`` reads what to export; ``render_metrics(snapshot)`` turns it into
Prometheus's text format (``CONTENT_TYPE``) through a fresh registry holding one
``FedimeterCollector``. See docs/metrics.md for every metric.
"""

from fedimeter.metrics.collector import CONTENT_TYPE, FedimeterCollector, render_metrics
from fedimeter.metrics.reading import instance_rows, read_snapshot
from fedimeter.metrics.snapshot import InstanceRow, MetricsSnapshot, newest_closed_run

__all__ = [
    "CONTENT_TYPE",
    "FedimeterCollector",
    "InstanceRow",
    "MetricsSnapshot",
    "instance_rows",
    "newest_closed_run",
    "read_snapshot",
    "render_metrics",
]
