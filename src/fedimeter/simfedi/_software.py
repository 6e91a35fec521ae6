"""What each kind of server software offers: routes by version, NodeInfo paths, id styles.

Real servers differ in ways a collector must survive (no batch call before Mastodon 4.3, NodeInfo
at other paths, no Mastodon API at all on Misskey); this table is the one place the simulator
encodes those differences.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "IdStyle",
    "SoftwareProfile",
    "parse_version",
    "profile_for",
]

#: How a server spells its ids: Mastodon snowflakes (digits), Pleroma flake ids (base62),
#: Misskey "aid" (lower-case base36), GoToSocial ULIDs (Crockford base32).
IdStyle = Literal["snowflake", "flake", "aid", "ulid"]

_LEADING_NUMBERS = re.compile(r"\d+(?:\.\d+)*")


@functools.lru_cache(maxsize=256)
def parse_version(version: str) -> tuple[int, ...]:
    """Return the leading dotted numbers of ``version`` as a tuple of ints.

    Suffixes are ignored, so ``"4.3.0+glitch"`` and ``"4.5.0-nightly.2025-07-11"`` compare by
    their numbers; a version with no leading number parses as ``()``, which sorts below every
    real version.
    """
    match = _LEADING_NUMBERS.match(version.strip().lstrip("vV"))
    if match is None:
        return ()
    return tuple(int(part) for part in match.group(0).split("."))


@dataclass(frozen=True, slots=True)
class SoftwareProfile:
    """How one server software behaves, as far as fedimeter can see it."""

    #: NodeInfo ``software.name``.
    name: str
    #: Name inside a Mastodon-compatible ``version`` string (``"Pleroma"`` in
    #: ``"2.7.2 (compatible; Pleroma 2.6.0)"``); None when the version is served as is.
    compatible_name: str | None
    #: The Mastodon version such a server claims before ``(compatible; ...)``.
    compatible_version: str
    #: Whether ``/api/v1/*`` exists at all (Misskey upstream has none).
    mastodon_api: bool
    #: 401 body on account endpoints for servers that want a token (Pixelfed, GoToSocial).
    account_auth_error: str | None
    #: ``(schema version, path)`` pairs listed by ``/.well-known/nodeinfo``, best first.
    nodeinfo: tuple[tuple[str, str], ...]
    #: Profile page path, ``{}`` standing for the username.
    profile_path: str
    id_style: IdStyle
    #: Whether ``/api/v1/instance/activity`` and ``/api/v2/instance`` exist.
    has_activity: bool
    has_instance_v2: bool
    repository: str
    homepage: str

    def supports(self, feature: str, version: str) -> bool:
        """Whether a server of this software at ``version`` offers ``feature``.

        Features: ``"lookup"`` (Mastodon 3.4), ``"batch"`` (Mastodon 4.3), ``"instance_v2"``
        (Mastodon 4.0), ``"activity"``, ``"date_last_status"`` (Mastodon 3.1 serves a date),
        ``"deprecation_header"`` (Mastodon 4.0 marks ``/api/v1/instance`` deprecated),
        ``"tags"`` (``GET /api/v1/tags/:name``, Mastodon 4.0), ``"trends"`` (``GET
        /api/v1/trends``, Mastodon 3.0), ``"trends_tags"`` (``GET /api/v1/trends/tags``,
        Mastodon 3.5), ``"account_statuses"`` (every server with a Mastodon API).
        """
        numbers = parse_version(version)
        if self.name != "mastodon":
            return {
                "lookup": self.mastodon_api,
                "batch": False,
                "instance_v2": self.has_instance_v2,
                "activity": self.has_activity,
                "date_last_status": False,
                "deprecation_header": False,
                "account_statuses": self.mastodon_api,
            }.get(feature, False)
        since = _MASTODON_SINCE.get(feature)
        return since is not None and numbers >= since


# Mastodon versions that introduced what the simulator varies by version.
_MASTODON_SINCE: dict[str, tuple[int, ...]] = {
    "lookup": (3, 4),
    "batch": (4, 3),
    "instance_v2": (4, 0),
    "activity": (2, 1),
    "date_last_status": (3, 1),
    "deprecation_header": (4, 0),
    "tags": (4, 0),
    "trends": (3, 0),
    "trends_tags": (3, 5),
    "account_statuses": (0,),
}

_PLEROMA_COMPAT = "2.7.2"
_NODEINFO_20 = "2.0"
_NODEINFO_21 = "2.1"

_PROFILES: dict[str, SoftwareProfile] = {
    "mastodon": SoftwareProfile(
        name="mastodon",
        compatible_name=None,
        compatible_version="",
        mastodon_api=True,
        account_auth_error=None,
        nodeinfo=((_NODEINFO_20, "/nodeinfo/2.0"),),
        profile_path="/@{}",
        id_style="snowflake",
        has_activity=True,
        has_instance_v2=True,
        repository="https://github.com/mastodon/mastodon",
        homepage="https://joinmastodon.org",
    ),
    "pleroma": SoftwareProfile(
        name="pleroma",
        compatible_name="Pleroma",
        compatible_version=_PLEROMA_COMPAT,
        mastodon_api=True,
        account_auth_error=None,
        nodeinfo=((_NODEINFO_21, "/nodeinfo/2.1.json"), (_NODEINFO_20, "/nodeinfo/2.0.json")),
        profile_path="/users/{}",
        id_style="flake",
        has_activity=False,
        has_instance_v2=False,
        repository="https://git.pleroma.social/pleroma/pleroma",
        homepage="https://pleroma.social",
    ),
    "akkoma": SoftwareProfile(
        name="akkoma",
        compatible_name="Akkoma",
        compatible_version=_PLEROMA_COMPAT,
        mastodon_api=True,
        account_auth_error=None,
        nodeinfo=((_NODEINFO_21, "/nodeinfo/2.1.json"), (_NODEINFO_20, "/nodeinfo/2.0.json")),
        profile_path="/users/{}",
        id_style="flake",
        has_activity=False,
        has_instance_v2=False,
        repository="https://akkoma.dev/AkkomaGang/akkoma",
        homepage="https://akkoma.social",
    ),
    "pixelfed": SoftwareProfile(
        name="pixelfed",
        compatible_name="Pixelfed",
        compatible_version="3.5.3",
        mastodon_api=True,
        account_auth_error="Unauthenticated.",
        nodeinfo=((_NODEINFO_20, "/api/nodeinfo/2.0.json"),),
        profile_path="/{}",
        id_style="snowflake",
        has_activity=False,
        has_instance_v2=False,
        repository="https://github.com/pixelfed/pixelfed",
        homepage="https://pixelfed.org",
    ),
    "gotosocial": SoftwareProfile(
        name="gotosocial",
        compatible_name=None,
        compatible_version="",
        mastodon_api=True,
        account_auth_error="Unauthorized: token not supplied",
        nodeinfo=((_NODEINFO_20, "/nodeinfo/2.0"),),
        profile_path="/@{}",
        id_style="ulid",
        has_activity=False,
        has_instance_v2=True,
        repository="https://codeberg.org/superseriousbusiness/gotosocial",
        homepage="https://gotosocial.org",
    ),
    "misskey": SoftwareProfile(
        name="misskey",
        compatible_name=None,
        compatible_version="",
        mastodon_api=False,
        account_auth_error=None,
        nodeinfo=((_NODEINFO_21, "/nodeinfo/2.1"), (_NODEINFO_20, "/nodeinfo/2.0")),
        profile_path="/@{}",
        id_style="aid",
        has_activity=False,
        has_instance_v2=False,
        repository="https://github.com/misskey-dev/misskey",
        homepage="https://misskey-hub.net/",
    ),
}


def profile_for(software: str) -> SoftwareProfile:
    """Return the profile of ``software`` (case-insensitive).

    Software the table does not know behaves like a Mastodon-compatible server without the
    batch call and with NodeInfo 2.0 at ``/nodeinfo/2.0``, which is what most others do.
    """
    key = software.lower()
    known = _PROFILES.get(key)
    if known is not None:
        return known
    return SoftwareProfile(
        name=key,
        compatible_name=None,
        compatible_version="",
        mastodon_api=True,
        account_auth_error=None,
        nodeinfo=((_NODEINFO_20, "/nodeinfo/2.0"),),
        profile_path="/@{}",
        id_style="snowflake",
        has_activity=False,
        has_instance_v2=False,
        repository="",
        homepage="",
    )
