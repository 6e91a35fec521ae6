"""Parsing the times people type."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fedimeter.domain.when import EARLIEST, LATEST, earlier, later, parse_period, parse_when
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


def test_an_age_reaching_before_1970_is_refused_in_one_line() -> None:
    """99999 days back (1752) or 999999 (before datetime's first day): one clear line."""
    now = datetime(2026, 3, 1, tzinfo=UTC)
    for text in ("99999d", "999999d", "999999w"):
        with pytest.raises(InvalidInput, match=r"reaches back before 1970-01-01") as caught:
            parse_when(text, now)
        assert "\n" not in str(caught.value)
    assert parse_when("20513d", now) == EARLIEST  # exactly the first moment
    with pytest.raises(InvalidInput, match="reaches back"):
        parse_when("20514d", now)


@pytest.mark.parametrize(
    ("text", "end_of_day", "side"),
    [
        ("0001-01-01T00:00:00+01:00", False, "before"),  # astimezone overflowed
        ("0001-01-01", False, "before"),
        ("1969-12-31T23:59:59.999999", False, "before"),
        ("1970-01-01T00:59:59+01:00", False, "before"),
        ("9999-12-31T23:59:59-12:00", False, "after"),  # astimezone overflowed
        ("9999-12-31", True, "after"),
        ("3000-01-01", False, "after"),
        ("2999-12-31T23:00:00-01:00", False, "after"),
    ],
)
def test_moments_outside_1970_to_2999_are_refused(text: str, end_of_day: bool, side: str) -> None:
    """Outside 1970-01-01..2999-12-31 (UTC) is a 422 in one line, never an OverflowError."""
    with pytest.raises(InvalidInput) as caught:
        parse_when(text, NOW, end_of_day=end_of_day)
    assert str(caught.value) == (
        f"{text!r} is {side} {'1970-01-01' if side == 'before' else '2999-12-31'}:"
        " dates run from 1970-01-01 to 2999-12-31"
    )


def test_the_bounds_themselves_are_accepted() -> None:
    """The first moment of 1970 and the last of 2999, in any offset that lands there."""
    assert parse_when("1970-01-01", NOW) == EARLIEST
    assert parse_when("1970-01-01T01:00:00+01:00", NOW) == EARLIEST
    assert parse_when("2999-12-31", NOW, end_of_day=True) == LATEST
    assert parse_period("1970-01-01", "2999-12-31", NOW) == (EARLIEST, LATEST)


def test_earlier_and_later_stop_at_the_calendar() -> None:
    """Arithmetic around a period saturates at the years 1 and 9999 instead of overflowing."""
    year_one = datetime(1, 1, 2, tzinfo=UTC)
    assert earlier(year_one, timedelta(days=31)) == datetime.min.replace(tzinfo=UTC)
    assert earlier(NOW, timedelta(days=1)) == NOW - timedelta(days=1)
    last = datetime(9999, 12, 31, 12, tzinfo=UTC)
    assert later(last, timedelta(days=1)) == datetime.max.replace(tzinfo=UTC)
    assert later(NOW, timedelta(days=1)) == NOW + timedelta(days=1)
