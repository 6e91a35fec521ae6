"""Read the time formats servers send: ISO 8601 timestamps and dates, HTTP dates. Pure."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime

__all__ = ["parse_day", "parse_http_date", "parse_timestamp"]


def parse_timestamp(text: str) -> datetime | None:
    """Read an ISO 8601 timestamp liberally: ``Z`` or an offset, any fraction, or none.

    A timestamp without a zone is taken as UTC (servers that omit it mean UTC).

    Returns:
        The aware datetime, or ``None`` when ``text`` is not a timestamp.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except (ValueError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_day(text: str) -> date | None:
    """Read ``YYYY-MM-DD``, or a timestamp reduced to its UTC day.

    Returns:
        The day, or ``None`` when ``text`` is neither.
    """
    stripped = text.strip()
    if len(stripped) == len("YYYY-MM-DD"):
        try:
            return date.fromisoformat(stripped)
        except ValueError:
            return None
    if "T" not in stripped.upper() and " " not in stripped:
        return None
    moment = parse_timestamp(stripped)
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC).date()
    except OverflowError:  # year 1 or 9999 pushed past the calendar by its offset
        return None


def parse_http_date(text: str) -> datetime | None:
    """Read an HTTP date (``Sun, 06 Nov 1994 08:49:37 GMT`` and the obsolete forms).

    Returns:
        The aware datetime, or ``None`` when ``text`` is not a date.
    """
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
