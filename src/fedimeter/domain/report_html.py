"""A ``Report`` as one self-contained HTML page with a small chart per account. Pure.

The page says what the text report says (see ``report_render``), laid out as a table: one row
per account with its followers, following and posts, each with its change and percent when
they moved, the followers' pace per day, the next milestone and its date, the day it was
measured, and a sparkline of its followers over the period; then the silent accounts.

It is one document that needs nothing else: inline CSS, inline SVG, no script and no URL of any
kind (fonts, images, style sheets), so it renders offline, from a file and in mail clients.
Its Content-Security-Policy tells browsers to load nothing even if something slipped in.
Colours come in a light and a dark scheme (``prefers-color-scheme``), and never carry meaning
alone: a change also has its sign and an arrow. On a narrow screen the table scrolls sideways
with the account column kept in view.

Everything that comes from the data (handles, display names: other people choose those) is
escaped with ``html.escape`` and isolated with ``<bdi>`` so right-to-left names cannot reorder
the text around them. Numbers are formatted by ``report_render``'s helpers, as in every
other format.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from fedimeter.domain.engagement_report import engagement_html
from fedimeter.domain.report_render import (
    counted,
    format_count,
    format_day,
    format_minute,
    format_percent,
    format_rate,
    format_signed,
    report_title,
    shown_note,
    silence_note,
    software_label,
    tag_notes,
    week_note,
)

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from fedimeter.domain.instance_report import InstanceLine
    from fedimeter.domain.report import AccountLine, Movement, Report
    from fedimeter.domain.tag_report import TagLine

__all__ = ["SPARKLINE_HEIGHT", "SPARKLINE_WIDTH", "render_html", "sparkline_points"]

#: The sparkline's viewBox, in CSS pixels at its natural size.
SPARKLINE_WIDTH = 120
SPARKLINE_HEIGHT = 28
#: Room kept free at each edge so the stroke and the end dot are not cut by the box.
_SPARKLINE_PAD = 3.0
#: How many cells an account row has after the account itself (a no-data row spans them).
_DATA_COLUMNS = 6

# Plain colours rather than custom properties: several mail clients drop var(). The SVG
# elements carry the light colours as attributes too, for clients that drop <style>.
_CHART_COLOUR = "#0969da"
_STYLE = """
:root{color-scheme:light dark}
body{margin:0;padding:24px 16px;background:#ffffff;color:#1f2328;
font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1080px;margin:0 auto}
h1{font-size:1.4rem;line-height:1.25;margin:0 0 .3rem}
h2{font-size:1.1rem;margin:1.75rem 0 .4rem}
p{margin:0 0 .75rem}
.day{white-space:nowrap}
.meta,.handle,.sub,thead th,.nodata{color:#59636e}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:1rem 0}
td.notes{white-space:normal;text-align:left;min-width:14rem}
thead th.wrap{white-space:normal}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
th,td{padding:.5rem .55rem;border-bottom:1px solid #d1d9e0;text-align:right;
vertical-align:top;white-space:nowrap}
thead th{font-size:.8rem;font-weight:600;border-bottom:2px solid #d1d9e0;vertical-align:bottom}
tbody th,thead th:first-child{text-align:left}
tbody th{font-weight:400;white-space:normal;min-width:10rem;max-width:16rem;
overflow-wrap:break-word;position:sticky;left:0;background:#ffffff}
.name{display:block;font-weight:600}
.handle,.sub,.delta{display:block;font-size:.82rem}
.total .delta{display:inline;font-size:inherit}
.tag{display:inline-block;margin-top:.2rem;padding:0 .45em;border:1px solid #bf8700;
border-radius:.6em;color:#7d4e00;font-size:.75rem;white-space:nowrap}
.up{color:#1a7f37}
.down{color:#d1242f}
td.chart{padding-top:.55rem;padding-left:1rem}
.spark{display:block;margin-left:auto}
.nodata{text-align:left;font-style:italic}
.silent li{margin:.2rem 0}
@media (prefers-color-scheme:dark){
body,tbody th{background:#0d1117;color:#e6edf3}
.meta,.handle,.sub,thead th,.nodata{color:#9198a1}
th,td,thead th{border-color:#3d444d}
.tag{border-color:#9e6a03;color:#e3b341}
.up{color:#3fb950}
.down{color:#f85149}
.spark polyline{stroke:#4493f8}
.spark circle{fill:#4493f8}
}
@media (max-width:600px){
body{padding:16px 10px;font-size:14px}
h1{font-size:1.25rem}
th,td{padding:.4rem .45rem}
tbody th{min-width:7rem;max-width:9rem}
}
"""
# Loads nothing from anywhere: styles are inline, the charts are inline SVG.
_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_UP = "\u25b2"  # ▲
_DOWN = "\u25bc"  # ▼


def _text(value: str) -> str:
    """``value`` safe as element text and inside a double-quoted attribute."""
    return html.escape(value, quote=True)


def _coordinate(value: float) -> str:
    """A coordinate to a tenth of a pixel, without a trailing ``.0``."""
    return f"{value:.1f}".removesuffix(".0")


def sparkline_points(points: Sequence[tuple[datetime, int]]) -> list[tuple[float, float]]:
    """Where ``(time, value)`` points go in the sparkline's viewBox, oldest first.

    Time runs left to right in proportion (a gap in the samples shows as a longer segment);
    the highest value touches the top edge (less the padding), the lowest the bottom. A flat
    series lies across the middle, and a single point sits in the centre. When every point
    has the same time they are spread evenly instead.

    Returns:
        One ``(x, y)`` per point, in the order given; empty for no points.
    """
    if not points:
        return []
    if len(points) == 1:
        return [(SPARKLINE_WIDTH / 2, SPARKLINE_HEIGHT / 2)]
    inner_width = SPARKLINE_WIDTH - 2 * _SPARKLINE_PAD
    inner_height = SPARKLINE_HEIGHT - 2 * _SPARKLINE_PAD
    first = points[0][0]
    span = (points[-1][0] - first).total_seconds()
    if span > 0:
        xs = [(t - first).total_seconds() / span for t, _ in points]
    else:
        xs = [i / (len(points) - 1) for i in range(len(points))]
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    ys = [0.5 if high == low else (high - v) / (high - low) for _, v in points]
    return [
        (_SPARKLINE_PAD + x * inner_width, _SPARKLINE_PAD + y * inner_height)
        for x, y in zip(xs, ys, strict=True)
    ]


def _sparkline(line: AccountLine) -> str:
    """The followers' sparkline as inline SVG, or nothing without samples."""
    values = [(point.taken_at, point.followers) for point in line.series]
    placed = sparkline_points(values)
    if not placed:
        return ""
    first, last = format_count(values[0][1]), format_count(values[-1][1])
    label = f"followers from {first} to {last}" if len(values) > 1 else f"followers: {last}"
    end_x, end_y = (_coordinate(c) for c in placed[-1])
    dot = f'<circle cx="{end_x}" cy="{end_y}" r="2.2" fill="{_CHART_COLOUR}"></circle>'
    polyline = ""
    if len(placed) > 1:
        path = " ".join(f"{_coordinate(x)},{_coordinate(y)}" for x, y in placed)
        polyline = (
            f'<polyline points="{path}" fill="none" stroke="{_CHART_COLOUR}"'
            ' stroke-width="1.6" stroke-linejoin="round" stroke-linecap="round"></polyline>'
        )
    return (
        f'<svg class="spark" role="img" aria-label="{_text(label)}"'
        f' viewBox="0 0 {SPARKLINE_WIDTH} {SPARKLINE_HEIGHT}"'
        f' width="{SPARKLINE_WIDTH}" height="{SPARKLINE_HEIGHT}">'
        f"<title>{_text(label)}</title>{polyline}{dot}</svg>"
    )


def _delta(change: int, percent: float | None) -> str:
    """``▲ +56 (+4.7%)`` in green or ``▼ -3`` in red; nothing when the count did not move."""
    if not change:
        return ""
    arrow, direction = (_UP, "up") if change > 0 else (_DOWN, "down")
    moved = format_signed(change)
    if percent is not None:
        moved += f" ({format_percent(percent)})"
    # The arrow repeats the sign for the eye; screen readers read the sign and skip it.
    return (
        f'<span class="delta {direction}"><span aria-hidden="true">{arrow}</span>'
        f" {_text(moved)}</span>"
    )


def _count_cell(movement: Movement) -> str:
    """A count with its change under it when it moved."""
    return f"<td>{format_count(movement.current)}{_delta(movement.change, movement.percent)}</td>"


def _account_cell(line: AccountLine) -> str:
    """The row's header: display name, handle, and the partial marker."""
    # A long handle may wrap before its domain rather than anywhere inside a word.
    user, at, domain = line.handle.partition("@")
    handle = f"@{_text(user)}<wbr>{at}{_text(domain)}"
    if line.display_name:
        who = (
            f'<bdi class="name">{_text(line.display_name)}</bdi><bdi class="handle">{handle}</bdi>'
        )
    else:  # the handle is the name, and as prominent as a name would be
        who = f'<bdi class="name">{handle}</bdi>'
    tag = ""
    if line.partial and line.base_at is not None:
        tag = (
            '<span class="tag" title="added during the period: changes start from its first'
            f' sample">partial, from {format_day(line.base_at)}</span>'
        )
    return f'<th scope="row">{who}{tag}</th>'


def _milestone_cell(line: AccountLine) -> str:
    """The next milestone and, when the trend gives one, the date it is expected."""
    milestone = line.milestone
    if milestone is None:
        return "<td></td>"
    eta = ""
    if milestone.eta is not None:
        eta = f'<span class="sub">around {format_day(milestone.eta)}</span>'
    return f"<td>{format_count(milestone.followers)}{eta}</td>"


def _row(line: AccountLine) -> str:
    """One account's table row."""
    followers, following, statuses = line.followers, line.following, line.statuses
    if followers is None or following is None or statuses is None or line.measured_at is None:
        return (
            f'<tr>{_account_cell(line)}<td class="nodata" colspan="{_DATA_COLUMNS}">no data</td>'
            "</tr>"
        )
    pace = ""
    if followers.per_day is not None:
        pace = f'<span class="sub">{format_rate(followers.per_day)} a day</span>'
    cells = [
        _account_cell(line),
        _count_cell(followers),
        f'<td class="chart">{_sparkline(line)}{pace}</td>',
        _count_cell(following),
        _count_cell(statuses),
        _milestone_cell(line),
        f"<td>{format_day(line.measured_at)}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _table(report: Report) -> list[str]:
    """The accounts' table, or nothing when the report has no account."""
    if not report.accounts:
        return []
    headers = [
        "Account",
        "Followers",
        "Over the period",
        "Following",
        "Posts",
        "Next milestone",
        "Measured",
    ]
    return [
        '<div class="scroll">',
        "<table>",
        "<thead><tr>" + "".join(f'<th scope="col">{h}</th>' for h in headers) + "</tr></thead>",
        "<tbody>",
        *(_row(line) for line in report.accounts),
        "</tbody>",
        "</table>",
        "</div>",
    ]


def _instance_row(line: InstanceLine) -> str:
    """One instance's table row."""
    software = software_label(line)
    who = f'<bdi class="name">{_text(line.host)}</bdi>'
    if software:
        who += f'<bdi class="handle">{_text(software)}</bdi>'
    if line.up is False:
        who += '<span class="tag">down when last measured</span>'
    header = f'<th scope="row">{who}</th>'
    if line.measured_at is None:
        return f'<tr>{header}<td class="nodata" colspan="5">no data</td></tr>'
    cells = [
        header,
        "<td></td>" if line.users is None else _count_cell(line.users),
        "<td></td>" if line.statuses is None else _count_cell(line.statuses),
        f"<td>{'' if line.active_month is None else format_count(line.active_month)}</td>",
        '<td class="notes">'
        + ("" if line.last_week is None else _text(week_note(line.last_week)))
        + "</td>",
        f"<td>{format_day(line.measured_at)}</td>",
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _instances(report: Report) -> list[str]:
    """The instances' table, or nothing when no instance is tracked."""
    if not report.instances:
        return []
    headers = ["Instance", "Users", "Posts", "Active (month)", "Last complete week", "Measured"]
    return [
        '<section class="instances">',
        "<h2>Instances</h2>",
        '<div class="scroll">',
        "<table>",
        "<thead><tr>" + "".join(f'<th scope="col">{h}</th>' for h in headers) + "</tr></thead>",
        "<tbody>",
        *(_instance_row(line) for line in report.instances),
        "</tbody>",
        "</table>",
        "</div>",
        "</section>",
    ]


def _tag_row(line: TagLine) -> str:
    """One hashtag's table row."""
    who = f'<bdi class="name">#{_text(line.name)}</bdi><bdi class="handle">{_text(line.host)}</bdi>'
    header = f'<th scope="row">{who}</th>'
    if line.uses is None:
        rest = "; ".join(tag_notes(line))
        return f'<tr>{header}<td class="nodata" colspan="4">{_text(rest)}</td></tr>'
    change = ""
    if line.change is not None:
        change = format_signed(line.change)
        if line.percent is not None:
            change += f" ({format_percent(line.percent)})"
    notes = [n for n in tag_notes(line)[1:] if not n.endswith("accounts a day")]
    cells = [
        header,
        f"<td>{format_count(line.uses)}</td>",
        f"<td>{_text(change)}</td>",
        f"<td>{'' if line.accounts_per_day is None else f'{line.accounts_per_day:,.1f}'}</td>",
        f'<td class="notes">{_text("; ".join(notes))}</td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _tags(report: Report) -> list[str]:
    """The hashtags' table, or nothing when no hashtag is tracked."""
    if not report.tags:
        return []
    headers = ["Hashtag", "Uses", "Change", "Accounts a day", "Notes"]
    return [
        '<section class="tags">',
        "<h2>Hashtags</h2>",
        '<div class="scroll">',
        "<table>",
        "<thead><tr>" + "".join(f'<th scope="col">{h}</th>' for h in headers) + "</tr></thead>",
        "<tbody>",
        *(_tag_row(line) for line in report.tags),
        "</tbody>",
        "</table>",
        "</div>",
        "</section>",
    ]


def _summary(report: Report) -> str:
    """``Total: 4 accounts, 1,354 followers ▲ +304 (top 2 shown).``."""
    count = report.account_count
    change = _delta(report.total_followers_change, None)
    return (
        f'<p class="total"><strong>Total:</strong> {count} account{"" if count == 1 else "s"},'
        f" {counted(report.total_followers, 'followers')}{' ' if change else ''}{change}"
        f"{shown_note(report)}.</p>"
    )


def _silent(report: Report) -> list[str]:
    """The silent accounts, longest silence first, or nothing."""
    if not report.silent:
        return []
    items = []
    for line in report.silent:
        who = f"<bdi>@{_text(line.handle)}</bdi>"
        if line.display_name:
            who = f"<bdi>{_text(line.display_name)}</bdi> ({who})"
        items.append(f"<li>{who}: {silence_note(line)}</li>")
    return [
        '<section class="silent">',
        "<h2>Silent accounts</h2>",
        f"<p>No post for more than {report.silent_after_days} days:</p>",
        "<ul>",
        *items,
        "</ul>",
        "</section>",
    ]


def render_html(report: Report) -> str:
    """The report as one self-contained HTML5 page (inline style and SVG, no script, no URL).

    Returns:
        The document, from ``<!doctype html>`` to ``</html>`` and a final newline, ready to be
        written to a file or sent as ``text/html; charset=utf-8``.
    """
    title = _text(report_title(report))
    heading = title
    # A date's hyphens are break opportunities: on a phone "2026-" would end a line.
    for day in {format_day(report.since), format_day(report.until)}:
        heading = heading.replace(day, f'<span class="day">{day}</span>')
    out = [
        "<!doctype html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        f'<meta http-equiv="Content-Security-Policy" content="{_POLICY}">',
        f"<title>{title}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<main>",
        f"<h1>{heading}</h1>",
        f'<p class="meta">Generated {format_minute(report.generated_at)}</p>',
        _summary(report),
        *_table(report),
        *_instances(report),
        *_tags(report),
        *engagement_html(report.engagement),
        *_silent(report),
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(out) + "\n"
