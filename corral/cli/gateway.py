"""`corral gateway`: the Media Gateway web page and its JSON API."""

from __future__ import annotations

import typer

from corral.cli.errors import CliError


def gateway(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, help="Port to listen on."),
) -> None:
    """Serve the Media Gateway page: type a query, see ranked recommendations and each agent's
    sandboxed steps (code, logs, timing). Agents reach sandboxes through the E2B_* environment."""
    if not 1 <= port <= 65535:
        raise CliError(f"--port must be 1-65535, not {port}")
    from corral.mediagateway.errors import ConfigError
    from corral.mediagateway.gateway import serve

    try:
        serve(host=host, port=port)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
