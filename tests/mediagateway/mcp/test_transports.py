"""`corral mcp` as an MCP client sees it: the official `mcp` client over stdio and over streamable
HTTP lists the seven tools with their argument schemas, runs Python through `run_code`, and the
session's sandbox is gone from the server's list once the session ends."""

from __future__ import annotations

import sys

import pytest
from mcp import Client, StdioServerParameters

from tests.conftest import REPO, Server
from tests.mediagateway.frontends import client_env, free_port, running_sandboxes, start_cli, wait_gone, wait_listening
from tests.processes import stop

pytestmark = pytest.mark.e2e

ARGUMENTS = {
    "create_sandbox": {"template", "timeout", "internet"},
    "run_code": {"code", "language", "sandbox_id"},
    "run_command": {"sandbox_id", "command"},
    "write_file": {"sandbox_id", "path", "content"},
    "read_file": {"sandbox_id", "path"},
    "list_files": {"sandbox_id", "path"},
    "kill_sandbox": {"sandbox_id"},
}
REQUIRED = {
    "create_sandbox": set(), "run_code": {"code"}, "run_command": {"sandbox_id", "command"},
    "write_file": {"sandbox_id", "path", "content"}, "read_file": {"sandbox_id", "path"},
    "list_files": {"sandbox_id"}, "kill_sandbox": {"sandbox_id"},
}


async def check_tools(client: Client) -> None:
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) == set(ARGUMENTS)
    for name, tool in tools.items():
        assert set(tool.input_schema["properties"]) == ARGUMENTS[name], name
        assert set(tool.input_schema.get("required", [])) == REQUIRED[name], name
        assert tool.description
    props = tools["create_sandbox"].input_schema["properties"]
    assert (props["template"]["type"], props["timeout"]["type"], props["internet"]["type"]) == ("string", "integer", "boolean")


async def run(client: Client, code: str, **extra: object) -> dict:
    result = await client.call_tool("run_code", {"code": code, **extra})
    assert not result.is_error, result.content
    return result.structured_content


async def test_stdio_lists_tools_runs_python_and_kills_the_session_sandbox(server: Server) -> None:
    # The spec's one-URL form (E2B_BASE_URL) here; the HTTP tests use the SDK's own variables.
    env = {k: v for k, v in client_env(server).items() if k not in ("E2B_API_URL", "E2B_SANDBOX_URL")}
    env["E2B_BASE_URL"] = server.url
    params = StdioServerParameters(command=sys.executable, args=["-m", "corral.cli.main", "mcp"], env=env, cwd=str(REPO))
    async with Client(params) as client:
        await check_tools(client)
        first = await run(client, "x = 6 * 7\nprint(x)")
        assert first["stdout"] == "42\n" and first["error"] is None
        session_sandbox = first["sandbox_id"]
        assert session_sandbox in running_sandboxes(server)
        second = await run(client, "x + 1")  # the same kernel: state persists in the session
        assert second["sandbox_id"] == session_sandbox
        assert second["results"] == ["43"]
    assert wait_gone(server, session_sandbox), "the session sandbox outlived its stdio session"


async def test_streamable_http_session_keeps_state_and_is_killed_on_close(server: Server, cli_log) -> None:
    port = free_port()
    proc = start_cli(["mcp", "--http", "--port", str(port)], client_env(server), cli_log)
    try:
        wait_listening(proc, port, cli_log)
        url = f"http://127.0.0.1:{port}/mcp"
        async with Client(url, mode="legacy") as client:  # the initialize handshake: an Mcp-Session-Id
            await check_tools(client)
            first = await run(client, "import math\nprint(math.factorial(5))")
            assert first["stdout"] == "120\n"
            session_sandbox = first["sandbox_id"]
            assert (await run(client, "print(math.pi > 3)"))["sandbox_id"] == session_sandbox
        assert wait_gone(server, session_sandbox), "the session sandbox outlived its HTTP session"

        # Two clients, two sessions, two sandboxes: one client's state is not another's.
        async with Client(url, mode="legacy") as a, Client(url, mode="legacy") as b:
            in_a = await run(a, "secret = 'a'")
            in_b = await run(b, "print('secret' in dir())")
            assert in_a["sandbox_id"] != in_b["sandbox_id"]
            assert in_b["stdout"] == "False\n"
        assert wait_gone(server, in_a["sandbox_id"]) and wait_gone(server, in_b["sandbox_id"])

        # The sessionless 2026 protocol: the session is the one request.
        async with Client(url) as modern:
            once = await run(modern, "print(2 ** 10)")
            assert once["stdout"] == "1024\n"
        assert wait_gone(server, once["sandbox_id"])
        assert proc.poll() is None, "the HTTP server stopped"
    finally:
        stop(proc)


