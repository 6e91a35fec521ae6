"""Ask a server about hashtags: one tag's daily history, and what trends there."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from fedimeter.errors import BadResponse, EndpointMissing
from fedimeter.fediverse.parse import parse_tag, parse_trending_tags

if TYPE_CHECKING:
    from fedimeter.domain.models import InstanceAddress
    from fedimeter.domain.tags import TagName, TagReading, TrendingTag
    from fedimeter.fediverse.http import Fetcher, Reply

__all__ = ["TRENDS_LIMIT", "fetch_tag", "fetch_trending_tags"]

#: Trending tags asked for: Mastodon's most.
TRENDS_LIMIT = 20
_GONE = frozenset({404, 410})


async def fetch_tag(fetcher: Fetcher, address: InstanceAddress, tag: TagName) -> TagReading:
    """``GET /api/v1/tags/:name``: the tag's last days on this server (Mastodon 4.0+).

    A tag the server never saw answers zeros, like any other.

    Raises:
        EndpointMissing: 404 or 410: the server has no hashtag API (older than Mastodon 4.0,
            or other software).
        BadResponse: any other answer that is not 2xx, or a body ``parse_tag`` refuses.
        AddressRefused, AccessDenied, RateLimited, RemoteUnavailable, Halted: as
            ``Fetcher.get_json``.
    """
    path = f"/api/v1/tags/{quote(tag.name, safe='')}"
    reply = await fetcher.get_json(f"{address.base_url}{path}")
    _check(reply, path, "no hashtag API there (Mastodon has one since 4.0)")
    return parse_tag(reply.data, host=reply.host)


async def fetch_trending_tags(
    fetcher: Fetcher, address: InstanceAddress, limit: int = TRENDS_LIMIT
) -> tuple[TrendingTag, ...]:
    """``GET /api/v1/trends/tags``: the server's trending tags in order; none when trends are off.

    Raises:
        EndpointMissing: 404 or 410: no trends API (older than Mastodon 3.5, or other software).
        BadResponse, AddressRefused, AccessDenied, RateLimited, RemoteUnavailable, Halted: as
            ``fetch_tag``.
    """
    path = "/api/v1/trends/tags"
    reply = await fetcher.get_json(f"{address.base_url}{path}?limit={limit}")
    _check(reply, path, "no trends API there (Mastodon has one since 3.5)")
    return parse_trending_tags(reply.data, host=reply.host)


def _check(reply: Reply, path: str, missing: str) -> None:
    if reply.ok:
        return
    asked = f"{reply.host} answered {reply.describe()} for {path}"
    if reply.status in _GONE:
        raise EndpointMissing(f"{asked}: {missing}")
    error = f" ({reply.error_text})" if reply.error_text else ""
    raise BadResponse(f"{asked}{error}")
