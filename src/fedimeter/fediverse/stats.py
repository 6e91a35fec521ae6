"""Counters of what the client sent and received, for run records and metrics."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["RequestStats"]


@dataclass(slots=True)
class RequestStats:
    """What one ``FediverseClient`` did on the network since it was made.

    Every attempt counts as a request, retries and redirect hops included.
    """

    requests: int = 0
    requests_by_host: Counter[str] = field(default_factory=Counter)
    #: Answers by status class: ``"2xx"``, ``"3xx"``, ``"4xx"``, ``"5xx"``.
    responses_by_class: Counter[str] = field(default_factory=Counter)
    #: Requests that got no answer at all (timeouts, refused or reset connections).
    failures: int = 0
    rate_limited: int = 0
    retries: int = 0
    rate_limit_waits: int = 0
    rate_limit_wait_seconds: float = 0.0
    bytes_received: int = 0

    def sent(self, authority: str) -> None:
        """Count one request to ``authority``."""
        self.requests += 1
        self.requests_by_host[authority] += 1

    def answered(self, status: int) -> None:
        """Count one answer with HTTP ``status``."""
        self.responses_by_class[f"{status // 100}xx"] += 1
        if status == 429:  # noqa: PLR2004 - Too Many Requests
            self.rate_limited += 1

    def waited(self, seconds: float) -> None:
        """Count one wait for a host's rate limit."""
        self.rate_limit_waits += 1
        self.rate_limit_wait_seconds += seconds
