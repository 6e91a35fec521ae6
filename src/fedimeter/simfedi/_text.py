"""Status text as Mastodon sees it: how many characters it counts, and its HTML ``content``."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["URL_LENGTH", "count_graphemes", "countable_length", "render_content"]

#: Characters every http(s) URL counts for, whatever its length (Mastodon's placeholder).
URL_LENGTH = 23

# Character counting -------------------------------------------------------------------------

# A URL with a scheme (Mastodon gives no concession to bare domains), ending before trailing
# punctuation; or a mention, @user or @user@domain, not preceded by a word character, "/" or
# "=" (so neither e-mail addresses nor URL paths count as mentions). Earlier matches win where
# entities overlap, as in Mastodon's Extractor.remove_overlapping_entities.
_ENTITIES = re.compile(
    r"(?P<url>https?://[^\s<>\"]*[^\s<>\"'.,:;!?)\]])"
    r"|(?<![=/\w])@(?P<user>[a-z0-9_]+(?:[.-]+[a-z0-9_]+)*)(?:@\w+(?:[.-]+\w+)*)?",
    re.IGNORECASE,
)
_ZWJ = "\u200d"
_ZWNJ = "\u200c"
_MARKS = frozenset({"Mn", "Me", "Mc"})
_CONTROLS = frozenset({"Cc", "Zl", "Zp", "Cf"})


def _extends(char: str) -> bool:
    # Grapheme_Extend and SpacingMark, approximated: combining marks, ZWNJ, emoji skin tones,
    # emoji tag characters (subdivision flags) and the half-width kana voicing marks.
    code = ord(char)
    return (
        unicodedata.category(char) in _MARKS
        or char == _ZWNJ
        or 0x1F3FB <= code <= 0x1F3FF  # noqa: PLR2004 - Unicode ranges
        or 0xE0020 <= code <= 0xE007F  # noqa: PLR2004
        or 0xFF9E <= code <= 0xFF9F  # noqa: PLR2004
    )


def _pictographic(char: str) -> bool:
    return 0x1F000 <= ord(char) <= 0x1FAFF or unicodedata.category(char) == "So"  # noqa: PLR2004


def _regional(char: str) -> bool:
    return 0x1F1E6 <= ord(char) <= 0x1F1FF  # noqa: PLR2004


def _control(char: str) -> bool:
    return char not in {_ZWJ, _ZWNJ} and (
        unicodedata.category(char) in _CONTROLS and not _extends(char)
    )


def _continues(previous: str, char: str, *, pictograph: bool, regional: int) -> bool:
    """Whether ``char`` belongs to the cluster that ``previous`` ends (UAX #29, simplified)."""
    if previous == "\r":
        return char == "\n"
    if _control(previous) or _control(char):
        return False
    if char == _ZWJ or _extends(char):
        return True
    if previous == _ZWJ:
        return pictograph and _pictographic(char)
    return _regional(previous) and _regional(char) and regional % 2 == 1


def count_graphemes(text: str) -> int:
    """Count user-perceived characters (extended grapheme clusters), as Ruby's String does.

    Close to Unicode's rules for what posts contain: combining marks, emoji with skin tones,
    ZWJ sequences, flags, keycaps, CR LF. Conjoining Hangul jamo count one each.
    """
    clusters = 0
    previous = ""
    pictograph = False  # the current cluster starts with a pictograph (a ZWJ may join more)
    regional = 0  # regional indicators in the current cluster (they pair into flags)
    for char in text:
        if not previous or not _continues(previous, char, pictograph=pictograph, regional=regional):
            clusters += 1
            pictograph = _pictographic(char)
            regional = 0
        if _regional(char):
            regional += 1
        previous = char
    return clusters


def _shorten(match: re.Match[str]) -> str:
    if match.group("url"):
        return "x" * URL_LENGTH
    return f"@{match.group('user')}"


def countable_length(text: str, spoiler_text: str = "") -> int:
    """Characters a status counts toward ``max_characters`` (Mastodon's StatusLengthValidator).

    The content warning and the text count together; in the text, every http(s) URL counts
    23 and a mention ``@user@domain`` counts as ``@user``. Characters are grapheme clusters,
    as Mastodon counts them (``each_grapheme_cluster``): an emoji with a skin tone is one.
    """
    countable = "" if not text.strip() else _ENTITIES.sub(_shorten, text)
    return count_graphemes(spoiler_text + countable)


# Content --------------------------------------------------------------------------------------

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})
_PARAGRAPH_BREAK = re.compile(r"\n{2,}")


def render_content(text: str) -> str:
    """Return the status text as Mastodon's HTML ``content``: escaped, in ``<p>`` paragraphs.

    A blank line starts a paragraph and a single newline becomes ``<br />``, as Rails'
    ``simple_format`` does for Mastodon; links and mentions are left as text.
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [part.strip("\n") for part in _PARAGRAPH_BREAK.split(normalized)]
    return "".join(
        f"<p>{part.translate(_ESCAPES).replace(chr(10), '<br />')}</p>"
        for part in paragraphs
        if part
    )
