"""Reading Mastodon's follows export and plain handle lists."""

from __future__ import annotations

import pytest

from fedimeter.errors import InvalidInput
from fedimeter.tracking import parse_follows_csv

EXPORT = (
    "Account address,Show boosts,Notify on new posts,Languages\n"
    "Gargron@mastodon.social,true,false,\n"
    'someone@fosstodon.org,false,false,"en,de"\n'
)


def test_mastodon_export_gives_the_first_column_without_header() -> None:
    """The header row is skipped and the first column of each row kept."""
    assert parse_follows_csv(EXPORT) == ["Gargron@mastodon.social", "someone@fosstodon.org"]


def test_a_byte_order_mark_and_crlf_do_not_matter() -> None:
    """Exports saved by spreadsheet programs still read."""
    assert (
        parse_follows_csv("\ufeff" + EXPORT.replace("\n", "\r\n"))[0] == "Gargron@mastodon.social"
    )


def test_plain_lists_skip_blanks_comments_and_repeats() -> None:
    """One handle per line; blank lines, # comments and case-insensitive repeats are dropped."""
    text = "# my list\n@a@x.example\n\n  @b@y.example  \n@A@X.example\n"
    assert parse_follows_csv(text) == ["@a@x.example", "@b@y.example"]


@pytest.mark.parametrize("text", ["", "\n\n", "Account address,Show boosts\n", "# only\n"])
def test_a_file_without_accounts_is_invalid(text: str) -> None:
    """An empty export is refused with a message saying what is expected."""
    with pytest.raises(InvalidInput, match="Account address"):
        parse_follows_csv(text)
