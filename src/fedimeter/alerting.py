"""Alerts: judge the configured rules, record each occurrence once, deliver what waits.

``alerts_after_round`` runs after every collection round that finished (``fedimeter
collect``, the server's rounds, the worker that finishes a shared round). It never raises:
an alert that cannot be judged or delivered is logged, and the next round tries again (an
undelivered alert is sent then, without firing a second time). ``fedimeter alerts check``
runs the same steps by hand, or only judges with ``--dry-run``. See docs/alerts.md.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from fedimeter.delivery.alerts import AlertDeliverer, AlertOutcome
from fedimeter.domain.alert_rules import SCOPES
from fedimeter.domain.alerts import FRESH, evaluate, window_start
from fedimeter.errors import FedimeterError
from fedimeter.storage.alert_inputs import (
    account_streaks,
    instance_streaks,
    tag_streaks,
    watched_accounts,
    watched_instances,
    watched_tags,
)
from fedimeter.storage.alerts import AlertRecord, AlertStore

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from datetime import datetime

    import httpx

    from fedimeter.config import Channel, Settings
    from fedimeter.domain.alert_rules import AlertRule, AlertScope
    from fedimeter.domain.alerts import Occurrence, Streak, Watched, WatchedDays
    from fedimeter.storage.database import Database

__all__ = [
    "QUIET_LOG",
    "AlertRun",
    "alert_channels",
    "alerts_after_round",
    "check_alerts",
    "deliver_alerts",
    "judge_alerts",
]

_LOG = logging.getLogger("fedimeter.alerts")
#: For ``alerts_after_round`` callers that print its ``AlertRun`` themselves (the CLI): its
#: log lines would say everything twice (on a terminal, through Python's last-resort handler).
QUIET_LOG = logging.getLogger("fedimeter.alerts.printed")
QUIET_LOG.addHandler(logging.NullHandler())
QUIET_LOG.propagate = False


@dataclass(frozen=True, slots=True)
class AlertRun:
    """What one check did: the alerts it fired, and what happened to each channel."""

    fired: list[AlertRecord] = field(default_factory=list)
    outcomes: list[AlertOutcome] = field(default_factory=list)
    #: Why the check stopped short (after a round: logged, not raised).
    error: str | None = None


def alert_channels(settings: Settings) -> list[Channel]:
    """``alert_to``, or every configured channel."""
    return list(settings.alert_to) or settings.delivery_channels()


def _moments(rules: list[AlertRule], now: datetime) -> list[datetime]:
    """Every midnight a window of ``rules`` may start at, judged at ``now``."""
    windows = {r.window for r in rules if r.kind in {"drop", "rise"}}
    if any(r.kind == "milestone" for r in rules):
        windows.add(1)
    days = {(now - FRESH).astimezone(UTC).date(), now.astimezone(UTC).date()}
    return sorted({window_start(day, w) for day in days for w in windows})


async def judge_alerts(settings: Settings, db: Database, *, now: datetime) -> list[Occurrence]:
    """Every occurrence the rules see now that was not recorded yet.

    Raises:
        StorageError: the database refused.
    """
    rules = list(settings.alerts)
    if not rules:
        return []
    store = AlertStore(db)
    watched: list[Watched | WatchedDays] = []
    streaks: list[Streak] = []
    for scope in SCOPES:
        scoped = [r for r in rules if r.scope == scope]
        watched += await _watched(db, scope, [r for r in scoped if r.kind != "failing"], now)
        failing = [r.rounds or 1 for r in scoped if r.kind == "failing"]
        if failing:
            find = _STREAKS[scope]
            streaks += await find(db, min(failing))
    found = evaluate(rules, watched, streaks, await store.memory(rules, now), now)
    known = await store.known(found)
    return [o for o in found if o.identity not in known]


_STREAKS = {"accounts": account_streaks, "instances": instance_streaks, "tags": tag_streaks}


async def _watched(
    db: Database, scope: AlertScope, rules: list[AlertRule], now: datetime
) -> list[Watched | WatchedDays]:
    if scope == "tags":
        return list(await _watched_tags(db, rules, now))
    moments = _moments(rules, now)
    if not moments:
        return []
    if scope == "accounts":
        return list(await watched_accounts(db, moments, now))
    return list(await watched_instances(db, min(moments), now))


async def _watched_tags(db: Database, rules: list[AlertRule], now: datetime) -> list[WatchedDays]:
    """Tags with the days their rules judge: yesterday and twice the longest window before it.

    A day or two more than that, so a day still fresh just after midnight is covered too.
    """
    if not rules:
        return []
    longest = max((r.window for r in rules if r.kind in {"drop", "rise"}), default=1)
    since = now.astimezone(UTC).date() - timedelta(days=2 * longest + 2)
    return await watched_tags(db, since, peaks=any(r.kind == "milestone" for r in rules))


async def check_alerts(
    settings: Settings,
    db: Database,
    *,
    clock: Callable[[], datetime],
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> AlertRun:
    """Judge the rules, record what fired, then deliver every alert waiting for a channel.

    Alerts that failed to go out before are sent again here (within ``RETRY_FOR``).

    Raises:
        StorageError: the database refused.
    """
    now = clock()
    store = AlertStore(db)
    fired = await store.record(
        await judge_alerts(settings, db, now=now), alert_channels(settings), now
    )
    outcomes = await deliver_alerts(settings, db, clock=clock, transport=transport, sleep=sleep)
    return AlertRun(fired, outcomes)


async def deliver_alerts(
    settings: Settings,
    db: Database,
    *,
    clock: Callable[[], datetime],
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[AlertOutcome]:
    """Deliver every alert waiting for one of the alert channels.

    Raises:
        StorageError: the database refused.
    """
    channels = alert_channels(settings)
    if not channels:
        return []
    deliverer = AlertDeliverer(
        settings, AlertStore(db), clock=clock, transport=transport, sleep=sleep
    )
    return await deliverer.deliver_pending(channels)


async def alerts_after_round(
    settings: Settings,
    db: Database,
    *,
    clock: Callable[[], datetime],
    transport: httpx.AsyncBaseTransport | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    logger: logging.Logger = _LOG,
) -> AlertRun:
    """``check_alerts`` after a round: logged, never raised; nothing at all without rules.

    A failure here must not fail the round: the next round judges and delivers again.
    """
    if not settings.alerts:
        return AlertRun()
    try:
        run = await check_alerts(settings, db, clock=clock, transport=transport, sleep=sleep)
    except FedimeterError as exc:
        logger.warning("alerts were not checked: %s", exc)
        return AlertRun(error=str(exc))
    except Exception as exc:
        logger.exception("alerts were not checked")
        return AlertRun(error=f"{type(exc).__name__}: {exc}")
    for alert in run.fired:
        logger.warning("alert %s: %s", alert.rule, alert.text)
    for outcome in run.outcomes:
        level = logging.WARNING if outcome.status == "failed" else logging.INFO
        logger.log(
            level,
            "alerts by %s to %s: %s %s",
            outcome.channel,
            outcome.destination,
            outcome.status,
            outcome.detail,
        )
    return run
