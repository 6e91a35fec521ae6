"""Turning records into what a person reads or a script parses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from fedimeter.sampleformat import sample_values

if TYPE_CHECKING:
    from collections.abc import Mapping

    from fedimeter.storage.records import AccountRecord, RunRecord, SampleRecord

__all__ = [
    "account_json",
    "dumps",
    "iso",
    "number",
    "run_json",
    "sample_json",
    "size",
    "tally",
    "when",
]


def number(value: int | None) -> str:
    """``12,345`` or an em dash for nothing."""
    return "—" if value is None else f"{value:,}"


def size(num_bytes: int) -> str:
    """A file size in decimal units: ``812 bytes``, ``12.3 kB``, ``4.5 MB``."""
    if num_bytes < 1000:  # noqa: PLR2004 - the unit steps
        return "1 byte" if num_bytes == 1 else f"{num_bytes} bytes"
    value = float(num_bytes)
    for unit in ("kB", "MB", "GB", "TB"):
        value /= 1000
        if round(value, 1) < 1000 or unit == "TB":  # noqa: PLR2004
            break
    return f"{value:.1f} {unit}"


def tally(counts: Mapping[str, int]) -> str:
    """``7 accounts, 1,204 samples, 1 round`` from counts by plural noun."""
    return ", ".join(
        f"1 {noun.removesuffix('s')}" if count == 1 else f"{count:,} {noun}"
        for noun, count in counts.items()
    )


def when(value: datetime | date | None) -> str:
    """``2026-03-01 03:00`` UTC, a bare date, or an em dash."""
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def iso(value: datetime | date | None) -> str | None:
    """``2026-12-07T03:00:00Z`` (a moment, in UTC) or ``2026-12-07`` (a day) for ``--json``."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value if value.tzinfo is None else value.astimezone(UTC)
        return moment.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def sample_json(sample: SampleRecord) -> dict[str, Any]:
    """A sample as JSON-ready values."""
    return dict(sample_values(sample))


def account_json(account: AccountRecord, latest: SampleRecord | None = None) -> dict[str, Any]:
    """An account (and its latest sample) as JSON-ready values."""
    return {
        "id": account.id,
        "handle": str(account.handle),
        "acct": account.handle.acct,
        "home": account.base_url,
        "remote_id": account.remote_id,
        "display_name": account.display_name,
        "url": account.url,
        "state": account.state.value,
        "moved_to": account.moved_to,
        "added_at": iso(account.added_at),
        "last_error": account.last_error,
        "last_error_at": iso(account.last_error_at),
        "latest": None if latest is None else sample_json(latest),
    }


def run_json(run: RunRecord) -> dict[str, Any]:
    """A round as JSON-ready values."""
    return {
        "id": run.id,
        "status": run.status,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "duration_seconds": run.duration_seconds,
        "resumes_run_id": run.resumes_run_id,
        "accounts_planned": run.accounts_planned,
        "accounts_measured": run.accounts_measured,
        "accounts_failed": run.accounts_failed,
        "requests": run.requests,
        "rate_limited": run.rate_limited,
        "rate_limit_wait_seconds": run.rate_limit_wait_seconds,
        "retries": run.retries,
        "error": run.error,
    }


def dumps(value: Any) -> str:  # noqa: ANN401
    """Indented JSON, UTF-8 kept readable."""
    return json.dumps(value, indent=2, ensure_ascii=False)
