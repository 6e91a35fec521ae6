"""Posting to the simulated fediverse (POST /api/v1/statuses) over real sockets, with httpx."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from fedimeter.simfedi import (
    DEFAULT_START,
    MAX_REQUEST_BODY,
    Fault,
    RateLimit,
    SimAccount,
    SimFediverse,
    SimInstance,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

STATUSES = "/api/v1/statuses"
TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
# Keys of the Status example in Mastodon's documentation (methods/statuses.md, "View a single
# status"), which every simulated status carries too.
STATUS_KEYS = {
    "id",
    "created_at",
    "in_reply_to_id",
    "in_reply_to_account_id",
    "sensitive",
    "spoiler_text",
    "visibility",
    "language",
    "uri",
    "url",
    "replies_count",
    "reblogs_count",
    "favourites_count",
    "favourited",
    "reblogged",
    "muted",
    "bookmarked",
    "content",
    "reblog",
    "application",
    "account",
    "media_attachments",
    "mentions",
    "tags",
    "emojis",
    "card",
    "poll",
}
INVALID_TOKEN = {"error": "The access token is invalid"}
NOT_FOUND = {"error": "Record not found"}


@pytest.fixture
def world() -> SimFediverse:
    """An empty world with a fixed seed."""
    return SimFediverse(seed=1)


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    """A sync httpx client with timeouts short enough to fail a hang, long enough for a busy CI."""
    with httpx.Client(timeout=20.0) as http_client:
        yield http_client


def auth(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}


def post(
    client: httpx.Client,
    instance: SimInstance,
    token: str | None,
    *,
    key: str | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """POST /api/v1/statuses on ``instance`` with ``token`` (and an Idempotency-Key)."""
    headers = dict(kwargs.pop("headers", {}))
    if token is not None:
        headers.update(auth(token))
    if key is not None:
        headers["Idempotency-Key"] = key
    return client.post(f"{instance.base_url}{STATUSES}", headers=headers, **kwargs)


def alice_with_token(instance: SimInstance) -> tuple[SimAccount, str]:
    """Add alice with 10 posts, her last one a day ago, and a token for her."""
    alice = instance.add_account("alice", statuses=10, last_status_days_ago=1.0)
    return alice, instance.add_token(alice)


# Bodies and the entity ---------------------------------------------------------------------------


def test_json_body_posts_a_status_shaped_like_mastodons(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A JSON post answers 200 with a Mastodon Status, stores it and counts it for the author."""
    alpha = world.add_instance("alpha")
    alice, token = alice_with_token(alpha)
    with world.run_in_thread():
        response = post(client, alpha, token, json={"status": "Hello, fediverse!"})
        fetched = client.get(f"{alpha.base_url}{STATUSES}/{response.json()['id']}")
        account = client.get(f"{alpha.base_url}/api/v1/accounts/{alice.id}").json()
    body = response.json()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    assert set(body) >= STATUS_KEYS
    assert isinstance(body["id"], str)
    assert body["id"].isdigit()
    assert int(body["id"]) > int(alice.id)  # a snowflake of the simulated now
    assert TIMESTAMP.match(body["created_at"])
    assert body["created_at"] == "2026-01-05T12:00:00.000Z"
    assert (body["visibility"], body["in_reply_to_id"], body["spoiler_text"]) == (
        "public",
        None,
        "",
    )
    assert body["content"] == "<p>Hello, fediverse!</p>"
    assert body["url"] == f"{alice.profile_url}/{body['id']}"
    assert body["uri"] == f"{alice.actor_url}/statuses/{body['id']}"
    assert body["account"]["id"] == alice.id
    assert body["account"]["statuses_count"] == 11
    [stored] = alpha.statuses
    assert (stored.id, stored.text, stored.account, stored.token) == (
        body["id"],
        "Hello, fediverse!",
        alice,
        token,
    )
    assert stored.created_at == DEFAULT_START
    assert fetched.json()["id"] == body["id"]
    assert account["statuses_count"] == 11
    assert account["last_status_at"] == "2026-01-05"  # today, not the day before


