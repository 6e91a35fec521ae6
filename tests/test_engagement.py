"""Engagement, the pure parts: kinds, figures, buckets, texts and links servers send, reports."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fedimeter.domain.engagement import (
    EngagementFigures,
    bucket_starts,
    engagement_buckets,
    engagement_figures,
    followers_at,
    plain_excerpt,
    safe_url,
    status_kind,
)
from fedimeter.domain.engagement_report import (
    EngagementLine,
    engagement_html,
    engagement_json,
    engagement_markdown,
    engagement_text,
)
from fedimeter.domain.report import build_report
from fedimeter.domain.report_html import render_html
from fedimeter.domain.report_render import render_json, render_markdown, render_text
from fedimeter.errors import BadResponse
from fedimeter.fediverse.statuses import next_link, parse_statuses
from fedimeter.graphs import GraphOptions
from fedimeter.graphs.engagement import engagement_figure, render_engagement

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Status:
    """A stored status, as the figures see one."""

    id: str
    created_at: datetime
    kind: str
    favourites: int = 0
    reblogs: int = 0
    replies: int = 0
    in_reply_to_id: str | None = None
    url: str | None = None
    excerpt: str = ""
    last_seen_at: datetime = T0 + 30 * DAY


@dataclass(frozen=True)
class Sample:
    """An account sample, as the figures see one."""

    taken_at: datetime
    followers: int


def week() -> list[Status]:
    """A hand-made week (see the figures test for the sums)."""
    return [
        Status("1", T0 + timedelta(hours=9), "post", 8, 2, 3, url="https://s.example/@a/1"),
        Status("2", T0 + timedelta(hours=10), "post", 1, 0, 0, in_reply_to_id="1"),
        Status("3", T0 + DAY, "reply", 2, 0, 1, in_reply_to_id="x"),
        Status("4", T0 + DAY + timedelta(hours=2), "boost", 0, 0, 0),
        Status("5", T0 + 3 * DAY, "post", 0, 0, 0),
        Status("6", T0 + 8 * DAY, "post", 40, 40, 40),  # next week
    ]


def test_kinds_follow_mastodons_profile_tabs() -> None:
    """Boosts are boosts; answers to others are replies; a thread's next part is a post."""
    assert status_kind(boost=True, in_reply_to_account_id=None, own_id="1") == "boost"
    assert status_kind(boost=False, in_reply_to_account_id="2", own_id="1") == "reply"
    assert status_kind(boost=False, in_reply_to_account_id="1", own_id="1") == "post"
    assert status_kind(boost=False, in_reply_to_account_id=None, own_id="1") == "post"


def test_a_weeks_figures_by_hand() -> None:
    """Week of T0: posts 1, 2 (her thread), 5; reply 3; boost 4. 100 followers at its end.

    Favourites 8+1+2+0 = 11, boosts 2, replies received: status 1 shows 3 but one is her
    own thread (2): 2, plus 1 on the reply: 3. Interactions 16 over 4 own: 4 per post; rate
    4 / 100 = 4 %. Best: 1 (12), 3 (3), 2 (1), 5 (0).
    """
    samples = [Sample(T0 - DAY, 90), Sample(T0 + 6 * DAY, 100), Sample(T0 + 9 * DAY, 130)]
    f = engagement_figures(week(), samples, since=T0, until=T0 + 7 * DAY, top=3)
    assert (f.posts, f.replies, f.boosts, f.own) == (3, 1, 1, 4)
    assert (f.favourites_received, f.boosts_received, f.replies_received) == (11, 2, 3)
    assert f.interactions == 16
    assert f.interactions_per_post == 4.0
    assert (f.favourites_per_post, f.boosts_per_post, f.replies_per_post) == (2.75, 0.5, 0.75)
    assert f.followers == 100
    assert f.rate == pytest.approx(4.0)
    assert [(b.id, b.interactions) for b in f.best] == [("1", 12), ("3", 3), ("2", 1)]
    assert f.best[0].replies == 2  # her own answer left out
    assert not f.provisional


def test_no_own_status_no_rate_and_no_followers_no_rate() -> None:
    """Only boosts: no per-post figure; own statuses but no sample: no rate; 0 followers too."""
    boosts = [Status("1", T0, "boost")]
    f = engagement_figures(boosts, [Sample(T0, 10)], since=T0, until=T0 + DAY)
    assert (f.boosts, f.own, f.interactions_per_post, f.rate) == (1, 0, None, None)
    posts = [Status("1", T0, "post", 3)]
    assert engagement_figures(posts, [], since=T0, until=T0 + DAY).rate is None
    zero = engagement_figures(posts, [Sample(T0, 0)], since=T0, until=T0 + DAY)
    assert (zero.interactions_per_post, zero.rate) == (3.0, None)


