"""Hashtags: names as people type them, and the daily use a server reports for one.

Mastodon answers ``/api/v1/tags/:name`` with the tag's last 7 UTC days, newest first; the
newest is the day in progress. A server counts only the posts it has seen, so a tag is always
tracked *on* an instance. Names compare the way Mastodon compares them (its
``HashtagNormalizer``): full-width forms made plain, lower case, accents folded away where
the letter has an ASCII base — ``#Café``, ``#cafe`` and ``#CAFE`` in full-width letters are
one tag.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fedimeter.errors import InvalidInput

if TYPE_CHECKING:
    from datetime import date

__all__ = [
    "MAX_TAG_LENGTH",
    "InvalidTag",
    "TagDay",
    "TagName",
    "TagReading",
    "TrendingTag",
    "parse_tag_name",
    "tag_key",
]

#: Longest name accepted (the column's width; Mastodon has no limit of its own).
MAX_TAG_LENGTH = 200
#: Characters Mastodon allows inside a name besides letters, digits and ``_``: the middle
#: dot, the katakana middle dot and the zero-width non-joiner.
_SEPARATORS = frozenset("\u00b7\u30fb\u200c")
_HASH_SIGNS = ("#", "\uff03")


class InvalidTag(InvalidInput):
    """Text that is not a hashtag name."""


@dataclass(frozen=True, slots=True)
class TagName:
    """A hashtag as typed (without ``#``) and the key it compares by."""

    name: str
    key: str

    def __str__(self) -> str:
        """``#name``."""
        return f"#{self.name}"


@dataclass(frozen=True, slots=True)
class TagDay:
    """One UTC day of a tag's use on one server."""

    day: date
    #: Posts that used the tag that day.
    uses: int
    #: Accounts that used it that day.
    accounts: int
    #: False for the server's newest day, still going on when it answered.
    complete: bool


@dataclass(frozen=True, slots=True)
class TagReading:
    """What ``/api/v1/tags/:name`` said."""

    #: The name as the server spells it.
    name: str
    url: str | None
    #: Oldest first; the newest is incomplete.
    days: tuple[TagDay, ...]


@dataclass(frozen=True, slots=True)
class TrendingTag:
    """One entry of ``/api/v1/trends/tags``: its place and its newest day's use."""

    rank: int
    name: str
    day: date
    uses: int
    accounts: int


def _is_word(char: str) -> bool:
    """Letters, digits, combining marks and ``_``: what Ruby's ``[[:word:]]`` matches."""
    return char == "_" or unicodedata.category(char)[0] in {"L", "N", "M"} or char.isalnum()


def _fold(char: str) -> str:
    """A Latin letter with accents as its ASCII base (``é`` → ``e``); anything else as it is."""
    if char.isascii():
        return char
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
    return base if base and base.isascii() else char


def tag_key(name: str) -> str:
    """The key ``name`` compares by: NFKC, case folded, accents folded to ASCII bases."""
    text = unicodedata.normalize("NFKC", name).casefold()
    return "".join(_fold(char) for char in text)


def parse_tag_name(text: str) -> TagName:
    """A hashtag from what a person typed: ``#Caturday``, ``caturday``, `` #café ``.

    Raises:
        InvalidTag: empty, too long, a character Mastodon does not allow in a hashtag, a
            separator (``·``) at either end, or no letter at all (``#2024`` is not a tag).
    """
    raw = text.strip()
    name = raw
    for sign in _HASH_SIGNS:
        name = name.removeprefix(sign)
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise InvalidTag(f"{raw!r} is not a hashtag: the name is empty")
    if len(name) > MAX_TAG_LENGTH:
        raise InvalidTag(f"{raw[:40]!r}… is not a hashtag: longer than {MAX_TAG_LENGTH}")
    wrong = next((c for c in name if not _is_word(c) and c not in _SEPARATORS), None)
    if wrong is not None:
        if wrong == " ":
            shown = "a space"
        elif wrong.isprintable():
            shown = repr(wrong)
        else:
            shown = f"U+{ord(wrong):04X}"
        raise InvalidTag(f"{raw!r} is not a hashtag: {shown} cannot be part of one")
    edge = next((c for c in (name[0], name[-1]) if c in _SEPARATORS), None)
    if edge is not None:
        raise InvalidTag(f"{raw!r} is not a hashtag: it cannot begin or end with {edge!r}")
    if not any(unicodedata.category(c).startswith("L") for c in name):
        raise InvalidTag(f"{raw!r} is not a hashtag: it needs a letter (#{name} is a number)")
    return TagName(name, tag_key(name))
