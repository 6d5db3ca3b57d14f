"""`corral template ...`: build the base template, list and remove templates.

Mounted by the main CLI as a sub-app. Every expected failure prints one line (no traceback) and
exits with status 1, because these commands run in Makefiles and CI logs where a traceback hides
the one sentence that matters.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich import box
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from corral.cli.errors import run_cli
from corral.errors import CorralError
from corral.templates import build as template_build
from corral.templates.builtin import BUILTIN_RECIPES
from corral.cli.template_build import build as build_from_dockerfile
from corral.templates.store import ROOT_ENV, TemplateNotFound, TemplateStore

app = typer.Typer(
    name="template",
    help="Build, list and remove sandbox templates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_STORE_OPTION = typer.Option(
    None,
    "--store",
    envvar=ROOT_ENV,
    help="Template store directory (default /var/lib/corral/templates).",
    show_default=False,
)


def _fail(message: str, code: int = 1) -> NoReturn:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


class _PhaseDisplay:
    """Shows each build phase with its own elapsed time; plain lines when not on a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.started = time.monotonic()
        self.live = console.is_terminal
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.current: TaskID | None = None

    def __enter__(self) -> "_PhaseDisplay":
        if self.live:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._finish_current()
        if self.live:
            self.progress.stop()

    def _finish_current(self) -> None:
        if self.current is not None:
            self.progress.update(self.current, total=1, completed=1)
            self.progress.stop_task(self.current)
            self.current = None

    def __call__(self, label: str) -> None:
        if self.live:
            self._finish_current()
            self.current = self.progress.add_task(label, total=None)
        else:
            self.console.print(f"[{time.monotonic() - self.started:6.1f}s] {label}", highlight=False, soft_wrap=True)


@app.command("build-base")
def build_base(
    force: bool = typer.Option(False, "--force", help="Rebuild even if the recipe is unchanged."),
    store_dir: Optional[Path] = _STORE_OPTION,
) -> None:
    """Build the `base` template (Debian bookworm, minbase) with mmdebstrap."""
    _build_recipes(["base"], force, store_dir)


@app.command("build-builtin")
def build_builtin(
    names: list[str] = typer.Argument(None, help=f"Templates to build (default: all of {', '.join(BUILTIN_RECIPES)})."),
    force: bool = typer.Option(False, "--force", help="Rebuild even if the recipe is unchanged."),
    store_dir: Optional[Path] = _STORE_OPTION,
) -> None:
    """Build corral's built-in templates from Debian's packages (skipped when current)."""
    _build_recipes(names or list(BUILTIN_RECIPES), force, store_dir)


def _build_recipes(names: list[str], force: bool, store_dir: Optional[Path]) -> None:
    unknown = [n for n in names if n not in BUILTIN_RECIPES]
    if unknown:
        _fail(f"no built-in template called {', '.join(unknown)} (built-in: {', '.join(BUILTIN_RECIPES)})")
    store = TemplateStore(store_dir)
    for name in names:
        _build_one(store, name, force)


def _build_one(store: TemplateStore, name: str, force: bool) -> None:
    console = Console()
    console.print(f"Building template [bold]{name}[/] in {store.root}", highlight=False, soft_wrap=True)
    try:
        with _PhaseDisplay(console) as display:
            result = asyncio.run(template_build.build_template(store, BUILTIN_RECIPES[name], force=force, on_phase=display))
    except template_build.BuildFailed as exc:
        err = Console(stderr=True)
        if exc.log_tail:
            err.print("[dim]last lines of the build log:[/]")
            for line in exc.log_tail:
                err.print(f"  {line}", highlight=False, markup=False)
        _fail(f"{exc}; nothing was left behind")
    except KeyboardInterrupt:
        _fail("interrupted; the partial build was removed", 130)
    except (CorralError, OSError) as exc:
        _fail(str(exc))
    info = result.info
    if result.skipped:
        console.print(
            f"Template [bold]{name}[/] is up to date ({_human(info.size_bytes)}, built "
            f"{info.created_at}); use --force to rebuild.",
            highlight=False, soft_wrap=True,
        )
    else:
        console.print(
            f"[green]Built[/] template [bold]{name}[/]: {_human(info.size_bytes)} in "
            f"{result.seconds:.1f}s -> {info.rootfs}",
            highlight=False, soft_wrap=True,
        )


app.command("build")(build_from_dockerfile)


@app.command("ls")
def list_templates(store_dir: Optional[Path] = _STORE_OPTION) -> None:
    """List built templates."""
    store = TemplateStore(store_dir)
    try:
        templates = store.list()
    except OSError as exc:
        _fail(f"cannot read {store.root}: {exc.strerror or exc}")
    console = Console()
    if not templates:
        console.print(
            f"No templates in {store.root}. Build one with: corral template build-base",
            highlight=False, soft_wrap=True,
        )
        return
    table = Table(title=f"Templates in {store.root}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("NAME", "ALIASES", "SIZE", "CPU", "MEMORY", "DISK", "CREATED"):
        table.add_column(column, justify="right" if column in ("SIZE", "CPU") else "left",
                         no_wrap=True)
    for t in templates:
        table.add_row(
            t.name,
            ", ".join(t.aliases) or "-",
            _human(t.size_bytes),
            str(t.resources.cpu_count),
            f"{t.resources.memory_mb} MB",
            f"{t.resources.disk_mb} MB",
            t.created_at.replace("T", " ")[:16],
        )
    console.print(table)


@app.command("rm")
def remove_template(
    name: str = typer.Argument(..., help="Template name."),
    store_dir: Optional[Path] = _STORE_OPTION,
) -> None:
    """Remove a template. Running sandboxes keep their files until they stop."""
    store = TemplateStore(store_dir)
    try:
        info = store.get(name)
        if info.name != name:
            _fail(f"{name!r} is an alias of {info.name!r}; remove it with: corral template unalias {name}")
        store.remove(name)
        busy = store.purge_trash()
    except (CorralError, OSError) as exc:
        _fail(str(exc))
    note = f" ({len(busy)} retired cop{'y is' if len(busy) == 1 else 'ies are'} still mounted)" if busy else ""
    Console().print(f"Removed template [bold]{name}[/]{note}", highlight=False, soft_wrap=True)


@app.command("alias")
def alias_template(
    alias: str = typer.Argument(..., help="New name, e.g. code-interpreter-v1."),
    name: str = typer.Argument(..., help="Existing template."),
    store_dir: Optional[Path] = _STORE_OPTION,
) -> None:
    """Make ALIAS another name for template NAME (as the E2B SDK asks for templates by name)."""
    try:
        info = TemplateStore(store_dir).set_alias(alias, name)
    except (CorralError, OSError) as exc:
        _fail(str(exc))
    Console().print(f"{alias} -> {info.name}", highlight=False, soft_wrap=True)


@app.command("unalias")
def unalias_template(
    alias: str = typer.Argument(..., help="Alias to remove."),
    store_dir: Optional[Path] = _STORE_OPTION,
) -> None:
    """Remove an alias (the template itself stays)."""
    try:
        TemplateStore(store_dir).remove_alias(alias)
    except TemplateNotFound:
        _fail(f"no template has the alias {alias!r}")
    except (CorralError, OSError) as exc:
        _fail(str(exc))
    Console().print(f"Removed alias {alias}", highlight=False, soft_wrap=True)


def main() -> None:  # pragma: no cover - for `python -m corral.cli.template`
    run_cli(app)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