def test_followers_are_those_of_the_periods_end() -> None:
    """The last sample at or before the end; a period before every sample takes the first."""
    samples = [Sample(T0, 10), Sample(T0 + DAY, 20)]
    assert followers_at(samples, T0 + DAY) == 20
    assert followers_at(samples, T0 + DAY - timedelta(seconds=1)) == 10
    assert followers_at(samples, T0 - DAY) == 10
    assert followers_at([], T0) is None


def test_a_period_is_half_open() -> None:
    """A status posted at ``until`` is the next period's; one at ``since`` is this one's."""
    statuses = [Status("1", T0, "post"), Status("2", T0 + DAY, "post")]
    f = engagement_figures(statuses, [], since=T0, until=T0 + DAY)
    assert f.posts == 1


def test_statuses_seen_by_the_latest_reading_make_a_period_provisional() -> None:
    """Own statuses the last reading found are read again: their counts may still grow."""
    read = T0 + 10 * DAY
    statuses = [replace(s, last_seen_at=read if s.id == "5" else read - DAY) for s in week()]
    until = T0 + 7 * DAY
    assert engagement_figures(statuses, [], since=T0, until=until, read_at=read).provisional
    assert not engagement_figures(statuses, [], since=T0, until=until, read_at=None).provisional
    only_old = engagement_figures(statuses, [], since=T0, until=T0 + 2 * DAY, read_at=read)
    assert not only_old.provisional


def test_days_and_weeks_add_up_to_the_period() -> None:
    """Day buckets tile the period (cut at both ends); their counts sum to the period's."""
    since, until = T0 + timedelta(hours=6), T0 + 9 * DAY
    days = engagement_buckets(week(), [], since=since, until=until, by="day")
    whole = engagement_figures(week(), [], since=since, until=until)
    assert days[0].since == since
    assert days[-1].until == until
    assert all(a.until == b.since for a, b in itertools.pairwise(days))
    assert len(days) == 9
    for name in ("posts", "replies", "boosts", "favourites_received", "replies_received"):
        assert sum(getattr(d, name) for d in days) == getattr(whole, name), name
    weeks = engagement_buckets(week(), [], since=since, until=until, by="week")
    assert [w.since for w in weeks] == [since, T0 + 7 * DAY]
    assert [w.posts for w in weeks] == [3, 1]
    assert days[0].replies_received == 2  # the thread's answer is found on its own day too


def test_bucket_starts_refuse_nonsense() -> None:
    """Weeks start on Mondays; an unknown bucket or an empty period is refused."""
    assert bucket_starts(T0 + 2 * DAY, T0 + 9 * DAY, "week") == [T0, T0 + 7 * DAY]
    with pytest.raises(ValueError, match="day or week"):
        bucket_starts(T0, T0 + DAY, "month")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start before"):
        engagement_figures([], [], since=T0, until=T0)


@pytest.mark.parametrize(
    ("content", "spoiler", "excerpt"),
    [
        ("<p>Hello <b>world</b></p><p>again</p>", "", "Hello world again"),
        ("<p>a &lt;b&gt; &amp; c</p>", "", "a <b> & c"),
        ("<p>line<br>break</p>", "", "line break"),
        ("<p>secret</p>", "spoilers", "CW: spoilers"),
        ("<p>\u202eevil\u202c text\x07</p>", "", "evil text"),
        ("<p>" + "x" * 200 + "</p>", "", "x" * 119 + "\u2026"),
        ("", "", ""),
    ],
)
def test_excerpts_are_one_plain_line(content: str, spoiler: str, excerpt: str) -> None:
    """Tags dropped, entities decoded, controls and overrides out, cut with an ellipsis."""
    assert plain_excerpt(content, spoiler) == excerpt


@given(st.text(max_size=300), st.text(max_size=30))
def test_an_excerpt_is_always_one_short_line(content: str, spoiler: str) -> None:
    """Whatever a server sends, the excerpt is one line of at most 120 characters."""
    text = plain_excerpt(content, spoiler)
    assert len(text) <= 120
    assert "\n" not in text
    assert "\r" not in text


@pytest.mark.parametrize(
    ("url", "kept"),
    [
        ("https://social.example/@alice/1", True),
        ("http://127.0.0.1:8080/@a/1", True),
        ("javascript:alert(1)", False),
        ("https://social.example/@a b", False),
        ("https://social.example/\u202e", False),
        ("//social.example/x", False),
        ("ftp://social.example/x", False),
        (None, False),
        (42, False),
    ],
)
def test_only_plain_http_links_are_kept(url: object, kept: bool) -> None:
    """A link that would run script, or hide something, is dropped, never escaped."""
    assert safe_url(url) == (url if kept else None)


