"""Routing: which endpoint a request is, and what a well-behaved server answers to it.

``route`` classifies a request first (endpoint kind, the account ids it is about, whether it
counts toward the API rate limit and the paging throttle) so that the request pipeline can
apply rate limits and faults before producing the normal answer, which ``Route.respond`` builds
on demand.
"""

from __future__ import annotations

import http
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from fedimeter.simfedi import _entities as entities
from fedimeter.simfedi._faults import Endpoint, error_message
from fedimeter.simfedi._params import Query, ruby_to_i
from fedimeter.simfedi._ratelimit import is_paging
from fedimeter.simfedi._reads import show_tag, trending_tags
from fedimeter.simfedi._replies import HTML, JRD, Reply, empty_reply, error_reply, json_reply
from fedimeter.simfedi._statuses import bearer_token, create_status, show_status
from fedimeter.simfedi._timeline import account_statuses

if TYPE_CHECKING:
    from collections.abc import Callable

    from fedimeter.simfedi._accounts import SimAccount
    from fedimeter.simfedi._instance import SimInstance
    from fedimeter.simfedi._request import Request

__all__ = ["BATCH_LIMIT", "Query", "Route", "route"]

#: Most ids one ``GET /api/v1/accounts`` accepts (Mastodon's DEFAULT_ACCOUNTS_LIMIT).
BATCH_LIMIT = 40

NOT_FOUND = http.HTTPStatus.NOT_FOUND
UNAUTHORIZED = http.HTTPStatus.UNAUTHORIZED
_RECORD_NOT_FOUND = error_message(NOT_FOUND)
# Mastodon raises Mastodon::ValidationError without a message; Rails renders the class name.
_TOO_MANY_IDS = "Mastodon::ValidationError"
_NODEINFO_TYPE = 'application/json; profile="http://nodeinfo.diaspora.software/ns/schema/{}#"'
# Mastodon 4.0 deprecated /api/v1/instance on 2022-11-14; RFC 9745 spells the date "@<epoch>".
_V1_INSTANCE_DEPRECATED = ("Deprecation", f"@{int(datetime(2022, 11, 14, tzinfo=UTC).timestamp())}")
_WEBSITE_404 = (
    "<!DOCTYPE html><html><head><title>Page not found</title></head>"
    "<body><h1>Page not found</h1><p>Sorry, there is nothing here.</p></body></html>"
)


@dataclass(frozen=True, slots=True)
class Route:
    """A classified request and how to answer it when nothing goes wrong."""

    endpoint: Endpoint
    #: Whether the request counts toward the API rate limit (``/api/*`` other than NodeInfo).
    api: bool
    #: Account ids the request is about, for faults that target ids.
    account_ids: tuple[str, ...]
    respond: Callable[[], Reply]
    #: Whether the paging throttle counts the request (``page``, ``min_id``, ``max_id`` or
    #: ``since_id`` given, on any path: Rack::Attack's rule has no path condition).
    paging: bool = False


def _not_found() -> Reply:
    return error_reply(NOT_FOUND, _RECORD_NOT_FOUND)


def _first(query: Query, name: str) -> str:
    values = query.get(name)
    return values[0] if values else ""


def route(
    instance: SimInstance,
    request: Request,
    *,
    alias: bool,
    path: str,
    query: Query,
    now: datetime,
) -> Route:
    """Classify ``request`` to ``instance`` (its web host, or its alias host if ``alias``).

    ``path`` (percent-decoded) and ``query`` are the parsed target of the request.
    """
    matched = _route(instance, request, alias=alias, path=path, query=query, now=now)
    return replace(matched, paging=True) if is_paging(query) else matched


def _route(
    instance: SimInstance,
    request: Request,
    *,
    alias: bool,
    path: str,
    query: Query,
    now: datetime,
) -> Route:
    if len(path) > 1:
        path = path.rstrip("/")  # Rails ignores a trailing slash
    is_api = path.startswith("/api/")
    method = request.method
    if method not in {"GET", "HEAD"}:
        if method == "POST" and not alias and path == _STATUSES:
            return _post_route(instance, request, query, now)
        return Route("other", api=is_api, account_ids=(), respond=_not_found)
    if alias:
        return _alias_route(instance, path, query)
    found = _discovery_route(instance, path, query)
    if found is not None:
        return found
    if is_api:
        user = instance.token_account(bearer_token(request))
        return _api_route(instance, path, query, now, user)
    return Route("other", api=False, account_ids=(), respond=_not_found)


