"""A long fault run: rounds over many accounts on many misbehaving hosts, with figures.

Issue 8's fault run. A simulated fediverse on loopback gets a seeded mix of troubles from
``simfedi.add_chaos``: hosts that answer 5xx, reset connections, time out, drip a body byte
by byte, send truncated or malformed JSON, HTML pages with status 200, JSON under a wrong
Content-Type, wrong-typed values, redirects to another host and in loops, 401 everywhere
(limited federation), 404 and 410 for deleted accounts, 422 on the batch call, 429 storms,
hosts that vanish mid-round and come back, and hosts down for good. fedimeter then runs
several collection rounds over every account (each round a simulated day later) and the run
checks, round by round:

- **accounts measured against measurable**: measurable = not refused for good (deleted or
  suspended, or a host that is down, 401 or HTML for everything, or loops);
- **samples lost** (goal 0): every account due in the round ends with a sample, a recorded
  failure, or a state change (gone, suspended, moved) — none is left without an outcome;
- **values stored that the server did not serve as truth** (goal 0): every stored sample
  equals the simulated account's real counts; wrong-typed or garbled values never land;
- **rounds that crashed** (goal 0);
- **wall time** (goal: within ``host_deadline`` + ``request_deadline`` + 5 s): no host
  stalls a round past its deadline, however slowly it drips.

    python reliability/faults.py                        # 10,000 accounts, 100 hosts, 6 rounds
    python reliability/faults.py --backend postgresql
    python reliability/faults.py --ci --json out.json   # the bounded form CI runs

Prints what was injected, a table per round and the verdict; exits 1 when a goal failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select

from fedimeter.clock import utc_now
from fedimeter.collect import collect_round
from fedimeter.config import Settings, normalise_database_url
from fedimeter.domain.models import InstanceAddress
from fedimeter.fediverse import FediverseClient
from fedimeter.simfedi import (
    CHAOS_PROFILES,
    ChaosRates,
    ChaosReport,
    RateLimit,
    SimFediverse,
    add_chaos,
)
from fedimeter.storage.database import Database
from fedimeter.storage.maintenance import check_database
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import account_samples, run_failures
from fedimeter.storage.tables import accounts as accounts_table

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fedimeter.simfedi import SimAccount, SimInstance
    from fedimeter.storage.records import RunRecord

SEED = 8
#: Mastodon's 300 requests per 5 minutes, compressed 30x in time.
RATE_LIMIT = RateLimit(limit=300, window=10.0)
LATENCY = (0.01, 0.06)
#: The time limits of the run: short, so that a round takes minutes, not hours.
TIMEOUTS = {
    "connect_timeout": 2.0,
    "read_timeout": 2.0,
    "request_deadline": 4.0,
    "retry_base_delay": 0.2,
    "retry_max_delay": 2.0,
    "max_rate_limit_wait": 30.0,
    "host_retry_delay": 5.0,
}
TESTS = str(Path(__file__).resolve().parent.parent / "tests")
#: Slack on top of host_deadline + request_deadline for the writer's last commit.
WALL_SLACK = 5.0


@dataclass(frozen=True)
class Shape:
    """What the run builds."""

    accounts: int
    hosts: int
    rounds: int
    host_deadline: float
    seed: int


FULL = Shape(accounts=10_000, hosts=100, rounds=6, host_deadline=120.0, seed=SEED)
CI = Shape(accounts=600, hosts=24, rounds=2, host_deadline=25.0, seed=SEED)


@dataclass
class RoundFigures:
    """What one round did."""

    number: int
    status: str
    crashed: str | None
    wall: float
    bound: float
    due: int
    measurable: int
    measured: int
    measured_measurable: int
    failed: int
    state_changes: int
    lost: int
    wrong_values: int
    requests: int
    rate_limited: int
    failures_by_code: dict[str, int] = field(default_factory=dict)


@dataclass
class Outcome:
    """The whole run."""

    backend: str
    shape: Shape
    profiles: dict[str, int]
    rounds: list[RoundFigures] = field(default_factory=list)
    measurable_ever_measured: int = 0
    measurable: int = 0
    check_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every goal held."""
        return not self.check_problems and all(
            r.crashed is None and r.lost == 0 and r.wrong_values == 0 and r.wall <= r.bound
            for r in self.rounds
        )


