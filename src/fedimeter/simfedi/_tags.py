"""Hashtags: Mastodon's name rules, the per-day usage a test sets, and the trending list.

A real server counts a tag's uses and distinct accounts per UTC day in Redis and shows the
last seven days; the simulator keeps the figures a test sets per day (``SimInstance.tag_uses``)
and answers ``GET /api/v1/tags/:name`` and ``GET /api/v1/trends/tags`` from them
(``_reads``). Names follow ``Tag::HASHTAG_NAME_RE`` and ``HashtagNormalizer`` of
``app/models/tag.rb`` and ``app/lib/hashtag_normalizer.rb``: a tag is found by its normalized
name (case and accents folded) and shown as it was first spelled.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = [
    "HISTORY_DAYS",
    "SimTag",
    "TagStore",
    "as_day",
    "normalize_hashtag",
    "valid_hashtag",
]

#: Days of usage a tag shows, today included.
HISTORY_DAYS = 7
#: Characters that may join the parts of a hashtag besides letters and digits.
_SEPARATORS = "_\u00b7\u30fb\u200c"
# Tag::HASHTAG_NAME_RE over character classes: "a" alphabetic, "d" other word characters
# (digits, marks, connector punctuation), "_" the underscore, "s" the other separators.
# FIRST_SEQUENCE is [w][wS]*[aS][wS]*[w], LAST_SEQUENCE [w]*[a][w]*, w = [ad_], S = [_s].
_NAME_SHAPE = re.compile(r"[ad_][ad_s]*[a_s][ad_s]*[ad_]|[ad_]*a[ad_]*")
_WORD_CATEGORIES = frozenset({"Nd", "Pc", "Mn", "Mc", "Me"})
# Lucene-style ASCII folding for the letters that do not decompose into a base and marks.
_FOLDS = {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ł": "l", "þ": "th", "ð": "d"}


def _char_class(char: str) -> str:
    if char == "_":
        return "_"
    if char in _SEPARATORS:
        return "s"
    category = unicodedata.category(char)
    if char.isalpha() or category == "Nl":
        return "a"
    return "d" if category in _WORD_CATEGORIES else "x"


def valid_hashtag(name: str) -> bool:
    """Whether ``name`` (without ``#``) is a hashtag by Mastodon's ``HASHTAG_NAME_RE``.

    Letters, digits, marks and ``_``, with at least one letter, or separators (``_``, ``·``,
    ``・``, ZWNJ) between word characters: ``caturday``, ``café``, ``1_2`` are tags; ``123``,
    ``cat-day`` and ``""`` are not.
    """
    return _NAME_SHAPE.fullmatch("".join(map(_char_class, name))) is not None


def _fold(char: str) -> str:
    folded = _FOLDS.get(char)
    if folded is not None:
        return folded
    decomposed = unicodedata.normalize("NFKD", char)
    base, marks = decomposed[0], decomposed[1:]
    if base.isascii() and all(unicodedata.category(mark) == "Mn" for mark in marks):
        return base
    return char


def normalize_hashtag(name: str) -> str:
    """Return the key Mastodon finds a tag by: NFKC, lower case, ASCII-folded, invalid removed.

    ``Caturday``, ``CATURDAY`` and the full-width ``caturday`` of CJK keyboards are one tag;
    so are ``Café`` and ``cafe``.
    """
    text = unicodedata.normalize("NFKC", name).lower()
    folded = "".join(map(_fold, text))
    return "".join(char for char in folded if char.isalnum() or char in _SEPARATORS)


def as_day(day: date | datetime) -> date:
    """The UTC date of ``day`` (a ``datetime`` must be timezone-aware)."""
    if isinstance(day, datetime):
        if day.tzinfo is None:
            raise ValueError("a datetime for a tag's day must be timezone-aware (UTC)")
        return day.astimezone(UTC).date()
    return day


@dataclass(eq=False, slots=True)
class SimTag:
    """A hashtag on one instance: its id, its name as first spelled, its usage per UTC day.

    ``usage`` maps a date to ``(uses, accounts)``; days not in it had no use. Read it with
    ``uses_on``; change it with ``SimInstance.tag_uses`` and its companions.
    """

    id: str
    name: str
    normalized: str
    usage: dict[date, tuple[int, int]] = field(default_factory=dict)

    def uses_on(self, day: date) -> tuple[int, int]:
        """``(uses, accounts)`` on ``day``, zeros for a day without use."""
        return self.usage.get(day, (0, 0))

    def history(self, today: date) -> list[tuple[date, int, int]]:
        """``(day, uses, accounts)`` for the last ``HISTORY_DAYS`` days, newest (today) first."""
        days = (today - timedelta(days=back) for back in range(HISTORY_DAYS))
        return [(day, *self.uses_on(day)) for day in days]


def _check_counts(name: str, uses: int, accounts: int) -> None:
    if uses < 0 or accounts < 0:
        raise ValueError(f"uses and accounts of #{name} cannot be negative")
    if accounts > uses:
        raise ValueError(f"#{name} cannot have more accounts ({accounts}) than uses ({uses})")


class TagStore:
    """An instance's hashtags and trending list.

    Tests write from their thread while the server reads from the event loop, so every access
    goes through one lock; readers get copies.
    """

    def __init__(self) -> None:
        """Start with no tags and nothing trending."""
        self._lock = threading.Lock()
        self._tags: dict[str, SimTag] = {}
        self._trending: list[SimTag] = []

    def _tag(self, name: str) -> SimTag:
        # Under the lock. The first spelling stays the name, with invalid characters removed
        # as Tag.find_or_create_by_names does.
        if not valid_hashtag(name):
            raise ValueError(f"{name!r} is not a valid hashtag name (give it without '#')")
        key = normalize_hashtag(name)
        tag = self._tags.get(key)
        if tag is None:
            shown = "".join(char for char in name if char.isalnum() or char in _SEPARATORS)
            tag = SimTag(id=str(len(self._tags) + 1), name=shown, normalized=key)
            self._tags[key] = tag
        return tag

    def tag(self, name: str) -> SimTag:
        """Return the tag ``name`` stands for, creating it with no usage if needed.

        Raises:
            ValueError: ``name`` is not a valid hashtag.
        """
        with self._lock:
            return self._tag(name)

    def find(self, name: str) -> SimTag | None:
        """Return the tag ``name`` stands for (any case or accents), or None."""
        with self._lock:
            return self._tags.get(normalize_hashtag(name))

    def set_uses(self, name: str, usage: Mapping[date, tuple[int, int]]) -> SimTag:
        """Set ``(uses, accounts)`` of each day in ``usage``; other days keep theirs.

        Raises:
            ValueError: an invalid name, negative figures, or more accounts than uses.
        """
        for uses, accounts in usage.values():
            _check_counts(name, uses, accounts)
        with self._lock:
            tag = self._tag(name)
            tag.usage.update(usage)
            return tag

    def add_uses(self, name: str, day: date, uses: int, accounts: int) -> SimTag:
        """Add ``uses`` and ``accounts`` to ``day`` (a day in progress).

        Raises:
            ValueError: an invalid name, or figures that become negative or inconsistent.
        """
        with self._lock:
            tag = self._tag(name)
            before_uses, before_accounts = tag.uses_on(day)
            total = (before_uses + uses, before_accounts + accounts)
            _check_counts(name, *total)
            tag.usage[day] = total
            return tag

    def history(self, tag: SimTag, today: date) -> list[tuple[date, int, int]]:
        """A consistent copy of ``tag``'s last seven days (see ``SimTag.history``)."""
        with self._lock:
            return tag.history(today)

    def set_trending(self, names: Iterable[str]) -> list[SimTag]:
        """Make ``names`` the trending tags, in that order (duplicates once); return them.

        Raises:
            ValueError: an invalid name.
        """
        with self._lock:
            tags = list(dict.fromkeys(self._tag(name) for name in names))
            self._trending = tags
            return list(tags)

    def trending(self) -> list[SimTag]:
        """The trending tags in trend order (a copy)."""
        with self._lock:
            return list(self._trending)

    def all(self) -> list[SimTag]:
        """Every tag, in the order they were first used."""
        with self._lock:
            return list(self._tags.values())
