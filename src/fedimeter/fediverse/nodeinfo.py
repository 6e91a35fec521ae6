"""Read what software a server runs, from NodeInfo (the one document every server speaks)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from fedimeter.domain.models import ServerInfo
from fedimeter.errors import AddressRefused, FediverseError
from fedimeter.fediverse.parse import parse_nodeinfo, pick_nodeinfo_link
from fedimeter.fediverse.software import batch_support

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from fedimeter.domain.models import InstanceAddress
    from fedimeter.fediverse.http import Fetcher

__all__ = ["read_server_info"]


async def read_server_info(
    fetcher: Fetcher, address: InstanceAddress, *, clock: Callable[[], datetime]
) -> ServerInfo:
    """Discover NodeInfo at ``/.well-known/nodeinfo``, read the highest 2.x document.

    The document's path comes from discovery, never a guess (Pleroma serves
    ``/nodeinfo/2.1.json``, Pixelfed ``/api/nodeinfo/2.0.json``).

    Returns:
        Software name and version, and whether the batch accounts call exists; all ``None``
        when NodeInfo is missing or broken.

    Raises:
        AddressRefused: the server (or where its NodeInfo points) is not a public address.
    """
    try:
        name, version = await _software(fetcher, address)
    except AddressRefused:
        raise
    except FediverseError:
        name = version = None
    return ServerInfo(
        software=name,
        version=version,
        supports_batch=batch_support(name, version),
        checked_at=clock(),
    )


async def _software(fetcher: Fetcher, address: InstanceAddress) -> tuple[str | None, str | None]:
    discovery = await fetcher.get_json(f"{address.base_url}/.well-known/nodeinfo")
    if not discovery.ok:
        return None, None
    href = pick_nodeinfo_link(discovery.data, host=discovery.host)
    if href is None:
        return None, None
    try:
        target = discovery.url.join(href)
    except httpx.InvalidURL:
        return None, None
    if target.scheme not in {"http", "https"}:
        return None, None
    document = await fetcher.get_json(target)
    if not document.ok:
        return None, None
    return parse_nodeinfo(document.data, host=document.host)
