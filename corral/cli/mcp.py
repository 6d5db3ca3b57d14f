"""`corral mcp`: serve sandboxes as MCP tools to a language-model client."""

from __future__ import annotations

import logging

import typer

from corral.cli.errors import CliError


def mcp(
    http: bool = typer.Option(False, "--http", help="Serve streamable HTTP at http://HOST:PORT/mcp instead of stdio."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on with --http."),
    port: int = typer.Option(8765, help="Port to listen on with --http."),
    log_level: str = typer.Option("warning", help="debug, info, warning or error (logs go to stderr)."),
) -> None:
    """Run the MCP server (stdio by default). It reaches sandboxes through the E2B SDK's
    environment: E2B_API_KEY and E2B_BASE_URL (or E2B_API_URL/E2B_SANDBOX_URL, or E2B_DOMAIN)."""
    if not 1 <= port <= 65535:
        raise CliError(f"--port must be 1-65535, not {port}")
    level = getattr(logging, log_level.upper(), None)
    if not isinstance(level, int):
        raise CliError(f"--log-level must be debug, info, warning or error, not {log_level!r}")
    from corral.mediagateway.errors import ConfigError
    from corral.mediagateway.mcp import serve_http, serve_stdio
    from corral.mediagateway.mcp.connection import sdk_params

    try:
        params = sdk_params()
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    # stdout is the protocol on stdio: every log line goes to stderr.
    logging.basicConfig(level=level, format="corral mcp: %(levelname)s %(name)s: %(message)s")
    for name in ("mcp", "httpx", "e2b"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    if http:
        serve_http(params, host=host, port=port)
    else:
        serve_stdio(params)
