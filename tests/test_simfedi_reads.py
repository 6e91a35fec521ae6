"""Reads from the simulated fediverse over real sockets: hashtags, trends, timelines, paging.

Paging requests meet Mastodon's second throttle, which these tests cover with the endpoints.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from fedimeter.simfedi import (
    DEFAULT_START,
    MASTODON_PAGING_LIMIT,
    Fault,
    RateLimit,
    SimAccount,
    SimFediverse,
    SimInstance,
    Visibility,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

DAY = 86400
# Keys of Mastodon's GET /api/v1/tags/:name example (shared/mastodon-api/examples/
# tag_get_caturday.json) that every answer has; "following" and "featuring" need a token.
TAG_KEYS = {"id", "name", "url", "history"}
# Status fields a client computing engagement reads (REST::StatusSerializer).
ENGAGEMENT_KEYS = {
    "id",
    "created_at",
    "in_reply_to_id",
    "in_reply_to_account_id",
    "reblog",
    "visibility",
    "replies_count",
    "reblogs_count",
    "favourites_count",
    "content",
    "url",
    "uri",
    "account",
}
SNOWFLAKE = re.compile(r"^\d{15,}$")
TOO_MANY = {"error": "Too many requests"}


@pytest.fixture
def world() -> SimFediverse:
    """An empty world with a fixed seed."""
    return SimFediverse(seed=1)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A sync httpx client with timeouts short enough to fail a hang, long enough for a busy CI."""
    with httpx.Client(timeout=20.0) as http_client:
        yield http_client


def get(
    client: httpx.Client,
    instance: SimInstance,
    path: str,
    token: str | None = None,
    **params: Any,
) -> httpx.Response:
    """GET ``path`` on ``instance``, with a token if given."""
    headers = {"Authorization": f"Bearer {token}"} if token else None
    return client.get(f"{instance.base_url}{path}", params=params or None, headers=headers)


def timeline(
    client: httpx.Client, account: SimAccount, token: str | None = None, **params: Any
) -> httpx.Response:
    """GET /api/v1/accounts/:id/statuses of ``account`` on its instance."""
    return get(client, account.instance, f"/api/v1/accounts/{account.id}/statuses", token, **params)


def midnight(day: date) -> str:
    """The history ``day`` value of ``day``: Unix time of its UTC midnight, as a string."""
    return str(int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()))


def reset_of(response: httpx.Response) -> float:
    """X-RateLimit-Reset of ``response`` as epoch seconds."""
    return datetime.fromisoformat(response.headers["x-ratelimit-reset"]).timestamp()


def ids(response: httpx.Response) -> list[str]:
    """The ids of the statuses in ``response``."""
    return [status["id"] for status in response.json()]


def wait_for_fresh_window(window: float) -> None:
    """Sleep until just after the next fixed-window boundary, so a burst fits in one window."""
    now = time.time()
    time.sleep(math.floor(now / window) * window + window - now + 0.01)


def old_account(instance: SimInstance, name: str = "alice") -> SimAccount:
    """An account old enough for any history a test gives it."""
    return instance.add_account(name, created_days_ago=400)


# Hashtags ----------------------------------------------------------------------------------------


def test_tag_history_is_seven_utc_days_newest_first_across_a_day_boundary(
    client: httpx.Client,
) -> None:
    """History is today and the six days before, by the simulated clock, shifting at midnight."""
    world = SimFediverse(seed=1, start=datetime(2026, 1, 5, 23, 59, tzinfo=UTC))
    alpha = world.add_instance("alpha")
    token = alpha.add_token(old_account(alpha))
    alpha.tag_history(
        "Caturday",
        {date(2026, 1, 5): (12, 5), date(2026, 1, 3): (4, 4), date(2025, 12, 30): (9, 1)},
    )
    with world.run_in_thread():
        before = get(client, alpha, "/api/v1/tags/Caturday")
        world.advance(minutes=2)  # 2026-01-06 00:01 UTC: a new, empty day
        after = get(client, alpha, "/api/v1/tags/Caturday")
        signed_in = get(client, alpha, "/api/v1/tags/Caturday", token)
    body = before.json()
    assert before.status_code == 200
    assert set(body) == TAG_KEYS
    assert (body["name"], body["url"]) == ("Caturday", f"{alpha.base_url}/tags/caturday")
    days = [date(2026, 1, 5) - timedelta(days=back) for back in range(7)]
    assert [entry["day"] for entry in body["history"]] == [midnight(day) for day in days]
    assert [(entry["uses"], entry["accounts"]) for entry in body["history"]] == [
        ("12", "5"),
        ("0", "0"),
        ("4", "4"),
        ("0", "0"),
        ("0", "0"),
        ("0", "0"),
        ("9", "1"),
    ]
    assert all(isinstance(value, str) for entry in body["history"] for value in entry.values())
    shifted = after.json()["history"]
    assert shifted[0] == {"day": midnight(date(2026, 1, 6)), "accounts": "0", "uses": "0"}
    assert shifted[1]["uses"] == "12"
    assert len(shifted) == 7
    assert "9" not in [entry["uses"] for entry in shifted]  # 2025-12-30 fell off
    assert signed_in.json()["following"] is False
    assert signed_in.json()["featuring"] is False


