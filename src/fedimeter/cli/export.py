"""``fedimeter export``: every sample, streamed, as CSV or JSON."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import IO, Annotated, Literal

import typer

from fedimeter.cli.context import fail, run, state
from fedimeter.clock import utc_now
from fedimeter.domain.report_render import csv_safe
from fedimeter.domain.when import parse_period
from fedimeter.errors import FedimeterError, InvalidInput
from fedimeter.sampleformat import SAMPLE_COLUMNS, sample_values
from fedimeter.storage.records import SampleRecord
from fedimeter.wiring import open_repository

COLUMNS = ("account", *SAMPLE_COLUMNS)


def _row(acct: str, sample: SampleRecord) -> dict[str, str | int | None]:
    return {"account": acct, **sample_values(sample)}


def export(
    ctx: typer.Context,
    fmt: Annotated[
        Literal["csv", "json"], typer.Option("--format", "-f", help="csv or json.")
    ] = "csv",
    since: Annotated[
        str | None, typer.Option(help="From (YYYY-MM-DD, ISO datetime, or an age such as 30d).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Up to (a date includes that day).")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="File to write (default standard output).", dir_okay=False
        ),
    ] = None,
) -> None:
    """Write every stored sample of every account, oldest first per account.

    Streamed: memory stays flat for millions of rows. CSV cells are safe to open in a
    spreadsheet; JSON is one array of objects.
    """
    cli = state(ctx)
    settings = cli.settings()
    now = utc_now()
    try:
        start, end = parse_period(since, until, now)
    except FedimeterError as exc:
        fail(ctx, exc)

    async def go(out: IO[str]) -> int:
        sink = _Sink(out, fmt)
        async with open_repository(settings) as repo:
            async for handle, sample in repo.stream_samples(start, end):
                sink.write(_row(handle.acct, sample))
        return sink.close()

    try:
        if output is None:
            count = run(ctx, go(sys.stdout))
        else:
            with output.open("w", encoding="utf-8", newline="") as file:
                count = run(ctx, go(file))
    except BrokenPipeError:
        # The reader went away (`| head`): a normal end for a command line tool, not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(141) from None
    except OSError as exc:
        fail(ctx, InvalidInput(f"cannot write {output}: {exc.strerror}"))
    if output is not None:
        cli.err.print(f"wrote {count:,} samples to {output}", markup=False)


class _Sink:
    """Writes rows as CSV (spreadsheet-safe) or as one JSON array, one row at a time."""

    def __init__(self, out: IO[str], fmt: str) -> None:
        self.out = out
        self.count = 0
        self.csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writerow(COLUMNS)
        else:
            out.write("[")

    def write(self, row: dict[str, str | int | None]) -> None:
        if self.csv is not None:
            cells = ["" if row[c] is None else row[c] for c in COLUMNS[1:]]
            self.csv.writerow([csv_safe(str(row["account"])), *cells])
        else:
            self.out.write(
                ("\n" if self.count == 0 else ",\n") + json.dumps(row, ensure_ascii=False)
            )
        self.count += 1

    def close(self) -> int:
        """Finish the document; returns the number of rows written."""
        if self.csv is None:
            self.out.write("\n]\n" if self.count else "]\n")
        return self.count
