"""Options that several commands share, and writing a graph to the file a person named.

One definition per option keeps the help text and defaults the same wherever the option
appears (``--json``; a graph's ``--since``, ``--until``, ``-o``, ``--theme``, ``--scale``,
``--width`` and ``--height``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from fedimeter.cli.context import fail, state
from fedimeter.errors import InvalidInput
from fedimeter.graphing import graph_options

if TYPE_CHECKING:
    from fedimeter.graphs import GraphOptions

__all__ = [
    "HeightOption",
    "JsonOption",
    "ScaleOption",
    "SinceOption",
    "ThemeOption",
    "UntilOption",
    "WidthOption",
    "graph_file",
    "graph_look",
    "output_option",
    "write_graph",
]

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]

# A graph's period and look.
SinceOption = Annotated[
    str | None, typer.Option(help="From (YYYY-MM-DD, ISO datetime, or 30d); default all.")
]
UntilOption = Annotated[str | None, typer.Option(help="Up to (default now).")]
ThemeOption = Annotated[Literal["light", "dark"], typer.Option(help="light or dark.")]
ScaleOption = Annotated[float, typer.Option(help="2 for high-density screens.")]
WidthOption = Annotated[int, typer.Option(help="Width in pixels (at scale 1).")]
HeightOption = Annotated[int, typer.Option(help="Height in pixels (at scale 1).")]


def output_option(default: str) -> Any:  # noqa: ANN401 - typer's OptionInfo
    """``--output/-o FILE``, whose help names the file written when none is given."""
    return typer.Option(
        "--output",
        "-o",
        help=f"File to write, .png or .svg (default {default}).",
        dir_okay=False,
    )


def graph_look(
    output: Path | None, theme: str, scale: float, width: int, height: int
) -> GraphOptions:
    """How to draw a graph that goes to ``output`` (a PNG when no file is named).

    Raises:
        InvalidInput: the file does not end in .png or .svg, or no graph can be drawn with
            that theme, scale or size.
    """
    fmt = "png" if output is None else output.suffix.lower().lstrip(".")
    if fmt not in {"png", "svg"}:
        raise InvalidInput(f"{output} must end in .png or .svg")
    return graph_options(fmt, theme, scale, width, height)


def graph_file(stem: str) -> Path:
    """The PNG written when no ``--output`` is given: ``stem.png``, safe as one file name.

    ``:`` (a port) and ``/`` become ``_``, so the file lands in the current folder.
    """
    return Path(f"{stem.replace(':', '_').replace('/', '_')}.png")


def write_graph(ctx: typer.Context, path: Path, image: bytes) -> None:
    """Write ``image`` to ``path`` and say so; a file that cannot be written ends the command."""
    try:
        path.write_bytes(image)
    except OSError as exc:
        fail(ctx, InvalidInput(f"cannot write {path}: {exc.strerror}"))
    state(ctx).out.print(f"wrote {path} ({len(image):,} bytes)", markup=False)
