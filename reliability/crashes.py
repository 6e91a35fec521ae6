"""kill -9 the collector at random moments, many times in a row, then let a round finish.

Issue 8's crash safety: on SQLite and on PostgreSQL, a ``fedimeter collect`` process is
started and killed with SIGKILL after a random delay (seeded), again and again, against a
simulated fediverse on loopback. The delays cover the whole life of a collector: starting up,
opening the round, measuring, committing, finishing. After **every** kill the database must
pass ``fedimeter db check``; after the last, one more collector must finish the round with
**exactly one sample per account** — nothing doubled, nothing missing — and no round left
``running``.

    python reliability/crashes.py                        # 100 kills on each backend
    python reliability/crashes.py --kills 20 --backend sqlite
    python reliability/crashes.py --ci --json out.json   # the bounded form CI runs

Prints a table per backend and the verdict; exits 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from fedimeter.clock import utc_now
from fedimeter.config import normalise_database_url
from fedimeter.domain.models import InstanceAddress
from fedimeter.simfedi import SimFediverse
from fedimeter.storage.database import Database
from fedimeter.storage.maintenance import check_database
from fedimeter.storage.repository import Repository
from fedimeter.storage.tables import account_samples, runs
from fedimeter.storage.tables import accounts as accounts_table

if TYPE_CHECKING:
    from collections.abc import Generator

    from fedimeter.simfedi import SimInstance

SEED = 8
#: Three hosts: one with the 40-id batch call (big commits at once), two without.
HOSTS = (
    ("batch", "4.3.2", (0.2, 0.4)),
    ("one", "4.1.20", (0.05, 0.15)),
    ("two", "4.1.20", (0.05, 0.15)),
)
#: Accounts per kill: more than a collector measures before its kill, so the round is still
#: open when the last kill comes.
ACCOUNTS_PER_KILL = 60
ACCOUNTS_EXTRA = 200
#: Most kills land between 0 s and this many seconds after the collector opened its round.
MAX_DELAY = 2.5
#: The others land in the collector's first START_SPAN seconds, while it starts.
START_SHARE = 0.2
START_SPAN = 1.5
#: A collector that has not opened its round by then is killed anyway.
OPEN_TIMEOUT = 30.0
FINISH_TIMEOUT = 600.0


@dataclass
class Kill:
    """One kill and what the database looked like after it."""

    delay: float
    #: ``starting`` (no round opened yet), ``mid-round`` or ``after the round``.
    phase: str
    samples_before: int
    samples_after: int
    problems: list[str]


@dataclass
class Outcome:
    """One backend's run."""

    backend: str
    accounts: int
    kills: list[Kill] = field(default_factory=list)
    finisher_exit: int | None = None
    finisher_seconds: float = 0.0
    doubled: int = 0
    missing: int = 0
    runs: dict[str, int] = field(default_factory=dict)
    final_problems: list[str] = field(default_factory=list)

    @property
    def failed_checks(self) -> int:
        """Kills after which the database did not pass the check."""
        return sum(1 for kill in self.kills if kill.problems)

    @property
    def ok(self) -> bool:
        """Whether every goal held."""
        return (
            self.failed_checks == 0
            and self.finisher_exit == 0
            and self.doubled == 0
            and self.missing == 0
            and not self.final_problems
            and self.runs.get("running", 0) == 0
        )


def build_world(
    accounts: int,
) -> tuple[SimFediverse, list[tuple[SimInstance, list[tuple[str, str]]]]]:
    """The simulated hosts and, per host, (username, id) of its accounts."""
    world = SimFediverse(seed=SEED)
    hosts = []
    for index, (name, version, latency) in enumerate(HOSTS):
        instance = world.add_instance(name, version=version, rate_limit=None, latency=latency)
        share = accounts // len(HOSTS) + (1 if index < accounts % len(HOSTS) else 0)
        hosts.append(
            (
                instance,
                [
                    (account.username, account.id)
                    for account in (
                        instance.add_account(f"{name}{i:05d}", followers=i) for i in range(share)
                    )
                ],
            )
        )
    return world, hosts


