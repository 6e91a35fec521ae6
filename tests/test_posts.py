"""Mastodon's character count, posts that mention nobody, and threads (pure)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedimeter.domain.posts import URL_LENGTH, mastodon_length, post_text, split_thread

NUMBERING = re.compile(r"\n\((\d+)/(\d+)\)$")


def test_plain_text_counts_code_points() -> None:
    """Every code point counts once, emoji and accents included."""
    assert mastodon_length("héllo 🐘") == 7


def test_a_url_counts_23_whatever_its_length() -> None:
    """Long and short URLs both count as 23 characters."""
    long_url = "https://example.org/" + "a" * 200
    assert mastodon_length(long_url) == URL_LENGTH
    assert mastodon_length("see http://x.io now") == len("see ") + URL_LENGTH + len(" now")


def test_punctuation_after_a_url_counts_on_its_own() -> None:
    """The dot ending a sentence after a URL is not part of the URL (as in Mastodon)."""
    assert mastodon_length("see https://x.org/a.") == len("see ") + URL_LENGTH + 1
    assert mastodon_length("(https://x.org/a), ok") == 1 + URL_LENGTH + len("), ok")


def test_a_mention_counts_without_its_domain() -> None:
    """``@alice@example.org`` counts as ``@alice``."""
    assert mastodon_length("hi @alice@example.org!") == len("hi @alice!")


def test_an_address_in_a_word_is_not_a_mention() -> None:
    """``alice@example.org`` (no leading @) is plain text and counts in full."""
    assert mastodon_length("alice@example.org") == len("alice@example.org")


def test_post_text_removes_the_at_before_handles_only() -> None:
    """Handles lose their leading @ so nobody is notified; other text keeps its @."""
    text = "@alice@example.org: 10 followers\n  mail me @ noon, @bob is not a handle\n"
    assert post_text(text) == (
        "alice@example.org: 10 followers\n  mail me @ noon, @bob is not a handle"
    )


def test_post_text_removes_the_sign_of_hashtags_only() -> None:
    """Hashtags lose their # (posting one adds a use of it); fragments and numbers keep theirs."""
    text = (
        "Hashtags:\n  #caturday on mastodon.social: 445 uses, \uff03FediTips too\n"
        "  see https://example.org/page#top, issue #12 (#1 of 3), C#, (#tag)\n"
    )
    assert post_text(text) == (
        "Hashtags:\n  caturday on mastodon.social: 445 uses, FediTips too\n"
        "  see https://example.org/page#top, issue #12 (#1 of 3), C#, (tag)"
    )


def test_a_text_that_fits_is_one_post_unchanged() -> None:
    """No numbering on a single post."""
    assert split_thread("short report\n\nTotal: 1", 500) == ["short report\n\nTotal: 1"]


def test_an_empty_text_is_no_post() -> None:
    """Nothing to say, nothing to post."""
    assert split_thread("\n\n", 500) == []


def test_a_limit_too_short_for_numbering_is_refused() -> None:
    """Below 40 characters a thread cannot be numbered."""
    with pytest.raises(ValueError, match="too short"):
        split_thread("x" * 100, 39)


def report_text(accounts: int) -> str:
    """A text report in the style of render_text."""
    lines = [
        "fedimeter report for 2026-03-01 \u2013 2026-03-31 (generated 2026-04-01 03:00 UTC)",
        "",
    ]
    for i in range(accounts):
        lines.append(f"user{i}@example.org: 1,234 (+56, +4.7%) followers, 89 following")
        lines.append("  next: 2,500 followers around 2026-05-10")
    lines += ["", f"Total: {accounts} accounts"]
    return "\n".join(lines)


def test_a_long_report_becomes_numbered_parts_that_fit() -> None:
    """Each part fits the limit and carries (i/n); parts are in order."""
    parts = split_thread(report_text(20), 300)
    assert len(parts) > 1
    for index, part in enumerate(parts, start=1):
        assert mastodon_length(part) <= 300
        match = NUMBERING.search(part)
        assert match is not None
        assert (int(match.group(1)), int(match.group(2))) == (index, len(parts))


def test_an_account_stays_with_its_next_line() -> None:
    """A ``next:`` line never opens a part: it stays with its account."""
    parts = split_thread(report_text(20), 300)
    for part in parts[1:]:
        assert not part.startswith("  next:")
    assert parts[0].startswith("fedimeter report for")


def test_the_parts_hold_every_line_once_in_order() -> None:
    """Nothing is lost or repeated: the parts' lines are the report's non-blank lines."""
    text = report_text(33)
    parts = split_thread(text, 200)
    lines = [line for part in parts for line in NUMBERING.sub("", part).split("\n") if line.strip()]
    assert lines == [line for line in text.split("\n") if line.strip()]


def test_numbering_grows_to_two_digits_and_still_fits() -> None:
    """With ten parts or more the wider numbering still fits every part."""
    parts = split_thread(report_text(60), 120)
    assert len(parts) >= 10
    assert all(mastodon_length(p) <= 120 for p in parts)
    assert parts[-1].endswith(f"({len(parts)}/{len(parts)})")


def test_a_line_longer_than_a_post_is_cut_between_words() -> None:
    """A single over-long line is wrapped at spaces, never mid-word when words fit."""
    words = [f"word{i}" for i in range(100)]
    parts = split_thread(" ".join(words), 100)
    recovered = " ".join(NUMBERING.sub("", p) for p in parts).split(" ")
    assert recovered == words
    assert all(mastodon_length(p) <= 100 for p in parts)


def test_a_word_longer_than_a_post_is_cut_inside() -> None:
    """One unbroken 300-character word is cut into pieces that fit."""
    parts = split_thread("x" * 300, 100)
    assert "".join(NUMBERING.sub("", p) for p in parts) == "x" * 300
    assert all(mastodon_length(p) <= 100 for p in parts)


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs", "Cc")) | st.just(" "),
            max_size=160,
        ),
        min_size=1,
        max_size=40,
    ),
    limit=st.integers(min_value=40, max_value=600),
)
def test_every_part_fits_whatever_the_text(lines: list[str], limit: int) -> None:
    """For any text and limit, every part fits and no non-space character is lost."""
    text = "\n".join(lines)
    parts = split_thread(text, limit)
    assert all(mastodon_length(p) <= limit for p in parts)
    kept = "".join(NUMBERING.sub("", p) if len(parts) > 1 else p for p in parts)
    assert sorted(c for c in kept if not c.isspace()) == sorted(
        c for c in text.strip("\n") if not c.isspace()
    )


PIECES = ["a", " ", ".", ")", "@", "é", "👍🏽", "\n", "https://", "x.org", "/", ":", "b"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=40).map("".join))
def test_never_fewer_than_the_simulated_server_counts(text: str) -> None:
    """Our count is never below Mastodon's (as the simulated server implements it).

    So a part we think fits is never refused for its length.
    """
    from fedimeter.simfedi._text import countable_length

    assert mastodon_length(text) >= countable_length(text)