def build_world(shape: Shape) -> tuple[SimFediverse, list[SimInstance], ChaosReport]:
    """Hosts with a Zipf-like share of the accounts each, half with the batch call, in chaos."""
    world = SimFediverse(seed=shape.seed)
    weights = [1.0 / rank for rank in range(1, shape.hosts + 1)]
    counts = [max(1, int(shape.accounts * w / sum(weights))) for w in weights]
    counts[0] += shape.accounts - sum(counts)
    instances = []
    for rank, count in enumerate(counts):
        instance = world.add_instance(
            f"host{rank:02d}",
            version="4.3.2" if rank % 2 == 0 else "4.1.20",
            rate_limit=RATE_LIMIT,
            latency=LATENCY,
        )
        for i in range(count):
            instance.add_account(
                f"u{rank:02d}x{i:05d}",
                followers=world.rng.randrange(0, 50_000),
                following=world.rng.randrange(0, 2_000),
                statuses=world.rng.randrange(0, 20_000),
            )
        instances.append(instance)
    # Every profile on at least one host (the biggest host stays in the draw): the run covers
    # each trouble whatever the seed; the other hosts draw theirs by ChaosRates' weights.
    rng = random.Random(shape.seed)
    forced = instances[1 : 1 + len(CHAOS_PROFILES)]
    reports = [
        add_chaos(world, [instance], rng=rng, rates=only(profile))
        for instance, profile in zip(forced, CHAOS_PROFILES, strict=False)
    ]
    rest = [i for i in instances if i not in forced]
    reports.append(add_chaos(world, rest, rng=rng))
    hosts = sorted((h for r in reports for h in r.hosts), key=lambda h: h.instance)
    accounts = tuple(a for r in reports for a in r.accounts)
    report = ChaosReport(seed=shape.seed, rates=ChaosRates(), hosts=tuple(hosts), accounts=accounts)
    return world, instances, report


def only(profile: str) -> ChaosRates:
    """Rates that give every host ``profile``."""
    weights = {name: 1.0 if name == profile else 0.0 for name in CHAOS_PROFILES}
    return ChaosRates(**weights)  # type: ignore[arg-type]


def _domain(instance: SimInstance) -> str:
    return f"127.0.0.1:{instance.address.port or 80}"


async def track_all(db: Database, instances: list[SimInstance]) -> dict[int, SimAccount]:
    """Track every account straight into storage; the simulated account by stored id."""
    repo = Repository(db)
    now = utc_now()
    rows: list[dict[str, Any]] = []
    keys: dict[str, SimAccount] = {}
    for instance in instances:
        domain = _domain(instance)
        record = await repo.ensure_instance(
            InstanceAddress("127.0.0.1", scheme="http", port=instance.address.port), now
        )
        for account in instance.accounts:
            key = f"{account.username}@{domain}".lower()
            keys[key] = account
            rows.append(
                {
                    "acct_key": key,
                    "username": account.username,
                    "domain": domain,
                    "instance_id": record.id,
                    "remote_id": account.id,
                    "display_name": account.username,
                    "url": f"http://{domain}/@{account.username}",
                    "state": "active",
                    "added_at": now,
                    "state_changed_at": now,
                    "consecutive_failures": 0,
                }
            )
    async with db.begin() as conn:
        await conn.execute(insert(accounts_table), rows)
        stored = await conn.execute(select(accounts_table.c.id, accounts_table.c.acct_key))
        return {account_id: keys[key] for account_id, key in stored}


def schedule_outages(world: SimFediverse, report: ChaosReport, rng: random.Random) -> None:
    """Hosts of the outage profile vanish once more in the coming round, and come back."""
    for host in report.hosts:
        if host.profile == "outage":
            world.schedule_outage(host.instance, after=rng.uniform(0, 5), lasting=rng.uniform(1, 8))