def _discovery_route(instance: SimInstance, path: str, query: Query) -> Route | None:
    """Route WebFinger and NodeInfo, which live outside the API and its rate limit."""
    if path == "/.well-known/webfinger":
        return _webfinger_route(instance, query)
    if path == "/.well-known/nodeinfo":
        respond = partial(_nodeinfo, instance, None)
        return Route("nodeinfo_discovery", api=False, account_ids=(), respond=respond)
    for schema, nodeinfo_path in instance.profile.nodeinfo:
        if path == nodeinfo_path:
            respond = partial(_nodeinfo, instance, schema)
            return Route("nodeinfo", api=False, account_ids=(), respond=respond)
    return None


def _alias_route(instance: SimInstance, path: str, query: Query) -> Route:
    # The account domain is a plain website that only knows WebFinger.
    if path != "/.well-known/webfinger":
        page = Reply(NOT_FOUND, _WEBSITE_404.encode(), (("Content-Type", HTML),))
        return Route("other", api=False, account_ids=(), respond=lambda: page)
    if instance.alias_redirect:
        location = f"{instance.base_url}{path}?{urlencode(query, doseq=True)}"
        moved = Reply(http.HTTPStatus.MOVED_PERMANENTLY, headers=(("Location", location),))
        return Route("webfinger", api=False, account_ids=(), respond=lambda: moved)
    return _webfinger_route(instance, query)


def _webfinger_route(instance: SimInstance, query: Query) -> Route:
    account, status = _webfinger_account(instance, query)
    ids = (account.id,) if account is not None else ()

    def respond() -> Reply:
        if "webfinger" in instance.disabled_endpoints:
            return empty_reply(NOT_FOUND)
        if account is None:
            return empty_reply(status)
        if account.deleted:
            return empty_reply(instance.gone_status)
        return json_reply(entities.webfinger_json(account), content_type=JRD)

    return Route("webfinger", api=False, account_ids=ids, respond=respond)


def _webfinger_account(instance: SimInstance, query: Query) -> tuple[SimAccount | None, int]:
    """Find the account a WebFinger ``resource`` names; else None and 400 or 404 (Mastodon)."""
    resource = _first(query, "resource").strip()
    local = {instance.domain.lower(), instance.web_domain.lower()}
    if resource.startswith(("http://", "https://")):
        parts = urlsplit(resource)
        if parts.netloc.lower() not in local:
            return None, NOT_FOUND
        username = _username_from_path(instance, parts.path)
        if username is None:
            return None, http.HTTPStatus.BAD_REQUEST
    else:
        username, at, domain = resource.removeprefix("acct:").lstrip("@").partition("@")
        if not (username and at and domain):
            return None, http.HTTPStatus.BAD_REQUEST
        if domain.lower() not in local:
            return None, NOT_FOUND
    account = instance.find_username(username)
    return account, NOT_FOUND


def _username_from_path(instance: SimInstance, path: str) -> str | None:
    prefixes = ("/@", "/users/", instance.profile.profile_path.removesuffix("{}"))
    for prefix in prefixes:
        rest = path.removeprefix(prefix)
        if prefix and rest != path and rest and "/" not in rest:
            return rest
    return None


def _nodeinfo(instance: SimInstance, schema: str | None) -> Reply:
    if "nodeinfo" in instance.disabled_endpoints:
        return _not_found()
    if schema is None:
        return json_reply(entities.nodeinfo_discovery_json(instance))
    content_type = f"{_NODEINFO_TYPE.format(schema)}; charset=utf-8"
    return json_reply(entities.nodeinfo_json(instance, schema), content_type=content_type)


