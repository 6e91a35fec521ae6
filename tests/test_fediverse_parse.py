import contextlib
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fedimeter.domain.models import AccountSnapshot, Handle, InstanceAddress
from fedimeter.errors import BadResponse
from fedimeter.fediverse.parse import (
    MAX_COUNT,
    parse_account,
    parse_account_list,
    parse_lookup,
    parse_nodeinfo,
    parse_webfinger,
    pick_nodeinfo_link,
)
from fedimeter.fediverse.software import batch_support, parse_version
from test_fediverse_support import account, fixture

HOST = "mastodon.social"


def test_documented_account_with_a_date() -> None:
    """The Account entity example parses; last_status_at is a plain date."""
    snapshot = parse_account(fixture("account.json"), asked="23634", host=HOST)
    assert snapshot == AccountSnapshot(
        remote_id="23634",
        followers=547,
        following=404,
        statuses=28468,
        last_status_at=date(2019, 11, 17),
    )


def test_older_servers_timestamp_is_reduced_to_its_utc_day() -> None:
    """A full timestamp in last_status_at becomes its UTC date."""
    snapshot = parse_account(fixture("account_remote.json"), asked="23634", host=HOST)
    assert snapshot.last_status_at == date(2019, 12, 1)


@pytest.mark.parametrize(
    ("value", "day"),
    [
        ("2019-12-01T23:30:00-02:00", date(2019, 12, 2)),
        ("2019-12-01T00:39:57Z", date(2019, 12, 1)),
        ("2019-12-01T00:39:57", date(2019, 12, 1)),
        (None, None),
    ],
)
def test_last_status_at_forms(value: str | None, day: date | None) -> None:
    """Offsets move a timestamp to its UTC day; null stays None."""
    snapshot = parse_account(account("1", last_status_at=value), asked="1", host=HOST)
    assert snapshot.last_status_at == day


def test_suspended_account_is_a_snapshot_marked_suspended() -> None:
    """A suspended account answers 200 with zeroed counts and suspended: true."""
    snapshot = parse_account(fixture("account_suspended.json"), asked="14", host=HOST)
    assert snapshot.suspended
    assert (snapshot.followers, snapshot.statuses, snapshot.last_status_at) == (0, 0, None)


@pytest.mark.parametrize(
    ("acct", "moved_to"),
    [
        ("alice@new.example", "alice@new.example"),
        ("alice2", "alice2@mastodon.social"),
        ("@bob@x.example", "bob@x.example"),
    ],
)
def test_moved_account_names_its_new_address(acct: str, moved_to: str) -> None:
    """``moved`` gives the new account's acct, with this host added to a local one."""
    body = account("1", moved=account("2", acct=acct))
    assert parse_account(body, asked="1", host=HOST).moved_to == moved_to


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"followers_count": "547"}, "followers_count = '547', not a whole number"),
        ({"followers_count": True}, "not a whole number"),
        ({"following_count": 1.0}, "not a whole number"),
        ({"statuses_count": None}, "not a whole number"),
        ({"followers_count": -1}, "cannot be a real count"),
        ({"followers_count": MAX_COUNT + 1}, "cannot be a real count"),
        ({"last_status_at": "yesterday"}, "neither a date nor a time"),
        ({"last_status_at": 1575158400}, "neither a date nor a time"),
        ({"last_status_at": "2019-02-30"}, "neither a date nor a time"),
        ({"suspended": "yes"}, "not true or false"),
        ({"moved": "alice@new.example"}, "not an account"),
        ({"moved": {"id": "2"}}, "moved account without acct"),
        ({"id": "2"}, "answered with account '2' when asked for '1'"),
        ({"id": ["1"]}, "without a usable id"),
        ({"id": ""}, "without a usable id"),
    ],
)
def test_wrong_types_and_values_are_bad_responses(changes: dict[str, object], message: str) -> None:
    """Strings, booleans, floats, negatives, absurd counts, bad dates and wrong ids are refused."""
    with pytest.raises(BadResponse, match=message):
        parse_account(account("1", **changes), asked="1", host=HOST)


