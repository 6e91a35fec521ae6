"""The request log: every request the simulated servers received, and how it was answered.

Tests assert on it how many calls a collection round cost, per instance and endpoint, how many
of them paged, and that no request reached a host after a rate-limit window was spent. The
server thread writes it while the test thread reads it, so every access goes through one lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from fedimeter.simfedi._ratelimit import Throttle

__all__ = ["Entry", "RequestLog", "RequestRecord", "Server"]

#: Which socket of an instance took the request: its web host or its account-domain alias.
Server = Literal["web", "alias"]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the simulator saw it.

    ``status`` is None while the request is unanswered and stays None for ``timeout`` and
    ``reset`` faults. ``counted``: the request counted toward the API rate limit. ``paging``:
    it counted toward the paging throttle (it carried ``page``, ``min_id``, ``max_id`` or
    ``since_id``). ``over_limit``: it arrived after a window's budget was spent and got 429;
    ``throttle`` names the throttle that refused it (``api`` or ``paging``), None otherwise.
    ``started``/``finished`` are ``time.monotonic()`` values; ``finished`` is None until the
    answer is sent or the connection ends.
    """

    instance: str
    server: Server
    method: str
    path: str
    query: dict[str, list[str]]
    endpoint: str
    status: int | None
    counted: bool
    over_limit: bool
    fault: str | None
    started: float
    finished: float | None
    paging: bool = False
    throttle: Throttle | None = None


class Entry:
    """A request's record while it is being answered (mutable, behind the log's lock)."""

    __slots__ = (
        "counted",
        "endpoint",
        "fault",
        "finished",
        "instance",
        "method",
        "over_limit",
        "paging",
        "path",
        "query",
        "server",
        "started",
        "status",
        "throttle",
    )

    def __init__(
        self,
        *,
        instance: str,
        server: Server,
        method: str,
        path: str,
        query: dict[str, list[str]],
        endpoint: str,
        started: float,
    ) -> None:
        self.instance = instance
        self.server: Server = server
        self.method = method
        self.path = path
        self.query = query
        self.endpoint = endpoint
        self.started = started
        self.status: int | None = None
        self.counted = False
        self.over_limit = False
        self.paging = False
        self.throttle: Throttle | None = None
        self.fault: str | None = None
        self.finished: float | None = None

    def freeze(self) -> RequestRecord:
        return RequestRecord(
            instance=self.instance,
            server=self.server,
            method=self.method,
            path=self.path,
            query={name: list(values) for name, values in self.query.items()},
            endpoint=self.endpoint,
            status=self.status,
            counted=self.counted,
            over_limit=self.over_limit,
            fault=self.fault,
            started=self.started,
            finished=self.finished,
            paging=self.paging,
            throttle=self.throttle,
        )


class RequestLog:
    """Thread-safe list of request entries."""

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._entries: list[Entry] = []

    def start(
        self,
        *,
        instance: str,
        server: Server,
        method: str,
        path: str,
        query: dict[str, list[str]],
        endpoint: str,
        started: float,
    ) -> Entry:
        """Record a request as it arrives and return its entry for ``update``."""
        entry = Entry(
            instance=instance,
            server=server,
            method=method,
            path=path,
            query=query,
            endpoint=endpoint,
            started=started,
        )
        with self._lock:
            self._entries.append(entry)
        return entry

    def update(
        self,
        entry: Entry,
        *,
        counted: bool | None = None,
        over_limit: bool | None = None,
        paging: bool | None = None,
        throttle: Throttle | None = None,
        fault: str | None = None,
        status: int | None = None,
        finished: float | None = None,
    ) -> None:
        """Fill in what became known about ``entry``; None leaves a field as it is."""
        with self._lock:
            if counted is not None:
                entry.counted = counted
            if over_limit is not None:
                entry.over_limit = over_limit
            if paging is not None:
                entry.paging = paging
            if throttle is not None:
                entry.throttle = throttle
            if fault is not None:
                entry.fault = fault
            if status is not None:
                entry.status = status
            if finished is not None:
                entry.finished = finished

    def snapshot(self) -> list[RequestRecord]:
        """Return every record so far, oldest first, as immutable values."""
        with self._lock:
            return [entry.freeze() for entry in self._entries]

    def count(
        self,
        *,
        instance: str | None = None,
        endpoint: str | None = None,
        status: int | None = None,
        over_limit: bool | None = None,
        paging: bool | None = None,
        throttle: Throttle | None = None,
    ) -> int:
        """Count the requests that match every filter given."""
        with self._lock:
            return sum(
                1
                for entry in self._entries
                if (instance is None or entry.instance == instance)
                and (endpoint is None or entry.endpoint == endpoint)
                and (status is None or entry.status == status)
                and (over_limit is None or entry.over_limit == over_limit)
                and (paging is None or entry.paging == paging)
                and (throttle is None or entry.throttle == throttle)
            )

    def clear(self) -> None:
        """Forget every record (requests in flight keep updating their detached entries)."""
        with self._lock:
            self._entries.clear()