async def track_all(url: str, hosts: list[tuple[SimInstance, list[tuple[str, str]]]]) -> None:
    """Track every account straight into storage, as ``track add`` would have left it."""
    db = await Database.open(url)
    try:
        repo = Repository(db)
        now = utc_now()
        rows: list[dict[str, Any]] = []
        for instance, accounts in hosts:
            port = instance.address.port or 80
            domain = f"127.0.0.1:{port}"
            record = await repo.ensure_instance(
                InstanceAddress("127.0.0.1", scheme="http", port=port), now
            )
            rows += [
                {
                    "acct_key": f"{username}@{domain}".lower(),
                    "username": username,
                    "domain": domain,
                    "instance_id": record.id,
                    "remote_id": remote_id,
                    "display_name": username,
                    "url": f"http://{domain}/@{username}",
                    "state": "active",
                    "added_at": now,
                    "state_changed_at": now,
                    "consecutive_failures": 0,
                }
                for username, remote_id in accounts
            ]
        async with db.begin() as conn:
            await conn.execute(insert(accounts_table), rows)
    finally:
        await db.close()


async def snapshot(url: str) -> tuple[int, Counter[str], list[str]]:
    """Samples stored, rounds by status, and what the integrity check finds."""
    db = await Database.open(url, migrate=False)
    try:
        async with db.connect() as conn:
            samples = (
                await conn.execute(select(func.count()).select_from(account_samples))
            ).scalar_one()
            statuses = Counter(
                str(status) for (status,) in await conn.execute(select(runs.c.status))
            )
    finally:
        await db.close()
    problems = [str(problem) for problem in await check_database(url)]
    return int(samples), statuses, problems


async def samples_per_account(url: str) -> tuple[int, int]:
    """How many accounts have more than one sample, and how many have none."""
    db = await Database.open(url, migrate=False)
    try:
        async with db.connect() as conn:
            counts: dict[int, int] = {
                account_id: int(count)
                for account_id, count in await conn.execute(
                    select(accounts_table.c.id, func.count(account_samples.c.taken_at))
                    .select_from(accounts_table.outerjoin(account_samples))
                    .group_by(accounts_table.c.id)
                )
            }
        return sum(1 for n in counts.values() if n > 1), sum(1 for n in counts.values() if n == 0)
    finally:
        await db.close()


def collector(url: str) -> subprocess.Popen[bytes]:
    """``fedimeter collect`` against the simulated hosts, in a process of its own."""
    env = dict(
        os.environ,
        FEDIMETER_DATABASE_URL=url,
        FEDIMETER_ALLOW_PRIVATE_ADDRESSES="true",
        FEDIMETER_DEFAULT_SCHEME="http",
    )
    return subprocess.Popen(
        [sys.executable, "-m", "fedimeter", "collect", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill_moment(
    process: subprocess.Popen[bytes], url: str, rng: random.Random, max_delay: float
) -> float:
    """Wait for a random moment to kill ``process``; the seconds since it started.

    One kill in five lands anywhere in the first second and a half (starting up: imports,
    migrations, opening the round); the others a random time after the collector opened its
    round, while it measures and commits.
    """
    started = time.monotonic()
    if rng.random() < START_SHARE:
        time.sleep(rng.uniform(0.0, START_SPAN))
        return time.monotonic() - started
    after = rng.uniform(0.0, max_delay)
    runs_before = asyncio.run(run_count(url))
    while process.poll() is None and asyncio.run(run_count(url)) == runs_before:
        if time.monotonic() - started > OPEN_TIMEOUT:
            break
        time.sleep(0.05)
    time.sleep(after)
    return time.monotonic() - started


async def run_count(url: str) -> int:
    """How many rounds the database has recorded."""
    db = await Database.open(url, migrate=False)
    try:
        async with db.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(runs))).scalar_one())
    finally:
        await db.close()


