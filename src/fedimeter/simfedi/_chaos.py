"""Chaos: a whole faulty world from one seed, for long fault benchmarks.

``add_chaos`` gives each instance one profile, drawn by weight (healthy, flaky, limited, ...),
and the faults, settings and outages of that profile with seeded parameters; it also deletes
and suspends a share of the accounts. It returns a ``ChaosReport`` that says what was injected
and which accounts a collector can measure in principle: all but those refused for good (a
deleted or suspended account, a host that is down for good, answers 401 or an HTML page to
every API call, or redirects in a loop).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, fields
from functools import partial
from typing import TYPE_CHECKING, Final

from fedimeter.simfedi._faults import Fault

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from fedimeter.simfedi._accounts import SimAccount
    from fedimeter.simfedi._instance import SimInstance
    from fedimeter.simfedi._outages import Outage
    from fedimeter.simfedi._world import SimFediverse

__all__ = ["PROFILES", "ChaosRates", "ChaosReport", "HostChaos", "add_chaos"]

#: Host profiles, in the order their weights are read (``ChaosRates`` has one field each).
PROFILES: Final = (
    "healthy",
    "flaky",
    "limited",
    "html",
    "unprocessable",
    "rate_limited",
    "slow",
    "redirect",
    "redirect_loop",
    "outage",
    "down",
)
#: Profiles whose hosts refuse every account for good, and why.
_REFUSING: Final = {
    "limited": "host answers 401 to every API call",
    "html": "host answers an HTML page to every request",
    "redirect_loop": "host redirects in a loop",
    "down": "host is down for good",
}
_FLAKY_STATUSES: Final = (500, 502, 503, 504)
_REDIRECT_STATUSES: Final = (301, 302, 307, 308)
_WRONG_TYPES: Final = ("text/html; charset=utf-8", "text/plain", "application/octet-stream")
#: Share of storms that carry Retry-After (proxies add it; Mastodon itself does not).
_RETRY_AFTER_SHARE: Final = 0.75
_FLAKY_KINDS: Final = (
    "status",
    "proxy",
    "reset",
    "timeout",
    "malformed",
    "truncated",
    "wrong_type",
    "content_type",
)


@dataclass(frozen=True, slots=True)
class ChaosRates:
    """How much of each kind of trouble ``add_chaos`` injects.

    The first fields weigh the host profiles (relative weights, any non-negative numbers):

    * ``healthy``: no fault.
    * ``flaky``: two to four transient faults, each with a probability drawn from
      ``fault_probability``: a JSON 5xx, a proxy's HTML 502 page, TCP resets, timeouts,
      malformed or truncated JSON, wrong-typed values, JSON under a wrong Content-Type.
    * ``limited``: limited federation, 401 on every API call (refuses for good).
    * ``html``: a CDN's HTML 200 page for every request (refuses for good).
    * ``unprocessable``: 422 on every batch call; the per-account call still works.
    * ``rate_limited``: a 429 storm of ``storm`` seconds from its first request, with
      ``Retry-After`` on most hosts.
    * ``slow``: some answers drip, one byte every ``drip_interval`` seconds.
    * ``redirect``: some requests redirect to the same path on another host.
    * ``redirect_loop``: hosts in pairs redirecting every request to each other (an odd one
      out to itself; refuses for good).
    * ``outage``: one or two outages, ``outage_after`` seconds into serving, each lasting
      ``outage_lasting`` seconds.
    * ``down``: down from the start, for good.

    Then per account: ``deleted`` and ``suspended`` are the shares of accounts made so; per
    host: ``gone_410`` the share answering 410 rather than 404 for deleted accounts. Ranges are
    ``(low, high)`` for a uniform draw.
    """

    healthy: float = 0.30
    flaky: float = 0.20
    limited: float = 0.04
    html: float = 0.04
    unprocessable: float = 0.05
    rate_limited: float = 0.08
    slow: float = 0.05
    redirect: float = 0.05
    redirect_loop: float = 0.04
    outage: float = 0.10
    down: float = 0.05
    deleted: float = 0.03
    suspended: float = 0.01
    gone_410: float = 0.3
    fault_probability: tuple[float, float] = (0.05, 0.3)
    storm: tuple[float, float] = (1.0, 5.0)
    drip_interval: tuple[float, float] = (0.0005, 0.003)
    outage_after: tuple[float, float] = (0.0, 5.0)
    outage_lasting: tuple[float, float] = (1.0, 5.0)

    def __post_init__(self) -> None:
        """Refuse weights and ranges that cannot work.

        Raises:
            ValueError: a negative weight, no profile with weight, a share outside 0..1, a
                range whose low end is above its high end or below zero, or fault
                probabilities above 1.
        """
        weights = self.weights()
        if any(weight < 0 for weight in weights.values()) or not sum(weights.values()) > 0:
            raise ValueError(f"profile weights must be >= 0 and not all 0, got {weights}")
        for name in ("deleted", "suspended", "gone_410"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {getattr(self, name)}")
        if self.deleted + self.suspended > 1.0:
            raise ValueError("deleted + suspended must not exceed 1")
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, tuple) and not 0 <= value[0] <= value[1]:
                raise ValueError(f"{field.name} must be (low, high) with 0 <= low <= high")
        if self.fault_probability[1] > 1.0:
            raise ValueError("fault_probability must stay within 0..1")
        if not self.storm[0] > 0 or not self.outage_lasting[0] > 0 or not self.drip_interval[0] > 0:
            raise ValueError("storm, outage_lasting and drip_interval must be positive")

    def weights(self) -> dict[str, float]:
        """The profile weights by name."""
        return {name: float(getattr(self, name)) for name in PROFILES}


@dataclass(frozen=True, slots=True)
class HostChaos:
    """What ``add_chaos`` did to one instance."""

    instance: str
    profile: str
    #: The faults appended to the instance's list, in order.
    faults: tuple[Fault, ...]
    #: Outages scheduled on the world.
    outages: tuple[Outage, ...]
    #: Settings changed: ``limited_federation``, ``gone_status=410``.
    settings: tuple[str, ...]
    #: Why none of its accounts can be measured, or None.
    refuses: str | None

    def describe(self) -> str:
        """One line: ``beta: flaky (reset p=0.12; status 503 p=0.20)``."""
        parts = [
            *self.settings,
            *(fault.describe() for fault in self.faults),
            *(outage.describe() for outage in self.outages),
        ]
        details = f" ({'; '.join(parts)})" if parts else ""
        return f"{self.instance}: {self.profile}{details}"


@dataclass(frozen=True, slots=True)
class ChaosReport:
    """What ``add_chaos`` injected, and which accounts remain measurable in principle."""

    seed: int | None
    rates: ChaosRates
    #: One entry per instance, in the order given.
    hosts: tuple[HostChaos, ...]
    #: Every account of those instances, in order, with why it cannot be measured (None: it
    #: can be, in principle).
    accounts: tuple[tuple[SimAccount, str | None], ...]

    def host(self, name: str) -> HostChaos:
        """Return what was done to the instance called ``name``.

        Raises:
            KeyError: the instance was not part of the chaos.
        """
        for host in self.hosts:
            if host.instance == name:
                return host
        raise KeyError(name)

    def reason(self, account: SimAccount) -> str | None:
        """Why ``account`` cannot be measured, or None if it can be in principle.

        Raises:
            KeyError: the account was not part of the chaos.
        """
        for candidate, why in self.accounts:
            if candidate is account:
                return why
        raise KeyError(account.username)

    def measurable(self, account: SimAccount) -> bool:
        """Whether a collector that retries patiently can measure ``account`` at all."""
        return self.reason(account) is None

    @property
    def measurable_accounts(self) -> list[SimAccount]:
        """The accounts that can be measured in principle, in order."""
        return [account for account, why in self.accounts if why is None]

    @property
    def unmeasurable_accounts(self) -> dict[SimAccount, str]:
        """The accounts refused for good, with the reason."""
        return {account: why for account, why in self.accounts if why is not None}

    def profile_counts(self) -> dict[str, int]:
        """How many hosts got each profile (profiles no host got are left out)."""
        counts: dict[str, int] = {}
        for host in self.hosts:
            counts[host.profile] = counts.get(host.profile, 0) + 1
        return counts

    def describe(self) -> str:
        """A text for a benchmark to print: one line per host, then the account figures."""
        reasons: dict[str, int] = {}
        for why in self.unmeasurable_accounts.values():
            reasons[why] = reasons.get(why, 0) + 1
        lines = [f"chaos seed={self.seed}: {len(self.hosts)} hosts, {len(self.accounts)} accounts"]
        lines += [f"  {host.describe()}" for host in self.hosts]
        lines.append(f"  measurable in principle: {len(self.measurable_accounts)}")
        lines += [f"  not measurable, {why}: {count}" for why, count in sorted(reasons.items())]
        return "\n".join(lines)


class _Builder:
    """Draws and applies the instances' profiles; every draw goes through one seeded RNG."""

    def __init__(
        self,
        world: SimFediverse,
        instances: list[SimInstance],
        rng: random.Random,
        rates: ChaosRates,
    ) -> None:
        self._world = world
        self._instances = instances
        self._rng = rng
        self._rates = rates
        self._partners: dict[SimInstance, SimInstance] = {}

    def profiles(self) -> list[str]:
        weights = self._rates.weights()
        profiles = self._rng.choices(list(weights), list(weights.values()), k=len(self._instances))
        looping = [
            instance
            for instance, profile in zip(self._instances, profiles, strict=True)
            if profile == "redirect_loop"
        ]
        for first, second in zip(looping[::2], looping[1::2], strict=False):
            self._partners[first], self._partners[second] = second, first
        if len(looping) % 2:
            self._partners[looping[-1]] = looping[-1]  # alone: a redirect to the same URL
        return profiles

    def chance(self, probability: float) -> bool:
        return self._rng.random() < probability

    def uniform(self, bounds: tuple[float, float]) -> float:
        low, high = bounds
        return round(self._rng.uniform(low, high), 3)

    def probability(self) -> float:
        return max(0.001, self.uniform(self._rates.fault_probability))

    def apply(
        self, instance: SimInstance, profile: str, settings: list[str]
    ) -> tuple[list[Fault], list[Outage]]:
        """Change ``instance`` as ``profile`` says; return the faults to add and the outages."""
        match profile:
            case "limited":
                instance.limited_federation = True
                settings.append("limited_federation")
            case "down":
                self._world.take_down(instance.name)
            case "outage":
                return [], self.outages(instance)
            case _:
                return self.faults(instance, profile), []
        return [], []

    def faults(self, instance: SimInstance, profile: str) -> list[Fault]:
        """The faults of a profile made of faults (healthy: none)."""
        makers: dict[str, Callable[[], list[Fault]]] = {
            "flaky": self.flaky,
            "html": lambda: [Fault(kind="html")],
            "unprocessable": lambda: [Fault(kind="status", status=422, endpoint="batch")],
            "rate_limited": self.storm,
            "slow": self.slow,
            "redirect": partial(self.redirect, instance),
            "redirect_loop": lambda: [
                Fault(kind="redirect", target=self._partners[instance], status=302)
            ],
        }
        maker = makers.get(profile)
        return maker() if maker is not None else []

    def storm(self) -> list[Fault]:
        duration = self.uniform(self._rates.storm)
        with_header = self.chance(_RETRY_AFTER_SHARE)
        return [Fault(kind="rate_limited", duration=duration, retry_after=with_header)]

    def slow(self) -> list[Fault]:
        interval = self.uniform(self._rates.drip_interval)
        return [Fault(kind="drip", interval=interval, probability=self.probability())]

    def redirect(self, instance: SimInstance) -> list[Fault]:
        target = self.redirect_target(instance)
        status = self._rng.choice(_REDIRECT_STATUSES)
        probability = self.probability()
        return [Fault(kind="redirect", target=target, status=status, probability=probability)]

    def flaky(self) -> list[Fault]:
        kinds = self._rng.sample(_FLAKY_KINDS, self._rng.randint(2, 4))
        faults = []
        for kind in kinds:
            probability = self.probability()
            match kind:
                case "status":
                    status = self._rng.choice(_FLAKY_STATUSES)
                    faults.append(Fault(kind="status", status=status, probability=probability))
                case "proxy":
                    faults.append(Fault(kind="html", status=502, probability=probability))
                case "content_type":
                    content_type = self._rng.choice(_WRONG_TYPES)
                    faults.append(
                        Fault(
                            kind="content_type", content_type=content_type, probability=probability
                        )
                    )
                case "reset" | "timeout" | "malformed" | "truncated" | "wrong_type":
                    faults.append(Fault(kind=kind, probability=probability))
        return faults

    def redirect_target(self, instance: SimInstance) -> SimInstance:
        others = [other for other in self._instances if other is not instance]
        if not others:
            others = [other for other in self._world.instances.values() if other is not instance]
        return self._rng.choice(others) if others else instance

    def outages(self, instance: SimInstance) -> list[Outage]:
        outages = []
        after = 0.0
        for _ in range(self._rng.randint(1, 2)):
            after += self.uniform(self._rates.outage_after)
            lasting = self.uniform(self._rates.outage_lasting)
            outages.append(self._world.schedule_outage(instance.name, after=after, lasting=lasting))
            after += lasting
        return outages