def test_form_and_multipart_bodies_post_like_json(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Form and multipart bodies carry every parameter; query parameters count, the body wins."""
    alpha = world.add_instance("alpha")
    _, token = alice_with_token(alpha)
    form = {
        "status": "Formed",
        "visibility": "unlisted",
        "spoiler_text": "report",
        "language": "de",
    }
    with world.run_in_thread():
        by_form = post(client, alpha, token, data=form)
        by_multipart = post(client, alpha, token, files={"status": (None, "Multi")})
        by_query = post(client, alpha, token, params={"status": "Query", "visibility": "private"})
        body_wins = post(client, alpha, token, params={"status": "Query"}, data={"status": "Body"})
    assert [r.status_code for r in (by_form, by_multipart, by_query, body_wins)] == [200] * 4
    assert by_form.json()["visibility"] == "unlisted"
    assert by_form.json()["spoiler_text"] == "report"
    assert by_form.json()["sensitive"] is True  # a content warning makes it sensitive
    assert by_form.json()["language"] == "de"
    assert [(s.text, s.visibility) for s in alpha.statuses] == [
        ("Formed", "unlisted"),
        ("Multi", "public"),
        ("Query", "private"),
        ("Body", "public"),
    ]
    assert alpha.statuses[0].spoiler_text == "report"


def test_content_is_escaped_html_in_paragraphs(world: SimFediverse, client: httpx.Client) -> None:
    """The content escapes HTML, turns a newline into <br /> and a blank line into a paragraph."""
    alpha = world.add_instance("alpha")
    _, token = alice_with_token(alpha)
    text = 'Top <b>5</b> & "more"\nit\'s here\r\n\r\n\nNext'
    with world.run_in_thread():
        body = post(client, alpha, token, json={"status": text}).json()
    assert body["content"] == (
        "<p>Top &lt;b&gt;5&lt;/b&gt; &amp; &quot;more&quot;<br />it&#39;s here</p><p>Next</p>"
    )
    assert alpha.statuses[0].text == text


def test_malformed_json_is_400_and_posts_nothing(world: SimFediverse, client: httpx.Client) -> None:
    """A JSON body that does not parse is 400, as Rails answers it."""
    alpha = world.add_instance("alpha")
    _, token = alice_with_token(alpha)
    with world.run_in_thread():
        response = post(
            client,
            alpha,
            token,
            content=b'{"status": "cut',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code == 400
    assert alpha.statuses == []


# Authentication ----------------------------------------------------------------------------------


def test_no_wrong_or_revoked_token_is_401(world: SimFediverse, client: httpx.Client) -> None:
    """No token, an unknown, revoked or non-Bearer one: a post is 401 and stores nothing."""
    alpha = world.add_instance("alpha")
    alice, token = alice_with_token(alpha)
    spare = alpha.add_token(alice, "spare-token")
    alpha.revoke_token(spare)
    status = {"status": "Let me in"}
    with world.run_in_thread():
        answers = [
            post(client, alpha, None, json=status),
            post(client, alpha, "not-a-token", json=status),
            post(client, alpha, spare, json=status),
            post(client, alpha, None, json=status, headers={"Authorization": f"Basic {token}"}),
        ]
        accepted = post(client, alpha, token, json=status)
    assert [response.status_code for response in answers] == [401] * 4
    assert all(response.json() == INVALID_TOKEN for response in answers)
    assert accepted.status_code == 200
    assert len(alpha.statuses) == 1
    assert alice.statuses == 11


def test_suspended_author_is_403_and_deleted_author_401(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A suspended author's login is disabled (403); a deleted author's token is invalid (401)."""
    alpha = world.add_instance("alpha")
    alice, alice_token = alice_with_token(alpha)
    bob = alpha.add_account("bob")
    bob_token = alpha.add_token(bob)
    alice.suspended = True
    bob.deleted = True
    with world.run_in_thread():
        suspended = post(client, alpha, alice_token, json={"status": "hi"})
        deleted = post(client, alpha, bob_token, json={"status": "hi"})
    assert suspended.status_code == 403
    assert suspended.json() == {"error": "Your login is currently disabled"}
    assert deleted.json() == INVALID_TOKEN
    assert alpha.statuses == []


def test_tokens_belong_to_their_instance() -> None:
    """add_token refuses another instance's account; max_characters must be positive."""
    world = SimFediverse(seed=1)
    alpha, beta = world.add_instance("alpha"), world.add_instance("beta")
    alice = alpha.add_account("alice")
    with pytest.raises(ValueError, match="does not live"):
        beta.add_token(alice)
    assert alpha.add_token(alice, "fixed") == "fixed"
    assert len(alpha.add_token(alice)) == 43
    with pytest.raises(ValueError, match="max_characters"):
        world.add_instance("tiny", max_characters=0)


def test_a_token_passes_limited_federation(world: SimFediverse, client: httpx.Client) -> None:
    """Limited federation refuses anonymous posts (401) and lets a signed-in user post."""
    closed = world.add_instance("closed", limited_federation=True)
    alice, token = alice_with_token(closed)
    with world.run_in_thread():
        anonymous = post(client, closed, None, json={"status": "hi"})
        signed_in = post(client, closed, token, json={"status": "hi"})
        account = client.get(f"{closed.base_url}/api/v1/accounts/{alice.id}", headers=auth(token))
    assert anonymous.status_code == 401
    assert anonymous.json() == {"error": "This API requires an authenticated user"}
    assert signed_in.status_code == 200
    assert account.status_code == 200


# Length ------------------------------------------------------------------------------------------


def test_text_over_max_characters_is_422_and_at_the_limit_accepted(
    world: SimFediverse, client: httpx.Client
) -> None:
    """500 characters post; 501 are 422 with Mastodon's message; the limit is per instance."""
    alpha = world.add_instance("alpha")
    roomy = world.add_instance("roomy", max_characters=1000)
    _, token = alice_with_token(alpha)
    _, roomy_token = alice_with_token(roomy)
    with world.run_in_thread():
        at_limit = post(client, alpha, token, json={"status": "é" * 500})
        over = post(client, alpha, token, json={"status": "a" * 501})
        roomy_ok = post(client, roomy, roomy_token, json={"status": "a" * 1000})
        roomy_over = post(client, roomy, roomy_token, json={"status": "a" * 1001})
    assert at_limit.status_code == 200
    assert over.status_code == 422
    assert over.json() == {"error": "Validation failed: Text character limit of 500 exceeded"}
    assert roomy_ok.status_code == 200
    assert roomy_over.json() == {
        "error": "Validation failed: Text character limit of 1000 exceeded"
    }
    assert [len(status.text) for status in alpha.statuses + roomy.statuses] == [500, 1000]


def test_every_url_counts_23_characters(world: SimFediverse, client: httpx.Client) -> None:
    """An http(s) URL counts 23 whatever its length: long ones fit, short ones cost more."""
    alpha = world.add_instance("alpha", max_characters=30)
    _, token = alice_with_token(alpha)
    long_url = "https://example.com/" + "x" * 100
    short_url = "http://a.io"
    with world.run_in_thread():
        fits = post(client, alpha, token, json={"status": f"{'a' * 6} {long_url}"})  # 6 + 1 + 23
        one_over = post(client, alpha, token, json={"status": f"{'a' * 7} {long_url}"})
        short = post(client, alpha, token, json={"status": f"{'a' * 7} {short_url}"})  # 20 raw
        trailing_dot = post(client, alpha, token, json={"status": f"{'a' * 5} {long_url}."})
        bare_domain = post(
            client, alpha, token, json={"status": f"{'a' * 6} example.com/{'x' * 20}"}
        )
    assert fits.status_code == 200
    assert one_over.status_code == 422
    assert short.status_code == 422  # 7 + 1 + 23 = 31
    assert trailing_dot.status_code == 200  # the full stop is not part of the URL: 5+1+23+1
    assert bare_domain.status_code == 422  # without a scheme it is plain text


def test_mentions_count_without_their_domain(world: SimFediverse, client: httpx.Client) -> None:
    """@user@domain counts as @user; an e-mail address counts in full."""
    alpha = world.add_instance("alpha", max_characters=10)
    _, token = alice_with_token(alpha)
    with world.run_in_thread():
        fits = post(client, alpha, token, json={"status": "@bob@a-very-long.domain.example hello"})
        over = post(client, alpha, token, json={"status": "@bob@a-very-long.domain.example hello!"})
        email = post(client, alpha, token, json={"status": "x@bob.example"})
    assert fits.status_code == 200  # "@bob hello": 10
    assert over.status_code == 422
    assert email.status_code == 422  # not a mention: 13 characters


def test_characters_are_graphemes_and_the_warning_counts(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Emoji with modifiers and flags count one each, as in Mastodon; spoiler_text counts too."""
    alpha = world.add_instance("alpha", max_characters=10)
    _, token = alice_with_token(alpha)
    skin_tones = "\U0001f44d\U0001f3fd" * 5  # thumbs up, medium skin tone: 10 code points
    flags = "\U0001f1eb\U0001f1f7" * 5  # the French flag: 10 code points
    with world.run_in_thread():
        emoji = post(client, alpha, token, json={"status": skin_tones + flags})
        with_warning = post(client, alpha, token, json={"status": "a" * 8, "spoiler_text": "cw"})
        warning_over = post(client, alpha, token, json={"status": "a" * 8, "spoiler_text": "cw!"})
    assert emoji.status_code == 200
    assert with_warning.status_code == 200
    assert warning_over.status_code == 422


# Other validation --------------------------------------------------------------------------------


def test_blank_status_is_422_but_a_lone_warning_becomes_the_text(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Empty, blank and missing status are 422; a content warning alone is posted as the text."""
    alpha = world.add_instance("alpha")
    alice, token = alice_with_token(alpha)
    with world.run_in_thread():
        blanks = [
            post(client, alpha, token, json={"status": ""}),
            post(client, alpha, token, json={"status": " \n\t"}),
            post(client, alpha, token, json={"visibility": "public"}),
            post(client, alpha, token, data={"status": ""}),
        ]
        lone_warning = post(client, alpha, token, json={"spoiler_text": "Just this"})
    assert [response.status_code for response in blanks] == [422] * 4
    assert blanks[0].json() == {"error": "Validation failed: Text can't be blank"}
    assert lone_warning.status_code == 200
    assert [(s.text, s.spoiler_text) for s in alpha.statuses] == [("Just this", "")]
    assert alice.statuses == 11


def test_visibility_must_be_one_of_four(world: SimFediverse, client: httpx.Client) -> None:
    """public, unlisted, private and direct post; anything else is 422; public is the default."""
    alpha = world.add_instance("alpha")
    _, token = alice_with_token(alpha)
    with world.run_in_thread():
        valid = [
            post(client, alpha, token, json={"status": "hi", "visibility": visibility})
            for visibility in ("public", "unlisted", "private", "direct")
        ]
        default = post(client, alpha, token, json={"status": "hi"})
        invalid = [
            post(client, alpha, token, json={"status": "hi", "visibility": visibility})
            for visibility in ("everyone", "PUBLIC", "limited ")
        ]
    assert [response.json()["visibility"] for response in valid] == [
        "public",
        "unlisted",
        "private",
        "direct",
    ]
    assert default.json()["visibility"] == "public"
    assert [response.status_code for response in invalid] == [422] * 3
    assert len(alpha.statuses) == 5


def test_unknown_in_reply_to_id_is_404(world: SimFediverse, client: httpx.Client) -> None:
    """Replying to an unknown id, another instance's status or one the author cannot see is 404."""
    alpha = world.add_instance("alpha")
    beta = world.add_instance("beta")
    _, token = alice_with_token(alpha)
    bob = alpha.add_account("bob")
    bob_token = alpha.add_token(bob)
    _, beta_token = alice_with_token(beta)
    with world.run_in_thread():
        elsewhere = post(client, beta, beta_token, json={"status": "on beta"}).json()
        private = post(
            client, alpha, bob_token, json={"status": "secret", "visibility": "private"}
        ).json()
        answers = [
            post(client, alpha, token, json={"status": "re", "in_reply_to_id": "12345"}),
            post(client, alpha, token, json={"status": "re", "in_reply_to_id": elsewhere["id"]}),
            post(client, alpha, token, json={"status": "re", "in_reply_to_id": private["id"]}),
        ]
        own_reply = post(
            client, alpha, bob_token, json={"status": "re", "in_reply_to_id": private["id"]}
        )
    assert [response.status_code for response in answers] == [404] * 3
    assert all(response.json() == NOT_FOUND for response in answers)
    assert own_reply.status_code == 200
    assert [status.text for status in alpha.statuses] == ["secret", "re"]


def test_a_thread_replies_to_the_previous_post(world: SimFediverse, client: httpx.Client) -> None:
    """Each part replies to the one before; ids grow, replies are counted, parents are named."""
    alpha = world.add_instance("alpha")
    alice, token = alice_with_token(alpha)
    with world.run_in_thread():
        first = post(client, alpha, token, json={"status": "Report 1/3"}).json()
        second = post(
            client, alpha, token, data={"status": "Report 2/3", "in_reply_to_id": first["id"]}
        ).json()
        third = post(
            client,
            alpha,
            token,
            json={"status": "Report 3/3", "in_reply_to_id": int(second["id"])},  # a JSON number
        ).json()
        shown = client.get(f"{alpha.base_url}{STATUSES}/{first['id']}").json()
    assert second["in_reply_to_id"] == first["id"]
    assert second["in_reply_to_account_id"] == alice.id
    assert third["in_reply_to_id"] == second["id"]
    assert int(first["id"]) < int(second["id"]) < int(third["id"])
    assert shown["replies_count"] == 1
    assert [(s.id, s.in_reply_to_id) for s in alpha.statuses] == [
        (first["id"], None),
        (second["id"], first["id"]),
        (third["id"], second["id"]),
    ]
    assert alice.statuses == 13


# Idempotency -------------------------------------------------------------------------------------


def test_same_idempotency_key_returns_the_first_status(
    world: SimFediverse, client: httpx.Client
) -> None:
    """The same key within an hour answers the first status; other keys and later ones post."""
    alpha = world.add_instance("alpha")
    alice, token = alice_with_token(alpha)
    bob = alpha.add_account("bob")
    bob_token = alpha.add_token(bob)
    with world.run_in_thread():
        first = post(client, alpha, token, key="k1", json={"status": "Once"})
        again = post(client, alpha, token, key="k1", json={"status": "Once more"})
        other_key = post(client, alpha, token, key="k2", json={"status": "Twice"})
        other_account = post(client, alpha, bob_token, key="k1", json={"status": "Bob's"})
        world.advance(minutes=59)
        still = post(client, alpha, token, key="k1", json={"status": "Once"})
        world.advance(minutes=1)
        expired = post(client, alpha, token, key="k1", json={"status": "Later"})
    assert first.status_code == again.status_code == still.status_code == 200
    assert again.json()["id"] == still.json()["id"] == first.json()["id"]
    assert again.json()["content"] == "<p>Once</p>"
    assert len({first.json()["id"], other_key.json()["id"], other_account.json()["id"]}) == 3
    assert expired.json()["id"] != first.json()["id"]
    assert [s.text for s in alpha.statuses] == ["Once", "Twice", "Bob's", "Later"]
    assert [s.idempotency_key for s in alpha.statuses] == ["k1", "k2", "k1", "k1"]
    assert alice.statuses == 13


def test_a_key_is_kept_only_for_a_post_that_succeeded(
    world: SimFediverse, client: httpx.Client
) -> None:
    """A refused post does not use up its key, and a retry after a lost answer posts once."""
    alpha = world.add_instance("alpha")
    _, token = alice_with_token(alpha)
    alpha.faults.append(Fault(kind="status", status=503, endpoint="post", times=1))
    with world.run_in_thread():
        refused = post(client, alpha, token, key="a", json={"status": "first try"})
        retried = post(client, alpha, token, key="a", json={"status": "first try"})
        alpha.faults.append(Fault(kind="truncated", endpoint="post", times=1))
        with pytest.raises(httpx.RemoteProtocolError):
            post(client, alpha, token, key="b", json={"status": "answer lost"})
        recovered = post(client, alpha, token, key="b", json={"status": "answer lost"})
    assert refused.status_code == 503
    assert retried.status_code == 200
    assert recovered.status_code == 200
    assert [s.text for s in alpha.statuses] == ["first try", "answer lost"]
    assert recovered.json()["id"] == alpha.statuses[1].id


# Instance, rate limit, log, faults ---------------------------------------------------------------


def test_max_characters_is_shown_by_the_instance_endpoints(
    world: SimFediverse, client: httpx.Client
) -> None:
    """max_characters is configuration.statuses.max_characters, and max_toot_chars on Pleroma."""
    alpha = world.add_instance("alpha", max_characters=1200)
    plain = world.add_instance("plain")
    pleroma = world.add_instance(
        "pleroma", software="pleroma", version="2.6.0", max_characters=5000
    )
    with world.run_in_thread():
        v2 = client.get(f"{alpha.base_url}/api/v2/instance").json()
        v1 = client.get(f"{alpha.base_url}/api/v1/instance").json()
        default = client.get(f"{plain.base_url}/api/v2/instance").json()
        pleroma_v1 = client.get(f"{pleroma.base_url}/api/v1/instance").json()
        alpha.max_characters = 300
        changed = client.get(f"{alpha.base_url}/api/v2/instance").json()
    assert v2["configuration"]["statuses"]["max_characters"] == 1200
    assert v1["configuration"]["statuses"]["max_characters"] == 1200
    assert "max_toot_chars" not in v1
    assert default["configuration"]["statuses"]["max_characters"] == 500
    assert pleroma_v1["max_toot_chars"] == 5000
    assert changed["configuration"]["statuses"]["max_characters"] == 300


def test_posts_carry_rate_limit_headers_and_get_429(
    world: SimFediverse, client: httpx.Client
) -> None:
    """Posts count toward the API budget with the usual headers; over it, 429 posts nothing."""
    alpha = world.add_instance("alpha", rate_limit=RateLimit(limit=3, window=3600.0))
    _, token = alice_with_token(alpha)
    with world.run_in_thread():
        client.get(f"{alpha.base_url}/api/v1/instance/peers")
        answers = [post(client, alpha, token, json={"status": f"n{n}"}) for n in range(3)]
    assert [response.status_code for response in answers] == [200, 200, 429]
    assert [response.headers["x-ratelimit-remaining"] for response in answers] == ["1", "0", "0"]
    assert answers[0].headers["x-ratelimit-limit"] == "3"
    assert "x-ratelimit-reset" in answers[0].headers
    assert answers[2].json() == {"error": "Too many requests"}
    assert [s.text for s in alpha.statuses] == ["n0", "n1"]
    assert world.count_over_limit("alpha") == 1


def test_the_request_log_records_posts(world: SimFediverse, client: httpx.Client) -> None:
    """Posts appear in the log with method POST, endpoint post, their status and the count."""
    alpha = world.add_instance("alpha")
    _, token = alice_with_token(alpha)
    with world.run_in_thread():
        post(client, alpha, token, json={"status": "logged"})
        post(client, alpha, None, json={"status": "refused"})
        post(client, alpha, token, params={"visibility": "private"}, json={"status": "query"})
    records = world.requests
    assert [(r.method, r.path, r.endpoint, r.status) for r in records] == [
        ("POST", STATUSES, "post", 200),
        ("POST", STATUSES, "post", 401),
        ("POST", STATUSES, "post", 200),
    ]
    assert all(record.counted for record in records)
    assert records[2].query == {"visibility": ["private"]}
    assert world.count(endpoint="post", status=200) == 2


def test_faults_apply_to_posts(world: SimFediverse, client: httpx.Client) -> None:
    """A fault on the post endpoint or the author's id answers instead, and stores nothing."""
    alpha = world.add_instance("alpha")
    alice, token = alice_with_token(alpha)
    bob = alpha.add_account("bob")
    bob_token = alpha.add_token(bob)
    alpha.faults.append(Fault(kind="html", status=502, account_ids={alice.id}, times=1))
    alpha.faults.append(Fault(kind="reset", endpoint="post", times=1))
    with world.run_in_thread():
        proxied = post(client, alpha, token, json={"status": "a"})
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            post(client, alpha, bob_token, json={"status": "b"})
        fine = post(client, alpha, bob_token, json={"status": "c"})
    assert proxied.status_code == 502
    assert proxied.headers["content-type"].startswith("text/html")
    assert fine.status_code == 200
    assert [s.text for s in alpha.statuses] == ["c"]
    assert [r.fault for r in world.requests] == ["html", "reset", None]


def test_a_body_over_the_cap_is_413(world: SimFediverse, client: httpx.Client) -> None:
    """A body over MAX_REQUEST_BODY is 413 before the app; one at the cap reaches it."""
    alpha = world.add_instance("alpha", rate_limit=RateLimit(limit=100, window=3600.0))
    _, token = alice_with_token(alpha)
    envelope = b'{"status":""}'
    at_cap = envelope[:-2] + b"a" * (MAX_REQUEST_BODY - len(envelope)) + b'"}'
    json_type = {"Content-Type": "application/json"}
    with world.run_in_thread():
        huge = post(client, alpha, token, content=at_cap + b" ", headers=json_type)
        capped = post(client, alpha, token, content=at_cap, headers=json_type)
        after = post(client, alpha, token, json={"status": "small"})
    assert len(at_cap) == MAX_REQUEST_BODY
    assert huge.status_code == 413
    assert huge.headers["content-type"].startswith("text/html")
    assert "x-ratelimit-remaining" not in huge.headers
    assert capped.status_code == 422  # read and parsed: too long a text
    assert after.status_code == 200
    assert [s.text for s in alpha.statuses] == ["small"]
    assert [(r.status, r.counted) for r in world.requests] == [
        (413, False),
        (422, True),
        (200, True),
    ]


# Software and reading back -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("software", "version"),
    [
        ("mastodon", "3.0.0"),
        ("pleroma", "2.6.0"),
        ("akkoma", "3.13.2"),
        ("gotosocial", "0.17.3"),
        ("hometown", "1.1.1"),
    ],
)
def test_mastodon_compatible_software_accepts_posts(
    world: SimFediverse, client: httpx.Client, software: str, version: str
) -> None:
    """Every Mastodon-compatible software posts, with ids and URLs in its own style."""
    server = world.add_instance("server", software=software, version=version)
    alice, token = alice_with_token(server)
    with world.run_in_thread():
        response = post(client, server, token, json={"status": "hi"})
        shown = client.get(
            f"{server.base_url}{STATUSES}/{response.json()['id']}", headers=auth(token)
        )
    body = response.json()
    assert response.status_code == 200
    assert len(body["id"]) == len(alice.id)  # the software's id style, as for accounts
    assert body["id"] != alice.id
    assert body["url"].startswith(server.base_url)
    assert shown.json()["id"] == body["id"]
    assert alice.statuses == 11
    assert ("pleroma" in body) is (software in {"pleroma", "akkoma"})


def test_misskey_has_no_post_endpoint(world: SimFediverse, client: httpx.Client) -> None:
    """Misskey has no Mastodon API: posting is 404 and stores nothing."""
    misskey = world.add_instance("misskey", software="misskey", version="2024.11.0")
    _, token = alice_with_token(misskey)
    with world.run_in_thread():
        response = post(client, misskey, token, json={"status": "hi"})
    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert misskey.statuses == []


def test_get_status_shows_what_the_viewer_may_see(
    world: SimFediverse, client: httpx.Client
) -> None:
    """GET a status: public to all, private to its author, unknown 404; GoToSocial wants a token."""
    alpha = world.add_instance("alpha")
    gts = world.add_instance("gts", software="gotosocial", version="0.17.3")
    _, token = alice_with_token(alpha)
    _, gts_token = alice_with_token(gts)
    bob = alpha.add_account("bob")
    bob_token = alpha.add_token(bob)
    with world.run_in_thread():
        public = post(client, alpha, token, json={"status": "all"}).json()["id"]
        private = post(client, alpha, token, json={"status": "me", "visibility": "private"}).json()
        on_gts = post(client, gts, gts_token, json={"status": "gts"}).json()["id"]

        def show(instance: SimInstance, status_id: str, with_token: str | None) -> httpx.Response:
            headers = auth(with_token) if with_token else None
            return client.get(f"{instance.base_url}{STATUSES}/{status_id}", headers=headers)

        anonymous = show(alpha, public, None)
        hidden = show(alpha, private["id"], None)
        to_bob = show(alpha, private["id"], bob_token)
        to_author = show(alpha, private["id"], token)
        unknown = show(alpha, "404", token)
        gts_anonymous = show(gts, on_gts, None)
        gts_signed_in = show(gts, on_gts, gts_token)
    assert anonymous.status_code == 200
    assert "favourited" not in anonymous.json()  # no viewer, no relation fields
    assert (hidden.status_code, to_bob.status_code, unknown.status_code) == (404, 404, 404)
    assert hidden.json() == NOT_FOUND
    assert to_author.json()["content"] == "<p>me</p>"
    assert to_author.json()["favourited"] is False
    assert gts_anonymous.status_code == 401
    assert gts_signed_in.status_code == 200
    assert [r.endpoint for r in world.requests if r.method == "GET"] == ["status"] * 7


def test_get_routes_are_unaffected(world: SimFediverse, client: httpx.Client) -> None:
    """GET ignores request bodies as before; other methods and paths stay 404."""
    alpha = world.add_instance("alpha")
    alice, token = alice_with_token(alpha)
    with world.run_in_thread():
        account_url = f"{alpha.base_url}/api/v1/accounts/{alice.id}"
        plain = client.get(account_url)
        with_body = client.request("GET", account_url, content=b"x" * (MAX_REQUEST_BODY + 10))
        head = client.head(account_url)
        index = client.get(f"{alpha.base_url}{STATUSES}")
        post_elsewhere = client.post(account_url, headers=auth(token), json={"status": "hi"})
        delete = client.delete(f"{alpha.base_url}{STATUSES}/1", headers=auth(token))
    assert plain.status_code == with_body.status_code == head.status_code == 200
    assert with_body.json() == plain.json()
    assert index.status_code == post_elsewhere.status_code == delete.status_code == 404
    assert [r.endpoint for r in world.requests] == ["account"] * 3 + ["other"] * 3
    assert alpha.statuses == []


def test_status_ids_follow_simulated_time(world: SimFediverse, client: httpx.Client) -> None:
    """created_at is the simulated time of the post; the id embeds it."""
    alpha = world.add_instance("alpha")
    _, token = alice_with_token(alpha)
    with world.run_in_thread():
        world.advance(days=2)
        later = post(client, alpha, token, json={"status": "later"}).json()
    assert later["created_at"] == "2026-01-07T12:00:00.000Z"
    embedded_ms = int(later["id"]) >> 16
    assert embedded_ms == int((DEFAULT_START + timedelta(days=2)).timestamp() * 1000)
