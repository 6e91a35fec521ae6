"""Building the app for tests: a TestClient that runs its lifespan, from this machine."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from fedimeter.api import create_app
from fedimeter.config import Settings

LOCAL = ("127.0.0.1", 50000)
REMOTE = ("203.0.113.7", 50000)


def api_settings(settings: Settings, **overrides: Any) -> Settings:
    """The test settings, speaking plain http to the simulated fediverse (validated anew)."""
    return Settings(**{**settings.model_dump(), "default_scheme": "http", **overrides})


@contextlib.contextmanager
def api(
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
    client: tuple[str, int] = LOCAL,
    headers: dict[str, str] | None = None,
    base_url: str = "http://testserver",
) -> Iterator[TestClient]:
    """The app without its scheduler, started (lifespan run) and stopped around the block."""
    kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
    app = create_app(settings, schedule=False, **kwargs)
    with TestClient(app, client=client, headers=headers, base_url=base_url) as http:
        yield http
