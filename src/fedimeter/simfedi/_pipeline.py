"""The request pipeline of one socket: route, rate limit, faults, latency, log.

The order follows a real deployment: the front proxy refuses a body over its size limit (413)
before anything else sees the request; a fault that drops the connection (``reset``,
``timeout``) happens before the application sees the request, so it neither counts nor carries
headers; Rack::Attack counts every ``/api/*`` request, then every paging request, and refuses
the first one over budget before the app runs (a request the API throttle refuses is not
counted by the paging throttle); then a fault replaces or mangles the app's answer, and the
rate-limit headers of the throttle closest to its limit go on whatever the API sends.
"""

from __future__ import annotations

import asyncio
import http
import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

from fedimeter.simfedi._faults import (
    FaultContext,
    error_message,
    fault_reply,
    nginx_error_page,
    pick_fault,
)
from fedimeter.simfedi._ratelimit import RateVerdict, shown_verdict
from fedimeter.simfedi._replies import HTML, Reply, error_reply
from fedimeter.simfedi._routes import Route, route

if TYPE_CHECKING:
    import random
    from collections.abc import Iterator
    from datetime import datetime

    from fedimeter.simfedi._instance import SimInstance
    from fedimeter.simfedi._ratelimit import RateLimit, RateWindow, Throttle
    from fedimeter.simfedi._records import Entry, RequestLog, Server
    from fedimeter.simfedi._request import Request

__all__ = ["Dispatcher", "Finish"]

#: Called by the HTTP layer once the answer is sent or the connection is gone.
Finish = Callable[[], None]

_TOO_MANY = http.HTTPStatus.TOO_MANY_REQUESTS
_NO_ANSWER = frozenset({"reset", "hang"})
# nginx's own page, with the status's classic name (newer RFCs call it "Content Too Large").
_TOO_LARGE = Reply(
    http.HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    nginx_error_page("413 Request Entity Too Large").encode(),
    (("Content-Type", HTML),),
)


class Dispatcher:
    """Answers the requests that reach one of an instance's sockets."""

    def __init__(
        self,
        instance: SimInstance,
        *,
        server: Server,
        clock: Callable[[], datetime],
        rng: random.Random,
        log: RequestLog,
    ) -> None:
        """Serve ``instance`` on its ``server`` socket, logging to ``log``."""
        self._instance = instance
        self._server: Server = server
        self._clock = clock
        self._rng = rng
        self._log = log

    async def answer(self, request: Request) -> tuple[Reply, Finish]:
        """Decide the answer to one request; the caller sends it and then calls ``Finish``."""
        started = time.monotonic()
        parts = urlsplit(request.target)
        path = unquote(parts.path) or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        instance = self._instance
        matched = route(
            instance,
            request,
            alias=self._server == "alias",
            path=path,
            query=query,
            now=self._clock(),
        )
        entry = self._log.start(
            instance=instance.name,
            server=self._server,
            method=request.method,
            path=path,
            query=query,
            endpoint=matched.endpoint,
            started=started,
        )
        if request.too_large:
            self._log.update(entry, status=_TOO_LARGE.status)
            return _TOO_LARGE, self._finisher(entry)
        now = time.time()
        fault = pick_fault(instance.faults, matched.endpoint, matched.account_ids, self._rng)
        if fault is not None and fault.silent:
            fault.record_hit(now)
            self._log.update(entry, fault=fault.kind)
            return fault_reply(fault, Reply(0)), self._finisher(entry)

        verdicts = self._throttle(matched, entry, now)
        refused = next((verdict for verdict in verdicts if not verdict.allowed), None)
        limit = instance.rate_limit
        # Rack::Attack's own 429 carries its headers on any path; the app's answers carry them
        # only under /api (RateLimitHeaders is an API controller concern).
        verdict = refused or (shown_verdict(verdicts) if matched.api else None)
        if refused is not None:
            reply = error_reply(_TOO_MANY, error_message(_TOO_MANY))
        elif fault is not None:
            fault.record_hit(now)
            self._log.update(entry, fault=fault.kind)
            # A fault that stands in for the application must not let it act (store a post).
            normal = matched.respond() if fault.needs_answer else Reply(0)
            context = FaultContext(target=request.target, now=now, rate_limit=limit)
            reply = fault_reply(fault, normal, context)
            if fault.kind == "rate_limited":
                verdict = None  # its 429 carries its own rate-limit headers
        else:
            reply = matched.respond()
        if verdict is not None:
            reply = reply.with_headers(verdict.headers())

        low, high = instance.latency
        if high > 0:
            await asyncio.sleep(self._rng.uniform(low, high))
        if reply.delivery not in _NO_ANSWER:
            # Logged before sending, so a client that reads the log right after its answer
            # arrived finds the status there.
            self._log.update(entry, status=reply.status)
        return reply, self._finisher(entry)

    def _throttles(self, matched: Route) -> Iterator[tuple[Throttle, RateLimit, RateWindow]]:
        instance = self._instance
        api_limit, paging_limit = instance.rate_limit, instance.paging_limit
        if matched.api and api_limit is not None:
            yield "api", api_limit, instance.rate_window
        if matched.paging and paging_limit is not None:
            yield "paging", paging_limit, instance.paging_window

    def _throttle(self, matched: Route, entry: Entry, now: float) -> list[RateVerdict]:
        """Count the request in each throttle that applies, in Mastodon's order.

        Like Rack::Attack, counting stops at the first throttle that refuses: a request the API
        throttle refuses is not counted by the paging throttle.
        """
        verdicts: list[RateVerdict] = []
        for throttle, limit, window in self._throttles(matched):
            verdict = window.hit(limit, now, throttle)
            verdicts.append(verdict)
            refused = not verdict.allowed
            self._log.update(
                entry,
                counted=True if throttle == "api" else None,
                paging=True if throttle == "paging" else None,
                over_limit=refused,
                throttle=throttle if refused else None,
            )
            if refused:
                break
        return verdicts

    def _finisher(self, entry: Entry) -> Finish:
        def finish() -> None:
            self._log.update(entry, finished=time.monotonic())

        return finish
