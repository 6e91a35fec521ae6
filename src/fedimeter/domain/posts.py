"""Turning a report into Mastodon posts: length as Mastodon counts it, threads. Pure.

Mastodon counts a status in code points, except that every ``http(s)://`` URL counts as 23
characters whatever its length, and a mention ``@user@domain`` counts as ``@user`` (the
server's ``StatusLengthValidator``). ``post_text`` turns a text report into something safe to
post: handles lose their leading ``@``, so a report never mentions (and notifies) the accounts
it is about, and hashtags their ``#``, so a report never adds a use of the tags it measures.
``split_thread`` cuts a text that is too long into numbered parts on line boundaries, keeping
an account's indented follow-up lines with it.
"""

from __future__ import annotations

import re

__all__ = [
    "DEFAULT_MAX_CHARACTERS",
    "URL_LENGTH",
    "mastodon_length",
    "post_text",
    "split_thread",
]

#: What Mastodon allows when the server does not say.
DEFAULT_MAX_CHARACTERS = 500
#: Every URL counts as this many characters, whatever its length.
URL_LENGTH = 23
#: The shortest limit a thread can be cut for: the numbering needs room, and so does a word.
_MIN_LIMIT = 40

# What Mastodon's length validator shortens, found in one pass as it does: a URL (a scheme and
# more, ending before trailing punctuation: in ``see https://x.org/a.`` the dot counts on its
# own), or a mention ``@user@domain`` (``@`` not after a word character, ``/`` or ``=``).
_COUNTED = re.compile(
    r"(?P<url>https?://[^\s<>\"']*[^\s<>\"'.,:;!?)\]}])"
    r"|(?<![\w/=])@(?P<user>[a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@\w+(?:[.-]+\w+)*)?",
    re.IGNORECASE,
)
# A handle at the start of a line or after a space: ``@user@domain`` (the report's style).
_HANDLE = re.compile(r"(?<![\w/@])@(?=[\w.-]+@[\w.-]+\w)")
#: A ``#`` that Mastodon would read as a hashtag's: not after a letter, digit, ``/`` or ``)``
#: (so a URL's fragment stays), before a word with a letter in it (``#12`` is no hashtag);
#: the full-width sign too.
_HASHTAG_SIGN = re.compile(r"(?<![\w/)])[#\uff03](?=\w*[^\W\d])")


def mastodon_length(text: str) -> int:
    """How many characters Mastodon counts in ``text`` (URLs as 23, mentions without domain)."""
    return len(_COUNTED.sub(_shortened, text))


def _shortened(match: re.Match[str]) -> str:
    """A URL as 23 characters, a mention without its domain."""
    return "x" * URL_LENGTH if match.group("url") else "@" + match.group("user")


def post_text(report_text: str) -> str:
    """A text fit to post: ``@user@domain`` becomes ``user@domain``, ``#caturday`` ``caturday``.

    Posting ``@alice@example.org`` would mention Alice, who would be notified of every report;
    without the ``@`` the handle is plain text to Mastodon and still reads as a handle.
    Posting ``#caturday`` would add a use of the very tag being measured and put the post in
    the tag's public timeline; without the ``#`` it is a word.
    """
    return _HASHTAG_SIGN.sub("", _HANDLE.sub("", report_text)).rstrip("\n")


def split_thread(text: str, limit: int = DEFAULT_MAX_CHARACTERS) -> list[str]:
    """``text`` as posts of at most ``limit`` characters (as Mastodon counts them).

    A text that fits is one post, unchanged. Otherwise it is cut between lines into parts,
    each as full as it can be and numbered ``(1/3)``, ``(2/3)`` ... on a line of its own. A
    line is kept with the indented lines after it (an account and its ``next:`` line) when
    the group fits in a part; blank lines between paragraphs are kept inside a part and
    dropped at its edges. A single line longer than a part is cut between words (inside a
    word only when one word alone is too long).

    Raises:
        ValueError: ``limit`` is below 40, too short to number a thread.
    """
    if limit < _MIN_LIMIT:
        raise ValueError(f"a post limit of {limit} characters is too short for a thread")
    text = text.strip("\n")
    if mastodon_length(text) <= limit:
        return [text] if text.strip() else []
    # The numbering's width depends on the number of parts: cut with room for a guess, and
    # again with more room while the count needs more digits than the guess allowed.
    digits = 1
    while True:
        room = limit - len(f"\n({'9' * digits}/{'9' * digits})")
        parts = _pack(_groups(text, room), room)
        if len(str(len(parts))) <= digits:
            break
        digits += 1
    total = len(parts)
    return [f"{part}\n({index}/{total})" for index, part in enumerate(parts, start=1)]


def _groups(text: str, room: int) -> list[list[str]]:
    """Lines grouped with their indented continuation lines; each line fits in ``room``."""
    groups: list[list[str]] = []
    for line in text.split("\n"):
        pieces = _wrap(line, room)
        continues = line.startswith((" ", "\t")) and groups and groups[-1] != [""]
        if continues:
            groups[-1].extend(pieces)
        else:
            groups.append(pieces)
    return groups


def _wrap(line: str, room: int) -> list[str]:
    """``line`` cut between words into pieces that fit in ``room``."""
    if mastodon_length(line) <= room:
        return [line]
    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if mastodon_length(candidate) <= room:
            current = candidate
            continue
        if current:
            pieces.append(current)
        rest = word
        while mastodon_length(rest) > room:  # one word longer than a post: cut inside it
            cut = _longest_prefix(rest, room)
            pieces.append(rest[:cut])
            rest = rest[cut:]
        current = rest
    if current:
        pieces.append(current)
    return pieces


def _longest_prefix(word: str, room: int) -> int:
    """The length of the longest prefix of ``word`` that fits in ``room`` (at least 1)."""
    cut = min(len(word), room)
    while cut > 1 and mastodon_length(word[:cut]) > room:
        cut -= 1
    return cut


def _pack(groups: list[list[str]], room: int) -> list[str]:
    """Groups of lines packed greedily into parts that fit in ``room``."""
    parts: list[list[str]] = []
    current: list[str] = []

    def fits(lines: list[str]) -> bool:
        return mastodon_length("\n".join(lines).strip("\n")) <= room

    for group in groups:
        if fits(current + group):
            current += group
            continue
        # The group does not fit after what is there: start a new part with it, or, when it
        # is too long for any part, fill the current part line by line.
        lines = group
        if fits(group):
            if current:
                parts.append(current)
            current = []
        for line in lines:
            if not fits([*current, line]):
                parts.append(current)
                current = []
            current.append(line)
    parts.append(current)
    cleaned = ["\n".join(part).strip("\n") for part in parts]
    return [part for part in cleaned if part.strip()]
