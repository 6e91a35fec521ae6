"""Find an account's canonical handle, home server and id there (WebFinger, then lookup).

Only the home server has true counts, so a handle is resolved once: WebFinger on the handle's
domain (or on the web host of a profile URL) names the canonical ``user@domain`` and the
server that serves it; ``/api/v1/accounts/lookup`` on that server gives the account's id.
When WebFinger is missing or broken we fall back to the lookup on the host we were given.

A WebFinger subject on another domain than the one asked (a profile URL on
``social.example.com`` for ``@alice@example.com``) is only believed when that domain's own
WebFinger confirms it and names the same home, as Mastodon does: otherwise any server could
claim any handle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from fedimeter.domain.handles import parse_authority
from fedimeter.domain.models import AccountRef, Handle, InstanceAddress, ResolvedAccount
from fedimeter.errors import (
    AccountNotFound,
    AddressRefused,
    BadResponse,
    EndpointMissing,
    FediverseError,
    InvalidHandle,
)
from fedimeter.fediverse.parse import Lookup, WebFinger, parse_lookup, parse_webfinger

if TYPE_CHECKING:
    from fedimeter.fediverse.http import Fetcher

__all__ = ["AccountResolver"]


class AccountResolver:
    """Resolve ``AccountRef`` values through a ``Fetcher``."""

    def __init__(self, fetcher: Fetcher, *, default_scheme: str = "https") -> None:
        """Reach bare handles' domains with ``default_scheme``."""
        self._fetcher = fetcher
        self._scheme = default_scheme

    async def resolve(self, ref: AccountRef) -> ResolvedAccount:
        """The account's canonical handle, home server and id there.

        Raises:
            AccountNotFound: the home server has no such account.
            AddressRefused: a host involved is not a public address.
            AccessDenied, RateLimited, RemoteUnavailable, BadResponse, EndpointMissing:
                the lookup on the home server failed.
        """
        asked = ref.web if ref.web is not None else self._address(ref.handle.domain)
        username, domain, home = ref.handle.username, ref.handle.domain, asked
        finger = await self._webfinger(asked, f"{username}@{asked.authority}")
        if finger is not None:
            home = finger.home or asked
            subject = finger.subject
            if subject is not None and (
                subject.domain == asked.authority or await self._confirms(subject, home)
            ):
                username, domain = subject.username, subject.domain
        found = await self._lookup(home, username)
        return ResolvedAccount(
            handle=Handle(username=found.username, domain=domain),
            home=home,
            remote_id=found.remote_id,
            display_name=found.display_name,
            url=found.url,
        )

    async def _confirms(self, subject: Handle, home: InstanceAddress) -> bool:
        """Whether ``subject``'s own domain agrees that ``home`` serves it."""
        try:
            domain = self._address(subject.domain)
        except InvalidHandle:
            return False
        finger = await self._webfinger(domain, subject.acct)
        return (
            finger is not None
            and finger.subject is not None
            and finger.subject.key == subject.key
            and finger.home is not None
            and finger.home.authority == home.authority
        )

    async def _webfinger(self, address: InstanceAddress, acct: str) -> WebFinger | None:
        """The WebFinger answer, or ``None`` when the server has no usable one.

        Raises:
            AddressRefused: the host is not a public address (never silently skipped).
        """
        url = httpx.URL(
            f"{address.base_url}/.well-known/webfinger", params={"resource": f"acct:{acct}"}
        )
        try:
            reply = await self._fetcher.get_json(url)
            return parse_webfinger(reply.data, host=reply.host) if reply.ok else None
        except AddressRefused:
            raise
        except FediverseError:
            return None

    async def _lookup(self, home: InstanceAddress, username: str) -> Lookup:
        url = httpx.URL(f"{home.base_url}/api/v1/accounts/lookup", params={"acct": username})
        reply = await self._fetcher.get_json(url)
        if reply.ok:
            found = parse_lookup(reply.data, host=reply.host)
            if found.username.lower() != username.lower():
                raise BadResponse(
                    f"{reply.host} answered the lookup of {username!r} with "
                    f"account {found.username!r}"
                )
            return found
        if reply.status in {404, 410}:
            raise AccountNotFound(f"{reply.host} has no account {username!r} ({reply.describe()})")
        if reply.status == 405:  # noqa: PLR2004 - Method Not Allowed: no such route
            raise EndpointMissing(f"{reply.host} does not offer the account lookup endpoint")
        detail = f": {reply.error_text}" if reply.error_text else ""
        raise BadResponse(f"{reply.host} answered {reply.describe()} to the lookup{detail}")

    def _address(self, domain: str) -> InstanceAddress:
        return parse_authority(domain, scheme=self._scheme)
