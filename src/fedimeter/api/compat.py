"""mastodon-meter's HTTP API, served by fedimeter so its users' scripts keep working.

The routes, request and answer shapes are mastodon-meter's (see ``docs/compat-mastodon-meter.md``
for every difference). Each answer is an envelope ``{"status": bool, "message": str, ...}``;
errors are ``{"status": false, "message": ...}`` with a real HTTP status (mastodon-meter
answered 200), including the 401/403 of the access checks and the 422 of invalid input:
``_EnvelopeRoute`` turns every error raised in these routes into an envelope.

mastodon-meter's documentation sends ``since``, ``to`` and ``accounts`` as a JSON body on GET
requests. They are accepted there and as query parameters; the body is read by hand so the
OpenAPI document declares no GET body.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final

from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic_core import to_json
from starlette.exceptions import HTTPException

from fedimeter.api.compat_params import (
    find_account,
    local_username,
    normalise_instance_id,
    previous_sample,
    previous_samples,
    read_period,
    read_report_ids,
    report_counts,
)
from fedimeter.api.compat_schemas import (
    AddAccountRequest,
    AddAccountResponse,
    ErrorEnvelope,
    OkEnvelope,
    RawDataResponse,
    RemoveAccountRequest,
    ReportResponse,
    TrackedAccount,
    TrackedAccountsResponse,
)
from fedimeter.api.deps import ReadAccess, ServicesDep, WriteAccess
from fedimeter.api.errors import printable, status_for, validation_errors
from fedimeter.domain.handles import parse_account_ref, parse_authority
from fedimeter.domain.mmreport import (
    ReportEntry,
    metering_id,
    mm_timestamp,
    render_report,
)
from fedimeter.domain.models import AccountState
from fedimeter.errors import (
    AlreadyTracked,
    FedimeterError,
    InvalidInput,
    NotTracked,
)
from fedimeter.graphing import GraphMetric, account_graph, graph_options
from fedimeter.tracking import find_tracked

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Mapping

    from fedimeter.storage.records import AccountRecord, SampleRecord
    from fedimeter.storage.repository import Repository

__all__ = ["router"]

log = logging.getLogger("fedimeter.api.compat")

_ONE_MICROSECOND: Final = timedelta(microseconds=1)


class _EnvelopeRoute(APIRoute):
    """A route whose errors are answered as ``{"status": false, "message": ...}``.

    Covers what the route raises (``FedimeterError``), what its dependencies raise (401/403
    from the access checks) and FastAPI's request validation (422).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        """The usual handler, with its errors turned into envelopes."""
        handler = super().get_route_handler()

        async def envelope_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except FedimeterError as exc:
                code = status_for(exc)
                if code >= status.HTTP_500_INTERNAL_SERVER_ERROR:
                    log.warning("%s: %s", type(exc).__name__, exc)
                return _error(code, str(exc))
            except HTTPException as exc:
                if exc.status_code == status.HTTP_400_BAD_REQUEST:
                    # FastAPI's "There was an error parsing the body": invalid input like the rest.
                    return _error(
                        status.HTTP_422_UNPROCESSABLE_CONTENT, f"invalid request: {exc.detail}"
                    )
                return _error(exc.status_code, str(exc.detail), exc.headers)
            except RequestValidationError as exc:
                return _error(status.HTTP_422_UNPROCESSABLE_CONTENT, _validation_message(exc))

        return envelope_errors


