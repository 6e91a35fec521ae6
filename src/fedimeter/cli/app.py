"""The Typer application and its global options."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fedimeter import __version__
from fedimeter.cli import (
    alerts,
    collecting,
    database,
    deliver,
    demo,
    engagement,
    export,
    exporter,
    graph,
    instance,
    report,
    samples,
    serve,
    tag,
    track,
    worker,
)
from fedimeter.cli.context import CliState

__all__ = ["app", "main"]

app = typer.Typer(
    name="fedimeter",
    help="Measure how fediverse accounts grow: track them, collect samples, read them back.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Markdown joins a docstring's wrapped lines into paragraphs (rich mode keeps the breaks).
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(track.app, name="track")
app.add_typer(instance.app, name="instance")
app.add_typer(tag.app, name="tag")
app.add_typer(engagement.app, name="engagement")
app.add_typer(database.app, name="db")
app.add_typer(alerts.app, name="alerts")
app.command("collect")(collecting.collect)
app.command("runs")(collecting.runs)
app.command("samples")(samples.samples)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("report")(report.report)
app.command("graph")(graph.graph)
app.command("export")(export.export)
app.command("exporter")(exporter.exporter)
app.command("deliveries")(deliver.deliveries)
app.command("worker")(worker.worker)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"fedimeter {__version__}")
        raise typer.Exit


@app.callback()
def _global(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="TOML settings file (default: $FEDIMETER_CONFIG, then"
            " ~/.config/fedimeter/fedimeter.toml if it exists).",
            dir_okay=False,
        ),
    ] = None,
    version: Annotated[  # noqa: ARG001 - handled by the callback
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Measure how fediverse accounts grow: track them, collect samples, read them back."""
    ctx.obj = CliState(config_file=config)


def main() -> None:
    """Entry point of the ``fedimeter`` command."""
    app()
