"""Query parameters read the way Rails and Mastodon's API controllers read them.

Mastodon turns text into numbers with Ruby's ``String#to_i`` (leading digits, else 0), into
booleans with ``ActiveModel::Type::Boolean``, caps page sizes with ``limit_param`` and builds
``Link`` headers from URLs whose query Rails writes with ``Hash#to_query`` (pairs escaped and
sorted). The simulator's read endpoints share these rules so that odd input gets the answer a
real server gives.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "Query",
    "last",
    "limit_param",
    "link_header",
    "present",
    "rails_truthy",
    "ruby_to_i",
    "to_query",
]

Query = dict[str, list[str]]

_LEADING_INTEGER = re.compile(r"\s*([+-]?\d+(?:_\d+)*)")
#: ``ActiveModel::Type::Boolean::FALSE_VALUES`` as strings; "" casts to nil (false as well).
_FALSE_VALUES = frozenset({"0", "f", "F", "false", "FALSE", "off", "OFF"})


def last(query: Mapping[str, list[str]], name: str) -> str | None:
    """The value of ``name`` as Rack reads it (the last of repeated values), or None."""
    values = query.get(name)
    return values[-1] if values else None


def present(value: str | None) -> bool:
    """Rails' ``present?`` for a parameter: given and not blank."""
    return value is not None and bool(value.strip())


def ruby_to_i(text: str | None) -> int:
    """Ruby's ``String#to_i``: leading whitespace, a sign and digits (``_`` between), else 0."""
    match = _LEADING_INTEGER.match(text or "")
    return int(match.group(1).replace("_", "")) if match else 0


def rails_truthy(value: str | None) -> bool:
    """Whether Rails casts ``value`` to true (Mastodon's ``truthy_param?``).

    ``ActiveModel::Type::Boolean``: missing and empty values are nil; ``0``, ``f``, ``false``,
    ``off`` (lower or upper case) are false; anything else, ``no`` and ``False`` included, is
    true.
    """
    return value is not None and value != "" and value not in _FALSE_VALUES


def limit_param(query: Mapping[str, list[str]], default: int) -> int:
    """Mastodon's ``limit_param``: ``default`` without ``limit``, else ``|to_i|``, at most 2x."""
    value = last(query, "limit")
    if value is None:
        return default
    return min(abs(ruby_to_i(value)), default * 2)


def to_query(pairs: Mapping[str, str]) -> str:
    """Rails' ``Hash#to_query``: ``key=value`` pairs, form-escaped, sorted."""
    return "&".join(
        sorted(
            f"{quote_plus(key, safe='')}={quote_plus(value, safe='')}"
            for key, value in pairs.items()
        )
    )


def link_header(next_url: str | None, prev_url: str | None) -> tuple[tuple[str, str], ...]:
    """The ``Link`` header Mastodon sends for ``next_url`` and ``prev_url``; none for neither.

    The format is the LinkHeader gem's: ``<url>; rel="next", <url>; rel="prev"``.
    """
    links = [
        f'<{url}>; rel="{rel}"' for url, rel in ((next_url, "next"), (prev_url, "prev")) if url
    ]
    return (("Link", ", ".join(links)),) if links else ()
