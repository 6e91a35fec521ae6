"""Measure one instance from every source it offers, each source failing on its own.

NodeInfo comes first (through ``/.well-known/nodeinfo`` discovery): it is the one source every
server speaks, it is outside the API rate limit, and the software it names tells which
``/api/*`` calls would be sure 404s (Misskey has no Mastodon API; Mastodon before 4.0 has no
``/api/v2/instance``). Those are recorded as missing without a request; the others
(``/api/v1/instance``, ``/api/v2/instance``, ``/api/v1/instance/peers``,
``/api/v1/instance/activity``) are then asked at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import httpx

from fedimeter.domain.instances import (
    SOURCE_NAMES,
    FigureName,
    InstanceFigures,
    InstanceMeasurement,
    SourceName,
    SourceResult,
    WeekActivity,
    judge,
)
from fedimeter.errors import (
    AccessDenied,
    AddressRefused,
    BadResponse,
    EndpointMissing,
    FediverseError,
    Halted,
)
from fedimeter.fediverse.parse import (
    InstanceFacts,
    NodeInfoFacts,
    parse_activity,
    parse_instance_v1,
    parse_instance_v2,
    parse_nodeinfo_facts,
    parse_peers,
    pick_nodeinfo_link,
)
from fedimeter.fediverse.software import parse_version

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    from fedimeter.domain.models import InstanceAddress
    from fedimeter.fediverse.http import Fetcher, Reply

__all__ = ["API_PATHS", "fetch_nodeinfo", "measure_instance"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: Where each ``/api/*`` source is asked.
API_PATHS: dict[SourceName, str] = {
    "instance_v1": "/api/v1/instance",
    "instance_v2": "/api/v2/instance",
    "peers": "/api/v1/instance/peers",
    "activity": "/api/v1/instance/activity",
}
#: Software without the Mastodon API: every ``/api/*`` call would be a 404 (Misskey upstream;
#: its forks that added the API call themselves something else).
_NO_MASTODON_API = frozenset({"misskey"})
#: The Mastodon release that added ``/api/v2/instance``.
_INSTANCE_V2_SINCE = (4, 0)
_GONE = frozenset({404, 410})


@dataclass(frozen=True, slots=True)
class _Outcome(Generic[T_co]):
    """How one source answered, and what it said when it answered."""

    result: SourceResult
    value: T_co | None = None


async def measure_instance(
    fetcher: Fetcher,
    address: InstanceAddress,
    *,
    clock: Callable[[], datetime],
    previous: InstanceFigures | None = None,
) -> InstanceMeasurement:
    """Ask each source of ``address`` once and merge what they say.

    A source that fails (missing, denied, failed) becomes a ``SourceResult`` and leaves its
    figures unknown; figures ``plausible`` rejects against ``previous`` are unknown too and
    mark their source implausible (a rejected figure falls back to the next source that
    gives it). ``taken_at`` is ``clock()`` once every answer is in.

    Returns:
        The measurement, with one result per source in ``SOURCE_NAMES`` order.

    Raises:
        AddressRefused: the server (or where its NodeInfo points) is not a public address.
        Halted: the client was halted (a round is stopping): this is no measurement.
    """
    nodeinfo = await _ask("nodeinfo", lambda: fetch_nodeinfo(fetcher, address), _nodeinfo)
    facts = nodeinfo.value
    skipped = _not_offered(facts)
    asked = [source for source in API_PATHS if source not in skipped]
    answers = await asyncio.gather(
        *(_ask_api(fetcher, address, source) for source in asked), return_exceptions=True
    )
    outcomes: dict[SourceName, _Outcome[object]] = {"nodeinfo": nodeinfo}
    for source, answer in zip(asked, answers, strict=True):
        # Only AddressRefused and Halted escape _ask (anything else is a bug): raised once
        # every request has ended, so none is left running.
        if isinstance(answer, BaseException):
            raise answer
        outcomes[source] = answer
    for source, detail in skipped.items():
        outcomes[source] = _Outcome(SourceResult(source, "missing", detail))
    return _merge(outcomes, previous, taken_at=clock())


async def fetch_nodeinfo(fetcher: Fetcher, address: InstanceAddress) -> Reply:
    """The answer for the highest NodeInfo 2.x document ``/.well-known/nodeinfo`` lists.

    The path comes from discovery, never a guess (Pleroma serves ``/nodeinfo/2.1.json``,
    Pixelfed ``/api/nodeinfo/2.0.json``).

    Returns:
        The document's answer, or discovery's own answer when that was not 2xx.

    Raises:
        EndpointMissing: discovery lists no NodeInfo 2.x document.
        BadResponse: discovery is not a JRD, or its link is not an http(s) URL.
        AddressRefused, AccessDenied, RateLimited, RemoteUnavailable, Halted: as
            ``Fetcher.get_json``.
    """
    discovery = await fetcher.get_json(f"{address.base_url}/.well-known/nodeinfo")
    if not discovery.ok:
        return discovery
    href = pick_nodeinfo_link(discovery.data, host=discovery.host)
    if href is None:
        raise EndpointMissing(
            f"{discovery.host} lists no NodeInfo 2.x document at /.well-known/nodeinfo"
        )
    try:
        target = discovery.url.join(href)
    except httpx.InvalidURL:
        target = None
    if target is None or target.scheme not in {"http", "https"} or not target.host:
        raise BadResponse(f"{discovery.host} points NodeInfo at {href!r}, not an http(s) URL")
    return await fetcher.get_json(target)


def _nodeinfo(data: object, host: str) -> NodeInfoFacts:
    return parse_nodeinfo_facts(data, host=host)


_API_PARSERS: dict[SourceName, Callable[[object, str], object]] = {
    "instance_v1": lambda data, host: parse_instance_v1(data, host=host),
    "instance_v2": lambda data, host: parse_instance_v2(data, host=host),
    "peers": lambda data, host: parse_peers(data, host=host),
    "activity": lambda data, host: parse_activity(data, host=host),
}


def _ask_api(
    fetcher: Fetcher, address: InstanceAddress, source: SourceName
) -> Awaitable[_Outcome[object]]:
    url = f"{address.base_url}{API_PATHS[source]}"
    return _ask(source, lambda: fetcher.get_json(url), _API_PARSERS[source])


async def _ask(
    source: SourceName,
    fetch: Callable[[], Awaitable[Reply]],
    parse: Callable[[object, str], T],
) -> _Outcome[T]:
    """Fetch and parse one source; every failure but the two that stop a measurement is kept.

    Raises:
        AddressRefused: the SSRF guard refused an address.
        Halted: the client was halted.
    """
    try:
        reply = await fetch()
        if not reply.ok:
            return _Outcome(_unanswered(source, reply))
        value = parse(reply.data, reply.host)
    except (AddressRefused, Halted):
        raise
    except AccessDenied as exc:
        return _Outcome(SourceResult(source, "denied", str(exc)))
    except EndpointMissing as exc:
        return _Outcome(SourceResult(source, "missing", str(exc)))
    except FediverseError as exc:
        return _Outcome(SourceResult(source, "failed", str(exc)))
    return _Outcome(SourceResult(source, "ok"), value)


def _unanswered(source: SourceName, reply: Reply) -> SourceResult:
    """The result for a non-2xx, non-401/403 answer."""
    asked = f"{reply.host} answered {reply.describe()} for {reply.url.path}"
    if reply.status in _GONE:
        return SourceResult(
            source, "missing", f"{asked}: turned off, or not offered by this software"
        )
    error = f" ({reply.error_text})" if reply.error_text else ""
    return SourceResult(source, "failed", f"{asked}{error}")


def _not_offered(facts: NodeInfoFacts | None) -> dict[SourceName, str]:
    """The ``/api/*`` sources the software NodeInfo names cannot have, with the reason."""
    if facts is None or facts.software is None:
        return {}
    if facts.software in _NO_MASTODON_API:
        return dict.fromkeys(API_PATHS, f"not offered by {facts.software}")
    parsed = parse_version(facts.version) if facts.version is not None else None
    if facts.software == "mastodon" and parsed is not None and parsed[:2] < _INSTANCE_V2_SINCE:
        since = ".".join(map(str, _INSTANCE_V2_SINCE))
        return {"instance_v2": f"not offered by mastodon {facts.version} (added in {since})"}
    return {}


def _merge(
    outcomes: dict[SourceName, _Outcome[object]],
    previous: InstanceFigures | None,
    *,
    taken_at: datetime,
) -> InstanceMeasurement:
    """One measurement from every source's outcome."""
    # A source that did not answer says nothing: all None.
    nodeinfo = _value(outcomes, "nodeinfo", NodeInfoFacts) or NodeInfoFacts()
    v1 = _value(outcomes, "instance_v1", InstanceFacts) or InstanceFacts()
    v2 = _value(outcomes, "instance_v2", InstanceFacts) or InstanceFacts()
    activity = outcomes["activity"].value
    weeks: tuple[WeekActivity, ...] = activity if isinstance(activity, tuple) else ()
    # Best source first for each figure: NodeInfo counts users as the admin pages do, v1's
    # status_count is the server's own tally, v2's active_month is Mastodon's login count.
    candidates: dict[FigureName, list[tuple[SourceName, int | None]]] = {
        "users": [("nodeinfo", nodeinfo.users), ("instance_v1", v1.users)],
        "statuses": [("instance_v1", v1.statuses), ("nodeinfo", nodeinfo.local_posts)],
        "domains": [("instance_v1", v1.domains)],
        "peers": [("peers", _value(outcomes, "peers", int))],
        "active_month": [("instance_v2", v2.active_month), ("nodeinfo", nodeinfo.active_month)],
        "active_halfyear": [("nodeinfo", nodeinfo.active_halfyear)],
    }
    figures, doubts = _believe(candidates, previous)
    sources = []
    for source in SOURCE_NAMES:
        result = outcomes[source].result
        if source in doubts:
            result = SourceResult(source, "implausible", "; ".join(doubts[source]))
        sources.append(result)
    software, version = nodeinfo.software, nodeinfo.version
    if software is None:
        # Without NodeInfo a "2.7.2 (compatible; Pleroma 2.6.0)" version still names it.
        named = next((facts for facts in (v2, v1) if facts.software), None)
        software = named.software if named else None
        version = named.version if named else v2.version or v1.version
    registrations = (nodeinfo.open_registrations, v2.open_registrations, v1.open_registrations)
    return InstanceMeasurement(
        taken_at=taken_at,
        software=software,
        version=version,
        open_registrations=next((r for r in registrations if r is not None), None),
        figures=figures,
        weeks=weeks,
        sources=tuple(sources),
    )


def _value(
    outcomes: dict[SourceName, _Outcome[object]], source: SourceName, kind: type[T]
) -> T | None:
    value = outcomes[source].value
    return value if isinstance(value, kind) else None


def _believe(
    candidates: dict[FigureName, list[tuple[SourceName, int | None]]],
    previous: InstanceFigures | None,
) -> tuple[InstanceFigures, dict[SourceName, list[str]]]:
    """The believable figures, taking each from its best source whose value is believed.

    Returns:
        The figures, and the sentences explaining each doubted source's rejected values.
    """
    offered = {
        name: [(source, value) for source, value in options if value is not None]
        for name, options in candidates.items()
    }
    chosen = dict.fromkeys(offered, 0)
    doubts: dict[SourceName, list[str]] = {}
    while True:
        figures = InstanceFigures(
            **{
                name: options[chosen[name]][1]
                for name, options in offered.items()
                if chosen[name] < len(options)
            }
        )
        rejected = judge(figures, previous)
        if not rejected:
            return figures, doubts
        # Each pass moves at least one figure to its next source, so this ends.
        for name, reason in rejected.items():
            doubts.setdefault(offered[name][chosen[name]][0], []).append(reason)
            chosen[name] += 1
