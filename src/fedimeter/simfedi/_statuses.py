"""Posting: ``POST /api/v1/statuses`` and ``GET /api/v1/statuses/:id`` as Mastodon answers them.

The rules follow Mastodon's ``Api::V1::StatusesController``, ``PostStatusService`` and
``StatusLengthValidator``, in their order: the token (401), the replied-to status (404), the
``Idempotency-Key`` (the earlier status, 200), then validation (422). Every Mastodon-compatible
software of the simulator posts by these rules and answers Mastodon's error texts; clients
should match on statuses, not texts, anyway.
"""

from __future__ import annotations

import email.parser
import email.policy
import http
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal, cast, get_args
from urllib.parse import parse_qs

from fedimeter.simfedi import _entities as entities
from fedimeter.simfedi._faults import error_message
from fedimeter.simfedi._replies import Reply, error_reply, json_reply
from fedimeter.simfedi._text import countable_length

if TYPE_CHECKING:
    from collections.abc import Callable
    from email.message import Message

    from fedimeter.simfedi._accounts import SimAccount
    from fedimeter.simfedi._instance import SimInstance
    from fedimeter.simfedi._request import Request

__all__ = [
    "IDEMPOTENCY_TTL",
    "VISIBILITIES",
    "Engagement",
    "SimStatus",
    "StatusStore",
    "Visibility",
    "bearer_token",
    "can_see",
    "create_status",
    "request_params",
    "show_status",
    "status_links",
]

Visibility = Literal["public", "unlisted", "private", "direct"]
VISIBILITIES: frozenset[str] = frozenset(get_args(Visibility))

#: How long Mastodon remembers an ``Idempotency-Key`` (Redis ``SETEX`` of 3,600 seconds).
IDEMPOTENCY_TTL = timedelta(hours=1)

_INVALID_TOKEN = "The access token is invalid"  # noqa: S105 - an error message
_DISABLED_LOGIN = "Your login is currently disabled"
_PARSE_ERROR = "Error occurred while parsing request parameters"
_BLANK_TEXT = "Validation failed: Text can't be blank"
_BAD_VISIBILITY = "Validation failed: Visibility is not included in the list"
_TOO_LONG = "Validation failed: Text character limit of {} exceeded"
_DEFAULT_LANGUAGE = "en"
#: Rails' boolean cast: these strings are false, any other non-blank value is true.
_FALSE_STRINGS = frozenset({"0", "f", "false", "off"})
_ID_STEP = timedelta(milliseconds=1)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


@dataclass(slots=True)
class Engagement:
    """Interactions with a status from outside the simulation (remote or unmodelled accounts).

    A test may change them at any time; the served counts add the replies and boosts stored
    on the instance (``favourites_count`` is ``favourites`` alone).
    """

    favourites: int = 0
    reblogs: int = 0
    replies: int = 0


@dataclass(frozen=True, slots=True)
class SimStatus:
    """One status as the simulated server stored it: posted through the API or added by a test.

    ``text`` is the source as posted (what Mastodon keeps in ``statuses.text``), ``token`` the
    access token that posted it ("" for a status a test added), ``idempotency_key`` the
    ``Idempotency-Key`` header or None. ``reblog`` is the boosted status of a boost (whose
    text is empty); ``engagement`` holds the interactions from outside the simulation.
    ``url`` and ``uri`` follow the instance's address, so statuses may be added before the
    world serves.
    """

    id: str
    account: SimAccount
    token: str
    text: str
    visibility: Visibility
    in_reply_to_id: str | None
    spoiler_text: str
    sensitive: bool
    language: str
    idempotency_key: str | None
    created_at: datetime
    reblog: SimStatus | None = None
    engagement: Engagement = field(default_factory=Engagement)

    @property
    def url(self) -> str:
        """The status's web page, in the software's style (a boost's activity for a boost)."""
        return self._links()[0]

    @property
    def uri(self) -> str:
        """The status's ActivityPub id, in the software's style."""
        return self._links()[1]

    def _links(self) -> tuple[str, str]:
        account = self.account
        return status_links(account.instance, account, self.id, boost=self.reblog is not None)


