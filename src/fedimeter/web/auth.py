"""Who may look at and change things from the dashboard: sessions, roles and CSRF tokens.

A session is a signed cookie, ``role.expires.nonce.signature`` (HMAC-SHA256), set HttpOnly,
Secure and SameSite=Strict. Its key is derived from the API and read tokens, so changing a
token signs everyone out; without tokens it is random per process. Roles:

* ``write``: signed in with the API token; may add and remove accounts and start rounds.
  Without an API token the server listens on loopback only, and, as the API does, lets
  anyone on this machine change things.
* ``read``: signed in with the read token; when a read token is set, every page needs it
  (or the API token).
* ``guest``: nobody signed in; the cookie still exists so that forms carry a CSRF token.

Every form carries ``csrf`` = HMAC(key, "csrf:" + the session cookie), checked on POST with
``hmac.compare_digest``, and a cross-site ``Origin``/``Sec-Fetch-Site`` is refused outright.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
from typing import TYPE_CHECKING, Literal

from fedimeter.fediverse.netguard import is_loopback_host

if TYPE_CHECKING:
    from fastapi import Request
    from starlette.responses import Response

    from fedimeter.config import Settings

__all__ = ["COOKIE", "SESSION_SECONDS", "Role", "WebAuth"]

COOKIE = "fedimeter_session"
#: How long a sign-in lasts.
SESSION_SECONDS = 12 * 3600

Role = Literal["write", "read", "guest"]
_ROLES: tuple[Role, ...] = ("write", "read", "guest")


class WebAuth:
    """Signs and checks the dashboard's sessions and CSRF tokens for one server."""

    def __init__(self, settings: Settings) -> None:
        """Take the tokens from ``settings``."""
        self._api = settings.api_token.get_secret_value() if settings.api_token else None
        self._read = settings.read_token.get_secret_value() if settings.read_token else None
        if self._api is None and self._read is None:
            material = os.urandom(32)
        else:
            material = f"{self._api or ''}\0{self._read or ''}".encode()
        self._key = hashlib.sha256(b"fedimeter-web-session\0" + material).digest()

    @property
    def reads_need_sign_in(self) -> bool:
        """Whether pages need a signed-in session (a read token is set)."""
        return self._read is not None

    @property
    def has_api_token(self) -> bool:
        """Whether changes need signing in with the API token."""
        return self._api is not None

    # -- sessions --------------------------------------------------------------------------

    def sign_in(self, token: str) -> Role | None:
        """The role ``token`` gives, or None when it is neither token (constant-time)."""
        given = token.strip().encode()
        if self._api is not None and hmac.compare_digest(given, self._api.encode()):
            return "write"
        if self._read is not None and hmac.compare_digest(given, self._read.encode()):
            return "read"
        return None

    def new_session(self, role: Role, now: float | None = None) -> str:
        """A cookie value for ``role``."""
        expires = int((time.time() if now is None else now) + SESSION_SECONDS)
        body = f"{role}.{expires}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._sign(body)}"

    def session_role(self, value: str | None, now: float | None = None) -> Role | None:
        """The role of a cookie value, or None when it is missing, forged or expired."""
        if not value or value.count(".") != 3:  # noqa: PLR2004 - role.expires.nonce.sig
            return None
        body, _, signature = value.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(body)):
            return None
        role, expires, _nonce = body.split(".")
        if role not in _ROLES or not expires.isdigit():
            return None
        if int(expires) < (time.time() if now is None else now):
            return None
        return role

    def set_cookie(self, response: Response, value: str) -> None:
        """Put the session cookie on ``response``."""
        response.set_cookie(
            COOKIE,
            value,
            max_age=SESSION_SECONDS,
            httponly=True,
            secure=True,
            samesite="strict",
            path="/",
        )

    # -- what a request may do -------------------------------------------------------------

    def role(self, request: Request) -> Role:
        """The request's role: its session's, or its bearer token's (scripts), else guest."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            by_token = self.sign_in(token)
            if by_token is not None:
                return by_token
        return self.session_role(request.cookies.get(COOKIE)) or "guest"

    def can_read(self, request: Request) -> bool:
        """Whether the request may see pages."""
        return not self.reads_need_sign_in or self.role(request) in {"read", "write"}

    def can_write(self, request: Request) -> bool:
        """Whether the request may change things."""
        if self.role(request) == "write":
            return True
        client = request.client.host if request.client else ""
        return self._api is None and is_loopback_host(client)

    # -- CSRF ------------------------------------------------------------------------------

    def csrf_token(self, session: str) -> str:
        """The CSRF token forms of this session carry."""
        return self._sign("csrf:" + session)

    def csrf_ok(self, request: Request, token: str) -> bool:
        """Whether a POST is same-site and carries its session's CSRF token."""
        if request.headers.get("sec-fetch-site", "same-origin") not in {"same-origin", "none"}:
            return False
        origin = request.headers.get("origin")
        if origin is not None and origin != _own_origin(request):
            return False
        session = request.cookies.get(COOKIE)
        if not session or self.session_role(session) is None:
            return False
        return hmac.compare_digest(token, self.csrf_token(session))

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()


def _own_origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"
