"""Entry point: `corral <command>`. Every failure ends as one line on stderr."""

from __future__ import annotations

import typer

from corral.cli import agents, keys, sandbox
from corral.cli.client import server_url
from corral.cli.errors import run_cli
from corral.cli.bench import bench
from corral.cli.gateway import gateway
from corral.cli.mcp import mcp
from corral.cli.serve import serve
from corral.cli.usage import usage

app = typer.Typer(
    help="corral: self-hosted, E2B-compatible sandboxes for untrusted code.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
app.command("serve")(serve)
app.command("bench")(bench)
app.command("usage")(usage)
app.command("mcp")(mcp)
app.command("gateway")(gateway)
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(keys.app, name="keys")
app.add_typer(agents.app, name="agents")

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
    typer.echo(f"export E2B_VOLUME_API_URL={base}")   # the SDK's Volume file operations


def main() -> None:
    run_cli(app)


if __name__ == "__main__":
    main()