class StatusStore:
    """An instance's access tokens, posted statuses and idempotency keys.

    The server's event loop writes while tests read from their own thread, so every access
    goes through one lock.
    """

    def __init__(self, new_id: Callable[[datetime], str]) -> None:
        """Start empty; ``new_id`` makes an id in the software's style for a moment."""
        self._lock = threading.Lock()
        self._new_id = new_id
        self._tokens: dict[str, SimAccount] = {}
        self._statuses: list[SimStatus] = []
        self._by_id: dict[str, SimStatus] = {}
        self._keys: dict[tuple[str, str], tuple[str, datetime]] = {}
        self._by_account: dict[str, list[SimStatus]] = {}
        self._replies: Counter[str] = Counter()
        self._reblogs: Counter[str] = Counter()
        #: Milliseconds some id embeds, and the latest of them: every id has one of its own.
        self._moments: set[int] = set()
        self._last_moment: datetime | None = None

    def add_token(self, token: str, account: SimAccount) -> None:
        """Let ``token`` act as ``account``."""
        with self._lock:
            self._tokens[token] = account

    def revoke_token(self, token: str) -> None:
        """Forget ``token``; later requests with it answer 401."""
        with self._lock:
            self._tokens.pop(token, None)

    def account_for(self, token: str | None) -> SimAccount | None:
        """The account ``token`` acts as, or None (unknown token, or a deleted account)."""
        if not token:
            return None
        with self._lock:
            account = self._tokens.get(token)
        return None if account is None or account.deleted else account

    def next_id(self, now: datetime) -> str:
        """Return a new status id for ``now``, greater than every earlier one.

        Simulated time stands still between posts, so each id takes the moment one millisecond
        after the previous one: ids embed the time, and a thread's ids sort in posting order.
        """
        with self._lock:
            last = self._last_moment
            return self._claim(now if last is None or now > last else last + _ID_STEP)

    def id_at(self, moment: datetime) -> str:
        """Return a new status id embedding ``moment`` (a status created then, maybe long ago).

        Every id of the store embeds a millisecond of its own, so ids sort like the moments:
        a moment already taken moves on to the next free millisecond.
        """
        with self._lock:
            return self._claim(moment)

    def _claim(self, moment: datetime) -> str:
        # Under the lock.
        while _millis(moment) in self._moments:
            moment += _ID_STEP
        self._moments.add(_millis(moment))
        if self._last_moment is None or moment > self._last_moment:
            self._last_moment = moment
        return self._new_id(moment)  # unique: no other id embeds this millisecond

    def add(self, status: SimStatus) -> None:
        """Store ``status`` and remember its idempotency key."""
        with self._lock:
            self._statuses.append(status)
            self._by_id[status.id] = status
            self._by_account.setdefault(status.account.id, []).append(status)
            if status.in_reply_to_id is not None:
                self._replies[status.in_reply_to_id] += 1
            if status.reblog is not None:
                self._reblogs[status.reblog.id] += 1
            if status.idempotency_key is not None:
                key = (status.account.id, status.idempotency_key)
                self._keys[key] = (status.id, status.created_at)

    def recall(self, account: SimAccount, key: str, now: datetime) -> SimStatus | None:
        """The status ``account`` posted with ``key`` less than an hour ago, or None."""
        with self._lock:
            remembered = self._keys.get((account.id, key))
            if remembered is None or now - remembered[1] >= IDEMPOTENCY_TTL:
                return None
            return self._by_id.get(remembered[0])

    def all(self) -> list[SimStatus]:
        """Every status, oldest first (a copy)."""
        with self._lock:
            return list(self._statuses)

    def find(self, status_id: str) -> SimStatus | None:
        """The status with ``status_id``, or None."""
        with self._lock:
            return self._by_id.get(status_id)

    def of_account(self, account: SimAccount) -> list[SimStatus]:
        """Every status of ``account``, in the order they were stored (a copy)."""
        with self._lock:
            return list(self._by_account.get(account.id, ()))

    def replies_to(self, status_id: str) -> int:
        """How many stored statuses reply to ``status_id``."""
        with self._lock:
            return self._replies[status_id]

    def reblogs_of(self, status_id: str) -> int:
        """How many stored statuses boost ``status_id``."""
        with self._lock:
            return self._reblogs[status_id]


