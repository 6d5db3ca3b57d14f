"""CLI errors: one clear line on stderr and exit status 1, never a traceback.

Every product failure is a `CorralError` (the CLI's own `CliError` included), so the entry
points map that one base; the few failures that are not the product's (the operating system
refusing something, a usage error, an interrupt) get their own one-line forms here too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn

import click
import typer

from corral.errors import CorralError


class CliError(CorralError):
    status = 400


def _os_message(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


def run_cli(app: Callable[..., object]) -> NoReturn:
    """Run a typer app without standalone mode and turn every failure into one line."""
    try:
        # Without standalone mode click returns (not raises) the code of a typer.Exit.
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except CorralError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    except OSError as exc:
        typer.echo(f"error: {_os_message(exc)}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", None)
        sys.exit(code if code is not None else getattr(exc, "code", 0))
    except KeyboardInterrupt:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001 - the CLI promise: no tracebacks
        typer.echo(f"error: {exc.__class__.__name__}: {exc}", err=True)
        sys.exit(1)