def test_missing_count_is_a_bad_response() -> None:
    """An account without followers_count is refused."""
    body = account("1")
    del body["followers_count"]
    with pytest.raises(BadResponse, match="without followers_count"):
        parse_account(body, asked="1", host=HOST)


@pytest.mark.parametrize("body", [None, [], "account", 42])
def test_non_objects_are_bad_responses(body: object) -> None:
    """An account must be a JSON object."""
    with pytest.raises(BadResponse):
        parse_account(body, asked="1", host=HOST)


def test_numeric_ids_are_read_as_text() -> None:
    """Some servers send numeric ids; ids are opaque text to us."""
    assert parse_account(account(7), asked="7", host=HOST).remote_id == "7"  # type: ignore[arg-type]


def test_batch_answer_leaves_missing_ids_out() -> None:
    """The documented batch example answers id 1 and silently leaves id 2 out."""
    found = parse_account_list(fixture("accounts_multiple.json"), asked={"1", "2"}, host=HOST)
    assert set(found) == {"1"}
    assert isinstance(found["1"], AccountSnapshot)


def test_batch_answer_keeps_bad_entries_apart_and_ignores_strangers() -> None:
    """A bad entry fails alone; entries we did not ask for are ignored."""
    data = [account("1"), account("2", followers_count=-5), account("99"), {"no": "id"}]
    found = parse_account_list(data, asked={"1", "2"}, host=HOST)
    assert isinstance(found["1"], AccountSnapshot)
    assert isinstance(found["2"], BadResponse)
    assert "99" not in found


def test_batch_answer_must_be_a_list() -> None:
    """An object where the list belongs is a bad response."""
    with pytest.raises(BadResponse, match="not a list"):
        parse_account_list({"error": "x"}, asked={"1"}, host=HOST)


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_arbitrary_json_never_crashes_the_account_parser(data: object) -> None:
    """Whatever JSON arrives, parsing gives a snapshot or BadResponse."""
    with contextlib.suppress(BadResponse):
        parse_account(data, asked="1", host=HOST)
    with contextlib.suppress(BadResponse):
        parse_account_list(data, asked={"1"}, host=HOST)


def test_lookup_gives_id_and_name() -> None:
    """The lookup answer gives id, user name, display name and URL."""
    found = parse_lookup(fixture("account_local_gargron.json"), host=HOST)
    assert (found.remote_id, found.username, found.url) == (
        "1",
        "Gargron",
        "https://mastodon.social/@Gargron",
    )


def test_webfinger_gives_subject_and_home() -> None:
    """The documented WebFinger answer names Gargron@mastodon.social served by mastodon.social."""
    finger = parse_webfinger(fixture("webfinger.json"), host=HOST)
    assert finger.subject == Handle("Gargron", "mastodon.social")
    assert finger.home == InstanceAddress("mastodon.social", "https")


def test_webfinger_uses_an_acct_alias_and_the_profile_page_when_needed() -> None:
    """With a URL subject and no self link, the acct alias and profile-page link serve."""
    data = {
        "subject": "https://social.example/users/alice",
        "aliases": ["https://social.example/@alice", "acct:Alice@example.com"],
        "links": [
            {"rel": "self", "type": "text/html", "href": "javascript:alert(1)"},
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "href": "http://social.example:8080/@alice",
            },
        ],
    }
    finger = parse_webfinger(data, host=HOST)
    assert finger.subject == Handle("Alice", "example.com")
    assert finger.home == InstanceAddress("social.example", "http", 8080)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"subject": 5, "links": "nope"},
        {
            "subject": "acct:bad user@x",
            "links": [{"rel": "self", "type": "application/activity+json", "href": "ftp://x"}],
        },
        {
            "links": [
                None,
                3,
                {"rel": "self", "type": "application/activity+json", "href": "https://u:p@x/"},
            ]
        },
    ],
)
def test_broken_webfinger_gives_nothing_rather_than_failing(data: object) -> None:
    """Unusable subjects and links are skipped."""
    finger = parse_webfinger(data, host=HOST)
    assert (finger.subject, finger.home) == (None, None)


