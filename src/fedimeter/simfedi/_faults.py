"""Faults: ways an instance misbehaves on purpose, and the answers they produce.

A fault is checked for every request to its instance, in list order; the first one that matches
(endpoint kind, targeted account ids, not spent, probability roll) decides the answer. Faults
model what a collector meets on the real network: 5xx storms, proxy error pages, broken JSON,
servers that never answer or drop the connection, bodies that trickle or stop short, values of
the wrong type, good bodies under the wrong Content-Type, 429 storms, and redirects (to a fixed
URL, or to another instance, which makes loops between hosts easy to build).
"""

from __future__ import annotations

import http
import math
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, NamedTuple, get_args

from fedimeter.simfedi._ratelimit import RateLimit, format_reset
from fedimeter.simfedi._replies import HTML, JSON, Reply, error_reply, json_reply

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Collection, Iterable

    from fedimeter.simfedi._instance import SimInstance

__all__ = [
    "ENDPOINTS",
    "FAULT_KINDS",
    "Endpoint",
    "Fault",
    "FaultContext",
    "FaultKind",
    "corrupt",
    "error_message",
    "fault_reply",
    "pick_fault",
]

#: Kinds of fault. See the package documentation for what each does on the wire.
FaultKind = Literal[
    "status",
    "html",
    "malformed",
    "timeout",
    "reset",
    "drip",
    "truncated",
    "wrong_type",
    "redirect",
    "content_type",
    "rate_limited",
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))

#: Kinds of endpoint, as recorded in the request log and matched by faults. ``post`` is
#: ``POST /api/v1/statuses``, ``status`` is ``GET /api/v1/statuses/:id``,
#: ``account_statuses`` is ``GET /api/v1/accounts/:id/statuses``, ``tag`` is ``GET
#: /api/v1/tags/:name``, ``trends`` is ``GET /api/v1/trends/tags`` (and its older alias
#: ``/api/v1/trends``); ``other`` is any path the simulated server does not route.
Endpoint = Literal[
    "webfinger",
    "nodeinfo_discovery",
    "nodeinfo",
    "lookup",
    "account",
    "batch",
    "instance",
    "instance_v2",
    "activity",
    "peers",
    "post",
    "status",
    "account_statuses",
    "tag",
    "trends",
    "other",
]
ENDPOINTS: frozenset[str] = frozenset(get_args(Endpoint))

#: Kinds that never answer, so they neither count toward the rate limit nor carry its headers.
SILENT_KINDS: frozenset[str] = frozenset({"timeout", "reset"})
#: Kinds that mangle the application's own answer, so the application runs (a post is stored)
#: before the fault spoils what the client receives. The others answer instead of it.
_MANGLING_KINDS: frozenset[str] = frozenset({"wrong_type", "drip", "truncated", "content_type"})
#: The budget a ``rate_limited`` fault announces on an instance without a rate limit.
_PROXY_LIMIT = RateLimit()

_DEFAULT_STATUS: dict[str, int] = {"status": 500, "redirect": 302}

_MESSAGES: dict[int, str] = {
    401: "This API requires an authenticated user",
    403: "This action is not allowed",
    404: "Record not found",
    410: "Gone",
    422: "Validation failed",
    429: "Too many requests",
    503: "Remote data could not be fetched",
}

_LOWEST_STATUS = 200
_HIGHEST_STATUS = 599
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_TOO_MANY = http.HTTPStatus.TOO_MANY_REQUESTS


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_message(status: int) -> str:
    """Return the text Mastodon puts in ``{"error": ...}`` for ``status``."""
    return _MESSAGES.get(status) or _phrase(status)


