"""fedimeter's errors as HTTP answers: the one place that maps the error tree to statuses."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from fedimeter.errors import (
    AccountNotFound,
    AddressRefused,
    AlreadyTracked,
    ConfigError,
    FedimeterError,
    FediverseError,
    InvalidInput,
    NotTracked,
    RoundInProgress,
    StorageError,
)

__all__ = ["install_error_handlers", "status_for"]

log = logging.getLogger("fedimeter.api")

# Most specific first: the first class an error is an instance of decides.
_STATUSES: list[tuple[type[FedimeterError], int]] = [
    (InvalidInput, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (AddressRefused, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (NotTracked, status.HTTP_404_NOT_FOUND),
    (AccountNotFound, status.HTTP_404_NOT_FOUND),
    (AlreadyTracked, status.HTTP_409_CONFLICT),
    (RoundInProgress, status.HTTP_409_CONFLICT),
    (FediverseError, status.HTTP_502_BAD_GATEWAY),
    (StorageError, status.HTTP_503_SERVICE_UNAVAILABLE),
    (ConfigError, status.HTTP_500_INTERNAL_SERVER_ERROR),
]


def status_for(error: FedimeterError) -> int:
    """The HTTP status that tells a client what kind of failure ``error`` is."""
    for cls, code in _STATUSES:
        if isinstance(error, cls):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


async def _fedimeter_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FedimeterError)  # noqa: S101 - registered for this class only
    code = status_for(exc)
    if code >= status.HTTP_500_INTERNAL_SERVER_ERROR:
        log.warning("%s: %s", type(exc).__name__, exc)
    return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=code)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every ``FedimeterError`` with its status and ``{"detail": ..., "code": ...}``."""
    app.add_exception_handler(FedimeterError, _fedimeter_error)
