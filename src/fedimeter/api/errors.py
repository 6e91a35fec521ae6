"""fedimeter's errors as HTTP answers: the one place that maps the error tree to statuses."""

from __future__ import annotations

import logging
from typing import Any, Final

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
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

__all__ = ["MAX_ECHO", "install_error_handlers", "printable", "status_for", "validation_errors"]

#: The most characters of a value a validation error echoes (its ``input``, a field name).
MAX_ECHO: Final = 100
#: The most characters of one validation message.
_MAX_MESSAGE: Final = 300

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


def printable(text: str, limit: int | None = None) -> str:
    r"""``text`` as UTF-8 can carry it, cut to ``limit`` characters (marked with ``…``).

    A JSON body may hold a lone surrogate (``"\ud800"``), which is no character: echoed
    as it is, encoding the answer failed (a 500). It is shown as its escape instead.
    """
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8")
    if limit is not None and len(safe) > limit:
        return safe[: limit - 1] + "\u2026"
    return safe


def _echo(value: object) -> object:
    """A value fit to echo: a number, or a short text; anything else is left out (None)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return printable(value, MAX_ECHO)
    return None


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's validation errors, safe to answer with.

    Each keeps ``type``, ``loc`` and ``msg``; ``input`` only when it is a number or a
    text, cut to ``MAX_ECHO`` characters (a 50 MB field or two million hosts were echoed
    whole); ``ctx`` only as short texts. Lone surrogates are shown as escapes.
    """
    errors: list[dict[str, Any]] = []
    for error in exc.errors():
        item: dict[str, Any] = {
            "type": str(error.get("type", "invalid")),
            "loc": [
                part if isinstance(part, int) else printable(str(part), MAX_ECHO)
                for part in error.get("loc", ())
            ],
            "msg": printable(str(error.get("msg", "invalid")), _MAX_MESSAGE),
        }
        if "input" in error and (echo := _echo(error["input"])) is not None:
            item["input"] = echo
        ctx = error.get("ctx")
        if isinstance(ctx, dict):
            item["ctx"] = {
                str(k): v if isinstance(v, int | float) else printable(str(v), _MAX_MESSAGE)
                for k, v in ctx.items()
            }
        errors.append(item)
    return errors


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for this class only
    return JSONResponse(
        {"detail": validation_errors(exc), "code": "invalid_input"},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


async def _fedimeter_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, FedimeterError)  # noqa: S101 - registered for this class only
    code = status_for(exc)
    if code >= status.HTTP_500_INTERNAL_SERVER_ERROR:
        log.warning("%s: %s", type(exc).__name__, exc)
    return JSONResponse({"detail": printable(str(exc)), "code": exc.code}, status_code=code)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every ``FedimeterError`` with its status and ``{"detail": ..., "code": ...}``.

    And FastAPI's request validation errors as its usual list, without echoing large
    inputs or characters UTF-8 cannot carry (``validation_errors``).
    """
    app.add_exception_handler(FedimeterError, _fedimeter_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
