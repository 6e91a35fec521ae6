"""Talking to fediverse servers: resolve handles, read server info, measure accounts.

Everything a caller needs is ``FediverseClient``; the modules behind it each do one job:
``netguard`` (which addresses are public), ``transport`` (connect only to checked addresses),
``ratelimit`` (pace each host by its headers), ``body`` (size cap, JSON), ``http`` (retries,
redirects), ``parse`` (JSON to domain values), ``software`` (versions), ``resolve``
(WebFinger and lookup), ``nodeinfo`` (server info), ``measure`` (batch or single calls),
``instance`` (an instance from every source it offers).
"""

from fedimeter.fediverse.client import FediverseClient
from fedimeter.fediverse.instance import measure_instance
from fedimeter.fediverse.measure import Measurement
from fedimeter.fediverse.stats import RequestStats
from fedimeter.fediverse.transport import GuardedTransport

__all__ = [
    "FediverseClient",
    "GuardedTransport",
    "Measurement",
    "RequestStats",
    "measure_instance",
]
