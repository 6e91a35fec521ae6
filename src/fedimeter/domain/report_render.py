"""A ``Report`` as text, Markdown, CSV or JSON. Pure: strings and dicts, no I/O.

Text and Markdown are for people: thousands separators, one decimal, ASCII ``-`` for every
negative number, dates as ``YYYY-MM-DD``. CSV and JSON are for programs: plain numbers at
full precision, ISO 8601 times in UTC with ``Z``, handles in ``user@domain`` form, empty (CSV)
or null (JSON) where a value is unknown. Every renderer's output ends with one newline, ready
to be written to a file as it is.

The text report, in mastodon-meter's style::

    fedimeter report for 2026-03-01 – 2026-03-31 (generated 2026-04-01 03:00 UTC)

    @alice@example.org: 1,234 (+56, +4.7%) followers, 89 following, 5,678 (+12) posts
      next: 2,500 followers around 2026-05-10
    @bob@example.org: no data

    Total: 2 accounts, 1,234 (+56) followers

    Silent (no post for more than 30 days):
      @carol@example.org: last post 2026-01-02 (89 days ago)
"""  # noqa: RUF002 - the title's dash is an en dash on purpose

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, TypeAlias

from fedimeter.domain.engagement_report import (
    engagement_json,
    engagement_markdown,
    engagement_text,
)

if TYPE_CHECKING:
    from fedimeter.domain.instance_report import InstanceLine, WeekFigures
    from fedimeter.domain.report import AccountLine, Movement, Report
    from fedimeter.domain.tag_report import TagLine

__all__ = [
    "CSV_COLUMNS",
    "JSONValue",
    "counted",
    "csv_safe",
    "escape_markdown",
    "format_count",
    "format_day",
    "format_minute",
    "format_percent",
    "format_rate",
    "format_signed",
    "render_csv",
    "render_json",
    "render_markdown",
    "render_text",
    "report_title",
    "shown_note",
    "silence_note",
    "software_label",
    "tag_notes",
    "week_note",
]

JSONValue: TypeAlias = "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None"

#: Between the period's two dates in titles, as in typeset date ranges.
_EN_DASH = "\u2013"

#: Characters a spreadsheet reads as the start of a formula (or that hide one after them).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: Characters with an inline meaning in CommonMark/GFM (emphasis, code, links, HTML, tables,
#: strikethrough, entities, math). Block syntax does not apply inside a table cell.
_MARKDOWN_SPECIALS = frozenset("\\`*_[]<>|~&$")

CSV_COLUMNS = (
    "handle",
    "display_name",
    "measured_at",
    "base_at",
    "partial",
    "followers",
    "followers_change",
    "followers_percent",
    "followers_per_day",
    "following",
    "following_change",
    "following_percent",
    "following_per_day",
    "statuses",
    "statuses_change",
    "statuses_percent",
    "statuses_per_day",
    "trend_per_day",
    "next_milestone",
    "milestone_eta",
    "last_status_at",
    "days_since_post",
    "silent",
)


# --- shared formatting (report_html uses these too) -------------------------------------------


def format_day(moment: datetime | date) -> str:
    """``2026-03-31`` (a datetime's UTC day)."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC).date()
    return moment.isoformat()


def format_minute(moment: datetime) -> str:
    """``2026-04-01 03:00 UTC``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(moment: datetime) -> str:
    """``2026-04-01T03:00:00Z``; microseconds only when there are some."""
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def format_count(value: int) -> str:
    """``1,234``."""
    return f"{value:,}"


def counted(value: int, nouns: str) -> str:
    """``1 post``, ``1,234 posts``: a plural noun in ``s`` (or ``following``) fit to the count."""
    noun = nouns[:-1] if value == 1 and nouns.endswith("s") else nouns
    return f"{format_count(value)} {noun}"


def format_signed(value: int) -> str:
    """``+56``, ``-3``, ``0``."""
    return f"{value:+,}" if value else "0"


def format_percent(value: float) -> str:
    """``+4.7%``, ``-0.5%``, ``0.0%``."""
    return f"{value:+.1f}%" if value else "0.0%"


