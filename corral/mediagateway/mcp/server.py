"""The MCP server: seven sandbox tools, served over stdio or streamable HTTP with the official SDK.

A language model that speaks MCP (Claude Desktop, an IDE agent, any MCP client) gets sandboxes as
tools: it creates one, runs code and commands in it, moves files in and out, and kills it. Code it
runs without naming a sandbox goes to its session's sandbox (see `sessions`). The tools' names and
arguments are fixed by the Media Gateway issue: `create_sandbox(template, timeout, internet)`,
`run_code(code, language, sandbox_id?)`, `run_command(sandbox_id, command)`,
`write_file(sandbox_id, path, content)`, `read_file(sandbox_id, path)`,
`list_files(sandbox_id, path)`, `kill_sandbox(sandbox_id)`.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import Field

from corral.mediagateway.mcp.sandboxes import (
    DEFAULT_TEMPLATE,
    CommandOutput,
    FileListing,
    RunCodeResult,
    SandboxTools,
    language_name,
    run_code_answer,
)
from corral.mediagateway.mcp.sessions import SESSION_IDLE_S, SessionRegistry

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Sandboxes for running untrusted code. run_code without a sandbox_id uses this session's own "
    "sandbox (created on first use, killed when the session ends), so state persists between calls. "
    "For a sandbox you manage yourself (another template, internet access, a longer life), call "
    "create_sandbox and pass its id to the other tools; kill it with kill_sandbox when done. "
    "Sandboxes are offline unless created with internet=true. Outputs are capped: long streams are "
    "truncated with a note, read_file refuses files over 1 MiB, write_file content over 10 MiB."
)

SandboxId = Annotated[str, Field(description="the id create_sandbox returned", min_length=1, max_length=128)]
Path = Annotated[str, Field(description="a path inside the sandbox, e.g. /home/user/data.csv", min_length=1, max_length=4096)]


def build_server(params: dict[str, Any] | None = None, *, per_connection_sessions: bool) -> MCPServer:
    """The MCP server. `params` are the SDK's connection options (empty: its environment);
    `per_connection_sessions` is True for HTTP (a session per MCP connection) and False for stdio
    (the process is the session)."""
    return _build(params, per_connection_sessions)[0]


def _build(params: dict[str, Any] | None, per_connection_sessions: bool) -> tuple[MCPServer, SessionRegistry]:
    tools = SandboxTools(params)

    async def create_session_sandbox() -> str:
        return await tools.create(DEFAULT_TEMPLATE, SESSION_IDLE_S, False)

    sessions = SessionRegistry(create_session_sandbox, tools.kill, per_connection=per_connection_sessions)

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[dict[str, Any]]:
        try:
            yield {}
        finally:
            await sessions.close_all()

    server: MCPServer = MCPServer("corral", instructions=INSTRUCTIONS, lifespan=lifespan)

    @server.tool(description="Create a sandbox and return its id. It runs until kill_sandbox or its timeout.")
    async def create_sandbox(
        template: Annotated[str, Field(description="template name or id; the default runs code in every run_code language",
                                       min_length=1, max_length=256)] = DEFAULT_TEMPLATE,
        timeout: Annotated[int, Field(description="seconds the sandbox lives (1 to 86400)", ge=1, le=86400)] = 300,
        internet: Annotated[bool, Field(description="allow outbound internet access")] = False,
    ) -> str:
        return await tools.create(template, timeout, internet)

    @server.tool(description=(
        "Run code and return its stdout, stderr, display results and error. Without sandbox_id it runs in "
        "this session's sandbox, where variables persist between calls."
    ))
    async def run_code(
        code: Annotated[str, Field(description="the program to run")],
        language: Annotated[str, Field(description="python, javascript, typescript, r, java or bash")] = "python",
        sandbox_id: Annotated[str | None, Field(description="a sandbox from create_sandbox; omit for the session sandbox",
                                                max_length=128)] = None,
        *,
        ctx: Context,
    ) -> RunCodeResult:  # or a CallToolResult carrying the same, plus its charts as images
        if sandbox_id:
            return run_code_answer(await tools.run_code(await tools.connect(sandbox_id), code, language))
        language_name(language)  # a bad language fails before a sandbox is made for it
        session = sessions.for_connection(_connection_of(ctx))
        current, created = await session.get()
        try:
            sandbox = await tools.connect(current, keep_alive=SESSION_IDLE_S)
        except ToolError:
            if created:
                raise
            session.forget(current)  # it timed out while idle: start over in a new one
            current, _ = await session.get()
            sandbox = await tools.connect(current, keep_alive=SESSION_IDLE_S)
        return run_code_answer(await tools.run_code(sandbox, code, language))

    @server.tool(description="Run a shell command in a sandbox; returns stdout, stderr and the exit code.")
    async def run_command(sandbox_id: SandboxId, command: Annotated[str, Field(description="a shell command line")]) -> CommandOutput:
        return await tools.run_command(sandbox_id, command)

    @server.tool(description="Write text to a file in a sandbox (created or replaced).")
    async def write_file(sandbox_id: SandboxId, path: Path, content: Annotated[str, Field(description="the file's text")]) -> str:
        return await tools.write_file(sandbox_id, path, content)

    @server.tool(description="Read a text file from a sandbox.", annotations=ToolAnnotations(read_only_hint=True))
    async def read_file(sandbox_id: SandboxId, path: Path) -> str:
        return await tools.read_file(sandbox_id, path)

    @server.tool(description="List a directory in a sandbox.", annotations=ToolAnnotations(read_only_hint=True))
    async def list_files(sandbox_id: SandboxId, path: Path = "/home/user") -> FileListing:
        return await tools.list_files(sandbox_id, path)

    @server.tool(description="Kill a sandbox.", annotations=ToolAnnotations(destructive_hint=True))
    async def kill_sandbox(sandbox_id: SandboxId) -> str:
        if not await tools.kill(sandbox_id):
            raise ToolError(f"sandbox {sandbox_id} was not found: it was killed, timed out, or never existed")
        return f"killed {sandbox_id}"

    return server, sessions


def _connection_of(ctx: Context) -> object:
    """The SDK's per-client `Connection` behind a tool call: its `state` holds the session sandbox
    and its `exit_stack` kills it when the connection closes. mcp 2.3 hands tools the connection
    only through the request's `ServerSession`; the pinned version and the session tests keep
    this honest."""
    connection = getattr(ctx.request_context.session, "_connection", None)
    if connection is None or not hasattr(connection, "exit_stack"):
        raise ToolError("this MCP SDK version does not expose the connection; pass a sandbox_id")
    return connection


async def _until_stopped(server: MCPServer, sessions: SessionRegistry) -> None:
    """stdio until the client closes the pipe (the lifespan's teardown kills the session sandbox),
    or SIGTERM/SIGINT. The SDK reads stdin in a worker thread that a cancellation cannot stop
    while the client keeps the pipe open, so a signal kills the session sandbox itself and then
    ends the process."""
    async with anyio.create_task_group() as tg:
        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async for signum in signals:
                    await sessions.close_all()
                    sys.stderr.flush()
                    os._exit(128 + signum)

        tg.start_soon(on_signal)
        await server.run_stdio_async()
        tg.cancel_scope.cancel()


def serve_stdio(params: dict[str, Any] | None = None) -> None:
    anyio.run(_until_stopped, *_build(params, False))


def http_app(params: dict[str, Any] | None = None, *, host: str = "127.0.0.1"):
    """The streamable-HTTP ASGI app, at /mcp. Host and Origin are checked (DNS rebinding) for the
    bind address: the SDK does it for loopback names, we do it for any other."""
    server = build_server(params, per_connection_sessions=True)
    security = None
    if host not in ("127.0.0.1", "localhost", "::1"):
        shown = f"[{host}]" if ":" in host else host
        security = TransportSecuritySettings(allowed_hosts=[f"{shown}:*"], allowed_origins=[f"http://{shown}:*"])
    return server.streamable_http_app(host=host, transport_security=security)


def serve_http(params: dict[str, Any] | None = None, *, host: str = "127.0.0.1", port: int = 8765) -> None:
    import uvicorn

    app = http_app(params, host=host)
    shown = f"[{host}]" if ":" in host else host
    print(f"corral mcp: streamable HTTP on http://{shown}:{port}/mcp", file=sys.stderr, flush=True)
    uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning")).run()