def test_tag_names_ignore_case_and_accents_and_keep_the_first_spelling(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Any case or accents find the tag; it shows as first spelled, its URL normalized."""
    alpha = world.add_instance("alpha")
    alpha.tag_uses("Caturday", uses=3, accounts=2)
    alpha.tag_uses("CATURDAY", day=date(2026, 1, 4), uses=1, accounts=1)  # the same tag
    alpha.tag_uses("Café", uses=7, accounts=7)
    with world.run_in_thread():
        answers = [get(client, alpha, f"/api/v1/tags/{name}") for name in ("caturday", "CaTuRdAy")]
        cafe = get(client, alpha, "/api/v1/tags/cafe")
        with_accent = get(client, alpha, "/api/v1/tags/CAFÉ")
    tag = alpha.find_tag("caturday")
    assert tag is not None
    assert answers[0].json() == answers[1].json()
    body = answers[0].json()
    assert (body["name"], body["id"], tag.name) == ("Caturday", tag.id, "Caturday")
    assert [entry["uses"] for entry in body["history"][:2]] == ["3", "1"]
    assert cafe.json()["name"] == with_accent.json()["name"] == "Café"
    assert cafe.json()["url"].endswith("/tags/cafe")
    assert cafe.json()["history"][0]["uses"] == "7"
    assert [tag.name for tag in alpha.tags.all()] == ["Caturday", "Café"]


def test_unknown_valid_tags_answer_zeros_and_invalid_names_404(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A valid name nobody used is an unsaved tag (id "", zeros); a non-hashtag is 404 Not Found."""
    alpha = world.add_instance("alpha")
    with world.run_in_thread():
        unknown = get(client, alpha, "/api/v1/tags/NeverUsed")
        japanese = get(client, alpha, "/api/v1/tags/日本語")
        invalid = [get(client, alpha, f"/api/v1/tags/{name}") for name in ("123", "cat-day", "a b")]
        no_name = get(client, alpha, "/api/v1/tags/")
    body = unknown.json()
    assert unknown.status_code == 200
    assert (body["id"], body["name"]) == ("", "NeverUsed")
    assert body["url"].endswith("/tags/neverused")
    assert [(entry["uses"], entry["accounts"]) for entry in body["history"]] == [("0", "0")] * 7
    assert japanese.status_code == 200
    assert [response.status_code for response in invalid] == [404, 404, 404]
    assert all(response.json() == {"error": "Not Found"} for response in invalid)
    assert no_name.status_code == 404
    assert alpha.tags.all() == []  # looking a tag up creates nothing


@pytest.mark.parametrize(
    ("software", "version", "served"),
    [
        ("mastodon", "4.0.0", True),
        ("mastodon", "4.3.2", True),
        ("mastodon", "3.5.3", False),
        ("pleroma", "2.6.0", False),
        ("gotosocial", "0.17.3", False),
    ],
)
def test_tags_endpoint_exists_from_mastodon_4_0(
    world: SimFediverse, client: httpx.Client, software: str, version: str, served: bool
) -> None:
    """GET /api/v1/tags/:name answers on Mastodon 4.0+, elsewhere it is a missing route."""
    server = world.add_instance("server", software=software, version=version)
    server.tag_uses("caturday", uses=2, accounts=1)
    with world.run_in_thread():
        response = get(client, server, "/api/v1/tags/caturday")
    if served:
        assert response.status_code == 200
        assert response.json()["history"][0]["uses"] == "2"
    else:
        assert response.status_code == 404
        assert response.json() == {"error": "Record not found"}
    assert world.count(endpoint="tag") == 1


def test_todays_usage_may_change_during_the_day(world: SimFediverse, client: httpx.Client) -> None:
    """add_tag_uses grows today's figures and tag_uses replaces them; each answer is current."""
    alpha = world.add_instance("alpha")
    with world.run_in_thread():
        alpha.add_tag_uses("fediverse", uses=2, accounts=2)
        first = get(client, alpha, "/api/v1/tags/fediverse").json()["history"][0]
        world.advance(hours=3)
        alpha.add_tag_uses("Fediverse", uses=3, accounts=1)
        second = get(client, alpha, "/api/v1/tags/fediverse").json()["history"][0]
        alpha.tag_uses("fediverse", uses=10, accounts=4)
        third = get(client, alpha, "/api/v1/tags/fediverse").json()["history"][0]
    assert (first["uses"], first["accounts"]) == ("2", "2")
    assert (second["uses"], second["accounts"]) == ("5", "3")
    assert (third["uses"], third["accounts"]) == ("10", "4")
    assert first["day"] == second["day"] == midnight(DEFAULT_START.date())


def test_tag_figures_and_names_are_checked(world: SimFediverse) -> None:
    """Invalid names, negative figures, more accounts than uses and a bare string are refused."""
    alpha = world.add_instance("alpha")
    with pytest.raises(ValueError, match="not a valid hashtag"):
        alpha.tag_uses("#caturday", uses=1, accounts=1)
    with pytest.raises(ValueError, match="not a valid hashtag"):
        alpha.trending_tags = ["ok", "123"]
    with pytest.raises(ValueError, match="more accounts"):
        alpha.tag_uses("caturday", uses=1, accounts=2)
    with pytest.raises(ValueError, match="negative"):
        alpha.add_tag_uses("caturday", uses=-1, accounts=0)
    with pytest.raises(ValueError, match="timezone"):
        alpha.tag_uses("caturday", day=datetime(2026, 1, 1), uses=1, accounts=1)  # noqa: DTZ001
    with pytest.raises(TypeError, match="list of names"):
        alpha.trending_tags = "caturday"
    assert alpha.trending_tags == []


# Trends ------------------------------------------------------------------------------------------


def test_trends_list_tags_in_trend_order_with_their_history(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Trending tags come in the order set, shaped like tags, with their usage."""
    alpha = world.add_instance("alpha")
    alpha.tag_uses("Caturday", uses=30, accounts=20)
    alpha.trending_tags = ["fediverse", "Caturday", "FEDIVERSE"]
    with world.run_in_thread():
        response = get(client, alpha, "/api/v1/trends/tags")
        alpha.trending_tags = ["caturday"]
        changed = get(client, alpha, "/api/v1/trends/tags")
    body = response.json()
    assert [tag["name"] for tag in body] == ["fediverse", "Caturday"]
    assert all(set(tag) == TAG_KEYS and len(tag["history"]) == 7 for tag in body)
    assert body[1]["history"][0]["uses"] == "30"
    assert body[0]["history"][0]["uses"] == "0"
    assert "link" not in response.headers  # a partial page: no next, offset 0: no prev
    assert [tag["name"] for tag in changed.json()] == ["Caturday"]


def test_trends_limit_defaults_to_10_caps_at_20_and_pages_by_offset(
    world: SimFediverse, client: httpx.Client
) -> None:
    """limit is 10 by default and at most 20; Link pages by offset until a short page."""
    alpha = world.add_instance("alpha")
    names = [f"tag{number:02d}" for number in range(25)]
    alpha.trending_tags = names
    with world.run_in_thread():
        default = get(client, alpha, "/api/v1/trends/tags")
        capped = get(client, alpha, "/api/v1/trends/tags", limit=100)
        negative = get(client, alpha, "/api/v1/trends/tags", limit=-3)
        pages = [get(client, alpha, "/api/v1/trends/tags", limit=7)]
        while "next" in pages[-1].links:
            pages.append(client.get(pages[-1].links["next"]["url"]))
    base = f"{alpha.base_url}/api/v1/trends/tags"
    assert [tag["name"] for tag in default.json()] == names[:10]
    assert default.headers["link"] == f'<{base}?offset=10>; rel="next"'
    assert len(capped.json()) == 20
    assert len(negative.json()) == 3  # |to_i|, as Mastodon reads it
    assert [len(page.json()) for page in pages] == [7, 7, 7, 4]
    assert [tag["name"] for page in pages for tag in page.json()] == names
    assert pages[1].headers["link"] == f'<{base}?limit=7&offset=14>; rel="next"'  # 7 is not > 7
    assert pages[2].headers["link"] == (
        f'<{base}?limit=7&offset=21>; rel="next", <{base}?limit=7&offset=7>; rel="prev"'
    )
    assert pages[3].headers["link"] == f'<{base}?limit=7&offset=14>; rel="prev"'


def test_trends_turned_off_answer_an_empty_list(world: SimFediverse, client: httpx.Client) -> None:
    """An instance with trends off answers []; turning them on serves the list at once."""
    alpha = world.add_instance("alpha", trends=False)
    alpha.trending_tags = ["caturday"]
    with world.run_in_thread():
        off = get(client, alpha, "/api/v1/trends/tags")
        alpha.trends_enabled = True
        on = get(client, alpha, "/api/v1/trends/tags")
    assert (off.status_code, off.json()) == (200, [])
    assert [tag["name"] for tag in on.json()] == ["caturday"]


@pytest.mark.parametrize(
    ("version", "old_path", "new_path"),
    [("2.9.4", 404, 404), ("3.0.0", 200, 404), ("3.4.10", 200, 404), ("3.5.0", 200, 200)],
)
def test_trends_routes_follow_the_version(
    world: SimFediverse, client: httpx.Client, version: str, old_path: int, new_path: int
) -> None:
    """/api/v1/trends exists from Mastodon 3.0, /api/v1/trends/tags from 3.5."""
    server = world.add_instance("server", version=version)
    server.trending_tags = ["caturday"]
    with world.run_in_thread():
        old = get(client, server, "/api/v1/trends")
        new = get(client, server, "/api/v1/trends/tags")
    assert (old.status_code, new.status_code) == (old_path, new_path)
    if old_path == 200:
        assert old.json()[0]["name"] == "caturday"
        assert "deprecation" not in old.headers  # Mastodon marks it deprecated from 4.0


def test_the_old_trends_path_is_deprecated_on_mastodon_4(
    world: SimFediverse, client: httpx.Client
) -> None:
    """On Mastodon 4, /api/v1/trends answers like /api/v1/trends/tags with a Deprecation header."""
    alpha = world.add_instance("alpha", version="4.2.0")
    alpha.trending_tags = ["caturday"]
    with world.run_in_thread():
        old = get(client, alpha, "/api/v1/trends")
        new = get(client, alpha, "/api/v1/trends/tags")
    assert old.json() == new.json()
    assert old.headers["deprecation"] == f"@{int(datetime(2022, 3, 30, tzinfo=UTC).timestamp())}"
    assert "deprecation" not in new.headers


# Account timelines -------------------------------------------------------------------------------


def test_statuses_carry_what_engagement_needs(world: SimFediverse, client: httpx.Client) -> None:
    """Statuses have ids that grow with time, their reply links, counts and boosted statuses."""
    alpha = world.add_instance("alpha")
    alice, bob = old_account(alpha, "alice"), old_account(alpha, "bob")
    now = world.now
    bobs = bob.add_status("Bob's post", created_at=now - timedelta(days=3), favourites=2)
    first = alice.add_status(
        "Hello <world>", created_at=now - timedelta(days=2), favourites=5, reblogs=1, replies=2
    )
    reply = alice.add_status("To Bob", created_at=now - timedelta(days=1), reply_to=bobs)
    boost = alice.add_status(created_at=now - timedelta(hours=1), boost_of=first)
    bob.add_status("Nice", reply_to=first)  # a reply stored on the instance
    with world.run_in_thread():
        response = timeline(client, alice)
    body = response.json()
    assert response.status_code == 200
    assert ids(response) == [boost.id, reply.id, first.id]
    assert all(set(status) >= ENGAGEMENT_KEYS for status in body)
    assert all(SNOWFLAKE.match(status["id"]) for status in body)
    assert int(boost.id) > int(reply.id) > int(first.id) > int(bobs.id)
    assert int(first.id) >> 16 == int(first.created_at.timestamp() * 1000)
    shown_boost, shown_reply, shown_first = body
    assert (shown_first["favourites_count"], shown_first["reblogs_count"]) == (5, 2)  # 1 + boost
    assert shown_first["replies_count"] == 3  # 2 from elsewhere + bob's
    assert shown_first["content"] == "<p>Hello &lt;world&gt;</p>"
    assert shown_first["created_at"] == "2026-01-03T12:00:00.000Z"
    assert shown_first["url"] == f"{alice.profile_url}/{first.id}"
    assert shown_first["uri"] == f"{alice.actor_url}/statuses/{first.id}"
    assert (shown_reply["in_reply_to_id"], shown_reply["in_reply_to_account_id"]) == (
        bobs.id,
        bob.id,
    )
    assert shown_reply["reblog"] is None
    assert shown_boost["reblog"]["id"] == first.id
    assert shown_boost["reblog"]["favourites_count"] == 5
    assert (shown_boost["content"], shown_boost["favourites_count"]) == ("", 0)
    assert shown_boost["uri"] == f"{alice.actor_url}/statuses/{boost.id}/activity"
    assert shown_boost["account"]["id"] == alice.id
    assert shown_boost["visibility"] == "public"


def test_engagement_may_change_while_serving(world: SimFediverse, client: httpx.Client) -> None:
    """A status's engagement is read on every request, so it may grow during a test."""
    alpha = world.add_instance("alpha")
    alice = old_account(alpha)
    status = alice.add_status("Growing", favourites=1)
    with world.run_in_thread():
        before = timeline(client, alice).json()[0]["favourites_count"]
        status.engagement.favourites += 10
        after = timeline(client, alice).json()[0]["favourites_count"]
    assert (before, after) == (1, 11)


def test_the_public_sees_public_and_unlisted_the_author_everything(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Without a token (or with another's) only public and unlisted; the author's token all."""
    alpha = world.add_instance("alpha")
    alice, bob = old_account(alpha, "alice"), old_account(alpha, "bob")
    alice_token, bob_token = alpha.add_token(alice), alpha.add_token(bob)
    start = world.now - timedelta(days=1)
    visibilities: tuple[Visibility, ...] = ("public", "unlisted", "private", "direct")
    made = {
        visibility: alice.add_status(
            visibility, created_at=start + timedelta(minutes=n), visibility=visibility
        )
        for n, visibility in enumerate(visibilities)
    }
    with world.run_in_thread():
        anonymous = timeline(client, alice)
        other = timeline(client, alice, bob_token)
        author = timeline(client, alice, alice_token)
    public = [made["unlisted"].id, made["public"].id]
    assert ids(anonymous) == ids(other) == public
    assert ids(author) == [made[v].id for v in ("direct", "private", "unlisted", "public")]
    assert "favourited" not in anonymous.json()[0]
    assert author.json()[0]["favourited"] is False


def test_link_headers_walk_the_whole_timeline(world: SimFediverse, client: httpx.Client) -> None:
    """next (max_id = oldest shown) and prev (min_id = newest shown) walk every page, exactly."""
    alpha = world.add_instance("alpha", paging_limit=None)
    alice = old_account(alpha)
    made = alice.seed_statuses(45, days=20)
    newest_first = [status.id for status in sorted(made, key=lambda s: int(s.id), reverse=True)]
    with world.run_in_thread():
        pages = [timeline(client, alice, limit=10)]
        while "next" in pages[-1].links:
            pages.append(client.get(pages[-1].links["next"]["url"]))
        back = client.get(pages[2].links["prev"]["url"])
        past_the_end = timeline(client, alice, max_id=newest_first[-1])
    base = f"{alpha.base_url}/api/v1/accounts/{alice.id}/statuses"
    first = pages[0]
    assert first.headers["link"] == (
        f'<{base}?limit=10&max_id={newest_first[9]}>; rel="next", '
        f'<{base}?limit=10&min_id={newest_first[0]}>; rel="prev"'
    )
    assert [len(page.json()) for page in pages] == [10, 10, 10, 10, 5]
    assert [status_id for page in pages for status_id in ids(page)] == newest_first
    assert "next" not in pages[-1].links  # a short page is the last
    assert pages[-1].links["prev"]["url"] == f"{base}?limit=10&min_id={newest_first[40]}"
    assert ids(back) == newest_first[10:20]  # the statuses right after min_id, newest first
    assert past_the_end.json() == []
    assert "link" not in past_the_end.headers


def test_limit_is_20_by_default_and_at_most_40(world: SimFediverse, client: httpx.Client) -> None:
    """Without limit a page has 20 statuses; more than 40 asked gives 40; "abc" is 0."""
    alpha = world.add_instance("alpha")
    alice = old_account(alpha)
    alice.seed_statuses(50)
    with world.run_in_thread():
        default = timeline(client, alice)
        capped = timeline(client, alice, limit=80)
        three = timeline(client, alice, limit=3)
        nonsense = timeline(client, alice, limit="abc")
    assert [len(r.json()) for r in (default, capped, three)] == [20, 40, 3]
    assert "limit=" not in default.links["next"]["url"]
    assert "limit=80" in capped.links["next"]["url"]  # the parameter as given
    assert nonsense.json() == []


def test_since_id_and_min_id_bound_from_below(world: SimFediverse, client: httpx.Client) -> None:
    """since_id gives the newest above it, min_id those right after it; both newest first."""
    alpha = world.add_instance("alpha")
    alice = old_account(alpha)
    made = alice.seed_statuses(10)  # oldest first, ids ascending
    order = [status.id for status in made]
    with world.run_in_thread():
        since = timeline(client, alice, since_id=order[2], limit=3)
        after = timeline(client, alice, min_id=order[2], limit=3)
        between = timeline(client, alice, min_id=order[2], max_id=order[4])
        both = timeline(client, alice, since_id=order[8], min_id=order[2], limit=2)
    assert ids(since) == order[::-1][:3]
    assert ids(after) == [order[5], order[4], order[3]]
    assert ids(between) == [order[3]]
    assert ids(both) == [order[4], order[3]]  # since_id is ignored when min_id is given


def test_exclude_replies_keeps_threads_and_exclude_reblogs_drops_boosts(
    world: SimFediverse, client: httpx.Client
) -> None:
    """exclude_replies drops replies to others only, exclude_reblogs boosts; Link keeps both."""
    alpha = world.add_instance("alpha")
    alice, bob = old_account(alpha, "alice"), old_account(alpha, "bob")
    now = world.now
    bobs = bob.add_status("Bob", created_at=now - timedelta(days=5))
    post = alice.add_status("Thread 1/2", created_at=now - timedelta(days=4))
    thread = alice.add_status("Thread 2/2", created_at=now - timedelta(days=3), reply_to=post)
    answer = alice.add_status("@bob yes", created_at=now - timedelta(days=2), reply_to=bobs)
    boost = alice.add_status(created_at=now - timedelta(days=1), boost_of=bobs)
    with world.run_in_thread():
        everything = timeline(client, alice)
        no_replies = timeline(client, alice, exclude_replies="true")
        no_boosts = timeline(client, alice, exclude_reblogs=1)
        neither = timeline(client, alice, exclude_replies="1", exclude_reblogs="true", limit=1)
        false_flag = timeline(client, alice, exclude_replies="false", exclude_reblogs="0")
    assert ids(everything) == [boost.id, answer.id, thread.id, post.id]
    assert ids(no_replies) == [boost.id, thread.id, post.id]
    assert ids(no_boosts) == [answer.id, thread.id, post.id]
    assert ids(neither) == [thread.id]
    assert neither.links["next"]["url"].endswith(
        f"?exclude_reblogs=true&exclude_replies=1&limit=1&max_id={thread.id}"
    )
    assert ids(false_flag) == ids(everything)


def test_pinned_and_only_media_answer_empty(world: SimFediverse, client: httpx.Client) -> None:
    """The simulator has no pins nor media: those filters answer [] without a Link."""
    alpha = world.add_instance("alpha")
    alice = old_account(alpha)
    alice.add_status("plain")
    with world.run_in_thread():
        pinned = timeline(client, alice, pinned="true")
        media = timeline(client, alice, only_media="true")
        not_pinned = timeline(client, alice, pinned="false")
    assert pinned.json() == media.json() == []
    assert "link" not in pinned.headers
    assert len(not_pinned.json()) == 1


def test_posted_statuses_join_the_timeline(world: SimFediverse, client: httpx.Client) -> None:
    """Statuses posted through POST /api/v1/statuses and added by a test share one timeline."""
    alpha = world.add_instance("alpha")
    alice = old_account(alpha)
    token = alpha.add_token(alice)
    older = alice.add_status("Seeded", created_at=world.now - timedelta(days=1))
    with world.run_in_thread():
        posted = client.post(
            f"{alpha.base_url}/api/v1/statuses",
            headers={"Authorization": f"Bearer {token}"},
            json={"status": "Posted", "in_reply_to_id": older.id},
        ).json()
        shown = timeline(client, alice)
    assert ids(shown) == [posted["id"], older.id]
    assert shown.json()[1]["replies_count"] == 1
    assert alice.statuses == 2  # both count as posts


def test_unknown_suspended_and_deleted_accounts(world: SimFediverse, client: httpx.Client) -> None:
    """Unknown ids are 404; a suspended account's timeline is empty; a deleted one is gone."""
    alpha = world.add_instance("alpha")
    gone = world.add_instance("gone", gone_status=410)
    alice, bob = old_account(alpha, "alice"), old_account(alpha, "bob")
    carol = old_account(gone, "carol")
    for account in (alice, bob, carol):
        account.add_status("hi")
    bob.suspended = True
    alice.deleted = carol.deleted = True
    with world.run_in_thread():
        unknown = get(client, alpha, "/api/v1/accounts/12345/statuses")
        suspended = timeline(client, bob)
        deleted = timeline(client, alice)
        deleted_410 = timeline(client, carol)
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Record not found"})
    assert (suspended.status_code, suspended.json()) == (200, [])
    assert "link" not in suspended.headers
    assert (deleted.status_code, deleted_410.status_code) == (404, 410)
    assert world.count(endpoint="account_statuses") == 4


@pytest.mark.parametrize(
    ("software", "version", "needs_token"),
    [("pleroma", "2.6.0", False), ("gotosocial", "0.17.3", True), ("pixelfed", "0.12.3", True)],
)
def test_other_software_serves_timelines_in_its_id_style(
    world: SimFediverse, client: httpx.Client, software: str, version: str, needs_token: bool
) -> None:
    """Pleroma pages with its flake ids; GoToSocial and Pixelfed want a token first."""
    server = world.add_instance("server", software=software, version=version)
    alice = old_account(server)
    made = alice.seed_statuses(5)
    token = server.add_token(alice)
    with world.run_in_thread():
        anonymous = timeline(client, alice)
        signed_in = timeline(client, alice, token, limit=2)
        older = client.get(
            signed_in.links["next"]["url"], headers={"Authorization": f"Bearer {token}"}
        )
    assert anonymous.status_code == (401 if needs_token else 200)
    newest_first = [status.id for status in reversed(made)]
    assert ids(signed_in) + ids(older) == newest_first[:4]
    assert len(made[0].id) == len(alice.id)


# Giving accounts a history -----------------------------------------------------------------------


def test_seeded_histories_repeat_with_the_seed() -> None:
    """Equal seeds give equal histories: moments, texts, replies, boosts and engagement."""

    def history(
        seed: int,
    ) -> list[tuple[str, datetime, str, str | None, str | None, int, int, int]]:
        world = SimFediverse(seed=seed)
        alpha = world.add_instance("alpha")
        alice, bob = old_account(alpha, "alice"), old_account(alpha, "bob")
        bob.seed_statuses(20)
        made = alice.seed_statuses(60, reply_share=0.3, boost_share=0.2, favourites=(0, 50))
        return [
            (
                s.id,
                s.created_at,
                s.text,
                s.in_reply_to_id,
                s.reblog.id if s.reblog else None,
                s.engagement.favourites,
                s.engagement.reblogs,
                s.engagement.replies,
            )
            for s in made
        ]

    first, again, other = history(5), history(5), history(6)
    assert first == again
    assert first != other
    replies = [entry for entry in first if entry[3] is not None]
    boosts = [entry for entry in first if entry[4] is not None]
    assert 5 < len(replies) < 30
    assert 3 < len(boosts) < 25
    assert all(entry[5:] == (0, 0, 0) for entry in boosts)
    assert max(entry[5] for entry in first) > 10  # drawn from (0, 50)
    moments = [entry[1] for entry in first]
    assert moments == sorted(moments)
    assert [int(entry[0]) for entry in first] == sorted(int(entry[0]) for entry in first)
    assert DEFAULT_START - timedelta(days=30) <= moments[0]


def test_seeding_stays_within_the_accounts_life_and_counts_posts(world: SimFediverse) -> None:
    """Seeded moments never precede the account; each status counts toward statuses."""
    alpha = world.add_instance("alpha")
    young = alpha.add_account("young", created_days_ago=2, statuses=10, last_status_days_ago=None)
    made = young.seed_statuses(30, days=30)
    assert all(status.created_at >= young.created_at for status in made)
    assert young.statuses == 40
    assert young.last_status_at == max(status.created_at for status in made)
    with pytest.raises(ValueError, match="sum to 1"):
        young.seed_statuses(3, reply_share=0.7, boost_share=0.5)
    with pytest.raises(ValueError, match="low <= high"):
        young.seed_statuses(3, favourites=(5, 1))


def test_add_status_counts_and_keeps_the_latest_post(world: SimFediverse) -> None:
    """An added status counts as a post; a backdated one leaves a later last_status_at alone."""
    alpha = world.add_instance("alpha")
    alice = alpha.add_account("alice", created_days_ago=100, statuses=5, last_status_days_ago=1.0)
    alice.add_status("Old", created_at=world.now - timedelta(days=10))
    assert (alice.statuses, alice.last_status_at) == (6, world.now - timedelta(days=1))
    alice.add_status("Now")
    assert (alice.statuses, alice.last_status_at) == (7, world.now)
    twins = [alice.add_status(f"twin {n}", created_at=world.now) for n in range(3)]
    assert [int(s.id) for s in twins] == sorted(int(s.id) for s in twins)  # the order added
    assert len({s.id for s in alpha.statuses}) == len(alpha.statuses)


def test_add_status_refuses_impossible_histories(world: SimFediverse) -> None:
    """Future moments, pre-account moments, replies that boost, foreign or later sources fail."""
    alpha, beta = world.add_instance("alpha"), world.add_instance("beta")
    alice, bob = old_account(alpha, "alice"), old_account(alpha, "bob")
    stranger = old_account(beta, "stranger")
    secret = bob.add_status("secret", visibility="private")
    earlier = world.now - timedelta(days=1)
    with pytest.raises(ValueError, match="after the simulated now"):
        alice.add_status(created_at=world.now + timedelta(seconds=1))
    with pytest.raises(ValueError, match="did not exist"):
        alice.add_status(created_at=alice.created_at - timedelta(days=1))
    with pytest.raises(ValueError, match="either replies or boosts"):
        alice.add_status(reply_to=secret, boost_of=secret)
    with pytest.raises(ValueError, match="must be a status of 'alpha'"):
        alice.add_status(reply_to=stranger.add_status("elsewhere"))
    with pytest.raises(ValueError, match="made after it"):
        alice.add_status(created_at=earlier, reply_to=bob.add_status("later"))
    with pytest.raises(ValueError, match="cannot boost a private"):
        alice.add_status(boost_of=secret)
    with pytest.raises(ValueError, match="timezone"):
        alice.add_status(created_at=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="negative"):
        alice.add_status(favourites=-1)
    assert alice.statuses == 0
    assert bob.add_status(boost_of=secret).reblog is secret  # one's own private post


def test_seeding_works_before_the_world_serves(world: SimFediverse, client: httpx.Client) -> None:
    """Statuses added before serving get their URLs from the address bound later."""
    alpha = world.add_instance("alpha")
    alice = old_account(alpha)
    status = alice.add_status("early")
    with world.run_in_thread():
        shown = timeline(client, alice).json()[0]
        assert status.url == f"{alice.profile_url}/{status.id}"
    assert shown["url"] == status.url


# The paging throttle -----------------------------------------------------------------------------


def test_paging_throttle_refuses_after_its_limit_while_other_calls_pass(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Past the paging budget, paging requests get 429 and the rest of the API still answers."""
    window = 3600.0
    alpha = world.add_instance(
        "alpha",
        rate_limit=RateLimit(limit=100, window=window),
        paging_limit=RateLimit(limit=3, window=window * 2),
    )
    alice = old_account(alpha)
    alice.seed_statuses(30)
    with world.run_in_thread():
        first = timeline(client, alice, limit=5)
        cursor = first.links["next"]["url"]
        paging = [client.get(cursor) for _ in range(4)]
        plain = timeline(client, alice, limit=5)
        tag = get(client, alpha, "/api/v1/tags/caturday")
    assert [r.status_code for r in paging] == [200, 200, 200, 429]
    refused = paging[-1]
    assert refused.json() == TOO_MANY
    assert refused.headers["x-ratelimit-limit"] == "3"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert reset_of(refused) % (window * 2) == 0
    assert "retry-after" not in refused.headers
    assert (plain.status_code, tag.status_code) == (200, 200)
    assert plain.headers["x-ratelimit-limit"] == "100"  # not a paging request: the API budget
    assert plain.headers["x-ratelimit-remaining"] == str(100 - 6)  # the refused one counted too
    assert world.count_over_limit("alpha", throttle="paging") == 1
    assert world.count_over_limit("alpha", throttle="api") == 0
    assert world.count_over_limit("alpha") == 1
    assert world.count("alpha", paging=True) == 4
    assert world.count("alpha", "account_statuses", paging=False) == 2
    assert [record.throttle for record in world.requests][1:5] == [None, None, None, "paging"]


def test_headers_show_the_throttle_closest_to_its_limit(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A paging request shows whichever budget has less left (the API one on a tie)."""
    window = 3600.0
    alpha = world.add_instance(
        "alpha",
        rate_limit=RateLimit(limit=10, window=window),
        paging_limit=RateLimit(limit=4, window=window * 4),
    )
    tight_api = world.add_instance(
        "tight",
        rate_limit=RateLimit(limit=3, window=window),
        paging_limit=RateLimit(limit=50, window=window * 4),
    )
    tie = world.add_instance(
        "tie",
        rate_limit=RateLimit(limit=6, window=window),
        paging_limit=RateLimit(limit=5, window=window * 4),
    )
    with world.run_in_thread():
        paging = get(client, alpha, "/api/v1/instance/peers", page=2)
        plain = get(client, alpha, "/api/v1/instance/peers")
        api_tighter = get(client, tight_api, "/api/v1/instance/peers", max_id="1")
        get(client, tie, "/api/v1/instance/peers")
        tied = get(client, tie, "/api/v1/instance/peers", since_id="1")  # 4 left in both
    assert (paging.headers["x-ratelimit-limit"], paging.headers["x-ratelimit-remaining"]) == (
        "4",
        "3",
    )
    assert reset_of(paging) % (window * 4) == 0
    assert (plain.headers["x-ratelimit-limit"], plain.headers["x-ratelimit-remaining"]) == (
        "10",
        "8",
    )
    assert reset_of(plain) % window == 0
    assert (
        api_tighter.headers["x-ratelimit-limit"],
        api_tighter.headers["x-ratelimit-remaining"],
    ) == (
        "3",
        "2",
    )
    assert (tied.headers["x-ratelimit-limit"], tied.headers["x-ratelimit-remaining"]) == ("6", "4")


def test_a_request_the_api_throttle_refuses_is_not_counted_for_paging(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Rack::Attack stops at the first throttle that refuses: the API one comes first."""
    alpha = world.add_instance(
        "alpha",
        rate_limit=RateLimit(limit=2, window=3600.0),
        paging_limit=RateLimit(limit=10, window=3600.0),
    )
    with world.run_in_thread():
        answers = [get(client, alpha, "/api/v1/instance/peers", max_id="5") for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 429]
    assert answers[2].headers["x-ratelimit-limit"] == "2"
    assert world.count_over_limit(throttle="api") == 1
    assert world.count(paging=True) == 2
    assert [(r.counted, r.paging, r.throttle) for r in world.requests] == [
        (True, True, None),
        (True, True, None),
        (True, False, "api"),
    ]


def test_a_paging_429_names_the_paging_throttle_on_any_path(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A paging 429 shows the paging limit, even with the API budget spent too, on any path.

    Outside /api it is the only answer that carries rate-limit headers.
    """
    alpha = world.add_instance(
        "alpha",
        rate_limit=RateLimit(limit=2, window=3600.0),
        paging_limit=RateLimit(limit=1, window=3600.0),
    )
    beta = world.add_instance("beta", paging_limit=RateLimit(limit=1, window=3600.0))
    with world.run_in_thread():
        allowed, refused = (get(client, alpha, "/api/v1/instance/peers", page="2") for _ in "ab")
        nodeinfo = [client.get(f"{beta.base_url}/.well-known/nodeinfo?page=1") for _ in "ab"]
    assert allowed.headers["x-ratelimit-limit"] == "1"  # paging: 0 left, API: 1 left
    assert refused.status_code == 429
    assert (refused.headers["x-ratelimit-limit"], refused.headers["x-ratelimit-remaining"]) == (
        "1",
        "0",
    )
    assert nodeinfo[0].status_code == 200
    assert "x-ratelimit-limit" not in nodeinfo[0].headers
    assert nodeinfo[1].status_code == 429
    assert nodeinfo[1].json() == TOO_MANY
    assert nodeinfo[1].headers["x-ratelimit-limit"] == "1"
    assert world.count_over_limit(throttle="paging") == 2


def test_the_paging_window_compresses_and_renews(world: SimFediverse, client: httpx.Client) -> None:
    """A short paging window refuses past its limit and renews at its reset, in real time."""
    window = 0.5
    alpha = world.add_instance("alpha", paging_limit=RateLimit(limit=2, window=window))
    with world.run_in_thread():
        wait_for_fresh_window(window)
        burst = [get(client, alpha, "/api/v1/trends/tags", page="2") for _ in range(3)]
        time.sleep(max(0.0, reset_of(burst[-1]) - time.time()) + 0.01)
        renewed = get(client, alpha, "/api/v1/trends/tags", page="2")
        alpha.faults.append(Fault(kind="status", status=503, endpoint="trends", times=1))
        get(client, alpha, "/api/v1/trends/tags", page="2")
        refused_again = get(client, alpha, "/api/v1/trends/tags", page="2")
        alpha.reset_rate_limit()
        after_reset = get(client, alpha, "/api/v1/trends/tags", page="2")
    assert [r.status_code for r in burst] == [200, 200, 429]
    assert math.isclose(reset_of(burst[-1]) % window, 0.0, abs_tol=1e-3)
    assert renewed.status_code == 200
    assert refused_again.status_code == 429  # the faulty answer counted too
    assert after_reset.status_code == 200


def test_paging_means_one_of_four_parameters_given(
    world: SimFediverse, client: httpx.Client
) -> None:
    """page, min_id, max_id or since_id, not blank, on any path; nothing else pages."""
    alpha = world.add_instance("alpha")
    with world.run_in_thread():
        for params in (
            {"page": "2"},
            {"min_id": "1"},
            {"max_id": "1"},
            {"since_id": "1"},
            {"max_id[]": "1"},
            {"max_id": "", "limit": "5"},
            {"max_id": "  "},
            {"offset": "20"},
        ):
            get(client, alpha, "/api/v1/instance/peers", **params)
        client.get(f"{alpha.base_url}/.well-known/nodeinfo", params={"page": "1"})
    assert [record.paging for record in world.requests] == [True] * 5 + [False] * 3 + [True]
    assert world.requests[-1].counted is False  # not an API request: only the paging throttle


def test_paging_limit_is_separate_from_rate_limit(
    world: SimFediverse, client: httpx.Client
) -> None:
    """rate_limit=None keeps Mastodon's paging throttle; paging_limit=None removes it."""
    default = world.add_instance("default", rate_limit=None)
    free = world.add_instance("free", rate_limit=None, paging_limit=None)
    assert default.paging_limit == MASTODON_PAGING_LIMIT
    assert RateLimit(limit=300, window=900.0) == MASTODON_PAGING_LIMIT
    with world.run_in_thread():
        limited = get(client, default, "/api/v1/instance/peers", max_id="1")
        unlimited = get(client, free, "/api/v1/instance/peers", max_id="1")
    assert (limited.headers["x-ratelimit-limit"], limited.headers["x-ratelimit-remaining"]) == (
        "300",
        "299",
    )
    assert "x-ratelimit-limit" not in unlimited.headers
    assert [r.paging for r in world.requests] == [True, False]


def test_a_last_page_shorter_than_the_limit_is_whole() -> None:
    """25 statuses asked 40 at a time: one page of all 25 (a negative slice start cut it)."""
    world = SimFediverse(seed=3)
    inst = world.add_instance("pages", rate_limit=None)
    account = inst.add_account("writer")
    start = world.now - timedelta(days=2)
    made = [
        account.add_status(f"post {n}", created_at=start + timedelta(minutes=n)) for n in range(25)
    ]
    with world.run_in_thread():
        answer = httpx.get(f"{inst.base_url}/api/v1/accounts/{account.id}/statuses?limit=40")
    assert answer.status_code == 200
    assert [s["id"] for s in answer.json()] == [s.id for s in reversed(made)]
