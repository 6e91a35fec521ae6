"""``fedimeter exporter``: fediverse instances measured for Prometheus as it scrapes; no database.

Every scrape of ``/metrics`` exports each configured instance under the names ``fedimeter
serve`` gives it (``InstanceCollector``; the week figures are the last complete week's), the
exporter's own ``fedimeter_exporter_*`` figures, and, when asked, the Mastodon exporter's old
names (``CompatCollector``).

An instance is measured at most once per ``cache_seconds``, however often it is scraped: a
scrape that finds its measurement older starts a new one, or joins the one already in flight
(one per instance), waits for it at most ``wait`` seconds and otherwise serves the previous
one while the new one finishes. Instances are measured concurrently, and each failure stays
with its instance: one that answers nothing is exported as down. What each answer said is
kept in memory as the ``previous`` figures of the next measurement's plausibility checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import html
import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from fedimeter import __version__
from fedimeter.clock import Clock, utc_now
from fedimeter.errors import FedimeterError
from fedimeter.fediverse import FediverseClient
from fedimeter.instance_tracking import describe_down
from fedimeter.metrics import (
    CONTENT_TYPE,
    CompatCollector,
    InstanceCollector,
    InstanceRow,
    measured_row,
    render,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator, Sequence

    from pydantic import SecretStr
    from starlette.requests import Request

    from fedimeter.config import Settings
    from fedimeter.domain.instances import InstanceFigures
    from fedimeter.domain.models import InstanceAddress

__all__ = ["DEFAULT_CACHE_SECONDS", "DEFAULT_PORT", "Exporter", "create_app"]

logger = logging.getLogger(__name__)

#: The port the Mastodon exporter fedimeter replaces listens on.
DEFAULT_PORT = 9410
#: How long a measurement is served before the next scrape measures again.
DEFAULT_CACHE_SECONDS = 60.0
#: Seconds kept back from the scrape timeout Prometheus announces, to render and answer.
SCRAPE_MARGIN = 0.5
#: The header in which Prometheus says how long it waits for a scrape.
SCRAPE_TIMEOUT_HEADER = "X-Prometheus-Scrape-Timeout-Seconds"


@dataclass(slots=True)
class _Instance:
    """One configured instance: its newest measurement and the one in flight, if any."""

    address: InstanceAddress
    row: InstanceRow | None = None
    #: What the newest answer said, for the next measurement's plausibility checks.
    previous: InstanceFigures | None = None
    #: When (monotonic) the measurement in ``row`` ended, and how long it took.
    ended: float | None = None
    duration: float | None = None
    flight: asyncio.Task[None] | None = None

    @property
    def host(self) -> str:
        """The ``instance`` label: ``host`` or ``host:port``."""
        return self.address.authority


class Exporter:
    """Measures the configured instances when a scrape needs it and renders their metrics.

    Args:
        settings: the client's settings (user agent, timeouts, private addresses); also the
            default ``wait``, ``request_deadline``.
        addresses: the instances to export, each once.
        cache_seconds: how long a measurement is served before the instance is measured again.
        compat_names: also export the Mastodon exporter's six names.
        wait: the longest a scrape waits for due measurements before serving cached ones.
        client: the client to measure with (default: one of its own, closed by ``aclose``).
        monotonic: the clock of cache ages and durations (tests pass a fake one).
        clock: the time stamped on a measurement that failed outright.
        version: the fedimeter version ``fedimeter_build_info`` names.
    """

    def __init__(
        self,
        settings: Settings,
        addresses: Sequence[InstanceAddress],
        *,
        cache_seconds: float = DEFAULT_CACHE_SECONDS,
        compat_names: bool = False,
        wait: float | None = None,
        client: FediverseClient | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        clock: Clock = utc_now,
        version: str = __version__,
    ) -> None:
        """Set the exporter up; nothing is measured until the first scrape."""
        self.cache_seconds = cache_seconds
        self.compat_names = compat_names
        self.wait = settings.request_deadline if wait is None else wait
        self._owns_client = client is None
        self._client = client if client is not None else FediverseClient(settings)
        self._instances = [_Instance(address) for address in addresses]
        self._monotonic = monotonic
        self._clock = clock
        self._version = version

    @property
    def hosts(self) -> list[str]:
        """The ``instance`` label of every configured instance, in order."""
        return [instance.host for instance in self._instances]

    async def scrape(self, *, wait: float | None = None) -> bytes:
        """Every instance's metrics in Prometheus's text format, measuring the due ones first.

        Args:
            wait: the longest wait for due measurements, in seconds (default ``self.wait``).

        Returns:
            The text (``CONTENT_TYPE``), UTF-8. An instance never measured yet (its first
            measurement is still running) is left out; one that did not answer is down.
        """
        await self.refresh(self.wait if wait is None else wait)
        return render(*self.collectors())

    async def refresh(self, wait: float) -> None:
        """Measure every instance whose measurement is older than ``cache_seconds``.

        A measurement already in flight is joined, never doubled. Waits at most ``wait``
        seconds; measurements still running then go on, for the scrapes that follow.
        """
        now = self._monotonic()
        flights: list[asyncio.Task[None]] = []
        for instance in self._instances:
            if instance.flight is None and self._due(instance, now):
                instance.flight = asyncio.create_task(
                    self._measure(instance), name=f"measure {instance.host}"
                )
            if instance.flight is not None:
                flights.append(instance.flight)
        if flights and wait > 0:
            # asyncio.wait never cancels: a scrape that gives up leaves the measurement running.
            await asyncio.wait(flights, timeout=wait)

    def collectors(self) -> list[Collector]:
        """Collectors over the newest measurements, as they are now."""
        rows = [instance.row for instance in self._instances if instance.row is not None]
        collectors: list[Collector] = [
            InstanceCollector(rows, version=self._version),
            _ExporterCollector(self._instances, self._monotonic()),
        ]
        if self.compat_names:
            collectors.append(CompatCollector(rows))
        return collectors

    async def aclose(self) -> None:
        """Stop the measurements in flight, and close the client if the exporter made it."""
        flights = [i.flight for i in self._instances if i.flight is not None]
        for flight in flights:
            flight.cancel()
        await asyncio.gather(*flights, return_exceptions=True)
        if self._owns_client:
            await self._client.aclose()

    def _due(self, instance: _Instance, now: float) -> bool:
        return instance.ended is None or now - instance.ended >= self.cache_seconds

    async def _measure(self, instance: _Instance) -> None:
        """Measure ``instance`` and keep the result; every failure ends as a down row."""
        started = self._monotonic()
        try:
            measurement = await self._client.measure_instance(
                instance.address, previous=instance.previous
            )
        except FedimeterError as exc:  # AddressRefused: the address is not public
            row = InstanceRow(instance.host, up=False, measured_at=self._clock())
            reason = str(exc)
        except Exception:  # an exporter keeps serving the other instances whatever happens
            logger.exception("measuring %s failed", instance.host)
            row = InstanceRow(instance.host, up=False, measured_at=self._clock())
            reason = "measuring it failed (see the error above)"
        else:
            row = measured_row(instance.host, measurement)
            reason = describe_down(instance.host, measurement)
            if measurement.up:
                instance.previous = measurement.figures
        finally:
            instance.flight = None
        _log_change(instance.row, row, reason)
        instance.row = row
        instance.ended = self._monotonic()
        instance.duration = instance.ended - started


def _log_change(before: InstanceRow | None, after: InstanceRow, reason: str) -> None:
    """Say when an instance goes down or comes back, once, not at every measurement."""
    if not after.up and (before is None or before.up):
        logger.warning("%s is down: %s", after.host, reason)
    elif after.up and before is not None and not before.up:
        logger.info("%s answers again", after.host)


class _ExporterCollector(Collector):
    """How long each served measurement took, and how old it is."""

    def __init__(self, instances: Sequence[_Instance], now: float) -> None:
        self._instances = instances
        self._now = now

    def collect(self) -> Iterator[Metric]:
        """The two ``fedimeter_exporter_*`` families, one series per measured instance."""
        duration = GaugeMetricFamily(
            "fedimeter_exporter_measure_duration_seconds",
            "How long the served measurement of the instance took.",
            labels=("instance",),
        )
        age = GaugeMetricFamily(
            "fedimeter_exporter_cache_age_seconds",
            "Seconds since the served measurement of the instance ended.",
            labels=("instance",),
        )
        for instance in self._instances:
            if instance.ended is None or instance.duration is None:
                continue
            duration.add_metric((instance.host,), instance.duration)
            age.add_metric((instance.host,), max(0.0, self._now - instance.ended))
        yield from (duration, age)


def create_app(exporter: Exporter, settings: Settings) -> Starlette:
    """The exporter as an ASGI app: ``/metrics``, ``/healthz`` and ``/`` linking to them.

    ``/metrics`` needs the read token (or the API token) when ``settings.read_token`` is
    set, as ``fedimeter serve`` does; the app closes ``exporter`` when it shuts down.
    """
    tokens = [t for t in (settings.read_token, settings.api_token) if t is not None]

    async def metrics(request: Request) -> Response:
        if settings.read_token is not None and not _authorised(request, tokens):
            return JSONResponse(
                {"detail": "reading needs 'Authorization: Bearer <read token>'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = await exporter.scrape(wait=_scrape_wait(request, exporter.wait))
        return Response(body, media_type=CONTENT_TYPE)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def index(_request: Request) -> Response:
        return HTMLResponse(_index_page(exporter.hosts))

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await exporter.aclose()

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )


def _authorised(request: Request, tokens: Sequence[SecretStr]) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return False
    # Constant time, as the API compares: a comparison must not tell how much of a guess was
    # right. Every token is compared, so timing does not tell which one matched either.
    matches = [
        hmac.compare_digest(given.strip().encode(), t.get_secret_value().encode()) for t in tokens
    ]
    return any(matches)


def _scrape_wait(request: Request, longest: float) -> float:
    """``longest``, shortened to end before the scrape timeout Prometheus announces, if any."""
    try:
        announced = float(request.headers.get(SCRAPE_TIMEOUT_HEADER, "inf"))
    except ValueError:
        return longest
    if math.isnan(announced):
        return longest
    return max(0.0, min(longest, announced - SCRAPE_MARGIN))


def _index_page(hosts: Sequence[str]) -> str:
    items = "".join(f"<li>{html.escape(host)}</li>" for host in hosts)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fedimeter exporter</title>"
        "</head><body><h1>fedimeter exporter</h1>"
        f"<p>fedimeter {html.escape(__version__)}: Prometheus metrics at"
        " <a href='metrics'>/metrics</a>, health at <a href='healthz'>/healthz</a>.</p>"
        f"<p>Instances:</p><ul>{items}</ul></body></html>"
    )