def format_rate(value: float) -> str:
    """``+1.8``, ``-0.3``, ``0.0``."""
    return f"{value:+,.1f}" if value else "0.0"


def report_title(report: Report) -> str:
    """``fedimeter report for 2026-03-01 - 2026-03-31``, with an en dash."""
    return f"fedimeter report for {format_day(report.since)} {_EN_DASH} {format_day(report.until)}"


def shown_note(report: Report) -> str:
    """`` (top 5 shown)`` when ``top`` cut the list, else nothing."""
    shown = len(report.accounts)
    return "" if shown == report.account_count else f" (top {shown} shown)"


def _totals(report: Report) -> str:
    """``3 accounts, 1,234 (+56) followers``."""
    change = report.total_followers_change
    moved = f" ({format_signed(change)})" if change else ""
    followers = "follower" if report.total_followers == 1 else "followers"
    return (
        f"{counted(report.account_count, 'accounts')},"
        f" {format_count(report.total_followers)}{moved} {followers}"
    )


def silence_note(line: AccountLine) -> str:
    """``last post 2026-01-02 (89 days ago)`` or ``never posted``."""
    if line.last_status_at is None:
        return "never posted"
    days = line.days_since_post
    return f"last post {format_day(line.last_status_at)} ({days} day{'' if days == 1 else 's'} ago)"


# --- text ------------------------------------------------------------------------------------


def _text_count(movement: Movement, noun: str, *, with_percent: bool = False) -> str:
    """``1,234 (+56, +4.7%) followers``; the parenthesis only when the count changed."""
    if not movement.change:
        return counted(movement.current, noun)
    parts = [format_signed(movement.change)]
    if with_percent and movement.percent is not None:
        parts.append(format_percent(movement.percent))
    number, _, noun = counted(movement.current, noun).partition(" ")
    return f"{number} ({', '.join(parts)}) {noun}"


def _text_lines(line: AccountLine) -> list[str]:
    """An account's line and, when the trend gives a date, its milestone line."""
    name = f"@{line.handle}"
    if line.followers is None or line.following is None or line.statuses is None:
        return [f"{name}: no data"]
    text = (
        f"{name}: {_text_count(line.followers, 'followers', with_percent=True)},"
        f" {_text_count(line.following, 'following')}, {_text_count(line.statuses, 'posts')}"
    )
    if line.partial and line.base_at is not None:
        text += f" (measured from {format_day(line.base_at)})"
    lines = [text]
    if line.milestone is not None and line.milestone.eta is not None:
        lines.append(
            f"  next: {format_count(line.milestone.followers)} followers"
            f" around {format_day(line.milestone.eta)}"
        )
    return lines


def software_label(line: InstanceLine) -> str:
    """``mastodon 4.3.2``, or ``""`` when the instance did not say."""
    return " ".join(part for part in (line.software, line.version) if part)


def week_note(week: WeekFigures) -> str:
    """``5,000 posts, 400 logins, 12 registrations in the week from 2026-11-16``."""
    return (
        f"{counted(week.statuses, 'posts')}, {counted(week.logins, 'logins')},"
        f" {counted(week.registrations, 'registrations')}"
        f" in the week from {format_day(week.week_start)}"
    )


def _text_instance(line: InstanceLine) -> list[str]:
    """An instance's line and, when it has one, its last complete week."""
    software = software_label(line)
    name = f"{line.host} ({software})" if software else line.host
    if line.measured_at is None:
        return [f"{name}: no data"]
    counts = [
        _text_count(movement, noun, with_percent=noun == "users")
        for movement, noun in ((line.users, "users"), (line.statuses, "posts"))
        if movement is not None
    ]
    if line.active_month is not None:
        counts.append(f"{format_count(line.active_month)} active this month")
    text = f"{name}: {', '.join(counts) or 'no count given'}"
    if not line.up:
        text += f" (down when last measured, {format_day(line.measured_at)})"
    lines = [text]
    if line.last_week is not None:
        lines.append(f"  {week_note(line.last_week)}")
    return lines


