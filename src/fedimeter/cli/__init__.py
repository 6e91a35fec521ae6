"""The ``fedimeter`` command line: parse, call one service, format the result.

Every ``FedimeterError`` becomes one line on stderr and an exit code here, in ``run``;
nothing else in the CLI catches errors.
"""

from __future__ import annotations

from fedimeter.cli.app import app, main

__all__ = ["app", "main"]
