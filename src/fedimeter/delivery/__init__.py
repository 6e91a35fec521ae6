"""Delivering reports: a post (or thread) on Mastodon, a webhook, an e-mail. See docs/delivery.md.

``Deliverer.deliver`` sends one report by the channels asked for, once per report and place;
``deliver_after_round`` is what the scheduler and ``fedimeter collect`` call when scheduled
delivery is on.
"""

from fedimeter.delivery.scheduled import deliver_after_round, deliver_safely, scheduled_period
from fedimeter.delivery.service import Deliverer, Outcome, report_key, selection_key

__all__ = [
    "Deliverer",
    "Outcome",
    "deliver_after_round",
    "deliver_safely",
    "report_key",
    "scheduled_period",
    "selection_key",
]