# Requests -------------------------------------------------------------------------------------


def bearer_token(request: Request) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header, or None."""
    value = request.header("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _scalar(value: object) -> str | None:
    # Rails permits scalars only; JSON numbers and booleans arrive as their text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _multipart(content_type: str, body: bytes) -> dict[str, str]:
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
    parser = email.parser.BytesParser(policy=email.policy.HTTP)
    message = parser.parsebytes(head + body)
    fields: dict[str, str] = {}
    parts = message.get_payload() if message.is_multipart() else []
    for part in cast("list[Message]", parts):
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and part.get_filename() is None and isinstance(payload, bytes):
            fields[name] = payload.decode(part.get_content_charset() or "utf-8", "replace")
    return fields


def _json_params(body: bytes) -> dict[str, str] | None:
    if not body.strip():
        return {}
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(document, dict):
        return {}  # Rails files a JSON array under "_json", which no parameter reads
    values = {str(name): _scalar(value) for name, value in document.items()}
    return {name: value for name, value in values.items() if value is not None}


def _body_params(request: Request) -> dict[str, str] | None:
    """Parse the body by its Content-Type as Rails does; None when it cannot be parsed."""
    content_type = request.header("content-type") or ""
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == "application/json" or media_type.endswith("+json"):
        return _json_params(request.body)
    if media_type == "application/x-www-form-urlencoded":
        text = request.body.decode("utf-8", "replace")
        return {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}
    if media_type == "multipart/form-data":
        return _multipart(content_type, request.body)
    return {}  # Rails ignores a body it has no parser for


def request_params(request: Request, query: dict[str, list[str]]) -> dict[str, str] | None:
    """Rails' ``params``: the query string's values, overridden by the body's."""
    body = _body_params(request)
    if body is None:
        return None
    params = {name: values[-1] for name, values in query.items() if values}
    params.update(body)
    return params


# Handlers -------------------------------------------------------------------------------------


def can_see(status: SimStatus, viewer: SimAccount | None) -> bool:
    """Whether ``viewer`` (None: no token) may see ``status``.

    Public and unlisted statuses are visible to everyone, private and direct ones to their
    author only (the simulator has no followers or mentions to widen that).
    """
    if status.account.deleted or status.account.suspended:
        return False
    return status.visibility in {"public", "unlisted"} or (
        viewer is not None and viewer is status.account
    )


def _status_reply(status: SimStatus, instance: SimInstance, viewer: SimAccount) -> Reply:
    return json_reply(entities.status_json(status, instance, viewer=viewer))


def status_links(
    instance: SimInstance, account: SimAccount, status_id: str, *, boost: bool = False
) -> tuple[str, str]:
    """The ``url`` and ``uri`` of a new status, in the software's style.

    A boost's are both its activity (``.../statuses/ID/activity``), as Mastodon's TagManager
    gives them.
    """
    if boost:
        activity = f"{account.actor_url}/statuses/{status_id}/activity"
        return activity, activity
    software = instance.software
    if software in entities.PLEROMA_FAMILY:
        return f"{instance.base_url}/notice/{status_id}", f"{instance.base_url}/objects/{status_id}"
    uri = f"{account.actor_url}/statuses/{status_id}"
    if software == "gotosocial":
        return f"{account.profile_url}/statuses/{status_id}", uri
    return f"{account.profile_url}/{status_id}", uri


def _truthy(value: str | None) -> bool:
    return value is not None and bool(value.strip()) and value.strip().lower() not in _FALSE_STRINGS


