"""Alert rules as the settings give them: parsed, checked and normalised. Pure.

A rule is a small table of keys (TOML ``[[alerts]]``, or a JSON list in ``FEDIMETER_ALERTS``)::

    kind = "drop"            # drop | rise (also: jump) | failing | milestone
    scope = "accounts"       # accounts | instances | tags: what it watches
    metric = "followers"     # a stored figure of that scope (tags: a day's uses, accounts)
    percent = 5              # drop and rise: more than this share of the figure ...
    count = 10               # ... and/or more than this many
    window = "1d"            # drop and rise: over this many UTC days (1d, 7d, 2w)
    rounds = 3               # failing: this many rounds in a row
    values = [1000]          # milestone: these values, and/or
    round_numbers = true     # 10, 25, 50, 100, 250, ... as in reports
    only = ["@alice@example.social"]   # handles, hosts, or tags (#caturday[@host], a host)
    name = "followers-drop"  # optional, unique; the default is built from the keys

The scope names a kind of subject and ``only`` selects some of them, so a new kind of subject
adds a scope and its metrics without changing the shape of a rule. Hashtags are the scope
``tags``: a subject is a tag on one instance, its metrics ``uses`` and ``accounts`` are
those of whole UTC days, and ``only`` names a tag on every instance (``#caturday``, any
case), on one (``#caturday@mastodon.social``, or ``#caturday on mastodon.social`` as alerts
write it), or every tag of an instance (``mastodon.social``: a host has a dot or a port,
which no tag name has).

Every problem is one sentence naming the rule: ``rule 2 (drop): a drop rule needs percent,
count or both``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal, get_args

from fedimeter.domain.handles import parse_account_ref, parse_authority
from fedimeter.domain.tags import parse_tag_name
from fedimeter.errors import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "DEFAULT_METRICS",
    "KINDS",
    "MAX_WINDOW_DAYS",
    "METRICS",
    "SCOPES",
    "AlertKind",
    "AlertRule",
    "AlertScope",
    "parse_rules",
    "unmatched_only",
]

AlertKind = Literal["drop", "rise", "failing", "milestone"]
AlertScope = Literal["accounts", "instances", "tags"]

KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
SCOPES: tuple[AlertScope, ...] = get_args(AlertScope)
#: The figures each scope stores, by the names storage uses.
METRICS: dict[AlertScope, tuple[str, ...]] = {
    "accounts": ("followers", "following", "statuses"),
    "instances": ("users", "statuses", "domains", "peers", "active_month", "active_halfyear"),
    #: A day's posts using the tag, and accounts using it.
    "tags": ("uses", "accounts"),
}
DEFAULT_METRICS: dict[AlertScope, str] = {
    "accounts": "followers",
    "instances": "users",
    "tags": "uses",
}
#: The longest window a drop or rise is measured over.
MAX_WINDOW_DAYS = 90
#: Rounds a failing rule waits for when it does not say.
DEFAULT_ROUNDS = 3
_MAX_NAME = 80
_MAX_ROUNDS = 1000
_MAX_VALUE = 10**12
_ALIASES = {"jump": "rise"}
_WINDOW = re.compile(r"^(\d{1,4})\s*([dw])$")
#: ``#caturday on mastodon.social``: a tag on an instance, as alerts write it.
_TAG_ON = re.compile(r"^(.+?)\s+on\s+(\S+)$")
#: What only a host has, never a tag name: a dot, a port, a bracket, a URL's slash.
_HOST_MARKS = frozenset(".:[/")
_KEYS = (
    "name",
    "kind",
    "scope",
    "metric",
    "percent",
    "count",
    "window",
    "rounds",
    "values",
    "round_numbers",
    "only",
)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """One checked rule; field names are the keys of the settings, so it reads back as given."""

    name: str
    kind: AlertKind
    scope: AlertScope
    #: The figure watched; None for ``failing``.
    metric: str | None = None
    #: ``drop``/``rise``: fires when the change is more than this percentage of the start.
    percent: float | None = None
    #: ``drop``/``rise``: fires when the change is more than this many.
    count: int | None = None
    #: ``drop``/``rise``: whole UTC days the change is measured over (1: the day so far).
    window: int = 1
    #: ``failing``: rounds in a row without a measurement.
    rounds: int | None = None
    #: ``milestone``: the values that count as milestones.
    values: tuple[int, ...] = ()
    #: ``milestone``: also 10, 25, 50, 100, 250, 500, 1,000, ...
    round_numbers: bool = False
    #: Normalised handles (``user@host``, lower case) or hosts; for tags ``#key`` (the tag
    #: on every instance), ``key@host`` (on one) or a host (every tag there). Empty: every
    #: subject.
    only: tuple[str, ...] = ()

    def watches(self, key: str) -> bool:
        """Whether the subject with this normalised key is one the rule looks at.

        A tag's key is ``key@host``: ``only`` may name it, its tag, or its host.
        """
        if not self.only:
            return True
        if self.scope == "tags":
            name, _, host = key.partition("@")
            return any(k in self.only for k in (key, f"#{name}", host))
        return key in self.only


class _Problem(ValueError):
    """What is wrong with one rule, as the end of a sentence."""


def parse_rules(value: object) -> list[AlertRule]:
    """The rules from a TOML list of tables, a JSON text of one, or rules already parsed.

    Raises:
        ValueError: one sentence saying which rule is wrong and why.
    """
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            if not text.startswith(("[", "{")):
                # alerts = "yes" in TOML, or a variable that is no JSON at all.
                msg = (
                    "alerts must be a list of rules ([[alerts]] tables, or in"
                    f" FEDIMETER_ALERTS a JSON list of them), not {text[:40]!r}"
                )
                raise ValueError(msg) from None
            msg = f"not a JSON list of rules ({exc.msg} at character {exc.pos + 1})"
            raise ValueError(msg) from None
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list | tuple):
        msg = "expected a list of rules, each a table of keys (see docs/alerts.md)"
        raise ValueError(msg)  # noqa: TRY004 - a settings error, told as ValueError
    rules: list[AlertRule] = []
    names: dict[str, int] = {}
    for number, item in enumerate(value, start=1):
        try:
            rule = item if isinstance(item, AlertRule) else _rule(item)
        except _Problem as exc:
            label = _label(item)
            raise ValueError(f"rule {number}{label}: {exc}") from None
        if rule.name in names:
            msg = (
                f"rules {names[rule.name]} and {number} are both named {rule.name!r}:"
                " give each a name of its own"
            )
            raise ValueError(msg)
        names[rule.name] = number
        rules.append(rule)
    return rules


def _label(item: object) -> str:
    """`` (name)`` or `` (kind)`` for messages, when the rule says either."""
    if isinstance(item, dict):
        for key in ("name", "kind"):
            if isinstance(item.get(key), str) and item[key].strip():
                return f" ({item[key].strip()})"
    return ""


def _rule(item: object) -> AlertRule:
    if not isinstance(item, dict):
        msg = 'a rule is a table of keys, such as {kind = "drop", percent = 5}'
        raise _Problem(msg)
    unknown = [str(k) for k in item if k not in _KEYS]
    if unknown:
        msg = f"unknown key {unknown[0]!r} (a rule has {', '.join(_KEYS)})"
        raise _Problem(msg)
    kind = _kind(item.get("kind"))
    scope = _scope(item.get("scope", "accounts"))
    metric = None if kind == "failing" else _metric(item.get("metric"), scope)
    percent = _percent(item.get("percent"), kind)
    count = _positive_int(item.get("count"), "count", _MAX_VALUE)
    window = _window(item.get("window", 1))
    rounds = _positive_int(item.get("rounds"), "rounds", _MAX_ROUNDS)
    values = _values(item.get("values", ()))
    round_numbers = item.get("round_numbers", False)
    if not isinstance(round_numbers, bool):
        msg = "round_numbers must be true or false"
        raise _Problem(msg)
    only = _only(item.get("only", ()), scope)

    if kind == "failing" and item.get("metric") is not None:
        msg = "a failing rule watches rounds, not a metric: remove metric"
        raise _Problem(msg)
    if kind in {"drop", "rise"}:
        if percent is None and count is None:
            msg = f"a {kind} rule needs percent, count or both"
            raise _Problem(msg)
        _unused(kind, rounds=rounds, values=values, round_numbers=round_numbers)
    elif kind == "failing":
        rounds = DEFAULT_ROUNDS if rounds is None else rounds
        _unused(kind, percent=percent, count=count, window=window != 1, values=values)
        _unused(kind, round_numbers=round_numbers)
    else:
        if not values and not round_numbers:
            msg = "a milestone rule needs values, round_numbers = true, or both"
            raise _Problem(msg)
        _unused(kind, percent=percent, count=count, window=window != 1, rounds=rounds)
    rule = AlertRule(
        name="",
        kind=kind,
        scope=scope,
        metric=metric,
        percent=percent,
        count=count,
        window=window,
        rounds=rounds,
        values=values,
        round_numbers=round_numbers,
        only=only,
    )
    name = _name(item.get("name"), rule)
    return AlertRule(**{f.name: getattr(rule, f.name) for f in fields(rule)} | {"name": name})


def _unused(kind: str, **given: object) -> None:
    """Refuse keys that mean nothing for ``kind`` (a typo in the kind, or a misunderstanding)."""
    for key, value in given.items():
        if value not in (None, False, ()):
            msg = f"{key} means nothing for a {kind} rule: remove it"
            raise _Problem(msg)


def _kind(value: object) -> AlertKind:
    if value is None:
        msg = f"kind is missing: one of {', '.join(KINDS)}"
        raise _Problem(msg)
    text = str(value).strip().lower()
    text = _ALIASES.get(text, text)
    for kind in KINDS:
        if kind == text:
            return kind
    msg = f"unknown kind {value!r}: use {', '.join(KINDS)}"
    raise _Problem(msg)


def _scope(value: object) -> AlertScope:
    text = str(value).strip().lower()
    for scope in SCOPES:
        if scope == text:
            return scope
    msg = f"unknown scope {value!r}: use {', '.join(SCOPES[:-1])} or {SCOPES[-1]}"
    raise _Problem(msg)


def _metric(value: object, scope: AlertScope) -> str:
    if value is None:
        return DEFAULT_METRICS[scope]
    text = str(value).strip().lower()
    if text not in METRICS[scope]:
        msg = f"{scope} have no metric {value!r}: use {', '.join(METRICS[scope])}"
        raise _Problem(msg)
    return text


def _number(value: object, key: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        msg = f"{key} must be a number, not {value!r}"
        raise _Problem(msg)
    return float(value)


def _percent(value: object, kind: AlertKind) -> float | None:
    number = _number(value, "percent")
    if number is None:
        return None
    if not number > 0:
        msg = f"percent must be above 0, not {value!r}"
        raise _Problem(msg)
    if kind == "drop" and number >= 100:  # noqa: PLR2004
        msg = "percent must be below 100 for a drop: no figure falls by more than all of it"
        raise _Problem(msg)
    return number


def _positive_int(value: object, key: str, most: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        msg = f"{key} must be a whole number from 1 to {most:,}, not {value!r}"
        raise _Problem(msg)
    return value


def _window(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        days = value
    else:
        match = _WINDOW.match(str(value).strip().lower())
        if match is None:
            msg = f"window must be whole days or weeks such as 1d, 7d or 2w, not {value!r}"
            raise _Problem(msg)
        days = int(match.group(1)) * (7 if match.group(2) == "w" else 1)
    if not 1 <= days <= MAX_WINDOW_DAYS:
        msg = f"window must be from 1 to {MAX_WINDOW_DAYS} days, not {value!r}"
        raise _Problem(msg)
    return days


def _values(value: object) -> tuple[int, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    numbers: set[int] = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= _MAX_VALUE:
            msg = f"values must be whole numbers from 1 to {_MAX_VALUE:,}, not {item!r}"
            raise _Problem(msg)
        numbers.add(item)
    return tuple(sorted(numbers))


def _only(value: object, scope: AlertScope) -> tuple[str, ...]:
    items = value if isinstance(value, list | tuple) else [value]
    keys: list[str] = []
    for item in items:
        if not isinstance(item, str):
            msg = f"only must list {_only_what(scope)}, not {item!r}"
            raise _Problem(msg)
        if scope != "accounts" and item.strip().startswith("@"):
            msg = (
                f"only names {item.strip()!r}, an account handle: a {scope} rule names"
                f" {_only_what(scope)} (for accounts, a rule of scope accounts)"
            )
            raise _Problem(msg)
        try:
            if scope == "accounts":
                keys.append(parse_account_ref(item).handle.key)
            elif scope == "tags":
                keys.append(_tag_only(item))
            else:
                keys.append(parse_authority(item).authority)
        except InvalidInput as exc:
            msg = f"only must list {_only_what(scope)}: {exc}"
            raise _Problem(msg) from None
    return tuple(dict.fromkeys(keys))


def _tag_only(text: str) -> str:
    """``#key`` (a tag anywhere), ``key@host`` (on one instance) or a host (every tag there).

    Raises:
        InvalidInput: not a hashtag, not an instance address.
    """
    text = text.strip()
    on = _TAG_ON.match(text)
    name, at, host = (on.group(1), "@", on.group(2)) if on else text.partition("@")
    if at:
        return f"{parse_tag_name(name).key}@{parse_authority(host).authority}"
    if text.startswith(("#", "\uff03")) or not any(c in _HOST_MARKS for c in text):
        return f"#{parse_tag_name(text).key}"
    return parse_authority(text).authority


def _only_what(scope: AlertScope) -> str:
    if scope == "accounts":
        return "handles such as @user@host"
    if scope == "tags":
        return "hashtags such as #caturday or #caturday@example.social, or hosts"
    return "hosts such as example.social"


def _name(value: object, rule: AlertRule) -> str:
    if value is None:
        return _default_name(rule)
    text = str(value).strip()
    if not text or len(text) > _MAX_NAME or any(not c.isprintable() for c in text):
        msg = f"name must be 1 to {_MAX_NAME} printable characters, not {value!r}"
        raise _Problem(msg)
    return text


def _default_name(rule: AlertRule) -> str:
    """``drop-accounts-followers-5%-1d``: what the rule is, short; its keys make it unique."""
    parts: list[str] = [rule.kind, rule.scope]
    if rule.metric is not None:
        parts.append(rule.metric)
    if rule.percent is not None:
        parts.append(f"{rule.percent:g}%")
    if rule.count is not None:
        parts.append(str(rule.count))
    if rule.kind in {"drop", "rise"}:
        parts.append(f"{rule.window}d")
    if rule.rounds is not None:
        parts.append(f"{rule.rounds}rounds")
    parts.extend(str(v) for v in rule.values)
    if rule.round_numbers:
        parts.append("round")
    if rule.only:
        parts.append("+".join(rule.only))
    return "-".join(parts)[:_MAX_NAME]


def unmatched_only(rule: AlertRule, subjects: Iterable[str]) -> list[str]:
    """The entries of ``rule.only`` that name none of ``subjects``.

    ``subjects`` are the normalised keys of what is tracked in the rule's scope (handles'
    ``user@host``, hosts, tags' ``key@host``). Rules are checked without the database, so a
    typo (or a tag not tracked yet) would silently watch nothing: the CLI warns with these.
    """
    keys = set(subjects)
    if rule.scope != "tags":
        return [entry for entry in rule.only if entry not in keys]
    names = {key.partition("@")[0] for key in keys}
    hosts = {key.partition("@")[2] for key in keys}
    missing = []
    for entry in rule.only:
        if entry.startswith("#"):
            found = entry[1:] in names
        elif "@" in entry:
            found = entry in keys
        else:
            found = entry in hosts
        if not found:
            missing.append(entry)
    return missing
