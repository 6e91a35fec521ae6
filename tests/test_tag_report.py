"""A report's hashtag lines: sums over whole days, change against before, gaps. Pure."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from fedimeter.domain.report import build_report
from fedimeter.domain.report_html import render_html
from fedimeter.domain.report_render import render_json, render_markdown, render_text
from fedimeter.domain.tag_report import TagLine, tag_line, whole_days

DAY0 = date(2026, 3, 1)


@dataclass(frozen=True)
class Day:
    """A stored day."""

    day: date
    uses: int
    accounts: int
    complete: bool = True


def at(day: int, hour: int = 0) -> datetime:
    """``hour`` o'clock UTC, ``day`` days after DAY0."""
    return datetime(2026, 3, 1, hour, tzinfo=UTC) + timedelta(days=day)


def days(first: int, last: int, uses: int = 10, accounts: int = 4) -> list[Day]:
    """Complete days ``first``..``last`` after DAY0, each with the same counts."""
    return [Day(DAY0 + timedelta(days=n), uses, accounts) for n in range(first, last + 1)]


def test_whole_days_of_a_period() -> None:
    """As many days as the period is long, ending with the last one wholly before its end."""
    week = [DAY0 + timedelta(days=n) for n in range(7)]
    assert whole_days(at(0), at(7)) == week
    # A 7-day report made at 03:00 sums the 7 days before that day, not 6 of them.
    assert whole_days(at(0, 3), at(7, 3)) == week
    # --since DAY0 --until DAY6: the end is DAY6's last moment, and DAY6 is in.
    assert whole_days(at(0), at(7) - timedelta(microseconds=1)) == week
    assert whole_days(at(0, 3), at(0, 20)) == []
    assert whole_days(at(0, 3), at(1, 3)) == [DAY0]


def test_a_week_against_the_week_before() -> None:
    """Sums, the change in uses and percent, average accounts, the busiest day."""
    stored = [*days(-7, -1, uses=10), *days(0, 6, uses=12, accounts=5)]
    stored[10] = Day(stored[10].day, 30, 9)  # day 3: the busiest
    line = tag_line("Caturday", "social.example", stored, since=at(0), until=at(7))
    assert (line.days, line.days_known, line.uses, line.before) == (7, 7, 12 * 6 + 30, 70)
    assert line.change == 32
    assert line.percent is not None
    assert round(line.percent, 1) == 45.7
    assert line.accounts_per_day == (5 * 6 + 9) / 7
    assert line.busiest == (DAY0 + timedelta(days=3), 30)
    assert line.so_far is None


def test_gaps_are_not_zeros_and_leave_the_change_unknown() -> None:
    """Two days missing in the period: sums over the known days, no change given."""
    stored = [d for d in [*days(-7, -1), *days(0, 6)] if d.day not in {DAY0, DAY0 + timedelta(2)}]
    line = tag_line("t", "h", stored, since=at(0), until=at(7))
    assert (line.days_known, line.uses, line.change, line.percent) == (5, 50, None, None)
    assert line.before == 70
    assert "5 of 7 days known" in render_text_of(line)
    # The days before incomplete: no change either.
    line = tag_line("t", "h", days(-3, 6), since=at(0), until=at(7))
    assert (line.uses, line.before, line.change) == (70, None, None)
    # Nothing known at all.
    empty = tag_line("t", "h", [], since=at(0), until=at(7))
    assert (empty.uses, empty.accounts_per_day, empty.busiest) == (None, None, None)
    assert "no day known" in render_text_of(empty)


def test_the_day_in_progress_is_apart_from_the_sums() -> None:
    """A report ending mid-day: today's partial count is shown on its own, not summed.

    The week's sums are the 7 whole days before today (DAY0 to DAY6), against the 7 before.
    """
    stored = [*days(-7, 6), Day(DAY0 + timedelta(days=7), 3, 2, complete=False)]
    line = tag_line("t", "h", stored, since=at(0, 15), until=at(7, 15))
    assert line.days == 7
    assert line.uses == 70
    assert line.before == 70
    assert line.so_far == (DAY0 + timedelta(days=7), 3, 2)
    assert "3 so far on 2026-03-08" in render_text_of(line)


def test_an_incomplete_day_inside_the_period_is_not_counted() -> None:
    """A day left incomplete (a gap after it) is partial: not among the known days."""
    stored = [*days(0, 2), Day(DAY0 + timedelta(days=3), 5, 1, complete=False), *days(4, 6)]
    line = tag_line("t", "h", stored, since=at(0), until=at(7))
    assert (line.days_known, line.uses, line.so_far) == (6, 60, None)


def render_text_of(line: TagLine) -> str:
    """The report's text with only this hashtag line."""
    report = build_report([], since=at(0), until=at(7), now=at(7))
    return render_text(dataclasses.replace(report, tags=(line,)))


def test_every_format_shows_the_hashtags_and_escapes_what_servers_send() -> None:
    """Text, Markdown, HTML and JSON carry the lines; a hostile name is inert everywhere."""
    stored = [*days(-7, -1, uses=10), *days(0, 6, uses=11)]
    good = tag_line("Caturday", "social.example", stored, since=at(0), until=at(7))
    hostile = tag_line(
        "<script>alert(1)</script>*x*|",
        "evil.example",
        stored,
        since=at(0),
        until=at(7),
        failures=3,
        last_error="evil.example answered 503 <b>bold</b>",
    )
    report = build_report([], since=at(0), until=at(7), now=at(7))
    report = dataclasses.replace(report, tags=(good, hostile))
    text = render_text(report)
    assert "Hashtags:" in text
    assert (
        "#Caturday on social.example: 77 uses over 7 days (+7, +10.0%; 70 the 7 days before),"
        " 4.0 accounts a day, busiest 2026-03-07 (11)"
    ) in text
    assert "not read for 3 rounds: evil.example answered 503" in text
    markdown = render_markdown(report)
    assert "## Hashtags" in markdown
    assert (
        "| #Caturday | social.example | 77 | +7 (+10.0%) | 4.0 | busiest 2026-03-07 (11) |"
        in markdown
    )
    assert "<script>" not in markdown
    assert "\\*x\\*\\|" in markdown
    html = render_html(report)
    assert "<h2>Hashtags</h2>" in html
    assert "<script>alert" not in html
    assert "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html
    data = json.loads(json.dumps(render_json(report)))
    assert data["tags"][0] == {
        "name": "Caturday",
        "host": "social.example",
        "days": 7,
        "days_known": 7,
        "uses": 77,
        "uses_before": 70,
        "change": 7,
        "percent": 10.0,
        "accounts_per_day": 4.0,
        "busiest": {"day": "2026-03-07", "uses": 11},
        "so_far": None,
        "failures": 0,
        "last_error": None,
    }
