"""`corral bench`: measure a corral server through the official SDK and print the table.

The progress bar goes to stderr so that `--json` and `--markdown` output on stdout stays clean
enough to pipe into a file (benchmarks/run.py does exactly that).
"""

from __future__ import annotations

import shlex
import sys

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from corral.cli.errors import CliError, run_cli
from corral.errors import CorralError


class _RichProgress:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress

    def phase(self, description: str, total: int):  # type: ignore[no-untyped-def]
        task = self._progress.add_task(description, total=total)
        return lambda: self._progress.advance(task)


def recorded_command(argv: list[str]) -> str:
    """The command line as it should appear in docs: never with the API key in it.

    argv is what followed the program name, with or without a leading `bench` (it is absent
    when run as `python -m corral.cli.bench`)."""
    if argv and argv[0] == "bench":
        argv = argv[1:]
    out: list[str] = ["bench"]
    redact_next = False
    for arg in argv:
        if redact_next:
            out.append("<key>")
            redact_next = False
        elif arg == "--api-key":
            out.append(arg)
            redact_next = True
        elif arg.startswith("--api-key="):
            out.append("--api-key=<key>")
        else:
            out.append(arg)
    return "corral " + " ".join(shlex.quote(a) for a in out)


def bench(
    url: str = typer.Option(None, "--url", help="Bench a running server at this URL (default: start our own on a free loopback port)."),
    api_key: str = typer.Option(None, "--api-key", help="API key for --url (default: $E2B_API_KEY)."),
    iterations: int = typer.Option(50, "--iterations", "-n", help="Samples per latency measurement."),
    idle: int = typer.Option(50, "--idle", help="Idle sandboxes for the memory measurement (0 skips it; try 500)."),
    template: str = typer.Option("base", "--template", help="Template every benchmark sandbox is created from."),
    concurrency: int = typer.Option(4, "--concurrency", help="Parallel creates/kills while starting the idle fleet."),
    interpreter: bool = typer.Option(True, "--interpreter/--no-interpreter", help="Also measure run_code (needs the code-interpreter-v1 template)."),
    pause_ms: int = typer.Option(0, "--pause-ms", help="Pause between create iterations, untimed (lets the server's warm pool refill; 0 = back to back)."),
    tier: list[str] = typer.Option([], "--tier", help="Also measure create, first command, run_code, pause and resume on this isolation tier (gvisor), beside the default tier, same run."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON instead of tables."),
    as_markdown: bool = typer.Option(False, "--markdown", help="Print a docs/BENCHMARKS.md section instead of tables."),
) -> None:
    """Benchmark create -> first command, commands.run round trip and idle memory against a floor."""
    import os

    from corral.bench import BenchConfig, render_console, render_markdown, run_benchmark

    if as_json and as_markdown:
        raise CliError("choose one of --json and --markdown")
    if url is not None and not api_key:
        api_key = os.environ.get("E2B_API_KEY") or ""
    config = BenchConfig(url=url, api_key=api_key or None, template=template, iterations=iterations,
                         idle=idle, idle_concurrency=concurrency, pause_s=pause_ms / 1000,
                         interpreter=interpreter, tiers=tuple(tier))
    try:
        config.validate()
    except ValueError as exc:
        raise CliError(str(exc)) from None

    err = Console(stderr=True)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, transient=True) as progress:
            report = run_benchmark(config, _RichProgress(progress))
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except (CorralError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - SDK and server failures become one clear error, no traceback
        raise CliError(f"benchmark failed: {exc.__class__.__name__}: {exc}") from None

    if as_json:
        typer.echo(report.to_json())
    elif as_markdown:
        typer.echo(render_markdown(report, recorded_command(sys.argv[1:])), nl=False)
    else:
        render_console(report, Console())


def main() -> None:
    """`python -m corral.cli.bench`: the same command, usable before or without `corral` mounting it."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(bench)
    run_cli(app)


if __name__ == "__main__":
    main()