@dataclass(eq=False, slots=True)
class Fault:
    """One way an instance misbehaves; append it to ``SimInstance.faults``.

    ``endpoint`` limits the fault to one endpoint kind (None: every request). ``account_ids``
    limits it further to requests about those ids (a batch request matches when any requested
    id is targeted). ``times`` spends the fault after that many answers (None: never spent);
    ``probability`` rolls the world's seeded RNG for each matching request; ``duration`` spends
    it that many seconds (real time) after its first answer. ``status`` overrides the status
    for ``status`` (default 500), ``html`` and ``malformed``/``wrong_type`` (default 200) and
    ``redirect`` (default 302); ``interval`` is the drip delay per byte; ``location`` the
    redirect target, or ``target`` an instance to redirect to (same path and query on its web
    host); ``body`` replaces the generated body of ``status``, ``html`` and ``malformed``
    faults; ``content_type`` the Content-Type of any answer the fault gives (default
    ``text/html; charset=utf-8`` for the ``content_type`` kind); ``retry_after`` whether a
    ``rate_limited`` answer carries ``Retry-After``. ``hits`` counts the answers the fault
    produced, ``first_hit`` is the ``time.time()`` of the first.
    """

    kind: FaultKind
    endpoint: Endpoint | None = None
    status: int | None = None
    times: int | None = None
    probability: float = 1.0
    account_ids: Collection[str] | None = None
    interval: float = 0.05
    location: str | None = None
    body: str | None = None
    content_type: str | None = None
    duration: float | None = None
    target: SimInstance | None = None
    retry_after: bool = True
    hits: int = field(default=0, init=False)
    first_hit: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        """Check the fault can work and freeze its id set.

        Raises:
            ValueError: unknown kind or endpoint, a redirect without one of ``location`` and
                ``target``, a probability outside 0..1, a negative ``times``, a non-positive
                ``interval`` or ``duration``, a blank ``content_type`` or one with a line
                break, a ``rate_limited`` fault with a status other than 429.
        """
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; use one of {sorted(FAULT_KINDS)}")
        if self.endpoint is not None and self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; use one of {sorted(ENDPOINTS)}")
        if self.status is not None and not _LOWEST_STATUS <= self.status <= _HIGHEST_STATUS:
            raise ValueError(f"status must be a final HTTP status (200-599), got {self.status}")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"probability must be between 0 and 1, got {self.probability}")
        if self.times is not None and self.times < 0:
            raise ValueError(f"times must not be negative, got {self.times}")
        if not self.interval > 0:
            raise ValueError(f"interval must be positive, got {self.interval}")
        self._check_extras()
        if self.account_ids is not None:
            self.account_ids = frozenset(str(account_id) for account_id in self.account_ids)

    def _check_extras(self) -> None:
        if self.kind == "redirect" and not self.location and self.target is None:
            raise ValueError("a redirect fault needs a location or a target instance")
        if self.location and self.target is not None:
            raise ValueError("give a redirect fault a location or a target, not both")
        if self.target is not None and self.kind != "redirect":
            raise ValueError(f"only a redirect fault has a target, not a {self.kind} fault")
        if self.kind == "redirect" and self.status not in {None, *_REDIRECT_STATUSES}:
            raise ValueError(f"a redirect answers 301, 302, 303, 307 or 308, not {self.status}")
        if self.duration is not None and not self.duration > 0:
            raise ValueError(f"duration must be positive, got {self.duration}")
        if self.content_type is not None and (
            not self.content_type.strip() or any(char in self.content_type for char in "\r\n")
        ):
            raise ValueError(f"content_type must be one header value, got {self.content_type!r}")
        if self.kind == "rate_limited" and self.status not in {None, _TOO_MANY}:
            raise ValueError(f"a rate_limited fault answers 429, not {self.status}")

    @property
    def spent(self) -> bool:
        """Whether the fault has answered ``times`` requests, or its ``duration`` is over."""
        if self.times is not None and self.hits >= self.times:
            return True
        return self.ends_at is not None and time.time() >= self.ends_at

    @property
    def ends_at(self) -> float | None:
        """When a fault with a ``duration`` is spent (``time.time()``), once it has answered."""
        if self.duration is None or self.first_hit is None:
            return None
        return self.first_hit + self.duration

    def record_hit(self, now: float) -> None:
        """Count one answer the fault gave at ``now`` (``time.time()``)."""
        self.hits += 1
        if self.first_hit is None:
            self.first_hit = now

    def describe(self) -> str:
        """A short line for logs and benchmarks: ``status 503 on account p=0.25 times=2``."""
        target = self.target.name if self.target is not None else self.location
        optional: list[tuple[object, str]] = [
            (self.status, f"{self.status}"),
            (self.endpoint, f"on {self.endpoint}"),
            (self.account_ids, f"for {len(self.account_ids or ())} ids"),
            (self.probability < 1.0, f"p={self.probability:.2f}"),
            (self.times is not None, f"times={self.times}"),
            (self.duration, f"for {self.duration or 0:.1f}s"),
            (self.kind == "drip", f"every {self.interval:g}s"),
            (self.content_type, f"as {self.content_type}"),
            (self.kind == "rate_limited" and not self.retry_after, "without Retry-After"),
            (target, f"-> {target}"),
        ]
        return " ".join([self.kind, *(text for present, text in optional if present)])

    @property
    def silent(self) -> bool:
        """Whether the fault sends no answer at all (``timeout``, ``reset``)."""
        return self.kind in SILENT_KINDS

    @property
    def needs_answer(self) -> bool:
        """Whether the fault reshapes the application's answer, which must be produced first.

        A ``status``, ``html``, ``rate_limited`` or ``redirect`` fault (or ``malformed`` with a
        ``body``) stands in for the application, so a POST it hits stores nothing;
        ``wrong_type``, ``drip``, ``truncated``, ``content_type`` and ``malformed`` without a
        body spoil an answer the application gave.
        """
        return self.kind in _MANGLING_KINDS or (self.kind == "malformed" and self.body is None)

    def matches(self, endpoint: str, account_ids: Iterable[str]) -> bool:
        """Whether a request to ``endpoint`` about ``account_ids`` is one this fault targets."""
        if self.spent or (self.endpoint is not None and self.endpoint != endpoint):
            return False
        if self.account_ids is None:
            return True
        return any(account_id in self.account_ids for account_id in account_ids)