# -- what servers send ---------------------------------------------------------------------


def status_json(**changes: object) -> dict[str, object]:
    """A Mastodon status entity with the fields the figures read."""
    body: dict[str, object] = {
        "id": "110",
        "created_at": "2026-03-02T09:00:00.000Z",
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "reblog": None,
        "visibility": "public",
        "replies_count": 1,
        "reblogs_count": 2,
        "favourites_count": 3,
        "spoiler_text": "",
        "content": "<p>Hi</p>",
        "url": "https://s.example/@a/110",
        "uri": "https://s.example/users/a/statuses/110",
    }
    body.update(changes)
    return body


def test_statuses_are_read_into_kinds_counts_and_links() -> None:
    """A post, a reply to another, a thread part and a boost (with the boosted post's link)."""
    boosted = status_json(id="99", url="https://o.example/@b/99", content="<p>Theirs</p>")
    page = [
        status_json(),
        status_json(id="111", in_reply_to_id="7", in_reply_to_account_id="2"),
        status_json(id="112", in_reply_to_id="110", in_reply_to_account_id="1"),
        status_json(id="113", reblog=boosted, content="", url=None, favourites_count=0),
    ]
    post, reply, thread, boost = parse_statuses(page, own_id="1", host="s.example")
    assert (post.kind, post.favourites, post.reblogs, post.replies) == ("post", 3, 2, 1)
    assert post.created_at == T0 + timedelta(hours=9)
    assert (reply.kind, reply.in_reply_to_id) == ("reply", "7")
    assert (thread.kind, thread.in_reply_to_id) == ("post", "110")
    assert (boost.kind, boost.url, boost.excerpt) == ("boost", "https://o.example/@b/99", "Theirs")


@pytest.mark.parametrize(
    ("page", "why"),
    [
        ({"error": "x"}, "not a list"),
        (["x"], "a string where a status belongs"),
        ([status_json(id=None)], "not a usable id"),
        ([status_json(created_at="yesterday")], "created_at"),
        ([status_json(favourites_count=-1)], "not a count"),
        ([status_json(reblogs_count=True)], "not a count"),
        ([status_json(replies_count="3")], "not a count"),
        ([status_json(reblog="yes")], "reblog"),
    ],
)
def test_statuses_that_cannot_be_counted_are_refused(page: object, why: str) -> None:
    """Figures built on garbage would be garbage: the whole page is a BadResponse."""
    with pytest.raises(BadResponse, match=why):
        parse_statuses(page, own_id="1", host="s.example")


def test_leniency_where_only_reports_care() -> None:
    """Missing counts are 0; a bad link or text is dropped, not fatal."""
    (status,) = parse_statuses(
        [status_json(favourites_count=None, url="javascript:x", uri=None, content=5)],
        own_id="1",
        host="s.example",
    )
    assert (status.favourites, status.url, status.excerpt) == (0, None, "")


@pytest.mark.parametrize(
    ("header", "url"),
    [
        (
            (
                '<https://s.example/a?max_id=1>; rel="next",'
                ' <https://s.example/a?min_id=9>; rel="prev"'
            ),
            "https://s.example/a?max_id=1",
        ),
        ('<https://s.example/a?min_id=9>; rel="prev"', None),
        ("<https://s.example/a?max_id=1>; rel=next", "https://s.example/a?max_id=1"),
        ('<https://s.example/a?max_id=1>; rel="prev next"', "https://s.example/a?max_id=1"),
        ("", None),
        (None, None),
        ("garbage", None),
    ],
)
def test_the_next_page_comes_from_the_link_header(header: str | None, url: str | None) -> None:
    """Only ``rel="next"`` counts, quoted or not, among other relations."""
    assert next_link(header) == url


# -- reports ---------------------------------------------------------------------------------


def line(**changes: object) -> EngagementLine:
    """A report line with a best post whose text and link try to break out of every format."""
    figures = engagement_figures(
        [
            Status(
                "1",
                T0,
                "post",
                5,
                1,
                0,
                url="https://s.example/@a/1?x=<b>|)",
                excerpt="<script>*bold* | [x](y) & `code`",
            )
        ],
        [Sample(T0, 50)],
        since=T0,
        until=T0 + 7 * DAY,
    )
    values: dict[str, object] = {
        "handle": "a_b@s.example",
        "figures": figures,
        "covered_since": T0 - DAY,
        "read_at": T0 + 7 * DAY,
    }
    values.update(changes)
    return EngagementLine(**values)  # type: ignore[arg-type]


