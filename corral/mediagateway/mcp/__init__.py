"""`corral mcp`: sandboxes as MCP tools, over stdio or streamable HTTP (the official `mcp` SDK)."""

from corral.mediagateway.mcp.server import build_server, http_app, serve_http, serve_stdio

__all__ = ["build_server", "http_app", "serve_http", "serve_stdio"]