async def test_stopping_the_http_server_kills_open_session_sandboxes(server: Server, cli_log) -> None:
    port = free_port()
    proc = start_cli(["mcp", "--http", "--port", str(port)], client_env(server), cli_log)
    try:
        wait_listening(proc, port, cli_log)
        client = Client(f"http://127.0.0.1:{port}/mcp", mode="legacy", read_timeout_seconds=60)
        await client.__aenter__()
        session_sandbox = (await run(client, "print('open')"))["sandbox_id"]
        stop(proc)  # SIGTERM while the session is still open
        assert wait_gone(server, session_sandbox), "SIGTERM left the session sandbox running"
        try:
            await client.__aexit__(None, None, None)
        except Exception:  # noqa: BLE001 - the server is gone; its DELETE cannot succeed
            pass
    finally:
        stop(proc)


async def test_http_refuses_a_foreign_host_header(server: Server, cli_log) -> None:
    """DNS rebinding: a page on another origin that resolves to 127.0.0.1 must not drive the tools."""
    import httpx

    port = free_port()
    proc = start_cli(["mcp", "--http", "--port", str(port)], client_env(server), cli_log)
    try:
        wait_listening(proc, port, cli_log)
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
        evil = httpx.post(f"http://127.0.0.1:{port}/mcp", json=body, headers={**headers, "Host": "evil.example:80"}, timeout=30)
        assert evil.status_code in (400, 421)
        foreign = httpx.post(f"http://127.0.0.1:{port}/mcp", json=body,
                             headers={**headers, "Origin": "http://evil.example"}, timeout=30)
        assert foreign.status_code == 403
        ok = httpx.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=headers, timeout=30)
        assert ok.status_code == 200
    finally:
        stop(proc)


def test_a_bad_environment_is_one_line_and_exit_1(server: Server) -> None:
    import subprocess

    env = {**client_env(server), "E2B_BASE_URL": "not-a-url"}
    done = subprocess.run([sys.executable, "-m", "corral.cli.main", "mcp"], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: E2B_BASE_URL: 'not-a-url' is not an http(s) URL"


def test_sigterm_to_the_stdio_server_kills_its_session_sandbox(server: Server) -> None:
    """A client that stops the server with SIGTERM (as desktop clients do on quit) leaves nothing
    running: the signal ends the stdio loop and the teardown kills the session sandbox."""
    import json
    import select
    import signal
    import subprocess
    import time

    proc = subprocess.Popen([sys.executable, "-m", "corral.cli.main", "mcp"], cwd=REPO, env=client_env(server),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)

    def send(message: dict) -> None:
        proc.stdin.write((json.dumps(message) + "\n").encode())
        proc.stdin.flush()

    def answer(request_id: int, within: float = 120) -> dict:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1)
            if ready:
                message = json.loads(proc.stdout.readline())
                if message.get("id") == request_id:
                    return message
        raise AssertionError(f"no answer to request {request_id}")

    try:
        send({"jsonrpc": "2.0", "id": 1, "method": "initialize",
              "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
        assert "result" in answer(1)
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "run_code", "arguments": {"code": "print(1)"}}})
        result = answer(2)["result"]
        assert not result.get("isError"), result
        session_sandbox = result["structuredContent"]["sandbox_id"]
        assert session_sandbox in running_sandboxes(server)
        proc.send_signal(signal.SIGTERM)  # stdin still open: only the signal ends it
        proc.wait(timeout=60)
        assert wait_gone(server, session_sandbox), "SIGTERM left the stdio session's sandbox running"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
