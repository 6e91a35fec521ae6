"""Parsing the times people type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fedimeter.domain.when import parse_period, parse_when
from fedimeter.errors import InvalidInput

NOW = datetime(2026, 11, 22, 10, 30, tzinfo=UTC)


def test_a_date_is_the_start_of_that_day_in_utc() -> None:
    """``2026-03-01`` means midnight UTC."""
    assert parse_when("2026-03-01", NOW) == datetime(2026, 3, 1, tzinfo=UTC)


def test_a_date_as_an_end_includes_the_whole_day() -> None:
    """With end_of_day the date means its last microsecond."""
    end = parse_when("2026-03-01", NOW, end_of_day=True)
    assert end == datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)


def test_datetimes_with_offsets_are_converted_to_utc() -> None:
    """An offset is honoured and the result is UTC."""
    assert parse_when("2026-03-01T12:00:00+02:00", NOW) == datetime(2026, 3, 1, 10, tzinfo=UTC)
    assert parse_when("2026-03-01T12:00:00Z", NOW) == datetime(2026, 3, 1, 12, tzinfo=UTC)


def test_a_datetime_without_offset_is_utc() -> None:
    """No offset means UTC, never the machine's local zone."""
    assert parse_when("2026-03-01T12:00", NOW) == datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "delta"),
    [("30d", timedelta(days=30)), ("12h", timedelta(hours=12)), ("2w", timedelta(weeks=2))],
)
def test_ages_count_back_from_now(text: str, delta: timedelta) -> None:
    """``30d``, ``12h`` and ``2w`` are that long before now."""
    assert parse_when(text, NOW) == NOW - delta


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01", "30x", "2026/03/01"])
def test_anything_else_is_invalid_input(text: str) -> None:
    """Unparseable text gives InvalidInput naming the accepted forms."""
    with pytest.raises(InvalidInput, match="YYYY-MM-DD"):
        parse_when(text, NOW)


def test_a_period_may_be_open_at_either_end() -> None:
    """parse_period keeps None for a missing end and includes the day of a date until."""
    assert parse_period(None, None, NOW) == (None, None)
    start, end = parse_period("2026-03-01", "2026-03-01", NOW)
    assert start == datetime(2026, 3, 1, tzinfo=UTC)
    assert end == datetime(2026, 3, 1, 23, 59, 59, 999999, tzinfo=UTC)


def test_a_reversed_period_is_invalid() -> None:
    """since after until is refused in one sentence."""
    with pytest.raises(InvalidInput, match="since is after until"):
        parse_period("2026-03-02", "2026-03-01", NOW)


def test_an_age_reaching_before_year_one_is_refused_in_one_line() -> None:
    """999999 days back is before datetime's first day: a clear error, not an OverflowError."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="reaches back before the year 1"):
        parse_when("999999d", now)
    assert parse_when("99999w", datetime(9999, 1, 1, tzinfo=UTC)).year >= 1