def test_text_section() -> None:
    """Activity, per-post figures, rate and followers, then the best posts with links."""
    out = engagement_text([line()])
    assert out[1] == "Engagement (posts of the period, counts as last read):"
    assert out[2] == (
        "  @a_b@s.example: 1 post, 0 replies, 0 boosts made; per post 5.0 favourites,"
        " 1.0 boosts, 0.0 replies; engagement rate 12.00% of 50 followers"
    )
    assert out[3].startswith("    best: 6 interactions, 2026-03-02 ")
    assert engagement_text([]) == []


def test_notes_say_what_qualifies_the_figures() -> None:
    """Not read yet, read from a later day, still growing, failing."""
    assert "not read yet" in engagement_text([line(read_at=None)])[2]
    later = engagement_text([line(covered_since=T0 + DAY)])[2]
    assert "statuses before 2026-03-03 not read" in later
    failing = engagement_text([line(failures=2, last_error="boom")])[2]
    assert "not read for 2 rounds: boom" in failing


def test_markdown_escapes_what_servers_send() -> None:
    """Text escaped; the link in angle brackets, with <, >, | and backslash percent-encoded."""
    out = "\n".join(engagement_markdown([line()]))
    assert "| @a\\_b@s.example | 1 | 0 | 0 | 5.0 | 1.0 | 0.0 | 12.00% |" in out
    assert "(<https://s.example/@a/1?x=%3Cb%3E%7C)>)" in out
    assert "\\<script\\>\\*bold\\* \\| \\[x\\](y) \\& \\`code\\`" in out
    assert "<script>" not in out


def test_html_escapes_and_links_nothing() -> None:
    """Every server text escaped; no href: the HTML report links and loads nothing."""
    out = "\n".join(engagement_html([line()]))
    assert "&lt;script&gt;" in out
    assert "<script" not in out
    assert "href" not in out
    assert "https://s.example/@a/1?x=&lt;b&gt;|)" in out


def test_json_line() -> None:
    """Plain numbers, ISO times with Z, the best post with its figures."""
    data = engagement_json(line())
    assert json.loads(json.dumps(data)) == data
    assert data["handle"] == "a_b@s.example"
    assert (data["posts"], data["interactions"], data["engagement_rate"]) == (1, 6, 12.0)
    assert data["since"] == "2026-03-02T00:00:00Z"
    assert data["partial"] is False
    best = data["best"]
    assert isinstance(best, list)
    assert isinstance(best[0], dict)
    assert best[0]["interactions"] == 6


def test_reports_carry_the_section_only_with_engagement_lines() -> None:
    """Every renderer shows the section when the report has lines, and nothing otherwise."""
    report = build_report([], since=T0, until=T0 + 7 * DAY, now=T0 + 7 * DAY)
    with_lines = replace(report, engagement=(line(),))
    assert "Engagement" not in render_text(report)
    assert "Engagement" in render_text(with_lines)
    assert "## Engagement" in render_markdown(with_lines)
    assert "## Engagement" not in render_markdown(report)
    assert '<section class="engagement">' in render_html(with_lines)
    assert "engagement" not in render_html(report)
    assert render_json(report)["engagement"] == []
    assert render_json(with_lines)["engagement"] == [engagement_json(line())]


def test_the_html_tables_fit_the_report_width() -> None:
    """Notes and the instances' weeks wrap, and so do the engagement table's long headers.

    Without it the engagement table (nine columns of unbreakable cells) ran past the report's
    1,080 pixels and its notes could only be read by scrolling.
    """
    report = build_report([], since=T0, until=T0 + 7 * DAY, now=T0 + 7 * DAY)
    page = render_html(replace(report, engagement=(line(),)))
    assert "td.notes{white-space:normal" in page
    assert "thead th.wrap{white-space:normal}" in page
    assert '<th scope="col" class="wrap">Favourites / post</th>' in page
    assert '<td class="notes">' in page


def test_figures_are_frozen_values() -> None:
    """A period's figures are a value: equal inputs give equal figures."""
    a = engagement_figures(week(), [], since=T0, until=T0 + 7 * DAY)
    b = engagement_figures(list(reversed(week())), [], since=T0, until=T0 + 7 * DAY)
    assert a == b
    assert isinstance(a, EngagementFigures)


# -- graphs ----------------------------------------------------------------------------------