def run_backend(
    backend: str, url: str, kills: int, rng: random.Random, max_delay: float
) -> Outcome:
    """Kill ``kills`` collectors at random moments, then finish the round; check throughout."""
    accounts = kills * ACCOUNTS_PER_KILL + ACCOUNTS_EXTRA
    outcome = Outcome(backend=backend, accounts=accounts)
    world, hosts = build_world(accounts)
    with world.run_in_thread():
        asyncio.run(track_all(url, hosts))
        samples, statuses, _ = asyncio.run(snapshot(url))
        for index in range(kills):
            process = collector(url)
            delay = kill_moment(process, url, rng, max_delay)
            finished_by_itself = process.poll() is not None
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            after, now_statuses, problems = asyncio.run(snapshot(url))
            opened = sum(now_statuses.values()) > sum(statuses.values())
            if finished_by_itself or now_statuses["finished"] > statuses["finished"]:
                phase = "after the round"
            elif opened:
                phase = "mid-round"
            else:
                phase = "starting"
            outcome.kills.append(Kill(delay, phase, samples, after, problems))
            print(
                f"  {backend} kill {index + 1:>3}/{kills} after {delay:4.2f} s: {phase:<15}"
                f" samples {samples:>5} -> {after:>5}"
                + (f"  CHECK FAILED: {problems}" if problems else ""),
                flush=True,
            )
            samples, statuses = after, now_statuses
        started = time.monotonic()
        finisher = collector(url)
        try:
            _, err = finisher.communicate(timeout=FINISH_TIMEOUT)
        except subprocess.TimeoutExpired:
            finisher.kill()
            _, err = finisher.communicate()
        outcome.finisher_seconds = time.monotonic() - started
        outcome.finisher_exit = finisher.returncode
        if finisher.returncode != 0:
            print(err.decode(errors="replace"), file=sys.stderr)
    _, final_statuses, outcome.final_problems = asyncio.run(snapshot(url))
    outcome.runs = dict(final_statuses)
    outcome.doubled, outcome.missing = asyncio.run(samples_per_account(url))
    return outcome


def print_outcome(outcome: Outcome) -> None:
    """The table for one backend."""
    phases = Counter(kill.phase for kill in outcome.kills)
    rows = [
        ("accounts", f"{outcome.accounts:,}", ""),
        ("kills (SIGKILL)", f"{len(outcome.kills)}", ""),
        ("  while starting", f"{phases['starting']}", ""),
        ("  mid-round", f"{phases['mid-round']}", ""),
        ("  after the round", f"{phases['after the round']}", ""),
        ("db check failed after a kill", f"{outcome.failed_checks}", "0"),
        ("finishing round: exit code", f"{outcome.finisher_exit}", "0"),
        ("finishing round: seconds", f"{outcome.finisher_seconds:.1f}", ""),
        ("accounts with 2+ samples", f"{outcome.doubled}", "0"),
        ("accounts with no sample", f"{outcome.missing}", "0"),
        (
            "rounds by status",
            ", ".join(f"{k} {v}" for k, v in sorted(outcome.runs.items())),
            "none running",
        ),
        ("db check at the end", "; ".join(outcome.final_problems) or "ok", "ok"),
    ]
    print(f"\n{outcome.backend}")
    print(f"{'':<32} {'measured':>28} {'goal':>14}")
    for label, value, goal in rows:
        print(f"{label:<32} {value:>28} {goal:>14}")
    print(f"verdict: {'every goal met' if outcome.ok else 'FAILED'}")


def _sqlite_url(folder: Path) -> str:
    return normalise_database_url(f"sqlite:///{folder}/crashes.sqlite3")


def _postgres() -> Generator[str, None, None] | None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from pg import find_bindir, start_postgres  # noqa: PLC0415 - tests/ is not a package

    if find_bindir() is None:
        return None

    def serve() -> Generator[str, None, None]:
        server = start_postgres()
        try:
            yield normalise_database_url(server.url("postgres"))
        finally:
            server.stop()

    return serve()


def main(argv: list[str] | None = None) -> int:
    """Run the kills; print the tables; 0 when every goal held."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=100, help="kills per backend (default 100)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=SEED, help="seeds the kill delays")
    parser.add_argument(
        "--max-delay",
        type=float,
        default=MAX_DELAY,
        help="kills land 0..this s after the round opened",
    )
    parser.add_argument("--ci", action="store_true", help="the bounded form: 6 kills per backend")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    kills = 6 if args.ci else args.kills
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    rng = random.Random(args.seed)
    outcomes: list[Outcome] = []
    print(
        f"fedimeter crash run: {kills} kills per backend, seed {args.seed}"
        f", Python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    for backend in backends:
        if backend == "sqlite":
            with tempfile.TemporaryDirectory(prefix="fedimeter-crashes-") as folder:
                outcomes.append(
                    run_backend(backend, _sqlite_url(Path(folder)), kills, rng, args.max_delay)
                )
        else:
            serving = _postgres()
            if serving is None:
                print("postgresql: no server binaries found (install postgresql): skipped")
                continue
            url = next(serving)
            try:
                outcomes.append(run_backend(backend, url, kills, rng, args.max_delay))
            finally:
                serving.close()
    for outcome in outcomes:
        print_outcome(outcome)
    if args.json:
        args.json.write_text(
            json.dumps(
                [dict(asdict(o), ok=o.ok, failed_checks=o.failed_checks) for o in outcomes],
                indent=2,
            )
        )
    return 0 if outcomes and all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
