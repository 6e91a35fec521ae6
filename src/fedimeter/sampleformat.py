"""Samples as plain rows: the one shape the CLI, the API and ``export`` write as JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from fedimeter.storage.records import SampleRecord

__all__ = ["SAMPLE_COLUMNS", "sample_values", "samples_csv"]

SAMPLE_COLUMNS = ("taken_at", "followers", "following", "statuses", "last_status_at")


def sample_values(sample: SampleRecord) -> dict[str, str | int | None]:
    """A sample's columns: ISO 8601 UTC time with ``Z``, counts, the last post day or None."""
    return {
        "taken_at": sample.taken_at.isoformat().replace("+00:00", "Z"),
        "followers": sample.followers,
        "following": sample.following,
        "statuses": sample.statuses,
        "last_status_at": (
            None if sample.last_status_at is None else sample.last_status_at.isoformat()
        ),
    }


def samples_csv(samples: Iterable[SampleRecord]) -> str:
    """CSV with a header row and one row per sample; an unknown value is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SAMPLE_COLUMNS)
    for sample in samples:
        values = sample_values(sample)
        writer.writerow(["" if values[c] is None else values[c] for c in SAMPLE_COLUMNS])
    return buffer.getvalue()
