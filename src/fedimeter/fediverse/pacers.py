"""Every pacer of a client: one for each host's API budget, one for its paging budget.

A host's paging pacer reads its API pacer's window (``paging.py`` tells by it whose budget a
paging answer shows), so the two are made, and kept, together here.
"""

from __future__ import annotations

from fedimeter.fediverse.paging import PagingPacer
from fedimeter.fediverse.ratelimit import HostPacer, Pacing

__all__ = ["Pacers"]


class Pacers:
    """One ``HostPacer`` and one ``PagingPacer`` per host authority, made on first use."""

    def __init__(self, pacing: Pacing) -> None:
        """Every pacer waits as ``pacing`` says."""
        self.pacing = pacing
        self._api: dict[str, HostPacer] = {}
        self._paging: dict[str, PagingPacer] = {}

    def api(self, authority: str) -> HostPacer:
        """The pacer of every request to ``authority`` (``host`` or ``host:port``)."""
        pacer = self._api.get(authority)
        if pacer is None:
            pacer = self._api[authority] = HostPacer(authority, self.pacing)
        return pacer

    def paging(self, authority: str) -> PagingPacer:
        """The pacer of the requests to ``authority`` that page, beside its API pacer."""
        pacer = self._paging.get(authority)
        if pacer is None:
            pacer = PagingPacer(authority, self.api(authority), self.pacing)
            self._paging[authority] = pacer
        return pacer