def pick_fault(
    faults: Iterable[Fault], endpoint: str, account_ids: tuple[str, ...], rng: random.Random
) -> Fault | None:
    """Return the first fault that applies to this request, rolling probabilities in order.

    Picking does not spend the fault: the caller counts a hit only when the fault's answer is
    the one sent (a request refused by the rate limit leaves the fault for a later request).
    """
    for fault in list(faults):  # a copy: tests may append from another thread
        if not fault.matches(endpoint, account_ids):
            continue
        if fault.probability < 1.0 and rng.random() >= fault.probability:
            continue
        return fault
    return None


class FaultContext(NamedTuple):
    """What a fault's answer may depend on besides the answer without faults."""

    #: The request target as received (path and query), for redirects to another instance.
    target: str = "/"
    #: ``time.time()`` when the request arrived.
    now: float = 0.0
    #: The instance's rate limit, for the headers of ``rate_limited`` answers.
    rate_limit: RateLimit | None = None


def _status(fault: Fault, _normal: Reply, _context: FaultContext) -> Reply:
    status = fault.status or _DEFAULT_STATUS["status"]
    if fault.body is not None:
        return Reply(status, fault.body.encode(), (("Content-Type", JSON),))
    return error_reply(status, error_message(status))


def _html(fault: Fault, _normal: Reply, _context: FaultContext) -> Reply:
    status = fault.status or http.HTTPStatus.OK
    page = fault.body if fault.body is not None else html_error_page(status)
    return Reply(status, page.encode(), (("Content-Type", HTML),))


def _malformed(fault: Fault, normal: Reply, _context: FaultContext) -> Reply:
    body = fault.body.encode() if fault.body is not None else _cut_json(normal.body)
    return Reply(fault.status or http.HTTPStatus.OK, body, (("Content-Type", JSON),))


def _wrong_type(fault: Fault, normal: Reply, _context: FaultContext) -> Reply:
    return json_reply(corrupt(normal.data), fault.status or http.HTTPStatus.OK)


def _redirect(fault: Fault, _normal: Reply, context: FaultContext) -> Reply:
    status = fault.status or _DEFAULT_STATUS["redirect"]
    if fault.target is not None:
        location = f"{fault.target.base_url}{context.target}"
    else:
        location = fault.location or "/"
    page = f'<html><body>You are being <a href="{location}">redirected</a>.</body></html>'
    return Reply(status, page.encode(), (("Location", location), ("Content-Type", HTML)))


def _rate_limited(fault: Fault, _normal: Reply, context: FaultContext) -> Reply:
    # A 429 as a server over its budget (or the proxy in front of it) sends: Mastodon's body,
    # Remaining 0, Reset at the storm's end (or the end of the current window), Retry-After.
    limit = context.rate_limit or _PROXY_LIMIT
    now = context.now
    reset_at = fault.ends_at
    if reset_at is None:
        reset_at = (math.floor(now / limit.window) + 1) * limit.window
    headers: list[tuple[str, str]] = []
    if limit.send_headers:
        headers += [
            ("X-RateLimit-Limit", str(limit.limit)),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", format_reset(reset_at)),
        ]
    if fault.retry_after:
        headers.append(("Retry-After", str(max(1, math.ceil(reset_at - now)))))
    return error_reply(_TOO_MANY, error_message(_TOO_MANY)).with_headers(headers)


def _relabel(reply: Reply, content_type: str) -> Reply:
    headers = tuple(item for item in reply.headers if item[0].lower() != "content-type")
    return replace(reply, headers=(*headers, ("Content-Type", content_type)))


