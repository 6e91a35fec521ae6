"""A report's engagement section: one line per account with engagement on. Pure.

The figures are ``domain.engagement``'s over the report's period. Everything a server chose
(a status's text and link) is text from outside: the excerpt is already one plain line
(``plain_excerpt``) and the link a plain http(s) URL (``safe_url``); each renderer escapes
them for its format. The HTML report links nothing (it is mailed, and loads and links
nothing by design), so its best posts show their addresses as text.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fedimeter.domain.engagement import BestPost, EngagementFigures
    from fedimeter.domain.report_render import JSONValue

__all__ = [
    "EngagementLine",
    "engagement_html",
    "engagement_json",
    "engagement_markdown",
    "engagement_notes",
    "engagement_text",
    "figures_json",
    "plural",
]

# Characters with an inline meaning in CommonMark/GFM (as report_render's escape_markdown).
_MARKDOWN_SPECIALS = frozenset("\\`*_[]<>|~&$")
# Characters a Markdown link destination in <...> cannot hold as they are.
_URL_ESCAPES = {"<": "%3C", ">": "%3E", "\\": "%5C", "|": "%7C"}


@dataclass(frozen=True, slots=True)
class EngagementLine:
    """One account's engagement in a report."""

    #: ``user@domain``.
    handle: str
    figures: EngagementFigures
    #: Every status posted from then on was read; None before the first reading.
    covered_since: datetime | None
    #: The latest reading that answered.
    read_at: datetime | None
    #: Readings that failed in a row, and the last reason.
    failures: int = 0
    last_error: str | None = None

    @property
    def partial(self) -> bool:
        """Whether statuses of the period's start were not (all) read."""
        return self.covered_since is None or self.covered_since > self.figures.since


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"


def _one(value: float | None) -> str:
    return "" if value is None else f"{value:,.1f}"


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}%"


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``1 reply``, ``2 replies``: a count with its noun agreeing (``nouns`` if not noun + s)."""
    return f"{count:,} {noun if count == 1 else nouns or noun + 's'}"


def engagement_notes(line: EngagementLine) -> list[str]:
    """What qualifies a line's figures, in phrases (empty when nothing does)."""
    notes = []
    if line.read_at is None:
        notes.append("not read yet")
    elif line.partial and line.covered_since is not None:
        notes.append(f"statuses before {_day(line.covered_since)} not read")
    if line.figures.provisional:
        notes.append("counts still growing")
    if line.failures:
        rounds = plural(line.failures, "round")
        notes.append(f"not read for {rounds}: {line.last_error or 'no reason given'}")
    return notes


def _activity(figures: EngagementFigures) -> str:
    """``12 posts, 3 replies, 4 boosts made``."""
    replies = plural(figures.replies, "reply", "replies")
    return f"{plural(figures.posts, 'post')}, {replies}, {plural(figures.boosts, 'boost')} made"


def _received(figures: EngagementFigures) -> str:
    """``per post 5.2 favourites, 1.1 boosts, 0.8 replies; rate 1.41% of 370 followers``."""
    if not figures.own:
        return "no post of its own"
    text = (
        f"per post {_one(figures.favourites_per_post)} favourites,"
        f" {_one(figures.boosts_per_post)} boosts, {_one(figures.replies_per_post)} replies"
    )
    if figures.rate is not None and figures.followers is not None:
        text += (
            f"; engagement rate {_rate(figures.rate)} of {plural(figures.followers, 'follower')}"
        )
    return text


def _best_text(post: BestPost) -> str:
    excerpt = f' "{post.excerpt}"' if post.excerpt else ""
    where = f" {post.url}" if post.url else ""
    return f"{plural(post.interactions, 'interaction')}, {_day(post.created_at)}{excerpt}{where}"


def engagement_text(lines: Sequence[EngagementLine]) -> list[str]:
    """The plain-text section: a heading, then each account and its best posts."""
    if not lines:
        return []
    out = ["", "Engagement (posts of the period, counts as last read):"]
    for line in lines:
        figures = line.figures
        parts = [_activity(figures), _received(figures), *engagement_notes(line)]
        out.append(f"  @{line.handle}: {'; '.join(parts)}")
        out += [f"    best: {_best_text(post)}" for post in figures.best]
    return out


def _md(text: str) -> str:
    flat = " ".join(text.splitlines())
    return "".join(f"\\{c}" if c in _MARKDOWN_SPECIALS else c for c in flat)


def _md_url(url: str) -> str:
    return "".join(_URL_ESCAPES.get(c, c) for c in url)