class _Refusal(Exception):
    """Stops a post with an error answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class _Draft:
    text: str
    spoiler_text: str
    visibility: Visibility


def _author(user: SimAccount | None) -> SimAccount:
    if user is None:
        raise _Refusal(http.HTTPStatus.UNAUTHORIZED, _INVALID_TOKEN)
    if user.suspended:
        raise _Refusal(http.HTTPStatus.FORBIDDEN, _DISABLED_LOGIN)
    return user


def _parent_id(instance: SimInstance, params: dict[str, str], author: SimAccount) -> str | None:
    parent_id = params.get("in_reply_to_id", "").strip()
    if not parent_id:
        return None
    parent = instance.find_status(parent_id)
    if parent is None or not can_see(parent, author):
        raise _Refusal(http.HTTPStatus.NOT_FOUND, error_message(http.HTTPStatus.NOT_FOUND))
    return parent_id


def _draft(instance: SimInstance, params: dict[str, str]) -> _Draft:
    """Validate what the status says, as Status's validations do."""
    text = params.get("status", "")
    spoiler_text = params.get("spoiler_text", "")
    if not text.strip() and spoiler_text.strip():
        # Mastodon posts a lone content warning as the text.
        text, spoiler_text = spoiler_text, ""
    visibility = params.get("visibility", "").strip() or "public"
    unprocessable = http.HTTPStatus.UNPROCESSABLE_ENTITY
    if visibility not in VISIBILITIES:
        raise _Refusal(unprocessable, _BAD_VISIBILITY)
    if not text.strip():
        raise _Refusal(unprocessable, _BLANK_TEXT)
    if countable_length(text, spoiler_text) > instance.max_characters:
        raise _Refusal(unprocessable, _TOO_LONG.format(instance.max_characters))
    return _Draft(text, spoiler_text, cast("Visibility", visibility))


def create_status(
    instance: SimInstance,
    request: Request,
    query: dict[str, list[str]],
    user: SimAccount | None,
    now: datetime,
) -> Reply:
    """``POST /api/v1/statuses`` by ``user`` (the token's account, None for no valid token)."""
    try:
        return _create(instance, request, query, user, now)
    except _Refusal as refusal:
        return error_reply(refusal.status, refusal.message)


def _create(
    instance: SimInstance,
    request: Request,
    query: dict[str, list[str]],
    user: SimAccount | None,
    now: datetime,
) -> Reply:
    author = _author(user)
    params = request_params(request, query)
    if params is None:
        raise _Refusal(http.HTTPStatus.BAD_REQUEST, _PARSE_ERROR)
    parent_id = _parent_id(instance, params, author)
    key = (request.header("idempotency-key") or "").strip() or None
    if key is not None:
        # Mastodon looks the key up before validating: a retry gets the first answer.
        earlier = instance.posts.recall(author, key, now)
        if earlier is not None:
            return _status_reply(earlier, instance, author)
    draft = _draft(instance, params)
    status_id = instance.posts.next_id(now)
    status = SimStatus(
        id=status_id,
        account=author,
        token=bearer_token(request) or "",
        text=draft.text,
        visibility=draft.visibility,
        in_reply_to_id=parent_id,
        spoiler_text=draft.spoiler_text,
        # Mastodon marks a status with a content warning sensitive, whatever was asked.
        sensitive=_truthy(params.get("sensitive")) or bool(draft.spoiler_text.strip()),
        language=params.get("language", "").strip() or _DEFAULT_LANGUAGE,
        idempotency_key=key,
        created_at=now,
    )
    instance.posts.add(status)
    author.statuses += 1  # also makes last_status_at now
    return _status_reply(status, instance, author)


def show_status(instance: SimInstance, status_id: str, user: SimAccount | None) -> Reply:
    """``GET /api/v1/statuses/:id`` seen by ``user`` (None: no valid token)."""
    status = instance.find_status(status_id)
    if status is None or not can_see(status, user):
        return error_reply(http.HTTPStatus.NOT_FOUND, error_message(http.HTTPStatus.NOT_FOUND))
    return json_reply(entities.status_json(status, instance, viewer=user))
