"""What every command shares: the settings, the consoles, and running a service safely."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console

from fedimeter.config import Settings, load_settings
from fedimeter.errors import (
    CheckFailed,
    ConfigError,
    FedimeterError,
    InvalidInput,
    RoundInProgress,
    StorageError,
)

__all__ = ["EXIT_CODES", "CliState", "fail", "run", "state"]

T = TypeVar("T")

#: Exit codes, documented in docs/cli.md.
EXIT_CODES: dict[type[FedimeterError], int] = {
    InvalidInput: 2,
    ConfigError: 3,
    StorageError: 3,
    RoundInProgress: 4,
    CheckFailed: 5,
}


def exit_code(error: FedimeterError) -> int:
    """The exit code for an error: the most specific class that has one, else 1."""
    for cls in type(error).__mro__:
        if cls in EXIT_CODES:
            return EXIT_CODES[cls]
    return 1


def make_console(*, stderr: bool) -> Console:
    """A console; when output goes to a file or pipe, tables are not squeezed to 80 columns.

    Markup is off: table cells and titles hold what servers send (display names, software
    names, hashtags, error texts), and ``[/]`` or ``[link=...]`` in them must print as text,
    never crash the command or make terminal links.
    """
    console = Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 200
    return console


@dataclass
class CliState:
    """Options given before the command, and the settings they lead to (built on demand)."""

    config_file: Path | None = None
    out: Console = field(default_factory=lambda: make_console(stderr=False))
    err: Console = field(default_factory=lambda: make_console(stderr=True))
    _settings: Settings | None = None

    def settings(self, **overrides: Any) -> Settings:  # noqa: ANN401
        """The settings, loaded once (overrides force a fresh load)."""
        try:
            if overrides:
                return load_settings(self.config_file, **overrides)
            if self._settings is None:
                self._settings = load_settings(self.config_file)
        except ConfigError as error:
            self.err.print(f"error: {error}", markup=False)
            raise typer.Exit(exit_code(error)) from None
        return self._settings


def state(ctx: typer.Context) -> CliState:
    """The shared state of this invocation."""
    obj = ctx.find_root().obj
    if not isinstance(obj, CliState):
        obj = CliState()
        ctx.find_root().obj = obj
    return obj


def fail(ctx: typer.Context, error: FedimeterError) -> NoReturn:
    """Print ``error`` as one line on stderr and exit with its code."""
    state(ctx).err.print(f"error: {error}", markup=False)
    raise typer.Exit(exit_code(error))


async def _cancelled_by_sigterm(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine``; SIGTERM (systemd stop, ``kill``) cancels it like Ctrl-C does."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    terminated = False

    def terminate() -> None:
        nonlocal terminated
        terminated = True
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGTERM, terminate)
    try:
        return await coroutine
    except asyncio.CancelledError:
        if terminated:
            raise _Terminated from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


class _Terminated(Exception):
    """SIGTERM stopped the command."""


def run(ctx: typer.Context, coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a service coroutine; turn fedimeter errors, Ctrl-C and SIGTERM into clean exits.

    Cancelling lets a round record itself as interrupted, so the next one resumes it.
    """
    try:
        return asyncio.run(_cancelled_by_sigterm(coroutine))
    except FedimeterError as error:
        fail(ctx, error)
    except KeyboardInterrupt:
        state(ctx).err.print("interrupted", markup=False)
        sys.exit(130)
    except _Terminated:
        state(ctx).err.print("terminated", markup=False)
        sys.exit(143)