_BUILDERS: dict[str, Callable[[Fault, Reply, FaultContext], Reply]] = {
    "status": _status,
    "html": _html,
    "malformed": _malformed,
    "wrong_type": _wrong_type,
    "redirect": _redirect,
    "rate_limited": _rate_limited,
    "content_type": lambda fault, normal, _context: _relabel(normal, fault.content_type or HTML),
    "drip": lambda fault, normal, _context: replace(
        normal, delivery="drip", interval=fault.interval
    ),
    "truncated": lambda _fault, normal, _context: replace(normal, delivery="truncated"),
    "timeout": lambda _fault, _normal, _context: Reply(0, delivery="hang"),
    "reset": lambda _fault, _normal, _context: Reply(0, delivery="reset"),
}


def fault_reply(fault: Fault, normal: Reply, context: FaultContext | None = None) -> Reply:
    """Return the answer ``fault`` gives instead of ``normal`` (the answer without faults).

    ``content_type`` relabels whatever answer the fault gives (``html`` served as JSON, say).
    """
    reply = _BUILDERS[fault.kind](fault, normal, context or FaultContext())
    if fault.content_type is not None and not fault.silent:
        reply = _relabel(reply, fault.content_type)
    return reply


def _cut_json(body: bytes) -> bytes:
    # Cutting a JSON object or array anywhere before its last byte leaves it unclosed, so the
    # result is never valid JSON; keep at least the opening bracket.
    if len(body) < 2:  # noqa: PLR2004 - shorter than an empty object
        return b'{"id":"1","followers_'
    return body[: max(1, len(body) * 2 // 3)]


def nginx_error_page(title: str) -> str:
    """Return nginx's own error page titled ``title`` (``"502 Bad Gateway"``)."""
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )


def html_error_page(status: int) -> str:
    """Return an HTML error page like a reverse proxy or a CDN serves in front of a server."""
    if status >= http.HTTPStatus.INTERNAL_SERVER_ERROR:
        return nginx_error_page(f"{status} {_phrase(status)}")
    # A CDN's browser check: a 200 page that is not what the client asked for.
    return (
        '<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>'
        '<meta http-equiv="refresh" content="5"></head><body>'
        "<h1>Checking your browser before accessing the site.</h1>"
        "<p>This process is automatic. Your browser will redirect to your requested content "
        "shortly.</p></body></html>"
    )


# Keys whose values are counts (numbers in Mastodon and NodeInfo, strings in activity).
_COUNT_KEYS = frozenset(
    {
        "followers_count",
        "following_count",
        "statuses_count",
        "user_count",
        "status_count",
        "domain_count",
        "total",
        "activeMonth",
        "activeHalfyear",
        "localPosts",
        "active_month",
        "statuses",
        "logins",
        "registrations",
        "replies_count",
        "reblogs_count",
        "favourites_count",
        "uses",
        "accounts",
    }
)
_TIME_KEYS = frozenset({"created_at", "last_status_at", "week", "day"})
_FLAG_KEYS = frozenset({"locked", "bot", "suspended", "discoverable", "openRegistrations"})


class _Corrupter:
    """Rewrites a JSON value so every shape stays but values are wrong or of the wrong type."""

    def __init__(self) -> None:
        self._counts = 0

    def count(self, value: object) -> object:
        # Rotate through the bad values a parser must refuse: a word, a negative number, a
        # fraction, and the number as a string (or as a number where a string is expected).
        self._counts += 1
        number = int(value) if isinstance(value, int | str) and str(value).isdigit() else 7
        bad: tuple[object, ...] = ("lots", -number - 1, number + 0.5, str(number))
        choice = bad[(self._counts - 1) % len(bad)]
        if isinstance(value, str) and choice == str(number):
            return number
        return choice

    def value(self, key: str | None, value: object) -> object:
        result: object
        if isinstance(value, dict):
            result = {k: self.value(k, v) for k, v in value.items()}
        elif isinstance(value, list):
            result = [self.value(None, item) for item in value]
        elif key in _COUNT_KEYS:
            result = self.count(value)
        elif key in _TIME_KEYS:
            result = "not a date"
        elif key in _FLAG_KEYS:
            result = "no"
        elif key in {"id", "error"} or (key is None and isinstance(value, str)):
            result = int(value) if isinstance(value, str) and value.isdigit() else -1
        else:
            result = value
        return result


def corrupt(value: object) -> object:
    """Return ``value`` with counts, dates, flags and ids replaced by wrong-typed or bad values.

    The JSON shape (keys, nesting, list lengths) stays, so only a collector that validates
    values notices. A missing value (an empty answer) becomes ``{"error": -1}``.
    """
    if value is None:
        return {"error": -1}
    return _Corrupter().value(None, value)