def _software_refuses(instance: SimInstance) -> str | None:
    """Why the instance's own configuration refuses accounts to a collector without a token."""
    if instance.limited_federation:
        return "host answers 401 to every API call"
    if not instance.profile.mastodon_api:
        return f"{instance.software} has no Mastodon API"
    if instance.profile.account_auth_error is not None:
        return f"{instance.software} wants a token for accounts"
    if {"account", "lookup"} <= instance.disabled_endpoints:
        return "host serves no account endpoint"
    return None


def add_chaos(
    world: SimFediverse,
    instances: Iterable[SimInstance | str] | None = None,
    *,
    rng: random.Random | int,
    rates: ChaosRates | None = None,
) -> ChaosReport:
    """Give each of ``instances`` (default: every instance of ``world``) a seeded fault profile.

    Appends faults to the instances' ``faults``, changes their settings (limited federation,
    410 for deleted accounts), schedules outages and takes hosts down on ``world``, and
    deletes or suspends a share of their accounts; see ``ChaosRates`` for the profiles. Call
    it after adding the accounts, before or while serving: nothing needs an address. Equal
    seeds over equal worlds give equal chaos (``rng`` is a seed or a ``random.Random`` of
    the caller's; the world's own RNG is not touched, so its ids and fault rolls stay as they
    were).

    Returns:
        What was injected, and which accounts can be measured in principle.
    """
    rates = rates or ChaosRates()
    seed = rng if isinstance(rng, int) else None
    draw = random.Random(rng) if isinstance(rng, int) else rng  # noqa: S311 - simulation
    chosen = [
        world.instance(item) if isinstance(item, str) else item
        for item in (world.instances.values() if instances is None else instances)
    ]
    builder = _Builder(world, chosen, draw, rates)
    hosts: list[HostChaos] = []
    for instance, profile in zip(chosen, builder.profiles(), strict=True):
        settings: list[str] = []
        if builder.chance(rates.gone_410):
            instance.gone_status = 410
            settings.append("gone_status=410")
        faults, outages = builder.apply(instance, profile, settings)
        instance.faults.extend(faults)
        hosts.append(
            HostChaos(
                instance=instance.name,
                profile=profile,
                faults=tuple(faults),
                outages=tuple(outages),
                settings=tuple(settings),
                refuses=_REFUSING.get(profile) or _software_refuses(instance),
            )
        )
    accounts = _accounts(chosen, hosts, draw, rates)
    return ChaosReport(seed=seed, rates=rates, hosts=tuple(hosts), accounts=accounts)


def _accounts(
    instances: list[SimInstance],
    hosts: list[HostChaos],
    rng: random.Random,
    rates: ChaosRates,
) -> tuple[tuple[SimAccount, str | None], ...]:
    result: list[tuple[SimAccount, str | None]] = []
    for instance, host in zip(instances, hosts, strict=True):
        for account in instance.accounts:
            roll = rng.random()
            if not (account.deleted or account.suspended):
                if roll < rates.deleted:
                    account.deleted = True
                elif roll < rates.deleted + rates.suspended:
                    account.suspended = True
            result.append((account, _account_refused(account) or host.refuses))
    return tuple(result)


def _account_refused(account: SimAccount) -> str | None:
    if account.deleted:
        return "account deleted"
    if account.suspended:
        return "account suspended"
    return None
