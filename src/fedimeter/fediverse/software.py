"""What a server's software name and version say about the API it offers. Pure."""

from __future__ import annotations

import re

__all__ = ["BATCH_SINCE", "batch_support", "parse_version"]

#: First Mastodon release with ``GET /api/v1/accounts?id[]=``.
BATCH_SINCE = (4, 3)

# Leading numeric part; anything after it (+glitch, -nightly.2025-07-11, -beta.1, " (compatible;
# ...)") is a build label that does not change the API generation.
_VERSION = re.compile(r"\s*v?(\d{1,6})\.(\d{1,6})(?:\.(\d{1,6}))?")


def parse_version(version: str) -> tuple[int, int, int] | None:
    """``"4.3.0+glitch"`` → ``(4, 3, 0)``; ``"4.5.0-nightly.2025-07-11"`` → ``(4, 5, 0)``.

    Returns:
        Major, minor and patch (0 when missing), or ``None`` when the text has no version.
    """
    match = _VERSION.match(version)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def batch_support(software: str | None, version: str | None) -> bool | None:
    """Whether the server offers the 40-id batch accounts call.

    Returns:
        True for Mastodon 4.3 and later (forks such as glitch-soc call themselves
        ``mastodon``), False for older Mastodon, None when the software is something else or
        the version cannot be read (the caller then probes).
    """
    if software is None or software.lower() != "mastodon" or version is None:
        return None
    parsed = parse_version(version)
    if parsed is None:
        return None
    return parsed[:2] >= BATCH_SINCE
