"""Entry point: `corral <command>`. Every failure ends as one line on stderr."""

from __future__ import annotations

import sys

import typer

from corral.cli import keys, sandbox
from corral.cli.client import server_url
from corral.cli.errors import CliError
from corral.cli.bench import bench
from corral.cli.serve import serve
from corral.cli.usage import usage

app = typer.Typer(
    help="corral: self-hosted, E2B-compatible sandboxes for untrusted code.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
app.command("serve")(serve)
app.command("bench")(bench)
app.command("usage")(usage)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(keys.app, name="keys")

try:  # the template commands live with the template store
    from corral.cli import template as _template

    app.add_typer(_template.app, name="template")
except ImportError:  # pragma: no cover - only while the template package is absent
    pass


@app.command("env")
def env(api_key: str = typer.Option(None, "--api-key", envvar="E2B_API_KEY", help="Key to export (default: $E2B_API_KEY)."),
        url: str = typer.Option(None, "--url", help="Server URL (default: $CORRAL_URL or http://127.0.0.1:3000).")) -> None:
    """Print the exports that make existing E2B code use this server."""
    base = url or server_url()
    typer.echo(f"export E2B_API_KEY={api_key or '<your corral key: corral keys create>'}")
    typer.echo(f"export E2B_API_URL={base}")
    typer.echo(f"export E2B_SANDBOX_URL={base}")


def main() -> None:
    try:
        # Without standalone mode click returns (not raises) the code of a typer.Exit.
        rc = app(standalone_mode=False)
        sys.exit(rc if isinstance(rc, int) else 0)
    except CliError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except (typer.Exit, SystemExit) as exc:
        code = getattr(exc, "exit_code", None)
        sys.exit(code if code is not None else getattr(exc, "code", 0))
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the CLI promise: no tracebacks
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        typer.echo(f"error: {exc.__class__.__name__}: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
