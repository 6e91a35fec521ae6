"""The dashboard's routes: accounts, instances, hashtags, rounds, adding, signing in and out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, File, Form, Query, Request, UploadFile
from fastapi import Path as Path_
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape

from fedimeter.api.deps import get_services
from fedimeter.domain.overview import PERIODS, SORT_KEYS, SortKey, select_rows
from fedimeter.domain.report_html import SPARKLINE_HEIGHT, SPARKLINE_WIDTH, sparkline_points
from fedimeter.domain.report_render import format_count, format_signed
from fedimeter.domain.tags import tag_key
from fedimeter.domain.when import FIRST_DAY, LAST_DAY
from fedimeter.engagement_tracking import engagement_view
from fedimeter.errors import InvalidInput, NotTracked, RoundInProgress
from fedimeter.instance_tracking import source_problems
from fedimeter.overview import Overview
from fedimeter.reporting import make_report
from fedimeter.storage.engagement import EngagementStore
from fedimeter.storage.instances import InstanceStore
from fedimeter.storage.tags import TagStore
from fedimeter.tracking import add_accounts, parse_follows_csv, summarise
from fedimeter.web.auth import COOKIE, WebAuth
from fedimeter.web.tagview import WEEK_DAYS, day_rows, tag_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from fedimeter.api.services import Services
    from fedimeter.config import Settings
    from fedimeter.domain.engagement import BestPost, Bucket
    from fedimeter.domain.overview import AccountRow
    from fedimeter.engagement_tracking import EngagementView
    from fedimeter.storage.database import Database
    from fedimeter.storage.records import SampleRecord
    from fedimeter.storage.tags import TagRecord, TrendRecord

__all__ = ["install"]

STATIC = Path(__file__).parent / "static"
#: Everything the pages load comes from this server; scripts only from files (no inline code).
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
PER_PAGE = (25, 50, 100, 200)
#: Days of followers drawn in each overview row's sparkline.
SPARK_DAYS = 30

router = APIRouter(include_in_schema=False)


@dataclass
class WebState:
    """What the pages share: templates, sessions, and the cached overview."""

    auth: WebAuth
    templates: Environment
    overview: Overview | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def rows_source(self, services: Services) -> Overview:
        """The overview over the app's repository (made on first use)."""
        if self.overview is None:
            self.overview = Overview(services.repo, services.clock)
        return self.overview


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the dashboard's pages and static files on ``app``."""
    templates = Environment(
        loader=PackageLoader("fedimeter.web", "templates"),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters["count"] = format_count
    templates.filters["signed"] = format_signed
    app.state.web = WebState(WebAuth(settings), templates)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(router)


def _web(request: Request) -> WebState:
    state: WebState = request.app.state.web
    return state


def _render(
    request: Request, template: str, status_code: int = 200, **context: object
) -> HTMLResponse:
    """A page from ``template``, with the session (made if missing) and its CSRF token."""
    web = _web(request)
    session = request.cookies.get(COOKIE)
    fresh = web.auth.session_role(session) is None
    if fresh:
        session = web.auth.new_session("guest")
    assert session is not None  # noqa: S101 - made just above
    role = web.auth.session_role(session)
    body = web.templates.get_template(template).render(
        request=request,
        role=role,
        can_write=web.auth.can_write(request),
        signed_in=role in {"read", "write"},
        csrf=web.auth.csrf_token(session),
        **context,
    )
    response = HTMLResponse(body, status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-store"
    if fresh:
        web.auth.set_cookie(response, session)
    return response


def _sign_in_first(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)


def _span(since: datetime | None, until: datetime) -> dict[str, str]:
    """A period's UTC days as the API's since/until (since empty: from the first sample)."""
    return {
        "since": since.date().isoformat() if since is not None else "",
        "until": until.date().isoformat(),
    }


# -- the overview --------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def overview(
    request: Request,
    *,
    q: Annotated[str, Query(max_length=200)] = "",
    server: Annotated[str, Query(max_length=300)] = "",
    sort: Annotated[str, Query()] = "followers",
    order: Annotated[str, Query()] = "desc",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per: Annotated[int, Query()] = 50,
) -> Response:
    """Every tracked account at a glance: counts, changes, a sparkline, state."""
    web = _web(request)
    if not web.auth.can_read(request):
        return _sign_in_first(request)
    services = get_services(request)
    source = web.rows_source(services)
    rows = await source.rows()
    sort_key: SortKey = sort if sort in SORT_KEYS else "followers"  # type: ignore[assignment]
    descending = order != "asc"
    per_page = per if per in PER_PAGE else 50
    chosen = select_rows(
        rows,
        text=q,
        server=server,
        sort=sort_key,
        descending=descending,
        page=page,
        per_page=per_page,
    )
    now = services.clock()
    sparks = await _sparklines(services, chosen.rows, source.reference)
    servers = sorted({r.account.instance_host for r in rows})
    query = {"q": q, "server": server, "sort": sort_key, "order": "desc" if descending else "asc"}
    return _render(
        request,
        "overview.html",
        title="Accounts",
        page=chosen,
        sparks=sparks,
        servers=servers,
        periods=PERIODS,
        query=query,
        per_page=per_page,
        per_page_choices=PER_PAGE,
        link=lambda **changes: _link("/", {**query, "per": per_page, **changes}),
        sort_link=lambda key: _sort_link(query, per_page, key, sort_key, descending=descending),
        sorted_by=sort_key,
        descending=descending,
        today=now.date(),
        reference=source.reference,
        stale=now - source.reference > timedelta(days=2),
    )


def _link(path: str, params: dict[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if v not in {"", None}}
    return f"{path}?{urlencode(kept)}" if kept else path


def _sort_link(
    query: dict[str, str], per_page: int, key: str, current: str, *, descending: bool
) -> str:
    """Sorting by ``key``: descending first, ascending when it is already descending."""
    order = "asc" if key == current and descending else "desc"
    if key in {"account", "server"} and key != current:
        order = "asc"  # names read best A to Z first
    return _link("/", {**query, "sort": key, "order": order, "per": per_page, "page": 1})


async def _sparklines(
    services: Services, rows: Sequence[AccountRow], until: datetime
) -> dict[int, dict[str, Any]]:
    """Each shown account's followers over SPARK_DAYS days to ``until``, placed for an SVG."""
    ids = [r.account.id for r in rows if r.latest is not None]
    if not ids:
        return {}
    histories = await services.repo.histories(ids, until - timedelta(days=SPARK_DAYS), until)
    sparks: dict[int, dict[str, Any]] = {}
    for account_id, samples in histories.items():
        sparks[account_id] = _spark(samples)
    return sparks


def _spark(samples: Sequence[SampleRecord]) -> dict[str, Any]:
    values = [(s.taken_at, s.followers) for s in samples]
    placed = sparkline_points(values)
    first, last = values[0][1], values[-1][1]
    return {
        "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in placed),
        "end": placed[-1],
        "label": (
            f"followers from {format_count(first)} to {format_count(last)}"
            if len(values) > 1
            else f"followers: {format_count(last)}"
        ),
        "width": SPARKLINE_WIDTH,
        "height": SPARKLINE_HEIGHT,
        "rising": last > first,
        "falling": last < first,
    }


# -- one account ----------------------------------------------------------------------------

#: The periods of an account's, instance's or hashtag's page: name, days (None: all).
PERIOD_CHOICES: tuple[tuple[str, int | None], ...] = (
    ("7d", 7),
    ("30d", 30),
    ("90d", 90),
    ("1y", 365),
    ("all", None),
)
#: Their links: name, query.
PERIOD_LINKS = [(name, f"?period={name}") for name, _ in PERIOD_CHOICES]
#: The days a custom period may cover are those of every date typed (domain.when).
_DAYS_SHOWN = f"Dates run from {FIRST_DAY} to {LAST_DAY}."
METRIC_NAMES = (("followers", "Followers"), ("following", "Following"), ("statuses", "Posts"))


@router.get("/accounts/{account_id}", response_class=HTMLResponse)
async def account_page(
    request: Request,
    account_id: Annotated[int, Path_(ge=1, le=2**31 - 1)],
    *,
    period: Annotated[str, Query(max_length=10)] = "30d",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> Response:
    """An account over a period: an interactive chart, the period's report, downloads."""
    web = _web(request)
    if not web.auth.can_read(request):
        return _sign_in_first(request)
    services = get_services(request)
    try:
        account = await services.repo.get_account(account_id)
    except NotTracked:
        return _missing(request, "account", account_id)
    latest = await services.repo.sample_at_or_before(account.id)
    until = latest.taken_at if latest is not None else services.clock()
    chosen, since, until, error = _period(period, start, end, until)
    samples = await services.repo.samples(account.id, since, until)
    report = await make_report(
        services.repo,
        since=_report_start(since, account.added_at, samples, until),
        until=until,
        now=services.clock(),
        accounts=[account],
    )
    line = report.accounts[0] if report.accounts else None
    span = _span(since, until)
    engagement = await _engagement(services.db, account.id, since, until)
    return _render(
        request,
        "account.html",
        status_code=422 if error else 200,
        title=account.display_name or str(account.handle),
        account=account,
        profile_url=_safe_url(account.url),
        latest=latest,
        line=line,
        samples=samples,
        chart=_chart_json(samples),
        metrics=METRIC_NAMES,
        periods=PERIOD_LINKS,
        chosen=chosen,
        start=start,
        end=end,
        error=error,
        span=span,
        downloads=_downloads(account.id, span),
        engagement=engagement,
    )


#: The most best posts an account's page lists.
BEST_POSTS_SHOWN = 5
#: Periods up to this many days are drawn a bar a day; longer ones a bar a week.
DAILY_UP_TO = 62


@dataclass(frozen=True)
class EngagementSection:
    """What an account's page shows of its engagement, when it was ever on."""

    view: EngagementView
    span: dict[str, str]
    graph: dict[str, Any]
    #: The best posts with their addresses (None: not a plain http(s) URL).
    best: list[tuple[BestPost, str | None]]


async def _engagement(
    db: Database, account_id: int, since: datetime | None, until: datetime
) -> EngagementSection | None:
    """The account's engagement over the page's period, or None when it was never on.

    A period from the start begins where the statuses read begin.
    """
    store = EngagementStore(db)
    state = await store.get(account_id)
    if state is None:
        return None
    start = since or state.covered_since or state.account.added_at
    if start >= until:
        start = until - timedelta(days=1)
    by: Bucket = "day" if (until - start).days <= DAILY_UP_TO else "week"
    view = await engagement_view(
        store, account_id, since=start, until=until, by=by, top=BEST_POSTS_SHOWN
    )
    span = {"since": start.date().isoformat(), "until": until.date().isoformat()}
    path = f"/api/v1/accounts/{account_id}/engagement/graph.svg"
    return EngagementSection(
        view=view,
        span=span,
        graph=_graph_sources(path, {**span, "by": by}),
        best=[(post, _safe_url(post.url or "")) for post in view.figures.best],
    )


def _report_start(
    since: datetime | None,
    added_at: datetime,
    samples: Sequence[SampleRecord],
    until: datetime,
) -> datetime:
    """Where an account page's report starts: the period's start, or the first sample for all.

    For "all" it is the first sample, or when tracking began if that is earlier; and always
    before ``until``: an account can be added after its newest sample was taken (samples
    imported, or taken on a simulated clock).
    """
    start = since
    if start is None:
        start = min(added_at, samples[0].taken_at) if samples else added_at
    return start if start < until else until - timedelta(days=1)


def _period(
    period: str, start: str, end: str, newest: datetime
) -> tuple[str, datetime | None, datetime, str | None]:
    """The chosen period's name, start (None: all) and end; an error for bad custom dates."""
    if start or end:
        try:
            first = date.fromisoformat(start) if start else None
            last = date.fromisoformat(end) if end else newest.date()
        except ValueError:
            return "30d", newest - timedelta(days=30), newest, "Dates are written 2026-03-01."
        if not all(FIRST_DAY <= day <= LAST_DAY for day in (first or last, last)):
            return "30d", newest - timedelta(days=30), newest, _DAYS_SHOWN
        if first is not None and first > last:
            return "30d", newest - timedelta(days=30), newest, "The start is after the end."
        since = None if first is None else datetime.combine(first, time.min, tzinfo=UTC)
        until = datetime.combine(last, time.max, tzinfo=UTC)
        return "custom", since, until, None
    days = dict(PERIOD_CHOICES).get(period, 30)
    name = period if period in dict(PERIOD_CHOICES) else "30d"
    return name, (None if days is None else newest - timedelta(days=days)), newest, None


def _chart_json(samples: Sequence[SampleRecord]) -> str:
    """The samples as columns for uPlot: Unix seconds, then one list per metric."""
    return _json_block(
        {
            "t": [int(s.taken_at.timestamp()) for s in samples],
            "followers": [s.followers for s in samples],
            "following": [s.following for s in samples],
            "statuses": [s.statuses for s in samples],
        }
    )


def _json_block(data: object) -> str:
    """JSON for a <script type="application/json"> element: "</" must not close it."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def _downloads(account_id: int, span: dict[str, str]) -> list[tuple[str, str]]:
    base = f"/api/v1/accounts/{account_id}"
    period = {k: v for k, v in span.items() if v}
    return [
        ("Samples (CSV)", _link(f"{base}/samples", {**period, "format": "csv"})),
        ("Samples (JSON)", _link(f"{base}/samples", period)),
        ("Graph (PNG)", _link(f"{base}/graph.png", {**period, "metric": "combined"})),
        ("Graph (SVG)", _link(f"{base}/graph.svg", {**period, "metric": "combined"})),
    ]


def _safe_url(url: str) -> str | None:
    """A remote server's profile URL, only if it is plain http(s)."""
    return url if url.startswith(("https://", "http://")) else None


# -- instances ------------------------------------------------------------------------------

INSTANCE_SORTS: dict[str, Callable[[Any], Any]] = {
    "host": lambda r: r[0].host,
    "software": lambda r: (r[1].software or "") if r[1] else None,
    "users": lambda r: r[1].users if r[1] else None,
    "statuses": lambda r: r[1].statuses if r[1] else None,
    "active": lambda r: r[1].active_month if r[1] else None,
    "peers": lambda r: r[1].figures.peers if r[1] else None,
    "week": lambda r: r[2].statuses if r[2] else None,
    "up": lambda r: r[1].up if r[1] else None,
}
INSTANCE_METRICS = (
    ("users", "Users"),
    ("statuses", "Posts"),
    ("active_month", "Active users (30 days)"),
    ("peers", "Known servers"),
)
WEEK_METRICS = (
    ("statuses", "Posts a week"),
    ("logins", "Logins a week"),
    ("registrations", "Sign-ups a week"),
)


@router.get("/instances", response_class=HTMLResponse)
async def instances_page(
    request: Request,
    *,
    q: Annotated[str, Query(max_length=200)] = "",
    sort: Annotated[str, Query()] = "users",
    order: Annotated[str, Query()] = "desc",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
    per: Annotated[int, Query()] = 50,
) -> Response:
    """Every tracked instance: up or down, users, posts, active users, peers, last week."""
    web = _web(request)
    if not web.auth.can_read(request):
        return _sign_in_first(request)
    services = get_services(request)
    rows = await InstanceStore(services.db).latest()
    needle = q.strip().casefold()
    if needle:
        rows = [r for r in rows if needle in r[0].host.casefold()]
    key_name = sort if sort in INSTANCE_SORTS else "users"
    key = INSTANCE_SORTS[key_name]
    descending = order != "asc"
    known = sorted((r for r in rows if key(r) is not None), key=lambda r: r[0].host)
    known.sort(key=key, reverse=descending)
    ordered = known + sorted((r for r in rows if key(r) is None), key=lambda r: r[0].host)
    per_page = per if per in PER_PAGE else 50
    pages = max(1, -(-len(ordered) // per_page))
    page = min(page, pages)
    query = {"q": q, "sort": key_name, "order": "desc" if descending else "asc", "per": per_page}

    def sort_link(name: str) -> str:
        flip = "asc" if name == key_name and descending else "desc"
        if name == "host" and name != key_name:
            flip = "asc"
        return _link("/instances", {**query, "sort": name, "order": flip, "page": 1})

    return _render(
        request,
        "instances.html",
        title="Instances",
        rows=ordered[(page - 1) * per_page : page * per_page],
        matched=len(ordered),
        page=page,
        pages=pages,
        query=query,
        sort_link=sort_link,
        link=lambda **changes: _link("/instances", {**query, **changes}),
        sorted_by=key_name,
        descending=descending,
    )


@router.get("/instances/{instance_id}", response_class=HTMLResponse)
async def instance_page(
    request: Request,
    instance_id: Annotated[int, Path_(ge=1, le=2**31 - 1)],
    *,
    period: Annotated[str, Query(max_length=10)] = "90d",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> Response:
    """An instance over time: users, posts, active users, known servers, weekly activity."""
    web = _web(request)
    if not web.auth.can_read(request):
        return _sign_in_first(request)
    services = get_services(request)
    store = InstanceStore(services.db)
    found = [row for row in await store.latest() if row[0].id == instance_id]
    if not found:
        return _missing(request, "instance", instance_id)
    instance, latest, last_week = found[0]
    newest = latest.taken_at if latest is not None else services.clock()
    chosen, since, until, error = _period(period, start, end, newest)
    samples = await store.samples(instance.id, since, until)
    weeks = await store.weeks(
        instance.id, None if since is None else since.date() - timedelta(days=7), until.date()
    )
    chart = {
        "t": [int(x.taken_at.timestamp()) for x in samples],
        "users": [x.users for x in samples],
        "statuses": [x.statuses for x in samples],
        "active_month": [x.active_month for x in samples],
        "peers": [x.figures.peers for x in samples],
    }
    week_chart = {
        "t": [int(datetime.combine(w.week_start, time.min, tzinfo=UTC).timestamp()) for w in weeks],
        "week_statuses": [w.statuses for w in weeks],
        "week_logins": [w.logins for w in weeks],
        "week_registrations": [w.registrations for w in weeks],
    }
    return _render(
        request,
        "instance.html",
        status_code=422 if error else 200,
        title=instance.host,
        instance=instance,
        latest=latest,
        last_week=last_week,
        samples=samples,
        weeks=weeks,
        chart=_json_block(chart),
        week_chart=_json_block(week_chart),
        metrics=INSTANCE_METRICS,
        week_metrics=WEEK_METRICS,
        periods=PERIOD_LINKS,
        chosen=chosen,
        start=start,
        end=end,
        error=error,
        span=_span(since, until),
        problems=source_problems(latest.sources) if latest is not None else [],
    )


# -- hashtags -------------------------------------------------------------------------------

#: Days listed on a tag's page, newest first (its CSV download has every one).
TAG_DAYS_SHOWN = 366


@router.get("/tags", response_class=HTMLResponse)
async def tags_page(request: Request, *, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    """Every tracked hashtag: its newest complete day, today so far, its week, its state."""
    web = _web(request)
    if not web.auth.can_read(request):
        return _sign_in_first(request)
    services = get_services(request)
    store = TagStore(services.db)
    latest = await store.latest()
    needle = q.strip().lstrip("#").casefold()
    if needle:
        latest = [
            row
            for row in latest
            if needle in row[0].name.casefold() or needle in row[0].key or needle in row[0].host
        ]
    today = services.clock().date()
    recent = await store.histories(
        [row[0].id for row in latest], today - timedelta(days=WEEK_DAYS), today
    )
    # Unfiltered without a search: ``latest`` holds every tracked tag already.
    trending = [] if needle else await _trending(store, [row[0] for row in latest])
    return _render(
        request,
        "tags.html",
        title="Hashtags",
        lines=tag_lines(latest, recent, today),
        query={"q": q},
        week_days=WEEK_DAYS,
        trending=trending,
        trending_shown=TRENDING_SHOWN,
    )


#: The most tags of an instance's trending list the hashtags page shows (the API has all).
TRENDING_SHOWN = 10


@dataclass(frozen=True)
class TrendingList:
    """An instance's newest recorded trending list, and which of its tags are tracked there."""

    instance_id: int
    host: str
    taken_at: datetime | None
    #: Each tag, and the id of its tracked page on that instance (None: not tracked).
    tags: list[tuple[TrendRecord, int | None]]
    #: When the trends were last read, an empty answer included (None: not known).
    checked_at: datetime | None = None

    @property
    def empty_at(self) -> datetime | None:
        """When the server last answered an empty list, if that is its newest answer."""
        if self.checked_at is None or (
            self.taken_at is not None and self.checked_at <= self.taken_at
        ):
            return None
        return self.checked_at


async def _trending(store: TagStore, tracked: Sequence[TagRecord]) -> list[TrendingList]:
    """The newest trending list of every instance whose trends are recorded, by host."""
    pages = {(t.instance_id, t.key): t.id for t in tracked}
    checked = await store.trends_checked()
    lists = []
    for instance_id, host, _ in await store.trend_instances():
        newest = await store.latest_trends(instance_id)
        lists.append(
            TrendingList(
                instance_id,
                host,
                newest[0].taken_at if newest else None,
                [(t, pages.get((instance_id, tag_key(t.name)))) for t in newest],
                checked.get(instance_id),
            )
        )
    return lists


@router.get("/tags/{tag_id}", response_class=HTMLResponse)
async def tag_page(
    request: Request,
    tag_id: Annotated[int, Path_(ge=1, le=2**31 - 1)],
    *,
    period: Annotated[str, Query(max_length=10)] = "30d",
    start: Annotated[str, Query(alias="from", max_length=10)] = "",
    end: Annotated[str, Query(alias="to", max_length=10)] = "",
) -> Response:
    """A hashtag on its instance over a period: its graph, its days, downloads."""
    web = _web(request)
    if not web.auth.can_read(request):
        return _sign_in_first(request)
    services = get_services(request)
    store = TagStore(services.db)
    found = [row for row in await store.latest() if row[0].id == tag_id]
    if not found:
        return _missing(request, "hashtag", tag_id)
    tag, done, going = found[0]
    # Like an account's page, the period ends at the newest figures: a tag not read for a
    # while shows its last days, not empty ones (the page says when it was read).
    newest = services.clock()
    last = max((r.day for r in (done, going) if r is not None), default=None)
    if last is not None and last < newest.date():
        newest = datetime.combine(last, time.max, tzinfo=UTC)
    chosen, since, until, error = _period(period, start, end, newest)
    days = await store.history(tag.id, None if since is None else since.date(), until.date())
    first = since.date() if since is not None else (days[0].day if days else until.date())
    span = {"since": first.isoformat(), "until": until.date().isoformat()}
    base = f"/api/v1/tags/{tag.id}"
    elsewhere = [t for t in await store.find(tag.key) if t.id != tag.id]
    return _render(
        request,
        "tag.html",
        status_code=422 if error else 200,
        title=f"#{tag.name} on {tag.host}",
        tag=tag,
        done=done,
        going=going,
        today=services.clock().date(),
        tag_url=_safe_url(tag.url or ""),
        rows=day_rows(
            days, first, until.date(), limit=TAG_DAYS_SHOWN, today=services.clock().date()
        ),
        shown=TAG_DAYS_SHOWN,
        elsewhere=elsewhere,
        graph=_graph_sources(f"{base}/graph.svg", span),
        compare=_graph_sources(f"{base}/graph.svg", {**span, "compare": "true"}),
        periods=PERIOD_LINKS,
        chosen=chosen,
        start=start,
        end=end,
        error=error,
        span=span,
        downloads=[
            ("Days (CSV)", _link(f"{base}/history", {**span, "format": "csv"})),
            ("Days (JSON)", _link(f"{base}/history", span)),
            ("Graph (PNG)", _link(f"{base}/graph.png", span)),
            ("Graph (SVG)", _link(f"{base}/graph.svg", span)),
        ],
    )


#: Media queries of a tag graph's sources, the first that matches wins, with their options:
#: a phone gets a graph drawn for its width (a wide one scaled down is unreadable).
GRAPH_LOOKS: tuple[tuple[str, dict[str, str]], ...] = (
    (
        "(max-width: 700px) and (prefers-color-scheme: dark)",
        {"theme": "dark", "width": "400", "height": "360"},
    ),
    ("(max-width: 700px)", {"width": "400", "height": "360"}),
    ("(prefers-color-scheme: dark)", {"theme": "dark"}),
)


def _graph_sources(path: str, params: dict[str, str]) -> dict[str, Any]:
    """A graph's ``<source>`` elements (media, address) and its default address."""
    return {
        "sources": [(media, _link(path, {**params, **look})) for media, look in GRAPH_LOOKS],
        "src": _link(path, params),
    }


# -- rounds -----------------------------------------------------------------------------

#: Failures shown per round on the runs page (the API and `fedimeter runs --id` have all).
FAILURES_SHOWN = 20


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(request: Request, started: int | None = None) -> Response:
    """The recent rounds with their figures and failures; a button to start one."""
    web = _web(request)
    if not web.auth.can_read(request):
        return _sign_in_first(request)
    services = get_services(request)
    runs = await services.repo.list_runs(20)
    failures = await services.repo.run_failures([r.id for r in runs])
    by_run: dict[int, list[Any]] = {}
    for failure in failures:
        by_run.setdefault(failure.run_id, []).append(failure)
    return _render(
        request,
        "runs.html",
        title="Rounds",
        runs=runs,
        failures=by_run,
        shown=FAILURES_SHOWN,
        started=started,
        scheduler=services.scheduler,
    )


@router.post("/runs", response_class=HTMLResponse)
async def start_round(
    request: Request, csrf: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    """Start a round now (or show the one running)."""
    refused = _write_refused(request)
    if refused is not None:
        return refused
    web = _web(request)
    if not web.auth.csrf_ok(request, csrf):
        return _render(
            request,
            "message.html",
            status_code=403,
            title="No round started",
            message="The form expired or came from another site. Please try again.",
        )
    services = get_services(request)
    try:
        run = await services.rounds.start()
    except RoundInProgress as exc:
        return _render(
            request, "message.html", status_code=409, title="No round started", message=str(exc)
        )
    web.rows_source(services).invalidate()
    return RedirectResponse(f"/runs?started={run.id}", status_code=303)


# -- managing the list ----------------------------------------------------------------------

#: At most this many handles per submission (each costs a request or two to resolve).
MAX_HANDLES = 2000
#: The largest follows export accepted (Mastodon's for 10,000 follows is about 600 KB).
MAX_UPLOAD_BYTES = 2 * 1024 * 1024


def _write_refused(request: Request) -> Response | None:
    """A sign-in redirect (or a 403 page) unless the request may change things."""
    web = _web(request)
    if web.auth.can_write(request):
        return None
    if web.auth.has_api_token:
        return _sign_in_first(request)
    return _render(  # pragma: no cover - without an API token the server is loopback-only
        request,
        "message.html",
        status_code=403,
        title="Not allowed",
        message="Changes are allowed from this machine only.",
    )


@router.get("/manage", response_class=HTMLResponse)
async def manage(request: Request) -> Response:
    """Add accounts (handles, or Mastodon's follows export); remove them from their pages."""
    refused = _write_refused(request)
    if refused is not None:
        return refused
    return _render(request, "manage.html", title="Add accounts", outcomes=None, error=None)


@router.post("/manage/add", response_class=HTMLResponse)
async def add(
    request: Request,
    csrf: Annotated[str, Form(max_length=200)] = "",
    handles: Annotated[str, Form(max_length=200_000)] = "",
    follows: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Track every handle typed and every account of an uploaded follows export."""
    refused = _write_refused(request)
    if refused is not None:
        return refused
    web = _web(request)
    if not web.auth.csrf_ok(request, csrf):
        return _manage_error(
            request, "The form expired or came from another site. Try again.", status_code=403
        )
    texts, error = await _handles_given(handles, follows)
    if error is not None:
        return _manage_error(request, error)
    services = get_services(request)
    outcomes = await add_accounts(
        services.repo,
        services.client,
        texts,
        default_scheme=services.settings.default_scheme,
        clock=services.clock,
    )
    web.rows_source(services).invalidate()
    return _render(
        request,
        "manage.html",
        title="Add accounts",
        outcomes=outcomes,
        summary=summarise(outcomes),
        error=None,
    )


async def _handles_given(handles: str, follows: UploadFile | None) -> tuple[list[str], str | None]:
    """The handles typed and those of the uploaded export, once each; or why there are none."""
    texts = [t for t in re.split(r"[\s,]+", handles) if t]
    if follows is not None and follows.filename:
        content = await follows.read(MAX_UPLOAD_BYTES + 1)
        if len(content) > MAX_UPLOAD_BYTES:
            return [], "The file is larger than 2 MB: is it a follows export?"
        try:
            texts += parse_follows_csv(content.decode("utf-8", errors="replace"))
        except InvalidInput as exc:
            return [], f"The file could not be read: {exc}."
    texts = list(dict.fromkeys(texts))
    if not texts:
        return [], "Type at least one handle, or choose a follows export."
    if len(texts) > MAX_HANDLES:
        return [], f"{len(texts)} handles at once is too many: at most {MAX_HANDLES}."
    return texts, None


def _manage_error(request: Request, message: str, status_code: int = 422) -> Response:
    return _render(
        request,
        "manage.html",
        status_code=status_code,
        title="Add accounts",
        outcomes=None,
        error=message,
    )


@router.get("/accounts/{account_id}/remove", response_class=HTMLResponse)
async def confirm_remove(
    request: Request, account_id: Annotated[int, Path_(ge=1, le=2**31 - 1)]
) -> Response:
    """Ask before removing: keep the history, or delete it too."""
    refused = _write_refused(request)
    if refused is not None:
        return refused
    services = get_services(request)
    try:
        account = await services.repo.get_account(account_id)
    except NotTracked:
        return _missing(request, "account", account_id)
    samples = await services.repo.samples(account.id, None, None)
    return _render(
        request, "remove.html", title="Remove an account", account=account, samples=len(samples)
    )


@router.post("/accounts/{account_id}/remove", response_class=HTMLResponse)
async def remove(
    request: Request,
    account_id: Annotated[int, Path_(ge=1, le=2**31 - 1)],
    csrf: Annotated[str, Form(max_length=200)] = "",
    purge: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """Stop tracking (history kept), or delete the account and its history with ``purge``."""
    refused = _write_refused(request)
    if refused is not None:
        return refused
    web = _web(request)
    if not web.auth.csrf_ok(request, csrf):
        return _render(
            request,
            "message.html",
            status_code=403,
            title="Not removed",
            message="The form expired or came from another site. Please try again.",
        )
    services = get_services(request)
    try:
        account = await services.repo.get_account(account_id)
    except NotTracked:
        return _missing(request, "account", account_id)
    if purge == "yes":
        deleted = await services.repo.delete_account(account.id)
        message = f"{account.handle} is no longer tracked; its {deleted} samples were deleted."
    else:
        await services.repo.untrack_account(account.id, services.clock())
        message = f"{account.handle} is no longer tracked; its history is kept."
    web.rows_source(services).invalidate()
    return _render(request, "message.html", title="Removed", message=message)


def _missing(request: Request, what: str, item_id: int) -> Response:
    """The 404 page for an id that names no tracked account, instance or hashtag."""
    return _render(
        request,
        "message.html",
        status_code=404,
        title=f"No such {what}",
        message=f"No tracked {what} has the id {item_id}.",
    )


# -- signing in and out --------------------------------------------------------------------


@router.get("/login", response_class=HTMLResponse)
async def login_form(request: Request, next: str = "/") -> Response:  # noqa: A002 - the query name
    """The sign-in form: the API token (to change things) or the read token (to look)."""
    return _render(request, "login.html", title="Sign in", next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    token: Annotated[str, Form(max_length=1000)] = "",
    csrf: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",  # noqa: A002 - the form field's name
) -> Response:
    """Check the token; on success, a new session cookie and back to where the user was."""
    web = _web(request)
    target = _safe_next(next)
    if not web.auth.csrf_ok(request, csrf):
        return _render(
            request,
            "login.html",
            status_code=403,
            title="Sign in",
            next=target,
            error="The form expired or came from another site. Please try again.",
        )
    role = web.auth.sign_in(token)
    if role is None:
        return _render(
            request,
            "login.html",
            status_code=401,
            title="Sign in",
            next=target,
            error="That is neither the API token nor the read token.",
        )
    response = RedirectResponse(target, status_code=303)
    web.auth.set_cookie(response, web.auth.new_session(role))
    return response


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str, Form(max_length=200)] = "") -> Response:
    """End the session (a guest session replaces it)."""
    web = _web(request)
    if not web.auth.csrf_ok(request, csrf):
        return _render(
            request,
            "message.html",
            status_code=403,
            title="Not signed out",
            message="The form expired or came from another site. Please try again.",
        )
    response = RedirectResponse("/", status_code=303)
    web.auth.set_cookie(response, web.auth.new_session("guest"))
    return response


def _safe_next(target: str) -> str:
    """Only a path on this site: never an open redirect to another host."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