def test_webfinger_must_be_an_object() -> None:
    """A WebFinger answer that is not an object is a bad response."""
    with pytest.raises(BadResponse):
        parse_webfinger(["acct:a@b"], host=HOST)


def test_nodeinfo_discovery_picks_the_highest_2x_schema() -> None:
    """Among 1.0, 2.0 and 2.1 links the 2.1 document is chosen."""
    data = {
        "links": [
            {"rel": "http://nodeinfo.diaspora.software/ns/schema/1.0", "href": "/nodeinfo/1.0"},
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.1",
                "href": "https://x/nodeinfo/2.1.json",
            },
            {
                "rel": "http://nodeinfo.diaspora.software/ns/schema/2.0",
                "href": "https://x/nodeinfo/2.0.json",
            },
            {"rel": "https://www.w3.org/ns/activitystreams#Application", "href": "https://x/actor"},
        ]
    }
    assert pick_nodeinfo_link(data, host=HOST) == "https://x/nodeinfo/2.1.json"


def test_nodeinfo_discovery_fixture() -> None:
    """The real discovery document points to /nodeinfo/2.0."""
    assert (
        pick_nodeinfo_link(fixture("nodeinfo_discovery.json"), host=HOST)
        == "https://example.org/nodeinfo/2.0"
    )


def test_nodeinfo_discovery_without_2x_gives_none() -> None:
    """No 2.x link means no NodeInfo we read."""
    data = {"links": [{"rel": "http://nodeinfo.diaspora.software/ns/schema/1.1", "href": "/n"}]}
    assert pick_nodeinfo_link(data, host=HOST) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("nodeinfo_2_0.json", ("diaspora", "0.5.0")),
        ("nodeinfo_2_1.json", ("diaspora", "0.5.0")),
        ("nodeinfo_2_0_mastodon.json", ("mastodon", "4.1.2+nightly-20230523")),
    ],
)
def test_nodeinfo_documents_give_software_and_version(name: str, expected: tuple[str, str]) -> None:
    """Software name and version come from the NodeInfo document."""
    assert parse_nodeinfo(fixture(name), host=HOST) == expected


@pytest.mark.parametrize(
    ("version", "parsed"),
    [
        ("4.3.0", (4, 3, 0)),
        ("4.3.0+glitch", (4, 3, 0)),
        ("4.5.0-nightly.2025-07-11", (4, 5, 0)),
        ("4.1.2+nightly-20230523", (4, 1, 2)),
        ("4.2", (4, 2, 0)),
        ("v4.4.1", (4, 4, 1)),
        ("2.7.2 (compatible; Pleroma 2.5.0)", (2, 7, 2)),
        ("unknown", None),
        ("", None),
    ],
)
def test_versions_parse(version: str, parsed: tuple[int, int, int] | None) -> None:
    """Build labels after the version number do not matter."""
    assert parse_version(version) == parsed


@pytest.mark.parametrize(
    ("software", "version", "supported"),
    [
        ("mastodon", "4.3.0", True),
        ("Mastodon", "4.3.0+glitch", True),
        ("mastodon", "4.5.0-nightly.2025-07-11", True),
        ("mastodon", "10.0.0", True),
        ("mastodon", "4.2.10", False),
        ("mastodon", "4.1.2+nightly-20230523", False),
        ("mastodon", "3.5.3", False),
        ("mastodon", "garbage", None),
        ("mastodon", None, None),
        ("pleroma", "2.7.2", None),
        ("akkoma", "3.13.2", None),
        (None, None, None),
    ],
)
def test_batch_support_by_software_and_version(
    software: str | None, version: str, supported: bool | None
) -> None:
    """Mastodon 4.3+ has the batch call, older Mastodon not, others are unknown."""
    assert batch_support(software, version) is supported