def _instance_v2(instance: SimInstance, _now: datetime) -> Reply:
    return json_reply(entities.instance_v2_json(instance))


def _activity(instance: SimInstance, now: datetime) -> Reply:
    return json_reply(entities.activity_json(instance, now))


def _peers(instance: SimInstance, _now: datetime) -> Reply:
    return json_reply(list(instance.peers))


# API routes that take no parameters and are about no account.
_PLAIN_API: dict[str, tuple[Endpoint, Callable[[SimInstance, datetime], Reply]]] = {
    "/api/v1/instance": ("instance", lambda instance, _now: _instance_v1(instance)),
    "/api/v2/instance": ("instance_v2", _instance_v2),
    "/api/v1/instance/activity": ("activity", _activity),
    "/api/v1/instance/peers": ("peers", _peers),
}
_ACCOUNTS = "/api/v1/accounts"
_STATUSES = "/api/v1/statuses"
_TAGS = "/api/v1/tags"
_TRENDS = "/api/v1/trends"
_TRENDS_TAGS = "/api/v1/trends/tags"


def _post_route(instance: SimInstance, request: Request, query: Query, now: datetime) -> Route:
    user = instance.token_account(bearer_token(request))
    ids = (user.id,) if user is not None else ()

    def respond() -> Reply:
        return _gate(instance, "post", user) or create_status(instance, request, query, user, now)

    return Route("post", api=True, account_ids=ids, respond=respond)


def _segment(path: str, prefix: str, suffix: str = "") -> str | None:
    """The one path segment between ``prefix/`` and ``suffix``, or None when ``path`` differs."""
    if not (path.startswith(f"{prefix}/") and path.endswith(suffix)):
        return None
    segment = path[len(prefix) + 1 : len(path) - len(suffix)]
    return segment if segment and "/" not in segment else None


def _read_route(
    instance: SimInstance, path: str, query: Query, now: datetime, user: SimAccount | None
) -> tuple[Endpoint, str | None, tuple[str, ...], Callable[[], Reply]] | None:
    """Route the read endpoints of timelines and hashtags: endpoint, feature, ids, handler."""
    account_id = _segment(path, _ACCOUNTS, "/statuses")
    if account_id is not None:
        handler = partial(account_statuses, instance, account_id, query, user)
        return "account_statuses", "account_statuses", (account_id,), handler
    name = _segment(path, _TAGS)
    if name is not None:
        return "tag", "tags", (), partial(show_tag, instance, name, user, now)
    if path in {_TRENDS, _TRENDS_TAGS}:
        alias = path == _TRENDS
        handler = partial(trending_tags, instance, query, user, now, alias=alias)
        return "trends", "trends" if alias else "trends_tags", (), handler
    return None


def _api_route(
    instance: SimInstance, path: str, query: Query, now: datetime, user: SimAccount | None
) -> Route:
    endpoint: Endpoint = "other"
    feature: str | None = None
    ids: tuple[str, ...] = ()
    handler: Callable[[], Reply] = _not_found
    plain = _PLAIN_API.get(path)
    read = _read_route(instance, path, query, now, user)
    if read is not None:
        endpoint, feature, ids, handler = read
    elif plain is not None:
        endpoint, handler = plain[0], partial(plain[1], instance, now)
    elif path == f"{_ACCOUNTS}/lookup":
        account = _lookup_account(instance, query)
        endpoint, handler = "lookup", partial(_account_reply, instance, account)
        ids = (account.id,) if account is not None else ()
    elif path == _ACCOUNTS:
        requested = list(dict.fromkeys(query.get("id[]", [])))
        endpoint, handler, ids = "batch", partial(_batch, instance, requested), tuple(requested)
    elif path.startswith(f"{_ACCOUNTS}/") and "/" not in path[len(_ACCOUNTS) + 1 :]:
        account_id = path[len(_ACCOUNTS) + 1 :]
        endpoint, ids = "account", (account_id,)
        handler = partial(_account_by_id, instance, account_id)
    elif path.startswith(f"{_STATUSES}/") and "/" not in path[len(_STATUSES) + 1 :]:
        status_id = path[len(_STATUSES) + 1 :]
        status = instance.find_status(status_id)
        endpoint = "status"
        ids = (status.account.id,) if status is not None else ()
        handler = partial(show_status, instance, status_id, user)

    def respond() -> Reply:
        return _gate(instance, endpoint, user, feature) or handler()

    return Route(endpoint, api=True, account_ids=ids, respond=respond)


