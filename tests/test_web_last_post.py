"""The account page's "Last post": today, 1 day ago, N days ago; never "0 days ago"."""

from __future__ import annotations

import re

import pytest

from apihelpers import api, api_settings
from fedimeter.config import Settings
from fedimeter.domain.models import Handle, InstanceAddress, ResolvedAccount
from fedimeter.storage.records import NewSample, RunProgress
from fedimeter.storage.repository import Repository
from test_web import DAY, NOW

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


async def _account(repo: Repository, name: str, posted_days_ago: int) -> int:
    """An account whose last post was ``posted_days_ago`` days before NOW."""
    run, _ = await repo.start_run(NOW - 3 * DAY, f"test:{name}", lambda _r: False)
    resolved = ResolvedAccount(
        handle=Handle(name, "example.org"),
        home=InstanceAddress("social.example"),
        remote_id=name,
        display_name=name,
    )
    account = await repo.add_account(resolved, NOW - 3 * DAY)
    posted = NOW - posted_days_ago * DAY
    samples = [NewSample(account.id, NOW - d * DAY, 100, 10, 500, posted) for d in range(2)]
    await repo.commit_batch(run.id, NOW, RunProgress(), samples=samples)
    await repo.finish_run(run.id, NOW, RunProgress())
    return account.id


@pytest.mark.parametrize(("days", "said"), [(0, "today"), (1, "1 day ago"), (5, "5 days ago")])
async def test_the_last_post_says_today_for_today(
    repo: Repository, settings: Settings, days: int, said: str
) -> None:
    """``2026-03-31T03:00:30+00:00 (today)``, not ``(0 days ago)``."""
    account = await _account(repo, f"user{days}", days)
    with api(api_settings(settings), clock=lambda: NOW) as http:
        html = http.get(f"/accounts/{account}").text
    row = re.search(r'<th scope="row">Last post</th><td>(.*?)</td>', html)
    assert row is not None, html
    assert row[1].endswith(f"({said})"), row[1]