async def run_round(
    number: int,
    db: Database,
    settings: Settings,
    by_id: dict[int, SimAccount],
    report: ChaosReport,
) -> RoundFigures:
    """One round a simulated day after the last; what it stored, checked against the truth."""
    offset = timedelta(days=number)

    def clock() -> datetime:
        return utc_now() + offset

    repo = Repository(db)
    due = {a.id for a in await repo.accounts_to_measure(None)}
    crashed: str | None = None
    started = time.monotonic()
    run_id: int | None = None

    def remember(run: RunRecord) -> None:
        nonlocal run_id
        run_id = run.id

    status = "crashed"
    requests = rate_limited = 0
    try:
        async with FediverseClient(settings, clock=clock) as client:
            result = await collect_round(repo, client, settings, clock=clock, on_start=remember)
        status = result.run.status
        requests = result.run.requests
        rate_limited = result.run.rate_limited
    except Exception as exc:  # noqa: BLE001 - a crash is a figure of the run
        crashed = f"{type(exc).__name__}: {exc}"
    wall = time.monotonic() - started
    sampled: dict[int, tuple[int, int, int]] = {}
    codes: Counter[str] = Counter()
    failed: set[int] = set()
    if run_id is not None:
        async with db.connect() as conn:
            for account_id, followers, following, statuses in await conn.execute(
                select(
                    account_samples.c.account_id,
                    account_samples.c.followers,
                    account_samples.c.following,
                    account_samples.c.statuses,
                ).where(account_samples.c.run_id == run_id)
            ):
                sampled[account_id] = (followers, following, statuses)
            for account_id, code in await conn.execute(
                select(run_failures.c.account_id, run_failures.c.code).where(
                    run_failures.c.run_id == run_id
                )
            ):
                failed.add(account_id)
                codes[code] += 1
    changed = {
        a.id for a in (record for record, _ in await repo.list_accounts()) if a.state != "active"
    } & due
    wrong = sum(
        1
        for account_id, counts in sampled.items()
        if counts
        != (by_id[account_id].followers, by_id[account_id].following, by_id[account_id].statuses)
    )
    measurable = {i for i in due if report.measurable(by_id[i])}
    return RoundFigures(
        number=number,
        status=status,
        crashed=crashed,
        wall=wall,
        bound=settings.host_deadline + settings.request_deadline + WALL_SLACK,
        due=len(due),
        measurable=len(measurable),
        measured=len(sampled),
        measured_measurable=len(measurable & sampled.keys()),
        failed=len(failed),
        state_changes=len(changed),
        lost=len(due - sampled.keys() - failed - changed),
        wrong_values=wrong,
        requests=requests,
        rate_limited=rate_limited,
        failures_by_code=dict(codes.most_common()),
    )


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[str]:
    """A fresh database URL on ``backend``."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="fedimeter-faults-") as folder:
            yield normalise_database_url(f"sqlite:///{folder}/faults.sqlite3")
        return
    sys.path.insert(0, TESTS)
    from pg import start_postgres  # noqa: PLC0415 - tests/ is not a package

    server = await asyncio.to_thread(start_postgres)
    try:
        yield normalise_database_url(server.url("postgres"))
    finally:
        await asyncio.to_thread(server.stop)


async def run(backend: str, shape: Shape) -> Outcome:
    """Build the world, serve it, run the rounds, check the database."""
    world, instances, report = build_world(shape)
    print(report.describe())
    outcome = Outcome(backend=backend, shape=shape, profiles=report.profile_counts())
    rng = random.Random(shape.seed)
    async with database(backend) as url:
        settings = Settings(
            database_url=url,
            allow_private_addresses=True,
            default_scheme="http",
            host_deadline=shape.host_deadline,
            **TIMEOUTS,  # type: ignore[arg-type]
        )
        db = await Database.open(url)
        ever: set[int] = set()
        try:
            with world.run_in_thread():
                by_id = await track_all(db, instances)
                outcome.measurable = sum(1 for a in by_id.values() if report.measurable(a))
                for number in range(1, shape.rounds + 1):
                    if number > 1:
                        schedule_outages(world, report, rng)
                    figures = await run_round(number, db, settings, by_id, report)
                    print_round(figures)
                    outcome.rounds.append(figures)
                    ever |= await measured_ids(db)
        finally:
            await db.close()
        outcome.measurable_ever_measured = sum(1 for i in ever if report.measurable(by_id[i]))
        outcome.check_problems = [str(p) for p in await check_database(url)]
    return outcome


async def measured_ids(db: Database) -> set[int]:
    """Accounts with at least one sample."""
    async with db.connect() as conn:
        return set((await conn.execute(select(account_samples.c.account_id).distinct())).scalars())


def print_round(r: RoundFigures) -> None:
    """One round's table."""
    share = r.measured_measurable / r.measurable if r.measurable else 1.0
    rows = [
        ("round status", r.status if r.crashed is None else f"CRASHED: {r.crashed}", "finished"),
        ("accounts due", f"{r.due:,}", ""),
        ("  measurable in principle", f"{r.measurable:,}", ""),
        ("  measured", f"{r.measured:,}", ""),
        ("  measured of the measurable", f"{r.measured_measurable:,} ({share:.1%})", ""),
        ("  failed, with a reason", f"{r.failed:,}", ""),
        ("  marked gone/suspended/moved", f"{r.state_changes:,}", ""),
        ("samples lost (no outcome)", f"{r.lost}", "0"),
        ("values stored that were not served", f"{r.wrong_values}", "0"),
        ("requests sent", f"{r.requests:,}", ""),
        ("429s met", f"{r.rate_limited:,}", ""),
        ("wall time", f"{r.wall:.1f} s", f"<= {r.bound:.0f} s"),
    ]
    print(f"\nround {r.number}")
    for label, value, goal in rows:
        print(f"  {label:<38} {value:>24} {goal:>10}")
    reasons = ", ".join(f"{code} {count}" for code, count in r.failures_by_code.items())
    print(f"  failures by reason: {reasons or 'none'}", flush=True)