def _days(count: int) -> str:
    return "1 day" if count == 1 else f"{count:,} days"


def tag_notes(line: TagLine) -> list[str]:
    """What a tag's line says, in phrases: uses and change, accounts, busiest day, gaps, today.

    The first phrase is ``no day known`` when no whole day of the period is stored.
    """
    notes = []
    if line.uses is None:
        notes.append("no day known")
    else:
        uses = f"{counted(line.uses, 'uses')} over {_days(line.days_known)}"
        if line.change is not None and line.before is not None:
            percent = "" if line.percent is None else f", {format_percent(line.percent)}"
            uses += (
                f" ({format_signed(line.change)}{percent};"
                f" {format_count(line.before)} the {_days(line.days)} before)"
            )
        notes.append(uses)
        if line.accounts_per_day is not None:
            notes.append(f"{line.accounts_per_day:,.1f} accounts a day")
        if line.busiest is not None and line.busiest[1]:
            notes.append(f"busiest {format_day(line.busiest[0])} ({format_count(line.busiest[1])})")
        if line.days_known < line.days:
            notes.append(f"{line.days_known} of {_days(line.days)} known")
    if line.so_far is not None:
        notes.append(f"{format_count(line.so_far[1])} so far on {format_day(line.so_far[0])}")
    if line.failures:
        rounds = "1 round" if line.failures == 1 else f"{line.failures} rounds"
        notes.append(f"not read for {rounds}: {line.last_error or 'no reason given'}")
    return notes


def render_text(report: Report) -> str:
    """The report as plain text: title, accounts, totals, instances and silent accounts."""
    out = [f"{report_title(report)} (generated {format_minute(report.generated_at)})", ""]
    for line in report.accounts:
        out.extend(_text_lines(line))
    if report.accounts:
        out.append("")
    out.append(f"Total: {_totals(report)}{shown_note(report)}")
    if report.instances:
        out += ["", "Instances:"]
        for instance in report.instances:
            out += [f"  {text}" for text in _text_instance(instance)]
    if report.tags:
        out += ["", "Hashtags:"]
        out += [f"  {line.label}: {', '.join(tag_notes(line))}" for line in report.tags]
    out += engagement_text(report.engagement)
    if report.silent:
        out += ["", f"Silent (no post for more than {report.silent_after_days} days):"]
        out += [f"  @{line.handle}: {silence_note(line)}" for line in report.silent]
    return "\n".join(out) + "\n"


# --- Markdown --------------------------------------------------------------------------------


def escape_markdown(text: str) -> str:
    """``text`` safe inside a Markdown paragraph or table cell.

    Returns it on one line (line breaks become spaces, which would otherwise end a table row)
    with every inline special character backslash-escaped.
    """
    flat = " ".join(text.splitlines())
    return "".join(f"\\{c}" if c in _MARKDOWN_SPECIALS else c for c in flat)


def _markdown_row(line: AccountLine) -> list[str]:
    """The table cells of one account."""
    label = escape_markdown(f"@{line.handle}")
    if line.display_name:
        label = f"{escape_markdown(line.display_name)} ({label})"
    followers, following, statuses = line.followers, line.following, line.statuses
    if followers is None or following is None or statuses is None:
        return [label, "no data", "", "", "", "", "", ""]
    if line.partial and line.base_at is not None:
        label += f" (from {format_day(line.base_at)})"
    milestone = ""
    if line.milestone is not None:
        milestone = format_count(line.milestone.followers)
        if line.milestone.eta is not None:
            milestone += f" (~{format_day(line.milestone.eta)})"
    return [
        label,
        format_count(followers.current),
        format_signed(followers.change),
        "" if followers.percent is None else format_percent(followers.percent),
        "" if followers.per_day is None else format_rate(followers.per_day),
        format_count(following.current),
        format_count(statuses.current),
        milestone,
    ]


