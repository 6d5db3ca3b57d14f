"""`corral template build DIR`: build a template from DIR/e2b.toml and its Dockerfile.

A typer command function; the main CLI mounts it on the `template` sub-app. Progress is one
line per step (cached steps say so) with a live spinner on a terminal; `--verbose` streams RUN
output too. A failing step prints the step and the last lines it wrote, then exits 1. The full
log is the template's build.log (`<store>/<name>/build.log`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console

from corral.errors import CorralError
from corral.network import NetworkPolicyError
from corral.builder import StepEvent, StepFailed, build_dockerfile, load
from corral.templates.store import ROOT_ENV, TemplateStore


def _fail(message: str, code: int = 1) -> NoReturn:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(code)


def build(
    directory: Path = typer.Argument(..., help="Template directory with e2b.toml and a Dockerfile."),
    name: Optional[str] = typer.Option(None, "--name", help="Template name (default: e2b.toml's)."),
    build_arg: list[str] = typer.Option([], "--build-arg", help="ARG value, NAME=VALUE (repeatable)."),
    no_network: bool = typer.Option(False, "--no-network",
                                    help="RUN steps get no registry egress (loopback only)."),
    force: bool = typer.Option(False, "--force", help="Publish even if the result is unchanged."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show the output of RUN steps."),
    store_dir: Optional[Path] = typer.Option(None, "--store", envvar=ROOT_ENV, show_default=False,
                                             help="Template store directory (default /var/lib/corral/templates)."),
) -> None:
    """Build a template from DIR/e2b.toml and its Dockerfile, one cached layer per step."""
    args: dict[str, str] = {}
    for item in build_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _fail(f"--build-arg {item!r}: expected NAME=VALUE")
        args[key] = value
    try:
        config = load(directory, name=name)
    except CorralError as exc:
        _fail(str(exc))
    console = Console()
    started = time.monotonic()
    console.print(f"Building template [bold]{config.name}[/] from {config.dockerfile}", highlight=False)

    def on_event(event: StepEvent) -> None:
        text = event.description if len(event.description) <= 90 else event.description[:87] + "..."
        stamp = f"[{time.monotonic() - started:6.1f}s]"
        if event.status == "cached":
            console.print(f"{stamp} [dim]CACHED[/] {text}", highlight=False, markup=True)
        elif event.status == "running":
            console.print(f"{stamp} [cyan]=>[/] {text}", highlight=False, markup=True)
        elif event.status == "done":
            console.print(f"{stamp} [green]done[/] in {event.seconds:.1f}s", highlight=False, markup=True)

    def on_output(line: str) -> None:
        if verbose:
            console.print(f"    {line}", highlight=False, markup=False)

    try:
        result = asyncio.run(build_dockerfile(TemplateStore(store_dir), config, network=not no_network,
                                              build_args=args, force=force, on_event=on_event,
                                              on_output=on_output))
    except StepFailed as exc:
        err = Console(stderr=True)
        if exc.output:
            err.print("[dim]last lines of the step's output:[/]")
            for line in exc.output:
                err.print(f"  {line}", highlight=False, markup=False)
        _fail(f"{exc}; cached layers of earlier steps were kept")
    except KeyboardInterrupt:
        _fail("interrupted; the unfinished step was removed", 130)
    except (CorralError, NetworkPolicyError, OSError) as exc:  # NetworkPolicyError: the network package's own
        _fail(str(exc))
    info = result.info
    if result.skipped:
        console.print(f"Template [bold]{info.name}[/] is up to date ({result.steps_cached} cached step(s)).",
                      highlight=False)
    else:
        console.print(f"[green]Built[/] template [bold]{info.name}[/] in {result.seconds:.1f}s "
                      f"({result.steps_run} step(s) run, {result.steps_cached} cached) -> {info.rootfs}",
                      highlight=False)
