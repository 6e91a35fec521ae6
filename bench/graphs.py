"""How long each kind of graph takes to render: PNG and SVG, 1x and 2x, 30 to 3,650 samples.

    python bench/graphs.py            # the full table, median of 5 runs per cell
    python bench/graphs.py --quick    # one run per cell, 30 and 365 samples: a smoke check
    python bench/graphs.py --json results.json

Samples are one a day, so 3,650 samples are ten years; the weekly activity graph draws the
weeks in that many days (4, 52 or 521 bars a panel). Times are wall-clock milliseconds of the
public ``render_*`` functions, bytes included, in this process, one render at a time.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import matplotlib as mpl

from fedimeter.graphs import (
    GraphOptions,
    Series,
    render_combined,
    render_comparison,
    render_instance_metric,
    render_metric,
    render_weekly_activity,
)
from fedimeter.storage.records import SampleRecord

START = datetime(2016, 1, 4, tzinfo=UTC)  # a Monday
SIZES = (30, 365, 3650)
QUICK_SIZES = (30, 365)
FORMATS = ("png", "svg")
SCALES = (1.0, 2.0)
RUNS = 5

Render = Callable[[GraphOptions], bytes]


@dataclass(frozen=True)
class InstanceSample:
    """An instance measurement, shaped as the graphs read it."""

    taken_at: datetime
    users: int
    statuses: int


@dataclass(frozen=True)
class Week:
    """A week of instance activity, shaped as the graphs read it."""

    start: date
    statuses: int
    logins: int
    registrations: int
    complete: bool


def account_samples(days: int, seed: int = 0) -> list[SampleRecord]:
    """One sample a day for ``days`` days, growing at a pace that depends on ``seed``."""
    return [
        SampleRecord(
            account_id=seed + 1,
            taken_at=START + timedelta(days=n),
            followers=1_000 * (seed + 1) + (seed + 3) * n + (n * n) // 400,
            following=200 + n // 10,
            statuses=5_000 + 4 * n,
            last_status_at=None,
            run_id=None,
        )
        for n in range(days)
    ]


def series(count: int, days: int) -> list[Series]:
    """``count`` accounts' followers, each a sample a day."""
    return [
        Series(
            f"@user{seed}@instance{seed}.example.social",
            [(s.taken_at, s.followers) for s in account_samples(days, seed)],
        )
        for seed in range(count)
    ]


def instance_samples(days: int) -> list[InstanceSample]:
    """An instance's users and statuses, one sample a day."""
    return [
        InstanceSample(START + timedelta(days=n), 120_000 + 37 * n, 4_500_000 + 2_003 * n)
        for n in range(days)
    ]


def weeks(days: int) -> list[Week]:
    """The weeks in ``days`` days, the last one in progress."""
    count = max(1, days // 7)
    return [
        Week(
            START.date() + timedelta(weeks=n),
            statuses=100_000 + (n * 7_919) % 50_000,
            logins=20_000 + (n * 104_729) % 9_000,
            registrations=300 + (n * 31) % 500,
            complete=n < count - 1,
        )
        for n in range(count)
    ]


def kinds(days: int) -> dict[str, Render]:
    """Every kind of graph over ``days`` days of data, ready to render with some options."""
    until = START + timedelta(days=days)
    one = account_samples(days)
    five, twenty = series(5, days), series(20, days)
    instance = instance_samples(days)
    activity = weeks(days)
    week_end = datetime.combine(activity[-1].start, datetime.min.time(), tzinfo=UTC) + timedelta(
        weeks=1
    )
    handle = "@user0@instance0.example.social"
    return {
        "metric": lambda o: render_metric(
            handle, "followers", one, since=START, until=until, options=o
        ),
        "combined": lambda o: render_combined(handle, one, since=START, until=until, options=o),
        "comparison of 5": lambda o: render_comparison(
            five, indexed=False, since=START, until=until, title="Followers", options=o
        ),
        "comparison of 20": lambda o: render_comparison(
            twenty, indexed=False, since=START, until=until, title="Followers", options=o
        ),
        "indexed, 5": lambda o: render_comparison(
            five, indexed=True, since=START, until=until, title="Followers", options=o
        ),
        "instance users": lambda o: render_instance_metric(
            "mastodon.example", "users", instance, since=START, until=until, options=o
        ),
        "weekly activity": lambda o: render_weekly_activity(
            "mastodon.example", activity, since=START, until=week_end, options=o
        ),
    }


def median_ms(render: Render, options: GraphOptions, runs: int) -> float:
    """The median wall-clock time of ``runs`` renders, in milliseconds."""
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        render(options)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def measure(sizes: tuple[int, ...], runs: int) -> list[dict[str, object]]:
    """One result per kind, size, format and scale."""
    results: list[dict[str, object]] = []
    for days in sizes:
        for kind, render in kinds(days).items():
            render(GraphOptions())  # warm up: fonts, caches, first-use imports
            for fmt in FORMATS:
                for scale in SCALES:
                    options = GraphOptions(fmt=fmt, scale=scale)  # type: ignore[arg-type]
                    results.append(
                        {
                            "kind": kind,
                            "samples": days,
                            "format": fmt,
                            "scale": scale,
                            "median_ms": round(median_ms(render, options, runs), 1),
                            "runs": runs,
                        }
                    )
            print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return results


def table(results: list[dict[str, object]]) -> str:
    """A Markdown table: a row per kind and size, a column per format and scale."""
    columns = [(fmt, scale) for fmt in FORMATS for scale in SCALES]
    heads = ["kind", "samples", *(f"{fmt} {scale:g}x ms" for fmt, scale in columns)]
    cells: dict[tuple[object, ...], object] = {
        (r["kind"], r["samples"], r["format"], r["scale"]): r["median_ms"] for r in results
    }
    rows = list(dict.fromkeys((r["kind"], r["samples"]) for r in results))
    lines = [
        "| " + " | ".join(heads) + " |",
        "|" + "|".join(["---", "---:"] + ["---:"] * len(columns)) + "|",
    ]
    for kind, days in rows:
        values = [f"{cells[kind, days, fmt, scale]:,.0f}" for fmt, scale in columns]
        lines.append(f"| {kind} | {days:,} | " + " | ".join(values) + " |")
    return "\n".join(lines)


def main() -> None:
    """Parse the options, measure, print the table (and write JSON if asked)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one run per cell, 30 and 365 samples only"
    )
    parser.add_argument("--runs", type=int, default=RUNS, help="renders per cell (median)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()
    runs = 1 if args.quick else max(1, args.runs)
    sizes = QUICK_SIZES if args.quick else SIZES
    began = time.perf_counter()
    results = measure(sizes, runs)
    print(table(results))
    print(
        f"\nmedian of {runs} run(s) per cell; Python {platform.python_version()},"
        f" matplotlib {mpl.__version__}, {platform.machine()};"
        f" {time.perf_counter() - began:,.0f} s in all"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