_FEATURE_OF: dict[str, str] = {
    "lookup": "lookup",
    "batch": "batch",
    "instance_v2": "instance_v2",
    "activity": "activity",
}
#: Endpoints that Pixelfed and GoToSocial serve only to a request with a token.
_TOKEN_ENDPOINTS = frozenset({"lookup", "account", "batch", "status", "account_statuses"})
_EMPTY_WHEN_OFF = frozenset({"activity", "peers"})


def _gate(
    instance: SimInstance, endpoint: str, user: SimAccount | None, feature: str | None = None
) -> Reply | None:
    """Return the refusal for an API endpoint this instance does not serve now, or None.

    ``user`` is the account of the request's valid token, if any: a signed-in user gets past
    limited federation and the token demands of Pixelfed and GoToSocial. ``feature`` is the
    one the route needs (by default the endpoint's own).
    """
    if instance.limited_federation and user is None:
        return error_reply(UNAUTHORIZED, error_message(UNAUTHORIZED))
    if not instance.profile.mastodon_api or endpoint == "other":
        return _not_found()
    feature = feature or _FEATURE_OF.get(endpoint)
    if feature is not None and not instance.supports(feature):
        return _not_found()  # the route does not exist in this version
    if endpoint in instance.disabled_endpoints:
        # Mastodon answers a bare 404 when the admin turned activity or peers off.
        return empty_reply(NOT_FOUND) if endpoint in _EMPTY_WHEN_OFF else _not_found()
    auth_error = instance.profile.account_auth_error
    if auth_error is not None and user is None and endpoint in _TOKEN_ENDPOINTS:
        return error_reply(UNAUTHORIZED, auth_error)
    return None


def _lookup_account(instance: SimInstance, query: Query) -> SimAccount | None:
    # Mastodon looks the acct up in its own database: a bare username or one on the account
    # domain (LOCAL_DOMAIN) is local; any other domain, the web host's included, is not.
    username, _, domain = _first(query, "acct").strip().lstrip("@").partition("@")
    if domain and domain.lower() != instance.domain.lower():
        return None
    return instance.find_username(username) if username else None


def _account_reply(instance: SimInstance, account: SimAccount | None) -> Reply:
    if account is None:
        return _not_found()
    if account.deleted:
        return error_reply(instance.gone_status, error_message(instance.gone_status))
    return json_reply(entities.account_json(account, instance))


def _account_by_id(instance: SimInstance, account_id: str) -> Reply:
    return _account_reply(instance, instance.find_id(account_id))


def _batch(instance: SimInstance, requested: list[str]) -> Reply:
    """``GET /api/v1/accounts?id[]=...``: Mastodon 4.3's ``index`` action.

    Only ``id[]`` counts (``params.permit(id: [])`` drops a scalar ``id=``); duplicates are
    removed before the 40-id check; no ids gives ``[]``; unknown and deleted ids are left out;
    the found accounts come in database (creation) order, not in the order asked.
    """
    if len(requested) > BATCH_LIMIT:
        return error_reply(http.HTTPStatus.UNPROCESSABLE_ENTITY, _TOO_MANY_IDS)
    # Ids are integers in Mastodon's database (String#to_i), so only canonical decimal ids match.
    wanted = {str(ruby_to_i(account_id)) for account_id in requested}
    found = [
        account
        for account in map(instance.find_id, wanted)
        if account is not None and not account.deleted
    ]
    found.sort(key=instance.creation_order)
    return json_reply([entities.account_json(account, instance) for account in found])


def _instance_v1(instance: SimInstance) -> Reply:
    headers = (_V1_INSTANCE_DEPRECATED,) if instance.supports("deprecation_header") else ()
    return json_reply(entities.instance_v1_json(instance), headers=headers)
