"""Report lines for instances: hand-computed changes, gaps, partial starts, weeks, rendering."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

from fedimeter.domain.instance_report import InstanceLine, WeekFigures, instance_line
from fedimeter.domain.report import Report, build_report
from fedimeter.domain.report_html import render_html
from fedimeter.domain.report_render import render_json, render_markdown, render_text, week_note

SINCE = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = datetime(2026, 3, 8, tzinfo=UTC)


@dataclass(frozen=True)
class Sample:
    """A stored instance sample, as the report reads it."""

    taken_at: datetime
    users: int | None
    statuses: int | None
    active_month: int | None = None
    up: bool = True
    software: str | None = "mastodon"
    version: str | None = "4.3.2"


@dataclass(frozen=True)
class Week:
    """A stored week."""

    week_start: date
    statuses: int
    logins: int
    registrations: int
    complete: bool


def day(n: int) -> datetime:
    """Noon on day ``n`` of March 2026."""
    return datetime(2026, 3, n, 12, tzinfo=UTC)


def test_change_is_from_the_last_sample_before_the_period() -> None:
    """Users 1,000 on 28 Feb, 1,070 on 7 Mar: +70 (+7.0%), 10 a day; posts likewise."""
    line = instance_line(
        "social.example",
        [Sample(day(7), 1_070, 50_700, 300), Sample(SINCE - timedelta(hours=12), 1_000, 50_000)],
        [],
        since=SINCE,
        until=UNTIL,
    )
    assert line.users is not None
    assert (line.users.start, line.users.current, line.users.change) == (1_000, 1_070, 70)
    assert line.users.percent == 7.0
    assert line.users.per_day == 10.0
    assert line.statuses is not None
    assert line.statuses.change == 700
    assert (line.active_month, line.partial, line.up) == (300, False, True)


def test_a_count_missing_from_the_newest_sample_comes_from_the_one_before() -> None:
    """A sample whose users were implausible (None) is a gap, not a drop to zero."""
    line = instance_line(
        "social.example",
        [
            Sample(SINCE - timedelta(days=1), 1_000, 50_000),
            Sample(day(5), 1_040, 50_400),
            Sample(day(7), None, 50_700),
        ],
        [],
        since=SINCE,
        until=UNTIL,
    )
    assert line.users is not None
    assert (line.users.current, line.users.change) == (1_040, 40)
    assert line.statuses is not None
    assert line.statuses.current == 50_700
    assert line.measured_at == day(7)


def test_an_instance_added_mid_period_is_partial() -> None:
    """With no sample before the period, the change starts at its first sample inside it."""
    line = instance_line(
        "new.example",
        [Sample(day(3), 10, 100), Sample(day(6), 16, 130)],
        [],
        since=SINCE,
        until=UNTIL,
    )
    assert line.partial
    assert line.users is not None
    assert (line.users.start, line.users.change) == (10, 6)


def test_one_sample_and_no_sample() -> None:
    """One sample: no change; none: no data."""
    one = instance_line("one.example", [Sample(day(3), 10, 100)], [], since=SINCE, until=UNTIL)
    assert one.users is not None
    assert (one.users.change, one.users.per_day) == (0, None)
    none = instance_line("none.example", [], [], since=SINCE, until=UNTIL)
    assert not none.has_data
    assert (none.users, none.up, none.last_week) == (None, None, None)


def test_last_week_is_the_newest_complete_one_up_to_until() -> None:
    """The week in progress and weeks after until are not the last complete week."""
    weeks = [
        Week(date(2026, 2, 23), 700, 80, 5, complete=True),
        Week(date(2026, 3, 2), 650, 75, 4, complete=True),
        Week(date(2026, 3, 9), 90, 30, 1, complete=False),
    ]
    line = instance_line("s.example", [Sample(day(7), 1, 1)], weeks, since=SINCE, until=UNTIL)
    assert line.last_week is not None
    assert (line.last_week.week_start, line.last_week.statuses) == (date(2026, 3, 2), 650)
    early = instance_line("s.example", [Sample(day(7), 1, 1)], weeks, since=SINCE, until=day(1))
    assert early.last_week is not None
    assert early.last_week.week_start == date(2026, 2, 23)


def report_with(*lines: InstanceLine) -> Report:
    """An empty account report with these instance lines."""
    return replace(build_report([], since=SINCE, until=UNTIL, now=UNTIL), instances=lines)


def sample_line(up: bool = True) -> InstanceLine:
    """A line with every figure."""
    return instance_line(
        "social.example",
        [
            Sample(SINCE - timedelta(hours=12), 1_000, 50_000),
            Sample(day(7), 1_070, 50_700, 300, up=up),
        ],
        [Week(date(2026, 3, 2), 650, 75, 4, complete=True)],
        since=SINCE,
        until=UNTIL,
    )


def test_text_report_has_an_instances_section() -> None:
    """Users with change and percent, posts with change, monthly actives, the last week."""
    text = render_text(
        report_with(sample_line(), instance_line("x.example", [], [], since=SINCE, until=UNTIL))
    )
    assert (
        "Instances:\n"
        "  social.example (mastodon 4.3.2): 1,070 (+70, +7.0%) users, 50,700 (+700) posts,"
        " 300 active this month\n"
        "    650 posts, 75 logins, 4 registrations in the week from 2026-03-02\n"
        "  x.example: no data\n"
    ) in text


def test_a_down_instance_says_so() -> None:
    """The newest sample was down: the text says when."""
    assert "(down when last measured, 2026-03-07)" in render_text(report_with(sample_line(False)))


def test_markdown_json_and_html_carry_the_instances() -> None:
    """Markdown has a table row, JSON the figures, HTML a section with the host escaped."""
    report = report_with(sample_line())
    assert "| social.example | mastodon 4.3.2 | 1,070 | +70 | 50,700 | +700 | 300 |" in (
        render_markdown(report)
    )
    data = json.loads(json.dumps(render_json(report)))
    (instance,) = data["instances"]
    assert instance["users"]["change"] == 70
    assert instance["last_complete_week"]["logins"] == 75
    page = render_html(report)
    assert "<h2>Instances</h2>" in page
    assert "650 posts, 75 logins, 4 registrations" in page


def test_a_week_of_one_login_is_written_in_the_singular() -> None:
    """``1 post, 1 login, 0 registrations``: the counts of a quiet week read as English."""
    week = WeekFigures(date(2026, 3, 2), 1, 1, 0)
    assert week_note(week) == "1 post, 1 login, 0 registrations in the week from 2026-03-02"
