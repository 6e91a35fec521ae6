"""Headless Chromium for the browser tests: where it is, and skip (or fail on CI) without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

__all__ = ["CHROMIUM", "require_chromium"]

CHROMIUM = "/usr/bin/chromium"


def require_chromium() -> None:
    """Skip the test when Playwright or Chromium is missing; on CI that is a failure."""
    try:
        import playwright  # noqa: F401 - optional test dependency
    except ImportError:
        missing = "Playwright is not installed"
    else:
        if Path(CHROMIUM).exists():
            return
        missing = f"Chromium ({CHROMIUM}) is not installed"
    if os.environ.get("CI"):
        pytest.fail(f"{missing} on CI")
    pytest.skip(missing)