def _texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_a_graph_without_own_posts_says_so_and_draws_no_bar() -> None:
    """Only a boost in the week: no bar for interactions (nothing to receive is no zero)."""
    buckets = engagement_buckets([Status("1", T0, "boost")], [], since=T0, until=T0 + 7 * DAY)
    fig = engagement_figure(
        "@a@s.example",
        buckets,
        "interactions",
        by="day",
        since=T0,
        until=T0 + 7 * DAY,
        options=GraphOptions(),
    )
    assert _texts(fig) == ["No post of its own in this period"]
    activity = engagement_figure(
        "@a@s.example",
        buckets,
        "activity",
        by="day",
        since=T0,
        until=T0 + 7 * DAY,
        options=GraphOptions(),
    )
    assert _texts(activity) == []
    heights = [
        p.get_height()
        for p in activity.axes[0].patches
        if isinstance(p, Rectangle) and p.get_gid() != "provisional-key"
    ]
    assert sorted(h for h in heights if h) == [1.0]  # the one boost made


def test_growing_days_are_marked_and_the_rate_axis_is_in_percent() -> None:
    """A provisional day gets the 'still read' legend entry; the rate's ticks end in %."""
    read = T0 + 6 * DAY
    statuses = [Status("1", T0 + DAY, "post", 2, last_seen_at=read), Status("2", T0, "post", 4)]
    buckets = engagement_buckets(
        statuses, [Sample(T0, 100)], since=T0, until=T0 + 7 * DAY, read_at=read
    )
    fig = engagement_figure(
        "@a@s.example",
        buckets,
        "rate",
        by="day",
        since=T0,
        until=T0 + 7 * DAY,
        options=GraphOptions(fmt="svg"),
    )
    ax = fig.axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert "still read each round (counts growing)" in labels
    assert all(t.get_text().endswith("%") for t in ax.get_yticklabels() if t.get_text())
    assert render_engagement(
        "@a@s.example",
        buckets,
        "interactions",
        by="day",
        since=T0,
        until=T0 + 7 * DAY,
        options=GraphOptions(fmt="svg"),
    ).startswith(b"<?xml")
    with pytest.raises(ValueError, match="metric must be one of"):
        engagement_figure(
            "@a",
            buckets,
            "nope",  # type: ignore[arg-type]
            by="day",
            since=T0,
            until=T0 + DAY,
            options=GraphOptions(),
        )


def test_every_count_of_a_report_line_agrees_with_its_noun() -> None:
    """One follower, one interaction, one round: singular; "1 followers" never."""
    figures = engagement_figures(
        [Status("1", T0, "post", 1, 0, 0), Status("2", T0 + DAY, "reply", replies=0)],
        [Sample(T0, 1)],
        since=T0,
        until=T0 + 7 * DAY,
    )
    text = engagement_text([line(figures=figures, failures=1, last_error="boom")])[2]
    assert "1 post, 1 reply, 0 boosts made" in text
    assert "of 1 follower;" in text
    assert "not read for 1 round: boom" in text
    assert "followers" not in text


def test_boosts_are_never_own_posts_whatever_counts_they_carry() -> None:
    """A boost showing counts (7, 7, 7) adds nothing received and is no best post.

    The week's sums stay 11, 2, 3 (see the figures test); with room for ten best posts,
    the four own statuses only: 1 (12), 3 (3), 2 (1), 5 (0).
    """
    statuses = [
        replace(s, favourites=7, reblogs=7, replies=7) if s.kind == "boost" else s for s in week()
    ]
    f = engagement_figures(statuses, [], since=T0, until=T0 + 7 * DAY, top=10)
    assert (f.posts, f.replies, f.boosts, f.own) == (3, 1, 1, 4)
    assert (f.favourites_received, f.boosts_received, f.replies_received) == (11, 2, 3)
    assert [b.id for b in f.best] == ["1", "3", "2", "5"]


def test_best_posts_go_by_interactions_then_favourites_then_newest() -> None:
    """b: 2+10 = 12 first; a, c and d have 9 each: d and a (9 favourites, d newer), then c (3)."""
    statuses = [
        Status("a", T0 + timedelta(hours=1), "post", 9, 0, 0),
        Status("b", T0 + timedelta(hours=2), "post", 2, 10, 0),
        Status("c", T0 + timedelta(hours=3), "reply", 3, 0, 6, in_reply_to_id="x"),
        Status("d", T0 + timedelta(hours=4), "post", 9, 0, 0),
    ]
    f = engagement_figures(statuses, [], since=T0, until=T0 + DAY, top=4)
    assert [(b.id, b.interactions) for b in f.best] == [("b", 12), ("d", 9), ("a", 9), ("c", 9)]
