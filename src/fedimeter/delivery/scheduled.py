"""Scheduled delivery: after a collection round, the daily or weekly report goes out once.

Daily: after every round, the report for the last day; the delivery log makes sure it is
sent once per UTC day however many rounds there are. Weekly: after rounds on
``deliver_weekday`` (UTC), the report for the last seven days.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from fedimeter.errors import FedimeterError
from fedimeter.reporting import make_report

if TYPE_CHECKING:
    from datetime import datetime

    from fedimeter.config import Settings
    from fedimeter.delivery.service import Deliverer, Outcome
    from fedimeter.storage.repository import Repository

__all__ = ["WEEKDAYS", "deliver_after_round", "deliver_safely", "scheduled_period"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

_LOG = logging.getLogger("fedimeter.delivery")


def scheduled_period(settings: Settings, now: datetime) -> tuple[datetime, datetime] | None:
    """The period a scheduled report covers if one is due after a round at ``now``, else None."""
    if settings.deliver == "daily":
        return now - timedelta(days=1), now
    if settings.deliver == "weekly" and WEEKDAYS[now.weekday()] == settings.deliver_weekday:
        return now - timedelta(days=7), now
    return None


async def deliver_after_round(
    settings: Settings,
    repo: Repository,
    deliverer: Deliverer,
    *,
    now: datetime,
    logger: logging.Logger = _LOG,
) -> list[Outcome]:
    """Deliver the scheduled report if one is due; log and return what happened.

    Raises:
        ConfigError: a channel in ``deliver_to`` is not configured.
        StorageError: the database refused.
    """
    period = scheduled_period(settings, now)
    if period is None:
        return []
    report = await make_report(
        repo,
        since=period[0],
        until=period[1],
        now=now,
        sort=settings.deliver_sort,
        top=settings.deliver_top,
    )
    channels = settings.deliver_to or settings.delivery_channels()
    outcomes = await deliverer.deliver(report, channels)
    for outcome in outcomes:
        level = logging.WARNING if outcome.status == "failed" else logging.INFO
        logger.log(
            level,
            "%s report by %s to %s: %s %s",
            settings.deliver,
            outcome.channel,
            outcome.destination,
            outcome.status,
            outcome.detail,
        )
    return outcomes


async def deliver_safely(
    settings: Settings,
    repo: Repository,
    deliverer: Deliverer,
    *,
    now: datetime,
    logger: logging.Logger = _LOG,
) -> list[Outcome]:
    """``deliver_after_round`` for the scheduler: every failure is logged, none is raised.

    A delivery that fails must not count as a failed collection round, nor stop the loop.
    """
    try:
        return await deliver_after_round(settings, repo, deliverer, now=now, logger=logger)
    except FedimeterError as exc:
        logger.warning("the %s report was not delivered: %s", settings.deliver, exc)
    except Exception:
        logger.exception("the %s report was not delivered", settings.deliver)
    return []
