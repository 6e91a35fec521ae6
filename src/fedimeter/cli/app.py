"""The Typer application and its global options."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

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

#: What the parameter parser puts before a validator's own sentence.
_VALIDATION_PREFIX = re.compile(r"\b(?:Value error|Assertion failed), ")
#: The parser's (pydantic's) wording of a bad number, said plainly.
_PLAINLY = [
    (re.compile(r"Input should be a valid integer[^.(]*"), "expected a whole number"),
    (re.compile(r"Input should be a valid number[^.(]*"), "expected a number"),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"must be more than \1"),
    (re.compile(r"Input should be less than (\S+)"), r"must be less than \1"),
]


def usage_line(error: typer.TyperException) -> str:
    """A usage error as one line: what is wrong, and where to read how it is done.

    ``error: Invalid value for '--format' / '-f': 'xml' is not one of 'text', 'markdown'
    (fedimeter report -h for help)``.
    """
    formatted = getattr(error, "format_message", None)
    text = formatted() if callable(formatted) else str(error)
    message = " ".join(str(text).split())
    message = _VALIDATION_PREFIX.sub("", message)
    for wording, plain in _PLAINLY:
        message = wording.sub(plain, message)
    context = getattr(error, "ctx", None)
    where = f" ({context.command_path} -h for help)" if context is not None else ""
    return f"error: {message}{where}"


class OneLineErrors(TyperGroup):
    """The command group, with usage errors said in one line on stderr (exit code 2).

    Click's own form is a usage block and a framed box of several lines, against the
    promise that every error is one line; what it says is kept.
    """

    def main(  # type: ignore[override]
        self,
        args: Any = None,  # noqa: ANN401 - click's signature
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,  # noqa: ANN401 - click's signature
    ) -> Any:  # noqa: ANN401 - a command's return value, or its exit code
        """Run the command; in standalone mode, exit with its code."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)  # noqa: FBT003
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        except typer.TyperException as exc:
            typer.echo(usage_line(exc), err=True)
            sys.exit(getattr(exc, "exit_code", 2))
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=OneLineErrors,
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