def _markdown_instance(line: InstanceLine) -> list[str]:
    """The table cells of one instance."""
    users, statuses = line.users, line.statuses
    state = "" if line.up is not False else " (down)"
    return [
        escape_markdown(line.host) + state,
        escape_markdown(software_label(line)),
        "" if users is None else format_count(users.current),
        "" if users is None else format_signed(users.change),
        "" if statuses is None else format_count(statuses.current),
        "" if statuses is None else format_signed(statuses.change),
        "" if line.active_month is None else format_count(line.active_month),
        "" if line.last_week is None else week_note(line.last_week),
    ]


def _markdown_tag(line: TagLine) -> list[str]:
    """The table cells of one hashtag."""
    change = ""
    if line.change is not None:
        change = format_signed(line.change)
        if line.percent is not None:
            change += f" ({format_percent(line.percent)})"
    notes = [n for n in tag_notes(line)[1:] if not n.endswith("accounts a day")]
    return [
        escape_markdown(f"#{line.name}"),
        escape_markdown(line.host),
        "" if line.uses is None else format_count(line.uses),
        change,
        "" if line.accounts_per_day is None else f"{line.accounts_per_day:,.1f}",
        escape_markdown("; ".join(notes) if line.uses is not None else "no day known"),
    ]


def render_markdown(report: Report) -> str:
    """The report as Markdown: a heading, a summary, a table, and silent accounts if any."""
    header = ["Account", "Followers", "Change", "%", "Per day", "Following", "Posts", "Next"]
    align = ["---", "---:", "---:", "---:", "---:", "---:", "---:", "---"]
    out = [
        f"# {report_title(report)}",
        "",
        f"Generated {format_minute(report.generated_at)}. {_totals(report)}{shown_note(report)}.",
        "",
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
    ]
    out += ["| " + " | ".join(_markdown_row(line)) + " |" for line in report.accounts]
    if report.instances:
        out += ["", "## Instances", ""]
        out.append(
            "| Instance | Software | Users | Change | Posts | Change | Active (month) |"
            " Last complete week |"
        )
        out.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
        out += ["| " + " | ".join(_markdown_instance(i)) + " |" for i in report.instances]
    if report.tags:
        out += ["", "## Hashtags", ""]
        out.append("| Hashtag | Instance | Uses | Change | Accounts a day | Notes |")
        out.append("| --- | --- | ---: | ---: | ---: | --- |")
        out += ["| " + " | ".join(_markdown_tag(line)) + " |" for line in report.tags]
    out += engagement_markdown(report.engagement)
    if report.silent:
        out += ["", "## Silent accounts", ""]
        out.append(f"No post for more than {report.silent_after_days} days:")
        out.append("")
        out += [
            f"- {escape_markdown('@' + line.handle)}: {silence_note(line)}"
            for line in report.silent
        ]
    return "\n".join(out) + "\n"


# --- CSV -------------------------------------------------------------------------------------


def csv_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _flag(value: bool) -> str:  # noqa: FBT001 - a cell's value, not an option
    """``true`` or ``false``."""
    return "true" if value else "false"


def _cell(value: float | date | datetime | None) -> str:
    """A machine-friendly cell: numbers as Python writes them, ISO times, empty for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    # Numbers come from our own ints and floats, never from user text, so a leading "-" is a
    # sign, not a formula: they are left as numbers.
    return repr(value)


def _movement_cells(movement: Movement | None) -> list[str]:
    """current, change, percent, per_day."""
    if movement is None:
        return ["", "", "", ""]
    values = (movement.current, movement.change, movement.percent, movement.per_day)
    return [_cell(v) for v in values]


def render_csv(report: Report) -> str:
    """One header row (``CSV_COLUMNS``) and one row per shown account, LF line ends."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for line in report.accounts:
        milestone = line.milestone
        writer.writerow(
            [
                csv_safe(line.handle),
                csv_safe(line.display_name or ""),
                _cell(line.measured_at),
                _cell(line.base_at),
                _flag(line.partial),
                *_movement_cells(line.followers),
                *_movement_cells(line.following),
                *_movement_cells(line.statuses),
                _cell(line.trend_per_day),
                "" if milestone is None else _cell(milestone.followers),
                "" if milestone is None else _cell(milestone.eta),
                _cell(line.last_status_at),
                _cell(line.days_since_post),
                _flag(line.silent),
            ]
        )
    return buffer.getvalue()


