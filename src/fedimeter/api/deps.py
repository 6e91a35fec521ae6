"""FastAPI dependencies: the shared services and the two levels of access."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fedimeter.api.services import Services
from fedimeter.storage.repository import Repository
from fedimeter.web.auth import COOKIE

__all__ = ["ReadAccess", "RepoDep", "ServicesDep", "WriteAccess"]

_bearer = HTTPBearer(auto_error=False, description="The API token (FEDIMETER_API_TOKEN).")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def get_services(request: Request) -> Services:
    """The services of this app."""
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_repo(services: ServicesDep) -> Repository:
    """The repository."""
    return services.repo


RepoDep = Annotated[Repository, Depends(get_repo)]


def _matches(given: str, expected: str) -> bool:
    # Constant time: the comparison must not tell an attacker how much of a guess was right.
    return hmac.compare_digest(given.encode(), expected.encode())


def _unauthorised(message: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=message,
        headers={"WWW-Authenticate": "Bearer"},
    )


def _from_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def require_write(services: ServicesDep, request: Request, credentials: Credentials) -> None:
    """Let a write through: with the API token, or from this machine when none is set.

    Raises:
        HTTPException: 401 without the right token, 403 from elsewhere without a token set.
    """
    token = services.settings.api_token
    if token is None:
        if _from_loopback(request):
            return
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "writes are allowed only from this machine until FEDIMETER_API_TOKEN is set",
        )
    if credentials is None:
        raise _unauthorised("this call changes data: send 'Authorization: Bearer <API token>'")
    if not _matches(credentials.credentials, token.get_secret_value()):
        raise _unauthorised("the token is not the API token")


def require_read(services: ServicesDep, request: Request, credentials: Credentials) -> None:
    """Let a read through: always, unless a read token is set; the API token reads too.

    A browser signed in to the dashboard reads with its session (the pages' download links);
    a session never authorises a write, so no API call can be forged from another site.

    Raises:
        HTTPException: 401 when a read token is set and neither token was sent.
    """
    read_token = services.settings.read_token
    if read_token is None:
        return
    if credentials is None:
        if _signed_in(request):
            return
        raise _unauthorised("reading needs 'Authorization: Bearer <read token>'")
    given = credentials.credentials
    api_token = services.settings.api_token
    if _matches(given, read_token.get_secret_value()) or (
        api_token is not None and _matches(given, api_token.get_secret_value())
    ):
        return
    raise _unauthorised("the token is neither the read token nor the API token")


def _signed_in(request: Request) -> bool:
    """Whether the request carries a dashboard session of a signed-in reader or writer."""
    web = getattr(request.app.state, "web", None)
    if web is None:
        return False
    return web.auth.session_role(request.cookies.get(COOKIE)) in {"read", "write"}


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