def engagement_markdown(lines: Sequence[EngagementLine]) -> list[str]:
    """The Markdown section: a table of figures, then the best posts as links."""
    if not lines:
        return []
    out = [
        "",
        "## Engagement",
        "",
        "Posts of the period, with their counts as last read.",
        "",
        (
            "| Account | Posts | Replies | Boosts made | Favourites / post | Boosts / post"
            " | Replies / post | Engagement rate | Notes |"
        ),
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for line in lines:
        f = line.figures
        cells = [
            _md(f"@{line.handle}"),
            f"{f.posts:,}",
            f"{f.replies:,}",
            f"{f.boosts:,}",
            _one(f.favourites_per_post),
            _one(f.boosts_per_post),
            _one(f.replies_per_post),
            _rate(f.rate),
            _md("; ".join(engagement_notes(line))),
        ]
        out.append("| " + " | ".join(cells) + " |")
    best = [(line, post) for line in lines for post in line.figures.best]
    if best:
        out += ["", "Best posts:", ""]
        for line, post in best:
            label = _md(
                f"{_day(post.created_at)}, {plural(post.interactions, 'interaction')}"
                + (f": {post.excerpt}" if post.excerpt else "")
            )
            shown = f"[{label}](<{_md_url(post.url)}>)" if post.url else label
            out.append(f"- {_md(f'@{line.handle}')}: {shown}")
    return out


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def engagement_html(lines: Sequence[EngagementLine]) -> list[str]:
    """The HTML section: a table of figures and the best posts (addresses as text)."""
    if not lines:
        return []
    headers = [
        "Account",
        "Posts",
        "Replies",
        "Boosts made",
        "Favourites / post",
        "Boosts / post",
        "Replies / post",
        "Engagement rate",
        "Notes",
    ]
    rows = []
    for line in lines:
        f = line.figures
        cells = [
            f'<th scope="row"><bdi class="handle">@{_h(line.handle)}</bdi></th>',
            *(
                f"<td>{_h(value)}</td>"
                for value in (
                    f"{f.posts:,}",
                    f"{f.replies:,}",
                    f"{f.boosts:,}",
                    _one(f.favourites_per_post),
                    _one(f.boosts_per_post),
                    _one(f.replies_per_post),
                    _rate(f.rate),
                )
            ),
            f'<td class="notes">{_h("; ".join(engagement_notes(line)))}</td>',
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    out = [
        '<section class="engagement">',
        "<h2>Engagement</h2>",
        '<p class="meta">Posts of the period, with their counts as last read.</p>',
        '<div class="scroll">',
        "<table>",
        # Its headers wrap ("Favourites / post"): the table then fits the report's width.
        "<thead><tr>"
        + "".join(f'<th scope="col" class="wrap">{h}</th>' for h in headers)
        + "</tr></thead>",
        "<tbody>",
        *rows,
        "</tbody>",
        "</table>",
        "</div>",
    ]
    best = [(line, post) for line in lines for post in line.figures.best]
    if best:
        out += ["<h3>Best posts</h3>", "<ul>"]
        for line, post in best:
            excerpt = f": <q>{_h(post.excerpt)}</q>" if post.excerpt else ""
            where = f' <span class="sub">{_h(post.url)}</span>' if post.url else ""
            out.append(
                f"<li><bdi>@{_h(line.handle)}</bdi>, {_day(post.created_at)},"
                f" {_h(plural(post.interactions, 'interaction'))}{excerpt}{where}</li>"
            )
        out.append("</ul>")
    out.append("</section>")
    return out


def _best_json(post: BestPost) -> dict[str, JSONValue]:
    return {
        "id": post.id,
        "created_at": _iso(post.created_at),
        "kind": post.kind,
        "url": post.url,
        "excerpt": post.excerpt,
        "favourites": post.favourites,
        "boosts": post.boosts,
        "replies": post.replies,
        "interactions": post.interactions,
    }


def figures_json(figures: EngagementFigures) -> dict[str, JSONValue]:
    """One period's figures for programs: plain numbers, ISO times, null where unknown."""
    return {
        "since": _iso(figures.since),
        "until": _iso(figures.until),
        "posts": figures.posts,
        "replies": figures.replies,
        "boosts": figures.boosts,
        "favourites_received": figures.favourites_received,
        "boosts_received": figures.boosts_received,
        "replies_received": figures.replies_received,
        "interactions": figures.interactions,
        "favourites_per_post": figures.favourites_per_post,
        "boosts_per_post": figures.boosts_per_post,
        "replies_per_post": figures.replies_per_post,
        "interactions_per_post": figures.interactions_per_post,
        "followers": figures.followers,
        "engagement_rate": figures.rate,
        "provisional": figures.provisional,
        "best": [_best_json(post) for post in figures.best],
    }


def engagement_json(line: EngagementLine) -> dict[str, JSONValue]:
    """One account's engagement line for programs."""
    return {
        "handle": line.handle,
        **figures_json(line.figures),
        "covered_since": None if line.covered_since is None else _iso(line.covered_since),
        "read_at": None if line.read_at is None else _iso(line.read_at),
        "partial": line.partial,
        "failures": line.failures,
        "last_error": line.last_error,
    }