def _error(code: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = ErrorEnvelope(message=printable(message)).model_dump()
    return JSONResponse(body, status_code=code, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    """``body.username: Field required; ...``: one line a person can read."""
    parts: list[str] = []
    for error in validation_errors(exc):
        location = ".".join(str(part) for part in error["loc"])
        parts.append(f"{location}: {error['msg']}" if location else error["msg"])
    return "invalid request: " + ("; ".join(parts) or "the request could not be read")


router = APIRouter(prefix="/api", tags=["mastodon-meter"], route_class=_EnvelopeRoute)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error envelopes a route may answer."""
    descriptions = {
        401: "The token is missing or wrong (writes, or reads when a read token is set).",
        403: "A write from another machine while no API token is set.",
        404: "No account with that internal id.",
        409: "Already tracked, or a collection round is running in another process.",
        422: "Invalid input: a body, id, time or parameter fedimeter cannot use.",
        502: "The account's server failed or answered nonsense.",
        503: "The database is unavailable, or the round was stopped by a shutdown.",
    }
    return {code: {"model": ErrorEnvelope, "description": descriptions[code]} for code in codes}


_READ_ERRORS = (401, 422, 503)
_WRITE_ERRORS = (401, 403, 422, 503)

AccountIdPath = Annotated[
    str,
    Path(
        description="The id /api/accounts/add answered (a whole number, as a string).",
        examples=["12"],
    ),
]
Since = Annotated[
    str | None,
    Query(
        description="From this moment (inclusive): 2021-01-01 12:00, an ISO date or datetime"
        " (UTC unless it has an offset), or an age such as 30d. Also accepted in a JSON body."
    ),
]
To = Annotated[
    str | None,
    Query(
        description="Up to this moment (inclusive), same forms; a bare date includes that"
        " whole day. Also accepted in a JSON body."
    ),
]
Accounts = Annotated[
    list[str] | None,
    Query(
        description="Internal ids to report on (repeat the parameter, or separate them with"
        " commas); absent means every tracked account. Also accepted in a JSON body."
    ),
]


@router.post(
    "/accounts/add",
    dependencies=[WriteAccess],
    responses=_errors(404, 409, 502, *_WRITE_ERRORS),
)
async def add_account(body: AddAccountRequest, services: ServicesDep) -> AddAccountResponse:
    """Track the account ``username`` on ``instance``.

    fedimeter finds it on its server (WebFinger, then the account lookup) and measures it
    there. ``instance_id`` is optional; when given and it is not the id the server reports,
    nothing is tracked and the answer is 422.
    """
    address = parse_authority(body.instance, scheme=services.settings.default_scheme)
    username = local_username(body.username, address)
    ref = parse_account_ref(f"{address.base_url}/@{username}")
    repo = services.repo
    known = await find_tracked(repo, ref)
    if known is not None and known.state is not AccountState.UNTRACKED:
        raise AlreadyTracked(f"{known.handle} is already tracked, with internal id '{known.id}'")
    resolved = await services.client.resolve(ref)
    expected = normalise_instance_id(body.instance_id)
    if expected is not None and expected != resolved.remote_id:
        raise InvalidInput(
            f"instance_id {expected[:100]!r} is not the id of {resolved.handle}: its server"
            f" {resolved.home.authority} reports {resolved.remote_id!r}. Nothing was tracked;"
            " send the right id, or leave instance_id out"
        )
    again = await repo.find_account(resolved.handle)
    account = await repo.add_account(resolved, services.clock())
    message = f"Added account {account.id} ({account.handle}) to the list of tracked"
    if again is not None:
        message += "; its earlier meterings are kept"
    return AddAccountResponse(message=message, account_internal_id=str(account.id))


@router.post(
    "/accounts/remove",
    dependencies=[WriteAccess],
    responses=_errors(404, *_WRITE_ERRORS),
)
async def remove_account(body: RemoveAccountRequest, services: ServicesDep) -> OkEnvelope:
    """Stop tracking an account; ``remove_associated_data: true`` also deletes its meterings.

    Without it the meterings stay readable through ``/api/{account_internal_id}/data``, and
    adding the account again continues its history.
    """
    repo = services.repo
    account = await find_account(repo, body.account_internal_id)
    if body.remove_associated_data:
        deleted = await repo.delete_account(account.id)
        return OkEnvelope(
            message=f"Removed account {account.id} from the list of tracked and deleted its"
            f" {deleted} meterings"
        )
    if account.state is AccountState.UNTRACKED:
        raise NotTracked(
            f"account {account.id} is not tracked (it was removed before); send"
            " remove_associated_data: true to delete its meterings"
        )
    await repo.untrack_account(account.id, services.clock())
    return OkEnvelope(
        message=f"Removed account {account.id} from the list of tracked; its meterings are kept"
    )


@router.get("/accounts/tracked", dependencies=[ReadAccess], responses=_errors(*_READ_ERRORS))
async def tracked_accounts(services: ServicesDep) -> TrackedAccountsResponse:
    """Every tracked account (suspended, moved and gone ones too), in the order added."""
    rows = await services.repo.list_accounts()
    accounts = sorted((account for account, _ in rows), key=lambda a: a.id)
    return TrackedAccountsResponse(
        message=f"Gathered {len(accounts)} tracked accounts.",
        tracked_accounts=[
            TrackedAccount(
                internal_id=str(a.id),
                username=a.handle.username,
                instance=a.base_url,
                instance_id=a.remote_id,
                added_on=mm_timestamp(a.added_at),
            )
            for a in accounts
        ],
    )


# -- collection --------------------------------------------------------------------------------


@router.get(
    "/gather-data",
    dependencies=[WriteAccess],
    response_model=OkEnvelope,
    responses=_errors(409, 502, *_WRITE_ERRORS),
)
async def gather_data(services: ServicesDep) -> OkEnvelope | Response:
    """Run a collection round now and answer when it ends (a write, despite the GET).

    While a round runs in this server, the request waits for that one; a round running in
    another process is a 409.
    """
    started = time.perf_counter()
    result = await services.rounds.run()
    seconds = round(time.perf_counter() - started, 3)
    run = result.run
    if run.status == "interrupted":
        return _error(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            f"The collection round {run.id} was stopped before its end (the server is shutting"
            f" down) after {run.accounts_measured} meterings; the next round finishes it.",
        )
    message = f"Gathered {run.accounts_measured} meterings for the tracked accounts in {seconds} s."
    if run.accounts_failed:
        message += (
            f" {run.accounts_failed} accounts could not be measured: see /api/v1/runs/{run.id}."
        )
    return OkEnvelope(message=message)


# -- one account -------------------------------------------------------------------------------


@router.get(
    "/{account_internal_id}/data",
    dependencies=[ReadAccess],
    response_model=RawDataResponse,
    responses=_errors(404, *_READ_ERRORS),
)
async def account_data(
    account_internal_id: AccountIdPath,
    request: Request,
    services: ServicesDep,
    since: Since = None,
    to: To = None,
) -> Response:
    """An account's meterings from ``since`` to ``to`` (both inclusive, null: no bound).

    Works for removed accounts whose meterings were kept.
    """
    account = await find_account(services.repo, account_internal_id)
    start, end = await read_period(request, since, to, services.clock())
    samples = await services.repo.samples(account.id, start, end)
    # RawDataResponse's JSON, encoded without a model per metering (as in /api/v1's samples).
    body = {
        "status": True,
        "message": f"Gathered raw data for account {account.id}: {len(samples)} meterings",
        "account_internal_id": str(account.id),
        "data": [
            {
                "toot_count": s.statuses,
                "subscribers_count": s.followers,
                "metering_id": metering_id(account.id, s.taken_at),
                "timestamp": mm_timestamp(s.taken_at),
            }
            for s in samples
        ],
    }
    return Response(to_json(body), media_type="application/json")


_GRAPH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A PNG image.",
        "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
    },
    **_errors(404, *_READ_ERRORS),
}


async def _graph(
    metric: GraphMetric,
    *,
    account_internal_id: str,
    request: Request,
    services: ServicesDep,
    since: str | None,
    to: str | None,
) -> Response:
    account = await find_account(services.repo, account_internal_id)
    start, end = await read_period(request, since, to, services.clock())
    image = await account_graph(
        services.repo,
        account,
        metric=metric,
        since=start,
        until=end,
        now=services.clock(),
        options=graph_options("png"),
    )
    return Response(image, media_type="image/png")


@router.get(
    "/{account_internal_id}/graph/subscribers",
    dependencies=[ReadAccess],
    response_class=Response,
    responses=_GRAPH_RESPONSES,
)
async def subscribers_graph(
    account_internal_id: AccountIdPath,
    request: Request,
    services: ServicesDep,
    since: Since = None,
    to: To = None,
) -> Response:
    """A PNG graph of the account's subscribers (followers) over the period."""
    return await _graph(
        "followers",
        account_internal_id=account_internal_id,
        request=request,
        services=services,
        since=since,
        to=to,
    )


@router.get(
    "/{account_internal_id}/graph/toots",
    dependencies=[ReadAccess],
    response_class=Response,
    responses=_GRAPH_RESPONSES,
)
async def toots_graph(
    account_internal_id: AccountIdPath,
    request: Request,
    services: ServicesDep,
    since: Since = None,
    to: To = None,
) -> Response:
    """A PNG graph of the account's statuses over the period."""
    return await _graph(
        "statuses",
        account_internal_id=account_internal_id,
        request=request,
        services=services,
        since=since,
        to=to,
    )


@router.get(
    "/{account_internal_id}/graph/common",
    dependencies=[ReadAccess],
    response_class=Response,
    responses=_GRAPH_RESPONSES,
)
async def common_graph(
    account_internal_id: AccountIdPath,
    request: Request,
    services: ServicesDep,
    since: Since = None,
    to: To = None,
) -> Response:
    """A PNG graph of the account's subscribers and statuses over the period."""
    return await _graph(
        "combined",
        account_internal_id=account_internal_id,
        request=request,
        services=services,
        since=since,
        to=to,
    )


# -- report ------------------------------------------------------------------------------------


@router.get("/report", dependencies=[ReadAccess], responses=_errors(404, *_READ_ERRORS))
async def report(
    request: Request, services: ServicesDep, accounts: Accounts = None
) -> ReportResponse:
    """mastodon-meter's plain-text summary: each account's latest counts and their change.

    ``accounts`` lists the internal ids to include, in that order (removed accounts whose
    meterings were kept included); absent or null means every tracked account, in the order
    added. An unknown id is a 404.
    """
    repo = services.repo
    ids = await read_report_ids(request, accounts)
    pairs: list[tuple[AccountRecord, SampleRecord | None]]
    if ids is None:
        # Every account: on the read worker's loop, off the one answering other requests.
        pairs, previous = await services.reads.run(_every_account)
    else:
        chosen: list[AccountRecord] = []
        for value in ids:
            account = await find_account(repo, value)
            if all(a.id != account.id for a in chosen):
                chosen.append(account)
        pairs = [(a, await repo.sample_at_or_before(a.id)) for a in chosen]
        previous = {
            latest.account_id: await previous_sample(repo, latest)
            for _, latest in pairs
            if latest is not None
        }
    entries = [
        ReportEntry(
            account.handle.acct,
            report_counts(latest),
            report_counts(None if latest is None else previous.get(account.id)),
        )
        for account, latest in pairs
    ]
    return ReportResponse(
        message=f"Generated a simple text report for {len(entries)} accounts",
        report=render_report(entries, services.clock()),
    )


async def _every_account(
    repo: Repository,
) -> tuple[list[tuple[AccountRecord, SampleRecord | None]], dict[int, SampleRecord | None]]:
    """Every tracked account in the order added, its latest sample, and the one before."""
    pairs = sorted(await repo.list_accounts(), key=lambda row: row[0].id)
    return pairs, await previous_samples(repo, [latest for _, latest in pairs if latest])