def print_outcome(outcome: Outcome) -> None:
    """The summary and verdict."""
    print(
        f"\n{outcome.backend}: {outcome.shape.accounts:,} accounts on {outcome.shape.hosts} hosts"
    )
    share = outcome.measurable_ever_measured / outcome.measurable if outcome.measurable else 1.0
    print(
        f"  measurable accounts measured in at least one round: "
        f"{outcome.measurable_ever_measured:,} of {outcome.measurable:,} ({share:.1%})"
    )
    print(f"  rounds crashed: {sum(r.crashed is not None for r in outcome.rounds)} (goal 0)")
    print(f"  samples lost: {sum(r.lost for r in outcome.rounds)} (goal 0)")
    print(f"  wrong values stored: {sum(r.wrong_values for r in outcome.rounds)} (goal 0)")
    longest = max((r.wall - r.bound for r in outcome.rounds), default=0.0)
    print(f"  longest round vs its bound: {longest:+.1f} s (goal <= 0)")
    print(f"  db check: {'; '.join(outcome.check_problems) or 'ok'}")
    print(f"verdict: {'every goal met' if outcome.ok else 'FAILED'}")


def main(argv: list[str] | None = None) -> int:
    """Run the fault rounds; 0 when every goal held."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--accounts", type=int, help=f"default {FULL.accounts:,} (ci {CI.accounts})"
    )
    parser.add_argument("--hosts", type=int, help=f"default {FULL.hosts} (ci {CI.hosts})")
    parser.add_argument("--rounds", type=int, help=f"default {FULL.rounds} (ci {CI.rounds})")
    parser.add_argument(
        "--host-deadline",
        type=float,
        help=f"seconds per host per round (default {FULL.host_deadline:g}, "
        f"ci {CI.host_deadline:g})",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--ci", action="store_true", help="the bounded form CI runs")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    base = CI if args.ci else FULL
    shape = Shape(
        accounts=args.accounts or base.accounts,
        hosts=args.hosts or base.hosts,
        rounds=args.rounds or base.rounds,
        host_deadline=args.host_deadline or base.host_deadline,
        seed=args.seed,
    )
    print(
        f"fedimeter fault run: {shape.accounts:,} accounts on {shape.hosts} hosts, "
        f"{shape.rounds} rounds, host_deadline {shape.host_deadline:g} s, seed {shape.seed}, "
        f"{args.backend}; Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    outcome = asyncio.run(run(args.backend, shape))
    print_outcome(outcome)
    if args.json:
        args.json.write_text(json.dumps(dict(asdict(outcome), ok=outcome.ok), indent=2))
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