# --- JSON ------------------------------------------------------------------------------------


def _json_time(moment: datetime | None) -> str | None:
    """ISO 8601 with ``Z``, or None."""
    return None if moment is None else _iso(moment)


def _json_movement(movement: Movement | None) -> JSONValue:
    """``{"start", "current", "change", "percent", "per_day"}`` or None."""
    if movement is None:
        return None
    return {
        "start": movement.start,
        "current": movement.current,
        "change": movement.change,
        "percent": movement.percent,
        "per_day": movement.per_day,
    }


def _json_account(line: AccountLine) -> dict[str, JSONValue]:
    """One account as JSON values."""
    milestone = line.milestone
    return {
        "handle": line.handle,
        "display_name": line.display_name,
        "has_data": line.has_data,
        "measured_at": _json_time(line.measured_at),
        "base_at": _json_time(line.base_at),
        "partial": line.partial,
        "followers": _json_movement(line.followers),
        "following": _json_movement(line.following),
        "statuses": _json_movement(line.statuses),
        "trend_per_day": line.trend_per_day,
        "next_milestone": None
        if milestone is None
        else {"followers": milestone.followers, "eta": _json_time(milestone.eta)},
        "last_status_at": None if line.last_status_at is None else line.last_status_at.isoformat(),
        "days_since_post": line.days_since_post,
        "silent": line.silent,
    }


def render_json(report: Report) -> dict[str, JSONValue]:
    """The report as a dict of JSON values, ready for ``json.dumps``; handles without ``@``."""
    return {
        "since": _iso(report.since),
        "until": _iso(report.until),
        "generated_at": _iso(report.generated_at),
        "sort": report.sort,
        "silent_after_days": report.silent_after_days,
        "totals": {
            "accounts": report.account_count,
            "accounts_with_data": report.accounts_with_data,
            "followers": report.total_followers,
            "followers_change": report.total_followers_change,
        },
        "accounts": [_json_account(line) for line in report.accounts],
        "silent": [line.handle for line in report.silent],
        "instances": [_json_instance(line) for line in report.instances],
        "tags": [_json_tag(line) for line in report.tags],
        "engagement": [engagement_json(line) for line in report.engagement],
    }


def _json_so_far(so_far: tuple[date, int, int] | None) -> JSONValue:
    if so_far is None:
        return None
    day, uses, accounts = so_far
    return {"day": day.isoformat(), "uses": uses, "accounts": accounts}


def _json_tag(line: TagLine) -> dict[str, JSONValue]:
    return {
        "name": line.name,
        "host": line.host,
        "days": line.days,
        "days_known": line.days_known,
        "uses": line.uses,
        "uses_before": line.before,
        "change": line.change,
        "percent": line.percent,
        "accounts_per_day": line.accounts_per_day,
        "busiest": None
        if line.busiest is None
        else {"day": line.busiest[0].isoformat(), "uses": line.busiest[1]},
        "so_far": None
        if line.so_far is None
        else {
            "day": line.so_far[0].isoformat(),
            "uses": line.so_far[1],
            "accounts": line.so_far[2],
        },
        "failures": line.failures,
        "last_error": line.last_error,
    }


def _json_instance(line: InstanceLine) -> dict[str, JSONValue]:
    week = line.last_week
    return {
        "host": line.host,
        "software": line.software,
        "version": line.version,
        "measured_at": _json_time(line.measured_at),
        "up": line.up,
        "partial": line.partial,
        "users": _json_movement(line.users),
        "statuses": _json_movement(line.statuses),
        "active_month": line.active_month,
        "last_complete_week": None
        if week is None
        else {
            "week_start": week.week_start.isoformat(),
            "statuses": week.statuses,
            "logins": week.logins,
            "registrations": week.registrations,
        },
    }
